//! The one error type of `dynas-core`.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// What can go wrong with the hand-off vocabulary: a file that cannot be read or written, a
/// malformed deployment, an invalid value.
#[derive(Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file (a deployment) is malformed; `field` names the JSON field at fault.
    #[error("malformed `{path}`{}: {reason}", location(*line, field.as_deref()))]
    Parse {
        /// The file (`<in memory>` for a value built in code).
        path: PathBuf,
        /// 1-based line, where known.
        line: Option<u64>,
        /// The field, e.g. `points[2].exits[0].threshold`, where known.
        field: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A value given in code is outside its valid range.
    #[error("invalid `{name}`: {reason}")]
    Invalid {
        /// The parameter or field.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A genotype does not belong to the space it is said to belong to.
    #[error(transparent)]
    Space(#[from] dynas_space::SpaceError),
}

/// Debug output is the message itself, so that a `main` returning this error prints a sentence
/// naming the file and field, not a struct dump.
impl std::fmt::Debug for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn location(line: Option<u64>, field: Option<&str>) -> String {
    match (line, field) {
        (Some(l), Some(f)) => format!(" (line {l}, field `{f}`)"),
        (Some(l), None) => format!(" (line {l})"),
        (None, Some(f)) => format!(" (field `{f}`)"),
        (None, None) => String::new(),
    }
}

impl CoreError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An invalid value.
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`CoreError`].
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
