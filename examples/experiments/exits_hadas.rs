//! Early-exit accounting on HADAS's published per-exit accuracies of AttentiveNAS-A0
//! (CIFAR-100), with the analytical Jetson AGX Xavier cost model at its highest clocks.
//!
//! The HADAS file gives per-exit top-1 only, so the exit table is synthesised with
//! [`SyntheticConfidence`] (calibrated, nested confidences; see its docs). Exits sit where
//! HADAS's code puts them: after blocks 5..16 (0-based) of the 17 MBConv blocks of A0
//! (`block_ee = range(5, n_blocks)` in HADAS's `train_exit_blocks.py`); the file's 13th row is
//! the final classifier. Thresholds are calibrated on the even samples and every figure is
//! reported on the odd ones. The analytical model's parameters are generic, not fitted to a
//! board: absolute millijoules are indicative, ratios are what to read.
//!
//! Run: `cargo run --release -p dynas-exits --example exits_hadas [-- <a0 csv>]`

use clap::Parser;
use dynas_cost::{AnalyticalModel, AnalyticalParams, DeviceProfile};
use dynas_exits::{
    ConfidenceMeasure, ExitCosts, ExitHead, ExitPosition, ExitTable, HadasExitData,
    SyntheticConfidence, ThresholdCalibration,
};
use dynas_space::{Activation, MbConvSpace, SearchSpace};

/// Early-exit accounting on HADAS's published per-exit accuracies of AttentiveNAS-A0.
#[derive(Parser)]
struct Args {
    /// HADAS per-exit accuracy file of A0.
    #[arg(
        value_name = "A0_CSV",
        default_value = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dynas-data/data/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
        )
    )]
    path: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Args::parse().path;
    let data = HadasExitData::from_csv(&path)?;
    let space = MbConvSpace::attentive_nas().with_num_classes(100)?;
    let network = space.decode(&space.smallest())?;
    let blocks: Vec<usize> = network
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.name.contains("block"))
        .map(|(i, _)| i)
        .collect();
    // HADAS: exits after blocks 5..B-1, then the final classifier's row.
    let n = blocks.len().saturating_sub(5);
    if n == 0 || data.rows.len() != n + 1 {
        return Err(format!(
            "{} rows, expected {n} exits after blocks 5..{} + the final classifier",
            data.rows.len(),
            blocks.len()
        )
        .into());
    }
    let positions: Vec<ExitPosition> = data.rows[..n]
        .iter()
        .zip(&blocks[5..])
        .map(|(r, &layer)| ExitPosition::new(r.name.clone(), layer))
        .collect();
    let top1 = data.top1();
    let table = ExitTable::synthesize(
        positions.clone(),
        &top1[..n],
        top1[n],
        &SyntheticConfidence::default(),
    )?;
    let (calibration, table) = table.split_alternate()?;
    let model = AnalyticalModel::new(
        DeviceProfile::jetson_agx_xavier(),
        AnalyticalParams::default(),
    )?;
    let point = model.device().max_operating_point();
    let head = ExitHead::new(64, Activation::Relu, 100)?;
    let costs = ExitCosts::compute(&network, &positions, &head, &model, &point)?;
    let all: Vec<usize> = (0..n).collect();
    println!(
        "backbone: AttentiveNAS-A0, {} layers, {:.1} M MACs",
        network.layers.len(),
        network.macs() as f64 / 1e6
    );
    let full = costs.full();
    println!(
        "static: top-1 {:.2} %, {:.3} ms, {:.2} mJ",
        100.0 * table.final_accuracy(),
        full.latency_ms,
        full.energy_mj.unwrap_or(f64::NAN)
    );
    for drop in [0.0, 0.01, 0.02] {
        let cal = ThresholdCalibration::new(drop, ConfidenceMeasure::MaxSoftmax, 48)?;
        let selection = calibration.calibrate(&all, &cal, Some(&costs))?.selection;
        let stats = table.evaluate(&selection)?;
        let e = stats.expected_cost(&costs)?;
        let used: Vec<String> = stats
            .exits
            .iter()
            .zip(&stats.active)
            .zip(&stats.rates)
            .filter(|((_, a), _)| **a)
            .map(|((&x, _), rate)| format!("{}:{:.1}%", data.rows[x].name, 100.0 * rate))
            .collect();
        println!(
            "drop <= {:.0} pt: top-1 {:.2} %, expected {:.3} ms / {:.2} mJ / {:.1} M MACs ({:.2}x fewer MACs), exits {}",
            100.0 * drop,
            100.0 * stats.accuracy,
            e.latency_ms,
            e.energy_mj.unwrap_or(f64::NAN),
            e.macs / 1e6,
            full.macs / e.macs,
            used.join(" ")
        );
    }
    let (acc, mean) = table.hadas_mean(&all, &costs)?;
    println!(
        "HADAS unweighted mean over all exits: top-1 {:.2} %, {:.3} ms, {:.2} mJ",
        100.0 * acc,
        mean.latency_ms,
        mean.energy_mj.unwrap_or(f64::NAN)
    );
    let oracle = table.oracle(&all)?;
    let o = oracle.expected_cost(&costs)?;
    println!(
        "oracle (earliest correct exit): top-1 {:.2} %, {:.3} ms, {:.2} mJ",
        100.0 * oracle.accuracy,
        o.latency_ms,
        o.energy_mj.unwrap_or(f64::NAN)
    );
    Ok(())
}
