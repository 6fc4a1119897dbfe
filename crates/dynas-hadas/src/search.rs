//! HADAS bi-level search (Bouzidi et al., 2023): an outer NSGA-II over backbones and, for the
//! best backbones of each generation, an inner NSGA-II over early-exit positions and DVFS
//! operating points. The inner front's best trade-off is written back to the backbone so that
//! the outer search ranks backbones by what they achieve *dynamically*.
//!
//! The inner problem is defined by the [`DynamicEvaluator`] trait (exit positions of a backbone,
//! the device's clocks, and error / latency / energy of a backbone with a set of exits at an
//! operating point), so it can be backed by `dynas-exits` accounting with any DVFS-aware
//! `CostModel`, or by a simple stand-in in tests.

use dynas_cost::{DeviceProfile, OperatingPoint};
use dynas_space::{Dimension, Genotype, SearchSpace};
use rand::Rng;
use serde::{Deserialize, Serialize};

use dynas_core::pareto::non_dominated;
use dynas_core::{DeployedExit, DeployedMetrics, Deployment, DeploymentPoint, Provenance};
use dynas_core::{Direction, Evaluation, Objective};
use dynas_search::Problem;
use dynas_search::nsga2::{Nsga2, Nsga2Config, Nsga2State, rank_and_crowding_survival};
use dynas_search::table::TableSpace;
use dynas_search::{Budget, Context, Executor, Step, Strategy};
use dynas_search::{Result, SearchError};

mod exits;
pub use exits::{ExitSource, ExitsEvaluator};

/// Error, latency and energy of a dynamic (early-exit, DVFS) configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicMetrics {
    /// Error in the units of the outer problem's first objective (e.g. % top-1 error).
    pub error: f64,
    /// Expected latency per inference (ms).
    pub latency_ms: f64,
    /// Expected energy per inference (mJ).
    pub energy_mj: f64,
}

impl DynamicMetrics {
    fn to_vec(self) -> Vec<f64> {
        vec![self.error, self.latency_ms, self.energy_mj]
    }
}

/// What the inner search evaluates: a backbone with exits at an operating point.
pub trait DynamicEvaluator: Send + Sync {
    /// Number of candidate exit positions of `backbone` (exit `i` sits after the `i`-th
    /// candidate layer; the final classifier is always there).
    fn exit_positions(&self, backbone: &Genotype) -> Result<usize>;

    /// The device whose clocks are searched.
    fn device(&self) -> &DeviceProfile;

    /// Metrics of `backbone` with exits at the sorted candidate positions `exits` (possibly
    /// none) at `point`.
    fn evaluate(
        &self,
        backbone: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<DynamicMetrics>;

    /// Operating points worth starting `backbone`'s inner search from, evaluated first and
    /// counted against its budget (e.g. the static backbone's lowest-energy point, found with
    /// a cheap cost model alone: a few dozen inner evaluations rarely find it among thousands
    /// of clock combinations). Default: none.
    fn seed_points(&self, backbone: &Genotype) -> Result<Vec<OperatingPoint>> {
        let _ = backbone;
        Ok(Vec::new())
    }

    /// The exits that `evaluate` actually uses for `exits` at `point`, with their calibrated
    /// thresholds and exit rates (exits whose threshold can never fire are left out). Evaluators
    /// without thresholds return an empty list (the default).
    fn deployed_exits(
        &self,
        backbone: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<Vec<DeployedExit>> {
        let _ = (backbone, exits, point);
        Ok(Vec::new())
    }
}

/// One dynamic configuration found by an inner search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicPoint {
    /// The backbone.
    pub backbone: Genotype,
    /// Chosen exit positions, ascending.
    pub exits: Vec<usize>,
    /// Chosen operating point.
    pub point: OperatingPoint,
    /// Its metrics.
    pub metrics: DynamicMetrics,
    /// The exits that fire, with calibrated thresholds (see
    /// [`DynamicEvaluator::deployed_exits`]).
    #[serde(default)]
    pub deployed_exits: Vec<DeployedExit>,
}

/// The inner problem of one backbone: one bit per exit position, one gene per controllable
/// clock; objectives error, latency, energy (all minimised).
pub struct InnerProblem<'a> {
    backbone: Genotype,
    evaluator: &'a dyn DynamicEvaluator,
    space: TableSpace,
    n_exits: usize,
    objectives: Vec<Objective>,
}

