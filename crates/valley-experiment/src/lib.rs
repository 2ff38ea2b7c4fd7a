//! Experiments: an experiment file becomes a plan of cells (arm × size × seed), and a sweep runs
//! each cell — sample through the arm's sampler plugins, train with the trainer plugin, evaluate
//! with the evaluator plugin — and writes its run record.
//!
//! - [`Experiment`]: the file (`experiments/NAME.toml`), layered with `VALLEY__*` and `--set`.
//! - [`Prepared`] and [`Plan`]: the data, the samplers found, the planned cells.
//! - [`Sweep`]: runs the cells in parallel and emits [`SweepEvent`]s to a [`SweepObserver`]: the
//!   run tracker ([`Session`], MLflow parent and child runs) and the command line's printer.
//! - [`students`]: the checkpoints cells start from, trained once and cached.
//!
//! ```
//! use valley_experiment::Experiment;
//!
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("tiny.toml");
//! std::fs::write(&dir.path().join("train.jsonl"), "")?;
//! std::fs::write(
//!     &file,
//!     r#"
//! [data]
//! train = "train.jsonl"
//!
//! [sweep]
//! sizes = [10, 100]
//! seeds = [1, 2]
//!
//! [arms.random]
//! order = { plugin = "random" }
//! "#,
//! )?;
//! let exp = Experiment::load(file.to_str().unwrap(), &["sweep.seeds=[7]".to_string()])?;
//! let keys: Vec<String> = exp.cells().iter().map(|c| c.key()).collect();
//! assert_eq!(keys.len(), 2);
//! assert!(keys.iter().all(|k| k.starts_with("random-")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod data_source;
mod error;
mod evaluate;
mod events;
mod experiment;
mod fingerprint;
mod pipeline;
mod run_tracking;
mod sampling;
mod students;
mod sweep;

pub use data_source::{
    direct_answer, eval_file, load_training, synth_dir, training_file, uncached_hub_source,
    DataSection, DEFAULT_CACHE_DIR, DEFAULT_SUBSET,
};
pub use error::{Error, Result};
pub use evaluate::{config_from_overrides, evaluate, EvalResult};
pub use events::{CellEnd, Observers, Phase, StudentState, SweepEvent, SweepObserver};
pub use experiment::{
    parse_override_value, Arm, ArmSpec, Cell, ExecutorKind, ExecutorSection, Experiment,
    ExperimentFile, OutputSection, PluginSpec, PluginsSection, ReportSection, StageSpec,
    StudentSpec, SweepSection, TrackingSection,
};
pub use fingerprint::{config_hash, order_hash};
pub use pipeline::{run_pipeline, PipelineOutcome, Stage, StageReport};
pub use run_tracking::{utc_stamp, Session};
pub use sampling::{
    cell_config, exp_record, write_cell, Plan, PlannedCell, PluginRegistry, Prepared,
};
pub use sweep::{build_student, build_students, fill_record, Sweep, SweepSummary};
