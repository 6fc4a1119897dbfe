//! HADAS's exit accounting on HADAS's published AttentiveNAS-a0 exits (CIFAR-100), priced by the
//! DVFS lookup-table model of the Jetson AGX Xavier (clock scaling fitted on the measured TX2
//! sweeps): within half a point of accuracy the weighted exits cost less energy than the static
//! network, and DVFS lowers the energy of the network with exits further.

use dynas_cost::{CostModel, DvfsLutModel, OperatingPoint};
use dynas_exits::{
    ConfidenceMeasure, ExitCosts, ExitPosition, ExitSelection, ExitTable, ExpectedCost,
    HadasExitData, PositionCost, SyntheticConfidence, ThresholdCalibration,
};
use dynas_space::{Layer, MbConvSpace, Network, SearchSpace};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data");
const MAX_DROP: f64 = 0.005;
/// Held-out accuracy may miss the calibration half's guarantee by sampling noise (2,000
/// held-out samples: a few samples).
const HELD_OUT_SLACK: f64 = 0.003;

struct A0 {
    network: Network,
    positions: Vec<ExitPosition>,
    calibration: ExitTable,
    held_out: ExitTable,
    model: DvfsLutModel,
}

/// AttentiveNAS-a0 (the space's smallest subnet) with HADAS's exits after blocks 5..16; the
/// file's 13th row is the final classifier.
fn a0() -> A0 {
    let space = MbConvSpace::attentive_nas()
        .with_num_classes(100)
        .expect("100 classes");
    let network = space.decode(&space.smallest()).expect("a0 decodes");
    let blocks: Vec<usize> = network
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.name.contains(".block"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(blocks.len(), 17);
    let data = HadasExitData::from_csv(format!(
        "{DATA}/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
    ))
    .expect("shared a0 exit data");
    assert_eq!(data.rows.len(), 13);
    let positions: Vec<ExitPosition> = data.rows[..12]
        .iter()
        .zip(&blocks[5..])
        .map(|(r, &l)| ExitPosition::new(r.name.clone(), l))
        .collect();
    let top1 = data.top1();
    let synthetic = SyntheticConfidence::new(2.0, 4000, 0).expect("valid");
    let table = ExitTable::synthesize(positions.clone(), &top1[..12], top1[12], &synthetic)
        .expect("synthesised");
    let (calibration, held_out) = table.split_alternate().expect("split");
    A0 {
        network,
        positions,
        calibration,
        held_out,
        model: DvfsLutModel::jetson_agx_xavier(DATA).expect("shared LUT and sweeps"),
    }
}

/// Prefix costs and HADAS's exit head (pooling, classifier, confidence) at `point`.
fn exit_costs(a0: &A0, point: &OperatingPoint) -> ExitCosts {
    let expected = |c: dynas_cost::Cost, macs: u64| ExpectedCost {
        latency_ms: c.latency_ms,
        energy_mj: c.energy_mj,
        macs: macs as f64,
    };
    let breakdown = a0.model.breakdown(&a0.network, point).expect("priced");
    let sums = breakdown.prefix_sums();
    let positions = a0
        .positions
        .iter()
        .map(|p| {
            let input = a0.network.layers[p.after_layer].output();
            let pool = Layer::global_avg_pool("pool", input);
            let c = pool.output().channels;
            let head = Network::new(
                input,
                vec![
                    pool,
                    Layer::linear("fc", c, 100),
                    Layer::linear("conf", c, 1),
                ],
            );
            let head_cost = a0.model.estimate(&head, point).expect("head priced");
            PositionCost {
                position: p.clone(),
                prefix: expected(sums[p.after_layer], 0),
                head: expected(head_cost, head.macs()),
            }
        })
        .collect();
    ExitCosts::from_parts(positions, expected(breakdown.total, a0.network.macs())).expect("valid")
}

fn calibrated(a0: &A0, costs: &ExitCosts) -> ExitSelection {
    let all: Vec<usize> = (0..a0.positions.len()).collect();
    let cal = ThresholdCalibration::new(MAX_DROP, ConfidenceMeasure::MaxSoftmax, 32).expect("ok");
    let r = a0
        .calibration
        .calibrate(&all, &cal, Some(costs))
        .expect("calibrated");
    assert!(r.statistics.accuracy + 1e-12 >= r.target_accuracy);
    r.selection
}

fn energy(c: ExpectedCost) -> f64 {
    c.energy_mj.expect("the DVFS LUT model reports energy")
}

#[test]
fn weighted_exits_cost_less_energy_than_static_within_half_a_point() {
    let a0 = a0();
    let max = a0.model.device().max_operating_point();
    let costs = exit_costs(&a0, &max);
    let selection = calibrated(&a0, &costs);
    let stats = a0.held_out.evaluate(&selection).expect("evaluated");
    assert!(stats.active.iter().any(|a| *a), "no exit fires");
    let static_accuracy = a0.held_out.final_accuracy();
    assert!(
        stats.accuracy >= static_accuracy - MAX_DROP - HELD_OUT_SLACK,
        "{} vs static {static_accuracy}",
        stats.accuracy
    );
    let with_exits = energy(stats.expected_cost(&costs).expect("cost"));
    let static_energy = energy(costs.full());
    assert!(
        with_exits < 0.95 * static_energy,
        "exits {with_exits} mJ vs static {static_energy} mJ"
    );
}

#[test]
fn dvfs_lowers_the_energy_of_the_network_with_exits() {
    let a0 = a0();
    let device = a0.model.device().clone();
    let max = device.max_operating_point();
    let costs_max = exit_costs(&a0, &max);
    let selection = calibrated(&a0, &costs_max);
    let stats = a0.held_out.evaluate(&selection).expect("evaluated");
    let exits_max = energy(stats.expected_cost(&costs_max).expect("cost"));
    // Every 7th CPU clock (and the highest) x every GPU and memory clock.
    let cpus: Vec<u64> = device
        .cpu_hz
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| i % 7 == 0 || *i + 1 == device.cpu_hz.len())
        .map(|(_, c)| c)
        .collect();
    let mut best: Option<(f64, OperatingPoint)> = None;
    for &cpu in &cpus {
        for &gpu in &device.gpu_hz {
            for &memory in &device.memory_hz {
                let point = OperatingPoint::new(Some(cpu), Some(gpu), Some(memory)).unwrap();
                let e = energy(stats.expected_cost(&exit_costs(&a0, &point)).expect("cost"));
                if best.as_ref().is_none_or(|(b, _)| e < *b) {
                    best = Some((e, point));
                }
            }
        }
    }
    let (exits_dvfs, point) = best.expect("a grid");
    assert!(
        exits_dvfs < 0.99 * exits_max,
        "exits + DVFS {exits_dvfs} mJ at {point} vs exits {exits_max} mJ"
    );
    // Thresholds recalibrated at that point keep the budget, and exits still pay there.
    let costs = exit_costs(&a0, &point);
    let recalibrated = a0
        .held_out
        .evaluate(&calibrated(&a0, &costs))
        .expect("evaluated");
    assert!(recalibrated.accuracy >= a0.held_out.final_accuracy() - MAX_DROP - HELD_OUT_SLACK);
    let static_there = energy(costs.full());
    assert!(energy(recalibrated.expected_cost(&costs).expect("cost")) < static_there);
    assert!(exits_dvfs < static_there);
}
