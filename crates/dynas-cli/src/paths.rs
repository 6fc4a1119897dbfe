//! Output paths are checked before any work starts: none may be an input (that would destroy
//! it), two outputs may not be the same file, and each must be writable.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// A command-line path with the flag that gave it, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Flagged<'a> {
    /// The flag, e.g. `--out`.
    pub flag: &'a str,
    /// The path given.
    pub path: &'a Path,
}

impl<'a> Flagged<'a> {
    /// `path` given by `flag`.
    pub fn new(flag: &'a str, path: &'a Path) -> Self {
        Self { flag, path }
    }
}

/// Where `path` points: its canonical form when it exists, else its canonical parent joined
/// with its file name (so `./x` and `x` compare equal before `x` exists).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(p), Some(name)) => p.join(name),
        _ => path.to_path_buf(),
    }
}

/// Whether `a` and `b` name the same file (also through links).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    resolved(a) == resolved(b)
}

/// Refuses the run when an output is an input or another output, or cannot be written.
/// Nothing is created or truncated: a missing output is probed by creating it and removing
/// it again.
pub fn check_outputs(inputs: &[Flagged<'_>], outputs: &[Flagged<'_>]) -> anyhow::Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        if let Some(input) = inputs.iter().find(|input| same_file(input.path, out.path)) {
            bail!(
                "{} `{}` is the same file as {} `{}`: writing it would destroy the input; \
                 choose another output path",
                out.flag,
                out.path.display(),
                input.flag,
                input.path.display()
            );
        }
        if let Some(other) = outputs[..i].iter().find(|o| same_file(o.path, out.path)) {
            bail!(
                "{} and {} are both `{}`: give each output its own file",
                other.flag,
                out.flag,
                out.path.display()
            );
        }
        check_writable(*out)?;
    }
    Ok(())
}

/// Every file a command reads and every file it writes, side files included (a model's
/// description and split record, a family's store, trace files): each command declares them
/// in one function, and [`CommandFiles::check`] refuses, before any work, an output that is an
/// input or another output, or that cannot be written.
#[derive(Clone, Debug, Default)]
pub struct CommandFiles {
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<(String, PathBuf)>,
}

impl CommandFiles {
    /// No files yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A file the command reads, named in messages by `what` (the flag, or the flag and which
    /// side file).
    pub fn input(&mut self, what: impl Into<String>, path: impl Into<PathBuf>) -> &mut Self {
        self.inputs.push((what.into(), path.into()));
        self
    }

    /// A file the command writes.
    pub fn output(&mut self, what: impl Into<String>, path: impl Into<PathBuf>) -> &mut Self {
        self.outputs.push((what.into(), path.into()));
        self
    }

    /// The declared inputs, `(what, path)`.
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests
    pub fn inputs(&self) -> &[(String, PathBuf)] {
        &self.inputs
    }

    /// The declared outputs, `(what, path)`.
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests
    pub fn outputs(&self) -> &[(String, PathBuf)] {
        &self.outputs
    }

    /// [`check_outputs`] over every declared file.
    pub fn check(&self) -> anyhow::Result<()> {
        fn view(files: &[(String, PathBuf)]) -> Vec<Flagged<'_>> {
            files
                .iter()
                .map(|(what, path)| Flagged::new(what, path))
                .collect()
        }
        check_outputs(&view(&self.inputs), &view(&self.outputs))
    }
}

/// Writes an output file crash-safely ([`dynas::space::files::write_output`]: a temporary file
/// beside it, synced, renamed over it): a failure (a full disk) leaves the old file or none,
/// never a partial or empty one, and two runs writing the same file leave one whole result.
pub fn write_output(what: &str, path: &Path, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    dynas::space::files::write_output(path, bytes)
        .with_context(|| format!("{what} `{}` cannot be written", path.display()))
}

fn check_writable(out: Flagged<'_>) -> anyhow::Result<()> {
    let path = out.path;
    if path.is_dir() {
        bail!("{} `{}` is a directory", out.flag, path.display());
    }
    if path.exists() {
        // Opening for append checks permission without truncating.
        OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{} `{}` cannot be written", out.flag, path.display()))?;
        return Ok(());
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("{} `{}` cannot be created", out.flag, path.display()))?;
    std::fs::remove_file(path)
        .with_context(|| format!("{} `{}`: removing the probe file", out.flag, path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_file_declared_as_an_input_cannot_be_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        let split = dir.path().join("m.safetensors.split.json");
        std::fs::write(&model, "w").unwrap();
        std::fs::write(&split, "{}").unwrap();
        let mut files = CommandFiles::new();
        files
            .input("--model", &model)
            .input("--model (its split record)", &split)
            .output("--report", &split);
        assert_eq!((files.inputs().len(), files.outputs().len()), (2, 1));
        let err = files.check().unwrap_err().to_string();
        assert!(
            err.contains("--report") && err.contains("split record"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&split).unwrap(), "{}");
        // Written crash-safely: a missing folder is an error naming the flag and the file.
        let missing = dir.path().join("no").join("r.json");
        let err = write_output("--report", &missing, "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--report") && err.contains("r.json"), "{err}");
    }

    #[test]
    fn an_output_equal_to_an_input_or_to_another_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "a\n1\n").unwrap();
        let dotted = dir.path().join(".").join("in.csv");
        let err = check_outputs(
            &[Flagged::new("--csv", &input)],
            &[Flagged::new("--out", &dotted)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("destroy the input"), "{err}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), "a\n1\n");
        let out = dir.path().join("out.json");
        let err = check_outputs(
            &[Flagged::new("--csv", &input)],
            &[Flagged::new("--out", &out), Flagged::new("--svg", &out)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
        assert!(!out.exists(), "the probe file is removed");
        let missing_dir = dir.path().join("no-such-dir").join("out.json");
        let err = check_outputs(&[], &[Flagged::new("--svg", &missing_dir)]).unwrap_err();
        assert!(err.to_string().contains("--svg"), "{err}");
        check_outputs(
            &[Flagged::new("--csv", &input)],
            &[Flagged::new("--out", &out)],
        )
        .unwrap();
    }
}
