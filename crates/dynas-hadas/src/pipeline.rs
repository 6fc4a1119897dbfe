//! HADAS end to end on a trained supernet: the bi-level search (outer NSGA-II over backbones
//! scored by the supernet, inner search over exit subsets and clocks with heads trained per
//! backbone), the resulting [`Deployment`], and a report on the **test** split against the
//! conventional dynamic network (the largest subnet with exits calibrated to the same accuracy
//! budget, at the board's highest clocks), with the energy saving split into backbone, exits
//! and DVFS.

use std::path::PathBuf;

use dynas_cost::{CostModel, DeviceProfile, OperatingPoint};
use dynas_exits::{ConfidenceMeasure, ExitCosts, ThresholdCalibration};
use dynas_search::{
    Budget, DeployedExit, Deployment, Executor, HardwareProblem, Metric, Nsga2Config, Observer,
    ParetoFront, Provenance, Strategy, Surrogate, SurrogateConfig, SurrogateParams,
};
use dynas_space::{Genotype, MbConvSpace, SearchSpace};
use serde::{Deserialize, Serialize};

use dynas_supernet::{Result, SupernetError};

use crate::search::{DynamicBackbones, DynamicEvaluator, ExitsEvaluator, Hadas, HadasConfig};
use crate::worker::{SupernetAccuracy, SupernetExits, SupernetWorker};

/// The outer search over backbones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OuterStrategy {
    /// Surrogate-assisted search ([`dynas_search::Surrogate`]) over backbones scored by their
    /// best dynamic configuration ([`crate::DynamicBackbones`]): every evaluated
    /// backbone gets its inner search, and few backbones are evaluated (the default: each
    /// evaluation trains exit heads).
    Surrogate,
    /// HADAS's original scheme: NSGA-II over static backbones, the inner search run for the top
    /// fraction of each generation and written back ([`crate::Hadas`]).
    Nsga2,
}

/// Hyper-parameters of a HADAS run (see [`HadasParams::check`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HadasParams {
    /// The outer search (surrogate).
    pub outer: OuterStrategy,
    /// Distinct backbones the surrogate outer search evaluates (24).
    pub outer_budget: usize,
    /// Outer NSGA-II population (16).
    pub outer_population: usize,
    /// Outer generations after the initial population (4).
    pub outer_generations: usize,
    /// Fraction of each outer population whose exits and clocks are optimised (0.25).
    pub top_fraction: f64,
    /// Inner NSGA-II population (12).
    pub inner_population: usize,
    /// Inner generations (6).
    pub inner_generations: usize,
    /// Accuracy budget of threshold calibration: at most this drop (fraction; 0.005 = half a
    /// point) below the backbone's final classifier.
    pub max_accuracy_drop: f64,
    /// Error tolerance (points) of the write-back of dynamic results to the outer search.
    pub error_tolerance: f64,
    /// Seed (0).
    pub seed: u64,
    /// Evaluate the space's largest backbone first ([`dynas_search::Executor::warm_start`]), so
    /// that the search always holds the baseline's backbone and a point at its accuracy (true).
    pub start_from_largest: bool,
    /// Latency bound of the comparison with the baseline: the reported point is the
    /// lowest-energy one whose validation top-1 is at least the baseline's and whose expected
    /// latency is at most this multiple of the baseline's (1.0: no slower; `inf`: unbounded).
    #[serde(default = "no_slower")]
    pub max_latency_ratio: f64,
}

impl Default for HadasParams {
    fn default() -> Self {
        Self {
            outer: OuterStrategy::Surrogate,
            outer_budget: 24,
            outer_population: 16,
            outer_generations: 4,
            top_fraction: 0.25,
            inner_population: 12,
            inner_generations: 6,
            max_accuracy_drop: 0.005,
            error_tolerance: 0.5,
            seed: 0,
            start_from_largest: true,
            max_latency_ratio: 1.0,
        }
    }
}

fn no_slower() -> f64 {
    1.0
}

/// [`HadasParams`] that passed [`HadasParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedHadasParams {
    params: HadasParams,
    config: HadasConfig,
    calibration: ThresholdCalibration,
    surrogate: SurrogateConfig,
}

