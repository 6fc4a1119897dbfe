//! Crash-safe file writes, shared by every saver in the workspace (checkpoints, deployments,
//! model files): a crash leaves the old file or the new one, never a half-written one.

use std::path::{Path, PathBuf};

use crate::error::{Result, SearchError};

/// A temporary path next to `path`, named after it and this process, that keeps its extension
/// (libtorch picks a file format by it).
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    path.with_file_name(format!(".{name}.{}.tmp{ext}", std::process::id()))
}

/// Lets `write` fill a temporary file next to `path`, syncs it, renames it over `path` and
/// syncs the directory so the rename itself is durable. The temporary file is removed on
/// failure; the error names the file at fault.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temporary_path(path);
    let written = write(&tmp).and_then(|()| std::fs::File::open(&tmp)?.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SearchError::io(path, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(SearchError::io(path, e));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Not every platform can sync a directory; the file's data is synced already.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_atomically_with`] for bytes already in memory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |tmp| std::fs::write(tmp, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_or_leaves_it_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A failing writer leaves the old file and no temporary behind.
        let failed = write_atomically_with(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(matches!(failed, Err(SearchError::Io { path: p, .. }) if p == path));
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself remains");
        // The temporary keeps the extension.
        assert!(temporary_path(&path).to_string_lossy().ends_with(".json"));
        // A missing directory is an error naming the file, not a panic.
        let missing = dir.path().join("no/such/dir/x.json");
        assert!(matches!(
            write_atomically(&missing, b"x"),
            Err(SearchError::Io { path: p, .. }) if p == missing
        ));
    }
}
