//! GoldenNAS progressive shrinking on the real NAS-Bench-201 table.

mod common;

use dynas_search::pareto::hypervolume;
use dynas_search::shrink::Subspace;
use dynas_search::{Budget, Nsga2, Nsga2Config, Problem, ProgressiveShrinking, ShrinkConfig};
use dynas_space::SearchSpace;

#[test]
fn shrinking_reports_nested_spaces_and_keeps_the_good_region() {
    let problem = common::nb201();
    let shrinking = ProgressiveShrinking::new(ShrinkConfig {
        stages: 3,
        samples_per_stage: 150,
        min_samples_per_choice: 5,
    })
    .unwrap();
    let result = shrinking
        .run(
            problem,
            Nsga2::new(Nsga2Config::default()).unwrap(),
            Budget::evaluations(300).unwrap(),
            4,
        )
        .unwrap();
    assert_eq!(result.stages.len(), 3);
    let mut last = problem.space().cardinality();
    for s in &result.stages {
        let product: u128 = s.choices.iter().map(|c| c.len() as u128).product();
        assert_eq!(product, s.cardinality);
        assert!(s.cardinality <= last);
        last = s.cardinality;
    }
    assert!(last < problem.space().cardinality(), "nothing was dropped");
    assert!(result.stages.iter().any(|s| !s.dropped.is_empty()));
    // The final front is made of parent-space genotypes inside the kept choices.
    for p in &result.front.points {
        problem.space().validate(&p.genotype).unwrap();
        assert!(
            p.genotype
                .genes()
                .iter()
                .zip(&result.allowed)
                .all(|(g, keep)| keep.contains(g))
        );
        assert_eq!(problem.evaluate(&p.genotype).unwrap().values, p.values);
    }
    assert!(result.search.archive.len() <= 300);
    // Shrinking drops dominated choices only: the best front still reachable in the kept space
    // has most of the full space's hypervolume (min latency, max accuracy, ref (max lat, 0)).
    let sub = Subspace::new(problem.space(), result.allowed.clone()).unwrap();
    let max_lat = problem
        .evaluations()
        .map(|(_, e)| e.values[0])
        .fold(0.0, f64::max);
    let norm = |v: &[f64]| vec![v[0] / max_lat, (100.0 - v[1]) / 100.0];
    let all: Vec<Vec<f64>> = problem
        .evaluations()
        .map(|(_, e)| norm(&e.values))
        .collect();
    let kept: Vec<Vec<f64>> = sub
        .enumerate(u128::MAX)
        .unwrap()
        .map(|g| {
            norm(
                &problem
                    .evaluate(&sub.to_parent(&g).unwrap())
                    .unwrap()
                    .values,
            )
        })
        .collect();
    let ratio = hypervolume(&kept, &[1.0, 1.0]).unwrap() / hypervolume(&all, &[1.0, 1.0]).unwrap();
    assert!(
        ratio > 0.97,
        "kept space retains {ratio} of the hypervolume"
    );
}

#[test]
fn bad_schedules_are_rejected() {
    assert!(
        ProgressiveShrinking::new(ShrinkConfig {
            samples_per_stage: 0,
            ..ShrinkConfig::default()
        })
        .is_err()
    );
    let space = common::nb201().space();
    assert!(Subspace::new(space, vec![vec![0]; 5]).is_err());
    assert!(Subspace::new(space, vec![vec![]; 6]).is_err());
}