impl CheckedHadasParams {
    /// The parameters.
    pub fn params(&self) -> &HadasParams {
        &self.params
    }
}

impl HadasParams {
    /// The largest population, outer or inner (every member is held in memory).
    pub const MAX_POPULATION: usize = 100_000;
    /// The most generations, outer or inner, and the largest outer budget.
    pub const MAX_GENERATIONS: usize = 1_000_000;

    /// Validates every field.
    pub fn check(self) -> Result<CheckedHadasParams> {
        for (name, value) in [
            ("outer_population", self.outer_population),
            ("inner_population", self.inner_population),
        ] {
            if !(2..=Self::MAX_POPULATION).contains(&value) {
                return Err(SupernetError::invalid(
                    name,
                    format!("must be in 2..={}, got {value}", Self::MAX_POPULATION),
                ));
            }
        }
        if self.inner_generations == 0 || self.inner_generations > Self::MAX_GENERATIONS {
            return Err(SupernetError::invalid(
                "inner_generations",
                format!(
                    "must be in 1..={}, got {}",
                    Self::MAX_GENERATIONS,
                    self.inner_generations
                ),
            ));
        }
        // The initial population and then `outer_generations` more.
        if self.outer_generations >= Self::MAX_GENERATIONS {
            return Err(SupernetError::invalid(
                "outer_generations",
                format!(
                    "must be in 0..={}, got {}",
                    Self::MAX_GENERATIONS - 1,
                    self.outer_generations
                ),
            ));
        }
        if self.outer_budget > Self::MAX_GENERATIONS {
            return Err(SupernetError::invalid(
                "outer_budget",
                format!(
                    "must be in 2..={}, got {}",
                    Self::MAX_GENERATIONS,
                    self.outer_budget
                ),
            ));
        }
        if self.max_latency_ratio.is_nan() || self.max_latency_ratio <= 0.0 {
            return Err(SupernetError::invalid(
                "max_latency_ratio",
                format!(
                    "must be positive (inf: unbounded), got {}",
                    self.max_latency_ratio
                ),
            ));
        }
        if !(self.error_tolerance.is_finite() && self.error_tolerance >= 0.0) {
            return Err(SupernetError::invalid(
                "error_tolerance",
                "must be finite and >= 0",
            ));
        }
        let calibration =
            ThresholdCalibration::new(self.max_accuracy_drop, ConfidenceMeasure::MaxSoftmax, 32)
                .map_err(|e| SupernetError::invalid("max_accuracy_drop", e.to_string()))?;
        let config = HadasConfig {
            outer: Nsga2Config {
                population: self.outer_population,
                offspring: self.outer_population,
                ..Nsga2Config::default()
            },
            top_fraction: self.top_fraction,
            inner: Nsga2Config {
                population: self.inner_population,
                offspring: self.inner_population,
                ..Nsga2Config::default()
            },
            inner_generations: self.inner_generations,
            error_tolerance: self.error_tolerance,
        };
        if !(self.top_fraction > 0.0 && self.top_fraction <= 1.0) {
            return Err(SupernetError::invalid("top_fraction", "must be in (0, 1]"));
        }
        for (name, nsga) in [("outer", &config.outer), ("inner", &config.inner)] {
            nsga.validate()
                .map_err(|e| SupernetError::invalid("nsga2", format!("{name}: {e}")))?;
        }
        if self.outer_budget < 2 {
            return Err(SupernetError::invalid("outer_budget", "must be at least 2"));
        }
        // A space-filling start of a third of the budget, then small batches between refits.
        let surrogate = SurrogateParams {
            initial: (self.outer_budget / 3).max(2),
            batch: 4.min(self.outer_budget),
            ..SurrogateParams::default()
        }
        .check()
        .map_err(|e| SupernetError::invalid("surrogate", e.to_string()))?;
        Ok(CheckedHadasParams {
            params: self,
            config,
            calibration,
            surrogate,
        })
    }
}

