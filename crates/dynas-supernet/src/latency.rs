//! A host-measured latency model: times a standalone libtorch network of each architecture on
//! this machine (warm-up runs, then the median of repeated runs).

use std::time::Instant;

use dynas_cost::{Cost, CostError, CostModel, OperatingPoint};
use dynas_space::Network;
use tch::{Device, Kind, Tensor};

use crate::error::{Result, SupernetError};
use crate::supernet::Subnet;

/// Measures the latency of networks with libtorch on the CPU (or a CUDA device) in deployed
/// form ([`Subnet::deployed`]: batch norm folded, channels-last), no gradients. The operating
/// point is ignored: the host runs at whatever clocks it has.
#[derive(Clone, Debug, PartialEq)]
pub struct HostLatencyModel {
    warmup: usize,
    repeats: usize,
    batch_size: usize,
    device: Device,
}

impl HostLatencyModel {
    /// A model timing `repeats` runs (at least 1) after `warmup` runs, of batches of
    /// `batch_size` (at least 1) images.
    pub fn new(warmup: usize, repeats: usize, batch_size: usize, device: Device) -> Result<Self> {
        if repeats == 0 {
            return Err(SupernetError::invalid("repeats", "must be at least 1"));
        }
        if batch_size == 0 {
            return Err(SupernetError::invalid("batch_size", "must be at least 1"));
        }
        Ok(Self {
            warmup,
            repeats,
            batch_size,
            device,
        })
    }

    /// Every run's time in milliseconds (sorted), for a network with random weights.
    pub fn measure(&self, network: &Network) -> Result<Vec<f64>> {
        let net = Subnet::random(network, self.device)?.deployed()?;
        let i = network.input;
        let x = Tensor::randn(
            [
                self.batch_size as i64,
                i.channels as i64,
                i.height as i64,
                i.width as i64,
            ],
            (Kind::Float, self.device),
        );
        let sync = |d: Device| {
            if let Device::Cuda(n) = d {
                tch::Cuda::synchronize(n as i64);
            }
        };
        for _ in 0..self.warmup {
            let _ = net.predict(&x)?;
        }
        sync(self.device);
        let mut times = Vec::with_capacity(self.repeats);
        for _ in 0..self.repeats {
            let t = Instant::now();
            let _ = net.predict(&x)?;
            sync(self.device);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Ok(times)
    }
}

impl CostModel for HostLatencyModel {
    fn name(&self) -> &str {
        "host-libtorch"
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> dynas_cost::Result<Cost> {
        let times = self.measure(network).map_err(|e| CostError::Unsupported {
            model: self.name().to_string(),
            what: format!("timing this network ({e})"),
        })?;
        Ok(Cost::latency(times[times.len() / 2]))
    }

    fn estimate_batch(
        &self,
        networks: &[Network],
        point: &OperatingPoint,
    ) -> Vec<dynas_cost::Result<Cost>> {
        // Sequentially: concurrent timings would disturb each other.
        networks.iter().map(|n| self.estimate(n, point)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynas_space::{MbConvSpace, SearchSpace};

    #[test]
    fn times_a_network_and_rejects_bad_parameters() {
        let space = MbConvSpace::ofa_mnist();
        let net = space.decode(&space.smallest()).unwrap();
        let model = HostLatencyModel::new(1, 3, 1, Device::Cpu).unwrap();
        let times = model.measure(&net).unwrap();
        assert_eq!(times.len(), 3);
        assert!(times.windows(2).all(|w| w[0] <= w[1]) && times[0] > 0.0);
        let cost = model.estimate(&net, &OperatingPoint::default()).unwrap();
        // A fresh measurement: positive and finite (timings vary between runs).
        assert!(cost.latency_ms > 0.0 && cost.latency_ms.is_finite());
        assert!(HostLatencyModel::new(0, 0, 1, Device::Cpu).is_err());
        assert!(HostLatencyModel::new(0, 1, 0, Device::Cpu).is_err());
    }
}
