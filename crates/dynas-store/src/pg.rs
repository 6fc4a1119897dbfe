//! The PostgreSQL back end: many machines, claims with `FOR UPDATE SKIP LOCKED`, leases on the
//! server's clock, reconnection with a bounded backoff.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use crate::{
    ClaimedJob, Completion, FailOutcome, JobOutcome, JobRow, NewJob, Result, SCHEMA_VERSION, Store,
    StoreError, StudyInfo, StudyStatus, WorkerInfo, check_same_study, known_list, millis, redact,
};

/// The server's clock in milliseconds since the Unix epoch: leases do not depend on the
/// workers' clocks.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

const SCHEMA: &str = schema!("    seq BIGSERIAL,\n", ", seq");

/// A store in a PostgreSQL database (`postgres://user:password@host:port/database`). Every
/// operation that loses its connection (server restarted, network cut) reconnects with a
/// doubling backoff (50 ms to 2 s) and is retried, for up to [`PostgresStore::reconnect_limit`]
/// (60 s by default); operations are idempotent or guarded by the lease owner, so a retry
/// never counts a result twice.
pub struct PostgresStore {
    url: String,
    config: Config,
    client: Mutex<Option<Conn>>,
    reconnect_limit: Duration,
}

/// A connection with its prepared statements (each statement is prepared once per
/// connection: one round trip per operation instead of two).
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

type PgResult<T> = std::result::Result<T, postgres::Error>;

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            statements: HashMap::new(),
        }
    }

    fn prepare(&mut self, sql: &str) -> PgResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<Row>> {
        let s = self.prepare(sql)?;
        self.client.query(&s, params)
    }

    fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Option<Row>> {
        let s = self.prepare(sql)?;
        self.client.query_opt(&s, params)
    }

    fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Row> {
        let s = self.prepare(sql)?;
        self.client.query_one(&s, params)
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<u64> {
        let s = self.prepare(sql)?;
        self.client.execute(&s, params)
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .field("reconnect_limit", &self.reconnect_limit)
            .finish_non_exhaustive()
    }
}

