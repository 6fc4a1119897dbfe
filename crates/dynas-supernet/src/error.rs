//! The one error type of `dynas-supernet`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong when loading data, building, training, checkpointing or
/// evaluating a supernet.
#[derive(Error)]
#[non_exhaustive]
pub enum SupernetError {
    /// A file could not be opened, read or written.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file (IDX, CIFAR binary) is truncated or malformed.
    #[error("malformed data file `{path}` at byte offset {offset}: {reason}")]
    MalformedData {
        /// The file.
        path: PathBuf,
        /// Byte offset (in the decompressed stream) where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint or statistics file is unreadable, or does not match the supernet.
    #[error("bad checkpoint `{path}` (field `{field}`): {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// The tensor name or metadata key at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A hyper-parameter or configuration value is out of its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A subnet does not fit the supernet (too wide, unknown kernel, wrong layer count, ...).
    #[error("subnet does not fit the supernet: {0}")]
    Incompatible(String),
    /// The search space rejected a genotype.
    #[error(transparent)]
    Space(#[from] dynas_space::SpaceError),
    /// A GOS search or lookup table failed.
    #[error(transparent)]
    Search(#[from] dynas_search::SearchError),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// JSON (de)serialisation failed.
    #[error("JSON error on `{path}`: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// Debug output is the message itself, so that a `main` returning this error (through `?` or
/// `Box<dyn Error>`) prints a sentence naming the file and field, not a struct dump.
impl std::fmt::Debug for SupernetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl SupernetError {
    /// An [`SupernetError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`SupernetError::InvalidParameter`].
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SupernetError>;
