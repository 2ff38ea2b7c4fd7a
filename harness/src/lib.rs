//! The valley host: experiment files, the plugin loader, training data and sampling pipelines.
//! The `valley` binary is a thin command-line layer over this library.

pub mod commands;
pub mod data_commands;
pub mod data_source;
pub mod error;
pub mod experiment;
pub mod hf_hub;
pub mod judge;
pub mod judge_commands;
pub mod pipeline;
pub mod plugins;
pub mod problems;
pub mod records;
pub mod sampling;
pub mod sandbox;
pub mod scaffold;
pub mod sources;
pub mod synth;
pub mod tracking;

pub use error::{Error, Result};
