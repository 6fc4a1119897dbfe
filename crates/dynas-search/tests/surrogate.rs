//! The surrogate-assisted strategy: exact resume, budgets, a large space (evolved candidates)
//! with a constraint, and search quality on NAS-Bench-201 against random search.

mod common;

use dynas_search::pareto::hypervolume;
use dynas_search::{
    Budget, Control, Evaluation, Event, Executor, Objective, Problem, RandomSearch, Result,
    SearchError, Surrogate, SurrogateParams, TableSpace,
};
use dynas_space::{Dimension, Genotype, SearchSpace};

fn small() -> Surrogate {
    Surrogate::new(
        SurrogateParams {
            initial: 12,
            batch: 6,
            ..SurrogateParams::default()
        }
        .check()
        .expect("valid params"),
    )
}

#[test]
fn surrogate_resumes_exactly_at_any_kill_point() {
    let problem = common::nb201();
    let budget = 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = Executor::new(problem, small(), Budget::evaluations(budget).unwrap())
        .seed(5)
        .run()
        .expect("uninterrupted run");
    assert_eq!(reference.archive.len(), budget);
    for kill in [3, 12, 13, 20, 39] {
        let path = dir.path().join(format!("ckpt-{kill}.json"));
        let interrupted = Executor::new(problem, small(), Budget::evaluations(budget).unwrap())
            .seed(5)
            .checkpoint(&path, 1)
            .unwrap()
            .observe(move |e: &Event<'_>| match e {
                Event::Evaluated { index, .. } if index + 1 == kill => {
                    Control::Stop(format!("killed at {kill}"))
                }
                _ => Control::Continue,
            })
            .run();
        assert!(matches!(interrupted, Err(SearchError::Interrupted(_))));
        let resumed = if path.exists() {
            // No seed: a resumed search takes the checkpoint's (a different one is refused).
            Executor::new(problem, small(), Budget::evaluations(budget).unwrap())
                .resume_from(&path)
                .expect("checkpoint loads")
                .run()
                .expect("resumed run")
        } else {
            Executor::new(problem, small(), Budget::evaluations(budget).unwrap())
                .seed(5)
                .run()
                .expect("restarted run")
        };
        assert_eq!(resumed.archive, reference.archive, "kill point {kill}");
        assert_eq!(resumed.state, reference.state, "kill point {kill}");
        assert_eq!(resumed.rng, reference.rng, "kill point {kill}");
        assert_eq!(resumed.generations, reference.generations);
    }
}

#[test]
fn another_configuration_cannot_resume_the_checkpoint() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    Executor::new(problem, small(), Budget::generations(2).unwrap())
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    let other = Surrogate::new(
        SurrogateParams {
            initial: 12,
            batch: 7,
            ..SurrogateParams::default()
        }
        .check()
        .unwrap(),
    );
    let err = Executor::new(problem, other, Budget::generations(3).unwrap())
        .resume_from(&path)
        .err()
        .expect("config mismatch");
    assert!(
        matches!(&err, SearchError::CheckpointMismatch { field, .. } if field == "strategy_config"),
        "{err}"
    );
}

fn nb201_hv_share(front: &dynas_search::ParetoFront, max_latency: f64, true_hv: f64) -> f64 {
    let points: Vec<Vec<f64>> = front
        .points
        .iter()
        .map(|p| vec![p.values[0] / max_latency, (100.0 - p.values[1]) / 100.0])
        .collect();
    hypervolume(&points, &[1.0, 1.0]).unwrap() / true_hv
}

#[test]
fn surrogate_beats_random_search_on_nb201_with_few_evaluations() {
    let problem = common::nb201();
    let max_latency = problem
        .evaluations()
        .map(|(_, e)| e.values[0])
        .fold(f64::NEG_INFINITY, f64::max);
    let truth = problem.true_front();
    let true_hv = nb201_hv_share(&truth, max_latency, 1.0);
    let budget = Budget::evaluations(60).unwrap();
    let (mut surrogate, mut random) = (0.0, 0.0);
    for seed in 0..3 {
        let s = Executor::new(problem, small(), budget)
            .seed(seed)
            .run()
            .unwrap();
        assert_eq!(s.archive.len(), 60);
        surrogate += nb201_hv_share(&s.front, max_latency, true_hv) / 3.0;
        let r = Executor::new(problem, RandomSearch::new(12).unwrap(), budget)
            .seed(seed)
            .run()
            .unwrap();
        random += nb201_hv_share(&r.front, max_latency, true_hv) / 3.0;
    }
    assert!(
        surrogate > random,
        "surrogate {surrogate:.4} vs random {random:.4}"
    );
}

