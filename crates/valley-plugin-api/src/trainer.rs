//! The trainer kind: turns an ordered training file into a checkpoint.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RString},
    StableAbi,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    error::{catch_panics, parse_config},
    host::HostRef,
    Host, PluginError,
};

/// One training job.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TrainJob {
    /// The cell's resolved configuration, as JSON.
    pub config_json: RString,
    /// The ordered training file (JSONL) the host wrote.
    pub train_file: RString,
    /// Where checkpoints and logs go.
    pub output_dir: RString,
    /// A checkpoint directory to resume from.
    pub resume_from: ROption<RString>,
}

/// What a finished training job returns.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// The final checkpoint.
    pub checkpoint_dir: RString,
    /// A JSON object: steps, tokens, final loss, truncations…
    pub summary_json: RString,
}

/// The exit status of `valley` when a run was interrupted and can be resumed (SIGTERM, SIGINT or
/// SIGUSR1 reached it, every running trainer saved a checkpoint, nothing failed): rerun the same
/// command to resume. 75 is `EX_TEMPFAIL` of sysexits.h, "try again later". The Slurm executor
/// requeues a task that exits with it; a trainer that drives another process (TRL) maps that
/// process's interruption to [`TrainOutcome::interrupted`] as `candle-sft` does.
pub const EXIT_INTERRUPTED: u8 = 75;

/// How a training job ended, as [`TrainOutcome::end`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainEnd {
    /// It ran to the end; `checkpoint_dir` is the final model.
    Finished,
    /// The host asked it to stop ([`crate::Host::is_cancelled`]: SIGTERM, SIGINT, or SIGUSR1,
    /// which Slurm sends before a time limit or preemption) and it saved a resumable checkpoint
    /// at a step boundary: `checkpoint_dir` is that checkpoint, and the same job run again with
    /// `resume_from` set to it continues from `step`.
    Interrupted {
        /// Optimizer steps done when it stopped.
        step: u64,
    },
}

impl TrainOutcome {
    /// A job that ran to the end: its final checkpoint and its summary (a JSON object).
    pub fn finished(checkpoint_dir: impl Into<String>, summary: serde_json::Value) -> Self {
        Self {
            checkpoint_dir: checkpoint_dir.into().into(),
            summary_json: summary.to_string().into(),
        }
    }

    /// A job that stopped when asked, after saving the resumable checkpoint `checkpoint_dir`
    /// at `step` ([`TrainEnd::Interrupted`]).
    ///
    /// The outcome travels in `summary_json` (`"outcome": "interrupted"`, `"step"`), not as a new
    /// [`PluginError`] variant or struct field: abi_stable's load-time check refuses an
    /// exhaustive enum or a `repr(C)` struct whose layout differs from the host's, so either
    /// would stop every plugin built before from loading. A summary without `outcome` is a
    /// finished job, which is what every earlier plugin returns.
    pub fn interrupted(
        checkpoint_dir: impl Into<String>,
        step: u64,
        summary: serde_json::Value,
    ) -> Self {
        let mut summary = match summary {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        summary.insert("outcome".into(), "interrupted".into());
        summary.insert("step".into(), step.into());
        Self {
            checkpoint_dir: checkpoint_dir.into().into(),
            summary_json: serde_json::Value::Object(summary).to_string().into(),
        }
    }

    /// How the job ended ([`TrainOutcome::interrupted`] says how it is written).
    pub fn end(&self) -> TrainEnd {
        let summary: serde_json::Value =
            serde_json::from_str(self.summary_json.as_str()).unwrap_or_default();
        match summary.get("outcome").and_then(serde_json::Value::as_str) {
            Some("interrupted") => TrainEnd::Interrupted {
                step: summary
                    .get("step")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
            },
            _ => TrainEnd::Finished,
        }
    }
}

/// The FFI-safe trainer object the host calls.
#[sabi_trait]
pub trait TrainerObj: Send + Sync {
    /// Runs the job.
    #[sabi(last_prefix_field)]
    fn train(&self, job: &TrainJob, host: HostRef<'_>) -> RResult<TrainOutcome, PluginError>;
}

/// An owned trainer object.
pub type TrainerBox = TrainerObj_TO<'static, RBox<()>>;

/// What a trainer author implements; [`crate::export_trainer!`] does the rest.
pub trait TrainerPlugin: Sized + Send + Sync + 'static {
    /// The typed configuration.
    type Config: DeserializeOwned + Serialize + Default;
    /// The name experiment files use.
    const NAME: &'static str;
    /// One line for listings.
    const DESCRIPTION: &'static str;
    /// Whether the trainer can resume from a checkpoint.
    const RESUMES: bool = false;

    /// Builds the trainer.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is not usable.
    fn new(config: Self::Config) -> Result<Self, PluginError>;

    /// Trains.
    ///
    /// # Errors
    /// Any [`PluginError`]; the host marks the cell failed and goes on.
    fn train(&self, job: &TrainJob, host: &Host<'_>) -> Result<TrainOutcome, PluginError>;

    /// The configuration shown as an example in listings.
    fn example_config() -> Self::Config {
        Self::Config::default()
    }

    /// Builds the trainer from JSON, as the host does.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] naming the offending field.
    fn from_json(config_json: &str) -> Result<Self, PluginError> {
        Self::new(parse_config(config_json)?)
    }
}

pub(crate) struct TrainerAdapter<P>(pub(crate) P);

impl<P: TrainerPlugin> TrainerObj for TrainerAdapter<P> {
    fn train(&self, job: &TrainJob, host: HostRef<'_>) -> RResult<TrainOutcome, PluginError> {
        let host = Host::new(host);
        catch_panics(|| self.0.train(job, &host)).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_round_trips_and_an_old_summary_is_finished() {
        let done = TrainOutcome::finished("ckpt/final", serde_json::json!({"steps": 9}));
        assert_eq!(done.end(), TrainEnd::Finished);
        let stopped = TrainOutcome::interrupted(
            "ckpt/checkpoints/step-00000004",
            4,
            serde_json::json!({"steps": 4}),
        );
        assert_eq!(stopped.end(), TrainEnd::Interrupted { step: 4 });
        assert_eq!(
            stopped.checkpoint_dir.as_str(),
            "ckpt/checkpoints/step-00000004"
        );
        // What plugins built before this outcome return: a summary without it, or none.
        let old = TrainOutcome {
            checkpoint_dir: "x".into(),
            summary_json: "not json".into(),
        };
        assert_eq!(old.end(), TrainEnd::Finished);
    }
}
