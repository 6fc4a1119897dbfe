//! The hardware-aware problems: an [`AccuracySource`] composed with any [`CostModel`]
//! ([`HardwareProblem`]), and the joint search of backbone and operating point
//! ([`JointHardwareProblem`] over a [`JointSpace`]).

use dynas_cost::{CostModel, OperatingPoint};
use dynas_space::{Genotype, Network, SearchSpace};
use serde::{Deserialize, Serialize};

use super::{Evaluation, Objective, Problem, content_fingerprint};
use crate::error::{Result, SearchError};

/// Where the accuracy of an architecture comes from: a benchmark table, a trained predictor
/// or a supernet oracle. Accuracy is top-1 in percent.
///
/// A closure becomes one with [`AccuracyFn::new`]; errors of your own type keep their source
/// with [`SearchError::external`].
pub trait AccuracySource: Send + Sync {
    /// Short name.
    fn name(&self) -> &str;

    /// Top-1 accuracy (%) of `genotype`, whose decoded network is `network`.
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64>;

    /// A digest of the data behind the accuracies (see [`Problem::fingerprint`]); `None` by
    /// default.
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

/// A named closure `(genotype, network) -> accuracy %` used as an [`AccuracySource`].
///
/// ```
/// use dynas_search::AccuracyFn;
/// let by_macs = AccuracyFn::new("macs-proxy", |_genotype, network| {
///     Ok(60.0 + 10.0 * (network.macs() as f64).log10().min(3.0))
/// });
/// # let _ = by_macs;
/// ```
pub struct AccuracyFn<F> {
    name: String,
    function: F,
}

impl<F> AccuracyFn<F>
where
    F: Fn(&Genotype, &Network) -> Result<f64> + Send + Sync,
{
    /// An accuracy source called `name` that calls `function`.
    pub fn new(name: impl Into<String>, function: F) -> Self {
        Self {
            name: name.into(),
            function,
        }
    }
}

impl<F> std::fmt::Debug for AccuracyFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccuracyFn")
            .field("name", &self.name)
            .finish()
    }
}

impl<F> AccuracySource for AccuracyFn<F>
where
    F: Fn(&Genotype, &Network) -> Result<f64> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64> {
        (self.function)(genotype, network)
    }
}

impl<A: AccuracySource + ?Sized> AccuracySource for &A {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64> {
        (**self).accuracy(genotype, network)
    }
    fn fingerprint(&self) -> Option<String> {
        (**self).fingerprint()
    }
}

impl<A: AccuracySource + ?Sized> AccuracySource for std::sync::Arc<A> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn accuracy(&self, genotype: &Genotype, network: &Network) -> Result<f64> {
        (**self).accuracy(genotype, network)
    }
    fn fingerprint(&self) -> Option<String> {
        (**self).fingerprint()
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
        check_metrics(&metrics)?;
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
        check_constraint(&constraint)?;
        self.constraints.push(constraint);
        Ok(self)
    }

    /// The operating point costs are estimated at.
    pub fn operating_point(&self) -> &OperatingPoint {
        &self.point
    }

    fn metric_values(&self, genotype: &Genotype, wanted: &[Metric]) -> Result<Vec<f64>> {
        metric_values(
            &self.space,
            &self.accuracy,
            &self.cost,
            &self.point,
            genotype,
            wanted,
        )
    }
}

