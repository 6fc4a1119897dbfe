//! Unit tests of `executor`.

use super::checkpoint::fingerprint_difference;
use super::*;
use crate::problem::{Evaluation, Objective};
use crate::random::RandomSearch;
use crate::table::TableSpace;
use dynas_space::{Dimension, SearchSpace};
use std::fs::OpenOptions;
use std::io::Write as _;

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

/// A search of `Toy` (values 0..=2, nothing fails) by random search, 2 per generation.
fn toy_search(problem: &Toy, evaluations: usize) -> Executor<'_, RandomSearch> {
    Executor::new(
        problem,
        RandomSearch::new(2).unwrap(),
        Budget::evaluations(evaluations).unwrap(),
    )
    .seed(3)
}

#[test]
fn a_checkpoint_is_a_snapshot_plus_a_journal_and_resumes_exactly_from_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search.json");
    let problem = Toy::with_values(&[0, 1, 2]);
    let full = toy_search(&problem, 20).run().unwrap();
    // Stopped after generation 4: the snapshot holds generation 1, the journal the others.
    let stop = |e: &Event<'_>| match e {
        Event::Generation { generation: 4, .. } => Control::Stop("simulated kill".into()),
        _ => Control::Continue,
    };
    let stopped = toy_search(&problem, 20)
        .checkpoint(&path, 1)
        .unwrap()
        .observe(stop)
        .run();
    assert!(matches!(stopped, Err(SearchError::Interrupted(_))));
    let journal = journal::journal_path(&path);
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert_eq!(lines, 1 + 3, "a header and generations 2 to 4");
    // A torn last line (a kill during an append) is ignored.
    let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
    file.write_all(br#"{"generation":5,"stal"#).unwrap();
    drop(file);
    let resumed = toy_search(&problem, 20)
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.archive, full.archive);
    assert_eq!(resumed.rng, full.rng);
    // A finished run leaves the snapshot alone.
    assert!(!journal.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn a_checkpoint_in_use_is_refused_and_stale_temporaries_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search.json");
    // A temporary left by a killed run, and an unrelated file that must stay.
    let stale = dir.path().join(".search.json.4242.tmp.json");
    let other = dir.path().join(".other.json.4242.tmp.json");
    std::fs::write(&stale, "half").unwrap();
    std::fs::write(&other, "keep").unwrap();
    let problem = Toy::with_values(&[0, 1, 2]);
    let held = journal::Journal::lock(&path).unwrap();
    assert!(!stale.exists() && other.exists());
    let second = toy_search(&problem, 10).checkpoint(&path, 1).unwrap().run();
    match second {
        Err(e @ SearchError::CheckpointLocked { .. }) => {
            assert!(e.to_string().contains("held by another run"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    drop(held);
    let result = toy_search(&problem, 10).checkpoint(&path, 1).unwrap().run();
    assert!(result.is_ok());
}

#[test]
fn a_population_larger_than_the_space_is_refused_at_once() {
    let problem = Toy::with_values(&[0, 1, 2]);
    let config = crate::Nsga2Config {
        population: 1_000_000_000,
        ..crate::Nsga2Config::default()
    };
    // Refused before drawing: 10^11 draws would never end.
    let result = Executor::new(
        &problem,
        crate::Nsga2::new(config).unwrap(),
        Budget::evaluations(10).unwrap(),
    )
    .run();
    match result {
        Err(SearchError::InvalidParameter { name, reason }) => {
            assert_eq!(name, "population");
            assert!(reason.contains("only 27 architectures"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fingerprints_of_named_parts_say_which_part_differs() {
    assert_eq!(
        fingerprint_difference(
            "supernet=1a; data=2b; validation=100",
            "supernet=1a; data=3c; validation=200"
        )
        .as_deref(),
        Some("`data`, `validation`")
    );
    assert_eq!(fingerprint_difference("abc", "abd"), None);
    assert_eq!(fingerprint_difference("a=1", "b=1"), None);
}

#[test]
fn the_saved_strategy_is_read_back_and_the_hint_is_the_callers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search.json");
    assert!(checkpoint_strategy(&path).unwrap().is_none());
    let problem = Toy::with_values(&[0, 1, 2]);
    toy_search(&problem, 6)
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    let (name, config) = checkpoint_strategy(&path).unwrap().unwrap();
    assert_eq!(name, "random");
    assert_eq!(config, RandomSearch::new(2).unwrap().config());
    // Another strategy configuration: refused, with the caller's way to start over.
    let err = Executor::new(
        &problem,
        RandomSearch::new(3).unwrap(),
        Budget::evaluations(6).unwrap(),
    )
    .checkpoint(&path, 1)
    .unwrap()
    .mismatch_hint("pass --overwrite-checkpoint")
    .run()
    .unwrap_err();
    assert!(
        matches!(err, SearchError::CheckpointMismatch { .. })
            && err.to_string().contains("pass --overwrite-checkpoint"),
        "{err}"
    );
}
