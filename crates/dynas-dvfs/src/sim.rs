//! The platform simulator: replays a [`LoadTrace`] with a [`Governor`] over a
//! [`ConfigurationSet`] and reports deadline misses, accuracy, energy and switches.
//!
//! # Model
//!
//! The application issues one inference per frame period; each window of the trace runs
//! `inferences_per_window` of them with the configuration the governor chose after the
//! previous window. With a co-runner taking a share `L` of the device, an inference of
//! nominal latency `t` takes `t / (1 - L)` (processor sharing), times `1 + e` with `e` a
//! seeded Gaussian measurement noise (`noise_cv`, truncated at -50 %). An inference misses
//! its deadline when it takes longer than the latency target. The energy charged to the
//! application is the configuration's nominal energy per inference (the co-runner's own
//! consumption is not charged) plus the cost of switching. Device utilisation reported to
//! the governor is `min(1, L + t / frame period)`.
//!
//! Switching the subnet or exit thresholds costs `subnet_ms` / `subnet_mj`, changing any
//! clock costs `clock_ms` / `clock_mj`; the time is added to the first inference after the
//! switch.
//!
//! Processor sharing is the default [`Contention`]. A host whose delays were measured
//! ([`DelayProfile`]: `measured - nominal` latency of real inferences, by co-runner load) can
//! be replayed instead ([`Contention::MeasuredDelays`]): an inference of nominal latency `t`
//! under load `L` takes `t + d`, `d` drawn from the delays measured at that load (an additive
//! model: preemption adds time whatever the network; the measurement already holds the
//! noise, so none is added), or, when the profile knows the latency it was measured at, the
//! sum of as many draws as `t` spans of it ([`DelayProfile::sample_for`]).

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigId, ConfigurationSet};
use crate::error::{DvfsError, Result};
use crate::governor::{Constraints, DecisionReason, Governor, Observation, StaticGovernor};
use crate::manager::{ManagerParams, RuntimeManager};
use crate::trace::LoadTrace;

/// What a switch costs (checked: finite, non-negative).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SwitchingCost {
    subnet_ms: f64,
    subnet_mj: f64,
    clock_ms: f64,
    clock_mj: f64,
}

impl SwitchingCost {
    /// Time and energy of a subnet / exit-threshold switch and of a clock change.
    pub fn new(subnet_ms: f64, subnet_mj: f64, clock_ms: f64, clock_mj: f64) -> Result<Self> {
        for (name, v) in [
            ("subnet_ms", subnet_ms),
            ("subnet_mj", subnet_mj),
            ("clock_ms", clock_ms),
            ("clock_mj", clock_mj),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(DvfsError::invalid(name, "must be finite and non-negative"));
            }
        }
        Ok(Self {
            subnet_ms,
            subnet_mj,
            clock_ms,
            clock_mj,
        })
    }
}

impl Default for SwitchingCost {
    /// Assumed, not measured: a subnet switch 1 ms / 10 mJ (re-binding weight slices at
    /// about 10 W), a clock change 0.2 ms / 2 mJ.
    fn default() -> Self {
        Self {
            subnet_ms: 1.0,
            subnet_mj: 10.0,
            clock_ms: 0.2,
            clock_mj: 2.0,
        }
    }
}

/// Checked parameters of the [`Simulator`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SimParams {
    inferences_per_window: usize,
    frame_period_ms: f64,
    noise_cv: f64,
    seed: u64,
    switching: SwitchingCost,
}

impl SimParams {
    /// `inferences_per_window` >= 1, `frame_period_ms` finite and > 0, `noise_cv` in
    /// `[0, 0.5]`.
    pub fn new(
        inferences_per_window: usize,
        frame_period_ms: f64,
        noise_cv: f64,
        seed: u64,
        switching: SwitchingCost,
    ) -> Result<Self> {
        if inferences_per_window == 0 {
            return Err(DvfsError::invalid(
                "inferences_per_window",
                "must be at least 1",
            ));
        }
        if !frame_period_ms.is_finite() || frame_period_ms <= 0.0 {
            return Err(DvfsError::invalid(
                "frame_period_ms",
                "must be finite and positive",
            ));
        }
        if !(0.0..=0.5).contains(&noise_cv) {
            return Err(DvfsError::invalid("noise_cv", "must lie in [0, 0.5]"));
        }
        Ok(Self {
            inferences_per_window,
            frame_period_ms,
            noise_cv,
            seed,
            switching,
        })
    }