impl<'a> InnerProblem<'a> {
    /// The inner problem of `backbone`.
    pub fn new(backbone: Genotype, evaluator: &'a dyn DynamicEvaluator) -> Result<Self> {
        let n_exits = evaluator.exit_positions(&backbone)?;
        let device = evaluator.device();
        let mut dims = Vec::with_capacity(n_exits + 3);
        for i in 0..n_exits {
            dims.push(Dimension::new(
                format!("exit{i}"),
                vec!["off".into(), "on".into()],
            )?);
        }
        // One gene per controllable clock domain of the board, named domains included.
        for (domain, clocks) in device.controllable_domains() {
            dims.push(Dimension::from_values(domain.field(), clocks)?);
        }
        if dims.is_empty() {
            return Err(SearchError::invalid(
                "inner problem",
                "the backbone has no exit position and the device no clock to search",
            ));
        }
        Ok(Self {
            backbone,
            evaluator,
            space: TableSpace::new("hadas-inner", dims),
            n_exits,
            objectives: vec![
                Objective::minimize("error"),
                Objective::minimize("latency_ms"),
                Objective::minimize("energy_mj"),
            ],
        })
    }

    /// Exits and operating point of an inner genotype.
    pub fn decode(&self, genotype: &Genotype) -> Result<(Vec<usize>, OperatingPoint)> {
        self.space.validate(genotype)?;
        let genes = genotype.genes();
        let exits = (0..self.n_exits).filter(|&i| genes[i] == 1).collect();
        let device = self.evaluator.device();
        let clocks = device
            .controllable_domains()
            .into_iter()
            .zip(&genes[self.n_exits..])
            .map(|((domain, clocks), &gene)| (domain, clocks[gene]));
        Ok((exits, OperatingPoint::from_clocks(clocks)?))
    }

    /// The inner genotype of `exits` at `point` (`None` when a position or a clock is not in
    /// the device's lists).
    pub fn encode(&self, exits: &[usize], point: &OperatingPoint) -> Option<Genotype> {
        let mut genes = vec![0; self.n_exits];
        for &e in exits {
            *genes.get_mut(e)? = 1;
        }
        let device = self.evaluator.device();
        let domains = device.controllable_domains();
        if point
            .clocks()
            .any(|(d, _)| !domains.iter().any(|(k, _)| k == d))
        {
            return None;
        }
        for (domain, clocks) in domains {
            let value = point.hz(&domain);
            genes.push(clocks.iter().position(|&c| Some(c) == value)?);
        }
        Some(Genotype::new(genes))
    }
}

impl Problem for InnerProblem<'_> {
    fn name(&self) -> &str {
        "hadas-inner"
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        let (exits, point) = self.decode(genotype)?;
        let m = self.evaluator.evaluate(&self.backbone, &exits, &point)?;
        Ok(Evaluation::feasible(m.to_vec()))
    }
}

/// Validated HADAS hyper-parameters (defaults from the paper's code).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HadasConfig {
    /// Outer NSGA-II (population 64).
    pub outer: Nsga2Config,
    /// Fraction of each outer population sent to the inner search (0.15).
    pub top_fraction: f64,
    /// Inner NSGA-II (population 10).
    pub inner: Nsga2Config,
    /// Inner generations (5).
    pub inner_generations: usize,
    /// The backbone's objectives are replaced by those of its lowest-energy dynamic
    /// configuration whose error is at most the static error (the same evaluator with no exit,
    /// at the highest clocks) plus this tolerance, in error units (0.5: half a point).
    pub error_tolerance: f64,
}

impl Default for HadasConfig {
    fn default() -> Self {
        Self {
            outer: Nsga2Config {
                population: 64,
                offspring: 64,
                ..Nsga2Config::default()
            },
            top_fraction: 0.15,
            inner: Nsga2Config {
                population: 10,
                offspring: 10,
                ..Nsga2Config::default()
            },
            inner_generations: 5,
            error_tolerance: 0.5,
        }
    }
}

/// HADAS state: the outer population and every inner search's front.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HadasState {
    /// The outer NSGA-II population (objectives of optimised backbones written back).
    pub outer: Nsga2State,
    /// Inner fronts, one per optimised backbone, in optimisation order.
    pub inner: Vec<(Genotype, Vec<DynamicPoint>)>,
    /// Inner evaluations made (they do not count against the outer budget).
    pub inner_evaluations: usize,
}

