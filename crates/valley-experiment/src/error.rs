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

    /// An experiment file does not parse, or says something that cannot run.
    #[error("{}: {message}", file.display())]
    ExperimentFile {
        /// The experiment file.
        file: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },

    /// No experiment file by that name or path.
    #[error("{message}")]
    NoExperiment {
        /// The name or path asked for.
        name: String,
        /// Where it was looked for and what exists.
        message: String,
    },

    /// A layer over the file (a `--set KEY=VALUE` or a `VALLEY__…` variable) is invalid.
    #[error("{layer}: {message}")]
    Override {
        /// The override as given, e.g. `--set sweep.seeds=[1,2]`.
        layer: String,
        /// What is wrong.
        message: String,
    },

    /// A data section (`data`, `students.NAME.data`) names data that cannot be had.
    #[error("{key}: {message}")]
    DataSection {
        /// The key, e.g. `data.train`.
        key: String,
        /// What went wrong.
        message: String,
    },

    /// A plugin slot of the experiment file cannot be filled as written.
    #[error("{slot}: {message}")]
    Slot {
        /// The slot, e.g. `arms.random.order` or `students.base.trainer`.
        slot: String,
        /// What is wrong.
        message: String,
    },

    /// A student could not be built.
    #[error("student `{name}`: {source}")]
    Student {
        /// The student's name.
        name: String,
        /// Why.
        source: Box<Error>,
    },

    /// The local tracking store failed (a server being down is never an error).
    #[error(transparent)]
    Tracking(#[from] valley_tracking::TrackingError),

    /// The evaluation set could not be hidden from sandboxed programs (it lies where they may
    /// read, or the sandbox cannot be made): nothing was judged.
    #[error("evaluation set {}: {why}", path.display())]
    EvalSetVisible {
        /// The evaluation set.
        path: PathBuf,
        /// Why.
        why: String,
    },

    /// A trainer stopped when asked (SIGTERM, SIGINT, SIGUSR1) after saving a resumable
    /// checkpoint: not a failure; rerunning the command resumes from it.
    #[error("interrupted at step {step}; resumable from {} (rerun the same command)", checkpoint.display())]
    TrainingInterrupted {
        /// Optimizer steps done.
        step: u64,
        /// The checkpoint saved.
        checkpoint: PathBuf,
    },

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
    /// [`Error::ExperimentFile`] for `file`.
    pub fn experiment_file(file: &std::path::Path, message: impl Into<String>) -> Self {
        Self::ExperimentFile {
            file: file.to_path_buf(),
            message: message.into(),
        }
    }

    /// [`Error::DataSection`] for `key`.
    pub fn data_section(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::DataSection {
            key: key.into(),
            message: message.to_string(),
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
