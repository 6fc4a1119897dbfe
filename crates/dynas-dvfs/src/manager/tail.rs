//! The runtime manager's deadline-miss guard: a bound on the tail of latency, not only its
//! mean.

use serde::{Deserialize, Serialize};

use super::ManagerMode;
use crate::config::{ConfigId, ConfigurationSet};
use crate::error::{DvfsError, Result};

/// Deadline-miss guard of the [`RuntimeManager`](super::RuntimeManager): a bound on the tail of latency, not only its
/// mean.
///
/// The manager remembers the *excess* `measured - nominal` latency of the last `samples`
/// inferences (whatever configuration ran) and predicts that a configuration of nominal
/// latency `L` would miss the target on every remembered sample with `L + excess > target`
/// (an additive-delay model: preemption and interrupts add time regardless of the network;
/// the longer exposure of a slower configuration is not modelled). Configurations predicted
/// to miss on more than `miss_budget x samples` of them are not chosen; if even the fastest
/// is, the manager falls back (see [`Fallback`](super::Fallback)). Mean-based budgets keep the latency right on
/// average; this keeps the *count* of deadline misses near what the fastest configuration
/// would suffer, which is what a real-time stream is judged by.
///
/// Cost: `O(log f)` per latency sample and `O(f)` per decision for a front of `f`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MissGuard {
    /// Largest share of inferences predicted to miss, in `[0, 1)`.
    pub miss_budget: f64,
    /// Latency samples remembered, in `1..=1_048_576`.
    pub samples: usize,
}

impl Default for MissGuard {
    /// A zero miss budget over the last 2,048 inferences: no remembered delay may make the
    /// chosen configuration miss (when even the fastest would, the fallback applies).
    fn default() -> Self {
        Self {
            miss_budget: 0.0,
            samples: 2048,
        }
    }
}

impl MissGuard {
    /// Most samples a guard may remember (memory stays bounded whatever a config file says).
    pub const MAX_SAMPLES: usize = 1 << 20;

    pub(super) fn check(self) -> Result<Self> {
        if !(0.0..1.0).contains(&self.miss_budget) {
            return Err(DvfsError::invalid(
                "miss_guard.miss_budget",
                "must lie in [0, 1)",
            ));
        }
        if !(1..=Self::MAX_SAMPLES).contains(&self.samples) {
            return Err(DvfsError::invalid(
                "miss_guard.samples",
                format!("must lie in 1..={}", Self::MAX_SAMPLES),
            ));
        }
        Ok(self)
    }
}

/// The state of a [`MissGuard`]: the front's latencies and the target, and one ring of
/// remembered delays, or in [`ManagerMode::Predictive`] one per quarter of the load reading,
/// so that a load the manager has seen before brings back the tail it had then at once,
/// before new misses.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TailGuard {
    miss_budget: f64,
    /// Distinct nominal latencies of the Pareto front, ascending.
    latencies: Vec<f64>,
    /// Target the rings' bins were computed for.
    target: f64,
    buckets: Vec<DelayRing>,
    /// The load reading at the previous decision: the window now observed ran under it.
    window_load: Option<f64>,
}

/// Remembered delays (`measured - nominal`, ms), binned by the first front latency each would
/// make miss the current target.
#[derive(Clone, Debug, PartialEq)]
struct DelayRing {
    excess: Vec<f64>,
    next: usize,
    len: usize,
    /// `bins[k]`: remembered delays that make `latencies[k..]` miss but not `latencies[..k]`
    /// (`bins[latencies.len()]`: delays that make nothing miss).
    bins: Vec<u64>,
}

impl TailGuard {
    /// Load-reading buckets in predictive mode.
    const LOAD_BUCKETS: usize = 4;
    /// Samples a bucket needs before its own tail is trusted alone (or its whole memory, if
    /// smaller).
    const MIN_SAMPLES: usize = 64;

