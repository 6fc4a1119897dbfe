//! The one error type of `dynas-space`.

use thiserror::Error;

/// Everything that can go wrong when building, validating or decoding genotypes.
#[derive(Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpaceError {
    /// A genotype has the wrong number of genes for its space.
    #[error("genotype has {got} genes but space `{space}` has {expected} dimensions")]
    WrongLength {
        /// Name of the space.
        space: String,
        /// Number of dimensions of the space.
        expected: usize,
        /// Number of genes in the genotype.
        got: usize,
    },
    /// A gene indexes past the choices of its dimension.
    #[error("gene `{dimension}` = {index} is out of range (dimension has {choices} choices)")]
    IndexOutOfRange {
        /// Name of the dimension.
        dimension: String,
        /// The offending index.
        index: usize,
        /// Number of choices of the dimension.
        choices: usize,
    },
    /// A named gene or choice label does not exist in the space.
    #[error("unknown name `{name}` in space `{space}`")]
    UnknownName {
        /// Name of the space.
        space: String,
        /// The name that was not found.
        name: String,
    },
    /// A textual form (genotype, arch string, layer key) could not be parsed.
    #[error("cannot parse `{input}`: {reason}")]
    Parse {
        /// The text that failed to parse.
        input: String,
        /// Why it failed.
        reason: String,
    },
    /// A space definition (stage table, preset) is inconsistent.
    #[error("invalid space definition: {0}")]
    InvalidSpace(String),
    /// A hyper-parameter (probability, crossover points, ...) is out of its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The space is too large to enumerate.
    #[error("space `{space}` has {cardinality} points, more than the enumeration limit {limit}")]
    TooLargeToEnumerate {
        /// Name of the space.
        space: String,
        /// Number of points (saturated at `u128::MAX`).
        cardinality: u128,
        /// The limit that was asked for.
        limit: u128,
    },
}

/// Debug output is the message itself, so that a `main` returning this error (through `?` or
/// `Box<dyn Error>`) or an `unwrap` prints a sentence naming the input and field, not a struct
/// dump.
impl std::fmt::Debug for SpaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SpaceError>;
