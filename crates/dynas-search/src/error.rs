//! The one error type of `dynas-search`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while configuring, running, checkpointing or resuming a search.
#[derive(Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file (CSV table, checkpoint, log) is malformed.
    #[error("malformed `{path}`{}: {reason}", location(*line, column.as_deref()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (CSV record line, JSON line), where known.
        line: Option<u64>,
        /// Column or field name, where known.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint does not belong to this search (other strategy, problem or version).
    #[error("checkpoint `{path}` does not match this search: field `{field}`: {reason}")]
    CheckpointMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The mismatching field.
        field: String,
        /// What differs.
        reason: String,
    },
    /// Another run holds the checkpoint (two runs must not share one checkpoint file).
    #[error(
        "checkpoint `{path}` held by another run (it is in use until that run ends; wait for \
         it or choose another checkpoint)"
    )]
    CheckpointLocked {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// A hyper-parameter or configuration value is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An architecture could not be evaluated.
    #[error("evaluating `{genotype}` failed: {reason}")]
    Evaluation {
        /// The genotype, in compact form.
        genotype: String,
        /// Why.
        reason: String,
    },
    /// A strategy could not produce a new candidate (e.g. no child meets the constraint).
    #[error("strategy `{strategy}` is stuck: {reason}")]
    Stuck {
        /// The strategy.
        strategy: String,
        /// Why.
        reason: String,
    },
    /// An observer asked the executor to stop (the last checkpoint is kept as it was).
    #[error("search interrupted by an observer: {0}")]
    Interrupted(String),
    /// An error of your own type, raised in your implementation of a trait of this crate
    /// (e.g. an [`crate::AccuracySource`] reading a file); the original error stays reachable
    /// through [`std::error::Error::source`].
    #[error("{context}: {source}")]
    External {
        /// What was being done.
        context: String,
        /// The original error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An error from the search-space crate.
    #[error(transparent)]
    Space(#[from] dynas_space::SpaceError),
    /// An error of the hand-off vocabulary (a deployment file, a crash-safe write).
    #[error(transparent)]
    Core(#[from] dynas_core::CoreError),
    /// An error from a cost model.
    #[error(transparent)]
    Cost(#[from] dynas_cost::CostError),
    /// An error from early-exit accounting.
    #[error(transparent)]
    Exits(#[from] dynas_exits::ExitError),
}

/// Debug output is the message itself, so that a `main` returning this error (through `?` or
/// `Box<dyn Error>`) prints a sentence naming the file and field, not a struct dump.
impl std::fmt::Debug for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn location(line: Option<u64>, column: Option<&str>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" (line {l}, column `{c}`)"),
        (Some(l), None) => format!(" (line {l})"),
        (None, Some(c)) => format!(" (field `{c}`)"),
        (None, None) => String::new(),
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SearchError>;

impl SearchError {
    /// A [`SearchError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`SearchError::InvalidParameter`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A [`SearchError::External`]: wraps an error of your own type, keeping it as the source.
    pub fn external(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::External {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// A [`SearchError::Parse`] without location.
    pub fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Parse {
            path: path.into(),
            line: None,
            column: None,
            reason: reason.into(),
        }
    }
}