/// One configuration judged on the test split: top-1 with its exits as deployed, and its
/// expected latency and energy weighted by where test inputs left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestedConfiguration {
    /// What it is (`"static largest"`, `"baseline"`, `"hadas #3"`, ...).
    pub label: String,
    /// The backbone.
    pub genotype: Genotype,
    /// Its exits (empty: none).
    pub exits: Vec<DeployedExit>,
    /// The operating point.
    pub point: OperatingPoint,
    /// Test top-1 (%).
    pub test_top1: f64,
    /// Expected latency per inference (ms), from the cost model and the test exit rates.
    pub latency_ms: f64,
    /// Expected energy per inference (mJ), from the cost model and the test exit rates.
    pub energy_mj: f64,
}

/// Energy of the best HADAS point split into what its backbone, its exits and its clocks save,
/// each step taken from the previous one (all at test exit rates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    /// The largest subnet, no exits, highest clocks.
    pub static_largest: TestedConfiguration,
    /// The chosen backbone, no exits, highest clocks.
    pub backbone: TestedConfiguration,
    /// The chosen backbone with its exits, highest clocks.
    pub backbone_exits: TestedConfiguration,
    /// The chosen backbone with its exits at its operating point (the HADAS point).
    pub backbone_exits_dvfs: TestedConfiguration,
}

/// What a configuration is expected to do on the validation split (where choices are made).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationFigures {
    /// Exit-rate-weighted validation top-1 (%).
    pub top1: f64,
    /// Expected latency per inference (ms) at validation exit rates.
    pub latency_ms: f64,
    /// Expected energy per inference (mJ) at validation exit rates.
    pub energy_mj: f64,
}

/// What a HADAS run found: the point is **chosen on the validation split** and **reported on
/// the test split**.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HadasReport {
    /// The conventional dynamic network: the largest subnet with every admissible exit offered
    /// to the same threshold calibration, at the highest clocks (test split).
    pub baseline: TestedConfiguration,
    /// The baseline on the validation split.
    pub baseline_validation: ValidationFigures,
    /// The static network: the largest subnet without exits at the highest clocks (test).
    pub static_largest: TestedConfiguration,
    /// Every deployed point (test split).
    pub points: Vec<TestedConfiguration>,
    /// The rule `best` was chosen by.
    pub selection: String,
    /// Index into `points` of the lowest-energy point, on validation, whose validation top-1 is
    /// at least the baseline's and whose expected latency is at most
    /// [`HadasParams::max_latency_ratio`] times the baseline's, if any.
    pub best: Option<usize>,
    /// Energy saving of `best` against the baseline on the test split, in percent.
    pub best_energy_saving_pct: Option<f64>,
    /// Test top-1 of `best` minus the baseline's, points (may be negative: it was chosen on
    /// validation).
    pub best_test_top1_delta: Option<f64>,
    /// Test latency of `best` over the baseline's.
    pub best_latency_ratio: Option<f64>,
    /// What is measured and what is modelled in these figures.
    pub provenance: Vec<String>,
    /// The saving of `best` split into backbone, exits and DVFS.
    pub ablation: Option<Ablation>,
    /// Distinct backbones scored by the outer search.
    pub outer_evaluations: usize,
    /// Inner evaluations (exit subset x clocks).
    pub inner_evaluations: usize,
}

/// Everything a run produces.
pub struct HadasOutcome {
    /// The dynamic front as a deployment.
    pub deployment: Deployment,
    /// The outer search's front over backbones: with [`OuterStrategy::Surrogate`], each
    /// backbone's best dynamic (error, latency, energy); with [`OuterStrategy::Nsga2`], the
    /// static objectives at the highest clocks.
    pub outer_front: ParetoFront,
    /// The test-split report.
    pub report: HadasReport,
}

/// Where the search keeps its checkpoint, and observers to attach.
#[derive(Default)]
pub struct RunOptions {
    /// Checkpoint file (resumed when it exists and matches; a run with a larger budget extends
    /// the saved search).
    pub checkpoint: Option<PathBuf>,
    /// Start a new search over an existing checkpoint instead of resuming it.
    pub overwrite_checkpoint: bool,
    /// How the user starts over when the checkpoint does not match (e.g. a command-line flag),
    /// named in the error; see [`Executor::mismatch_hint`].
    pub mismatch_hint: Option<String>,
    /// Observers of the outer search (progress, logs).
    pub observers: Vec<Box<dyn Observer>>,
}

