//! The one crate a valley plugin depends on.
//!
//! A plugin is a dynamic library (`crate-type = ["cdylib", "rlib"]`) that exports one root module,
//! [`PluginModRef`]: a [`Manifest`] (kind, name, version, example config, capabilities) and a
//! constructor that takes the plugin's configuration as JSON and returns a [`PluginInstance`] — a
//! sampler, a trainer or an evaluator. Everything that crosses the boundary is an `abi_stable`
//! type and data-shaped (no tensor ever does): pools of [`Candidate`]s, paths, JSON strings and
//! metric points.
//!
//! Plugin authors write plain Rust against the [`SamplerPlugin`], [`TrainerPlugin`] or
//! [`EvaluatorPlugin`] trait and export it with [`export_sampler!`], [`export_trainer!`] or
//! [`export_evaluator!`]. The macros catch panics at the boundary (an `extern "C"` function that
//! unwinds aborts the process) and turn them into [`PluginError::Panicked`].
//!
//! A complete sampler that reverses its input:
//!
//! ```
//! use valley_plugin_api::prelude::*;
//!
//! #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Config {}
//!
//! pub struct Reverse;
//!
//! impl SamplerPlugin for Reverse {
//!     type Config = Config;
//!     const NAME: &'static str = "reverse";
//!     const DESCRIPTION: &'static str = "Trains on the pool in reverse order.";
//!     const ROLES: &'static [SamplerRole] = &[SamplerRole::Order];
//!
//!     fn new(_config: Config) -> Result<Self, PluginError> {
//!         Ok(Reverse)
//!     }
//!
//!     fn select(&self, pool: &[Candidate], _ctx: &SampleContext, _host: &Host<'_>)
//!         -> Result<Selection, PluginError> {
//!         Ok(Selection::new(pool.iter().rev().map(|c| c.index).collect()))
//!     }
//! }
//!
//! valley_plugin_api::export_sampler!(Reverse);
//! ```

#![warn(missing_docs)]
// abi_stable's `sabi_trait` macro (0.11.3) expands to impls inside a const block.
#![allow(non_local_definitions)]

pub mod curriculum;
pub mod error;
pub mod evaluator;
pub mod host;
pub mod manifest;
pub mod module;
pub mod rng;
pub mod sampler;
pub mod sandbox;
pub mod testing;
pub mod trainer;

pub use error::PluginError;
pub use evaluator::{
    EvalJob, EvalOutcome, EvaluatorBox, EvaluatorObj, EvaluatorPlugin, MetricValue,
};
pub use host::{Direction, Host, HostRef, HostServices, MetricPoint, Progress};
pub use manifest::{Capability, Manifest, PluginKind, SamplerRole};
pub use module::{PluginInstance, PluginMod, PluginModRef, INTERFACE_VERSION};
pub use rng::SeedRng;
pub use sampler::{Candidate, SampleContext, SamplerBox, SamplerObj, SamplerPlugin, Selection};
pub use sandbox::{isolation_summary, SandboxFile, SandboxLimits, SandboxRequest, SandboxResult};
pub use trainer::{
    TrainEnd, TrainJob, TrainOutcome, TrainerBox, TrainerObj, TrainerPlugin, EXIT_INTERRUPTED,
};

/// Re-exported so that the export macros expand in crates that do not depend on `abi_stable`.
pub use abi_stable;
/// Re-exported so that plugins can name JSON values without a dependency of their own.
pub use serde_json;

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Candidate, Capability, Direction, EvalJob, EvalOutcome, EvaluatorPlugin, Host, MetricPoint,
        MetricValue, PluginError, SampleContext, SamplerPlugin, SamplerRole, SeedRng, Selection,
        TrainEnd, TrainJob, TrainOutcome, TrainerPlugin,
    };
}