/// Whether `e` means the connection is gone (worth reconnecting), not that the statement is
/// wrong.
fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn classify(url: &str, operation: &'static str, e: &postgres::Error) -> StoreError {
    let reason = describe(e);
    let url = url.to_string();
    match e.code().map(|c| c.code()) {
        Some("28P01" | "28000") => StoreError::BadCredentials { url, reason },
        Some("3D000") => StoreError::MissingDatabase { url, reason },
        _ if is_connection_error(e) => StoreError::Unreachable { url, reason },
        _ => StoreError::Database {
            url,
            operation,
            reason,
        },
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (one attempt: an unreachable server or bad
    /// credentials are reported at once), creates the schema if the database has none, and
    /// refuses a store of another schema version ([`StoreError::SchemaVersion`]).
    pub fn open(url: &str) -> Result<Self> {
        let shown = redact(url);
        let mut config: Config =
            url.parse()
                .map_err(|e: postgres::Error| StoreError::MalformedUrl {
                    url: shown.clone(),
                    reason: e.to_string(),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let mut client = config
            .connect(NoTls)
            .map_err(|e| classify(&shown, "connect", &e))?;
        Self::init_schema(&mut client, &shown)?;
        Ok(Self {
            url: shown,
            config,
            client: Mutex::new(Some(Conn::new(client))),
            reconnect_limit: Duration::from_secs(60),
        })
    }

    /// How long an operation keeps reconnecting after its connection is lost before it gives
    /// up with [`StoreError::Unreachable`].
    pub fn reconnect_limit(mut self, limit: Duration) -> Self {
        self.reconnect_limit = limit;
        self
    }

    fn init_schema(client: &mut Client, url: &str) -> Result<()> {
        let err = |e: postgres::Error| classify(url, "create schema", &e);
        let mut tx = client.transaction().map_err(err)?;
        // One process creates the schema at a time.
        tx.execute("SELECT pg_advisory_xact_lock(7313031)", &[])
            .map_err(err)?;
        let has_meta: bool = tx
            .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
            .map_err(err)?
            .get(0);
        let found: Option<String> = if has_meta {
            tx.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
                .map_err(err)?
                .map(|r| r.get(0))
        } else {
            None
        };
        match found {
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(StoreError::SchemaVersion {
                    found: v,
                    expected: SCHEMA_VERSION,
                    url: url.to_string(),
                });
            }
            None => {
                tx.batch_execute(SCHEMA).map_err(err)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&SCHEMA_VERSION.to_string()],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Runs `f` on a live connection, reconnecting and retrying while the connection is lost
    /// (up to the reconnect limit).
    fn run<T>(
        &self,
        operation: &'static str,
        mut f: impl FnMut(&mut Conn) -> PgResult<T>,
    ) -> Result<T> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + self.reconnect_limit;
        let mut delay = Duration::from_millis(50);
        loop {
            let error = match guard.as_mut().filter(|c| !c.client.is_closed()) {
                Some(client) => match f(client) {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                },
                None => match self.config.connect(NoTls) {
                    Ok(client) => {
                        *guard = Some(Conn::new(client));
                        continue;
                    }
                    Err(e) => e,
                },
            };
            if !is_connection_error(&error) || Instant::now() >= deadline {
                return Err(classify(&self.url, operation, &error));
            }
            *guard = None;
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    fn study_names(client: &mut Conn) -> PgResult<Vec<String>> {
        Ok(client
            .query("SELECT name FROM studies ORDER BY name", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn missing(&self, study: &str) -> StoreError {
        let known = match self.run("list studies", Self::study_names) {
            Ok(names) => known_list(&names),
            Err(e) => format!("unknown: {e}"),
        };
        StoreError::MissingStudy {
            url: self.url.clone(),
            study: study.to_string(),
            known,
        }
    }

    fn read_study(&self, name: &str) -> Result<Option<StudyInfo>> {
        let row = self.run("read study", |c| {
            c.query_opt(
                "SELECT name, problem_kind, problem_spec, fingerprint, created_at FROM studies \
                 WHERE name = $1",
                &[&name],
            )
        })?;
        row.map(|r| {
            let spec: String = r.get(2);
            let problem_spec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt {
                url: self.url.clone(),
                study: name.to_string(),
                key: String::new(),
                field: "problem_spec",
                reason: e.to_string(),
            })?;
            Ok(StudyInfo {
                name: r.get(0),
                problem_kind: r.get(1),
                problem_spec,
                fingerprint: r.get(3),
                created_at_ms: r.get(4),
            })
        })
        .transpose()
    }
}

impl Store for PostgresStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn create_study(&self, study: &StudyInfo) -> Result<StudyInfo> {
        let spec = study.problem_spec.to_string();
        self.run("create study", |c| {
            c.execute(
                &format!(
                    "INSERT INTO studies (name, problem_kind, problem_spec, fingerprint, \
                     created_at) VALUES ($1, $2, $3, $4, {NOW_MS}) ON CONFLICT (name) DO NOTHING"
                ),
                &[&study.name, &study.problem_kind, &spec, &study.fingerprint],
            )
        })?;
        let stored = self
            .read_study(&study.name)?
            .ok_or_else(|| self.missing(&study.name))?;
        check_same_study(&self.url, &stored, study)?;
        Ok(stored)
    }

    fn study(&self, name: &str) -> Result<StudyInfo> {
        self.read_study(name)?.ok_or_else(|| self.missing(name))
    }

    fn studies(&self) -> Result<Vec<String>> {
        self.run("list studies", Self::study_names)
    }

    fn enqueue(&self, study: &str, jobs: &[NewJob]) -> Result<usize> {
        if self.read_study(study)?.is_none() {
            return Err(self.missing(study));
        }
        let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
        let genotypes: Vec<&str> = jobs.iter().map(|j| j.genotype.as_str()).collect();
        let kinds: Vec<&str> = jobs.iter().map(|j| j.capability.as_str()).collect();
        let max: Vec<i32> = jobs
            .iter()
            .map(|j| i32::try_from(j.max_attempts).unwrap_or(i32::MAX))
            .collect();
        let n = self.run("enqueue", |c| {
            // One statement: the rows keep their order (`seq`) and a retry after a lost
            // connection adds nothing twice.
            c.execute(
                &format!(
                    "INSERT INTO jobs (study, key, genotype, kind, max_attempts, enqueued_at) \
                     SELECT $1, k, g, c, m, {NOW_MS} FROM unnest($2::text[], $3::text[], \
                     $4::text[], $5::int[]) WITH ORDINALITY AS t(k, g, c, m, i) ORDER BY i \
                     ON CONFLICT (study, key) DO NOTHING"
                ),
                &[&study, &keys, &genotypes, &kinds, &max],
            )
        })?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn claim(
        &self,
        study: &str,
        owner: &str,
        capabilities: &[String],
        lease: Duration,
    ) -> Result<Option<ClaimedJob>> {
        if capabilities.is_empty() {
            return Ok(None);
        }
        let lease_ms = millis(lease);
        let sql = format!(
            "WITH expired AS (UPDATE jobs SET state = 'failed', lease_owner = NULL, \
             error = 'lease expired on its last attempt (' || attempts || ' of ' || \
             max_attempts || ')' WHERE (study, key) IN (SELECT study, key FROM jobs \
             WHERE study = $1 AND state = 'running' AND lease_expires_at < {NOW_MS} \
             AND attempts >= max_attempts FOR UPDATE SKIP LOCKED)), \
             pick AS (SELECT key FROM jobs WHERE study = $1 AND kind = ANY($2) AND \
             (state = 'pending' OR (state = 'running' AND lease_expires_at < {NOW_MS} \
             AND attempts < max_attempts)) ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs j SET state = 'running', lease_owner = $3, \
             lease_expires_at = {NOW_MS} + $4, heartbeat_at = {NOW_MS}, \
             attempts = j.attempts + 1 FROM pick WHERE j.study = $1 AND j.key = pick.key \
             RETURNING j.key, j.genotype, j.kind, j.attempts"
        );
        // One statement (one round trip): expired leases on their last attempt are failed,
        // the oldest claimable job is locked (skipping those other workers are locking) and
        // leased.
        let row = self.run("claim", |c| {
            c.query_opt(&sql, &[&study, &capabilities, &owner, &lease_ms])
        })?;
        Ok(row.map(|row| ClaimedJob {
            key: row.get(0),
            genotype: row.get(1),
            capability: row.get(2),
            attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
        }))
    }

    fn heartbeat(&self, study: &str, key: &str, owner: &str, lease: Duration) -> Result<bool> {
        let lease_ms = millis(lease);
        let n = self.run("heartbeat", |c| {
            c.execute(
                &format!(
                    "UPDATE jobs SET lease_expires_at = {NOW_MS} + $4, heartbeat_at = {NOW_MS} \
                     WHERE study = $1 AND key = $2 AND lease_owner = $3 AND state = 'running'"
                ),
                &[&study, &key, &owner, &lease_ms],
            )
        })?;
        Ok(n == 1)
    }

    fn complete(&self, study: &str, key: &str, owner: &str, result: &str) -> Result<Completion> {
        let n: i64 = self.run("complete", |c| {
            Ok(c.query_one(
                "WITH done AS (UPDATE jobs SET state = 'done', result = $4, error = NULL, \
                 lease_expires_at = NULL, completions = completions + 1 \
                 WHERE study = $1 AND key = $2 AND lease_owner = $3 AND state = 'running' \
                 RETURNING 1), counted AS (UPDATE workers SET jobs_done = jobs_done + 1 \
                 WHERE id = $3 AND study = $1 AND EXISTS (SELECT 1 FROM done) RETURNING 1) \
                 SELECT COUNT(*) FROM done",
                &[&study, &key, &owner, &result],
            )?
            .get(0))
        })?;
        Ok(if n == 1 {
            Completion::Recorded
        } else {
            Completion::Ignored
        })
    }

    fn fail(&self, study: &str, key: &str, owner: &str, error: &str) -> Result<FailOutcome> {
        let state: Option<String> = self.run("fail", |c| {
            Ok(c.query_opt(
                "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' \
                 ELSE 'pending' END, error = $4, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE study = $1 AND key = $2 AND lease_owner = $3 AND state = 'running' \
                 RETURNING state",
                &[&study, &key, &owner, &error],
            )?
            .map(|r| r.get(0)))
        })?;
        Ok(match state.as_deref() {
            None => FailOutcome::Ignored,
            Some("failed") => FailOutcome::Failed,
            Some(_) => FailOutcome::Retrying,
        })
    }

    fn outcomes(&self, study: &str, keys: &[String]) -> Result<Vec<JobOutcome>> {
        let rows = self.run("read results", |c| {
            c.query(
                "SELECT key, state, result, error FROM jobs WHERE study = $1 AND key = ANY($2)",
                &[&study, &keys],
            )
        })?;
        let mut by_key: std::collections::HashMap<String, JobOutcome> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    crate::sqlite::outcome(Some((r.get(1), r.get(2), r.get(3)))),
                )
            })
            .collect();
        Ok(keys
            .iter()
            .map(|k| by_key.remove(k).unwrap_or(JobOutcome::Missing))
            .collect())
    }

    fn jobs(&self, study: &str) -> Result<Vec<JobRow>> {
        let rows = self.run("list jobs", |c| {
            c.query(
                "SELECT key, state, kind, lease_owner, attempts, max_attempts, result, error, \
                 completions FROM jobs WHERE study = $1 ORDER BY seq",
                &[&study],
            )
        })?;
        let count = |v: i32| u32::try_from(v).unwrap_or(0);
        Ok(rows
            .iter()
            .map(|r| JobRow {
                key: r.get(0),
                state: r.get(1),
                capability: r.get(2),
                lease_owner: r.get(3),
                attempts: count(r.get(4)),
                max_attempts: count(r.get(5)),
                result: r.get(6),
                error: r.get(7),
                completions: count(r.get(8)),
            })
            .collect())
    }

    fn status(&self, study: &str) -> Result<StudyStatus> {
        if self.read_study(study)?.is_none() {
            return Err(self.missing(study));
        }
        let (now, counts, workers) = self.run("status", |c| {
            let now: i64 = c.query_one(&format!("SELECT {NOW_MS}"), &[])?.get(0);
            let counts = c.query(
                "SELECT state, COUNT(*) FROM jobs WHERE study = $1 GROUP BY state",
                &[&study],
            )?;
            let workers = c.query(
                "SELECT id, capabilities, last_heartbeat, jobs_done FROM workers \
                 WHERE study = $1 ORDER BY id",
                &[&study],
            )?;
            Ok((now, counts, workers))
        })?;
        let mut status = StudyStatus {
            now_ms: now,
            ..StudyStatus::default()
        };
        for r in &counts {
            let n = u64::try_from(r.get::<_, i64>(1)).unwrap_or(0);
            match r.get::<_, &str>(0) {
                "pending" => status.pending = n,
                "running" => status.running = n,
                "done" => status.done = n,
                _ => status.failed = n,
            }
        }
        status.workers = workers
            .iter()
            .map(|r| WorkerInfo {
                id: r.get(0),
                capabilities: r
                    .get::<_, &str>(1)
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                last_heartbeat_ms: r.get(2),
                jobs_done: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            })
            .collect();
        Ok(status)
    }

    fn worker_heartbeat(&self, study: &str, id: &str, capabilities: &[String]) -> Result<()> {
        let caps = capabilities.join(",");
        self.run("worker heartbeat", |c| {
            c.execute(
                &format!(
                    "INSERT INTO workers (id, study, capabilities, last_heartbeat) \
                     VALUES ($1, $2, $3, {NOW_MS}) ON CONFLICT (id, study) DO UPDATE SET \
                     capabilities = excluded.capabilities, \
                     last_heartbeat = excluded.last_heartbeat"
                ),
                &[&id, &study, &caps],
            )
        })?;
        Ok(())
    }
}
