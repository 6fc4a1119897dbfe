//! What to optimise: the [`Problem`] trait, objectives with directions, evaluations with
//! constraint violations, a caching wrapper and the hardware-aware evaluator that composes an
//! [`AccuracySource`] with any [`CostModel`].

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use dynas_cost::{CostModel, OperatingPoint};
use dynas_space::{Genotype, Network, SearchSpace};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};

/// Whether an objective is minimised or maximised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

/// A named objective with its direction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Objective {
    /// Name (a CSV column, `error`, `latency_ms`, ...).
    pub name: String,
    /// Direction.
    pub direction: Direction,
}

impl Objective {
    /// An objective to minimise.
    pub fn minimize(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            direction: Direction::Minimize,
        }
    }

    /// An objective to maximise.
    pub fn maximize(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            direction: Direction::Maximize,
        }
    }

    /// `value` turned into minimisation form (negated when maximised).
    pub fn to_min(&self, value: f64) -> f64 {
        match self.direction {
            Direction::Minimize => value,
            Direction::Maximize => -value,
        }
    }
}

/// The outcome of evaluating one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Objective values in the problem's units and directions (not negated).
    #[serde(with = "crate::floats::vec")]
    pub values: Vec<f64>,
    /// Total constraint violation: 0 when feasible, larger is worse (pymoo's `CV`).
    #[serde(with = "crate::floats::scalar")]
    pub violation: f64,
}

impl Evaluation {
    /// A feasible evaluation.
    pub fn feasible(values: Vec<f64>) -> Self {
        Self {
            values,
            violation: 0.0,
        }
    }

    /// An evaluation with the given violation.
    pub fn with_violation(values: Vec<f64>, violation: f64) -> Self {
        Self { values, violation }
    }

    /// An infeasible evaluation with unknown objectives (e.g. a table row with missing values):
    /// objective values are NaN and the violation is `f64::INFINITY`.
    pub fn unknown(n_objectives: usize) -> Self {
        Self {
            values: vec![f64::NAN; n_objectives],
            violation: f64::INFINITY,
        }
    }

    /// Whether all constraints hold.
    pub fn is_feasible(&self) -> bool {
        self.violation <= 0.0
    }

    /// Values in minimisation form (maximised objectives negated).
    pub fn minimised(&self, objectives: &[Objective]) -> Vec<f64> {
        self.values
            .iter()
            .zip(objectives)
            .map(|(&v, o)| o.to_min(v))
            .collect()
    }
}

/// What a search optimises: genotypes of a space in, objective vectors (with directions) and a
/// constraint violation out.
///
/// Implement this for your own accuracy source and cost model, or use
/// [`HardwareProblem`] / [`crate::table::TableProblem`].
pub trait Problem: Send + Sync {
    /// Short name, used in logs and checkpoints.
    fn name(&self) -> &str;

    /// The space searched.
    fn space(&self) -> &dyn SearchSpace;

    /// The objectives, in the order of [`Evaluation::values`].
    fn objectives(&self) -> &[Objective];

    /// Evaluates one architecture.
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation>;

    /// A cheap check made before [`Problem::evaluate`] by strategies that redraw candidates
    /// until they meet a hard limit (once-for-all's constrained evolution). `Ok(false)` means
    /// the genotype surely violates a constraint. The default accepts everything.
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        let _ = genotype;
        Ok(true)
    }

    /// Evaluates many architectures, in parallel on all cores; results are in input order.
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        genotypes.par_iter().map(|g| self.evaluate(g)).collect()
    }
}

impl<P: Problem + ?Sized> Problem for &P {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn space(&self) -> &dyn SearchSpace {
        (**self).space()
    }
    fn objectives(&self) -> &[Objective] {
        (**self).objectives()
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        (**self).evaluate(genotype)
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        (**self).precheck(genotype)
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        (**self).evaluate_batch(genotypes)
    }
}

impl<P: Problem + ?Sized> Problem for std::sync::Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn space(&self) -> &dyn SearchSpace {
        (**self).space()
    }
    fn objectives(&self) -> &[Objective] {
        (**self).objectives()
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        (**self).evaluate(genotype)
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        (**self).precheck(genotype)
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        (**self).evaluate_batch(genotypes)
    }
}

