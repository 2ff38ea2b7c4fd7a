//! One module per subcommand, each a `run` function that takes the subcommand's arguments as
//! clap parsed them (see [`crate::cli`]) and writes to the given output.

pub mod bench;
pub mod data;
pub mod eval;
pub mod experiment;
pub mod judge;
pub mod mlflow;
pub mod plugins;
pub mod report;
pub mod slurm;
pub mod sync;

/// Whether a command's gate passed (exit 0) or not (exit 1). Errors are exit 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Passed,
    /// Something checked failed; the command reported it.
    Failed,
    /// A signal stopped the run after every running trainer saved a checkpoint, and nothing
    /// failed: rerunning the command resumes it (exit status
    /// [`valley_plugin_api::EXIT_INTERRUPTED`]).
    Interrupted,
}

/// An error writing the command's output.
pub fn out_err(e: std::io::Error) -> valley_experiment::Error {
    valley_experiment::Error::io("<stdout>", e)
}
