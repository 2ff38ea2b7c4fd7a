//! The harness's error type: every variant names the file, line, field or plugin involved.

use std::path::PathBuf;

use valley_plugin_api::PluginError;

/// Result alias for the harness library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plugin library could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::plugins::LoadError),

    /// The library an experiment slot names by path could not be loaded.
    #[error("{slot}: {source}")]
    SlotLoad {
        /// The experiment-file key of the slot.
        slot: String,
        /// Why it did not load.
        source: crate::plugins::LoadError,
    },

    /// A plugin call returned an error (a caught panic included).
    #[error("plugin `{plugin}` ({path}) {during}: {error}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// What the host asked of it, e.g. `failed during select`.
        during: String,
        /// The error it returned.
        error: PluginError,
    },

    /// A plugin of the wrong kind (or without the needed role) sits in a slot.
    #[error("{slot}: plugin `{plugin}` ({path}) is a {found}, but this slot needs a {expected}")]
    WrongKind {
        /// The experiment-file key of the slot, e.g. `arms.random.order`.
        slot: String,
        /// The plugin's name.
        plugin: String,
        /// Its library.
        path: PathBuf,
        /// The kind the slot needs.
        expected: String,
        /// The kind (or role set) the plugin has.
        found: String,
    },

    /// A plugin named in an experiment file was not found anywhere.
    #[error("{slot}: no plugin named `{plugin}` was found (searched: {searched}); build it, set VALLEY_PLUGIN_PATH, or give `path`")]
    PluginNotFound {
        /// The experiment-file key of the slot.
        slot: String,
        /// The name asked for.
        plugin: String,
        /// The directories searched, joined.
        searched: String,
    },

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
    Data(#[from] crate::records::DataError),

    /// An experiment file or override is invalid.
    #[error("{0}")]
    Config(String),

    /// The local tracking store failed (a server being down is never an error).
    #[error(transparent)]
    Tracking(#[from] crate::tracking::TrackingError),

    /// Judging failed (the sandbox, an unknown problem id, the benchmark's reference harness).
    #[error(transparent)]
    Judge(#[from] crate::judge::batch::JudgeError),

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
    /// [`Error::PluginNotFound`] for `plugin` in `slot`, listing the directories searched.
    pub fn plugin_not_found(slot: &str, plugin: &str, searched: &[PathBuf]) -> Self {
        Self::PluginNotFound {
            slot: slot.to_string(),
            plugin: plugin.to_string(),
            searched: searched
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
