//! The crate's error type. Rendering itself cannot fail on any input (problems in the records
//! become lines of the report); errors come from reading records and writing reports.

use std::path::PathBuf;

/// What can go wrong around a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A records file could not be read.
    #[error("cannot read run records {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A records file is not valid records JSON.
    #[error("{path}: line {line}, column {column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde's message, with the field path.
        message: String,
    },
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// plotters failed to draw (it draws into a string, so this is a bug).
    #[error("drawing a plot failed: {0}")]
    Plot(String),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
