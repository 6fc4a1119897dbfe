//! The runtime manager: Dynamic-OFA-style switching over subnet x exit thresholds x clocks.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigId, ConfigurationSet};
use crate::error::{DvfsError, Result};
use crate::governor::{Constraints, Decision, DecisionReason, Governor, Observation};

mod tail;
pub use tail::MissGuard;
use tail::TailGuard;

mod frontier;
pub use frontier::pareto_front;
use frontier::{Frontiers, Staircase, better_accuracy, better_energy};

/// What the manager optimises among the configurations that meet the constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ManagerObjective {
    /// Least energy per inference (ties: more accuracy, then faster).
    #[default]
    MinEnergy,
    /// Most accuracy (ties: less energy, then faster), as Dynamic-OFA.
    MaxAccuracy,
}

/// What the manager does when no configuration meets every constraint.
///
/// * [`Fallback::PreferDeadline`] (default): drop the accuracy floor and run the most
///   accurate configuration that still meets the latency target at the observed slowdown
///   (ties: less energy); if none does, the fastest configuration of the set.
/// * [`Fallback::PreferAccuracy`]: keep the accuracy floor and run the fastest
///   configuration that meets it, accepting deadline misses; if no configuration reaches the
///   floor, the most accurate one.
///
/// In both cases the decision's reason is [`DecisionReason::Infeasible`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Meet the deadline, give up accuracy.
    #[default]
    PreferDeadline,
    /// Keep the accuracy, give up the deadline.
    PreferAccuracy,
}

/// How the manager estimates the slowdown the next window will see.
///
/// * [`ManagerMode::Reactive`] (default): the mean slowdown (`measured / nominal` latency) of
///   the last `history` inferences; it moves down once their mean latency misses (less the
///   guard band), i.e. after the load has already caused slow inferences.
/// * [`ManagerMode::Predictive`]: the larger of (a) the last window's mean slowdown extrapolated
///   by half its rise over the window before (latency trend), and (b) `1 + k x load`, where
///   `load` is the observation's [`Observation::co_runner_load`] reading and `k` is fitted
///   online (least squares through the origin, forgetting factor 0.9) on the past windows'
///   `(load, slowdown - 1)` pairs (`k = 1` until a window with load >= 0.05 was seen). It moves
///   down as soon as the current configuration's *predicted* latency misses (less the guard
///   band), so a rising load signal switches before the misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ManagerMode {
    /// Act on measured latencies only.
    #[default]
    Reactive,
    /// Act on the predicted slowdown (load signal and latency trend).
    Predictive,
}

/// Checked hyper-parameters of the [`RuntimeManager`] (made by [`ManagerSettings::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ManagerParams {
    history: usize,
    headroom: f64,
    up_margin: f64,
    up_patience: usize,
    objective: ManagerObjective,
    fallback: Fallback,
    mode: ManagerMode,
    miss_guard: Option<MissGuard>,
}

/// Unchecked hyper-parameters of the [`RuntimeManager`]; [`ManagerSettings::check`] turns them
/// into [`ManagerParams`]. Defaults: history 5, headroom 10 %, margin 10 %, patience 3, least
/// energy, prefer the deadline, reactive, no deadline-miss guard.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManagerSettings {
    /// Windows averaged (>= 1): the mean of the last `history` latencies is compared to the
    /// target.
    pub history: usize,
    /// Share of the target kept free, in `[0, 1)`: configurations are chosen so that their
    /// predicted latency stays at or below `(1 - headroom) x target`, leaving room for latency
    /// noise; the move down triggers once the mean latency exceeds `(1 - headroom / 2) x
    /// target` (a guard band, so that a rising load is met before deadlines are missed; with
    /// `headroom = 0` the trigger is the target itself).
    pub headroom: f64,
    /// Hysteresis band, in `[0, 1)`: a move towards a better but slower configuration needs its
    /// predicted latency at or below `(1 - headroom) x (1 - up_margin) x target`.
    pub up_margin: f64,
    /// Consecutive windows (>= 1) that must propose the same move before it is taken (moves
    /// down on a miss are immediate).
    pub up_patience: usize,
    /// What the manager optimises among feasible configurations.
    pub objective: ManagerObjective,
    /// What to do when no configuration meets both the target and the accuracy floor.
    pub fallback: Fallback,
    /// Reactive (latency only) or predictive (load signal and trend).
    pub mode: ManagerMode,
    /// Optional bound on the share of inferences that miss the target, estimated from the
    /// tail of recent latencies (see [`MissGuard`]); `None` (default): means only.
    #[serde(default)]
    pub miss_guard: Option<MissGuard>,
}

