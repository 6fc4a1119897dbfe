//! The [`Governor`] trait (a pure policy: no I/O, no clocks touched) and the classic
//! governors: static, performance, powersave and an ondemand-style utilisation governor.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigId, ConfigurationSet};
use crate::error::{DvfsError, Result};

/// What was observed while the current configuration ran for one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation<'a> {
    /// The configuration that ran during the window.
    pub current: ConfigId,
    /// Measured latency of each inference in the window, ms (may be empty).
    pub latencies_ms: &'a [f64],
    /// Device utilisation over the window, in `[0, 1]` (busy share, co-runners included).
    pub utilisation: f64,
    /// Share of the device taken by co-running work, in `[0, 1)`, where known: the most
    /// recent reading of a load signal (e.g. `/proc/stat` less this process), taken at the
    /// end of the window, just before the decision.
    pub co_runner_load: Option<f64>,
    /// Energy measured over the window, mJ, where known.
    pub energy_mj: Option<f64>,
}

/// Constraints the policy must respect, validated at construction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Constraints {
    latency_target_ms: f64,
    accuracy_floor: Option<f64>,
    energy_budget_mj: Option<f64>,
}

impl Constraints {
    /// A latency target (ms, finite, > 0), an optional accuracy floor (finite) and an
    /// optional energy budget per inference (mJ, finite, > 0).
    pub fn new(
        latency_target_ms: f64,
        accuracy_floor: Option<f64>,
        energy_budget_mj: Option<f64>,
    ) -> Result<Self> {
        if !latency_target_ms.is_finite() || latency_target_ms <= 0.0 {
            return Err(DvfsError::invalid(
                "latency_target_ms",
                format!("must be finite and positive, got {latency_target_ms}"),
            ));
        }
        if accuracy_floor.is_some_and(|a| !a.is_finite()) {
            return Err(DvfsError::invalid("accuracy_floor", "must be finite"));
        }
        if energy_budget_mj.is_some_and(|e| !e.is_finite() || e <= 0.0) {
            return Err(DvfsError::invalid(
                "energy_budget_mj",
                "must be finite and positive",
            ));
        }
        Ok(Self {
            latency_target_ms,
            accuracy_floor,
            energy_budget_mj,
        })
    }

    /// Latency target per inference, ms.
    pub fn latency_target_ms(&self) -> f64 {
        self.latency_target_ms
    }

    /// Accuracy floor, if any.
    pub fn accuracy_floor(&self) -> Option<f64> {
        self.accuracy_floor
    }

    /// Energy budget per inference, mJ, if any.
    pub fn energy_budget_mj(&self) -> Option<f64> {
        self.energy_budget_mj
    }
}

/// Why a governor chose what it chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionReason {
    /// Keep the current configuration.
    Hold,
    /// The policy has a fixed answer (static, performance, powersave).
    Fixed,
    /// The mean of the last latencies missed the target: move to a faster configuration.
    LatencyMiss,
    /// Enough slack for a configuration better in the objective (less energy or more
    /// accuracy).
    Slack,
    /// The current configuration is below the accuracy floor and a feasible one exists.
    AccuracyBelowFloor,
    /// Utilisation above the up-threshold (ondemand): maximum clocks.
    HighUtilisation,
    /// Utilisation low (ondemand): slower clocks.
    LowUtilisation,
    /// No configuration meets every constraint; the documented fallback was applied.
    Infeasible,
    /// The predicted latency of the next window (load signal, latency trend) misses the
    /// target: move to a faster configuration before the misses happen.
    PredictedMiss,
}

/// The next configuration and why.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Configuration to run next.
    pub config: ConfigId,
    /// Why.
    pub reason: DecisionReason,
    /// Whether the chosen configuration's nominal energy exceeds the energy budget.
    pub over_energy_budget: bool,
}

/// A run-time policy: from an observation window and the constraints, the next configuration.
///
/// Implementations are pure policies: they touch no hardware (pair them with a
/// [`crate::FrequencyControl`] backend) and keep only their own state (history, hysteresis
/// counters).
pub trait Governor: Send {
    /// Short name for reports.
    fn name(&self) -> &str;

    /// The configuration to start with.
    fn initial(&self) -> ConfigId;