/// Wraps a problem and remembers every evaluation by genotype, so that expensive evaluations
/// (supernet accuracy, on-device latency) are made once across searches sharing the wrapper.
#[derive(Debug)]
pub struct Cached<P> {
    inner: P,
    cache: RwLock<HashMap<Genotype, Evaluation>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<P: Problem> Cached<P> {
    /// An empty cache around `inner`.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            cache: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The wrapped problem.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Number of lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Number of evaluations passed to the wrapped problem.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Number of distinct genotypes cached.
    pub fn len(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, genotype: &Genotype) -> Option<Evaluation> {
        self.cache.read().ok()?.get(genotype).cloned()
    }
}

impl<P: Problem> Problem for Cached<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn space(&self) -> &dyn SearchSpace {
        self.inner.space()
    }
    fn objectives(&self) -> &[Objective] {
        self.inner.objectives()
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        self.inner.precheck(genotype)
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        if let Some(e) = self.lookup(genotype) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let e = self.inner.evaluate(genotype)?;
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(genotype.clone(), e.clone());
        }
        Ok(e)
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        let mut out: Vec<Option<Result<Evaluation>>> =
            genotypes.iter().map(|g| self.lookup(g).map(Ok)).collect();
        let hits = out.iter().filter(|o| o.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        let missing: Vec<usize> = (0..genotypes.len()).filter(|&i| out[i].is_none()).collect();
        let todo: Vec<Genotype> = missing.iter().map(|&i| genotypes[i].clone()).collect();
        self.misses.fetch_add(todo.len() as u64, Ordering::Relaxed);
        let fresh = self.inner.evaluate_batch(&todo);
        if let Ok(mut cache) = self.cache.write() {
            for (g, r) in todo.iter().zip(&fresh) {
                if let Ok(e) = r {
                    cache.insert(g.clone(), e.clone());
                }
            }
        }
        for (i, r) in missing.into_iter().zip(fresh) {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Err(SearchError::invalid("cache", "internal: result lost")))
            })
            .collect()
    }
}

/// Where the accuracy of an architecture comes from: a benchmark table, a trained predictor
/// or a supernet oracle. Accuracy is top-1 in percent.
pub trait AccuracySource: Send + Sync {
    /// Short name.
    fn name(&self) -> &str;

    /// Top-1 accuracy (%) of `genotype`, whose decoded network is `network`.
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64>;
}

impl<A: AccuracySource + ?Sized> AccuracySource for &A {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64> {
        (**self).accuracy(genotype, network)
    }
}

impl<A: AccuracySource + ?Sized> AccuracySource for std::sync::Arc<A> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64> {
        (**self).accuracy(genotype, network)
    }
}

/// A quantity a [`HardwareProblem`] can optimise or constrain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Top-1 error in percent (`100 - accuracy`), minimised.
    Error,
    /// Top-1 accuracy in percent, maximised.
    Accuracy,
    /// Latency (ms) from the cost model, minimised.
    LatencyMs,
    /// Energy (mJ) from the cost model, minimised (the model must report energy).
    EnergyMj,
    /// Peak memory (bytes) from the cost model, minimised.
    PeakMemoryBytes,
    /// Multiply-accumulates of the decoded network, minimised.
    Macs,
    /// Parameters of the decoded network, minimised.
    Params,
}

impl Metric {
    /// Name used for the objective.
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Accuracy => "accuracy",
            Self::LatencyMs => "latency_ms",
            Self::EnergyMj => "energy_mj",
            Self::PeakMemoryBytes => "peak_memory_bytes",
            Self::Macs => "macs",
            Self::Params => "params",
        }
    }

    /// The objective this metric gives.
    pub fn objective(self) -> Objective {
        match self {
            Self::Accuracy => Objective::maximize(self.name()),
            _ => Objective::minimize(self.name()),
        }
    }

    fn needs_accuracy(self) -> bool {
        matches!(self, Self::Error | Self::Accuracy)
    }

    fn needs_cost(self) -> bool {
        matches!(
            self,
            Self::LatencyMs | Self::EnergyMj | Self::PeakMemoryBytes
        )
    }
}

/// An upper bound on a metric (`metric <= limit`; for accuracy a lower bound).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    /// The constrained metric.
    pub metric: Metric,
    /// The bound.
    pub limit: f64,
}

/// A hardware-aware problem: decodes each genotype, asks an [`AccuracySource`] for its accuracy
/// and a [`CostModel`] for its cost at an operating point, and returns the chosen metrics.
pub struct HardwareProblem<S, A, C> {
    name: String,
    space: S,
    accuracy: A,
    cost: C,
    point: OperatingPoint,
    metrics: Vec<Metric>,
    objectives: Vec<Objective>,
    constraints: Vec<Constraint>,
}

