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
