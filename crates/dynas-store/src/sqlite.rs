//! The SQLite back end: one file, several processes on one machine.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

use crate::{
    ClaimedJob, Completion, FailOutcome, JobOutcome, JobRow, NewJob, Result, SCHEMA_VERSION, Store,
    StoreError, StudyInfo, StudyStatus, WorkerInfo, check_same_study, known_list, millis, now_ms,
};

const SCHEMA: &str = schema!("", "");

/// A store in one SQLite file (`sqlite://PATH`), in WAL mode: several processes on one
/// machine share it; claims take the write lock (`BEGIN IMMEDIATE`) and wait for it up to the
/// busy timeout.
#[derive(Debug)]
pub struct SqliteStore {
    url: String,
    conn: Mutex<Connection>,
}

fn db_err(url: &str, operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Database {
        url: url.to_string(),
        operation,
        reason: e.to_string(),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`. A store made by another
    /// schema version is refused with [`StoreError::SchemaVersion`].
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let url = format!("sqlite://{}", path.display());
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
                url: url.clone(),
                reason: format!("cannot create `{}`: {e}", parent.display()),
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| StoreError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(db_err(&url, "set busy timeout"))?;
        // Switching to WAL takes an exclusive lock without waiting on the busy handler: retry
        // while another process is creating the same store.
        let start = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && start.elapsed() < Duration::from_secs(30) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(db_err(&url, "enable WAL")(e)),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err(&url, "set synchronous"))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(&url, "open schema transaction"))?;
        let has_meta: bool = tx
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db_err(&url, "read schema"))?
            > 0;
        let found: Option<String> = if has_meta {
            tx.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(&url, "read schema version"))?
        } else {
            None
        };
        match found {
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(StoreError::SchemaVersion {
                    found: v,
                    expected: SCHEMA_VERSION,
                    url,
                });
            }
            None => {
                tx.execute_batch(SCHEMA)
                    .map_err(db_err(&url, "create schema"))?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(db_err(&url, "write schema version"))?;
            }
        }
        tx.commit().map_err(db_err(&url, "create schema"))?;
        Ok(Self {
            url,
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back an
        // unfinished transaction when it is dropped).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::Database {
            url: self.url.clone(),
            operation,
            reason: e.to_string(),
        }
    }

    fn study_names(conn: &Connection, url: &str) -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare_cached("SELECT name FROM studies ORDER BY name")
            .map_err(db_err(url, "list studies"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(db_err(url, "list studies"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db_err(url, "list studies"))
    }

    fn read_study(conn: &Connection, url: &str, name: &str) -> Result<Option<StudyInfo>> {
        let row = conn
            .query_row(
                "SELECT name, problem_kind, problem_spec, fingerprint, created_at FROM studies \
                 WHERE name = ?1",
                params![name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(db_err(url, "read study"))?;
        row.map(|(name, kind, spec, fingerprint, created)| {
            let problem_spec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt {
                url: url.to_string(),
                study: name.clone(),
                key: String::new(),
                field: "problem_spec",
                reason: e.to_string(),
            })?;
            Ok(StudyInfo {
                name,
                problem_kind: kind,
                problem_spec,
                fingerprint,
                created_at_ms: created,
            })
        })
        .transpose()
    }

    fn require_study(&self, conn: &Connection, study: &str) -> Result<()> {
        if Self::read_study(conn, &self.url, study)?.is_none() {
            return Err(StoreError::MissingStudy {
                url: self.url.clone(),
                study: study.to_string(),
                known: known_list(&Self::study_names(conn, &self.url)?),
            });
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn create_study(&self, study: &StudyInfo) -> Result<StudyInfo> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("create study"))?;
        if let Some(stored) = Self::read_study(&tx, &self.url, &study.name)? {
            check_same_study(&self.url, &stored, study)?;
            return Ok(stored);
        }
        let created = StudyInfo {
            created_at_ms: now_ms(),
            ..study.clone()
        };
        tx.execute(
            "INSERT INTO studies (name, problem_kind, problem_spec, fingerprint, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                created.name,
                created.problem_kind,
                created.problem_spec.to_string(),
                created.fingerprint,
                created.created_at_ms
            ],
        )
        .map_err(self.err("create study"))?;
        tx.commit().map_err(self.err("create study"))?;
        Ok(created)
    }

    fn study(&self, name: &str) -> Result<StudyInfo> {
        let conn = self.conn();
        match Self::read_study(&conn, &self.url, name)? {
            Some(s) => Ok(s),
            None => Err(StoreError::MissingStudy {
                url: self.url.clone(),
                study: name.to_string(),
                known: known_list(&Self::study_names(&conn, &self.url)?),
            }),
        }
    }

    fn studies(&self) -> Result<Vec<String>> {
        Self::study_names(&self.conn(), &self.url)
    }

    fn enqueue(&self, study: &str, jobs: &[NewJob]) -> Result<usize> {
        let mut conn = self.conn();
        self.require_study(&conn, study)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("enqueue"))?;
        let now = now_ms();
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO jobs (study, key, genotype, kind, max_attempts, enqueued_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (study, key) DO NOTHING",
                )
                .map_err(self.err("enqueue"))?;
            for job in jobs {
                added += stmt
                    .execute(params![
                        study,
                        job.key,
                        job.genotype,
                        job.capability,
                        job.max_attempts,
                        now
                    ])
                    .map_err(self.err("enqueue"))?;
            }
        }
        tx.commit().map_err(self.err("enqueue"))?;
        Ok(added)
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("claim"))?;
        let now = now_ms();
        tx.execute(
            "UPDATE jobs SET state = 'failed', lease_owner = NULL, \
             error = 'lease expired on its last attempt (' || attempts || ' of ' || \
             max_attempts || ')' \
             WHERE study = ?1 AND state = 'running' AND lease_expires_at < ?2 \
             AND attempts >= max_attempts",
            params![study, now],
        )
        .map_err(self.err("claim"))?;
        let placeholders = (0..capabilities.len())
            .map(|i| format!("?{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT key, genotype, kind, attempts FROM jobs WHERE study = ?1 \
             AND kind IN ({placeholders}) AND (state = 'pending' OR (state = 'running' \
             AND lease_expires_at < ?2 AND attempts < max_attempts)) ORDER BY rowid LIMIT 1"
        );
        let mut values: Vec<rusqlite::types::Value> = vec![study.to_string().into(), now.into()];
        values.extend(capabilities.iter().map(|c| c.clone().into()));
        let found = tx
            .query_row(&sql, params_from_iter(values), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .optional()
            .map_err(self.err("claim"))?;
        let Some((key, genotype, capability, attempts)) = found else {
            tx.commit().map_err(self.err("claim"))?;
            return Ok(None);
        };
        tx.execute(
            "UPDATE jobs SET state = 'running', lease_owner = ?3, lease_expires_at = ?4, \
             heartbeat_at = ?5, attempts = attempts + 1 WHERE study = ?1 AND key = ?2",
            params![study, key, owner, now + millis(lease), now],
        )
        .map_err(self.err("claim"))?;
        tx.commit().map_err(self.err("claim"))?;
        Ok(Some(ClaimedJob {
            key,
            genotype,
            capability,
            attempts: attempts + 1,
        }))
    }

    fn heartbeat(&self, study: &str, key: &str, owner: &str, lease: Duration) -> Result<bool> {
        let now = now_ms();
        let n = self
            .conn()
            .execute(
                "UPDATE jobs SET lease_expires_at = ?4, heartbeat_at = ?5 \
                 WHERE study = ?1 AND key = ?2 AND lease_owner = ?3 AND state = 'running'",
                params![study, key, owner, now + millis(lease), now],
            )
            .map_err(self.err("heartbeat"))?;
        Ok(n == 1)
    }

    fn complete(&self, study: &str, key: &str, owner: &str, result: &str) -> Result<Completion> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("complete"))?;
        let n = tx
            .execute(
                "UPDATE jobs SET state = 'done', result = ?4, error = NULL, \
                 lease_expires_at = NULL, completions = completions + 1 \
                 WHERE study = ?1 AND key = ?2 AND lease_owner = ?3 AND state = 'running'",
                params![study, key, owner, result],
            )
            .map_err(self.err("complete"))?;
        if n == 1 {
            tx.execute(
                "UPDATE workers SET jobs_done = jobs_done + 1 WHERE id = ?1 AND study = ?2",
                params![owner, study],
            )
            .map_err(self.err("complete"))?;
        }
        tx.commit().map_err(self.err("complete"))?;
        Ok(if n == 1 {
            Completion::Recorded
        } else {
            Completion::Ignored
        })
    }

    fn fail(&self, study: &str, key: &str, owner: &str, error: &str) -> Result<FailOutcome> {
        let state: Option<String> = self
            .conn()
            .query_row(
                "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' \
                 ELSE 'pending' END, error = ?4, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE study = ?1 AND key = ?2 AND lease_owner = ?3 AND state = 'running' \
                 RETURNING state",
                params![study, key, owner, error],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("fail"))?;
        Ok(match state.as_deref() {
            None => FailOutcome::Ignored,
            Some("failed") => FailOutcome::Failed,
            Some(_) => FailOutcome::Retrying,
        })
    }

    fn outcomes(&self, study: &str, keys: &[String]) -> Result<Vec<JobOutcome>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.err("read results"))?;
        let mut out = Vec::with_capacity(keys.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT state, result, error FROM jobs WHERE study = ?1 AND key = ?2",
                )
                .map_err(self.err("read results"))?;
            for key in keys {
                let row = stmt
                    .query_row(params![study, key], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    })
                    .optional()
                    .map_err(self.err("read results"))?;
                out.push(outcome(row));
            }
        }
        tx.commit().map_err(self.err("read results"))?;
        Ok(out)
    }

    fn jobs(&self, study: &str) -> Result<Vec<JobRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT key, state, kind, lease_owner, attempts, max_attempts, result, error, \
                 completions FROM jobs WHERE study = ?1 ORDER BY rowid",
            )
            .map_err(self.err("list jobs"))?;
        let rows = stmt
            .query_map(params![study], |r| {
                Ok(JobRow {
                    key: r.get(0)?,
                    state: r.get(1)?,
                    capability: r.get(2)?,
                    lease_owner: r.get(3)?,
                    attempts: r.get(4)?,
                    max_attempts: r.get(5)?,
                    result: r.get(6)?,
                    error: r.get(7)?,
                    completions: r.get(8)?,
                })
            })
            .map_err(self.err("list jobs"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list jobs"))
    }

    fn status(&self, study: &str) -> Result<StudyStatus> {
        let conn = self.conn();
        self.require_study(&conn, study)?;
        let mut status = StudyStatus {
            now_ms: now_ms(),
            ..StudyStatus::default()
        };
        {
            let mut stmt = conn
                .prepare_cached("SELECT state, COUNT(*) FROM jobs WHERE study = ?1 GROUP BY state")
                .map_err(self.err("status"))?;
            let rows = stmt
                .query_map(params![study], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
                })
                .map_err(self.err("status"))?;
            for row in rows {
                let (state, n) = row.map_err(self.err("status"))?;
                match state.as_str() {
                    "pending" => status.pending = n,
                    "running" => status.running = n,
                    "done" => status.done = n,
                    _ => status.failed = n,
                }
            }
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, capabilities, last_heartbeat, jobs_done FROM workers \
                 WHERE study = ?1 ORDER BY id",
            )
            .map_err(self.err("status"))?;
        let rows = stmt
            .query_map(params![study], |r| {
                Ok(WorkerInfo {
                    id: r.get(0)?,
                    capabilities: r
                        .get::<_, String>(1)?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    last_heartbeat_ms: r.get(2)?,
                    jobs_done: r.get(3)?,
                })
            })
            .map_err(self.err("status"))?;
        status.workers = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("status"))?;
        Ok(status)
    }

    fn worker_heartbeat(&self, study: &str, id: &str, capabilities: &[String]) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO workers (id, study, capabilities, last_heartbeat) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id, study) DO UPDATE SET \
                 capabilities = excluded.capabilities, last_heartbeat = excluded.last_heartbeat",
                params![id, study, capabilities.join(","), now_ms()],
            )
            .map_err(self.err("worker heartbeat"))?;
        Ok(())
    }
}

/// A job's `(state, result, error)` as a [`JobOutcome`].
pub(crate) fn outcome(row: Option<(String, Option<String>, Option<String>)>) -> JobOutcome {
    match row {
        None => JobOutcome::Missing,
        Some((state, result, error)) => match state.as_str() {
            "pending" => JobOutcome::Pending,
            "running" => JobOutcome::Running,
            "done" => JobOutcome::Done(result.unwrap_or_default()),
            _ => JobOutcome::Failed(error.unwrap_or_default()),
        },
    }
}
