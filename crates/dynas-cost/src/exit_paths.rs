//! Expected cost of a network with early exits: the one place where exit probabilities meet
//! path costs (used by [`crate::ExitAware`], by `dynas-exits`' exit statistics, and through
//! those by the HADAS search and the runtime manager).

use crate::model::Cost;

/// One way out of a network with early exits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExitPath {
    /// Cost of the backbone up to this exit (the whole backbone for the final classifier).
    pub prefix: Cost,
    /// Cost of this exit's head; `None` when no head is run here (the final classifier is part
    /// of the backbone, and an exit that can never fire is switched off).
    pub head: Option<Cost>,
    /// Probability that an input leaves here.
    pub probability: f64,
}

fn zero() -> Cost {
    Cost {
        latency_ms: 0.0,
        energy_mj: Some(0.0),
        peak_memory_bytes: None,
    }
}

/// The cost of leaving at each path, in order: the path's prefix plus every head run on the
/// way (its own included). Paths must be in execution order.
pub fn exit_path_costs(paths: &[ExitPath]) -> Vec<Cost> {
    let mut heads = zero();
    paths
        .iter()
        .map(|p| {
            if let Some(h) = p.head {
                heads = heads.then(h);
            }
            p.prefix.then(heads)
        })
        .collect()
}

/// Expected cost per input, `Σ_i p_i · (prefix_i + heads run up to i)`; energy is known only
/// when every path knows it; peak memory is the largest over the
/// paths that are taken.
pub fn expected_exit_cost(paths: &[ExitPath]) -> Cost {
    let mut out = zero();
    let mut peak: Option<u64> = None;
    for (p, c) in paths.iter().zip(exit_path_costs(paths)) {
        out.latency_ms += p.probability * c.latency_ms;
        out.energy_mj = match (out.energy_mj, c.energy_mj) {
            (Some(a), Some(b)) => Some(a + p.probability * b),
            _ => None,
        };
        if p.probability > 0.0 {
            peak = match (peak, c.peak_memory_bytes) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    out.peak_memory_bytes = peak;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn cost(ms: f64) -> Cost {
        Cost {
            latency_ms: ms,
            energy_mj: Some(2.0 * ms),
            peak_memory_bytes: None,
        }
    }

    #[test]
    fn inputs_pay_the_heads_they_pass() {
        let paths = [
            ExitPath {
                prefix: cost(1.0),
                head: Some(cost(0.1)),
                probability: 0.5,
            },
            ExitPath {
                prefix: cost(2.0),
                head: None,
                probability: 0.0,
            },
            ExitPath {
                prefix: cost(4.0),
                head: None,
                probability: 0.5,
            },
        ];
        let each: Vec<f64> = exit_path_costs(&paths)
            .iter()
            .map(|c| c.latency_ms)
            .collect();
        assert_eq!(each, vec![1.1, 2.1, 4.1]);
        let e = expected_exit_cost(&paths);
        assert_relative_eq!(e.latency_ms, 0.5 * 1.1 + 0.5 * 4.1, epsilon = 1e-12);
        assert_relative_eq!(e.energy_mj.unwrap(), 2.0 * e.latency_ms, epsilon = 1e-12);
    }
}