    /// Defaults for a latency target: 10 inferences per window, a frame period of
    /// 1.25 x target (80 % duty at the target), 3 % latency noise, seed 0, default switching cost.
    pub fn for_target(constraints: &Constraints) -> Self {
        Self {
            inferences_per_window: 10,
            frame_period_ms: 1.25 * constraints.latency_target_ms(),
            noise_cv: 0.03,
            seed: 0,
            switching: SwitchingCost::default(),
        }
    }

    /// The same parameters with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// One window of a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Window start, s.
    pub time_s: f64,
    /// Co-runner load.
    pub load: f64,
    /// Configuration run.
    pub config: ConfigId,
    /// Mean measured latency, ms.
    pub mean_latency_ms: f64,
    /// Deadline misses in the window.
    pub misses: usize,
    /// Energy charged in the window, mJ.
    pub energy_mj: f64,
    /// Why the governor chose the configuration for the next window.
    pub reason: DecisionReason,
}

/// What a simulation measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// Governor name (or the label given to [`Simulator::run_labelled`]).
    pub policy: String,
    /// Trace name.
    pub trace: String,
    /// Latency target, ms.
    pub latency_target_ms: f64,
    /// Accuracy floor, if any.
    pub accuracy_floor: Option<f64>,
    /// Windows replayed.
    pub windows: usize,
    /// Inferences run.
    pub inferences: usize,
    /// Inferences slower than the target.
    pub deadline_misses: usize,
    /// `deadline_misses / inferences`.
    pub miss_rate: f64,
    /// Mean accuracy over inferences.
    pub mean_accuracy: f64,
    /// Total energy, mJ (inferences + switching).
    pub energy_mj: f64,
    /// `energy_mj / inferences`.
    pub energy_per_inference_mj: f64,
    /// Configuration changes.
    pub switches: usize,
    /// Of which changed the subnet or exit thresholds.
    pub subnet_switches: usize,
    /// Of which changed a clock.
    pub clock_switches: usize,
    /// Energy spent switching, mJ (included in `energy_mj`).
    pub switching_energy_mj: f64,
    /// Windows in which no configuration of the simulated set meets every constraint at that
    /// window's load (latency target at the nominal slowdown, accuracy floor, energy budget).
    /// It depends on the set, the trace and the constraints only, so every policy over the
    /// same set reports the same count, whatever its decisions.
    pub infeasible_windows: usize,
    /// Windows whose decision was the governor's infeasibility fallback
    /// ([`DecisionReason::Infeasible`]).
    pub fallback_windows: usize,
    /// Per-window records.
    pub timeline: Vec<WindowRecord>,
}

/// Measured extra latency of inferences (`measured - nominal`, ms), binned by the co-runner
/// load they ran under: what [`Contention::MeasuredDelays`] replays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelayProfile {
    /// `bins[k]`: delays seen at a load in `[k / n, (k + 1) / n)` (the last bin takes 1).
    bins: Vec<Vec<f64>>,
    /// Nominal latency of the inferences the delays were measured on, when known.
    #[serde(default)]
    reference_ms: Option<f64>,
}

impl Default for DelayProfile {
    fn default() -> Self {
        Self {
            bins: vec![Vec::new(); Self::DEFAULT_BINS],
            reference_ms: None,
        }
    }
}

impl DelayProfile {
    /// Load bins of [`DelayProfile::default`] (load steps of 0.1).
    pub const DEFAULT_BINS: usize = 10;

