//! The one error type of `dynas-dvfs`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while controlling clocks, reading power sensors, loading
/// configuration tables or traces, or building a governor.
#[derive(Error)]
#[non_exhaustive]
pub enum DvfsError {
    /// A file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The process lacks the permission to read or write a control or sensor file.
    #[error(
        "permission denied to {action} `{path}`: DVFS control needs root (or a udev rule / \
         group that grants write access to the file)"
    )]
    PermissionDenied {
        /// The file.
        path: PathBuf,
        /// `read` or `write`.
        action: &'static str,
    },
    /// A file's content is malformed.
    #[error("malformed `{path}`{}: {reason}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Parse {
        /// The file (or a description of the in-memory source).
        path: PathBuf,
        /// The 1-based line, where known.
        line: Option<usize>,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A frequency is not one of the device table's (or of the kernel's available list).
    #[error("refusing {domain} clock {hz} Hz: not in the {source_table} (available: {available})")]
    UnsupportedFrequency {
        /// Clock domain (`cpu`, `gpu`, `memory` or a named one such as `dla0`).
        domain: String,
        /// The requested frequency.
        hz: u64,
        /// Where the allowed list comes from (device table or sysfs file).
        source_table: String,
        /// The allowed frequencies, formatted.
        available: String,
    },
    /// A hyper-parameter, constraint or input value is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A configuration index is out of range for the configuration set.
    #[error("configuration {index} does not exist (the set has {len})")]
    UnknownConfiguration {
        /// The index.
        index: usize,
        /// Size of the set.
        len: usize,
    },
    /// A hardware interface expected by a backend is missing.
    #[error("{what} not found under `{path}`")]
    NotFound {
        /// What was looked for.
        what: String,
        /// Where.
        path: PathBuf,
    },
    /// An error from a cost model.
    #[error(transparent)]
    Cost(#[from] dynas_cost::CostError),
    /// An error of your own type, raised in your implementation of a trait of this crate
    /// (e.g. a [`crate::PowerSensor`] reading a lab meter); the original error stays reachable
    /// through [`std::error::Error::source`].
    #[error("{context}: {source}")]
    External {
        /// What was being done.
        context: String,
        /// The original error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// Debug output is the message itself, so that a `main` returning this error (through `?` or
/// `Box<dyn Error>`) prints a sentence naming the file and field, not a struct dump.
impl std::fmt::Debug for DvfsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DvfsError>;

impl DvfsError {
    /// An I/O error for `path`, turned into [`DvfsError::PermissionDenied`] when the kernel said so.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            Self::PermissionDenied {
                path: path.into(),
                action,
            }
        } else {
            Self::Io {
                path: path.into(),
                source,
            }
        }
    }

    /// A [`DvfsError::External`]: wraps an error of your own type, keeping it as the source.
    pub fn external(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::External {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// A [`DvfsError::Parse`] for `path`.
    pub fn parse(path: impl Into<PathBuf>, line: Option<usize>, reason: impl Into<String>) -> Self {
        Self::Parse {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }

    /// A [`DvfsError::InvalidParameter`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }
}
