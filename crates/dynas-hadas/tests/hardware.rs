//! HADAS wired to the real `dynas-exits` accounting and the DVFS-aware analytical cost model,
//! over the NAS-Bench-201 table.

use dynas_cost::DeviceProfile;
use dynas_cost::analytical::{AnalyticalModel, AnalyticalParams};
use dynas_exits::{ExitHead, ExitPosition, ExitTable, HadasExitData, SyntheticConfidence};
use dynas_hadas::{DynamicEvaluator, ExitsEvaluator, Hadas, HadasConfig, InnerProblem};
use dynas_search::{
    AccuracySource, Budget, Executor, HardwareProblem, Metric, Nsga2Config, Problem, Result,
    TableAccuracy,
};
use dynas_space::{Activation, Genotype, Nb201Space, Network};

/// The NAS-Bench-201 table shipped in `dynas-data`.
const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);

const A0_EXITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
);

fn accuracy() -> &'static TableAccuracy {
    static ACC: std::sync::OnceLock<TableAccuracy> = std::sync::OnceLock::new();
    ACC.get_or_init(|| TableAccuracy::from_csv(NB201, "acc_cifar100").unwrap())
}

fn tx2_model() -> AnalyticalModel {
    AnalyticalModel::new(DeviceProfile::jetson_tx2(), AnalyticalParams::default()).unwrap()
}

fn space() -> Nb201Space {
    Nb201Space::new().with_num_classes(100).unwrap()
}

/// Three exits at a quarter, half and three quarters of the backbone; their accuracies are the
/// backbone's table accuracy scaled like HADAS's a0 exits at the same relative depth.
fn exit_source(
    acc: &'static TableAccuracy,
    data: &HadasExitData,
) -> impl Fn(&Genotype, &Network) -> Result<ExitTable> + Send + Sync {
    let top1 = data.top1();
    move |g: &Genotype, n: &Network| {
        let final_acc = acc.accuracy(g, n)? / 100.0;
        let layers = n.layers.len();
        let last = top1[top1.len() - 1];
        let mut positions = Vec::new();
        let mut accs = Vec::new();
        for q in 1..=3 {
            positions.push(ExitPosition::new(format!("exit{q}"), layers * q / 4));
            let row = (top1.len() - 1) * q / 4;
            accs.push((final_acc * top1[row] / last).min(1.0));
        }
        let model = SyntheticConfidence::new(2.0, 1000, 0)?;
        Ok(ExitTable::synthesize(positions, &accs, final_acc, &model)?)
    }
}

#[test]
fn hadas_on_real_exit_accounting_and_dvfs_cost_model() {
    let data = HadasExitData::from_csv(A0_EXITS).unwrap();
    let acc = accuracy();
    let tx2 = DeviceProfile::jetson_tx2();
    let evaluator = ExitsEvaluator::new(
        space(),
        exit_source(acc, &data),
        ExitHead::new(64, Activation::Relu, 100).unwrap(),
        tx2_model(),
        tx2.clone(),
    );
    let backbones = HardwareProblem::new(
        space(),
        accuracy(),
        tx2_model(),
        tx2.max_operating_point(),
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )
    .unwrap();
    let inner = InnerProblem::new(Genotype::new(vec![3; 6]), &evaluator).unwrap();
    // 3 exit bits, 13 GPU clocks, 4 memory clocks (the TX2's CPU clock is not controlled).
    let sizes: Vec<usize> = inner.space().dimensions().iter().map(|d| d.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2, 13, 4]);
    let config = HadasConfig {
        outer: Nsga2Config {
            population: 6,
            offspring: 6,
            ..Nsga2Config::default()
        },
        inner_generations: 3,
        ..HadasConfig::default()
    };
    let result = Executor::new(
        &backbones,
        Hadas::new(config, &evaluator).unwrap(),
        Budget::generations(2).unwrap(),
    )
    .seed(3)
    .run()
    .unwrap();
    let state = &result.state;
    assert!(!state.inner.is_empty());
    for (backbone, front) in &state.inner {
        let static_at_max = evaluator
            .evaluate(backbone, &[], &tx2.max_operating_point())
            .unwrap();
        let best_energy = front
            .iter()
            .map(|p| p.metrics.energy_mj)
            .fold(f64::INFINITY, f64::min);
        assert!(best_energy <= static_at_max.energy_mj, "{backbone}");
        for p in front {
            assert_eq!(
                p.metrics,
                evaluator.evaluate(backbone, &p.exits, &p.point).unwrap()
            );
            assert!(tx2.supports(&p.point));
        }
    }
}
