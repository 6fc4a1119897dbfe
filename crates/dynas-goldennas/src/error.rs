//! The one error type of GoldenNAS.

use std::path::PathBuf;

/// Everything that can go wrong in GoldenNAS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoldenNasError {
    /// A configuration value out of range.
    #[error("invalid `{name}`: {reason}")]
    Invalid {
        /// The field.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A supernet whose variables do not have the layout GoldenNAS needs.
    #[error("supernet layout: {0}")]
    Layout(String),
    /// From the supernet (training, evaluation, data).
    #[error(transparent)]
    Supernet(#[from] dynas_supernet::SupernetError),
    /// From the search.
    #[error(transparent)]
    Search(#[from] dynas_search::SearchError),
    /// From a cost model.
    #[error(transparent)]
    Cost(#[from] dynas_cost::CostError),
    /// From the search space.
    #[error(transparent)]
    Space(#[from] dynas_space::SpaceError),
    /// From the deployment hand-off.
    #[error(transparent)]
    Core(#[from] dynas_core::CoreError),
    /// From libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl GoldenNasError {
    /// An [`GoldenNasError::Invalid`] error.
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            reason: reason.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, GoldenNasError>;
