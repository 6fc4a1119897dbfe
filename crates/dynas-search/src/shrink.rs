//! GoldenNAS-style progressive space shrinking: on a schedule of stages, sample architectures
//! of the current space, score every choice of every dimension by the mean objective vector of
//! the sampled architectures that use it (e.g. sampled accuracy vs predicted cost on the target
//! device), drop the choices whose score is Pareto-dominated by another choice of the same
//! dimension, and finally run any [`Strategy`] on the space that is left.

use std::collections::HashMap;

use dynas_space::{Dimension, Genotype, Network, SearchSpace, seeded_rng};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Budget, Executor, SearchResult, Strategy};
use crate::pareto::{ParetoFront, dominates};
use crate::problem::{Evaluation, Objective, Problem};

/// A space restricted to some choices of each dimension of a parent space.
pub struct Subspace<'a> {
    parent: &'a dyn SearchSpace,
    name: String,
    dimensions: Vec<Dimension>,
    allowed: Vec<Vec<usize>>,
}

impl<'a> Subspace<'a> {
    /// The sub-space keeping `allowed[d]` (parent indices, ascending, non-empty) of dimension `d`.
    pub fn new(parent: &'a dyn SearchSpace, allowed: Vec<Vec<usize>>) -> Result<Self> {
        let dims = parent.dimensions();
        if allowed.len() != dims.len() {
            return Err(SearchError::invalid(
                "allowed choices",
                format!("{} lists for {} dimensions", allowed.len(), dims.len()),
            ));
        }
        let mut dimensions = Vec::with_capacity(dims.len());
        for (d, keep) in dims.iter().zip(&allowed) {
            if keep.is_empty() || keep.iter().any(|&i| i >= d.len()) {
                return Err(SearchError::invalid(
                    "allowed choices",
                    format!(
                        "dimension `{}` needs 1..{} valid choices",
                        d.name(),
                        d.len()
                    ),
                ));
            }
            dimensions.push(Dimension::new(
                d.name(),
                keep.iter().map(|&i| d.labels()[i].clone()).collect(),
            )?);
        }
        Ok(Self {
            parent,
            name: format!("{}-shrunk", parent.name()),
            dimensions,
            allowed,
        })
    }

    /// The parent genotype of a sub-space genotype.
    pub fn to_parent(&self, genotype: &Genotype) -> Result<Genotype> {
        self.validate(genotype)?;
        Ok(Genotype::new(
            genotype
                .genes()
                .iter()
                .zip(&self.allowed)
                .map(|(&g, keep)| keep[g])
                .collect(),
        ))
    }
}

impl SearchSpace for Subspace<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }
    fn decode(&self, genotype: &Genotype) -> dynas_space::Result<Network> {
        let parent = self
            .to_parent(genotype)
            .map_err(|e| dynas_space::SpaceError::InvalidSpace(e.to_string()))?;
        self.parent.decode(&parent)
    }
}

/// A problem seen through a [`Subspace`].
pub struct SubProblem<'a> {
    inner: &'a dyn Problem,
    space: Subspace<'a>,
}

impl Problem for SubProblem<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        self.inner.objectives()
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        self.inner.precheck(&self.space.to_parent(genotype)?)
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        self.inner.evaluate(&self.space.to_parent(genotype)?)
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        let parents: Vec<Result<Genotype>> =
            genotypes.iter().map(|g| self.space.to_parent(g)).collect();
        let ok: Vec<Genotype> = parents
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut results = self.inner.evaluate_batch(&ok).into_iter();
        parents
            .into_iter()
            .map(|p| match p {
                Ok(_) => results
                    .next()
                    .unwrap_or_else(|| Err(SearchError::invalid("batch", "result missing"))),
                Err(e) => Err(e),
            })
            .collect()
    }
}

/// Validated shrinking schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrinkConfig {
    /// Number of shrinking stages.
    pub stages: usize,
    /// Architectures sampled (uniformly, distinct) at each stage.
    pub samples_per_stage: usize,
    /// A choice seen in fewer sampled architectures than this is never dropped.
    pub min_samples_per_choice: usize,
}

impl Default for ShrinkConfig {
    fn default() -> Self {
        Self {
            stages: 3,
            samples_per_stage: 100,
            min_samples_per_choice: 5,
        }
    }
}

/// The space left after one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage number (1-based).
    pub stage: usize,
    /// Labels of the choices left in each dimension.
    pub choices: Vec<Vec<String>>,
    /// Number of architectures left.
    pub cardinality: u128,
    /// `dimension=label` of the choices dropped at this stage.
    pub dropped: Vec<String>,
    /// Distinct architectures evaluated so far by the shrinking.
    pub evaluations: usize,
}

/// The outcome of a shrink-then-search run.
#[derive(Debug)]
pub struct ShrinkResult<T> {
    /// The space left after each stage.
    pub stages: Vec<StageReport>,
    /// Choices kept per dimension (parent indices).
    pub allowed: Vec<Vec<usize>>,
    /// The wrapped strategy's search on the final space (genotypes of the sub-space).
    pub search: SearchResult<T>,
    /// The Pareto front of the final search, in parent-space genotypes.
    pub front: ParetoFront,
}