    /// The configuration for the next window.
    fn decide(&mut self, observation: &Observation<'_>, constraints: &Constraints) -> Decision;

    /// Forgets all history (hysteresis counters, latency windows).
    fn reset(&mut self) {}
}

impl<G: Governor + ?Sized> Governor for Box<G> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn initial(&self) -> ConfigId {
        (**self).initial()
    }
    fn decide(&mut self, observation: &Observation<'_>, constraints: &Constraints) -> Decision {
        (**self).decide(observation, constraints)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

fn fixed(set: &ConfigurationSet, config: ConfigId, constraints: &Constraints) -> Decision {
    let energy = set.configurations()[config.0].energy_mj;
    Decision {
        config,
        reason: DecisionReason::Fixed,
        over_energy_budget: constraints.energy_budget_mj().is_some_and(|b| energy > b),
    }
}

/// Always the same configuration (HADAS's design-time choice).
#[derive(Clone, Debug)]
pub struct StaticGovernor {
    set: ConfigurationSet,
    config: ConfigId,
}

impl StaticGovernor {
    /// Runs `config` of `set` forever.
    pub fn new(set: ConfigurationSet, config: ConfigId) -> Result<Self> {
        set.get(config)?;
        Ok(Self { set, config })
    }
}

impl Governor for StaticGovernor {
    fn name(&self) -> &str {
        "static"
    }
    fn initial(&self) -> ConfigId {
        self.config
    }
    fn decide(&mut self, _: &Observation<'_>, constraints: &Constraints) -> Decision {
        fixed(&self.set, self.config, constraints)
    }
}

fn clock_sum(set: &ConfigurationSet, id: ConfigId) -> u128 {
    let p = &set.configurations()[id.0].point;
    p.clocks().map(|(_, hz)| u128::from(hz)).sum()
}

/// A variant's subnet and exits pinned at one end of its clock range: Linux's `performance`
/// ([`ClockExtremeGovernor::performance`]) or `powersave` ([`ClockExtremeGovernor::powersave`]).
#[derive(Clone, Debug)]
pub struct ClockExtremeGovernor {
    inner: StaticGovernor,
    name: &'static str,
}

impl ClockExtremeGovernor {
    /// Like Linux's `performance` governor: the subnet and exits of `variant` at their highest
    /// clocks (largest total clock; ties: lowest latency).
    pub fn performance(set: ConfigurationSet, variant: ConfigId) -> Result<Self> {
        let best = set.same_variant(variant)?.into_iter().max_by(|&a, &b| {
            let (ca, cb) = (&set.configurations()[a.0], &set.configurations()[b.0]);
            clock_sum(&set, a)
                .cmp(&clock_sum(&set, b))
                .then(cb.latency_ms.total_cmp(&ca.latency_ms))
        });
        Self::pinned(set, best.unwrap_or(variant), "performance")
    }

    /// Like Linux's `powersave` governor: the subnet and exits of `variant` at their lowest
    /// clocks (smallest total clock; ties: lowest energy).
    pub fn powersave(set: ConfigurationSet, variant: ConfigId) -> Result<Self> {
        let best = set.same_variant(variant)?.into_iter().min_by(|&a, &b| {
            let (ca, cb) = (&set.configurations()[a.0], &set.configurations()[b.0]);
            clock_sum(&set, a)
                .cmp(&clock_sum(&set, b))
                .then(ca.energy_mj.total_cmp(&cb.energy_mj))
        });
        Self::pinned(set, best.unwrap_or(variant), "powersave")
    }

    fn pinned(set: ConfigurationSet, config: ConfigId, name: &'static str) -> Result<Self> {
        Ok(Self {
            inner: StaticGovernor::new(set, config)?,
            name,
        })
    }
}

impl Governor for ClockExtremeGovernor {
    fn name(&self) -> &str {
        self.name
    }
    fn initial(&self) -> ConfigId {
        self.inner.config
    }
    fn decide(&mut self, o: &Observation<'_>, c: &Constraints) -> Decision {
        self.inner.decide(o, c)
    }
}

/// Checked parameters of [`OndemandGovernor`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OndemandParams {
    up_threshold: f64,
    down_differential: f64,
}

impl OndemandParams {
    /// `up_threshold` in `(0, 1]`: utilisation above it jumps to the highest clocks;
    /// `down_differential` in `[0, up_threshold)`: clocks are lowered so that utilisation
    /// would reach `up_threshold - down_differential`. The default is 0.8 and 0.1.
    pub fn new(up_threshold: f64, down_differential: f64) -> Result<Self> {
        if !(up_threshold > 0.0 && up_threshold <= 1.0) {
            return Err(DvfsError::invalid("up_threshold", "must lie in (0, 1]"));
        }
        if !(down_differential >= 0.0 && down_differential < up_threshold) {
            return Err(DvfsError::invalid(
                "down_differential",
                "must lie in [0, up_threshold)",
            ));
        }
        Ok(Self {
            up_threshold,
            down_differential,
        })
    }
}

impl Default for OndemandParams {
    fn default() -> Self {
        Self {
            up_threshold: 0.8,
            down_differential: 0.1,
        }
    }
}

/// An ondemand-style utilisation governor over the clocks of one variant (subnet + exits):
/// utilisation above `up_threshold` jumps to the fastest operating point; otherwise it picks
/// the slowest point whose speed keeps utilisation at `up_threshold - down_differential`.
///
/// The ladder of points (sorted by speed, precomputed) is searched by bisection.
#[derive(Clone, Debug)]
pub struct OndemandGovernor {
    set: ConfigurationSet,
    /// Ladder, slowest first.
    ladder: Vec<ConfigId>,
    /// Speed (1 / nominal latency) of each ladder rung, ascending.
    speed: Vec<f64>,
    /// Rung of each configuration of the set (`usize::MAX` if not on the ladder).
    rung_of: Vec<usize>,
    params: OndemandParams,
}

impl OndemandGovernor {
    /// Over the clocks of the variant of configuration `variant`, starting at its fastest.
    pub fn new(set: ConfigurationSet, variant: ConfigId, params: OndemandParams) -> Result<Self> {
        let mut ids = set.same_variant(variant)?;
        let c = set.configurations();
        ids.sort_by(|a, b| {
            c[b.0]
                .latency_ms
                .total_cmp(&c[a.0].latency_ms)
                .then(c[a.0].energy_mj.total_cmp(&c[b.0].energy_mj))
        });
        // Keep only points that are faster than every slower rung (drop equal-speed rungs
        // with more energy).
        let mut ladder: Vec<ConfigId> = Vec::with_capacity(ids.len());
        for id in ids {
            match ladder.last() {
                Some(last) if c[last.0].latency_ms <= c[id.0].latency_ms => {}
                _ => ladder.push(id),
            }
        }
        let speed = ladder.iter().map(|id| 1.0 / c[id.0].latency_ms).collect();
        let mut rung_of = vec![usize::MAX; set.len()];
        for (r, id) in ladder.iter().enumerate() {
            rung_of[id.0] = r;
        }
        Ok(Self {
            set,
            ladder,
            speed,
            rung_of,
            params,
        })
    }
}

impl Governor for OndemandGovernor {
    fn name(&self) -> &str {
        "ondemand"
    }
    fn initial(&self) -> ConfigId {
        self.ladder[self.ladder.len() - 1]
    }
    fn decide(&mut self, o: &Observation<'_>, constraints: &Constraints) -> Decision {
        let top = self.ladder.len() - 1;
        let rung = match self.rung_of.get(o.current.0) {
            Some(&r) if r != usize::MAX => r,
            _ => top,
        };
        let util = if o.utilisation.is_finite() {
            o.utilisation.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let (next, reason) = if util > self.params.up_threshold {
            (top, DecisionReason::HighUtilisation)
        } else {
            let aim = self.params.up_threshold - self.params.down_differential;
            let needed = self.speed[rung] * util / aim;
            let r = self.speed.partition_point(|&s| s < needed).min(top);
            if r < rung {
                (r, DecisionReason::LowUtilisation)
            } else {
                (rung, DecisionReason::Hold)
            }
        };
        let config = self.ladder[next];
        let energy = self.set.configurations()[config.0].energy_mj;
        Decision {
            config,
            reason,
            over_energy_budget: constraints.energy_budget_mj().is_some_and(|b| energy > b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::set;

    fn obs(current: ConfigId, utilisation: f64) -> Observation<'static> {
        Observation {
            current,
            latencies_ms: &[],
            utilisation,
            co_runner_load: None,
            energy_mj: None,
        }
    }

    #[test]
    fn performance_and_powersave_pick_the_clock_extremes() {
        let s = set();
        let cons = Constraints::new(16.0, None, None).expect("constraints");
        let variant = ConfigId(20);
        let mut perf = ClockExtremeGovernor::performance(s.clone(), variant).expect("perf");
        let mut save = ClockExtremeGovernor::powersave(s.clone(), variant).expect("save");
        let p = s.configurations()[perf.decide(&obs(variant, 0.5), &cons).config.0].clone();
        let q = s.configurations()[save.decide(&obs(variant, 0.5), &cons).config.0].clone();
        assert!(p.same_variant(&s.configurations()[20]) && q.same_variant(&p));
        assert_eq!(p.point.gpu_hz(), Some(1_100_000_000));
        assert_eq!(p.point.memory_hz(), Some(2_000_000_000));
        assert_eq!(q.point.gpu_hz(), Some(300_000_000));
        assert_eq!(q.point.memory_hz(), Some(800_000_000));
        assert!(StaticGovernor::new(s, ConfigId(10_000)).is_err());
    }

    #[test]
    fn ondemand_jumps_up_on_high_utilisation_and_steps_down_on_low() {
        let s = set();
        let cons = Constraints::new(16.0, None, None).expect("constraints");
        let mut g = OndemandGovernor::new(s.clone(), ConfigId(0), OndemandParams::default())
            .expect("ondemand");
        let top = g.initial();
        let d = g.decide(&obs(top, 0.2), &cons);
        assert_eq!(d.reason, DecisionReason::LowUtilisation);
        let c = s.configurations();
        assert!(c[d.config.0].latency_ms > c[top.0].latency_ms);
        // Needed speed = speed(top) x 0.2 / 0.7: the chosen rung is at least that fast and
        // the next slower one is not.
        let needed = 0.2 / 0.7 / c[top.0].latency_ms;
        assert!(1.0 / c[d.config.0].latency_ms >= needed);
        let d2 = g.decide(&obs(d.config, 0.95), &cons);
        assert_eq!(
            (d2.config, d2.reason),
            (top, DecisionReason::HighUtilisation)
        );
        assert!(OndemandParams::new(0.0, 0.0).is_err());
        assert!(OndemandParams::new(0.8, 0.8).is_err());
    }
}