/// The values of `wanted` for `genotype` of `space` at `point`.
fn metric_values(
    space: &dyn SearchSpace,
    accuracy_source: &dyn AccuracySource,
    cost_model: &dyn CostModel,
    point: &OperatingPoint,
    genotype: &Genotype,
    wanted: &[Metric],
) -> Result<Vec<f64>> {
    let network = space.decode(genotype)?;
    let accuracy = if wanted.iter().any(|m| m.needs_accuracy()) {
        Some(accuracy_source.accuracy(genotype, &network)?)
    } else {
        None
    };
    let cost = if wanted.iter().any(|m| m.needs_cost()) {
        Some(cost_model.estimate(&network, point)?)
    } else {
        None
    };
    let missing = |what: &str| SearchError::Evaluation {
        genotype: genotype.to_string(),
        reason: format!("cost model `{}` does not report {what}", cost_model.name()),
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

/// Whether `values` of the constrained metrics meet `constraints`, as a total violation.
fn total_violation(constraints: &[Constraint], values: &[f64]) -> f64 {
    constraints
        .iter()
        .zip(values)
        .map(|(c, &v)| match c.metric {
            Metric::Accuracy => (c.limit - v).max(0.0),
            _ => (v - c.limit).max(0.0),
        })
        .sum::<f64>()
        + 0.0
}

fn check_metrics(metrics: &[Metric]) -> Result<()> {
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
    Ok(())
}

fn check_constraint(constraint: &Constraint) -> Result<()> {
    if !constraint.limit.is_finite() {
        return Err(SearchError::invalid(
            "constraint limit",
            format!("{} is not finite", constraint.limit),
        ));
    }
    Ok(())
}

/// A fingerprint of everything that decides a hardware problem's evaluations and is not in
/// its name: operating points, metrics, constraints and the accuracy data.
fn hardware_fingerprint(
    name: &str,
    points: &[OperatingPoint],
    metrics: &[Metric],
    constraints: &[Constraint],
    accuracy: &dyn AccuracySource,
) -> Option<String> {
    let text = serde_json::to_string(&(name, points, metrics, constraints, accuracy.fingerprint()))
        .ok()?;
    Some(content_fingerprint(text.as_bytes()))
}

/// Whether the constraints that need no accuracy hold, computing only their metrics
/// (accuracy is the expensive part of a hardware problem).
fn cheap_constraints_hold(
    constraints: &[Constraint],
    metric_values: impl FnOnce(&[Metric]) -> Result<Vec<f64>>,
) -> Result<bool> {
    let cheap: Vec<Constraint> = constraints
        .iter()
        .copied()
        .filter(|c| !c.metric.needs_accuracy())
        .collect();
    if cheap.is_empty() {
        return Ok(true);
    }
    let wanted: Vec<Metric> = cheap.iter().map(|c| c.metric).collect();
    let values = metric_values(&wanted)?;
    Ok(total_violation(&cheap, &values) <= 0.0)
}

/// The objectives' values and the constraints' total violation, from one metrics call.
fn evaluate_metrics(
    metrics: &[Metric],
    constraints: &[Constraint],
    metric_values: impl FnOnce(&[Metric]) -> Result<Vec<f64>>,
) -> Result<Evaluation> {
    let mut wanted = metrics.to_vec();
    wanted.extend(constraints.iter().map(|c| c.metric));
    let values = metric_values(&wanted)?;
    let (objective_values, constraint_values) = values.split_at(metrics.len());
    Ok(Evaluation::with_violation(
        objective_values.to_vec(),
        total_violation(constraints, constraint_values),
    ))
}

/// `Problem` for the hardware problems: both keep name, space, objectives, metrics,
/// constraints and accuracy in fields of the same names, and differ in their points.
macro_rules! hardware_problem {
    ($problem:ident, |$this:ident| $points:expr) => {
        impl<S: SearchSpace, A: AccuracySource, C: CostModel> Problem for $problem<S, A, C> {
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
                cheap_constraints_hold(&self.constraints, |m| self.metric_values(genotype, m))
            }
            fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
                evaluate_metrics(&self.metrics, &self.constraints, |m| {
                    self.metric_values(genotype, m)
                })
            }
            fn fingerprint(&self) -> Option<String> {
                let $this = self;
                hardware_fingerprint(
                    &self.name,
                    $points,
                    &self.metrics,
                    &self.constraints,
                    &self.accuracy,
                )
            }
        }
    };
}

hardware_problem!(HardwareProblem, |p| std::slice::from_ref(&p.point));

/// The space of a [`JointHardwareProblem`]: a backbone space with one more dimension,
/// [`JointSpace::POINT_DIMENSION`], whose choices are operating points. Decoding ignores the
/// last gene (the network does not depend on its clocks).
#[derive(Clone, Debug)]
pub struct JointSpace<S> {
    name: String,
    backbone: S,
    dimensions: Vec<dynas_space::Dimension>,
}

impl<S: SearchSpace> JointSpace<S> {
    /// Name of the operating-point dimension.
    pub const POINT_DIMENSION: &'static str = "operating_point";

    /// `backbone` x `points` (at least one point). Point labels are `<index>:<clocks in MHz>`.
    pub fn new(backbone: S, points: &[OperatingPoint]) -> Result<Self> {
        if points.is_empty() {
            return Err(SearchError::invalid(
                "operating points",
                "at least one is needed",
            ));
        }
        let mhz =
            |v: Option<u64>| v.map_or("-".to_string(), |hz| format!("{:.1}", hz as f64 / 1e6));
        let labels = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut label = format!(
                    "{i}:cpu{}/gpu{}/mem{}",
                    mhz(p.cpu_hz()),
                    mhz(p.gpu_hz()),
                    mhz(p.memory_hz())
                );
                for (domain, hz) in p.clocks().filter(|(d, _)| !d.is_well_known()) {
                    label.push_str(&format!("/{domain}{}", mhz(Some(hz))));
                }
                label
            })
            .collect();
        let mut dimensions = backbone.dimensions().to_vec();
        if dimensions.iter().any(|d| d.name() == Self::POINT_DIMENSION) {
            return Err(SearchError::invalid(
                "backbone space",
                format!("already has a dimension `{}`", Self::POINT_DIMENSION),
            ));
        }
        dimensions.push(dynas_space::Dimension::new(Self::POINT_DIMENSION, labels)?);
        Ok(Self {
            name: format!("{}+dvfs", backbone.name()),
            backbone,
            dimensions,
        })
    }

    /// The backbone space.
    pub fn backbone(&self) -> &S {
        &self.backbone
    }

    /// Splits a joint genotype into the backbone genotype and the operating-point index.
    pub fn split(&self, genotype: &Genotype) -> Result<(Genotype, usize)> {
        self.validate(genotype)?;
        let genes = genotype.genes();
        let (backbone, point) = genes.split_at(genes.len() - 1);
        Ok((Genotype::new(backbone.to_vec()), point[0]))
    }
}