/// Runs HADAS on `worker`'s supernet over `space`, costing networks with `cost` on `device`;
/// `cost_source` says what the cost model is (it labels the deployment's figures).
pub fn run_hadas<C: CostModel + Clone + 'static>(
    worker: &SupernetWorker,
    space: &MbConvSpace,
    cost: C,
    device: DeviceProfile,
    cost_source: Provenance,
    params: &CheckedHadasParams,
    options: RunOptions,
) -> Result<HadasOutcome> {
    let search =
        |e: dynas_search::SearchError| SupernetError::invalid("hadas search", e.to_string());
    let max_point = device.max_operating_point();
    let backbones = HardwareProblem::new(
        space.clone(),
        SupernetAccuracy::new(worker),
        cost.clone(),
        max_point.clone(),
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )
    .map_err(search)?;
    let evaluator = ExitsEvaluator::new(
        space.clone(),
        SupernetExits::new(worker),
        worker.head(),
        cost.clone(),
        device.clone(),
    )
    .with_calibration(params.calibration);
    let accuracy_source = Provenance::measured(format!(
        "supernet validation split of {} images: thresholds calibrated on the even samples, \
         exit-rate-weighted top-1 on the odd samples",
        worker.validation_samples()
    ));
    let seed = params.params.seed;
    let warm_start = if params.params.start_from_largest {
        vec![space.largest()]
    } else {
        Vec::new()
    };
    let (deployment, outer_front, outer_evaluations, inner_evaluations) = match params.params.outer
    {
        OuterStrategy::Nsga2 => {
            let hadas = Hadas::new(params.config.clone(), &evaluator).map_err(search)?;
            let budget =
                Budget::generations(params.params.outer_generations + 1).map_err(search)?;
            let result = run_executor(&backbones, hadas, budget, seed, warm_start, options)?;
            let deployment = result
                .state
                .deployment(space, Some(device.clone()), accuracy_source, cost_source)
                .map_err(search)?;
            let inner = result.state.inner_evaluations;
            (deployment, result.front, result.archive.len(), inner)
        }
        OuterStrategy::Surrogate => {
            let problem =
                DynamicBackbones::new(space.clone(), &evaluator, params.config.clone(), seed)
                    .map_err(search)?;
            let budget = Budget::evaluations(params.params.outer_budget).map_err(search)?;
            let surrogate = resumed_surrogate(&params.surrogate, &options)?;
            let strategy = Surrogate::new(surrogate);
            let fingerprinted = Fingerprinted {
                inner: &problem,
                fingerprint: worker.fingerprint().to_string(),
            };
            let result = run_executor(&fingerprinted, strategy, budget, seed, warm_start, options)?;
            let front: Vec<Genotype> = result
                .front
                .points
                .iter()
                .map(|p| p.genotype.clone())
                .collect();
            let deployment = problem
                .deployment(&front, Some(device.clone()), accuracy_source, cost_source)
                .map_err(search)?;
            let evaluations = result.archive.len();
            (
                deployment,
                result.front,
                evaluations,
                problem.inner_evaluations(),
            )
        }
    };

    // Judge on the test split.
    let tester = Tester {
        worker,
        space,
        cost: &cost,
        head: worker.head(),
    };
    let largest = space.largest();
    let baseline_exits: Vec<usize> =
        (0..evaluator.exit_positions(&largest).map_err(search)?).collect();
    let baseline_deployed = evaluator
        .deployed_exits(&largest, &baseline_exits, &max_point)
        .map_err(search)?;
    let baseline = tester.test("baseline", &largest, &baseline_deployed, &max_point)?;
    let on_validation = evaluator
        .evaluate(&largest, &baseline_exits, &max_point)
        .map_err(search)?;
    let baseline_validation = ValidationFigures {
        top1: 100.0 - on_validation.error,
        latency_ms: on_validation.latency_ms,
        energy_mj: on_validation.energy_mj,
    };
    let mut points = Vec::with_capacity(deployment.points.len());
    for (i, p) in deployment.points.iter().enumerate() {
        points.push(tester.test(&format!("hadas #{i}"), &p.genotype, &p.exits, &p.point)?);
    }
    // Chosen on validation (the deployment's figures), never on test.
    let ratio = params.params.max_latency_ratio;
    let best = deployment
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            dynas_search::within_tolerance(baseline_validation.top1 - p.metrics.top1, 0.0)
                && p.metrics.latency_ms <= ratio * baseline_validation.latency_ms * (1.0 + 1e-12)
        })
        .filter_map(|(i, p)| p.metrics.energy_mj.map(|e| (i, e)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i);
    let static_largest = tester.test("static largest", &largest, &[], &max_point)?;
    let ablation = match best {
        Some(i) => {
            let p = &points[i];
            Some(Ablation {
                static_largest: static_largest.clone(),
                backbone: tester.test("backbone", &p.genotype, &[], &max_point)?,
                backbone_exits: tester.test(
                    "backbone + exits",
                    &p.genotype,
                    &p.exits,
                    &max_point,
                )?,
                backbone_exits_dvfs: p.clone(),
            })
        }
        None => None,
    };
    let report = HadasReport {
        best_energy_saving_pct: best
            .map(|i| 100.0 * (1.0 - points[i].energy_mj / baseline.energy_mj)),
        best_test_top1_delta: best.map(|i| points[i].test_top1 - baseline.test_top1),
        best_latency_ratio: best.map(|i| points[i].latency_ms / baseline.latency_ms),
        selection: format!(
            "lowest validation energy among points with validation top-1 >= the baseline's \
             ({:.2} %) and expected latency <= {ratio} x the baseline's ({:.3} ms)",
            baseline_validation.top1, baseline_validation.latency_ms
        ),
        provenance: provenance_notes(),
        baseline,
        baseline_validation,
        static_largest,
        points,
        best,
        ablation,
        outer_evaluations,
        inner_evaluations,
    };
    Ok(HadasOutcome {
        deployment,
        outer_front,
        report,
    })
}

