//! A study store for dynas: the evaluations of a search queued in a database, claimed with
//! leases by workers on any number of machines, each result recorded once.
//!
//! | item | what |
//! | --- | --- |
//! | [`Store`] | the operations (studies, idempotent enqueue, leased claim, heartbeat, complete, fail, status) |
//! | [`SqliteStore`] | `sqlite://PATH`: one file, several processes on one machine (WAL, `BEGIN IMMEDIATE`) |
//! | [`PostgresStore`] | `postgres://…`: many machines (`FOR UPDATE SKIP LOCKED`, reconnect with backoff) |
//! | [`open_store`] | a store from its URL |
//! | [`StoreProblem`] | a [`dynas_search::Problem`] whose batches are evaluated by the workers: any strategy runs over the store |
//! | [`Worker`] | the worker loop: claim, evaluate with a heartbeat renewing the lease, complete or fail |
//! | [`ProblemSpec`] | the problem's description kept with the study, so a worker needs only the URL |
//! | [`scratch`] | a throwaway PostgreSQL server for tests and benchmarks |
//!
//! Results are stored as JSON text (exact round trip of every `f64`) and handed back to the
//! strategy in input order. Evaluations being deterministic, a generation-synchronous strategy
//! (NSGA-II, the surrogate's batches) ends with the same front over the store as in one
//! process, whatever the number of workers, their speed or their failures.
//!
//! ```no_run
//! use dynas_search::{Budget, Executor, Nsga2, Nsga2Config, Objective, TableProblem};
//! use dynas_store::{ProblemSpec, StoreProblem, open_store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let objectives = vec![Objective::minimize("raspi4_latency"), Objective::maximize("acc_cifar100")];
//! let spec = ProblemSpec::table("/data/nb201_hw.csv", objectives.clone());
//! let table = TableProblem::from_csv("/data/nb201_hw.csv", objectives)?;
//! let store = open_store("sqlite:///tmp/nb201.db")?;
//! let problem = StoreProblem::create(table, store, "nb201", &spec)?;
//! // Workers elsewhere: `dynas worker --store sqlite:///tmp/nb201.db`.
//! let result = Executor::new(&problem, Nsga2::new(Nsga2Config::default())?, Budget::evaluations(200)?)
//!     .seed(1)
//!     .run()?;
//! # let _ = result; Ok(()) }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The tables of a store, as one SQL text for both back ends: `$seq_column` is a line declaring
/// the job sequence column (PostgreSQL's claim order; SQLite uses its `rowid`, so `""`) and
/// `$claim_order` what the claim index adds after `(study, state, kind`.
macro_rules! schema {
    ($seq_column:literal, $claim_order:literal) => {
        concat!(
            "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    problem_kind TEXT NOT NULL,
    problem_spec TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    study TEXT NOT NULL REFERENCES studies(name),
    key TEXT NOT NULL,
",
            $seq_column,
            "    genotype TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'done', 'failed')),
    lease_owner TEXT,
    lease_expires_at BIGINT,
    heartbeat_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    completions INTEGER NOT NULL DEFAULT 0,
    enqueued_at BIGINT NOT NULL,
    PRIMARY KEY (study, key)
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (study, state, kind",
            $claim_order,
            ");
CREATE TABLE IF NOT EXISTS workers (
    id TEXT NOT NULL,
    study TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    jobs_done BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id, study)
);
"
        )
    };
}

mod error;
mod pg;
mod problem;
pub mod scratch;
mod sqlite;
mod worker;

pub use error::{Result, StoreError};
pub use pg::PostgresStore;
pub use problem::{ProblemSpec, StoreProblem, study_front, study_problem};
pub use sqlite::SqliteStore;
pub use worker::{Worker, WorkerReport};

/// The version of the schema this build reads and writes (kept in the `meta` table).
pub const SCHEMA_VERSION: i64 = 1;

/// The capability of a job when none is named: any worker started without `--capability`
/// has it.
pub const DEFAULT_CAPABILITY: &str = "eval";

/// A study as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyInfo {
    /// Its name (unique in the store).
    pub name: String,
    /// The kind of problem (`table`, ...), the `kind` field of [`StudyInfo::problem_spec`].
    pub problem_kind: String,
    /// The problem's description (a [`ProblemSpec`] as JSON).
    pub problem_spec: serde_json::Value,
    /// The digest of the problem's data ([`dynas_search::Problem::fingerprint`]).
    pub fingerprint: String,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The key: the genotype's string form (`0-3-1-...`), unique within a study.
    pub key: String,
    /// The genotype as JSON.
    pub genotype: String,
    /// The capability a worker needs to claim it.
    pub capability: String,
    /// How many claims (failures or expired leases) before the job is failed for good.
    pub max_attempts: u32,
}

/// A job leased to a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The key.
    pub key: String,
    /// The genotype as JSON.
    pub genotype: String,
    /// Its capability.
    pub capability: String,
    /// Claims made so far, this one included.
    pub attempts: u32,
}

/// What became of a result handed in with [`Store::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Written: the job is done.
    Recorded,
    /// Not written: the caller's lease was lost (expired and claimed by another worker, or
    /// the job is done or failed already). Nothing was counted.
    Ignored,
}

/// What became of a failure handed in with [`Store::fail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back to pending, to be retried.
    Retrying,
    /// Failed for good (`max_attempts` reached).
    Failed,
    /// Not applied: the caller's lease was lost.
    Ignored,
}

