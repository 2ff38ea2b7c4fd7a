//! The sampler kind: chooses and orders training records.
//!
//! A sampler sees only metadata of the candidate pool (never the text), and returns indices into
//! it. Pipelines chain samplers: filters, then the subset of the cell's size, then the order.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RString, RVec},
    StableAbi,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    error::{catch_panics, parse_config},
    host::HostRef,
    Host, PluginError, SamplerRole,
};

/// Metadata of one training record, as a sampler sees it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Position of the record in the data source; what a [`Selection`] returns. Unique within a
    /// pool (the host guarantees it).
    pub index: u64,
    /// The record's id.
    pub id: RString,
    /// Difficulty label as the source spells it (e.g. TACO's `MEDIUM_HARD`).
    pub difficulty: RString,
    /// Numeric rank of the difficulty; larger is harder. Always finite: the host refuses rows
    /// whose rank is NaN or infinite.
    pub difficulty_rank: f64,
    /// Whether the teacher's answer passed its tests; `None` when unlabeled.
    pub correct: ROption<bool>,
    /// Length of the record in tokens (bytes until a tokenizer is configured).
    pub token_count: u64,
    /// Where the record came from.
    pub source: RString,
    /// Free-form tags from the record's `meta.tags`.
    pub tags: RVec<RString>,
}

impl Candidate {
    /// The correctness label as a plain option.
    pub fn correct(&self) -> Option<bool> {
        self.correct.into_option()
    }
}

/// What the host tells a sampler about the cell it samples for.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct SampleContext {
    /// The cell's seed.
    pub seed: u64,
    /// The cell's data size (records to train on).
    pub target_size: u64,
    /// The arm's name.
    pub arm: RString,
    /// The pipeline stage this call fills: `filter`, `subset` or `order`.
    pub stage: RString,
}

/// A sampler's answer: indices (the [`Candidate::index`] values) in training order, and a JSON
/// summary the host records (histograms, counts).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Selection {
    /// Chosen candidates, in order.
    pub indices: RVec<u64>,
    /// A JSON object; `{}` when there is nothing to add.
    pub summary_json: RString,
}

impl Selection {
    /// A selection with an empty summary.
    pub fn new(indices: Vec<u64>) -> Self {
        Self {
            indices: indices.into(),
            summary_json: "{}".into(),
        }
    }

    /// Attaches a JSON summary.
    pub fn with_summary(mut self, summary: serde_json::Value) -> Self {
        self.summary_json = summary.to_string().into();
        self
    }
}

/// The FFI-safe sampler object the host calls.
#[sabi_trait]
pub trait SamplerObj: Send + Sync {
    /// Chooses and orders indices out of `pool`.
    #[sabi(last_prefix_field)]
    fn select(
        &self,
        pool: RSlice<'_, Candidate>,
        ctx: &SampleContext,
        host: HostRef<'_>,
    ) -> RResult<Selection, PluginError>;
}

/// An owned sampler object.
pub type SamplerBox = SamplerObj_TO<'static, RBox<()>>;

/// What a sampler author implements; [`crate::export_sampler!`] does the rest.
pub trait SamplerPlugin: Sized + Send + Sync + 'static {
    /// The typed configuration, parsed from the experiment file's `config` table.
    type Config: DeserializeOwned + Serialize + Default;
    /// The name experiment files use.
    const NAME: &'static str;
    /// One line for `valley plugins list`.
    const DESCRIPTION: &'static str;
    /// The pipeline stages this sampler can fill.
    const ROLES: &'static [SamplerRole];

    /// Builds the sampler from its configuration.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] when the configuration is not usable.
    fn new(config: Self::Config) -> Result<Self, PluginError>;

    /// Chooses and orders indices out of `pool`. Must be deterministic for a given seed.
    ///
    /// # Errors
    /// Any [`PluginError`]; the host marks the cell failed and goes on.
    fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        host: &Host<'_>,
    ) -> Result<Selection, PluginError>;

    /// The configuration shown as an example in listings.
    fn example_config() -> Self::Config {
        Self::Config::default()
    }

    /// Builds the sampler from JSON, as the host does.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] naming the offending field.
    fn from_json(config_json: &str) -> Result<Self, PluginError> {
        Self::new(parse_config(config_json)?)
    }
}

/// Adapts a [`SamplerPlugin`] to the FFI object, catching panics.
pub(crate) struct SamplerAdapter<P>(pub(crate) P);

impl<P: SamplerPlugin> SamplerObj for SamplerAdapter<P> {
    fn select(
        &self,
        pool: RSlice<'_, Candidate>,
        ctx: &SampleContext,
        host: HostRef<'_>,
    ) -> RResult<Selection, PluginError> {
        let host = Host::new(host);
        catch_panics(|| self.0.select(pool.as_slice(), ctx, &host)).into()
    }
}