/// What the report's figures rest on.
fn provenance_notes() -> Vec<String> {
    vec![
        "top-1: measured on the Fashion-MNIST validation split (choice) and test split (report)"
            .into(),
        "exit rates: measured on the same splits with the calibrated thresholds".into(),
        "latency and energy: modelled, the measured Jetson AGX Xavier per-layer lookup table at \
         the highest clocks scaled to each operating point by latency and power laws fitted on \
         the measured Jetson TX2 GPU clock sweeps (dynas_cost::DvfsLutModel)"
            .into(),
        "rail assumption: only the GPU rail was measured across clocks; the CPU and memory rails \
         are assumed to follow the GPU rail's fitted clock curve"
            .into(),
    ]
}

fn run_executor<S: Strategy>(
    problem: &dyn dynas_search::Problem,
    strategy: S,
    budget: Budget,
    seed: u64,
    warm_start: Vec<Genotype>,
    options: RunOptions,
) -> Result<dynas_search::SearchResult<S::State>> {
    let search =
        |e: dynas_search::SearchError| SupernetError::invalid("hadas search", e.to_string());
    let mut executor = Executor::new(problem, strategy, budget)
        .seed(seed)
        .warm_start(warm_start);
    for o in options.observers {
        executor = executor.observe(BoxedObserver(o));
    }
    if let Some(path) = &options.checkpoint {
        executor = executor.checkpoint(path, 1).map_err(search)?;
        if options.overwrite_checkpoint {
            executor = executor.overwrite_checkpoint();
        }
        if let Some(hint) = options.mismatch_hint {
            executor = executor.mismatch_hint(hint);
        }
    }
    executor.run().map_err(search)
}

