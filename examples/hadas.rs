//! HADAS: a bi-level search for backbones, early exits and DVFS clocks, handed to the runtime.
//!
//! The outer NSGA-II searches NAS-Bench-201 backbones (CIFAR-100 accuracy from the shipped
//! table); for the most promising ones an inner NSGA-II searches which of three early exits to
//! use and the Jetson TX2's GPU and memory clocks. Exit accuracies are a stand-in: the
//! backbone's accuracy scaled like HADAS's published AttentiveNAS-a0 exits at the same relative
//! depth; latency and energy come from the analytical TX2 model (default, unfitted parameters).
//! The dynamic front is written as a `Deployment` file and read back by the runtime.
//!
//! ```text
//! cargo run -p dynas --example hadas
//! ```

use dynas::cost::{AnalyticalModel, AnalyticalParams};
use dynas::exits::ExitTable;
use dynas::exits::{ExitHead, ExitPosition, HadasExitData, SyntheticConfidence};
use dynas::hadas::ExitsEvaluator;
use dynas::hadas::{Hadas, HadasConfig};
use dynas::prelude::*;
use dynas::search::AccuracySource as _;
use dynas::search::{Deployment, Provenance};
use dynas::search::{HardwareProblem, Metric, Nsga2Config, TableAccuracy};
use dynas::space::Activation;
use dynas::space::Nb201Space;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let accuracy =
        TableAccuracy::from_csv(dynas_data::path(dynas_data::NB201_HW_CSV), "acc_cifar100")?;
    let a0 = HadasExitData::from_csv(
        dynas_data::path(dynas_data::HADAS_EXITS_DIR).join("a0_exit_accuracy.csv"),
    )?;
    let top1 = a0.top1(); // 12 exits, then the final classifier
    let space = Nb201Space::new().with_num_classes(100)?;
    let tx2 = DeviceProfile::jetson_tx2();
    let model = || AnalyticalModel::new(DeviceProfile::jetson_tx2(), AnalyticalParams::default());

    // Where a backbone's candidate exits sit and how accurate they are, per validation sample
    // (synthesised here; a supernet with trained exit heads gives the real table).
    let confidence = SyntheticConfidence::new(2.0, 2000, 0)?;
    let exits = |g: &Genotype, n: &Network| -> dynas::search::Result<ExitTable> {
        let final_acc = accuracy.accuracy(g, n)? / 100.0;
        let last = top1.len() - 1;
        let (mut positions, mut accs) = (Vec::new(), Vec::new());
        for q in 1..=3 {
            positions.push(ExitPosition::new(
                format!("exit{q}"),
                n.layers.len() * q / 4,
            ));
            accs.push((final_acc * top1[last * q / 4] / top1[last]).min(1.0));
        }
        Ok(ExitTable::synthesize(
            positions,
            &accs,
            final_acc,
            &confidence,
        )?)
    };
    let head = ExitHead::new(64, Activation::Relu, 100)?;
    let evaluator = ExitsEvaluator::new(space.clone(), exits, head, model()?, tx2.clone());

    // The outer problem: static backbones at the highest clocks (error, latency, energy).
    let metrics = vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj];
    let backbones = HardwareProblem::new(
        space.clone(),
        &accuracy,
        model()?,
        tx2.max_operating_point(),
        metrics,
    )?;
    let outer = Nsga2Config {
        population: 16,
        offspring: 16,
        ..Nsga2Config::default()
    };
    let config = HadasConfig {
        outer,
        ..HadasConfig::default()
    };
    let result = Executor::new(
        &backbones,
        Hadas::new(config, &evaluator)?,
        Budget::generations(3)?,
    )
    .seed(0)
    .run()?;
    let state = &result.state;
    let (evaluated, optimised) = (result.archive.len(), state.inner.len());
    println!("{evaluated} backbones evaluated, {optimised} optimised by the inner search");

    // Hand-off: the dynamic front as a versioned Deployment file ...
    let deployment = state.deployment(
        &space,
        Some(tx2),
        Provenance::measured("NAS-Bench-201 CIFAR-100 table; exits scaled like HADAS a0"),
        Provenance::modelled("analytical Jetson TX2 model, default parameters"),
    )?;
    let path = std::env::temp_dir().join(format!("dynas-hadas-{}.json", std::process::id()));
    deployment.write_json(&path)?;
    // ... which the runtime reads (`dynas govern simulate --configs FILE` reads it too).
    let set = ConfigurationSet::from_deployment(&Deployment::from_json_file(&path)?)?;
    let with_exits = deployment
        .points
        .iter()
        .filter(|p| !p.exits.is_empty())
        .count();
    println!(
        "{} configurations ({with_exits} with exits) read back by the runtime",
        set.len()
    );
    for (_, c) in set.iter().step_by(set.len().div_ceil(5)) {
        let (acc, ms, mj) = (c.accuracy, c.latency_ms, c.energy_mj);
        println!(
            "  {acc:5.2} %  {ms:6.3} ms  {mj:6.3} mJ  {} exits  {}",
            c.exits.len(),
            c.point
        );
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
