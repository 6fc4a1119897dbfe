//! The one error type of `dynas-cost`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while loading, fitting or querying a cost model.
#[derive(Error)]
#[non_exhaustive]
pub enum CostError {
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
    #[error("malformed `{path}`: {reason}")]
    Parse {
        /// The file (or a description of the in-memory source).
        path: PathBuf,
        /// What is wrong, naming the field, key, line or column.
        reason: String,
    },
    /// A lookup table has no entry for a layer.
    #[error("lookup table `{table}` has no entry for key `{key}`")]
    MissingKey {
        /// Name of the table.
        table: String,
        /// The missing key.
        key: String,
    },
    /// A table model has no row for an architecture.
    #[error("table `{table}` has no row for architecture `{arch}`")]
    UnknownArchitecture {
        /// Name of the table.
        table: String,
        /// The architecture identifier.
        arch: String,
    },
    /// The operating point is not one of the device's.
    #[error("operating point {point} is not supported by device `{device}`")]
    UnsupportedOperatingPoint {
        /// The device.
        device: String,
        /// The operating point, formatted.
        point: String,
    },
    /// An operating point sets the clock of a domain (a DLA, an NPU) that the cost model
    /// does not price, so its cost at that point would be a guess.
    #[error(
        "cost model `{model}` does not price clock domain `{domain}` (operating point {point}); \
         use a model of that domain or leave its clock out of the point"
    )]
    UnknownClockDomain {
        /// The model.
        model: String,
        /// The domain's name.
        domain: String,
        /// The operating point, formatted.
        point: String,
    },
    /// The model cannot answer this query (for example a per-layer breakdown from an
    /// architecture-level predictor).
    #[error("cost model `{model}` does not support {what}")]
    Unsupported {
        /// The model.
        model: String,
        /// What was asked.
        what: String,
    },
    /// A hyper-parameter or input is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Fitting a model failed.
    #[error("fitting `{model}` failed: {reason}")]
    Fit {
        /// The model.
        model: String,
        /// Why.
        reason: String,
    },
    /// An error from the search-space crate (e.g. decoding a genotype).
    #[error(transparent)]
    Space(#[from] dynas_space::SpaceError),
    /// An error of your own type, raised in your implementation of [`crate::CostModel`]
    /// (e.g. a board that did not answer); the original error stays reachable through
    /// [`std::error::Error::source`].
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
impl std::fmt::Debug for CostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CostError>;

impl CostError {
    /// An [`CostError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A [`CostError::External`]: wraps an error of your own type, keeping it as the source.
    pub fn external(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::External {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// A [`CostError::Parse`] for `path`.
    pub fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Parse {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
