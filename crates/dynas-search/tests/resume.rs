//! A search killed at any point and resumed from its checkpoint gives exactly the result of an
//! uninterrupted run with the same seed.

mod common;

use dynas_search::{
    AgingConfig, AgingEvolution, Budget, Control, Event, Executor, Nsga2, Nsga2Config,
    RandomSearch, SearchError, Strategy,
};

fn kill_and_resume<S, F>(make: F, budget: usize, kill_points: &[usize])
where
    S: Strategy,
    S::State: PartialEq,
    F: Fn() -> S,
{
    let problem = common::nb201();
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = Executor::new(problem, make(), Budget::evaluations(budget).unwrap())
        .seed(11)
        .run()
        .expect("uninterrupted run");
    assert_eq!(reference.archive.len(), budget);
    for &kill in kill_points {
        let path = dir.path().join(format!("ckpt-{kill}.json"));
        // Killed right after the `kill`-th new evaluation (possibly mid-generation).
        let interrupted = Executor::new(problem, make(), Budget::evaluations(budget).unwrap())
            .seed(11)
            .checkpoint(&path, 1)
            .unwrap()
            .observe(move |e: &Event<'_>| match e {
                Event::Evaluated { index, .. } if index + 1 == kill => {
                    Control::Stop(format!("killed at {kill}"))
                }
                _ => Control::Continue,
            })
            .run();
        assert!(
            matches!(interrupted, Err(SearchError::Interrupted(_))),
            "kill point {kill}"
        );
        // Resumed by a fresh executor with a fresh strategy object (the checkpoint's seed).
        let resumed = if path.exists() {
            Executor::new(problem, make(), Budget::evaluations(budget).unwrap())
                .resume_from(&path)
                .expect("checkpoint loads")
                .run()
                .expect("resumed run")
        } else {
            // Killed before the first generation finished: nothing to resume, start over.
            Executor::new(problem, make(), Budget::evaluations(budget).unwrap())
                .seed(11)
                .run()
                .expect("restarted run")
        };
        assert_eq!(resumed.archive, reference.archive, "kill point {kill}");
        assert_eq!(resumed.front, reference.front, "kill point {kill}");
        assert_eq!(resumed.state, reference.state, "kill point {kill}");
        assert_eq!(resumed.rng, reference.rng, "kill point {kill}");
        assert_eq!(
            resumed.generations, reference.generations,
            "kill point {kill}"
        );
    }
}

#[test]
fn nsga2_resumes_exactly_at_any_kill_point() {
    // Population 24: kill points before, at and after generation boundaries, and the last one.
    kill_and_resume(
        || Nsga2::new(Nsga2Config::default()).unwrap(),
        200,
        &[1, 23, 24, 25, 48, 61, 150, 199, 200],
    );
}

#[test]
fn aging_and_random_resume_exactly() {
    kill_and_resume(
        || AgingEvolution::new(AgingConfig::default()).unwrap(),
        150,
        &[7, 50, 63, 149],
    );
    kill_and_resume(|| RandomSearch::new(30).unwrap(), 120, &[5, 30, 31, 119]);
}

#[test]
fn stopping_on_generations_then_extending_matches_one_long_run() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    let make = || Nsga2::new(Nsga2Config::default()).unwrap();
    let long = Executor::new(problem, make(), Budget::generations(9).unwrap())
        .seed(3)
        .run()
        .unwrap();
    let short = Executor::new(problem, make(), Budget::generations(4).unwrap())
        .seed(3)
        .checkpoint(&path, 2)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(short.generations, 4);
    let extended = Executor::new(problem, make(), Budget::generations(9).unwrap())
        .resume_from(&path)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(extended.archive, long.archive);
    assert_eq!(extended.state, long.state);
    assert_eq!(extended.generations, 9);
}

#[test]
fn foreign_or_corrupt_checkpoints_are_typed_errors_naming_the_file() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    Executor::new(
        problem,
        Nsga2::new(Nsga2Config::default()).unwrap(),
        Budget::generations(2).unwrap(),
    )
    .checkpoint(&path, 1)
    .unwrap()
    .run()
    .unwrap();
    // Another configuration.
    let other = Nsga2Config {
        population: 30,
        ..Nsga2Config::default()
    };
    let err = Executor::new(
        problem,
        Nsga2::new(other).unwrap(),
        Budget::generations(3).unwrap(),
    )
    .resume_from(&path)
    .err()
    .expect("config mismatch");
    assert!(
        matches!(&err, SearchError::CheckpointMismatch { field, .. } if field == "strategy_config"),
        "{err}"
    );
    // Another strategy.
    let err = Executor::new(
        problem,
        RandomSearch::new(10).unwrap(),
        Budget::generations(3).unwrap(),
    )
    .resume_from(&path)
    .err()
    .expect("strategy mismatch");
    assert!(err.to_string().contains("ckpt.json"), "{err}");
    // Truncated file.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = Executor::new(
        problem,
        Nsga2::new(Nsga2Config::default()).unwrap(),
        Budget::generations(3).unwrap(),
    )
    .resume_from(&path)
    .err()
    .expect("truncated");
    assert!(matches!(err, SearchError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("ckpt.json"), "{err}");
}
