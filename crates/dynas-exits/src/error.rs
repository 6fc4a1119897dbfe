//! The one error type of `dynas-exits`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while calibrating, evaluating, training or running early exits.
#[derive(Error)]
#[non_exhaustive]
pub enum ExitError {
    /// A hyper-parameter, threshold or other input is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Two inputs that must agree in size do not.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was being checked.
        what: String,
        /// The expected size.
        expected: usize,
        /// The size that was given.
        got: usize,
    },
    /// A file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is malformed.
    #[error("malformed `{path}` line {line}, field `{field}`: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the problem is not tied to a line).
        line: usize,
        /// The column, key or tensor name at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The query needs information the exit table does not hold (for example entropy scores or
    /// predictions in a table synthesised from accuracies only).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An error from the cost model.
    #[error(transparent)]
    Cost(#[from] dynas_cost::CostError),
    /// A backbone could not run a block or its classifier.
    #[error("backbone: {0}")]
    Backbone(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An error from libtorch (only with the `tch` feature).
    #[cfg(feature = "tch")]
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// Debug output is the message itself, so that a `main` returning this error (through `?` or
/// `Box<dyn Error>`) or an `unwrap` prints a sentence naming the file and field, not a struct
/// dump.
impl std::fmt::Debug for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ExitError>;

impl ExitError {
    /// An [`ExitError::InvalidParameter`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// An [`ExitError::ShapeMismatch`].
    pub fn shape(what: impl Into<String>, expected: usize, got: usize) -> Self {
        Self::ShapeMismatch {
            what: what.into(),
            expected,
            got,
        }
    }

    /// An [`ExitError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`ExitError::Parse`].
    pub fn parse(
        path: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Parse {
            path: path.into(),
            line,
            field: field.into(),
            reason: reason.into(),
        }
    }
}
