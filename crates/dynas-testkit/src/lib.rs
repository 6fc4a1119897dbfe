//! Test support for dynas and for code built on it: [`check_cost_model`], a conformance check
//! any [`CostModel`] implementation can run, fake cost models with a fully specified DVFS
//! behaviour, and the lock that tests using libtorch's process-wide state take.
//!
//! Use it as a dev-dependency, next to `dynas` (or `dynas-cost`) of the same version:
//!
//! ```toml
//! [dev-dependencies]
//! dynas-testkit = "0.1"
//! ```
//!
//! and in a test of your own cost model:
//!
//! ```
//! use dynas_cost::OperatingPoint;
//! use dynas_space::{MbConvSpace, SearchSpace};
//! use dynas_testkit::{ToyDvfsModel, check_cost_model};
//!
//! let space = MbConvSpace::ofa_mnist();
//! let networks = vec![space.decode(&space.smallest())?, space.decode(&space.largest())?];
//! let points = vec![
//!     OperatingPoint::new(None, Some(500_000_000), None)?,
//!     OperatingPoint::new(None, Some(1_000_000_000), None)?,
//! ];
//! // Your model here (ToyDvfsModel stands in for it); panics on the first violation.
//! check_cost_model(&ToyDvfsModel::default(), &networks, &points);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};

use approx::relative_eq;
use dynas_cost::{Cost, CostBreakdown, CostModel, OperatingPoint, Result};
use dynas_space::Network;

/// libtorch's random generator and thread count are process-wide while the test harness runs
/// tests on parallel threads: tests that seed or draw from it take turns through this lock.
pub fn libtorch_turn() -> MutexGuard<'static, ()> {
    static LIBTORCH_GLOBALS: Mutex<()> = Mutex::new(());
    LIBTORCH_GLOBALS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A fake DVFS-aware cost model: each layer takes `macs / macs_per_ms_at_1ghz / f_gpu[GHz]`
/// ms and draws `static_w + dynamic_w · f_gpu[GHz]²` W, so lowering the clock saves energy on
/// every layer (a GPU clock of `None` counts as 1 GHz). The total is the sum of the layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToyDvfsModel {
    /// MACs per millisecond at 1 GHz.
    pub macs_per_ms_at_1ghz: f64,
    /// Static power, W.
    pub static_w: f64,
    /// Dynamic power at 1 GHz, W.
    pub dynamic_w: f64,
}

impl Default for ToyDvfsModel {
    fn default() -> Self {
        Self {
            macs_per_ms_at_1ghz: 1e5,
            static_w: 0.5,
            dynamic_w: 2.5,
        }
    }
}

impl ToyDvfsModel {
    fn layer(&self, macs: u64, point: &OperatingPoint) -> Cost {
        let ghz = point.gpu_hz().unwrap_or(1_000_000_000) as f64 / 1e9;
        let ms = macs as f64 / self.macs_per_ms_at_1ghz / ghz;
        Cost {
            latency_ms: ms,
            energy_mj: Some(ms * (self.static_w + self.dynamic_w * ghz * ghz)),
            peak_memory_bytes: None,
        }
    }
}

impl CostModel for ToyDvfsModel {
    fn name(&self) -> &str {
        "toy-dvfs"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Ok(self.breakdown(network, point)?.total)
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| self.layer(l.macs(), point))
            .collect();
        Ok(CostBreakdown {
            layers,
            total: self.layer(network.macs(), point),
        })
    }
}

