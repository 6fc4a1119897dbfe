//! Shared fixtures: the NAS-Bench-201 table, a throwaway PostgreSQL server, the store
//! semantics every back end must have, and the end-to-end search over a store.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dynas_search::{
    Budget, Control, Event, Executor, Nsga2, Nsga2Config, Objective, SearchError, TableProblem,
};
use dynas_store::{
    Completion, FailOutcome, JobOutcome, NewJob, ProblemSpec, Store, StoreError, StoreProblem,
    StudyInfo, Worker,
};

/// The NAS-Bench-201 table carried by the dynas-data crate.
pub fn nb201_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/nb201/nb201_hw.csv"
    ))
}

/// The objectives of the end-to-end searches.
pub fn objectives() -> Vec<Objective> {
    vec![
        Objective::minimize("raspi4_latency"),
        Objective::maximize("acc_cifar100"),
    ]
}

/// The table problem.
pub fn nb201() -> TableProblem {
    TableProblem::from_csv(nb201_path(), objectives()).expect("nb201_hw.csv loads")
}

/// A study record with a made-up problem.
pub fn study(name: &str, fingerprint: &str) -> StudyInfo {
    ProblemSpec::table("/nonexistent/t.csv", objectives()).study(name, fingerprint)
}

/// A job of capability `cap`.
pub fn job(key: &str, cap: &str, max_attempts: u32) -> NewJob {
    NewJob {
        key: key.to_string(),
        genotype: format!("[{}]", key.replace('-', ",")),
        capability: cap.to_string(),
        max_attempts,
    }
}