impl HadasState {
    /// The dynamic front as a [`Deployment`] (points sorted by latency) of `space` on
    /// `device`; `accuracy_source` and `cost_source` say where the figures come from.
    pub fn deployment(
        &self,
        space: &dyn SearchSpace,
        device: Option<DeviceProfile>,
        accuracy_source: Provenance,
        cost_source: Provenance,
    ) -> Result<Deployment> {
        deployment_of(
            self.dynamic_front(),
            space,
            device,
            accuracy_source,
            cost_source,
        )
    }

    /// The non-dominated dynamic configurations over all inner searches.
    pub fn dynamic_front(&self) -> Vec<DynamicPoint> {
        non_dominated_points(&self.inner)
    }
}

fn non_dominated_points(inner: &[(Genotype, Vec<DynamicPoint>)]) -> Vec<DynamicPoint> {
    let all: Vec<&DynamicPoint> = inner.iter().flat_map(|(_, f)| f).collect();
    let f: Vec<Vec<f64>> = all.iter().map(|p| p.metrics.to_vec()).collect();
    non_dominated(&f)
        .into_iter()
        .map(|i| all[i].clone())
        .collect()
}

fn deployment_of(
    mut front: Vec<DynamicPoint>,
    space: &dyn SearchSpace,
    device: Option<DeviceProfile>,
    accuracy_source: Provenance,
    cost_source: Provenance,
) -> Result<Deployment> {
    front.sort_by(|a, b| a.metrics.latency_ms.total_cmp(&b.metrics.latency_ms));
    // Inner searches of different backbones can reach the same configuration; a deployment
    // holds each runnable configuration once.
    let mut seen = Vec::with_capacity(front.len());
    front.retain(|p| {
        let key = (
            p.backbone.clone(),
            p.deployed_exits.clone(),
            p.point.clone(),
        );
        let fresh = !seen.contains(&key);
        if fresh {
            seen.push(key);
        }
        fresh
    });
    let points = front
        .into_iter()
        .map(|p| DeploymentPoint {
            genotype: p.backbone,
            exits: p.deployed_exits,
            point: p.point,
            metrics: DeployedMetrics {
                top1: (100.0 - p.metrics.error).clamp(0.0, 100.0),
                latency_ms: p.metrics.latency_ms,
                energy_mj: Some(p.metrics.energy_mj),
                accuracy_source: accuracy_source.clone(),
                cost_source: cost_source.clone(),
            },
        })
        .collect();
    Ok(Deployment::new("hadas", space, device, points)?)
}

/// The bi-level HADAS search, a [`Strategy`] over backbones: its problem's objectives must be
/// (error, latency, energy), all minimised, of the static backbone.
pub struct Hadas<'e> {
    config: HadasConfig,
    outer: Nsga2,
    evaluator: &'e dyn DynamicEvaluator,
}

impl<'e> Hadas<'e> {
    /// HADAS with validated hyper-parameters.
    pub fn new(config: HadasConfig, evaluator: &'e dyn DynamicEvaluator) -> Result<Self> {
        config.inner.validate()?;
        if !(config.top_fraction > 0.0 && config.top_fraction <= 1.0) {
            return Err(SearchError::invalid("top fraction", "must be in (0, 1]"));
        }
        if config.inner_generations == 0 {
            return Err(SearchError::invalid(
                "inner generations",
                "must be at least 1",
            ));
        }
        if !(config.error_tolerance >= 0.0 && config.error_tolerance.is_finite()) {
            return Err(SearchError::invalid(
                "error tolerance",
                "must be finite and >= 0",
            ));
        }
        let outer = Nsga2::new(config.outer.clone())?;
        Ok(Self {
            config,
            outer,
            evaluator,
        })
    }

    fn check_objectives(&self, problem: &dyn Problem) -> Result<()> {
        let o = problem.objectives();
        if o.len() != 3 || o.iter().any(|o| o.direction != Direction::Minimize) {
            return Err(SearchError::invalid(
                "hadas objectives",
                "the backbone problem must minimise (error, latency, energy)",
            ));
        }
        Ok(())
    }

