//! The evaluator kind: scores a checkpoint on an evaluation set.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RString, RVec},
    StableAbi,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    error::{catch_panics, parse_config},
    host::HostRef,
    Direction, Host, PluginError,
};

/// One evaluation job.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct EvalJob {
    /// The cell's resolved configuration, as JSON.
    pub config_json: RString,
    /// The checkpoint to score.
    pub checkpoint_dir: RString,
    /// The evaluation set (JSONL of problems).
    pub eval_set: RString,
    /// Where generations and verdicts go.
    pub output_dir: RString,
}

/// A final metric with its unit and direction.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// Name, e.g. `pass@1`.
    pub name: RString,
    /// Value.
    pub value: f64,
    /// Unit, e.g. `fraction`.
    pub unit: RString,
    /// Which way is better.
    pub direction: Direction,
}

/// What a finished evaluation returns.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct EvalOutcome {
    /// Final metrics.
    pub metrics: RVec<MetricValue>,
    /// Files written (generations, verdicts), to be logged as artifacts.
    pub artifacts: RVec<RString>,
}

/// The FFI-safe evaluator object the host calls.
#[sabi_trait]
pub trait EvaluatorObj: Send + Sync {
    /// Runs the job.
    #[sabi(last_prefix_field)]
    fn evaluate(&self, job: &EvalJob, host: HostRef<'_>) -> RResult<EvalOutcome, PluginError>;
}

/// An owned evaluator object.
pub type EvaluatorBox = EvaluatorObj_TO<'static, RBox<()>>;

/// What an evaluator author implements; [`crate::export_evaluator!`] does the rest.
pub trait EvaluatorPlugin: Sized + Send + Sync + 'static {
    /// The typed configuration.
    type Config: DeserializeOwned + Serialize + Default;
    /// The name experiment files use.
    const NAME: &'static str;
    /// One line for listings.
    const DESCRIPTION: &'static str;

    /// Builds the evaluator.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is not usable.
    fn new(config: Self::Config) -> Result<Self, PluginError>;

    /// Evaluates.
    ///
    /// # Errors
    /// Any [`PluginError`]; the host marks the cell failed and goes on.
    fn evaluate(&self, job: &EvalJob, host: &Host<'_>) -> Result<EvalOutcome, PluginError>;

    /// The configuration shown as an example in listings.
    fn example_config() -> Self::Config {
        Self::Config::default()
    }

    /// Builds the evaluator from JSON, as the host does.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] naming the offending field.
    fn from_json(config_json: &str) -> Result<Self, PluginError> {
        Self::new(parse_config(config_json)?)
    }
}

pub(crate) struct EvaluatorAdapter<P>(pub(crate) P);

impl<P: EvaluatorPlugin> EvaluatorObj for EvaluatorAdapter<P> {
    fn evaluate(&self, job: &EvalJob, host: HostRef<'_>) -> RResult<EvalOutcome, PluginError> {
        let host = Host::new(host);
        catch_panics(|| self.0.evaluate(job, &host)).into()
    }
}