fn caps(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

/// The semantics every back end must have, on a fresh store.
pub fn semantics(store: &dyn Store) {
    let lease = Duration::from_millis(400);
    // A missing study is named.
    match store.enqueue("nope", &[job("0-0", "eval", 2)]) {
        Err(StoreError::MissingStudy { study, .. }) => assert_eq!(study, "nope"),
        other => panic!("expected MissingStudy, got {other:?}"),
    }
    assert!(matches!(
        store.study("nope"),
        Err(StoreError::MissingStudy { .. })
    ));
    store.create_study(&study("s", "fp1")).unwrap();
    // Reopening with the same description is fine, with other data it is refused.
    store.create_study(&study("s", "fp1")).unwrap();
    match store.create_study(&study("s", "fp2")) {
        Err(StoreError::StudyMismatch { field, .. }) => assert_eq!(field, "fingerprint"),
        other => panic!("expected StudyMismatch, got {other:?}"),
    }
    assert_eq!(store.studies().unwrap(), vec!["s".to_string()]);

    // Idempotent enqueue.
    assert_eq!(
        store
            .enqueue("s", &[job("0-1", "eval", 2), job("0-2", "eval", 2)])
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .enqueue("s", &[job("0-1", "eval", 2), job("0-3", "gpu", 1)])
            .unwrap(),
        1
    );

    // Capability routing: a worker without `gpu` never gets 0-3.
    let a = store
        .claim("s", "A", &caps(&["eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!((a.key.as_str(), a.attempts), ("0-1", 1));
    assert_eq!(a.genotype, "[0,1]");
    let b = store
        .claim("s", "B", &caps(&["eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!(b.key, "0-2");
    assert!(
        store
            .claim("s", "C", &caps(&["eval"]), lease)
            .unwrap()
            .is_none()
    );
    assert!(store.claim("s", "C", &[], lease).unwrap().is_none());
    let g = store
        .claim("s", "G", &caps(&["gpu", "eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!((g.key.as_str(), g.capability.as_str()), ("0-3", "gpu"));
    // Retry to failure: max_attempts 1 for 0-3, so G's failure is final.
    assert_eq!(
        store.fail("s", "0-3", "G", "boom").unwrap(),
        FailOutcome::Failed
    );
    assert_eq!(
        store.fail("s", "0-3", "G", "again").unwrap(),
        FailOutcome::Ignored
    );

    // A completes in time: recorded once; a second hand-in is ignored.
    assert_eq!(
        store.complete("s", "0-1", "A", "{\"x\":1}").unwrap(),
        Completion::Recorded
    );
    assert_eq!(
        store.complete("s", "0-1", "A", "{\"x\":2}").unwrap(),
        Completion::Ignored
    );
    // Someone else's job cannot be completed.
    assert_eq!(
        store.complete("s", "0-2", "A", "{}").unwrap(),
        Completion::Ignored
    );

    // B keeps its lease alive by heartbeat past the original expiry.
    for _ in 0..3 {
        std::thread::sleep(lease / 2);
        assert!(store.heartbeat("s", "0-2", "B", lease).unwrap());
    }
    assert!(
        store
            .claim("s", "C", &caps(&["eval"]), lease)
            .unwrap()
            .is_none()
    );
    // Then B goes silent: its lease expires and C takes the job (attempt 2).
    std::thread::sleep(lease + Duration::from_millis(150));
    let c = store
        .claim("s", "C", &caps(&["eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!((c.key.as_str(), c.attempts), ("0-2", 2));
    assert!(!store.heartbeat("s", "0-2", "B", lease).unwrap());
    // B's late result is ignored, C's recorded: exactly one completion.
    assert_eq!(
        store.complete("s", "0-2", "B", "{\"late\":1}").unwrap(),
        Completion::Ignored
    );
    assert_eq!(
        store.complete("s", "0-2", "C", "{\"ok\":1}").unwrap(),
        Completion::Recorded
    );
    assert_eq!(
        store.outcomes("s", &caps(&["0-2", "0-1", "9-9"])).unwrap(),
        vec![
            JobOutcome::Done("{\"ok\":1}".into()),
            JobOutcome::Done("{\"x\":1}".into()),
            JobOutcome::Missing
        ]
    );

    store.enqueue("s", &[job("1-1", "eval", 2)]).unwrap();
    let r1 = store
        .claim("s", "A", &caps(&["eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!(r1.key, "1-1");
    assert_eq!(
        store.fail("s", "1-1", "A", "oom").unwrap(),
        FailOutcome::Retrying
    );
    let r2 = store
        .claim("s", "B", &caps(&["eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!((r2.key.as_str(), r2.attempts), ("1-1", 2));
    assert_eq!(
        store.fail("s", "1-1", "B", "oom again").unwrap(),
        FailOutcome::Failed
    );
    assert_eq!(
        store.outcomes("s", &caps(&["1-1"])).unwrap(),
        vec![JobOutcome::Failed("oom again".into())]
    );

    // A lease that expires on the last attempt fails the job at the next claim.
    store.enqueue("s", &[job("2-2", "eval", 1)]).unwrap();
    let z = store
        .claim("s", "Z", &caps(&["eval"]), lease)
        .unwrap()
        .unwrap();
    assert_eq!(z.key, "2-2");
    std::thread::sleep(lease + Duration::from_millis(150));
    assert!(
        store
            .claim("s", "A", &caps(&["eval"]), lease)
            .unwrap()
            .is_none()
    );
    match &store.outcomes("s", &caps(&["2-2"])).unwrap()[0] {
        JobOutcome::Failed(e) => assert!(e.contains("lease expired"), "{e}"),
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(
        store.complete("s", "2-2", "Z", "{}").unwrap(),
        Completion::Ignored
    );

    // Status: counts and workers.
    store.worker_heartbeat("s", "A", &caps(&["eval"])).unwrap();
    store
        .worker_heartbeat("s", "G", &caps(&["gpu", "eval"]))
        .unwrap();
    let status = store.status("s").unwrap();
    assert_eq!(
        (status.pending, status.running, status.done, status.failed),
        (0, 0, 2, 3)
    );
    assert_eq!(status.workers.len(), 2);
    assert_eq!(status.workers[1].capabilities, caps(&["gpu", "eval"]));
    assert!(status.workers[0].last_heartbeat_ms > 0);
    let jobs = store.jobs("s").unwrap();
    assert_eq!(jobs.len(), 5);
    for j in &jobs {
        let expected = u32::from(j.state == "done");
        assert_eq!(j.completions, expected, "{j:?}");
    }
}

/// Runs NSGA-II over the NAS-Bench-201 table in one process.
pub fn in_process(budget: usize, seed: u64) -> (String, Vec<(String, String)>) {
    let table = nb201();
    let result = Executor::new(
        &table,
        Nsga2::new(Nsga2Config::default()).unwrap(),
        Budget::evaluations(budget).unwrap(),
    )
    .seed(seed)
    .run()
    .unwrap();
    summary(&result.front, result.archive.records())
}

/// The front as JSON, and every (genotype, evaluation JSON) of the archive in order.
pub fn summary(
    front: &dynas_search::ParetoFront,
    records: &[dynas_search::Record],
) -> (String, Vec<(String, String)>) {
    (
        serde_json::to_string(front).unwrap(),
        records
            .iter()
            .map(|r| {
                (
                    r.genotype.to_string(),
                    serde_json::to_string(&r.evaluation).unwrap(),
                )
            })
            .collect(),
    )
}

/// Sets the flag when dropped, also while a failing test unwinds, so that worker threads
/// stop and the test fails instead of hanging.
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What disturbs an end-to-end run.
pub struct Disruption<'a> {
    /// Evaluations after which the first coordinator is killed (0: never).
    pub kill_coordinator_after: usize,
    /// Number of "killed" workers: each claims one job and vanishes (no heartbeat, no
    /// result), then comes back after its lease was taken over and hands in a wrong result,
    /// which must be ignored.
    pub zombies: usize,
    /// Called once when this many jobs are done (e.g. a database restart).
    pub at_done: Option<(usize, &'a (dyn Fn() + Sync))>,
}

/// NSGA-II over the table through the store, with `workers` worker threads (each with its
/// own connection), the disruptions applied; returns the same summary as [`in_process`] and
/// checks that every job is done with exactly one completion.
pub fn through_store(
    open: &(dyn Fn() -> Box<dyn Store> + Sync),
    study_name: &str,
    workers: usize,
    budget: usize,
    seed: u64,
    disruption: &Disruption<'_>,
) -> (String, Vec<(String, String)>) {
    let lease = Duration::from_millis(1000);
    let spec = ProblemSpec::table(nb201_path(), objectives());
    let stop = AtomicBool::new(false);
    let ignored = AtomicUsize::new(0);
    let table = nb201();
    let outcome = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        // Workers may start before the study exists: create it first.
        {
            let store = open();
            store
                .create_study(&spec.study(study_name, table.content_fingerprint()))
                .unwrap();
        }
        for w in 0..workers {
            let (stop, table) = (&stop, &table);
            handles.push(scope.spawn(move || {
                let store = open();
                let worker = Worker::new(store.as_ref(), study_name, vec![], format!("w{w}"))
                    .lease(lease)
                    .poll_interval(Duration::from_millis(5));
                let report = worker.run(table, || stop.load(Ordering::Relaxed)).unwrap();
                report.ignored
            }));
        }
        for z in 0..disruption.zombies {
            let (stop, ignored) = (&stop, &ignored);
            scope.spawn(move || {
                let store = open();
                let id = format!("zombie{z}");
                let job = loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Some(job) = store
                        .claim(study_name, &id, &["eval".into()], lease)
                        .unwrap()
                    {
                        break job;
                    }
                    std::thread::sleep(Duration::from_millis(3));
                };
                // "Killed": wait until another worker holds the job, then hand in garbage.
                loop {
                    let jobs = store.jobs(study_name).unwrap();
                    let row = jobs.iter().find(|j| j.key == job.key).unwrap();
                    if row.lease_owner.as_deref() != Some(id.as_str()) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let garbage = "{\"values\":[0.0,100.0],\"violation\":0.0}";
                assert_eq!(
                    store.complete(study_name, &job.key, &id, garbage).unwrap(),
                    Completion::Ignored
                );
                ignored.fetch_add(1, Ordering::Relaxed);
            });
        }
        if let Some((at, disrupt)) = disruption.at_done {
            let stop = &stop;
            scope.spawn(move || {
                let store = open();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if store.status(study_name).map(|s| s.done).unwrap_or(0) >= at as u64 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                disrupt();
            });
        }

        let _stop_workers = StopOnDrop(&stop);
        // The coordinator, killed once (an observer stops it mid-search) and restarted.
        if disruption.kill_coordinator_after > 0 {
            let problem = StoreProblem::create(&table, open(), study_name, &spec).unwrap();
            let seen = AtomicUsize::new(0);
            let kill_at = disruption.kill_coordinator_after;
            let err = Executor::new(
                &problem,
                Nsga2::new(Nsga2Config::default()).unwrap(),
                Budget::evaluations(budget).unwrap(),
            )
            .seed(seed)
            .observe(move |e: &Event<'_>| {
                if matches!(e, Event::Evaluated { .. })
                    && seen.fetch_add(1, Ordering::Relaxed) + 1 >= kill_at
                {
                    Control::Stop("killed".into())
                } else {
                    Control::Continue
                }
            })
            .run()
            .unwrap_err();
            assert!(matches!(err, SearchError::Interrupted(_)), "{err}");
        }
        let problem = StoreProblem::create(&table, open(), study_name, &spec).unwrap();
        let result = Executor::new(
            &problem,
            Nsga2::new(Nsga2Config::default()).unwrap(),
            Budget::evaluations(budget).unwrap(),
        )
        .seed(seed)
        .run()
        .unwrap();
        // Let the zombies see their job taken over before stopping everyone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while ignored.load(Ordering::Relaxed) < disruption.zombies && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        summary(&result.front, result.archive.records())
    });
    assert_eq!(
        ignored.load(Ordering::Relaxed),
        disruption.zombies,
        "late duplicates ignored"
    );
    let store = open();
    let jobs = store.jobs(study_name).unwrap();
    assert_eq!(
        jobs.len(),
        outcome.1.len(),
        "one job per evaluated architecture"
    );
    for j in &jobs {
        assert_eq!(j.state, "done", "{j:?}");
        assert_eq!(j.completions, 1, "recorded exactly once: {j:?}");
    }
    outcome
}