/// The state of one job as seen by the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Not in the store.
    Missing,
    /// Waiting for a worker.
    Pending,
    /// Leased to a worker.
    Running,
    /// Done, with its result (JSON).
    Done(String),
    /// Failed for good, with the last error.
    Failed(String),
}

/// Every column of a job, for inspection and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    /// The key.
    pub key: String,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// Its capability.
    pub capability: String,
    /// The worker holding (or last holding) the lease.
    pub lease_owner: Option<String>,
    /// Claims made.
    pub attempts: u32,
    /// The claim limit.
    pub max_attempts: u32,
    /// The result (JSON) once done.
    pub result: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// How many times a result was written (1 for every done job).
    pub completions: u32,
}

/// A worker as last seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id.
    pub id: String,
    /// Its capabilities.
    pub capabilities: Vec<String>,
    /// Its last heartbeat, in milliseconds since the Unix epoch (the store's clock).
    pub last_heartbeat_ms: i64,
    /// Results it recorded.
    pub jobs_done: u64,
}

/// Jobs by state and the workers of a study.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyStatus {
    /// Jobs waiting.
    pub pending: u64,
    /// Jobs leased.
    pub running: u64,
    /// Jobs done.
    pub done: u64,
    /// Jobs failed for good.
    pub failed: u64,
    /// The store's clock now, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// The workers that ever took part.
    pub workers: Vec<WorkerInfo>,
}

/// The operations of a study store. Both back ends ([`SqliteStore`], [`PostgresStore`]) have
/// the same schema and the same semantics; every method is safe to call from many threads and
/// many processes at once.
pub trait Store: Send + Sync {
    /// The store's URL, password hidden.
    fn url(&self) -> &str;

    /// Creates the study, or opens it if it exists with the same problem description and
    /// fingerprint ([`StoreError::StudyMismatch`] otherwise). Returns the stored study.
    fn create_study(&self, study: &StudyInfo) -> Result<StudyInfo>;

    /// The study of this name ([`StoreError::MissingStudy`] if none).
    fn study(&self, name: &str) -> Result<StudyInfo>;

    /// The names of all studies, sorted.
    fn studies(&self) -> Result<Vec<String>>;

    /// Adds jobs, in order; a key already in the study is left as it is (idempotent).
    /// Returns how many were new.
    fn enqueue(&self, study: &str, jobs: &[NewJob]) -> Result<usize>;

    /// Leases the oldest claimable job whose capability is one of `capabilities` to `owner`
    /// for `lease`: a pending job, or a running one whose lease expired (its worker is
    /// presumed dead). Running jobs whose lease expired with no attempt left are failed.
    fn claim(
        &self,
        study: &str,
        owner: &str,
        capabilities: &[String],
        lease: Duration,
    ) -> Result<Option<ClaimedJob>>;

    /// Renews `owner`'s lease of the job for `lease` from now; `false` if the lease is lost.
    fn heartbeat(&self, study: &str, key: &str, owner: &str, lease: Duration) -> Result<bool>;

    /// Writes the result (JSON) if `owner` still holds the job's lease and the job is not
    /// done; otherwise nothing is written and [`Completion::Ignored`] comes back.
    fn complete(&self, study: &str, key: &str, owner: &str, result: &str) -> Result<Completion>;

    /// Records a failure: back to pending while attempts remain, failed for good after.
    fn fail(&self, study: &str, key: &str, owner: &str, error: &str) -> Result<FailOutcome>;

    /// The state of each key, in input order.
    fn outcomes(&self, study: &str, keys: &[String]) -> Result<Vec<JobOutcome>>;

    /// Every job of the study, in enqueue order.
    fn jobs(&self, study: &str) -> Result<Vec<JobRow>>;

    /// Jobs by state, and the workers with their last heartbeat.
    fn status(&self, study: &str) -> Result<StudyStatus>;

    /// Records that worker `id` (with these capabilities) is alive.
    fn worker_heartbeat(&self, study: &str, id: &str, capabilities: &[String]) -> Result<()>;
}

/// Opens (creating if needed) the store at `url`: `sqlite://PATH` (`sqlite:///abs/path` or
/// `sqlite://relative/path`) or `postgres://user:password@host:port/database` (also
/// `postgresql://`).
pub fn open_store(url: &str) -> Result<Box<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::MalformedUrl {
                url: url.to_string(),
                reason: "no file path after `sqlite://`".into(),
            });
        }
        Ok(Box::new(SqliteStore::open(path)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::open(url)?))
    } else {
        Err(StoreError::MalformedUrl {
            url: redact(url),
            reason: "expected `sqlite://PATH` or `postgres://user@host:port/database`".into(),
        })
    }
}

/// `url` with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in whole milliseconds (at least 1).
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Checks a study to create against the stored one.
pub(crate) fn check_same_study(url: &str, stored: &StudyInfo, given: &StudyInfo) -> Result<()> {
    if stored.fingerprint != given.fingerprint {
        return Err(StoreError::StudyMismatch {
            url: url.to_string(),
            study: given.name.clone(),
            field: "fingerprint",
            stored: stored.fingerprint.clone(),
            given: given.fingerprint.clone(),
        });
    }
    if stored.problem_spec != given.problem_spec {
        return Err(StoreError::StudyMismatch {
            url: url.to_string(),
            study: given.name.clone(),
            field: "problem_spec",
            stored: stored.problem_spec.to_string(),
            given: given.problem_spec.to_string(),
        });
    }
    Ok(())
}

pub(crate) fn known_list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@host:5432/db"),
            "postgres://u:***@host:5432/db"
        );
        assert_eq!(redact("postgres://u@host/db"), "postgres://u@host/db");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
