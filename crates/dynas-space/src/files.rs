//! Reading inputs and writing outputs, the same way in every crate of the workspace.
//!
//! - [`read_input`] / [`read_input_text`]: every reader of a user-given file (tables, JSON,
//!   traces, lookup tables, data sets) goes through them. A file that is not a regular file
//!   (a character or block device such as `/dev/zero`, a directory, a socket) is refused with
//!   [`std::io::ErrorKind::InvalidInput`] instead of being read forever, and a pipe may not
//!   carry more than [`MAX_INPUT_BYTES`] (one that never ends). The text form drops a leading UTF-8
//!   byte-order mark, which editors on Windows write and which JSON and CSV parsers reject.
//! - [`write_output_with`] / [`write_output`]: every output file (results, reports, plots,
//!   predictions, tables, models) is written to a temporary file in the same folder, synced,
//!   renamed over the target and the folder synced: a crash, a full disk or a concurrent run
//!   leaves the old file or a whole new one, never a partial or empty one.
//!
//! The errors are plain [`std::io::Error`]s; each crate wraps them with the file's path in its
//! own error type.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The most bytes read from a pipe (1 GiB): far above any table, trace or data set the
/// workspace reads, and a bound on memory for a pipe that never ends. A regular file is read
/// to its end, whatever its size.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Refuses what cannot be read to its end: anything but a regular file or a pipe (a FIFO is
/// bounded by [`MAX_INPUT_BYTES`] when read). [`read_input`] checks this itself; call it to
/// check a path that a reader outside this module opens.
pub fn check_input_kind(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = meta.file_type();
        if kind.is_fifo() {
            return Ok(());
        }
        let what = if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(not_a_file(what));
    }
    #[allow(unreachable_code)]
    Err(not_a_file(if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }))
}

fn not_a_file(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file: it cannot be read as an input"),
    )
}

/// The bytes of the input file `path`: refused when it is not a regular file or a pipe, or
/// when a pipe carries more than [`MAX_INPUT_BYTES`].
pub fn read_input(path: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
    let path = path.as_ref();
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    read_input_limited(path, if regular { u64::MAX } else { MAX_INPUT_BYTES })
}

/// [`read_input`] with another size bound.
pub fn read_input_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    check_input_kind(path)?;
    let file = std::fs::File::open(path)?;
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    let read = file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if read as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {limit} bytes an input may hold"),
        ));
    }
    Ok(bytes)
}

/// The input file `path` as UTF-8 text, without a leading byte-order mark (see
/// [`read_input`]).
pub fn read_input_text(path: impl AsRef<Path>) -> std::io::Result<String> {
    let bytes = read_input(path)?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// `text` without a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A temporary path next to `path`, named after it and this process, that keeps its extension
/// (libtorch picks a file format by it).
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    path.with_file_name(format!(".{name}.{}.tmp{ext}", std::process::id()))
}

/// Lets `write` fill a temporary file next to `path`, syncs it, renames it over `path` and
/// syncs the folder so that the rename itself is durable. On any failure the temporary file is
/// removed and `path` is left as it was (absent, or its previous content).
pub fn write_output_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temporary_path(path);
    let written = write(&tmp).and_then(|()| std::fs::File::open(&tmp)?.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Not every platform can sync a folder; the file's data is synced already.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_output_with`] for bytes already in memory.
pub fn write_output(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    write_output_with(path, |tmp| std::fs::write(tmp, bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_a_folder_is_refused_as_an_input() {
        let err = read_input("/dev/zero").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("character device"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = read_input(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_is_read_to_its_end_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no mkfifo");
            return;
        }
        let feed = |bytes: usize| {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                // The reader may stop early: a broken pipe is expected then.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&fifo)
                    .and_then(|mut f| f.write_all(&vec![b'x'; bytes]));
            })
        };
        let writer = feed(100);
        assert_eq!(read_input(&fifo).unwrap().len(), 100);
        writer.join().unwrap();
        let writer = feed(1 << 16);
        let err = read_input_limited(&fifo, 1000).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        writer.join().unwrap();
    }

    #[test]
    fn an_input_over_the_bound_is_refused_and_a_bom_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        std::fs::write(&p, b"\xef\xbb\xbf{\"a\": 1}").unwrap();
        assert_eq!(read_input_text(&p).unwrap(), "{\"a\": 1}");
        let err = read_input_limited(&p, 4).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(read_input_limited(&p, 11).unwrap().len(), 11);
        assert_eq!(strip_bom("\u{feff}x"), "x");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        // A failure before the first write leaves nothing at all (no 0-byte file).
        let failed = write_output_with(&path, |tmp| {
            std::fs::write(tmp, b"")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_output(&path, b"first").unwrap();
        let failed = write_output_with(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(temporary_path(&path).to_string_lossy().ends_with(".csv"));
    }
}