/// Twelve genes of eight choices (too many to enumerate): minimise the sum of the genes and the
/// sum of squared (7 - gene); genotypes whose first gene exceeds 5 violate a constraint.
struct Large {
    space: TableSpace,
    objectives: Vec<Objective>,
}

impl Large {
    fn new() -> Self {
        let dims = (0..12)
            .map(|i| Dimension::from_values(format!("g{i}"), &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap())
            .collect();
        Self {
            space: TableSpace::new("large", dims),
            objectives: vec![Objective::minimize("up"), Objective::minimize("down")],
        }
    }
}

impl Problem for Large {
    fn name(&self) -> &str {
        "large"
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn evaluate(&self, g: &Genotype) -> Result<Evaluation> {
        let up: usize = g.genes().iter().sum();
        let down: usize = g.genes().iter().map(|v| (7 - v) * (7 - v)).sum();
        let violation = g.genes()[0].saturating_sub(5) as f64;
        Ok(Evaluation::with_violation(
            vec![up as f64, down as f64],
            violation,
        ))
    }
}

#[test]
fn large_constrained_spaces_are_searched_by_evolved_candidates() {
    let problem = Large::new();
    let params = SurrogateParams {
        initial: 16,
        batch: 8,
        enumerate_limit: 1_000,
        pool: 400,
        evolve_rounds: 3,
        ..SurrogateParams::default()
    };
    let result = Executor::new(
        &problem,
        Surrogate::new(params.check().unwrap()),
        Budget::evaluations(64).unwrap(),
    )
    .seed(3)
    .run()
    .unwrap();
    assert_eq!(result.archive.len(), 64);
    assert_eq!(result.state.random_batches, 0);
    let random = Executor::new(
        &problem,
        RandomSearch::new(8).unwrap(),
        Budget::evaluations(64).unwrap(),
    )
    .seed(3)
    .run()
    .unwrap();
    let hv = |front: &dynas_search::ParetoFront| {
        let points: Vec<Vec<f64>> = front.points.iter().map(|p| p.values.clone()).collect();
        hypervolume(&points, &[84.0, 588.0]).unwrap()
    };
    assert!(
        hv(&result.front) > hv(&random.front),
        "surrogate {} vs random {}",
        hv(&result.front),
        hv(&random.front)
    );
    // After the initial design, the model steers away from the constraint.
    let late = &result.archive.records()[16..];
    let violating = late.iter().filter(|r| !r.evaluation.is_feasible()).count();
    assert!(violating < late.len() / 4, "{violating} of {}", late.len());
}

/// Three binary genes; the objectives do not matter to the initial design.
struct Cube {
    space: TableSpace,
    objectives: Vec<Objective>,
}

impl Problem for Cube {
    fn name(&self) -> &str {
        "cube"
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn evaluate(&self, g: &Genotype) -> Result<Evaluation> {
        let ones = g.genes().iter().sum::<usize>() as f64;
        Ok(Evaluation::feasible(vec![ones, 3.0 - ones]))
    }
}

#[test]
fn the_initial_design_is_balanced_and_spread() {
    // Four balanced points on the 3-cube are at most 2 apart pairwise, and only the even- or
    // odd-weight code achieves it (about 1 balanced design in 4): the design must find it.
    let dims = (0..3)
        .map(|i| Dimension::from_values(format!("g{i}"), &[0, 1]).unwrap())
        .collect();
    let problem = Cube {
        space: TableSpace::new("cube", dims),
        objectives: vec![Objective::minimize("ones"), Objective::minimize("zeros")],
    };
    let params = SurrogateParams {
        initial: 4,
        batch: 2,
        ..SurrogateParams::default()
    };
    for seed in 0..10 {
        let result = Executor::new(
            &problem,
            Surrogate::new(params.check().unwrap()),
            Budget::evaluations(4).unwrap(),
        )
        .seed(seed)
        .run()
        .unwrap();
        let genes: Vec<&[usize]> = result
            .archive
            .records()
            .iter()
            .map(|r| r.genotype.genes())
            .collect();
        assert_eq!(genes.len(), 4);
        for k in 0..3 {
            assert_eq!(genes.iter().filter(|g| g[k] == 1).count(), 2, "seed {seed}");
        }
        for i in 0..4 {
            for j in 0..i {
                let h = (0..3).filter(|&k| genes[i][k] != genes[j][k]).count();
                assert_eq!(h, 2, "seed {seed}: {:?} {:?}", genes[i], genes[j]);
            }
        }
    }
}
