//! Write your own cost model: implement [`CostModel`] and everything in dynas (searches,
//! wrappers, batch evaluation) can use it.
//!
//! ```text
//! cargo run -p dynas-cost --example cost_macs_per_cycle
//! ```
//! The model below is a "MACs per cycle" latency model with a per-layer breakdown, so it also
//! works with early exits ([`ExitAware`]); it is then cached and calibrated to two
//! (here made-up, clearly labelled) measurements.

use dynas_cost::{
    CachedModel, Calibrated, Cost, CostBreakdown, CostModel, DeviceProfile, ExitAware, ExitPoint,
    OperatingPoint, Result,
};
use dynas_space::{Activation, Layer, Network, TensorShape};

/// Latency = MACs / (MACs per cycle x GPU clock); energy = power x latency.
struct MacsPerCycle {
    macs_per_cycle: f64,
    power_w: f64,
}

impl MacsPerCycle {
    fn layer(&self, layer: &Layer, point: &OperatingPoint) -> Cost {
        let hz = point.gpu_hz().unwrap_or(1_000_000_000) as f64;
        let ms = layer.macs() as f64 / self.macs_per_cycle / hz * 1e3;
        Cost {
            latency_ms: ms,
            energy_mj: Some(ms * self.power_w),
            peak_memory_bytes: Some(layer.activation_bytes() + layer.weight_bytes()),
        }
    }
}

impl CostModel for MacsPerCycle {
    fn name(&self) -> &str {
        "macs-per-cycle"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Ok(self.breakdown(network, point)?.total)
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| self.layer(l, point))
            .collect();
        let total = layers
            .iter()
            .skip(1)
            .fold(layers.first().copied().unwrap_or_default(), |a, c| {
                a.then(*c)
            });
        Ok(CostBreakdown { layers, total })
    }
}

fn main() -> Result<()> {
    let input = TensorShape::new(3, 32, 32);
    let stem = Layer::conv("stem", input, 16, 3, 1, Activation::Relu);
    let b1 = Layer::mbconv("b1", stem.output(), 24, 96, 3, 2, None, Activation::Relu);
    let b2 = Layer::mbconv("b2", b1.output(), 32, 144, 5, 2, None, Activation::Relu);
    let gap = Layer::global_avg_pool("gap", b2.output());
    let fc = Layer::linear("fc", 32, 100);
    let net = Network::new(input, vec![stem, b1, b2, gap, fc]).with_arch_id("demo");

    let xavier = DeviceProfile::jetson_agx_xavier();
    let fast = xavier.max_operating_point();
    let slow = xavier.min_operating_point();
    let model = MacsPerCycle {
        macs_per_cycle: 128.0,
        power_w: 10.0,
    };
    for (name, p) in [("max clocks", &fast), ("min clocks", &slow)] {
        let c = model.estimate(&net, p)?;
        println!(
            "{name}: {:.4} ms, {:.4} mJ",
            c.latency_ms,
            c.energy_mj.unwrap_or(0.0)
        );
    }

    // Wrappers work on any model: cache, then calibrate to measurements (made up here).
    let cached = CachedModel::new(model, 10_000)?;
    let calibrated = Calibrated::fit(
        cached,
        &[(&net, fast.clone(), 0.9, None), (&net, slow, 9.5, None)],
    )?;
    println!(
        "calibration (scale, offset): {:?}",
        calibrated.latency_calibration()
    );

    // Early exits: half the inputs leave after the first block.
    let exits = vec![
        ExitPoint {
            after_layers: 2,
            probability: 0.5,
            head: Cost::latency(0.01),
        },
        ExitPoint {
            after_layers: 5,
            probability: 0.5,
            head: Cost::latency(0.0),
        },
    ];
    let with_exits = ExitAware::new(
        MacsPerCycle {
            macs_per_cycle: 128.0,
            power_w: 10.0,
        },
        exits,
    )?;
    println!(
        "expected latency with exits at max clocks: {:.4} ms",
        with_exits.estimate(&net, &fast)?.latency_ms
    );
    Ok(())
}
