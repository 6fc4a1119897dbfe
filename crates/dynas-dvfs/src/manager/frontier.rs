//! The frontiers the manager decides on: the Pareto set of the configurations and, per
//! accuracy floor, the objective-best configuration for any latency budget.

use crate::config::{ConfigId, Configuration, ConfigurationSet};

/// Best configuration for every latency budget: entry `i` is the best configuration (by an
/// objective) among those with nominal latency `<= latency[i]`; budgets in between resolve to
/// the previous entry. Looked up by bisection.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Staircase {
    latency: Vec<f64>,
    config: Vec<ConfigId>,
}

impl Staircase {
    pub(super) fn build(
        configs: &[Configuration],
        candidates: &[ConfigId],
        better: impl Fn(&Configuration, &Configuration) -> bool,
    ) -> Self {
        let mut sorted = candidates.to_vec();
        sorted.sort_by(|a, b| configs[a.0].latency_ms.total_cmp(&configs[b.0].latency_ms));
        let mut out = Self::default();
        for id in sorted {
            let c = &configs[id.0];
            match out.config.last() {
                Some(best) if !better(c, &configs[best.0]) => {}
                _ => {
                    out.latency.push(c.latency_ms);
                    out.config.push(id);
                }
            }
        }
        out
    }

    #[inline]
    pub(super) fn lookup(&self, budget_ms: f64) -> Option<ConfigId> {
        let i = self.latency.partition_point(|&l| l <= budget_ms);
        if i == 0 {
            None
        } else {
            Some(self.config[i - 1])
        }
    }

    pub(super) fn len(&self) -> usize {
        self.config.len()
    }
}

pub(super) fn better_energy(a: &Configuration, b: &Configuration) -> bool {
    a.energy_mj
        .total_cmp(&b.energy_mj)
        .then(b.accuracy.total_cmp(&a.accuracy))
        .is_lt()
}

pub(super) fn better_accuracy(a: &Configuration, b: &Configuration) -> bool {
    b.accuracy
        .total_cmp(&a.accuracy)
        .then(a.energy_mj.total_cmp(&b.energy_mj))
        .is_lt()
}

/// The configurations not dominated in (accuracy max, latency min, energy min), by
/// [`dynas_core::pareto::non_dominated`] (the workspace's one Pareto filter); of exact
/// duplicates only the first is kept.
///
/// `O(n log n + n f)` for a front of size `f`.
pub fn pareto_front(set: &ConfigurationSet) -> Vec<ConfigId> {
    let c = set.configurations();
    let objectives: Vec<Vec<f64>> = c
        .iter()
        .map(|x| vec![x.latency_ms, x.energy_mj, -x.accuracy])
        .collect();
    let mut front: Vec<ConfigId> = Vec::new();
    for i in dynas_core::pareto::non_dominated(&objectives) {
        if !front.iter().any(|f| objectives[f.0] == objectives[i]) {
            front.push(ConfigId(i));
        }
    }
    front
}

/// Precomputed frontiers for one accuracy floor.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Frontiers {
    pub(super) floor: Option<f64>,
    /// Objective-best among configurations meeting the floor.
    pub(super) feasible: Staircase,
    /// Most accurate regardless of the floor (fallback `PreferDeadline`).
    pub(super) any_accuracy: Staircase,
    /// Fastest configuration meeting the floor, if any (fallback `PreferAccuracy`).
    pub(super) fastest_meeting_floor: Option<ConfigId>,
}
