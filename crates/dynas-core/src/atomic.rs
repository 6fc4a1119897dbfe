//! Crash-safe file writes, shared by every saver in the workspace (checkpoints, deployments,
//! model files, reports): a crash leaves the old file or the new one, never a half-written one.
//! The mechanics live in [`dynas_space::files`]; this adds the path to the error.

use std::path::Path;

use crate::error::{CoreError, Result};

/// Lets `write` fill a temporary file next to `path`, syncs it, renames it over `path` and
/// syncs the directory so the rename itself is durable. The temporary file is removed on
/// failure; the error names the file at fault.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<()> {
    dynas_space::files::write_output_with(path, write).map_err(|e| CoreError::io(path, e))
}

/// [`write_atomically_with`] for bytes already in memory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |tmp| std::fs::write(tmp, bytes))
}

/// Reads a user-given text file to its end ([`dynas_space::files::read_input_text`]: regular
/// files only, bounded, a UTF-8 byte-order mark dropped); the error names the file.
pub fn read_text(path: &Path) -> Result<String> {
    dynas_space::files::read_input_text(path).map_err(|e| CoreError::io(path, e))
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
        assert!(matches!(failed, Err(CoreError::Io { path: p, .. }) if p == path));
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself remains");
        // A missing directory is an error naming the file, not a panic.
        let missing = dir.path().join("no/such/dir/x.json");
        assert!(matches!(
            write_atomically(&missing, b"x"),
            Err(CoreError::Io { path: p, .. }) if p == missing
        ));
    }

    #[test]
    fn a_device_file_is_refused_not_read_forever() {
        let err = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("/dev/zero"), "{err}");
    }
}
