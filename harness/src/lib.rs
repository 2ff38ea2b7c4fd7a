//! The valley host: experiment files, the plugin loader, training data and sampling pipelines.
//! The `valley` binary is a thin command-line layer over this library.

pub mod commands;
pub mod error;
pub mod experiment;
pub mod pipeline;
pub mod plugins;
pub mod records;
pub mod sampling;
pub mod scaffold;

pub use error::{Error, Result};
