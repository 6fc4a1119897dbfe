//! Checkpoints of a search: the snapshot file, saving a generation (journal line or snapshot)
//! and loading a checkpoint back with every field checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dynas_space::{DynasRng, Genotype};
use serde::{Deserialize, Serialize};

use super::context::{Archive, Record};
use super::journal::{self, Journal};
use super::{Executor, Strategy};
use crate::error::{Result, SearchError};
use crate::problem::{Objective, Problem};

const FORMAT: &str = "dynas-search-checkpoint";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct CheckpointFile<T> {
    format: String,
    version: u32,
    strategy: String,
    strategy_config: serde_json::Value,
    problem: String,
    /// [`Problem::fingerprint`]; absent in checkpoints of earlier versions.
    #[serde(default)]
    problem_fingerprint: Option<String>,
    objectives: Vec<Objective>,
    dimensions: Vec<usize>,
    seed: u64,
    rng: DynasRng,
    generation: usize,
    elapsed_s: f64,
    /// Generations in a row without a new evaluation (see
    /// [`StopReason::Stalled`](super::StopReason::Stalled)).
    #[serde(default)]
    stalled: usize,
    /// The id of the journal that continues this snapshot (see `executor/journal.rs`); absent
    /// in checkpoints of earlier versions.
    #[serde(default)]
    journal: Option<String>,
    archive: Vec<Record>,
    state: T,
}

pub(super) struct Resumed<T> {
    pub(super) path: PathBuf,
    pub(super) seed: u64,
    pub(super) rng: DynasRng,
    pub(super) generation: usize,
    pub(super) stalled: usize,
    pub(super) elapsed: Duration,
    pub(super) archive: Archive,
    pub(super) state: T,
}

