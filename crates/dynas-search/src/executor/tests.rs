//! Unit tests of `executor`.

use super::*;
use crate::problem::Evaluation;
use crate::random::RandomSearch;
use crate::table::TableSpace;
use dynas_space::{Dimension, SearchSpace};

/// Sum of genes (minimised); genotypes with first gene 3 fail to evaluate.
struct Toy {
    space: TableSpace,
    objectives: Vec<Objective>,
}

impl Toy {
    /// Three genes of values 0..=3; a first gene of 3 fails to evaluate.
    fn new() -> Self {
        Self::with_values(&[0, 1, 2, 3])
    }

    /// Three genes over `values`; leave 3 out for a space where nothing fails.
    fn with_values(values: &[i64]) -> Self {
        let dims = (0..3)
            .map(|i| Dimension::from_values(format!("g{i}"), values).unwrap())
            .collect();
        Self {
            space: TableSpace::new("toy", dims),
            objectives: vec![Objective::minimize("sum")],
        }
    }
}

impl Problem for Toy {
    fn name(&self) -> &str {
        "toy"
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn evaluate(&self, g: &Genotype) -> Result<Evaluation> {
        if g.genes()[0] == 3 {
            return Err(SearchError::Evaluation {
                genotype: g.to_string(),
                reason: "simulated training crash".into(),
            });
        }
        Ok(Evaluation::feasible(vec![
            g.genes().iter().sum::<usize>() as f64
        ]))
    }
}

#[test]
fn budgets_are_validated_and_combined() {
    assert!(Budget::evaluations(0).is_err());
    assert!(Budget::generations(0).is_err());
    assert!(Budget::time(Duration::ZERO).is_err());
    assert!(Budget::default().check().is_err());
    let b = Budget::generations(3)
        .unwrap()
        .and_evaluations(7)
        .unwrap()
        .and_time(Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        (b.max_generations(), b.max_evaluations()),
        (Some(3), Some(7))
    );
}

#[test]
fn space_exhaustion_and_evaluation_errors_are_reported() {
    // The 64-point space contains genotypes that fail: the search ends with that typed error.
    let toy = Toy::new();
    let err = Executor::new(
        &toy,
        RandomSearch::new(8).unwrap(),
        Budget::generations(100).unwrap(),
    )
    .run()
    .unwrap_err();
    assert!(
        err.to_string().contains("simulated training crash"),
        "{err}"
    );

    let ok = Toy {
        space: TableSpace::new(
            "toy2",
            (0..2)
                .map(|i| Dimension::from_values(format!("g{i}"), &[0, 1, 2]).unwrap())
                .collect(),
        ),
        objectives: vec![Objective::minimize("sum")],
    };
    let r = Executor::new(
        &ok,
        RandomSearch::new(4).unwrap(),
        Budget::time(Duration::from_secs(60)).unwrap(),
    )
    .run()
    .unwrap();
    assert_eq!(r.stop_reason, StopReason::SpaceExhausted);
    assert_eq!(r.archive.len(), 9);
    assert_eq!(r.front.points[0].values, vec![0.0]);
}

#[test]
fn warm_start_is_evaluated_first_and_counts_against_the_budget() {
    let problem = Toy::with_values(&[0, 1, 2]);
    let corner = Genotype::new(vec![0, 0, 0]);
    let result = Executor::new(
        &problem,
        RandomSearch::new(4).unwrap(),
        Budget::evaluations(6).unwrap(),
    )
    .warm_start(vec![corner.clone(), Genotype::new(vec![2, 2, 2])])
    .seed(3)
    .run()
    .unwrap();
    assert_eq!(result.archive.records()[0].genotype, corner);
    assert_eq!(result.archive.len(), 6);
    // The optimum was given, so the front is exactly it.
    assert_eq!(result.front.points.len(), 1);
    assert_eq!(result.front.points[0].genotype, corner);
}

#[test]
fn warm_start_outside_the_space_is_refused() {
    let problem = Toy::new();
    let err = Executor::new(
        &problem,
        RandomSearch::new(4).unwrap(),
        Budget::evaluations(6).unwrap(),
    )
    .warm_start(vec![Genotype::new(vec![0, 9, 0])])
    .run()
    .unwrap_err();
    assert!(err.to_string().contains("warm_start"), "{err}");
}

#[test]
fn nsga2_starts_its_population_with_the_warm_start() {
    use crate::{Nsga2, Nsga2Config};
    let problem = Toy::with_values(&[0, 1, 2]);
    let given = Genotype::new(vec![1, 2, 0]);
    let config = Nsga2Config {
        population: 4,
        offspring: 4,
        ..Nsga2Config::default()
    };
    let result = Executor::new(
        &problem,
        Nsga2::new(config).unwrap(),
        Budget::generations(1).unwrap(),
    )
    .warm_start(vec![given.clone()])
    .run()
    .unwrap();
    assert_eq!(result.archive.len(), 4);
    assert_eq!(result.archive.records()[0].genotype, given);
}
