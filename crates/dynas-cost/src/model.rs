//! The [`CostModel`] trait and the cost it returns.

use dynas_space::Network;
use rayon::prelude::*;
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
///         let hz = point.gpu_hz.unwrap_or(1_000_000_000) as f64;
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