impl<S: SearchSpace, A: AccuracySource, C: CostModel> HardwareProblem<S, A, C> {
    /// A problem optimising `metrics` (at least one) of networks of `space` at `point`.
    pub fn new(
        space: S,
        accuracy: A,
        cost: C,
        point: OperatingPoint,
        metrics: Vec<Metric>,
    ) -> Result<Self> {
        if metrics.is_empty() {
            return Err(SearchError::invalid(
                "metrics",
                "at least one metric is needed",
            ));
        }
        for (i, m) in metrics.iter().enumerate() {
            if metrics[..i].contains(m) {
                return Err(SearchError::invalid(
                    "metrics",
                    format!("`{}` is given twice", m.name()),
                ));
            }
        }
        let name = format!("{}+{}+{}", space.name(), accuracy.name(), cost.name());
        let objectives = metrics.iter().map(|m| m.objective()).collect();
        Ok(Self {
            name,
            space,
            accuracy,
            cost,
            point,
            metrics,
            objectives,
            constraints: Vec::new(),
        })
    }

    /// Adds a constraint; the limit must be finite.
    pub fn with_constraint(mut self, constraint: Constraint) -> Result<Self> {
        if !constraint.limit.is_finite() {
            return Err(SearchError::invalid(
                "constraint limit",
                format!("{} is not finite", constraint.limit),
            ));
        }
        self.constraints.push(constraint);
        Ok(self)
    }

    /// The operating point costs are estimated at.
    pub fn operating_point(&self) -> &OperatingPoint {
        &self.point
    }

    fn metric_values(&self, genotype: &Genotype, wanted: &[Metric]) -> Result<Vec<f64>> {
        let network = self.space.decode(genotype)?;
        let accuracy = if wanted.iter().any(|m| m.needs_accuracy()) {
            Some(self.accuracy.accuracy(genotype, &network)?)
        } else {
            None
        };
        let cost = if wanted.iter().any(|m| m.needs_cost()) {
            Some(self.cost.estimate(&network, &self.point)?)
        } else {
            None
        };
        let missing = |what: &str| SearchError::Evaluation {
            genotype: genotype.to_string(),
            reason: format!("cost model `{}` does not report {what}", self.cost.name()),
        };
        wanted
            .iter()
            .map(|m| {
                Ok(match m {
                    Metric::Error => 100.0 - accuracy.unwrap_or(f64::NAN),
                    Metric::Accuracy => accuracy.unwrap_or(f64::NAN),
                    Metric::LatencyMs => cost.map_or(f64::NAN, |c| c.latency_ms),
                    Metric::EnergyMj => cost
                        .and_then(|c| c.energy_mj)
                        .ok_or_else(|| missing("energy"))?,
                    Metric::PeakMemoryBytes => {
                        cost.and_then(|c| c.peak_memory_bytes)
                            .ok_or_else(|| missing("peak memory"))? as f64
                    }
                    Metric::Macs => network.macs() as f64,
                    Metric::Params => network.params() as f64,
                })
            })
            .collect()
    }
}

impl<S: SearchSpace, A: AccuracySource, C: CostModel> Problem for HardwareProblem<S, A, C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        let cheap: Vec<Metric> = self
            .constraints
            .iter()
            .map(|c| c.metric)
            .filter(|m| !m.needs_accuracy())
            .collect();
        if cheap.is_empty() {
            return Ok(true);
        }
        let values = self.metric_values(genotype, &cheap)?;
        Ok(self
            .constraints
            .iter()
            .filter(|c| !c.metric.needs_accuracy())
            .zip(values)
            .all(|(c, v)| v <= c.limit))
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        let mut wanted = self.metrics.clone();
        wanted.extend(self.constraints.iter().map(|c| c.metric));
        let values = self.metric_values(genotype, &wanted)?;
        let (objective_values, constraint_values) = values.split_at(self.metrics.len());
        let violation = self
            .constraints
            .iter()
            .zip(constraint_values)
            .map(|(c, &v)| match c.metric {
                Metric::Accuracy => (c.limit - v).max(0.0),
                _ => (v - c.limit).max(0.0),
            })
            .sum();
        Ok(Evaluation::with_violation(
            objective_values.to_vec(),
            violation,
        ))
    }
}
