//! HADAS bi-level search on real data: NAS-Bench-201 backbones (CIFAR-100 accuracy from
//! `nb201_hw.csv`), the DVFS-aware analytical cost model of a Jetson TX2 (13 GPU x 4 memory
//! clocks; default, unfitted parameters), and three early exits per backbone whose accuracies
//! are the backbone's accuracy scaled like HADAS's AttentiveNAS-a0 exits at the same relative
//! depth (`exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv`).
//!
//! Prints, for every backbone the inner search optimised, the static energy at the highest
//! clocks and the lowest dynamic energy at no more error.
//!
//! ```text
//! cargo run --release -p dynas-hadas --example search_hadas -- [SEED] [OUTER_GENERATIONS]
//! ```

use clap::Parser;
use dynas_cost::DeviceProfile;
use dynas_cost::analytical::{AnalyticalModel, AnalyticalParams};
use dynas_exits::{ExitHead, ExitPosition, ExitTable, HadasExitData, SyntheticConfidence};
use dynas_hadas::{DynamicEvaluator, ExitsEvaluator, Hadas, HadasConfig};
use dynas_search::{AccuracySource, Budget, Executor, HardwareProblem, Metric, TableAccuracy};
use dynas_space::{Activation, Genotype, Nb201Space, Network};

/// HADAS bi-level search on NAS-Bench-201 backbones with exits and DVFS on a Jetson TX2.
#[derive(Parser)]
struct Args {
    /// Random seed.
    #[arg(default_value_t = 0)]
    seed: u64,
    /// Generations of the outer (backbone) search.
    #[arg(value_name = "OUTER_GENERATIONS", default_value_t = 5)]
    generations: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { seed, generations } = Args::parse();
    let data_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data");
    let accuracy =
        TableAccuracy::from_csv(format!("{data_dir}/nb201/nb201_hw.csv"), "acc_cifar100")?;
    let exits = HadasExitData::from_csv(format!(
        "{data_dir}/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
    ))?;
    let top1 = exits.top1();
    let space = Nb201Space::new().with_num_classes(100)?;
    let tx2 = DeviceProfile::jetson_tx2();
    let model = || AnalyticalModel::new(DeviceProfile::jetson_tx2(), AnalyticalParams::default());
    let confidence = SyntheticConfidence::new(2.0, 2000, seed)?;
    let source = |g: &Genotype, n: &Network| -> dynas_search::Result<ExitTable> {
        let final_acc = accuracy.accuracy(g, n)? / 100.0;
        let last = top1[top1.len() - 1];
        let (mut positions, mut accs) = (Vec::new(), Vec::new());
        for q in 1..=3 {
            positions.push(ExitPosition::new(
                format!("exit{q}"),
                n.layers.len() * q / 4,
            ));
            accs.push((final_acc * top1[(top1.len() - 1) * q / 4] / last).min(1.0));
        }
        Ok(ExitTable::synthesize(
            positions,
            &accs,
            final_acc,
            &confidence,
        )?)
    };
    let evaluator = ExitsEvaluator::new(
        space.clone(),
        source,
        ExitHead::new(64, Activation::Relu, 100)?,
        model()?,
        tx2.clone(),
    );
    let backbones = HardwareProblem::new(
        space,
        &accuracy,
        model()?,
        tx2.max_operating_point(),
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )?;
    let start = std::time::Instant::now();
    let result = Executor::new(
        &backbones,
        Hadas::new(HadasConfig::default(), &evaluator)?,
        Budget::generations(generations)?,
    )
    .seed(seed)
    .run()?;
    let state = &result.state;
    println!(
        "{} backbones evaluated, {} optimised by the inner search ({} inner evaluations) in {:.1} s",
        result.archive.len(),
        state.inner.len(),
        state.inner_evaluations,
        start.elapsed().as_secs_f64()
    );
    let mut savings = Vec::new();
    for (backbone, front) in &state.inner {
        let stat = evaluator.evaluate(backbone, &[], &tx2.max_operating_point())?;
        let best = front
            .iter()
            .filter(|p| p.metrics.error <= stat.error)
            .min_by(|a, b| a.metrics.energy_mj.total_cmp(&b.metrics.energy_mj));
        if let Some(best) = best {
            let saving = 100.0 * (1.0 - best.metrics.energy_mj / stat.energy_mj);
            savings.push(saving);
            println!(
                "error {:5.2} %: static {:7.3} mJ -> dynamic {:7.3} mJ ({saving:4.1} % less; exits {:?}, {})",
                stat.error, stat.energy_mj, best.metrics.energy_mj, best.exits, best.point
            );
        }
    }
    if !savings.is_empty() {
        let mean = savings.iter().sum::<f64>() / savings.len() as f64;
        let max = savings.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!("energy saved at no more error: mean {mean:.1} %, max {max:.1} %");
    }
    println!(
        "dynamic front: {} configurations",
        state.dynamic_front().len()
    );
    Ok(())
}
