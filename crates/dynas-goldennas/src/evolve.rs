//! Evolutionary search (NSGA-II through the search crate's [`Executor`]) over the operator /
//! channel configuration of a (shrunk) space on the trained supernet: validation top-1 after
//! batch-norm recalibration against the target's predicted latency. The front is the set of
//! GoldenNets.

use std::sync::Mutex;

use dynas_core::pareto::hypervolume;
use dynas_search::{
    Budget, Evaluation, Executor, Nsga2, Nsga2Config, Objective, Problem, SearchError, Subspace,
};
use dynas_space::{Genotype, MbConvSpace, SearchSpace};
use dynas_supernet::{AccuracyEstimator, Dataset, Normalization, Supernet};
use serde::{Deserialize, Serialize};

use crate::error::{GoldenNasError, Result};
use crate::perf_model::PerfModel;
use crate::space::ChoiceSet;

/// Evolution budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvolveConfig {
    /// NSGA-II population (at least 2).
    pub population: usize,
    /// Distinct architectures evaluated (at least the population).
    pub evaluations: usize,
    /// Batch-norm recalibration batches per candidate.
    pub calib_batches: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for EvolveConfig {
    fn default() -> Self {
        Self {
            population: 16,
            evaluations: 64,
            calib_batches: 5,
            seed: 0,
        }
    }
}

impl EvolveConfig {
    /// Checks the configuration.
    pub fn check(&self) -> Result<()> {
        if self.population < 2 {
            return Err(GoldenNasError::invalid("population", "must be at least 2"));
        }
        if self.evaluations < self.population {
            return Err(GoldenNasError::invalid(
                "evaluations",
                "must be at least the population",
            ));
        }
        if self.calib_batches == 0 {
            return Err(GoldenNasError::invalid(
                "calib_batches",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One GoldenNet of the front.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenNet {
    /// Genotype in the full space.
    pub genotype: Genotype,
    /// `name=value` form.
    pub description: String,
    /// Validation top-1, percent.
    pub top1: f64,
    /// Predicted latency on the target, ms.
    pub latency_ms: f64,
    /// MACs per image.
    pub macs: u64,
}

/// The front an evolutionary run found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvolveOutcome {
    /// The front, fastest first.
    pub front: Vec<GoldenNet>,
    /// Distinct architectures evaluated.
    pub evaluations: usize,
    /// Seconds.
    pub seconds: f64,
}

impl EvolveOutcome {
    /// Hypervolume of the front (top-1 maximised, latency minimised) against the reference
    /// `(top1, latency_ms)`; points worse than the reference in either count for nothing.
    pub fn hypervolume(&self, reference: (f64, f64)) -> Result<f64> {
        let points: Vec<Vec<f64>> = self
            .front
            .iter()
            .filter(|g| g.top1 > reference.0 && g.latency_ms < reference.1)
            .map(|g| vec![-g.top1, g.latency_ms])
            .collect();
        if points.is_empty() {
            return Ok(0.0);
        }
        Ok(hypervolume(&points, &[-reference.0, reference.1])?)
    }
}

struct Scorer<'a> {
    supernet: Supernet,
    train: &'a Dataset,
    val: &'a Dataset,
    norm: &'a Normalization,
    calib_batches: usize,
}

/// The search problem: a sub-space of the supernet's space, top-1 against predicted latency.
/// libtorch tensors are not `Sync`; the supernet is reached through a mutex, one evaluation
/// at a time.
struct GoldenProblem<'a> {
    space: Subspace<'a>,
    objectives: Vec<Objective>,
    model: &'a PerfModel,
    scorer: Mutex<Scorer<'a>>,
}

fn evaluate_one(problem: &GoldenProblem<'_>, genotype: &Genotype) -> Result<Evaluation> {
    let parent = problem.space.to_parent(genotype)?;
    let scorer = problem
        .scorer
        .lock()
        .map_err(|_| GoldenNasError::invalid("scorer", "poisoned by an earlier panic"))?;
    let est = AccuracyEstimator::new(
        &scorer.supernet,
        scorer.train,
        scorer.val,
        scorer.norm.clone(),
        scorer.calib_batches,
        256,
    )?;
    let top1 = est.estimate(&parent)? * 100.0;
    let latency = problem
        .model
        .predict(&scorer.supernet.space().decode(&parent)?);
    Ok(Evaluation::feasible(vec![top1, latency]))
}

impl Problem for GoldenProblem<'_> {
    fn name(&self) -> &str {
        "goldennas"
    }

    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }

    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }

    fn evaluate(&self, genotype: &Genotype) -> dynas_search::Result<Evaluation> {
        evaluate_one(self, genotype).map_err(|e| SearchError::invalid("evaluation", e.to_string()))
    }

    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<dynas_search::Result<Evaluation>> {
        genotypes.iter().map(|g| self.evaluate(g)).collect()
    }
}

/// Runs NSGA-II over `set` on `supernet` (validation top-1 on `val`, recalibrated on
/// `train`) against `model`'s latency; returns the supernet (moved into the search, whose
/// problem must be shareable between threads) and the GoldenNets of the front.
pub fn evolve(
    supernet: Supernet,
    set: &ChoiceSet,
    model: &PerfModel,
    train: &Dataset,
    val: &Dataset,
    norm: &Normalization,
    config: &EvolveConfig,
) -> Result<(Supernet, EvolveOutcome)> {
    config.check()?;
    let space: MbConvSpace = supernet.space().clone();
    let problem = GoldenProblem {
        space: set.subspace(&space)?,
        objectives: vec![
            Objective::maximize("top1"),
            Objective::minimize("latency_ms"),
        ],
        model,
        scorer: Mutex::new(Scorer {
            supernet,
            train,
            val,
            norm,
            calib_batches: config.calib_batches,
        }),
    };
    let nsga = Nsga2::new(Nsga2Config {
        population: config.population,
        offspring: config.population,
        ..Nsga2Config::default()
    })?;
    let budget = Budget::evaluations(
        config
            .evaluations
            .min(usize::try_from(set.cardinality()).unwrap_or(usize::MAX)),
    )?;
    let result = Executor::new(&problem, nsga, budget)
        .seed(config.seed)
        .run()?;
    let mut front = Vec::with_capacity(result.front.points.len());
    for p in &result.front.points {
        let genotype = space.canonical(&problem.space.to_parent(&p.genotype)?)?;
        let net = space.decode(&genotype)?;
        front.push(GoldenNet {
            description: space.describe(&genotype)?,
            genotype,
            top1: p.values[0],
            latency_ms: p.values[1],
            macs: net.macs(),
        });
    }
    front.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
    let outcome = EvolveOutcome {
        front,
        evaluations: result.archive.len(),
        seconds: result.elapsed.as_secs_f64(),
    };
    drop(result);
    let supernet = problem
        .scorer
        .into_inner()
        .map_err(|_| GoldenNasError::invalid("scorer", "poisoned by an earlier panic"))?
        .supernet;
    Ok((supernet, outcome))
}
