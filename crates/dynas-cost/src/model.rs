//! The [`CostModel`] trait and the cost it returns.

use crate::parallel::*;
use dynas_space::Network;
use serde::{Deserialize, Serialize};

use crate::device::OperatingPoint;
use crate::error::{CostError, Result};

/// What running a network (or one layer) once costs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Cost {
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Energy in millijoules, where the model knows it.
    pub energy_mj: Option<f64>,
    /// Peak memory in bytes, where the model knows it.
    pub peak_memory_bytes: Option<u64>,
}

impl Cost {
    /// A latency-only cost.
    pub const fn latency(latency_ms: f64) -> Self {
        Self {
            latency_ms,
            energy_mj: None,
            peak_memory_bytes: None,
        }
    }

    /// Adds another cost run after this one: latency and energy add, peak memory is the max.
    pub fn then(self, next: Cost) -> Cost {
        Cost {
            latency_ms: self.latency_ms + next.latency_ms,
            energy_mj: match (self.energy_mj, next.energy_mj) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            },
            peak_memory_bytes: match (self.peak_memory_bytes, next.peak_memory_bytes) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// A total cost with the cost of each layer, in network order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct CostBreakdown {
    /// Cost of each layer.
    pub layers: Vec<Cost>,
    /// Cost of the whole network (may include fixed overheads not attributed to a layer).
    pub total: Cost,
}

impl CostBreakdown {
    /// Cost of running the first `layers` layers (what an early exit after layer `layers - 1`
    /// pays, before its head). Fixed overheads of the total are not included.
    pub fn prefix(&self, layers: usize) -> Cost {
        self.layers
            .iter()
            .take(layers)
            .fold(None, |acc: Option<Cost>, c| {
                Some(acc.map_or(*c, |a| a.then(*c)))
            })
            .unwrap_or_default()
    }

    /// Cost of every prefix: element `i` is the cost of layers `0..=i`.
    pub fn prefix_sums(&self) -> Vec<Cost> {
        let mut acc: Option<Cost> = None;
        self.layers
            .iter()
            .map(|c| {
                let next = acc.map_or(*c, |a| a.then(*c));
                acc = Some(next);
                next
            })
            .collect()
    }
}

/// Answers "what does this network cost on this device at this operating point".
///
/// Object safe, `Send + Sync`, cheap enough to sit inside a search loop.
///
/// # Writing your own
///
/// ```
/// use dynas_cost::{Cost, CostModel, OperatingPoint, Result};
/// use dynas_space::Network;
///
/// /// Latency proportional to MACs at the GPU clock.
/// struct MacsPerCycle { macs_per_cycle: f64 }
///
/// impl CostModel for MacsPerCycle {
///     fn name(&self) -> &str { "macs-per-cycle" }
///     fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
///         let hz = point.gpu_hz().unwrap_or(1_000_000_000) as f64;
///         Ok(Cost::latency(network.macs() as f64 / self.macs_per_cycle / hz * 1e3))
///     }
/// }
/// ```
pub trait CostModel: Send + Sync {
    /// Short name, used in errors and reports.
    fn name(&self) -> &str;

    /// Cost of the whole network.
    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost>;

    /// Per-layer costs; models that only see whole architectures return
    /// [`CostError::Unsupported`].
    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let _ = (network, point);
        Err(CostError::Unsupported {
            model: self.name().to_string(),
            what: "per-layer breakdown".to_string(),
        })
    }

    /// Costs of many networks, in parallel on all cores.
    fn estimate_batch(&self, networks: &[Network], point: &OperatingPoint) -> Vec<Result<Cost>> {
        networks
            .par_iter()
            .map(|n| self.estimate(n, point))
            .collect()
    }
}

impl<M: CostModel + ?Sized> CostModel for &M {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        (**self).estimate(network, point)
    }
    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        (**self).breakdown(network, point)
    }
    fn estimate_batch(&self, networks: &[Network], point: &OperatingPoint) -> Vec<Result<Cost>> {
        (**self).estimate_batch(networks, point)
    }
}

impl<M: CostModel + ?Sized> CostModel for Box<M> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        (**self).estimate(network, point)
    }
    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        (**self).breakdown(network, point)
    }
    fn estimate_batch(&self, networks: &[Network], point: &OperatingPoint) -> Vec<Result<Cost>> {
        (**self).estimate_batch(networks, point)
    }
}

impl<M: CostModel + ?Sized> CostModel for std::sync::Arc<M> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        (**self).estimate(network, point)
    }
    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        (**self).breakdown(network, point)
    }
    fn estimate_batch(&self, networks: &[Network], point: &OperatingPoint) -> Vec<Result<Cost>> {
        (**self).estimate_batch(networks, point)
    }
}

/// Hardware-agnostic proxy: latency is MACs divided by a fixed rate, per layer, so early-exit
/// accounting and searches can run on MACs alone (`Cost::latency_ms` then reads "MACs / rate").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacsModel {
    macs_per_ms: f64,
}

impl MacsModel {
    /// A proxy running `macs_per_ms` multiply-accumulates per millisecond (positive, finite).
    pub fn new(macs_per_ms: f64) -> Result<Self> {
        if !(macs_per_ms.is_finite() && macs_per_ms > 0.0) {
            return Err(CostError::InvalidParameter {
                name: "macs_per_ms".to_string(),
                reason: format!("{macs_per_ms} is not a positive finite rate"),
            });
        }
        Ok(Self { macs_per_ms })
    }

    /// One "millisecond" per million MACs: `latency_ms` reads as MMACs.
    pub fn mega_macs() -> Self {
        Self { macs_per_ms: 1e6 }
    }
}

impl CostModel for MacsModel {
    fn name(&self) -> &str {
        "macs"
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> Result<Cost> {
        Ok(Cost::latency(network.macs() as f64 / self.macs_per_ms))
    }

    fn breakdown(&self, network: &Network, _point: &OperatingPoint) -> Result<CostBreakdown> {
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| Cost::latency(l.macs() as f64 / self.macs_per_ms))
            .collect();
        let total = Cost::latency(layers.iter().map(|c| c.latency_ms).sum());
        Ok(CostBreakdown { layers, total })
    }
}

#[cfg(test)]
mod macs_tests {
    use super::*;
    use approx::assert_relative_eq;
    use dynas_space::{MbConvSpace, SearchSpace};

    #[test]
    fn macs_model_reads_macs_and_sums_its_breakdown() {
        let space = MbConvSpace::ofa_mnist();
        let net = space.decode(&space.largest()).unwrap();
        let model = MacsModel::mega_macs();
        let point = OperatingPoint::default();
        let total = model.estimate(&net, &point).unwrap();
        assert_relative_eq!(total.latency_ms, net.macs() as f64 / 1e6);
        let b = model.breakdown(&net, &point).unwrap();
        assert_eq!(b.layers.len(), net.layers.len());
        assert_relative_eq!(
            b.prefix(net.layers.len()).latency_ms,
            total.latency_ms,
            max_relative = 1e-12
        );
        assert!(MacsModel::new(0.0).is_err());
        assert!(MacsModel::new(f64::NAN).is_err());
    }
}