/// What a [`CostModel`] must guarantee, checked on `networks` at `points`; panics with the
/// model's name, the network and the point on the first violation:
///
/// * latencies finite and positive, energies (where given) finite and non-negative;
/// * the same answer twice (no hidden state);
/// * a breakdown, where supported, has one cost per layer, finite and non-negative, whose sum
///   is at most the total (the rest is fixed per-inference overhead), and whose total equals
///   [`CostModel::estimate`];
/// * [`CostModel::estimate_batch`] agrees with [`CostModel::estimate`].
pub fn check_cost_model(model: &dyn CostModel, networks: &[Network], points: &[OperatingPoint]) {
    let name = model.name();
    let ok = |c: &Cost| {
        c.latency_ms.is_finite()
            && c.latency_ms >= 0.0
            && c.energy_mj.is_none_or(|e| e.is_finite() && e >= 0.0)
    };
    let same = |a: &Cost, b: &Cost| {
        relative_eq!(a.latency_ms, b.latency_ms, max_relative = 1e-9)
            && match (a.energy_mj, b.energy_mj) {
                (Some(x), Some(y)) => relative_eq!(x, y, max_relative = 1e-9),
                (None, None) => true,
                _ => false,
            }
    };
    for point in points {
        let batch = model.estimate_batch(networks, point);
        assert_eq!(
            batch.len(),
            networks.len(),
            "`{name}`: estimate_batch length"
        );
        for (network, batched) in networks.iter().zip(batch) {
            let ctx = format!(
                "`{name}` on a {}-layer network at {point:?}",
                network.layers.len()
            );
            let cost = model
                .estimate(network, point)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(ok(&cost) && cost.latency_ms > 0.0, "{ctx}: {cost:?}");
            let again = model
                .estimate(network, point)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(same(&cost, &again), "{ctx}: {cost:?} then {again:?}");
            let batched = batched.unwrap_or_else(|e| panic!("{ctx}: batch: {e}"));
            assert!(same(&cost, &batched), "{ctx}: batch gave {batched:?}");
            match model.breakdown(network, point) {
                Ok(b) => {
                    assert_eq!(b.layers.len(), network.layers.len(), "{ctx}: layers");
                    assert!(b.layers.iter().all(ok), "{ctx}: {b:?}");
                    assert!(
                        same(&b.total, &cost),
                        "{ctx}: breakdown total {:?}",
                        b.total
                    );
                    let sum = b.prefix(b.layers.len());
                    assert!(
                        sum.latency_ms <= b.total.latency_ms * (1.0 + 1e-9) + 1e-12,
                        "{ctx}: layers sum to {} ms > total {} ms",
                        sum.latency_ms,
                        b.total.latency_ms
                    );
                }
                Err(dynas_cost::CostError::Unsupported { .. }) => {}
                Err(e) => panic!("{ctx}: breakdown: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynas_space::{MbConvSpace, SearchSpace};

    #[test]
    fn the_toy_model_conforms_and_saves_energy_at_lower_clocks() {
        let space = MbConvSpace::ofa_mnist();
        let networks = vec![
            space.decode(&space.smallest()).unwrap(),
            space.decode(&space.largest()).unwrap(),
        ];
        let slow = OperatingPoint::new(None, Some(500_000_000), None).unwrap();
        let fast = OperatingPoint::new(None, Some(1_000_000_000), None).unwrap();
        check_cost_model(
            &ToyDvfsModel::default(),
            &networks,
            &[slow.clone(), fast.clone()],
        );
        let m = ToyDvfsModel::default();
        let (s, f) = (
            m.estimate(&networks[1], &slow).unwrap(),
            m.estimate(&networks[1], &fast).unwrap(),
        );
        assert!(s.latency_ms > f.latency_ms);
        assert!(s.energy_mj.unwrap() < f.energy_mj.unwrap());
    }

    /// A model whose layers cost more than its total must be caught.
    struct Inconsistent;

    impl CostModel for Inconsistent {
        fn name(&self) -> &str {
            "inconsistent"
        }
        fn estimate(&self, _: &Network, _: &OperatingPoint) -> Result<Cost> {
            Ok(Cost {
                latency_ms: 1.0,
                energy_mj: None,
                peak_memory_bytes: None,
            })
        }
        fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
            Ok(CostBreakdown {
                layers: vec![self.estimate(network, point)?; network.layers.len()],
                total: self.estimate(network, point)?,
            })
        }
    }

    #[test]
    #[should_panic(expected = "layers sum to")]
    fn an_inconsistent_breakdown_fails_the_check() {
        let space = MbConvSpace::ofa_mnist();
        let network = space.decode(&space.largest()).unwrap();
        check_cost_model(&Inconsistent, &[network], &[OperatingPoint::default()]);
    }
}
