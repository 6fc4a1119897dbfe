//! `dynas worker`: evaluate the jobs of a study store.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use dynas_store::{StoreError, Worker, open_store, study_problem};

/// Arguments of `dynas worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The study store: `sqlite://PATH` or `postgres://user:password@host:port/database`.
    #[arg(long)]
    store: String,
    /// The study to work for [default: the store's only study].
    #[arg(long)]
    study: Option<String>,
    /// A capability of this worker (repeatable): it claims only jobs that need one of them
    /// [default: `eval`, the capability of `dynas search … --store` jobs].
    #[arg(long = "capability", value_name = "NAME")]
    capabilities: Vec<String>,
    /// Stop after this many jobs.
    #[arg(long, value_name = "N")]
    max_jobs: Option<usize>,
    /// Stop after this many seconds without a job to claim [default: never].
    #[arg(long, value_name = "SECONDS")]
    idle_exit: Option<f64>,
    /// The lease taken on each job, in seconds; renewed every third of it while evaluating.
    /// A worker that dies loses its jobs to others once its leases expire.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    lease: f64,
    /// This worker's id in the store [default: HOSTNAME-PID].
    #[arg(long)]
    id: Option<String>,
    /// Sleep this many milliseconds before each evaluation (a stand-in for an expensive one,
    /// for tests and benchmarks of the store).
    #[arg(long, value_name = "MS", default_value_t = 0, hide = true)]
    simulated_cost_ms: u64,
}

fn seconds(flag: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag}: {s} is not a positive number of seconds"))
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Runs `dynas worker`.
pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store)?;
    // Workers may be started before the search creates its study: wait for it (up to
    // --idle-exit).
    let idle_exit = args
        .idle_exit
        .map(|s| seconds("--idle-exit", s))
        .transpose()?;
    let started = Instant::now();
    let mut said = false;
    let (study, problem) = loop {
        match study_problem(store.as_ref(), args.study.as_deref()) {
            Err(StoreError::MissingStudy { .. })
                if idle_exit.is_none_or(|limit| started.elapsed() < limit) =>
            {
                if !said {
                    eprintln!("waiting for the study to be created in {}", store.url());
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            other => break other?,
        }
    };
    let id = args.id.clone().unwrap_or_else(default_id);
    let mut worker = Worker::new(store.as_ref(), &study.name, args.capabilities.clone(), &id)
        .lease(seconds("--lease", args.lease)?)
        .simulated_cost(Duration::from_millis(args.simulated_cost_ms));
    if let Some(n) = args.max_jobs {
        worker = worker.max_jobs(n);
    }
    if let Some(limit) = idle_exit {
        worker = worker.idle_exit(limit);
    }
    eprintln!(
        "worker {id}: study `{}` ({} problem) in {}",
        study.name,
        study.problem_kind,
        store.url()
    );
    let report = worker.run(problem.as_ref(), || false)?;
    eprintln!(
        "worker {id}: {} claimed, {} recorded, {} ignored (lease lost), {} failed; stopped: {}",
        report.claimed, report.recorded, report.ignored, report.failed, report.stop_reason
    );
    Ok(())
}