    /// Runs the inner search of the best backbones not optimised yet and writes results back.
    fn optimise_top(&self, state: &mut HadasState, ctx: &mut Context<'_>) -> Result<()> {
        let n_top = ((self.config.top_fraction * state.outer.population.len() as f64).ceil()
            as usize)
            .min(state.outer.population.len());
        for m in 0..n_top {
            let member = &state.outer.population[m];
            if member.cv > 0.0 {
                continue;
            }
            let backbone = member.genotype.clone();
            let existing = state.inner.iter().position(|(g, _)| *g == backbone);
            let front = match existing {
                Some(i) => state.inner[i].1.clone(),
                None => {
                    let seed: u64 = ctx.rng().random();
                    let (points, evaluations) =
                        inner_search(self.evaluator, &backbone, &self.config, seed)?;
                    state.inner_evaluations += evaluations;
                    state.inner.push((backbone.clone(), points.clone()));
                    points
                }
            };
            if let Some(best) = best_within_tolerance(
                self.evaluator,
                &backbone,
                &front,
                self.config.error_tolerance,
            )? {
                state.outer.population[m].f = best.metrics.to_vec();
            }
        }
        // Re-rank with the written-back objectives.
        let pop = std::mem::take(&mut state.outer.population);
        let n = pop.len();
        state.outer.population = rank_and_crowding_survival(pop, n, ctx.rng());
        Ok(())
    }
}

/// Runs the inner search of `backbone` (NSGA-II over exit subsets and clocks with `config`'s
/// inner settings) and returns its front with the exits as deployed, and the evaluations made.
pub fn inner_search(
    evaluator: &dyn DynamicEvaluator,
    backbone: &Genotype,
    config: &HadasConfig,
    seed: u64,
) -> Result<(Vec<DynamicPoint>, usize)> {
    let inner = InnerProblem::new(backbone.clone(), evaluator)?;
    let warm_start: Vec<Genotype> = evaluator
        .seed_points(backbone)?
        .iter()
        .filter_map(|point| inner.encode(&[], point))
        .collect();
    let result = Executor::new(
        &inner,
        Nsga2::new(config.inner.clone())?,
        Budget::generations(config.inner_generations)?,
    )
    .warm_start(warm_start)
    .seed(seed)
    .run()?;
    let mut points = Vec::with_capacity(result.front.len());
    for p in &result.front.points {
        let (exits, point) = inner.decode(&p.genotype)?;
        let deployed_exits = evaluator.deployed_exits(backbone, &exits, &point)?;
        points.push(DynamicPoint {
            backbone: backbone.clone(),
            exits,
            point,
            metrics: DynamicMetrics {
                error: p.values[0],
                latency_ms: p.values[1],
                energy_mj: p.values[2],
            },
            deployed_exits,
        });
    }
    Ok((points, result.archive.len()))
}

/// A seed for work on one backbone, mixed from `seed` and the backbone's genes: the same
/// whatever else ran before (inner searches, exit-head initialisation), so reruns and resumed
/// searches agree.
pub fn backbone_seed(seed: u64, backbone: &Genotype) -> u64 {
    backbone
        .genes()
        .iter()
        .fold(seed ^ 0x9E37_79B9_7F4A_7C15, |h, &g| {
            (h ^ g as u64).wrapping_mul(0x0100_0000_01B3)
        })
}

/// The lowest-energy configuration of `front` whose error is at most the static backbone's
/// (the same evaluator, no exit, highest clocks) plus `tolerance`.
pub fn best_within_tolerance<'f>(
    evaluator: &dyn DynamicEvaluator,
    backbone: &Genotype,
    front: &'f [DynamicPoint],
    tolerance: f64,
) -> Result<Option<&'f DynamicPoint>> {
    let static_error = evaluator
        .evaluate(backbone, &[], &evaluator.device().max_operating_point())?
        .error;
    Ok(front
        .iter()
        .filter(|p| dynas_core::within_tolerance(p.metrics.error - static_error, tolerance))
        .min_by(|a, b| a.metrics.energy_mj.total_cmp(&b.metrics.energy_mj)))
}

