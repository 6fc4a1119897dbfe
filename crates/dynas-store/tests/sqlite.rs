//! The SQLite back end: store semantics, errors, and NSGA-II over the NAS-Bench-201 table
//! through the store with 1, 2 and 4 workers, a killed coordinator and killed workers.

mod common;

use dynas_store::{SCHEMA_VERSION, SqliteStore, Store, StoreError, open_store};

#[test]
fn sqlite_store_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&format!("sqlite://{}/s.db", dir.path().display())).unwrap();
    common::semantics(store.as_ref());
}

#[test]
fn sqlite_schema_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = '0' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaVersion {
            found,
            expected,
            url,
        }) => {
            assert_eq!(found, "0");
            assert_eq!(expected, SCHEMA_VERSION);
            assert!(url.ends_with("old.db"), "{url}");
        }
        other => panic!("expected SchemaVersion, got {other:?}"),
    }
    // The same store reopened by this version is accepted.
    let fresh = dir.path().join("new.db");
    drop(SqliteStore::open(&fresh).unwrap());
    SqliteStore::open(&fresh).unwrap();
}

#[test]
fn malformed_urls_are_refused() {
    for url in [
        "mysql://x/y",
        "sqlite://",
        "nonsense",
        "postgres://u:pw@host:notaport/db",
    ] {
        match open_store(url) {
            Err(StoreError::MalformedUrl { url: shown, .. }) => {
                assert!(!shown.contains("pw"), "password shown: {shown}")
            }
            Err(other) => panic!("{url}: expected MalformedUrl, got {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
}

#[test]
fn sqlite_missing_study_names_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("m.db")).unwrap();
    store.create_study(&common::study("a", "f")).unwrap();
    let e = store.study("b").unwrap_err();
    assert!(matches!(e, StoreError::MissingStudy { .. }));
    let text = e.to_string();
    assert!(
        text.contains("`b`") && text.contains("studies: a"),
        "{text}"
    );
}

#[test]
fn sqlite_search_matches_in_process_with_1_2_4_workers_and_failures() {
    let (budget, seed) = (200, 7);
    let reference = common::in_process(budget, seed);
    assert_eq!(reference.1.len(), budget);
    let dir = tempfile::tempdir().unwrap();
    for workers in [1, 2, 4] {
        let path = dir.path().join(format!("w{workers}.db"));
        let url = format!("sqlite://{}", path.display());
        let open = || open_store(&url).unwrap();
        let disruption = common::Disruption {
            kill_coordinator_after: 70,
            zombies: if workers == 1 { 1 } else { 2 },
            at_done: None,
        };
        let got = common::through_store(&open, "nb201", workers, budget, seed, &disruption);
        assert_eq!(got.0, reference.0, "front with {workers} workers");
        assert_eq!(got.1, reference.1, "archive with {workers} workers");
    }
}

/// Any strategy runs over the store: the surrogate-assisted search (GP batches) too.
#[test]
fn sqlite_surrogate_search_matches_in_process() {
    use dynas_search::{Budget, Executor, Surrogate, SurrogateParams};
    use dynas_store::{ProblemSpec, StoreProblem, Worker};
    use std::sync::atomic::{AtomicBool, Ordering};
    let small = || {
        Surrogate::new(
            SurrogateParams {
                initial: 12,
                batch: 6,
                ..SurrogateParams::default()
            }
            .check()
            .unwrap(),
        )
    };
    let table = common::nb201();
    let budget = Budget::evaluations(36).unwrap();
    let local = Executor::new(&table, small(), budget)
        .seed(5)
        .run()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/surrogate.db", dir.path().display());
    let spec = ProblemSpec::table(common::nb201_path(), common::objectives());
    let problem = StoreProblem::create(&table, open_store(&url).unwrap(), "s", &spec).unwrap();
    let stop = AtomicBool::new(false);
    let remote = std::thread::scope(|scope| {
        for w in 0..2 {
            let (stop, table, url) = (&stop, &table, &url);
            scope.spawn(move || {
                let store = open_store(url).unwrap();
                Worker::new(store.as_ref(), "s", vec![], format!("w{w}"))
                    .poll_interval(std::time::Duration::from_millis(5))
                    .run(table, || stop.load(Ordering::Relaxed))
                    .unwrap()
            });
        }
        let _stop_workers = common::StopOnDrop(&stop);
        let result = Executor::new(&problem, small(), budget)
            .seed(5)
            .run()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        result
    });
    assert_eq!(
        common::summary(&remote.front, remote.archive.records()),
        common::summary(&local.front, local.archive.records())
    );
}

/// A worker's heartbeat keeps its lease through an evaluation twice as long as the
/// lease: no other worker takes the job, the result is recorded on the first attempt.
#[test]
fn sqlite_heartbeat_keeps_a_long_evaluation() {
    use dynas_store::{ProblemSpec, Worker};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/hb.db", dir.path().display());
    let table = common::nb201();
    let spec = ProblemSpec::table(common::nb201_path(), common::objectives());
    let store = open_store(&url).unwrap();
    store
        .create_study(&spec.study("hb", table.content_fingerprint()))
        .unwrap();
    store
        .enqueue("hb", &[common::job("0-1-2-3-4-0", "eval", 1)])
        .unwrap();
    let report = std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let store = open_store(&url).unwrap();
            Worker::new(store.as_ref(), "hb", vec![], "slow")
                .lease(Duration::from_millis(1500))
                .simulated_cost(Duration::from_millis(3000))
                .max_jobs(1)
                .idle_exit(Duration::from_secs(5))
                .run(&table, || false)
                .unwrap()
        });
        // Once the slow worker holds the job, a second one keeps trying to claim it.
        let other = open_store(&url).unwrap();
        let held = std::time::Instant::now();
        while other.jobs("hb").unwrap()[0].lease_owner.as_deref() != Some("slow") {
            assert!(
                held.elapsed() < Duration::from_secs(10),
                "the slow worker never claimed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(2500) {
            let claimed = other
                .claim("hb", "thief", &["eval".into()], Duration::from_secs(5))
                .unwrap();
            assert!(
                claimed.is_none(),
                "lease lost during a heartbeat-kept evaluation"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        slow.join().unwrap()
    });
    assert_eq!((report.recorded, report.ignored), (1, 0));
    let jobs = store.jobs("hb").unwrap();
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("done", 1));
}