/// The surrogate configuration to run: `planned`, or, when the checkpoint holds a surrogate
/// search whose configuration differs only in what follows the budget (the initial design and
/// the batch), the saved one, so that a search resumed with a larger budget extends the saved
/// search instead of being refused (the budget is not part of a search's identity).
fn resumed_surrogate(planned: &SurrogateConfig, options: &RunOptions) -> Result<SurrogateConfig> {
    let Some(path) = options
        .checkpoint
        .as_ref()
        .filter(|_| !options.overwrite_checkpoint)
    else {
        return Ok(planned.clone());
    };
    let saved = dynas_search::executor::checkpoint_strategy(path)
        .map_err(|e| SupernetError::invalid("hadas checkpoint", e.to_string()))?;
    let Some((name, config)) = saved else {
        return Ok(planned.clone());
    };
    let Ok(saved) = serde_json::from_value::<SurrogateParams>(config) else {
        return Ok(planned.clone());
    };
    let ours = planned.params();
    let same_but_budget = SurrogateParams {
        initial: ours.initial,
        batch: ours.batch,
        ..saved.clone()
    } == *ours;
    if name == "surrogate" && same_but_budget {
        saved
            .check()
            .map_err(|e| SupernetError::invalid("hadas checkpoint", e.to_string()))
    } else {
        Ok(planned.clone())
    }
}

/// A problem with a fingerprint (the supernet's and the data's) that the wrapped one lacks, so
/// that its checkpoints are refused on another supernet or other data.
struct Fingerprinted<'a> {
    inner: &'a dyn dynas_search::Problem,
    fingerprint: String,
}

impl dynas_search::Problem for Fingerprinted<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn space(&self) -> &dyn SearchSpace {
        self.inner.space()
    }
    fn objectives(&self) -> &[dynas_search::Objective] {
        self.inner.objectives()
    }
    fn evaluate(&self, genotype: &Genotype) -> dynas_search::Result<dynas_search::Evaluation> {
        self.inner.evaluate(genotype)
    }
    fn precheck(&self, genotype: &Genotype) -> dynas_search::Result<bool> {
        self.inner.precheck(genotype)
    }
    fn evaluate_batch(
        &self,
        genotypes: &[Genotype],
    ) -> Vec<dynas_search::Result<dynas_search::Evaluation>> {
        self.inner.evaluate_batch(genotypes)
    }
    fn fingerprint(&self) -> Option<String> {
        let inner = self.inner.fingerprint();
        Some(match inner {
            Some(f) if f != self.fingerprint => format!("{}; problem={f}", self.fingerprint),
            _ => self.fingerprint.clone(),
        })
    }
    fn label(&self, genotype: &Genotype) -> Option<String> {
        self.inner.label(genotype)
    }
}

/// Forwards to a boxed observer (the executor takes observers by value).
struct BoxedObserver(Box<dyn Observer>);

impl Observer for BoxedObserver {
    fn on_event(
        &mut self,
        event: &dynas_search::Event<'_>,
    ) -> dynas_search::Result<dynas_search::Control> {
        self.0.on_event(event)
    }
}

struct Tester<'a, C> {
    worker: &'a SupernetWorker,
    space: &'a MbConvSpace,
    cost: &'a C,
    head: dynas_exits::ExitHead,
}

impl<C: CostModel> Tester<'_, C> {
    fn test(
        &self,
        label: &str,
        genotype: &Genotype,
        exits: &[DeployedExit],
        point: &OperatingPoint,
    ) -> Result<TestedConfiguration> {
        let outcome = self.worker.test_outcome(genotype, exits)?;
        let table = self.worker.exit_table(genotype)?;
        let network = self.space.decode(genotype)?;
        let invalid =
            |e: dynas_exits::ExitError| SupernetError::invalid("test cost", e.to_string());
        let costs = ExitCosts::compute(&network, table.positions(), &self.head, self.cost, point)
            .map_err(invalid)?;
        let expected = outcome.statistics.expected_cost(&costs).map_err(invalid)?;
        let energy_mj = expected.energy_mj.ok_or_else(|| {
            SupernetError::invalid(
                "cost model",
                format!("`{}` gives no energy", self.cost.name()),
            )
        })?;
        Ok(TestedConfiguration {
            label: label.to_string(),
            genotype: genotype.clone(),
            exits: exits.to_vec(),
            point: point.clone(),
            test_top1: outcome.top1,
            latency_ms: expected.latency_ms,
            energy_mj,
        })
    }
}