/// GoldenNAS progressive shrinking around any strategy.
#[derive(Clone, Debug)]
pub struct ProgressiveShrinking {
    config: ShrinkConfig,
}

impl ProgressiveShrinking {
    /// Shrinking with a validated schedule.
    pub fn new(config: ShrinkConfig) -> Result<Self> {
        if config.samples_per_stage == 0 {
            return Err(SearchError::invalid(
                "samples per stage",
                "must be at least 1",
            ));
        }
        if config.min_samples_per_choice == 0 {
            return Err(SearchError::invalid(
                "min samples per choice",
                "must be at least 1",
            ));
        }
        Ok(Self { config })
    }

    /// Shrinks `problem`'s space on the schedule, then runs `strategy` on what is left under
    /// `budget` (the shrinking's own evaluations are not part of it).
    pub fn run<S: Strategy>(
        &self,
        problem: &dyn Problem,
        strategy: S,
        budget: Budget,
        seed: u64,
    ) -> Result<ShrinkResult<S::State>> {
        let parent = problem.space();
        let objectives = problem.objectives().to_vec();
        let mut allowed: Vec<Vec<usize>> = parent
            .dimensions()
            .iter()
            .map(|d| (0..d.len()).collect())
            .collect();
        let mut rng = seeded_rng(seed);
        let mut seen: HashMap<Genotype, Evaluation> = HashMap::new();
        let mut order: Vec<Genotype> = Vec::new();
        let mut stages = Vec::with_capacity(self.config.stages);
        for stage in 1..=self.config.stages {
            let sub = Subspace::new(parent, allowed.clone())?;
            let remaining = sub.cardinality();
            let mut batch = Vec::new();
            let mut draws = 0usize;
            while batch.len() < self.config.samples_per_stage
                && (batch.len() as u128) < remaining
                && draws < self.config.samples_per_stage * 100
            {
                draws += 1;
                let g = sub.to_parent(&sub.sample(&mut rng))?;
                if !seen.contains_key(&g) && !batch.contains(&g) {
                    batch.push(g);
                }
            }
            for (g, r) in batch.iter().zip(problem.evaluate_batch(&batch)) {
                seen.insert(g.clone(), r?);
                order.push(g.clone());
            }
            // Score each choice by the mean objective vector of feasible samples in the space.
            let in_space: Vec<(&Genotype, Vec<f64>)> = order
                .iter()
                .filter(|g| {
                    g.genes()
                        .iter()
                        .zip(&allowed)
                        .all(|(v, keep)| keep.contains(v))
                })
                .filter_map(|g| {
                    let e = &seen[g];
                    (e.is_feasible() && e.values.iter().all(|v| v.is_finite()))
                        .then(|| (g, e.minimised(&objectives)))
                })
                .collect();
            let mut dropped = Vec::new();
            for (d, keep) in allowed.iter_mut().enumerate() {
                let scores: Vec<Option<Vec<f64>>> = keep
                    .iter()
                    .map(|&c| {
                        let rows: Vec<&Vec<f64>> = in_space
                            .iter()
                            .filter(|(g, _)| g.genes()[d] == c)
                            .map(|(_, f)| f)
                            .collect();
                        (rows.len() >= self.config.min_samples_per_choice).then(|| {
                            (0..objectives.len())
                                .map(|k| rows.iter().map(|r| r[k]).sum::<f64>() / rows.len() as f64)
                                .collect()
                        })
                    })
                    .collect();
                let beaten: Vec<bool> = scores
                    .iter()
                    .map(|s| {
                        s.as_ref()
                            .is_some_and(|s| scores.iter().flatten().any(|o| dominates(o, s)))
                    })
                    .collect();
                if beaten.iter().all(|&b| b) {
                    continue;
                }
                let dim = &parent.dimensions()[d];
                for (&c, &b) in keep.iter().zip(&beaten) {
                    if b {
                        dropped.push(format!("{}={}", dim.name(), dim.labels()[c]));
                    }
                }
                let mut i = 0;
                keep.retain(|_| {
                    let k = !beaten[i];
                    i += 1;
                    k
                });
            }
            let sub = Subspace::new(parent, allowed.clone())?;
            stages.push(StageReport {
                stage,
                choices: sub
                    .dimensions()
                    .iter()
                    .map(|d| d.labels().to_vec())
                    .collect(),
                cardinality: sub.cardinality(),
                dropped,
                evaluations: order.len(),
            });
        }
        let sub_problem = SubProblem {
            inner: problem,
            space: Subspace::new(parent, allowed.clone())?,
        };
        let search = Executor::new(&sub_problem, strategy, budget)
            .seed(seed)
            .run()?;
        let mut front = search.front.clone();
        for p in &mut front.points {
            p.genotype = sub_problem.space.to_parent(&p.genotype)?;
        }
        Ok(ShrinkResult {
            stages,
            allowed,
            search,
            front,
        })
    }
}