impl<S: Strategy> Executor<'_, S> {
    pub(super) fn load(&self, path: &Path) -> Result<Resumed<S::State>> {
        let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
        // The state is read last, once the header says whose it is.
        let mut file: CheckpointFile<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| SearchError::Parse {
                path: path.to_path_buf(),
                line: Some(e.line() as u64),
                column: None,
                reason: e.to_string(),
            })?;
        let mismatch = |field: &str, reason: String| SearchError::CheckpointMismatch {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        if file.format != FORMAT || file.version != VERSION {
            return Err(mismatch(
                "format",
                format!(
                    "{} v{} (expected {FORMAT} v{VERSION})",
                    file.format, file.version
                ),
            ));
        }
        if file.strategy != self.strategy.name() {
            return Err(mismatch(
                "strategy",
                format!(
                    "`{}`, this search runs `{}`",
                    file.strategy,
                    self.strategy.name()
                ),
            ));
        }
        if file.strategy_config != self.strategy.config() {
            return Err(mismatch(
                "strategy_config",
                format!("{} vs {}", file.strategy_config, self.strategy.config()),
            ));
        }
        if file.problem != self.problem.name()
            || file.objectives != self.problem.objectives()
            || file.dimensions != dims(self.problem)
        {
            return Err(mismatch(
                "problem",
                format!(
                    "saved for `{}` with objectives {:?}",
                    file.problem,
                    file.objectives.iter().map(|o| &o.name).collect::<Vec<_>>()
                ),
            ));
        }
        if let (Some(saved), Some(ours)) = (&file.problem_fingerprint, self.problem.fingerprint())
            && *saved != ours
        {
            return Err(mismatch(
                "problem_fingerprint",
                match fingerprint_difference(saved, &ours) {
                    Some(parts) => format!(
                        "{parts} differ (same problem `{}`; saved: {saved}; this run: {ours})",
                        file.problem
                    ),
                    None => format!(
                        "saved for data {saved}, this problem's data is {ours} (same name `{}`, \
                         other content)",
                        file.problem
                    ),
                },
            ));
        }
        // The generations checkpointed since the snapshot.
        let journal_path = journal::journal_path(path);
        for entry in journal::read(&journal_path, file.journal.as_deref())? {
            if entry.generation <= file.generation {
                continue;
            }
            if entry.start != file.archive.len() {
                return Err(mismatch(
                    "journal",
                    format!(
                        "`{}`: generation {} continues an archive of {} records, the checkpoint \
                         has {}",
                        journal_path.display(),
                        entry.generation,
                        entry.start,
                        file.archive.len()
                    ),
                ));
            }
            file.archive.extend(entry.records);
            file.generation = entry.generation;
            file.stalled = entry.stalled;
            file.elapsed_s = entry.elapsed_s;
            file.rng = entry.rng;
            file.state = entry.state;
        }
        let n_objectives = self.problem.objectives().len();
        let mut seen: HashSet<&Genotype> = HashSet::with_capacity(file.archive.len());
        for (i, r) in file.archive.iter().enumerate() {
            let field = format!("archive[{i}]");
            self.problem
                .space()
                .validate(&r.genotype)
                .map_err(|e| mismatch(&field, e.to_string()))?;
            if r.evaluation.values.len() != n_objectives {
                return Err(mismatch(
                    &field,
                    format!(
                        "{} values for {n_objectives} objectives",
                        r.evaluation.values.len()
                    ),
                ));
            }
            if r.evaluation.violation.is_nan() {
                return Err(mismatch(&field, "the violation is NaN".into()));
            }
            if !seen.insert(&r.genotype) {
                return Err(mismatch(
                    &field,
                    format!("`{}` is recorded twice", r.genotype),
                ));
            }
        }
        if file.generation == 0 || file.generation == usize::MAX {
            return Err(mismatch(
                "generation",
                format!("{} is not a count of finished generations", file.generation),
            ));
        }
        if file.stalled > file.generation {
            return Err(mismatch(
                "stalled",
                format!(
                    "{} stalled of {} generations",
                    file.stalled, file.generation
                ),
            ));
        }
        let elapsed = Duration::try_from_secs_f64(file.elapsed_s)
            .map_err(|e| mismatch("elapsed_s", format!("{}: {e}", file.elapsed_s)))?;
        if is_degenerate(&file.rng) {
            return Err(mismatch(
                "rng",
                "the generator state is all zeros and would only ever produce 0".into(),
            ));
        }
        let archive = Archive::from_records(file.archive);
        let state: S::State =
            serde_json::from_value(file.state).map_err(|e| SearchError::Parse {
                path: path.to_path_buf(),
                line: None,
                column: Some("state".into()),
                reason: e.to_string(),
            })?;
        self.strategy
            .check_state(&state, self.problem, &archive)
            .map_err(|e| mismatch("state", e.to_string()))?;
        Ok(Resumed {
            path: path.to_path_buf(),
            seed: file.seed,
            rng: file.rng,
            generation: file.generation,
            stalled: file.stalled,
            elapsed,
            archive,
            state,
        })
    }

    /// Checkpoints one generation: a line appended to the journal, or a full snapshot (the
    /// first of this run, when `full`, or when the journal outgrew the snapshot).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn save(
        &self,
        path: &Path,
        journal: &mut Journal,
        saved: &mut Saved,
        rng: &DynasRng,
        at: Progress,
        archive: &Archive,
        state: &S::State,
        full: bool,
    ) -> Result<()> {
        if full || !saved.snapshot || journal.bytes > saved.snapshot_bytes.max(MIN_COMPACTION) {
            let id = journal::new_id();
            saved.snapshot_bytes = self.write_checkpoint(path, rng, at, archive, state, &id)?;
            journal.reset(&id)?;
            saved.snapshot = true;
        } else {
            journal.append(&journal::EntryRef {
                generation: at.generation,
                stalled: at.stalled,
                elapsed_s: at.elapsed.as_secs_f64(),
                rng,
                start: saved.archived,
                records: &archive.records[saved.archived..],
                state,
            })?;
        }
        saved.archived = archive.len();
        Ok(())
    }

    /// Writes a full snapshot whose journal is `journal_id`; returns its size in bytes.
    fn write_checkpoint(
        &self,
        path: &Path,
        rng: &DynasRng,
        at: Progress,
        archive: &Archive,
        state: &S::State,
        journal_id: &str,
    ) -> Result<u64> {
        let file = CheckpointFile {
            format: FORMAT.to_string(),
            version: VERSION,
            strategy: self.strategy.name().to_string(),
            strategy_config: self.strategy.config(),
            problem: self.problem.name().to_string(),
            problem_fingerprint: self.problem.fingerprint(),
            objectives: self.problem.objectives().to_vec(),
            dimensions: dims(self.problem),
            seed: at.seed,
            rng: rng.clone(),
            generation: at.generation,
            elapsed_s: at.elapsed.as_secs_f64(),
            stalled: at.stalled,
            journal: Some(journal_id.to_string()),
            archive: archive.records.clone(),
            state: state.clone(),
        };
        let text =
            serde_json::to_string(&file).map_err(|e| SearchError::parse(path, e.to_string()))?;
        crate::write_atomically(path, text.as_bytes())?;
        Ok(text.len() as u64)
    }
}