    /// An empty profile with `bins` load bins (at least 1).
    pub fn new(bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(DvfsError::invalid("bins", "must be at least 1"));
        }
        Ok(Self {
            bins: vec![Vec::new(); bins],
            reference_ms: None,
        })
    }

    /// The same delays, marked as measured on inferences of nominal latency `reference_ms`
    /// (finite, > 0): [`DelayProfile::sample_for`] then scales a configuration's exposure.
    pub fn measured_at(mut self, reference_ms: f64) -> Result<Self> {
        if !reference_ms.is_finite() || reference_ms <= 0.0 {
            return Err(DvfsError::invalid(
                "reference_ms",
                "must be finite and positive",
            ));
        }
        self.reference_ms = Some(reference_ms);
        Ok(self)
    }

    fn bin(&self, load: f64) -> usize {
        crate::trace::load_bin(load, self.bins.len())
    }

    /// Remembers one inference's delay at `load`; a non-finite reading is ignored.
    pub fn push(&mut self, load: f64, delay_ms: f64) {
        if load.is_finite() && delay_ms.is_finite() {
            let k = self.bin(load);
            self.bins[k].push(delay_ms);
        }
    }

    /// Delays remembered.
    pub fn len(&self) -> usize {
        self.bins.iter().map(Vec::len).sum()
    }

    /// Whether no delay is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A delay drawn uniformly from those measured at `load`'s bin, or, when that bin is
    /// empty, at the nearest bin that is not (the lower on a tie); `None` when empty.
    pub fn sample(&self, load: f64, rng: &mut impl Rng) -> Option<f64> {
        let k = self.bin(load) as isize;
        let n = self.bins.len() as isize;
        let bin = (0..n)
            .flat_map(|d| [k - d, k + d])
            .filter(|&b| (0..n).contains(&b))
            .map(|b| &self.bins[b as usize])
            .find(|b| !b.is_empty())?;
        Some(bin[rng.random_range(0..bin.len())])
    }

    /// The delay of an inference of nominal latency `nominal_ms` at `load`. With a reference
    /// latency ([`DelayProfile::measured_at`]), an inference `r = nominal / reference` times
    /// as long is exposed `r` times as long: it sums `floor(r)` draws, and one more with
    /// probability `r - floor(r)` (a renewal view: a long inference is back-to-back short
    /// ones). Without one, a single draw. `None` when the profile is empty.
    pub fn sample_for(&self, nominal_ms: f64, load: f64, rng: &mut impl Rng) -> Option<f64> {
        let Some(reference) = self.reference_ms else {
            return self.sample(load, rng);
        };
        let r = (nominal_ms / reference).max(0.0);
        let whole = r.floor() as usize;
        let draws = whole + usize::from(rng.random::<f64>() < r - whole as f64);
        let mut total = 0.0;
        for _ in 0..draws {
            total += self.sample(load, rng)?;
        }
        Some(total)
    }
}

/// How the co-runner's load stretches an inference in the [`Simulator`].
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Contention {
    /// `t / (1 - L)` times the parameters' noise.
    #[default]
    ProcessorSharing,
    /// `t + d`, `d` drawn from measured delays at the load, scaled by exposure when the
    /// profile knows its reference latency (an empty profile adds none).
    MeasuredDelays(DelayProfile),
}

/// Replays traces; see the module documentation for the model.
#[derive(Clone, Debug)]
pub struct Simulator {
    set: ConfigurationSet,
    params: SimParams,
    contention: Contention,
}

impl Simulator {
    /// A simulator over `set`, with processor sharing.
    pub fn new(set: ConfigurationSet, params: SimParams) -> Self {
        Self {
            set,
            params,
            contention: Contention::ProcessorSharing,
        }
    }

    /// The same simulator with another contention model.
    pub fn with_contention(mut self, contention: Contention) -> Self {
        self.contention = contention;
        self
    }

    /// The configuration set.
    pub fn set(&self) -> &ConfigurationSet {
        &self.set
    }

    /// Runs `governor` over `trace`; the report is labelled with the governor's name.
    pub fn run(
        &self,
        governor: &mut dyn Governor,
        trace: &LoadTrace,
        constraints: &Constraints,
    ) -> Result<SimReport> {
        let label = governor.name().to_string();
        self.run_labelled(&label, governor, trace, constraints)
    }

