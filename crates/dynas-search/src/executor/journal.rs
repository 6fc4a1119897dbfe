//! Cheap checkpoints: a full snapshot now and then, and between snapshots an append-only
//! journal next to it (`<checkpoint>.journal`) with one line per checkpointed generation: the
//! archive records new since the previous line, the strategy's state, the RNG and the counters.
//!
//! * A snapshot is written atomically (temporary file, sync, rename) and carries a random
//!   `journal` id; the journal's first line names the snapshot it continues, so a journal left by
//!   another snapshot (a crash between a snapshot and the journal's reset) is ignored.
//! * A line counts once it ends with a newline and parses; a torn last line (a kill during the
//!   append) and whatever follows a line that does not parse are ignored. Lines whose
//!   generation the snapshot already holds are skipped.
//! * Appends reach the file at once (a killed process loses nothing) but are synced to the disk
//!   at most once per [`SYNC_INTERVAL`]: after a power loss the search resumes from the last
//!   synced generation or the snapshot, exactly. Snapshots are synced.
//! * The journal is compacted into a new snapshot when it outgrows the snapshot, so the bytes
//!   written stay proportional to the archive, not to the archive times the generations.
//! * The journal file is also the run's lock: a run holds an exclusive lock on it while it uses
//!   the checkpoint, so a second run on the same checkpoint is refused
//!   ([`SearchError::CheckpointLocked`]). On start the run removes hidden temporaries that
//!   killed runs left next to the checkpoint.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use dynas_space::DynasRng;
use serde::{Deserialize, Serialize};

use super::Record;
use crate::error::{Result, SearchError};

const HEADER: &str = "dynas-search-journal";

/// Shortest time between two syncs of the journal.
pub(super) const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The journal of the checkpoint at `path`.
pub(super) fn journal_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map_or_else(|| "checkpoint".into(), |n| n.to_os_string());
    name.push(".journal");
    path.with_file_name(name)
}

/// A fresh id tying a journal to a snapshot (not drawn from the search's RNG).
pub(super) fn new_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    snapshot: String,
}

/// One checkpointed generation.
#[derive(Deserialize)]
pub(super) struct Entry<T> {
    pub(super) generation: usize,
    pub(super) stalled: usize,
    pub(super) elapsed_s: f64,
    pub(super) rng: DynasRng,
    /// Position in the archive of the first record of `records`.
    pub(super) start: usize,
    pub(super) records: Vec<Record>,
    pub(super) state: T,
}

/// [`Entry`] borrowed, for writing.
#[derive(Serialize)]
pub(super) struct EntryRef<'a, T> {
    pub(super) generation: usize,
    pub(super) stalled: usize,
    pub(super) elapsed_s: f64,
    pub(super) rng: &'a DynasRng,
    pub(super) start: usize,
    pub(super) records: &'a [Record],
    pub(super) state: &'a T,
}

/// The entries of the journal at `path` that continue the snapshot `id` (none when the file
/// is missing, empty or belongs to another snapshot), without a torn last line.
pub(super) fn read(path: &Path, id: Option<&str>) -> Result<Vec<Entry<serde_json::Value>>> {
    let Some(id) = id else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SearchError::io(path, e)),
    };
    // Only complete lines count.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = complete.lines();
    let Some(first) = lines.next() else {
        return Ok(Vec::new());
    };
    match serde_json::from_str::<Header>(first) {
        Ok(h) if h.format == HEADER && h.snapshot == id => {}
        // Left by another snapshot: superseded.
        _ => return Ok(Vec::new()),
    }
    // A line that does not parse ends the journal: lines are synced at most once a second, so
    // after a power loss the tail may be lost or garbage; the generations before it still make a
    // checkpoint (an earlier one, from which the search continues exactly).
    Ok(lines
        .map_while(|line| serde_json::from_str(line).ok())
        .collect())
}

/// The lock a run holds on its checkpoint, and the open journal.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes in the journal.
    pub(super) bytes: u64,
    /// When the journal was last synced.
    synced: std::time::Instant,
}

impl Journal {
    /// Opens (creating it if needed) and locks the journal of the checkpoint at `checkpoint`;
    /// [`SearchError::CheckpointLocked`] when another run holds it. Then removes the hidden
    /// temporaries of this checkpoint that killed runs left behind.
    pub(super) fn lock(checkpoint: &Path) -> Result<Self> {
        let path = journal_path(checkpoint);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| SearchError::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(SearchError::CheckpointLocked {
                        path: checkpoint.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::Error(e))
                    if e.kind() == std::io::ErrorKind::Unsupported => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(SearchError::io(&path, e)),
            }
            // A run that finished removes its journal: if ours was removed between opening and
            // locking, lock the new one instead.
            if !same_file(&file, &path) {
                continue;
            }
            let bytes = file
                .metadata()
                .map_err(|e| SearchError::io(&path, e))?
                .len();
            remove_stale_temporaries(checkpoint);
            return Ok(Self {
                path,
                file,
                bytes,
                synced: std::time::Instant::now(),
            });
        }
    }

    /// Empties the journal and starts it for the snapshot `id`.
    pub(super) fn reset(&mut self, id: &str) -> Result<()> {
        self.file
            .set_len(0)
            .map_err(|e| SearchError::io(&self.path, e))?;
        self.bytes = 0;
        let header = serde_json::to_string(&Header {
            format: HEADER.into(),
            snapshot: id.into(),
        })
        .map_err(|e| SearchError::parse(&self.path, e.to_string()))?;
        self.append_line(header)
    }

    /// Appends one entry (one line); syncs the journal when the last sync is older than
    /// [`SYNC_INTERVAL`].
    pub(super) fn append<T: Serialize>(&mut self, entry: &EntryRef<'_, T>) -> Result<()> {
        let line = serde_json::to_string(entry)
            .map_err(|e| SearchError::parse(&self.path, e.to_string()))?;
        self.append_line(line)
    }

    fn append_line(&mut self, mut line: String) -> Result<()> {
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| SearchError::io(&self.path, e))?;
        self.bytes += line.len() as u64;
        if self.synced.elapsed() >= SYNC_INTERVAL {
            self.file
                .sync_data()
                .map_err(|e| SearchError::io(&self.path, e))?;
            self.synced = std::time::Instant::now();
        }
        Ok(())
    }

    /// Removes the journal (the snapshot holds everything), then releases the lock.
    pub(super) fn finish(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Journal {
    /// Releases the lock (closing the file); an empty journal (a finished run, or one that
    /// wrote nothing) is removed first.
    fn drop(&mut self) {
        if self.bytes == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Removes `.<name>.<pid>.tmp<ext>` files next to `checkpoint` (the crash-safe writer's
/// temporaries, left by runs killed while writing; the lock says none is being written now).
fn remove_stale_temporaries(checkpoint: &Path) {
    let Some(name) = checkpoint.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let ext = checkpoint
        .extension()
        .and_then(|e| e.to_str())
        .map_or_else(String::new, |e| format!(".{e}"));
    let prefix = format!(".{name}.");
    let suffix = format!(".tmp{ext}");
    let dir = match checkpoint.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(candidate) = file_name.to_str() else {
            continue;
        };
        let stale = candidate
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(&suffix))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
