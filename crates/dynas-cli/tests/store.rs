//! `dynas search table --store`, `dynas worker` and `dynas study status` as processes: NSGA-II
//! over the NAS-Bench-201 table with 1, 2 and 4 worker processes, during which two workers are
//! killed with SIGKILL mid-job and the coordinator is killed with SIGKILL and restarted (and, on
//! PostgreSQL, the server is restarted), ends with the same output as the in-process run, each
//! genotype's result recorded exactly once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dynas_store::open_store;
use dynas_store::scratch::ScratchPostgres;

const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);
const BUDGET: &str = "200";
const SEED: &str = "11";

fn dynas() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dynas"));
    c.env("RUST_BACKTRACE", "0");
    c
}

fn search_args(out: &Path) -> Vec<String> {
    [
        "search",
        "table",
        "--csv",
        NB201,
        "--minimize",
        "raspi4_latency",
        "--maximize",
        "acc_cifar100",
        "--budget",
        BUDGET,
        "--seed",
        SEED,
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

/// Child processes killed (SIGKILL) when dropped, also when a test fails.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn worker(url: &str, id: &str, cost_ms: u64, log: &Path) -> Child {
    dynas()
        .args(["worker", "--store", url, "--study", "nb", "--lease", "1"])
        .args(["--id", id, "--simulated-cost-ms", &cost_ms.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn done_jobs(url: &str) -> u64 {
    // The study may not exist yet, and the server may be restarting.
    open_store(url)
        .and_then(|s| s.status("nb"))
        .map(|s| s.done)
        .unwrap_or(0)
}

/// The in-process result (`--out` JSON).
fn reference(dir: &Path) -> serde_json::Value {
    let out = dir.join("local.json");
    let status = dynas().args(search_args(&out)).status().unwrap();
    assert!(status.success());
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// One run through the store at `url` with `workers` healthy workers, two victims killed
/// mid-job, the coordinator killed once and `restart` called once midway.
fn through_store(
    dir: &Path,
    url: &str,
    workers: usize,
    restart: &dyn Fn(),
    expected: &serde_json::Value,
) {
    let out = dir.join(format!("store{workers}.json"));
    let log = |name: &str| dir.join(format!("{name}-{workers}.log"));
    let _workers = Reaper(
        (0..workers)
            .map(|w| worker(url, &format!("w{w}"), 5, &log(&format!("w{w}"))))
            .collect(),
    );
    // Victims: slow evaluations (3 s), killed while they hold a job.
    let ids = ["victim0", "victim1"];
    let mut victims = Reaper(
        ids.iter()
            .map(|id| worker(url, id, 3_000, &log(id)))
            .collect(),
    );

    let mut args = search_args(&out);
    args.extend(["--store", url, "--study", "nb"].map(String::from));
    let spawn_coordinator = |name: &str| {
        dynas()
            .args(&args)
            .stderr(std::fs::File::create(log(name)).unwrap())
            .spawn()
            .unwrap()
    };
    let mut coordinator = Reaper(vec![spawn_coordinator("coordinator1")]);
    let mut lost = Vec::new();
    for (id, child) in ids.iter().zip(&mut victims.0) {
        let mut held = None;
        wait_until(
            &format!("{id} to hold a job"),
            Duration::from_secs(60),
            || {
                held = open_store(url)
                    .and_then(|s| s.jobs("nb"))
                    .ok()
                    .and_then(|jobs| {
                        jobs.into_iter()
                            .find(|j| j.state == "running" && j.lease_owner.as_deref() == Some(id))
                    });
                held.is_some()
            },
        );
        child.kill().unwrap(); // SIGKILL, mid-job
        child.wait().unwrap();
        lost.push(held.unwrap().key);
    }
    wait_until("60 results", Duration::from_secs(60), || {
        done_jobs(url) >= 60
    });
    let first = &mut coordinator.0[0];
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(!out.exists(), "the killed coordinator wrote no output");

    // Restarted with the same seed: it replays and finds the results in the store.
    coordinator.0.push(spawn_coordinator("coordinator2"));
    // The restart comes once the new coordinator is connected (it says so on stderr) and
    // 120 results are in; the new coordinator and the workers must then reconnect.
    wait_until("120 results", Duration::from_secs(60), || {
        done_jobs(url) >= 120
            && std::fs::read_to_string(log("coordinator2"))
                .is_ok_and(|t| t.contains("evaluating through study"))
    });
    eprintln!("restart after {} results", done_jobs(url));
    restart();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = coordinator.0[1].try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "coordinator did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log("coordinator2")).unwrap()
    );
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(&got, expected, "output with {workers} workers");

    let store = open_store(url).unwrap();
    let jobs = store.jobs("nb").unwrap();
    assert_eq!(jobs.len(), 200);
    for j in &jobs {
        assert_eq!((j.state.as_str(), j.completions), ("done", 1), "{j:?}");
    }
    // The victims' jobs were taken over after their leases expired.
    for key in &lost {
        let j = jobs.iter().find(|j| &j.key == key).unwrap();
        let owner = j.lease_owner.as_deref().unwrap_or("");
        assert!(j.attempts >= 2 && owner.starts_with('w'), "{j:?}");
    }

    // `dynas study status` reports the study.
    let status = dynas().args(["study", "status", url]).output().unwrap();
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("200 done, 0 failed"), "{text}");
    assert!(text.contains("worker victim0"), "{text}");
    let front_points = expected["front"].as_array().unwrap().len();
    assert!(
        text.contains(&format!("front ({front_points} points")),
        "{text}"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dynas-cli-store-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn sqlite_workers_killed_coordinator_killed_same_output() {
    let dir = scratch("sqlite");
    let expected = reference(&dir);
    for workers in [1, 2, 4] {
        let url = format!("sqlite://{}/w{workers}.db", dir.display());
        through_store(&dir, &url, workers, &|| {}, &expected);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgres_workers_killed_coordinator_killed_server_restarted_same_output() {
    let pg = match ScratchPostgres::start() {
        Ok(pg) => pg,
        Err(why) => {
            eprintln!("PostgreSQL test skipped: {why}");
            return;
        }
    };
    let dir = scratch("postgres");
    let expected = reference(&dir);
    let restart = || {
        if pg.dir().is_some() {
            pg.stop().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            pg.start_again().unwrap();
        }
    };
    for workers in [1, 2, 4] {
        let url = pg.fresh_database(&format!("cli{workers}")).unwrap();
        through_store(&dir, &url, workers, &restart, &expected);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn worker_refuses_other_data_and_errors_are_clear() {
    let dir = scratch("refuse");
    // A study made over a copy of the table, then the copy changed.
    let csv = dir.join("t.csv");
    std::fs::copy(NB201, &csv).unwrap();
    let url = format!("sqlite://{}/r.db", dir.display());
    let store = open_store(&url).unwrap();
    let objectives = vec![dynas::search::Objective::minimize("raspi4_latency")];
    let table = dynas::search::TableProblem::from_csv(&csv, objectives.clone()).unwrap();
    let spec = dynas_store::ProblemSpec::table(&csv, objectives);
    store
        .create_study(&spec.study("nb", table.content_fingerprint()))
        .unwrap();
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push('\n');
    std::fs::write(&csv, text).unwrap();
    let out = dynas()
        .args(["worker", "--store", &url, "--max-jobs", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fingerprint"), "{err}");
    // A missing study, a malformed URL.
    let out = dynas()
        .args(["study", "status", &url, "--study", "other"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no study `other`"),
        "{err}"
    );
    let out = dynas()
        .args(["worker", "--store", "mysql://x/y"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("malformed store URL"),
        "{err}"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoint_resume_through_the_store_matches() {
    let dir = scratch("checkpoint");
    let mut expected = reference(&dir);
    let url = format!("sqlite://{}/c.db", dir.display());
    let _worker = Reaper(vec![worker(&url, "w0", 5, &dir.join("w0.log"))]);
    let out = dir.join("resumed.json");
    let checkpoint = dir.join("c.json");
    let mut args = search_args(&out);
    args.extend(["--store", &url, "--study", "nb", "--checkpoint"].map(String::from));
    args.push(checkpoint.display().to_string());
    let mut first = Reaper(vec![
        dynas().args(&args).stderr(Stdio::null()).spawn().unwrap(),
    ]);
    // Killed once a checkpoint is written and the next generation is under way.
    wait_until("a checkpoint", Duration::from_secs(60), || {
        checkpoint.exists()
    });
    let at = done_jobs(&url);
    wait_until("more results", Duration::from_secs(60), || {
        done_jobs(&url) > at
    });
    first.0[0].kill().unwrap();
    first.0[0].wait().unwrap();
    args.push("--resume".into());
    let status = dynas().args(&args).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let mut got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(got["resumed"], serde_json::json!(true));
    got["resumed"] = serde_json::json!(false);
    expected["resumed"] = serde_json::json!(false);
    assert_eq!(got, expected);
    let jobs = open_store(&url).unwrap().jobs("nb").unwrap();
    assert!(jobs.iter().all(|j| j.completions == 1) && jobs.len() == 200);
    let _ = std::fs::remove_dir_all(&dir);
}
