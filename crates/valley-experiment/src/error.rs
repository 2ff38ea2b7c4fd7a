//! The experiment runner's error type: every variant names the file, line, field or plugin involved.

use std::path::PathBuf;

/// Result alias for the experiment runner.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Finding, loading or calling a plugin failed (naming the plugin and the slot).
    #[error(transparent)]
    Plugin(#[from] valley_plugin_host::HostError),

    /// A sampler returned something its stage does not allow.
    #[error("plugin `{plugin}` in {slot}: {problem}")]
    BadSelection {
        /// The slot.
        slot: String,
        /// The plugin's name.
        plugin: String,
        /// What was wrong.
        problem: String,
    },

    /// A data file is unreadable or holds a bad row.
    #[error(transparent)]
    Data(#[from] valley_data::DataError),

    /// An experiment file or override is invalid.
    #[error("{0}")]
    Config(String),

    /// The local tracking store failed (a server being down is never an error).
    #[error(transparent)]
    Tracking(#[from] valley_tracking::TrackingError),

    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
