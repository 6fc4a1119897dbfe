//! Evaluators composing an accuracy source with a real cost model (HADAS wired to the real
//! exit accounting is tested in `dynas-hadas`).

mod common;

use approx::assert_relative_eq;
use dynas_cost::analytical::{AnalyticalModel, AnalyticalParams};
use dynas_cost::{CostModel, DeviceProfile};
use dynas_search::{
    AccuracySource, Budget, CachedProblem, Constraint, Executor, HardwareProblem, Metric, Nsga2,
    Nsga2Config, Problem, TableAccuracy,
};
use dynas_space::{Genotype, Nb201Space, SearchSpace};

fn accuracy() -> &'static TableAccuracy {
    static ACC: std::sync::OnceLock<TableAccuracy> = std::sync::OnceLock::new();
    ACC.get_or_init(|| TableAccuracy::from_csv(common::NB201, "acc_cifar100").unwrap())
}

fn tx2_model() -> AnalyticalModel {
    AnalyticalModel::new(DeviceProfile::jetson_tx2(), AnalyticalParams::default()).unwrap()
}

fn space() -> Nb201Space {
    Nb201Space::new().with_num_classes(100).unwrap()
}

#[test]
fn hardware_problem_composes_table_accuracy_with_a_cost_model_and_caches() {
    let acc = accuracy();
    acc.check_space(&space()).unwrap();
    let point = DeviceProfile::jetson_tx2().max_operating_point();
    let problem = HardwareProblem::new(
        space(),
        accuracy(),
        tx2_model(),
        point.clone(),
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )
    .unwrap()
    .with_constraint(Constraint {
        metric: Metric::LatencyMs,
        limit: 5.0,
    })
    .unwrap();
    let cached = CachedProblem::new(problem);
    let result = Executor::new(
        &cached,
        Nsga2::new(Nsga2Config::default()).unwrap(),
        Budget::evaluations(60).unwrap(),
    )
    .seed(2)
    .run()
    .unwrap();
    assert_eq!(result.archive.len(), 60);
    let model = tx2_model();
    for r in result.archive.records().iter().take(10) {
        let network = space().decode(&r.genotype).unwrap();
        let a = acc.accuracy(&r.genotype, &network).unwrap();
        let cost = model.estimate(&network, &point).unwrap();
        assert_relative_eq!(r.evaluation.values[0], 100.0 - a);
        assert_relative_eq!(r.evaluation.values[1], cost.latency_ms);
        assert_relative_eq!(r.evaluation.values[2], cost.energy_mj.unwrap());
        assert_relative_eq!(r.evaluation.violation, (cost.latency_ms - 5.0).max(0.0));
        assert_eq!(
            cached.precheck(&r.genotype).unwrap(),
            cost.latency_ms <= 5.0
        );
    }
    // Everything evaluated went through the cache once; a second pass only hits.
    assert_eq!(cached.misses(), 60);
    let again: Vec<Genotype> = result
        .archive
        .records()
        .iter()
        .map(|r| r.genotype.clone())
        .collect();
    let second = cached.evaluate_batch(&again);
    assert!(second.iter().all(|r| r.is_ok()));
    assert_eq!((cached.misses(), cached.hits()), (60, 60));
    // Errors are typed: a metric the model cannot give.
    assert!(HardwareProblem::new(space(), accuracy(), tx2_model(), point.clone(), vec![]).is_err());
}
