//! What a serve run is asked for: the policy that chooses the member and the checked
//! parameters of [`serve`](super::serve).

use dynas_dvfs::{
    ConfigId, ConfigurationSet, Constraints, Governor, ManagerMode, ManagerParams, ManagerSettings,
    RuntimeManager, StaticGovernor,
};
use serde::{Deserialize, Serialize};

use dynas_supernet::{Result, SupernetError};

use super::Family;

/// Which policy chooses the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServePolicy {
    /// The most accurate member, always.
    StaticLargest,
    /// The fastest member, always (its misses are the feasibility floor).
    StaticSmallest,
    /// The runtime manager acting on measured latencies.
    Reactive,
    /// The runtime manager acting on a `/proc/stat` load reading and the latency trend too.
    Predictive,
}

impl ServePolicy {
    /// All four, in report order.
    pub const ALL: [ServePolicy; 4] = [
        ServePolicy::StaticLargest,
        ServePolicy::StaticSmallest,
        ServePolicy::Reactive,
        ServePolicy::Predictive,
    ];

    /// Name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ServePolicy::StaticLargest => "static-largest",
            ServePolicy::StaticSmallest => "static-smallest",
            ServePolicy::Reactive => "reactive",
            ServePolicy::Predictive => "predictive",
        }
    }

    /// Parses a [`ServePolicy::name`].
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                SupernetError::invalid(
                    "policy",
                    format!(
                        "unknown policy `{name}` (static-largest, static-smallest, reactive, \
                         predictive)"
                    ),
                )
            })
    }

    /// The governor of this policy over `set`.
    pub fn governor(
        self,
        set: &ConfigurationSet,
        constraints: &Constraints,
        manager: ManagerParams,
    ) -> Result<Box<dyn Governor>> {
        let fixed = |id: ConfigId| -> Result<Box<dyn Governor>> {
            Ok(Box::new(StaticGovernor::new(set.clone(), id).map_err(
                |e| SupernetError::invalid("set", e.to_string()),
            )?))
        };
        match self {
            ServePolicy::StaticLargest => fixed(set.most_accurate()),
            ServePolicy::StaticSmallest => fixed(set.fastest()),
            ServePolicy::Reactive => Ok(Box::new(RuntimeManager::new(
                set.clone(),
                manager.with_mode(ManagerMode::Reactive),
                constraints,
            ))),
            ServePolicy::Predictive => Ok(Box::new(RuntimeManager::new(
                set.clone(),
                manager.with_mode(ManagerMode::Predictive),
                constraints,
            ))),
        }
    }
}

/// Parameters of [`serve`](super::serve) (unchecked; see [`ServeParams::check`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ServeParams {
    /// Latency target per image, ms (> 0; refused when no member meets it on an idle host).
    pub target_ms: f64,
    /// Inferences per decision window (>= 1).
    pub window: usize,
    /// libtorch intra-op threads while serving (>= 1; restored afterwards).
    pub threads: i32,
    /// Length of the run, s (> 0; with a co-runner, also bounded by its trace).
    pub duration_s: f64,
    /// Predictive mode: the load is read at most this often, ms (> 0), and a reading that moved
    /// by more than `load_jump` since the last decision ends the window early.
    pub probe_interval_ms: f64,
    /// See `probe_interval_ms`, in `(0, 1]`.
    pub load_jump: f64,
    /// Hyper-parameters of the runtime manager (its mode is set by the policy).
    pub manager: ManagerParams,
    /// Test images held in memory and cycled through (>= 1).
    pub images: usize,
}

impl Default for ServeParams {
    /// Target 5 ms, windows of 8, 1 thread, 20 s, probe every 10 ms with a 0.15 jump, the
    /// manager's defaults with the `max-accuracy` objective, 2,000 images.
    fn default() -> Self {
        Self {
            target_ms: 5.0,
            window: 8,
            threads: 1,
            duration_s: 20.0,
            probe_interval_ms: 10.0,
            load_jump: 0.15,
            manager: ManagerSettings {
                history: 5,
                headroom: 0.1,
                up_margin: 0.1,
                up_patience: 3,
                objective: dynas_dvfs::ManagerObjective::MaxAccuracy,
                fallback: dynas_dvfs::Fallback::PreferDeadline,
                ..ManagerSettings::default()
            }
            .check()
            .unwrap_or_default(),
            images: 2000,
        }
    }
}

impl ServeParams {
    /// The most inferences a decision window may hold (their latencies are kept in memory).
    pub const MAX_WINDOW: usize = 1 << 20;

    /// The same parameters with the runtime managers' deadline-miss guard set (`None`: none),
    /// checked.
    pub fn with_miss_guard(mut self, guard: Option<dynas_dvfs::MissGuard>) -> Result<Self> {
        self.manager = self
            .manager
            .with_miss_guard(guard)
            .map_err(|e| SupernetError::invalid("miss_guard", e.to_string()))?;
        Ok(self)
    }

    /// Validates the fields; `family` is the family to serve (for the feasibility check).
    pub fn check(&self, family: &Family) -> Result<Constraints> {
        if self.window == 0 {
            return Err(SupernetError::invalid("window", "must be at least 1"));
        }
        if self.window > Self::MAX_WINDOW {
            return Err(SupernetError::invalid(
                "window",
                format!(
                    "{} inferences is more than the {} a decision window may hold",
                    self.window,
                    Self::MAX_WINDOW
                ),
            ));
        }
        if self.threads < 1 {
            return Err(SupernetError::invalid("threads", "must be at least 1"));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return Err(SupernetError::invalid(
                "duration_s",
                "must be finite and positive",
            ));
        }
        if !(self.probe_interval_ms.is_finite() && self.probe_interval_ms > 0.0) {
            return Err(SupernetError::invalid(
                "probe_interval_ms",
                "must be finite and positive",
            ));
        }
        if !(self.load_jump > 0.0 && self.load_jump <= 1.0) {
            return Err(SupernetError::invalid("load_jump", "must lie in (0, 1]"));
        }
        if self.images == 0 {
            return Err(SupernetError::invalid("images", "must be at least 1"));
        }
        if !(self.target_ms.is_finite() && self.target_ms > 0.0) {
            return Err(SupernetError::invalid(
                "target_ms",
                "must be finite and positive",
            ));
        }
        let fastest = family.fastest_idle_ms();
        if self.target_ms < fastest {
            return Err(SupernetError::invalid(
                "target_ms",
                format!(
                    "{} ms is below the fastest member's latency on an idle host ({fastest:.3} \
                     ms): no member can meet it",
                    self.target_ms
                ),
            ));
        }
        Constraints::new(self.target_ms, None, None)
            .map_err(|e| SupernetError::invalid("target_ms", e.to_string()))
    }
}
