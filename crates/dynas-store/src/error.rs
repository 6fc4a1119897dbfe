//! The crate's one error type.

/// Everything that can go wrong with a study store. Each variant names the store (its URL,
/// password hidden), and the study or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    #[error("malformed store URL `{url}`: {reason}")]
    MalformedUrl {
        /// The URL as given (password hidden).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database server could not be reached (refused, timed out, connection lost and not
    /// re-established within the reconnect limit).
    #[error("store `{url}` is unreachable: {reason}")]
    Unreachable {
        /// The URL (password hidden).
        url: String,
        /// The underlying error.
        reason: String,
    },
    /// The server refused the user name or password (SQLSTATE 28P01 or 28000).
    #[error("store `{url}` refused the credentials: {reason}")]
    BadCredentials {
        /// The URL (password hidden).
        url: String,
        /// The server's message.
        reason: String,
    },
    /// The database named in the URL does not exist on the server (SQLSTATE 3D000).
    #[error("store `{url}`: the database does not exist ({reason})")]
    MissingDatabase {
        /// The URL (password hidden).
        url: String,
        /// The server's message.
        reason: String,
    },
    /// The store was made by another version of this crate.
    #[error(
        "store `{url}` has schema version {found}, this build of dynas reads version {expected}: \
         use a new store, or the dynas version that made it"
    )]
    SchemaVersion {
        /// The version found in the store's `meta` table.
        found: String,
        /// The version this build reads and writes.
        expected: i64,
        /// The URL (password hidden).
        url: String,
    },
    /// No study of this name in the store.
    #[error("store `{url}` has no study `{study}` (studies: {known})")]
    MissingStudy {
        /// The URL (password hidden).
        url: String,
        /// The study asked for.
        study: String,
        /// The studies the store has, comma-separated (or `none`).
        known: String,
    },
    /// The store has several studies and none was named.
    #[error("store `{url}` has several studies ({known}): name one with --study")]
    AmbiguousStudy {
        /// The URL (password hidden).
        url: String,
        /// The studies the store has, comma-separated.
        known: String,
    },
    /// A study of this name exists with another problem or other data.
    #[error("study `{study}` in `{url}`: {field} differs (stored `{stored}`, given `{given}`)")]
    StudyMismatch {
        /// The URL (password hidden).
        url: String,
        /// The study.
        study: String,
        /// What differs (`fingerprint`, `problem_spec`).
        field: &'static str,
        /// The value stored with the study.
        stored: String,
        /// The value given now.
        given: String,
    },
    /// The study's problem description cannot be used on this machine.
    #[error("study `{study}`: problem description field `{field}`: {reason}")]
    Problem {
        /// The study.
        study: String,
        /// The field at fault (`kind`, `csv`, ...).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A value read from the store could not be decoded.
    #[error("store `{url}`: study `{study}`, job `{key}`: bad `{field}`: {reason}")]
    Corrupt {
        /// The URL (password hidden).
        url: String,
        /// The study.
        study: String,
        /// The job key (genotype).
        key: String,
        /// The column.
        field: &'static str,
        /// The decoding error.
        reason: String,
    },
    /// Any other error of the database.
    #[error("store `{url}`: {operation}: {reason}")]
    Database {
        /// The URL (password hidden).
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The database's message.
        reason: String,
    },
    /// A file could not be created or read.
    #[error("store `{url}`: {reason}")]
    Io {
        /// The URL.
        url: String,
        /// The I/O error.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, StoreError>;
