//! Your own cost model: implement [`CostModel`], check it, and search with it.
//!
//! The model is "MACs per cycle": each layer takes `MACs / (MACs per cycle x GPU clock)` and
//! draws a power that grows with the clock. It gives a per-layer breakdown, so early-exit
//! accounting and HADAS can use it too. The program checks three properties every model should
//! have, then runs NSGA-II over NAS-Bench-201 (accuracy from the shipped table) with it.
//!
//! ```text
//! cargo run -p dynas --example custom_cost_model
//! ```

use dynas::cost::Result;
use dynas::cost::{CachedModel, CostBreakdown};
use dynas::prelude::*;
use dynas::search::{HardwareProblem, Metric, Nsga2Config, TableAccuracy};
use dynas::space::{Layer, Nb201Space};

/// Latency = MACs / (MACs per cycle x GPU clock); power = idle + dynamic x (f / f_max)^2.
struct MacsPerCycle {
    macs_per_cycle: f64,
    idle_w: f64,
    dynamic_w: f64,
    max_gpu_hz: f64,
}

impl MacsPerCycle {
    fn layer(&self, layer: &Layer, point: &OperatingPoint) -> Cost {
        let hz = point.gpu_hz().map_or(self.max_gpu_hz, |h| h as f64);
        let ms = layer.macs() as f64 / self.macs_per_cycle / hz * 1e3;
        let watts = self.idle_w + self.dynamic_w * (hz / self.max_gpu_hz).powi(2);
        let memory = layer.activation_bytes() + layer.weight_bytes();
        Cost {
            energy_mj: Some(ms * watts),
            peak_memory_bytes: Some(memory),
            ..Cost::latency(ms)
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
        // `then` adds latency and energy, and keeps the larger peak memory.
        let total = layers.iter().copied().reduce(Cost::then);
        Ok(CostBreakdown {
            total: total.unwrap_or_default(),
            layers,
        })
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let tx2 = DeviceProfile::jetson_tx2();
    let model = MacsPerCycle {
        macs_per_cycle: 256.0,
        idle_w: 1.5,
        dynamic_w: 6.0,
        max_gpu_hz: tx2.max_operating_point().gpu_hz().unwrap_or(1) as f64,
    };

    // Check it on a few networks: finite positive costs, a breakdown that adds up to the
    // total, and latency that does not grow when the GPU clock rises.
    let space = Nb201Space::new().with_num_classes(100)?;
    let (slow, fast) = (tx2.min_operating_point(), tx2.max_operating_point());
    let mut rng = seeded_rng(0);
    for _ in 0..20 {
        let net = space.decode(&space.sample(&mut rng))?;
        let ms = model.estimate(&net, &fast)?.latency_ms;
        let layers = model.breakdown(&net, &fast)?.layers;
        let sum: f64 = layers.iter().map(|c| c.latency_ms).sum();
        assert!(ms.is_finite() && ms > 0.0, "finite and positive");
        assert!((sum - ms).abs() <= 1e-9 * ms, "layers add up to the total");
        assert!(
            ms <= model.estimate(&net, &slow)?.latency_ms,
            "faster at higher clocks"
        );
    }
    println!("`{}` passed the checks on 20 cells", model.name());

    // Any search takes it: error (from the table) against latency and energy at max clocks.
    let accuracy =
        TableAccuracy::from_csv(dynas_data::path(dynas_data::NB201_HW_CSV), "acc_cifar100")?;
    let problem = HardwareProblem::new(
        space,
        &accuracy,
        CachedModel::new(model, 10_000)?,
        fast,
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )?;
    let result = Executor::new(
        &problem,
        Nsga2::new(Nsga2Config::default())?,
        Budget::evaluations(300)?,
    )
    .seed(1)
    .run()?;
    println!(
        "front after 300 evaluations, 5 most accurate of {}:",
        result.front.len()
    );
    for p in result.front.points.iter().take(5) {
        println!(
            "  error {:5.2} %  {:.4} ms  {:.4} mJ  {}",
            p.values[0], p.values[1], p.values[2], p.genotype
        );
    }
    Ok(())
}
