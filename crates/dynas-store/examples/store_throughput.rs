//! The study store's overhead: the round trip of one job (claim, heartbeat, result) and jobs
//! per second with 1, 2 and 4 workers on trivial evaluations, on SQLite (a file in a temporary
//! folder) and on a loopback PostgreSQL server (a scratch cluster, or `DYNAS_TEST_POSTGRES_URL`).
//!
//! ```sh
//! cargo run --release -p dynas-store --example store_throughput -- [JOBS]
//! ```
//!
//! Workers are threads of this process, each with its own connection (to the database they
//! are separate clients, as processes would be).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dynas_store::scratch::ScratchPostgres;
use dynas_store::{Completion, NewJob, ProblemSpec, Store, open_store};

const RESULT: &str = r#"{"values":[1.5,72.25],"violation":0.0}"#;

fn jobs(n: usize, tag: &str) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob {
            key: format!("{tag}-{i}"),
            genotype: format!("[{i}]"),
            capability: "eval".into(),
            max_attempts: 3,
        })
        .collect()
}

fn new_study(store: &dyn Store, name: &str) {
    let spec = ProblemSpec::table("/bench/table.csv", vec![]);
    store.create_study(&spec.study(name, "bench")).unwrap();
}

/// Median and 90th percentile of one job's round trip (claim + heartbeat + complete), one
/// worker, in microseconds.
fn round_trip(open: &dyn Fn() -> Box<dyn Store>, n: usize) -> (f64, f64) {
    let store = open();
    new_study(store.as_ref(), "rt");
    store.enqueue("rt", &jobs(n, "rt")).unwrap();
    let caps = vec!["eval".to_string()];
    let lease = Duration::from_secs(30);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let job = store.claim("rt", "w", &caps, lease).unwrap().unwrap();
        assert!(store.heartbeat("rt", &job.key, "w", lease).unwrap());
        assert_eq!(
            store.complete("rt", &job.key, "w", RESULT).unwrap(),
            Completion::Recorded
        );
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[n * 9 / 10])
}

/// Jobs per second with `workers` workers draining `n` jobs (claim + complete each; no
/// heartbeat: a trivial evaluation ends long before a third of the lease).
fn throughput(open: &(dyn Fn() -> Box<dyn Store> + Sync), workers: usize, n: usize) -> f64 {
    let study = format!("tp{workers}");
    {
        let store = open();
        new_study(store.as_ref(), &study);
        store.enqueue(&study, &jobs(n, &study)).unwrap();
    }
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (study, done) = (&study, &done);
            scope.spawn(move || {
                let store = open();
                let caps = vec!["eval".to_string()];
                let id = format!("w{w}");
                while let Some(job) = store
                    .claim(study, &id, &caps, Duration::from_secs(30))
                    .unwrap()
                {
                    store.complete(study, &job.key, &id, RESULT).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn report(name: &str, open: &(dyn Fn() -> Box<dyn Store> + Sync), n: usize) {
    let (median, p90) = round_trip(open, n);
    println!(
        "{name}: round trip (claim + heartbeat + result), {n} jobs, 1 worker: median {median:.0} us, p90 {p90:.0} us"
    );
    for workers in [1, 2, 4] {
        let rate = throughput(open, workers, n);
        println!("{name}: {workers} worker(s), {n} trivial jobs: {rate:.0} jobs/s");
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(2000, |s| s.parse().expect("JOBS is a number"));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    report("sqlite", &|| open_store(&url).unwrap(), n);
    match ScratchPostgres::start() {
        Ok(pg) => {
            let url = pg.fresh_database("bench").unwrap();
            report("postgres", &|| open_store(&url).unwrap(), n);
        }
        Err(why) => println!("postgres: skipped ({why})"),
    }
}