/// What this run has checkpointed so far.
#[derive(Default)]
pub(super) struct Saved {
    /// Whether this run wrote a snapshot (its first checkpoint always is one).
    snapshot: bool,
    /// The last snapshot's size.
    snapshot_bytes: u64,
    /// Archive records in the snapshot and the journal.
    archived: usize,
}

/// The journal is compacted into a snapshot once it is larger than the snapshot and than this.
const MIN_COMPACTION: u64 = 4 << 20;

/// Where a search stands, as saved in a checkpoint.
#[derive(Clone, Copy)]
pub(super) struct Progress {
    pub(super) seed: u64,
    pub(super) generation: usize,
    pub(super) stalled: usize,
    pub(super) elapsed: Duration,
}

/// The strategy name and configuration the checkpoint at `path` was started with (`None` when
/// there is no such file), for a caller whose configuration follows its budget (e.g. an initial
/// design sized from it): a search extended to a larger budget continues with the saved
/// configuration, since the budget is not part of a search's identity.
pub fn checkpoint_strategy(path: &Path) -> Result<Option<(String, serde_json::Value)>> {
    #[derive(Deserialize)]
    struct Head {
        strategy: String,
        strategy_config: serde_json::Value,
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SearchError::io(path, e)),
    };
    let head: Head = serde_json::from_str(&text).map_err(|e| SearchError::Parse {
        path: path.to_path_buf(),
        line: Some(e.line() as u64),
        column: None,
        reason: e.to_string(),
    })?;
    Ok(Some((head.strategy, head.strategy_config)))
}

/// The parts that differ between two fingerprints made of `key=value` parts separated by `; `
/// (e.g. `supernet=...; data=...`), named by key; `None` when they are not of that form or have
/// other keys.
pub(super) fn fingerprint_difference(saved: &str, ours: &str) -> Option<String> {
    let parts = |f: &str| -> Option<Vec<(String, String)>> {
        f.split("; ")
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            })
            .collect()
    };
    let (a, b) = (parts(saved)?, parts(ours)?);
    if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.0 != y.0) {
        return None;
    }
    let differing: Vec<String> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| format!("`{}`", x.0))
        .collect();
    (!differing.is_empty()).then(|| differing.join(", "))
}

/// Whether a xoshiro state is all zeros (a fixed point that outputs 0 forever).
fn is_degenerate(rng: &DynasRng) -> bool {
    use rand::RngCore as _;
    let mut probe = rng.clone();
    (0..4).all(|_| probe.next_u64() == 0)
}

fn dims(problem: &dyn Problem) -> Vec<usize> {
    problem
        .space()
        .dimensions()
        .iter()
        .map(|d| d.len())
        .collect()
}
