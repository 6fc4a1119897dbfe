//! The worker loop: claim a job, evaluate it while a heartbeat thread renews the lease, hand
//! the result in (or the failure), repeat.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use dynas_search::{Evaluation, Problem};
use dynas_space::Genotype;

use crate::{Completion, DEFAULT_CAPABILITY, FailOutcome, Result, Store, StoreError};

/// What a worker did before it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Jobs claimed.
    pub claimed: usize,
    /// Results written.
    pub recorded: usize,
    /// Results not written because the lease had been lost (a late duplicate).
    pub ignored: usize,
    /// Evaluations that failed (handed back for a retry or failed for good).
    pub failed: usize,
    /// Why it stopped.
    pub stop_reason: String,
}

/// A worker of one study: claims the jobs whose capability it has, evaluates them with the
/// given problem, and writes each result once.
pub struct Worker<'a> {
    store: &'a dyn Store,
    study: String,
    capabilities: Vec<String>,
    id: String,
    lease: Duration,
    poll: Duration,
    max_jobs: Option<usize>,
    idle_exit: Option<Duration>,
    delay: Duration,
}

impl std::fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("store", &self.store.url())
            .field("study", &self.study)
            .field("capabilities", &self.capabilities)
            .field("id", &self.id)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<'a> Worker<'a> {
    /// A worker `id` (unique among the study's workers: it owns the leases) of `study` with
    /// `capabilities` (none: [`DEFAULT_CAPABILITY`]). Lease 30 s, renewed every third of it;
    /// polls every 50 ms when idle; runs until `stop` says so.
    pub fn new(
        store: &'a dyn Store,
        study: impl Into<String>,
        capabilities: Vec<String>,
        id: impl Into<String>,
    ) -> Self {
        let capabilities = if capabilities.is_empty() {
            vec![DEFAULT_CAPABILITY.to_string()]
        } else {
            capabilities
        };
        Self {
            store,
            study: study.into(),
            capabilities,
            id: id.into(),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(50),
            max_jobs: None,
            idle_exit: None,
            delay: Duration::ZERO,
        }
    }

    /// The lease taken on each job (renewed every third of it while evaluating).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How long to wait between claims when no job is claimable.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Stops after this many claimed jobs.
    pub fn max_jobs(mut self, n: usize) -> Self {
        self.max_jobs = Some(n);
        self
    }

    /// Stops after this long without a claimable job.
    pub fn idle_exit(mut self, after: Duration) -> Self {
        self.idle_exit = Some(after);
        self
    }

    /// Sleeps this long before each evaluation (a stand-in for an expensive one, for tests
    /// and benchmarks of the store itself).
    pub fn simulated_cost(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `stop()` returns true, `max_jobs` jobs were claimed or the worker was idle
    /// for `idle_exit`. Store errors end the run (the PostgreSQL back end first reconnects for
    /// up to its reconnect limit); an evaluation error is handed back to the store as a
    /// failure (retried elsewhere up to the job's attempt limit).
    pub fn run(&self, problem: &dyn Problem, stop: impl Fn() -> bool) -> Result<WorkerReport> {
        let mut report = WorkerReport::default();
        let mut idle_since = Instant::now();
        let mut last_seen = Instant::now();
        self.store
            .worker_heartbeat(&self.study, &self.id, &self.capabilities)?;
        loop {
            if stop() {
                report.stop_reason = "asked to stop".into();
                break;
            }
            if self.max_jobs.is_some_and(|m| report.claimed >= m) {
                report.stop_reason = format!("{} jobs claimed", report.claimed);
                break;
            }
            if last_seen.elapsed() >= self.lease / 3 {
                self.store
                    .worker_heartbeat(&self.study, &self.id, &self.capabilities)?;
                last_seen = Instant::now();
            }
            let Some(job) =
                self.store
                    .claim(&self.study, &self.id, &self.capabilities, self.lease)?
            else {
                if let Some(limit) = self.idle_exit
                    && idle_since.elapsed() >= limit
                {
                    report.stop_reason = format!("idle for {limit:?}");
                    break;
                }
                std::thread::sleep(self.poll);
                continue;
            };
            report.claimed += 1;
            let genotype: std::result::Result<Genotype, _> = serde_json::from_str(&job.genotype);
            let outcome = match genotype {
                Ok(g) => self.evaluate_leased(problem, &job.key, &g),
                Err(e) => Err(format!(
                    "genotype `{}` is not valid JSON: {e}",
                    job.genotype
                )),
            };
            match outcome {
                Ok(evaluation) => {
                    let json =
                        serde_json::to_string(&evaluation).map_err(|e| StoreError::Corrupt {
                            url: self.store.url().to_string(),
                            study: self.study.clone(),
                            key: job.key.clone(),
                            field: "result",
                            reason: e.to_string(),
                        })?;
                    match self
                        .store
                        .complete(&self.study, &job.key, &self.id, &json)?
                    {
                        Completion::Recorded => report.recorded += 1,
                        Completion::Ignored => report.ignored += 1,
                    }
                }
                Err(error) => {
                    report.failed += 1;
                    if self.store.fail(&self.study, &job.key, &self.id, &error)?
                        == FailOutcome::Ignored
                    {
                        report.ignored += 1;
                    }
                }
            }
            idle_since = Instant::now();
        }
        Ok(report)
    }

    /// Evaluates `genotype` while a second thread renews the lease.
    fn evaluate_leased(
        &self,
        problem: &dyn Problem,
        key: &str,
        genotype: &Genotype,
    ) -> std::result::Result<Evaluation, String> {
        let (done, ticks) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let every = self.lease / 3;
                while let Err(mpsc::RecvTimeoutError::Timeout) = ticks.recv_timeout(every) {
                    match self.store.heartbeat(&self.study, key, &self.id, self.lease) {
                        Ok(true) => {}
                        // Lost (expired and claimed elsewhere) or the store is gone: the result
                        // will be refused or retried; nothing more to renew.
                        Ok(false) | Err(_) => break,
                    }
                }
            });
            if !self.delay.is_zero() {
                std::thread::sleep(self.delay);
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                problem.evaluate(genotype)
            }));
            let _ = done.send(());
            match result {
                Ok(Ok(evaluation)) => Ok(evaluation),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the evaluation panicked".to_string()),
            }
        })
    }
}