    pub(super) fn new(
        guard: MissGuard,
        mode: ManagerMode,
        set: &ConfigurationSet,
        front: &[ConfigId],
    ) -> Self {
        let c = set.configurations();
        let mut latencies: Vec<f64> = front.iter().map(|id| c[id.0].latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        latencies.dedup();
        let n = match mode {
            ManagerMode::Reactive => 1,
            ManagerMode::Predictive => Self::LOAD_BUCKETS,
        };
        let ring = DelayRing {
            excess: vec![0.0; guard.samples],
            next: 0,
            len: 0,
            bins: vec![0; latencies.len() + 1],
        };
        Self {
            miss_budget: guard.miss_budget,
            latencies,
            target: f64::NAN,
            buckets: vec![ring; n],
            window_load: None,
        }
    }

    /// Index of the first front latency `l` with `l + excess > target`.
    #[inline]
    fn first_missing(&self, excess: f64) -> usize {
        self.latencies
            .partition_point(|&l| l + excess <= self.target)
    }

    fn bucket(&self, load: Option<f64>) -> usize {
        let n = self.buckets.len();
        match load {
            Some(l) if l.is_finite() => crate::trace::load_bin(l, n),
            _ => 0,
        }
    }

    /// Re-bins the remembered delays when the target changed (`O(samples log f)`).
    pub(super) fn retarget(&mut self, target: f64) {
        if target == self.target {
            return;
        }
        self.target = target;
        for b in 0..self.buckets.len() {
            let mut bins = vec![0; self.latencies.len() + 1];
            let ring = &self.buckets[b];
            for &e in &ring.excess[..ring.len] {
                bins[self.first_missing(e)] += 1;
            }
            self.buckets[b].bins = bins;
        }
    }

    /// Remembers one delay of the window now observed.
    #[inline]
    pub(super) fn push(&mut self, excess: f64) {
        let b = self.bucket(self.window_load);
        let capacity = self.buckets[b].excess.len();
        let (next, full) = (self.buckets[b].next, self.buckets[b].len == capacity);
        let evicted = full.then(|| self.first_missing(self.buckets[b].excess[next]));
        let k = self.first_missing(excess);
        let ring = &mut self.buckets[b];
        match evicted {
            Some(old) => ring.bins[old] -= 1,
            None => ring.len += 1,
        }
        ring.excess[next] = excess;
        ring.bins[k] += 1;
        ring.next = (next + 1) % capacity;
    }

    /// The largest nominal latency whose predicted misses in `ring` stay within the budget
    /// (`0` when not even the fastest front member's do; infinite before any sample).
    fn ring_cap(&self, ring: &DelayRing) -> f64 {
        if ring.len == 0 {
            return f64::INFINITY;
        }
        let allowed = (self.miss_budget * ring.len as f64).floor() as u64;
        let mut misses = 0;
        let mut cap = 0.0;
        for (k, &l) in self.latencies.iter().enumerate() {
            misses += ring.bins[k];
            if misses > allowed {
                break;
            }
            cap = l;
        }
        cap
    }

    /// The latency cap for the next window under `load` (the reading now, remembered as the
    /// load the next pushed delays ran under): its bucket's, or while that bucket has few
    /// samples, the most cautious of the buckets at that load or above that have any (else of
    /// all buckets).
    pub(super) fn latency_cap(&mut self, load: Option<f64>) -> f64 {
        let k = self.bucket(load);
        self.window_load = load;
        let own = &self.buckets[k];
        if own.len >= Self::MIN_SAMPLES.min(own.excess.len()) {
            return self.ring_cap(own);
        }
        let cautious = |rings: &[DelayRing]| {
            rings
                .iter()
                .filter(|r| r.len > 0)
                .map(|r| self.ring_cap(r))
                .fold(f64::INFINITY, f64::min)
        };
        let above = cautious(&self.buckets[k..]);
        if above.is_finite() {
            above
        } else {
            cautious(&self.buckets)
        }
    }

    /// Forgets every remembered delay.
    pub(super) fn clear(&mut self) {
        for ring in &mut self.buckets {
            ring.next = 0;
            ring.len = 0;
            ring.bins.iter_mut().for_each(|b| *b = 0);
        }
        self.window_load = None;
    }
}