    /// Runs `governor` over `trace`, labelling the report `label`.
    pub fn run_labelled(
        &self,
        label: &str,
        governor: &mut dyn Governor,
        trace: &LoadTrace,
        constraints: &Constraints,
    ) -> Result<SimReport> {
        let configs = self.set.configurations();
        let p = &self.params;
        let target = constraints.latency_target_ms();
        let noise = Normal::new(0.0, p.noise_cv)
            .map_err(|e| DvfsError::invalid("noise_cv", e.to_string()))?;
        let mut rng = dynas_space::seeded_rng(p.seed);
        let mut current = governor.initial();
        self.set.get(current)?;
        let mut pending_switch_ms = 0.0;
        let mut latencies = Vec::with_capacity(p.inferences_per_window);
        let mut report = SimReport {
            policy: label.to_string(),
            trace: trace.name().to_string(),
            latency_target_ms: target,
            accuracy_floor: constraints.accuracy_floor(),
            windows: trace.len(),
            inferences: 0,
            deadline_misses: 0,
            miss_rate: 0.0,
            mean_accuracy: 0.0,
            energy_mj: 0.0,
            energy_per_inference_mj: 0.0,
            switches: 0,
            subnet_switches: 0,
            clock_switches: 0,
            switching_energy_mj: 0.0,
            infeasible_windows: 0,
            fallback_windows: 0,
            timeline: Vec::with_capacity(trace.len()),
        };
        let mut accuracy_sum = 0.0;
        for (&time_s, &load) in trace.times_s().iter().zip(trace.loads()) {
            let c = &configs[current.0];
            latencies.clear();
            let mut misses = 0;
            for _ in 0..p.inferences_per_window {
                let e: f64 = if p.noise_cv > 0.0 {
                    noise.sample(&mut rng).max(-0.5)
                } else {
                    0.0
                };
                let mut lat = match &self.contention {
                    Contention::ProcessorSharing => c.latency_ms / (1.0 - load) * (1.0 + e),
                    Contention::MeasuredDelays(delays) => {
                        c.latency_ms
                            + delays
                                .sample_for(c.latency_ms, load, &mut rng)
                                .unwrap_or(0.0)
                    }
                };
                lat += pending_switch_ms;
                pending_switch_ms = 0.0;
                if lat > target {
                    misses += 1;
                }
                latencies.push(lat);
            }
            let k = p.inferences_per_window as f64;
            let window_energy = k * c.energy_mj;
            let mean_latency = latencies.iter().sum::<f64>() / k;
            let utilisation = (load + c.latency_ms / p.frame_period_ms).min(1.0);
            let observation = Observation {
                current,
                latencies_ms: &latencies,
                utilisation,
                co_runner_load: Some(load),
                energy_mj: Some(window_energy),
            };
            let decision = governor.decide(&observation, constraints);
            let next = configs
                .get(decision.config.0)
                .ok_or(DvfsError::UnknownConfiguration {
                    index: decision.config.0,
                    len: configs.len(),
                })?;
            let mut switch_energy = 0.0;
            if decision.config != current {
                report.switches += 1;
                if !next.same_variant(c) {
                    report.subnet_switches += 1;
                    switch_energy += p.switching.subnet_mj;
                    pending_switch_ms += p.switching.subnet_ms;
                }
                if next.point != c.point {
                    report.clock_switches += 1;
                    switch_energy += p.switching.clock_mj;
                    pending_switch_ms += p.switching.clock_ms;
                }
            }
            if decision.reason == DecisionReason::Infeasible {
                report.fallback_windows += 1;
            }
            let slowdown = 1.0 / (1.0 - load);
            let feasible = configs.iter().any(|x| {
                x.latency_ms * slowdown <= target
                    && constraints.accuracy_floor().is_none_or(|f| x.accuracy >= f)
                    && constraints
                        .energy_budget_mj()
                        .is_none_or(|b| x.energy_mj <= b)
            });
            if !feasible {
                report.infeasible_windows += 1;
            }
            report.inferences += p.inferences_per_window;
            report.deadline_misses += misses;
            accuracy_sum += k * c.accuracy;
            report.energy_mj += window_energy + switch_energy;
            report.switching_energy_mj += switch_energy;
            report.timeline.push(WindowRecord {
                time_s,
                load,
                config: current,
                mean_latency_ms: mean_latency,
                misses,
                energy_mj: window_energy + switch_energy,
                reason: decision.reason,
            });
            current = decision.config;
        }
        let n = report.inferences as f64;
        report.miss_rate = report.deadline_misses as f64 / n;
        report.mean_accuracy = accuracy_sum / n;
        report.energy_per_inference_mj = report.energy_mj / n;
        Ok(report)
    }
}