/// HADAS's bi-level problem for **any** outer strategy (e.g. the sample-efficient
/// [`dynas_search::Surrogate`]): evaluating a backbone runs its inner search (seeded from the
/// backbone, so reruns agree) and returns the error, latency and energy of its lowest-energy
/// dynamic configuration within the error tolerance (the static backbone at the highest
/// clocks when none is). Inner fronts are kept for [`DynamicBackbones::deployment`].
pub struct DynamicBackbones<'e, S> {
    space: S,
    evaluator: &'e dyn DynamicEvaluator,
    config: HadasConfig,
    seed: u64,
    objectives: Vec<Objective>,
    fronts: std::sync::Mutex<Vec<(Genotype, Vec<DynamicPoint>)>>,
    inner_evaluations: std::sync::atomic::AtomicUsize,
}

impl<'e, S: SearchSpace> DynamicBackbones<'e, S> {
    /// The problem over `space`'s backbones; `config`'s inner settings and error tolerance
    /// apply (its outer settings are the outer strategy's business).
    pub fn new(
        space: S,
        evaluator: &'e dyn DynamicEvaluator,
        config: HadasConfig,
        seed: u64,
    ) -> Result<Self> {
        Hadas::new(config.clone(), evaluator)?;
        Ok(Self {
            space,
            evaluator,
            config,
            seed,
            objectives: vec![
                Objective::minimize("error"),
                Objective::minimize("latency_ms"),
                Objective::minimize("energy_mj"),
            ],
            fronts: std::sync::Mutex::new(Vec::new()),
            inner_evaluations: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The inner front of `backbone` (run once, then kept).
    pub fn inner_front(&self, backbone: &Genotype) -> Result<Vec<DynamicPoint>> {
        if let Ok(fronts) = self.fronts.lock()
            && let Some((_, f)) = fronts.iter().find(|(g, _)| g == backbone)
        {
            return Ok(f.clone());
        }
        // A seed from the backbone: a resumed search recomputes the same fronts.
        let seed = backbone_seed(self.seed, backbone);
        let (front, evaluations) = inner_search(self.evaluator, backbone, &self.config, seed)?;
        self.inner_evaluations
            .fetch_add(evaluations, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut fronts) = self.fronts.lock() {
            fronts.push((backbone.clone(), front.clone()));
        }
        Ok(front)
    }

    /// Inner evaluations made so far.
    pub fn inner_evaluations(&self) -> usize {
        self.inner_evaluations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The non-dominated dynamic configurations of `backbones` (e.g. the outer front) as a
    /// [`Deployment`], like [`HadasState::deployment`].
    pub fn deployment(
        &self,
        backbones: &[Genotype],
        device: Option<DeviceProfile>,
        accuracy_source: Provenance,
        cost_source: Provenance,
    ) -> Result<Deployment> {
        let mut inner = Vec::with_capacity(backbones.len());
        for b in backbones {
            inner.push((b.clone(), self.inner_front(b)?));
        }
        deployment_of(
            non_dominated_points(&inner),
            &self.space,
            device,
            accuracy_source,
            cost_source,
        )
    }
}

impl<S: SearchSpace> Problem for DynamicBackbones<'_, S> {
    fn name(&self) -> &str {
        "hadas-dynamic-backbones"
    }

    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }

    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }

    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        let front = self.inner_front(genotype)?;
        let metrics = match best_within_tolerance(
            self.evaluator,
            genotype,
            &front,
            self.config.error_tolerance,
        )? {
            Some(best) => best.metrics,
            None => self.evaluator.evaluate(
                genotype,
                &[],
                &self.evaluator.device().max_operating_point(),
            )?,
        };
        Ok(Evaluation::feasible(metrics.to_vec()))
    }

    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        // One at a time: the evaluator usually serialises on one supernet anyway, and inner
        // searches already use the cores.
        genotypes.iter().map(|g| self.evaluate(g)).collect()
    }
}

impl Strategy for Hadas<'_> {
    type State = HadasState;

    fn name(&self) -> &str {
        "hadas"
    }

    type Config = HadasConfig;

    fn params(&self) -> &Self::Config {
        &self.config
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<HadasState> {
        self.check_objectives(ctx.problem())?;
        let outer = self.outer.init(ctx)?;
        let mut state = HadasState {
            outer,
            inner: Vec::new(),
            inner_evaluations: 0,
        };
        self.optimise_top(&mut state, ctx)?;
        Ok(state)
    }

    fn step(&self, state: &mut HadasState, ctx: &mut Context<'_>) -> Result<Step> {
        let outcome = self.outer.step(&mut state.outer, ctx)?;
        self.optimise_top(state, ctx)?;
        Ok(outcome)
    }
}
