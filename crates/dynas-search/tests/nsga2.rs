//! NSGA-II and the other strategies on the real NAS-Bench-201 table.

mod common;

use std::collections::HashSet;

use approx::assert_relative_eq;
use dynas_search::pareto::{hypervolume, igd, non_dominated};
use dynas_search::{
    AgingConfig, AgingEvolution, Budget, Executor, Nsga2, Nsga2Config, RandomSearch, StopReason,
};

fn normalised(points: &[Vec<f64>], max_latency: f64) -> Vec<Vec<f64>> {
    points
        .iter()
        .map(|p| vec![p[0] / max_latency, (100.0 - p[1]) / 100.0])
        .collect()
}

#[test]
fn true_front_of_the_table_has_the_published_40_points() {
    let problem = common::nb201();
    let front = problem.true_front();
    assert_eq!(front.len(), 40);
    // Every point has its arch string and no point dominates another.
    assert!(
        front
            .points
            .iter()
            .all(|p| p.label.as_deref().is_some_and(|l| l.starts_with('|')))
    );
    let mins = front.minimised();
    assert_eq!(non_dominated(&mins).len(), 40);
}

#[test]
fn nsga2_spends_exactly_the_distinct_budget_and_beats_random() {
    let problem = common::nb201();
    let max_latency = problem
        .evaluations()
        .map(|(_, e)| e.values[0])
        .fold(f64::NEG_INFINITY, f64::max);
    let raw = |f: &dynas_search::ParetoFront| -> Vec<Vec<f64>> {
        f.points.iter().map(|p| p.values.clone()).collect()
    };
    let truth = normalised(&raw(&problem.true_front()), max_latency);
    let true_hv = hypervolume(&truth, &[1.0, 1.0]).unwrap();
    let mut nsga_hv = 0.0;
    let mut random_hv = 0.0;
    for seed in 0..3 {
        let result = Executor::new(
            problem,
            Nsga2::new(Nsga2Config::default()).unwrap(),
            Budget::evaluations(500).unwrap(),
        )
        .seed(seed)
        .run()
        .unwrap();
        assert_eq!(result.stop_reason, StopReason::Evaluations);
        assert_eq!(result.archive.len(), 500);
        let distinct: HashSet<_> = result
            .archive
            .records()
            .iter()
            .map(|r| &r.genotype)
            .collect();
        assert_eq!(distinct.len(), 500);
        nsga_hv += hypervolume(&normalised(&raw(&result.front), max_latency), &[1.0, 1.0]).unwrap();
        let random = Executor::new(
            problem,
            RandomSearch::new(50).unwrap(),
            Budget::evaluations(500).unwrap(),
        )
        .seed(seed)
        .run()
        .unwrap();
        random_hv +=
            hypervolume(&normalised(&raw(&random.front), max_latency), &[1.0, 1.0]).unwrap();
    }
    let (nsga, random) = (nsga_hv / 3.0 / true_hv, random_hv / 3.0 / true_hv);
    assert!(nsga > random, "nsga2 {nsga} vs random {random}");
    assert!(nsga > 0.99, "nsga2 reaches {nsga} of the true hypervolume");
}

#[test]
fn same_seed_same_search_other_seed_other_search() {
    let problem = common::nb201();
    let run = |seed| {
        Executor::new(
            problem,
            Nsga2::new(Nsga2Config::default()).unwrap(),
            Budget::evaluations(120).unwrap(),
        )
        .seed(seed)
        .run()
        .unwrap()
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(a.archive, b.archive);
    assert_ne!(a.archive, c.archive);
}

#[test]
fn a_full_budget_finds_the_exact_front_and_igd_drops_to_zero() {
    // A long aging-evolution run on the table converges to (nearly) the true front; IGD of the
    // true front to itself is 0 and decreases with more evaluations.
    let problem = common::nb201();
    let truth = problem.true_front().minimised();
    let mut last = f64::INFINITY;
    for budget in [100, 1000, 4000] {
        let r = Executor::new(
            problem,
            AgingEvolution::new(AgingConfig::default()).unwrap(),
            Budget::evaluations(budget).unwrap(),
        )
        .seed(1)
        .run()
        .unwrap();
        let d = igd(&r.front.minimised(), &truth).unwrap();
        assert!(d < last, "budget {budget}: igd {d} not below {last}");
        last = d;
    }
    assert_relative_eq!(igd(&truth, &truth).unwrap(), 0.0);
}