/// The four policies of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// HADAS's design-time choice at maximum clocks: the most accurate subnet meeting the
    /// target on an idle device at the highest operating point, never changed.
    StaticMax,
    /// Dynamic-OFA: the runtime manager over subnets (and exits) at maximum clocks only.
    SubnetOnly,
    /// The runtime manager over the clocks of the static policy's subnet only.
    DvfsOnly,
    /// The runtime manager over subnet x exits x clocks.
    Joint,
}

impl Policy {
    /// All four, in table order.
    pub const ALL: [Policy; 4] = [
        Policy::StaticMax,
        Policy::SubnetOnly,
        Policy::DvfsOnly,
        Policy::Joint,
    ];

    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::StaticMax => "static-max",
            Policy::SubnetOnly => "subnet-only",
            Policy::DvfsOnly => "dvfs-only",
            Policy::Joint => "joint",
        }
    }

    /// Parses a [`Policy::name`].
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                DvfsError::invalid(
                    "policy",
                    format!("unknown policy `{name}` (static-max, subnet-only, dvfs-only, joint)"),
                )
            })
    }
}

/// The highest operating point present in `set` (largest total clock).
fn max_point(set: &ConfigurationSet) -> dynas_cost::OperatingPoint {
    let sum =
        |p: &dynas_cost::OperatingPoint| -> u128 { p.clocks().map(|(_, hz)| u128::from(hz)).sum() };
    set.configurations()
        .iter()
        .map(|c| c.point.clone())
        .max_by(|a, b| sum(a).cmp(&sum(b)).then(a.cmp(b)))
        .unwrap_or_default()
}

/// The design-time choice of [`Policy::StaticMax`].
pub fn static_max_choice(set: &ConfigurationSet, constraints: &Constraints) -> Result<ConfigId> {
    let top = max_point(set);
    let at_max = set.filter(|c| c.point == top)?;
    let target = constraints.latency_target_ms();
    let chosen = at_max
        .iter()
        .filter(|(_, c)| c.latency_ms <= target)
        .max_by(|(_, a), (_, b)| {
            a.accuracy
                .total_cmp(&b.accuracy)
                .then(b.energy_mj.total_cmp(&a.energy_mj))
        })
        .map_or_else(|| at_max.fastest(), |(id, _)| id);
    let c = at_max.get(chosen)?;
    // Map back to the id in the full set.
    set.iter()
        .find(|(_, x)| x == &c)
        .map(|(id, _)| id)
        .ok_or_else(|| DvfsError::invalid("set", "static choice not found"))
}

/// Builds `policy`'s governor and the (sub)set it runs over.
pub fn build_policy(
    policy: Policy,
    set: &ConfigurationSet,
    constraints: &Constraints,
    params: ManagerParams,
) -> Result<(ConfigurationSet, Box<dyn Governor>)> {
    let static_id = static_max_choice(set, constraints)?;
    let static_cfg = set.get(static_id)?.clone();
    Ok(match policy {
        Policy::StaticMax => (
            set.clone(),
            Box::new(StaticGovernor::new(set.clone(), static_id)?),
        ),
        Policy::SubnetOnly => {
            let sub = set.filter(|c| c.point == static_cfg.point)?;
            let g = RuntimeManager::new(sub.clone(), params, constraints);
            (sub, Box::new(g))
        }
        Policy::DvfsOnly => {
            let sub = set.filter(|c| c.same_variant(&static_cfg))?;
            let g = RuntimeManager::new(sub.clone(), params, constraints);
            (sub, Box::new(g))
        }
        Policy::Joint => (
            set.clone(),
            Box::new(RuntimeManager::new(set.clone(), params, constraints)),
        ),
    })
}

/// Runs every policy of [`Policy::ALL`] over `trace`.
pub fn compare_policies(
    set: &ConfigurationSet,
    trace: &LoadTrace,
    constraints: &Constraints,
    manager: ManagerParams,
    sim: SimParams,
) -> Result<Vec<SimReport>> {
    Policy::ALL
        .into_iter()
        .map(|policy| {
            let (sub, mut governor) = build_policy(policy, set, constraints, manager)?;
            Simulator::new(sub, sim).run_labelled(policy.name(), &mut governor, trace, constraints)
        })
        .collect()
}

#[cfg(test)]
mod tests;
