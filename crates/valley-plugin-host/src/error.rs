//! The plugin host's error type: every variant names the plugin, its library and the slot.

use std::path::PathBuf;

use valley_plugin_api::PluginError;

use crate::load_error::LoadError;

/// Result alias for the plugin host.
pub type Result<T, E = HostError> = std::result::Result<T, E>;

/// What can go wrong finding, loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A plugin library could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),

    /// The library an experiment slot names by path could not be loaded.
    #[error("{slot}: {source}")]
    SlotLoad {
        /// The experiment-file key of the slot.
        slot: String,
        /// Why it did not load.
        source: LoadError,
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

    /// A plugin named in an experiment file or on the command line was not found anywhere.
    #[error("{slot}: no plugin named `{plugin}` was found (searched: {searched}); build it, set VALLEY_PLUGIN_PATH, or give `path`")]
    PluginNotFound {
        /// The experiment-file key of the slot.
        slot: String,
        /// The name asked for.
        plugin: String,
        /// The directories searched, joined.
        searched: String,
    },
}

impl HostError {
    /// [`HostError::PluginNotFound`] for `plugin` in `slot`, listing the directories searched.
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
}
