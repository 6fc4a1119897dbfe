//! Early-exit accounting on HADAS's published per-exit accuracies of AttentiveNAS-A0
//! (CIFAR-100), with the analytical Jetson AGX Xavier cost model at its highest clocks.
//!
//! The HADAS file gives per-exit top-1 only, so the exit table is synthesised with
//! [`SyntheticConfidence`] (calibrated, nested confidences; see its docs). The file does not say
//! which block each exit follows: the 13 exits are spread evenly over the 17 MBConv blocks of
//! the A0 subnet, the last after the last block. The analytical model's parameters are generic,
//! not fitted to a board: absolute millijoules are indicative, ratios are what to read.
//!
//! Run: `cargo run --release -p dynas-exits --example exits_hadas [-- <a0 csv>]`

use dynas_cost::{AnalyticalModel, AnalyticalParams, DeviceProfile};
use dynas_exits::{
    ConfidenceMeasure, ExitCosts, ExitHead, HadasExitData, SyntheticConfidence,
    ThresholdCalibration,
};
use dynas_space::{Activation, MbConvSpace, SearchSpace};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
        )
        .to_string()
    });
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
    let n = data.rows.len();
    if blocks.len() < n {
        return Err(format!("{} exits but only {} blocks", n, blocks.len()).into());
    }
    // Exit i (1-based) after block round(i * B / n) - 1.
    let after: Vec<usize> = (1..=n)
        .map(|i| blocks[(i * blocks.len()).div_ceil(n) - 1])
        .collect();
    let table = data.to_table(&after, None, &SyntheticConfidence::default())?;
    let model = AnalyticalModel::new(
        DeviceProfile::jetson_agx_xavier(),
        AnalyticalParams::default(),
    )?;
    let point = model.device().max_operating_point();
    let head = ExitHead::new(64, Activation::Relu, 100)?;
    let costs = ExitCosts::compute(&network, &data.positions(&after)?, &head, &model, &point)?;
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
        let r = table.calibrate(&all, &cal, Some(&costs))?;
        let e = r.statistics.expected_cost(&costs)?;
        let used: Vec<String> = r
            .statistics
            .exits
            .iter()
            .zip(&r.statistics.active)
            .zip(&r.statistics.rates)
            .filter(|((_, a), _)| **a)
            .map(|((&x, _), rate)| format!("{}:{:.1}%", data.rows[x].name, 100.0 * rate))
            .collect();
        println!(
            "drop <= {:.0} pt: top-1 {:.2} %, expected {:.3} ms / {:.2} mJ / {:.1} M MACs ({:.2}x fewer MACs), exits {}",
            100.0 * drop,
            100.0 * r.statistics.accuracy,
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
