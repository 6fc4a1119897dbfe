//! Test support: a small DVFS-shaped cost model and configuration sets built with it.

use dynas_cost::{Cost, CostBreakdown, CostModel, DeviceProfile, OperatingPoint};
use dynas_space::{Activation, Layer, Network, TensorShape};

use crate::config::{ConfigurationSet, Variant};

/// Roofline latency (compute at the GPU clock, memory at the EMC clock) and energy =
/// static power x time + voltage-scaled compute power + memory power.
pub(crate) struct ClockModel {
    pub(crate) device: DeviceProfile,
}

impl ClockModel {
    fn layer(&self, l: &Layer, p: &OperatingPoint) -> Cost {
        let g = self.device.gpu_hz.clone();
        let fc = p.gpu_hz().unwrap_or(g[g.len() - 1]) as f64;
        let fm = p
            .memory_hz()
            .unwrap_or(self.device.memory_hz[self.device.memory_hz.len() - 1])
            as f64;
        let (fc_max, fc_min) = (g[g.len() - 1] as f64, g[0] as f64);
        let fm_max = self.device.memory_hz[self.device.memory_hz.len() - 1] as f64;
        let tc = l.macs() as f64 / (64.0 * fc);
        let tm = (l.weight_bytes() + l.activation_bytes()) as f64 / (2.0 * fm);
        let t = tc.max(tm) + 20e-6;
        let v = 0.6 + 0.4 * (fc - fc_min) / (fc_max - fc_min);
        let e = 3.0 * t + 10.0 * v * v * fc / fc_max * tc + 2.0 * fm / fm_max * tm;
        // A slower board than the constants suggest: scale to Jetson-like tens of ms.
        Cost {
            latency_ms: 16.0 * t * 1e3,
            energy_mj: Some(16.0 * e * 1e3),
            peak_memory_bytes: None,
        }
    }
}

impl CostModel for ClockModel {
    fn name(&self) -> &str {
        "test-clock-model"
    }
    fn estimate(&self, n: &Network, p: &OperatingPoint) -> dynas_cost::Result<Cost> {
        Ok(self.breakdown(n, p)?.total)
    }
    fn breakdown(&self, n: &Network, p: &OperatingPoint) -> dynas_cost::Result<CostBreakdown> {
        let layers: Vec<Cost> = n.layers.iter().map(|l| self.layer(l, p)).collect();
        let total = layers.iter().skip(1).fold(layers[0], |a, c| a.then(*c));
        Ok(CostBreakdown { layers, total })
    }
}

/// A plain CNN of `depth` 3x3 convs with `width` channels on 64x64 inputs.
pub(crate) fn cnn(width: usize, depth: usize) -> Network {
    let mut layers = Vec::new();
    let mut shape = TensorShape::new(3, 64, 64);
    for i in 0..depth {
        let stride = if i % 2 == 1 { 2 } else { 1 };
        let l = Layer::conv(
            format!("conv{i}"),
            shape,
            width,
            3,
            stride,
            Activation::Relu,
        );
        shape = l.output();
        layers.push(l);
    }
    Network::new(TensorShape::new(3, 64, 64), layers)
}

/// A small device: no CPU clock, 5 GPU and 3 memory clocks.
pub(crate) fn device() -> DeviceProfile {
    DeviceProfile::new(
        "test-board",
        dynas_cost::ComputeUnit::Gpu,
        vec![],
        vec![
            300_000_000,
            500_000_000,
            700_000_000,
            900_000_000,
            1_100_000_000,
        ],
        vec![800_000_000, 1_600_000_000, 2_000_000_000],
    )
    .expect("valid device")
}

/// Four subnets (growing width / depth / accuracy) x every operating point of [`device`].
pub(crate) fn set() -> ConfigurationSet {
    let dev = device();
    let model = ClockModel {
        device: dev.clone(),
    };
    let variants: Vec<Variant> = [(16, 4, 70.0), (24, 5, 73.0), (32, 6, 75.5), (48, 6, 77.0)]
        .iter()
        .map(|&(w, d, acc)| Variant {
            genotype: dynas_space::Genotype::new(vec![w, d]),
            label: format!("w{w}d{d}"),
            exits: vec![],
            network: cnn(w, d),
            accuracy: acc,
            exit_profile: None,
        })
        .collect();
    ConfigurationSet::from_cost_model(&model, &variants, &dev.operating_points())
        .expect("costed set")
}
