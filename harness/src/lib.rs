//! The valley host: experiment files, the plugin loader, training data and sampling pipelines.
//! The `valley` binary is a thin command-line layer over this library.

pub mod bench_train;
pub mod commands;
pub mod data_commands;
pub mod data_source;
pub mod error;
pub mod eval_commands;
pub mod experiment;
pub mod hf_hub;
pub mod interrupt;
pub mod judge;
pub mod judge_commands;
pub mod pipeline;
pub mod plugins;
pub mod problems;
pub mod progress;
pub mod records;
pub mod report_commands;
pub mod sampling;
pub mod sandbox;
pub mod scaffold;
pub mod sources;
pub mod students;
pub mod sweep;
pub mod synth;
pub mod tensor_process;
pub mod tracking;

pub use error::{Error, Result};