impl<S: SearchSpace> SearchSpace for JointSpace<S> {
    fn name(&self) -> &str {
        &self.name
    }
    fn dimensions(&self) -> &[dynas_space::Dimension] {
        &self.dimensions
    }
    fn decode(&self, genotype: &Genotype) -> dynas_space::Result<Network> {
        self.validate(genotype)?;
        let genes = genotype.genes();
        self.backbone
            .decode(&Genotype::new(genes[..genes.len() - 1].to_vec()))
    }
}

/// A hardware-aware problem that searches the backbone **and** the operating point together:
/// every genotype is a backbone genotype plus the index of one of `points` (the last gene, see
/// [`JointSpace`]). Accuracy is asked for the backbone genotype; costs are estimated at the
/// chosen point, so the front holds (backbone, clocks) pairs.
///
/// ```no_run
/// # use dynas_search::{JointHardwareProblem, Metric, TableAccuracy};
/// # use dynas_cost::{AnalyticalModel, AnalyticalParams, DeviceProfile};
/// # use dynas_space::Nb201Space;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = DeviceProfile::jetson_agx_xavier();
/// let cost = AnalyticalModel::new(device.clone(), AnalyticalParams::default())?;
/// let accuracy = TableAccuracy::from_csv("nb201_hw.csv", "acc_cifar10")?;
/// let problem = JointHardwareProblem::new(
///     Nb201Space::new(),
///     accuracy,
///     cost,
///     device.operating_points().to_vec(),
///     vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
/// )?;
/// # let _ = problem; Ok(()) }
/// ```
pub struct JointHardwareProblem<S, A, C> {
    name: String,
    space: JointSpace<S>,
    accuracy: A,
    cost: C,
    points: Vec<OperatingPoint>,
    metrics: Vec<Metric>,
    objectives: Vec<Objective>,
    constraints: Vec<Constraint>,
}

impl<S: SearchSpace, A: AccuracySource, C: CostModel> JointHardwareProblem<S, A, C> {
    /// A problem optimising `metrics` (at least one) over `space` x `points`.
    pub fn new(
        space: S,
        accuracy: A,
        cost: C,
        points: Vec<OperatingPoint>,
        metrics: Vec<Metric>,
    ) -> Result<Self> {
        check_metrics(&metrics)?;
        let name = format!("{}+dvfs+{}+{}", space.name(), accuracy.name(), cost.name());
        let space = JointSpace::new(space, &points)?;
        let objectives = metrics.iter().map(|m| m.objective()).collect();
        Ok(Self {
            name,
            space,
            accuracy,
            cost,
            points,
            metrics,
            objectives,
            constraints: Vec::new(),
        })
    }

    /// Adds a constraint; the limit must be finite.
    pub fn with_constraint(mut self, constraint: Constraint) -> Result<Self> {
        check_constraint(&constraint)?;
        self.constraints.push(constraint);
        Ok(self)
    }

    /// The joint space.
    pub fn joint_space(&self) -> &JointSpace<S> {
        &self.space
    }

    /// The operating points searched, in gene order.
    pub fn operating_points(&self) -> &[OperatingPoint] {
        &self.points
    }

    /// The backbone genotype and the operating point of a joint genotype.
    pub fn split(&self, genotype: &Genotype) -> Result<(Genotype, OperatingPoint)> {
        let (backbone, point) = self.space.split(genotype)?;
        Ok((backbone, self.points[point].clone()))
    }

    fn metric_values(&self, genotype: &Genotype, wanted: &[Metric]) -> Result<Vec<f64>> {
        let (backbone, point) = self.split(genotype)?;
        metric_values(
            self.space.backbone(),
            &self.accuracy,
            &self.cost,
            &point,
            &backbone,
            wanted,
        )
    }
}

hardware_problem!(JointHardwareProblem, |p| &p.points);
