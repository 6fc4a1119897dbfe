//! Once-for-all constrained evolution on the real NAS-Bench-201 table: maximise CIFAR-100
//! accuracy under a raspi4 latency limit.

mod common;

use dynas_search::{
    Budget, Evaluation, Executor, Objective, OfaEvolution, OfaEvolutionConfig, Problem, Result,
    TableProblem,
};
use dynas_space::{Genotype, SearchSpace};

/// Accuracy only, with latency as a hard limit known before training (the precheck).
struct UnderLatency<'a> {
    table: &'a TableProblem,
    limit_ms: f64,
    objectives: Vec<Objective>,
}

impl Problem for UnderLatency<'_> {
    fn name(&self) -> &str {
        "nb201-under-latency"
    }
    fn space(&self) -> &dyn SearchSpace {
        self.table.space()
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        let e = self.table.evaluate(genotype)?;
        Ok(e.is_feasible() && e.values[0] <= self.limit_ms)
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        let e = self.table.evaluate(genotype)?;
        Ok(Evaluation::with_violation(
            vec![e.values[1]],
            (e.values[0] - self.limit_ms).max(0.0),
        ))
    }
}

#[test]
fn children_meet_the_limit_and_the_search_finds_a_near_best_architecture() {
    let table = common::nb201();
    let limit_ms = 15.0;
    let problem = UnderLatency {
        table,
        limit_ms,
        objectives: vec![Objective::maximize("acc_cifar100")],
    };
    let best_possible = table
        .evaluations()
        .filter(|(_, e)| e.values[0] <= limit_ms)
        .map(|(_, e)| e.values[1])
        .fold(f64::NEG_INFINITY, f64::max);
    let result = Executor::new(
        &problem,
        OfaEvolution::new(OfaEvolutionConfig::default()).unwrap(),
        Budget::generations(6).unwrap(),
    )
    .seed(0)
    .run()
    .unwrap();
    assert!(
        result
            .archive
            .records()
            .iter()
            .all(|r| r.evaluation.is_feasible())
    );
    let best = result.front.points[0].values[0];
    assert!(best <= best_possible);
    assert!(
        best >= best_possible - 1.0,
        "best {best} vs optimum {best_possible}"
    );
    // OFA keeps 25 parents and adds 100 children: the population after a step is 125.
    assert_eq!(result.state.population.len(), 125);
}

#[test]
fn impossible_limits_and_bad_ratios_are_errors() {
    let table = common::nb201();
    let problem = UnderLatency {
        table,
        limit_ms: 0.0,
        objectives: vec![Objective::maximize("acc_cifar100")],
    };
    let config = OfaEvolutionConfig {
        max_redraws: 50,
        ..OfaEvolutionConfig::default()
    };
    let err = Executor::new(
        &problem,
        OfaEvolution::new(config).unwrap(),
        Budget::generations(2).unwrap(),
    )
    .run()
    .unwrap_err();
    assert!(err.to_string().contains("constraint"), "{err}");
    let bad = OfaEvolutionConfig {
        parent_ratio: 1.5,
        ..OfaEvolutionConfig::default()
    };
    assert!(OfaEvolution::new(bad).is_err());
}