impl Default for ManagerSettings {
    fn default() -> Self {
        Self {
            history: 5,
            headroom: 0.1,
            up_margin: 0.1,
            up_patience: 3,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferDeadline,
            mode: ManagerMode::Reactive,
            miss_guard: None,
        }
    }
}

impl ManagerSettings {
    /// The checked parameters, or an error naming the first field out of range.
    pub fn check(self) -> Result<ManagerParams> {
        if self.history == 0 {
            return Err(DvfsError::invalid("history", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.headroom) {
            return Err(DvfsError::invalid("headroom", "must lie in [0, 1)"));
        }
        if !(0.0..1.0).contains(&self.up_margin) {
            return Err(DvfsError::invalid("up_margin", "must lie in [0, 1)"));
        }
        if self.up_patience == 0 {
            return Err(DvfsError::invalid("up_patience", "must be at least 1"));
        }
        Ok(ManagerParams {
            history: self.history,
            headroom: self.headroom,
            up_margin: self.up_margin,
            up_patience: self.up_patience,
            objective: self.objective,
            fallback: self.fallback,
            mode: self.mode,
            miss_guard: self.miss_guard.map(MissGuard::check).transpose()?,
        })
    }
}

impl ManagerParams {
    /// The same parameters with another [`ManagerMode`].
    pub fn with_mode(mut self, mode: ManagerMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same parameters with another deadline-miss guard (`None`: none), checked.
    pub fn with_miss_guard(mut self, guard: Option<MissGuard>) -> Result<Self> {
        self.miss_guard = guard.map(MissGuard::check).transpose()?;
        Ok(self)
    }

    /// The deadline-miss guard, if any.
    pub fn miss_guard(&self) -> Option<MissGuard> {
        self.miss_guard
    }

    /// The mode.
    pub fn mode(&self) -> ManagerMode {
        self.mode
    }

    /// The headroom (share of the target kept free for latency noise).
    pub fn headroom(&self) -> f64 {
        self.headroom
    }

    /// The objective.
    pub fn objective(&self) -> ManagerObjective {
        self.objective
    }

    /// The fallback.
    pub fn fallback(&self) -> Fallback {
        self.fallback
    }
}

impl Default for ManagerParams {
    /// [`ManagerSettings::default`], checked.
    fn default() -> Self {
        let d = ManagerSettings::default();
        Self {
            history: d.history,
            headroom: d.headroom,
            up_margin: d.up_margin,
            up_patience: d.up_patience,
            objective: d.objective,
            fallback: d.fallback,
            mode: d.mode,
            miss_guard: d.miss_guard,
        }
    }
}

/// Dynamic-OFA's runtime manager extended to all three knobs (subnet, exit thresholds,
/// operating point).
///
/// At construction it keeps the Pareto set of the configurations (accuracy, latency, energy)
/// and precomputes, for the accuracy floor, a staircase giving the objective-best
/// configuration for any latency budget. Each decision is then `O(k + log f)` for `k` new
/// latency samples and a front of `f`: it never scans the configurations.
///
/// Per window: the latencies are pushed into a ring of the last `history` samples, together
/// with the slowdown `measured / nominal` of the configuration that ran. The latency budget
/// of a configuration is `(1 - headroom) x target / mean slowdown`.
/// * If the mean of the last latencies misses the target (less the guard band
///   `headroom / 2`), it moves at once to the best configuration within the budget.
/// * Otherwise, if a configuration better in the objective fits within
///   `(1 - up_margin) x budget` (or the current one is below the accuracy floor), it moves
///   there after `up_patience` consecutive windows proposing the same move (hysteresis).
/// * When nothing meets the constraints, the [`Fallback`] applies.
/// * With a [`MissGuard`], the budget is also capped at the slowest nominal latency whose
///   predicted deadline misses (from the remembered delays) stay within the miss budget, and
///   running above that cap counts as a miss (`O(k log f + f)` per decision).
///
/// Changing the accuracy floor between calls rebuilds the frontiers (`O(f log f)`).
#[derive(Clone, Debug)]
pub struct RuntimeManager {
    set: ConfigurationSet,
    params: ManagerParams,
    front: Vec<ConfigId>,
    frontiers: Frontiers,
    initial: ConfigId,
    // Ring buffer of (latency, slowdown) samples.
    ring_latency: Vec<f64>,
    ring_slowdown: Vec<f64>,
    ring_next: usize,
    ring_len: usize,
    sum_latency: f64,
    sum_slowdown: f64,
    pending: Option<ConfigId>,
    pending_count: usize,
    decisions: u64,
    switches: u64,
    predictor: SlowdownPredictor,
    tail: Option<TailGuard>,
}

/// The state of [`ManagerMode::Predictive`]: the last two windows' mean slowdowns and the
/// online fit of `slowdown - 1 = k x load`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct SlowdownPredictor {
    last: Option<f64>,
    before_last: Option<f64>,
    /// The load read at the previous decision (the start of the window just observed).
    last_load: Option<f64>,
    load_x_excess: f64,
    load_sq: f64,
}

impl SlowdownPredictor {
    /// Forgetting factor of the load fit (per window).
    const FORGET: f64 = 0.9;
    /// Windows with less load than this do not inform the fit.
    const MIN_LOAD: f64 = 0.05;

    /// Records a window's mean slowdown and the load read at its end. The fit pairs the
    /// slowdown with the reading taken *before* the window (at the previous decision), as the
    /// prediction does: it answers "given the reading now, how slow is the next window".
    fn observe(&mut self, slowdown: f64, load: Option<f64>) {
        self.before_last = self.last;
        self.last = Some(slowdown);
        if let Some(l) = self
            .last_load
            .filter(|l| l.is_finite() && *l >= Self::MIN_LOAD)
        {
            self.load_x_excess = Self::FORGET * self.load_x_excess + l * (slowdown - 1.0);
            self.load_sq = Self::FORGET * self.load_sq + l * l;
        }
        self.last_load = load;
    }

    /// Slowdown per unit of load (1 until a loaded window was seen; never below 0).
    fn load_gain(&self) -> f64 {
        if self.load_sq > 0.0 {
            (self.load_x_excess / self.load_sq).max(0.0)
        } else {
            1.0
        }
    }

    /// The predicted slowdown of the next window, given the current load reading.
    fn predict(&self, load: Option<f64>) -> Option<f64> {
        let trend = self.last.map(|s| match self.before_last {
            Some(b) => s + 0.5 * (s - b).max(0.0),
            None => s,
        });
        let from_load = load
            .filter(|l| l.is_finite())
            .map(|l| 1.0 + self.load_gain() * l.clamp(0.0, 1.0));
        match (trend, from_load) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

impl RuntimeManager {
    /// A manager over `set` for the accuracy floor of `constraints`; it starts at the
    /// objective-best configuration meeting the target on an idle device.
    pub fn new(set: ConfigurationSet, params: ManagerParams, constraints: &Constraints) -> Self {
        let front = pareto_front(&set);
        let frontiers = Self::frontiers(&set, &front, params, constraints.accuracy_floor());
        let mut manager = Self {
            initial: ConfigId(0),
            ring_latency: vec![0.0; params.history],
            ring_slowdown: vec![0.0; params.history],
            ring_next: 0,
            ring_len: 0,
            sum_latency: 0.0,
            sum_slowdown: 0.0,
            pending: None,
            pending_count: 0,
            decisions: 0,
            switches: 0,
            predictor: SlowdownPredictor::default(),
            tail: params
                .miss_guard
                .map(|g| TailGuard::new(g, params.mode, &set, &front)),
            set,
            params,
            front,
            frontiers,
        };
        manager.initial = manager
            .choose(constraints.latency_target_ms() * (1.0 - params.headroom))
            .0;
        manager
    }

    fn frontiers(
        set: &ConfigurationSet,
        front: &[ConfigId],
        params: ManagerParams,
        floor: Option<f64>,
    ) -> Frontiers {
        let c = set.configurations();
        let meets: Vec<ConfigId> = front
            .iter()
            .copied()
            .filter(|id| floor.is_none_or(|f| c[id.0].accuracy >= f))
            .collect();
        let feasible = match params.objective {
            ManagerObjective::MinEnergy => Staircase::build(c, &meets, better_energy),
            ManagerObjective::MaxAccuracy => Staircase::build(c, &meets, better_accuracy),
        };
        let any_accuracy = Staircase::build(c, front, better_accuracy);
        let fastest_meeting_floor = meets
            .iter()
            .copied()
            .min_by(|a, b| c[a.0].latency_ms.total_cmp(&c[b.0].latency_ms));
        Frontiers {
            floor,
            feasible,
            any_accuracy,
            fastest_meeting_floor,
        }
    }

    /// The configuration set.
    pub fn set(&self) -> &ConfigurationSet {
        &self.set
    }

    /// The Pareto set (accuracy, latency, energy) the manager chooses from.
    pub fn pareto_set(&self) -> &[ConfigId] {
        &self.front
    }

    /// Number of distinct configurations the current floor's staircase can choose.
    pub fn frontier_len(&self) -> usize {
        self.frontiers.feasible.len()
    }

    /// Decisions taken and how many of them changed the configuration.
    pub fn stats(&self) -> (u64, u64) {
        (self.decisions, self.switches)
    }

    /// The choice for a nominal latency budget, with whether it is a fallback.
    #[inline]
    fn choose(&self, budget_ms: f64) -> (ConfigId, bool) {
        if let Some(id) = self.frontiers.feasible.lookup(budget_ms) {
            return (id, false);
        }
        let id = match self.params.fallback {
            Fallback::PreferDeadline => self
                .frontiers
                .any_accuracy
                .lookup(budget_ms)
                .unwrap_or_else(|| self.set.fastest()),
            Fallback::PreferAccuracy => self
                .frontiers
                .fastest_meeting_floor
                .unwrap_or_else(|| self.set.most_accurate()),
        };
        (id, true)
    }

    #[inline]
    fn push(&mut self, latency: f64, slowdown: f64) {
        let h = self.params.history;
        if self.ring_len == h {
            self.sum_latency -= self.ring_latency[self.ring_next];
            self.sum_slowdown -= self.ring_slowdown[self.ring_next];
        } else {
            self.ring_len += 1;
        }
        self.ring_latency[self.ring_next] = latency;
        self.ring_slowdown[self.ring_next] = slowdown;
        self.sum_latency += latency;
        self.sum_slowdown += slowdown;
        self.ring_next = if self.ring_next + 1 == h {
            // Once per lap, re-sum the ring so rounding errors of the running sums cannot
            // accumulate over a long deployment (amortised O(1)).
            self.sum_latency = self.ring_latency.iter().sum();
            self.sum_slowdown = self.ring_slowdown.iter().sum();
            0
        } else {
            self.ring_next + 1
        };
    }

    fn decision(&mut self, config: ConfigId, reason: DecisionReason, c: &Constraints) -> Decision {
        self.decisions += 1;
        let energy = self.set.configurations()[config.0].energy_mj;
        Decision {
            config,
            reason,
            over_energy_budget: c.energy_budget_mj().is_some_and(|b| energy > b),
        }
    }
}

impl Governor for RuntimeManager {
    fn name(&self) -> &str {
        "runtime-manager"
    }

    fn initial(&self) -> ConfigId {
        self.initial
    }

    fn decide(&mut self, o: &Observation<'_>, constraints: &Constraints) -> Decision {
        let floor = constraints.accuracy_floor();
        if floor != self.frontiers.floor {
            self.frontiers = Self::frontiers(&self.set, &self.front, self.params, floor);
        }
        let Some(current) = self.set.configurations().get(o.current.0) else {
            // Unknown current configuration: restart from the idle-device choice.
            let (id, fallback) =
                self.choose(constraints.latency_target_ms() * (1.0 - self.params.headroom));
            let reason = if fallback {
                DecisionReason::Infeasible
            } else {
                DecisionReason::LatencyMiss
            };
            self.switches += 1;
            return self.decision(id, reason, constraints);
        };
        let nominal = current.latency_ms;
        let current_accuracy = current.accuracy;
        let current_energy = current.energy_mj;
        let target = constraints.latency_target_ms();
        if let Some(tail) = &mut self.tail {
            tail.retarget(target);
        }
        let (mut window_sum, mut window_len) = (0.0, 0usize);
        for &l in o.latencies_ms {
            if l.is_finite() && l > 0.0 {
                self.push(l, l / nominal);
                if let Some(tail) = &mut self.tail {
                    tail.push(l - nominal);
                }
                window_sum += l / nominal;
                window_len += 1;
            }
        }
        let cap = self
            .tail
            .as_mut()
            .map_or(f64::INFINITY, |tail| tail.latency_cap(o.co_runner_load));
        let predictive = self.params.mode == ManagerMode::Predictive;
        if predictive && window_len > 0 {
            self.predictor
                .observe(window_sum / window_len as f64, o.co_runner_load);
        }
        let predicted = if predictive {
            self.predictor.predict(o.co_runner_load)
        } else {
            None
        };
        if self.ring_len == 0 && predicted.is_none() {
            return self.decision(o.current, DecisionReason::Hold, constraints);
        }
        // Reactive: the measured mean latency and slowdown of the last `history` inferences.
        // Predictive: the current configuration's latency at the predicted slowdown.
        let (trigger_latency, slowdown) = match predicted {
            Some(s) => (nominal * s, s.max(1e-6)),
            None => {
                let n = self.ring_len as f64;
                (self.sum_latency / n, (self.sum_slowdown / n).max(1e-6))
            }
        };
        let mean_budget = target * (1.0 - self.params.headroom) / slowdown;
        // The miss guard caps the nominal latency; the hysteresis margin applies to the mean
        // budget only, so a move up to exactly the cap stays possible.
        let budget = mean_budget.min(cap);
        let up_budget = (mean_budget * (1.0 - self.params.up_margin)).min(cap);

        let (choice, reason) =
            if trigger_latency > target * (1.0 - 0.5 * self.params.headroom) || nominal > cap {
                let (id, fallback) = self.choose(budget);
                self.pending = None;
                self.pending_count = 0;
                let reason = if fallback {
                    DecisionReason::Infeasible
                } else if predictive {
                    DecisionReason::PredictedMiss
                } else {
                    DecisionReason::LatencyMiss
                };
                (id, reason)
            } else {
                let below_floor = floor.is_some_and(|f| current_accuracy < f);
                let (id, fallback) = self.choose(up_budget);
                let c = &self.set.configurations()[id.0];
                // Strictly better by the objective's full order (ties broken as in the
                // staircase), so that e.g. the same subnet at cheaper clocks counts.
                let improves = match self.params.objective {
                    ManagerObjective::MinEnergy => {
                        c.energy_mj < current_energy
                            || (c.energy_mj == current_energy && c.accuracy > current_accuracy)
                    }
                    ManagerObjective::MaxAccuracy => {
                        c.accuracy > current_accuracy
                            || (c.accuracy == current_accuracy && c.energy_mj < current_energy)
                    }
                };
                // Without a miss, fallbacks are never sought: the current configuration is
                // kept until a configuration meeting every constraint fits.
                let wanted = !fallback && id != o.current && (improves || below_floor);
                if !wanted {
                    self.pending = None;
                    self.pending_count = 0;
                    (o.current, DecisionReason::Hold)
                } else {
                    if self.pending == Some(id) {
                        self.pending_count += 1;
                    } else {
                        self.pending = Some(id);
                        self.pending_count = 1;
                    }
                    if self.pending_count >= self.params.up_patience {
                        self.pending = None;
                        self.pending_count = 0;
                        let reason = if below_floor {
                            DecisionReason::AccuracyBelowFloor
                        } else {
                            DecisionReason::Slack
                        };
                        (id, reason)
                    } else {
                        (o.current, DecisionReason::Hold)
                    }
                }
            };
        let reason = if choice == o.current
            && matches!(
                reason,
                DecisionReason::LatencyMiss | DecisionReason::PredictedMiss
            ) {
            // Already the best within the budget: the old samples just have not aged out.
            DecisionReason::Hold
        } else {
            reason
        };
        if choice != o.current {
            self.switches += 1;
        }
        self.decision(choice, reason, constraints)
    }

    fn reset(&mut self) {
        self.ring_next = 0;
        self.ring_len = 0;
        self.sum_latency = 0.0;
        self.sum_slowdown = 0.0;
        self.pending = None;
        self.pending_count = 0;
        self.decisions = 0;
        self.switches = 0;
        self.predictor = SlowdownPredictor::default();
        if let Some(tail) = &mut self.tail {
            tail.clear();
        }
    }
}

#[cfg(test)]
mod tests;
