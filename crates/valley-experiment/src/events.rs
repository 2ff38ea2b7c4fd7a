//! What a sweep reports as it runs, and to whom: the sweep emits [`SweepEvent`]s to
//! [`SweepObserver`]s instead of printing or tracking itself (as burn's learner emits
//! `LearnerEvent`s to its renderers). The run tracker ([`crate::Session`]) and the command line's
//! progress printer are two observers; a test can be a third.

use std::path::{Path, PathBuf};

use valley_plugin_api::{MetricPoint, Progress};

use crate::{error::Result, pipeline::PipelineOutcome, sampling::PlannedCell};

/// Which call of a cell a [`SweepEvent::Progress`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The trainer plugin.
    Train,
    /// The evaluator plugin.
    Eval,
}

impl Phase {
    /// `train` or `eval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Train => "train",
            Phase::Eval => "eval",
        }
    }
}

/// How a cell ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CellEnd {
    /// It ran to the end; what it did in a few words (`376 steps, pass@1 0.120`).
    Finished(String),
    /// A base-model cell (size 0) with nothing to sample, train or evaluate.
    Base,
    /// A finished run with the same config exists; where it was found.
    Skipped(String),
    /// It failed with this error (recorded in the cell's `error.txt`).
    Failed(String),
    /// A signal (SIGINT, SIGTERM, SIGUSR1) stopped it: the trainer saved a resumable checkpoint
    /// (the message says where), or it had not reached training; a rerun resumes it.
    Killed(String),
}

/// Where a student stands (`[students.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub enum StudentState<'a> {
    /// Built before: its checkpoint.
    Cached(&'a Path),
    /// Training starts: the trainer plugin, the student's directory and the checkpoint it
    /// resumes from.
    Training {
        /// The trainer plugin's name.
        trainer: &'a str,
        /// The student's directory.
        dir: &'a Path,
        /// The checkpoint it resumes from, if any.
        resume_from: Option<PathBuf>,
    },
    /// Built now: its checkpoint.
    Built(&'a Path),
}

/// One thing that happened in a sweep.
#[derive(Debug)]
pub enum SweepEvent<'a> {
    /// The sweep starts `cells` cells.
    Started {
        /// How many cells the plan holds.
        cells: usize,
    },
    /// A student is cached, starts training, or is built.
    Student {
        /// The student's name.
        name: &'a str,
        /// What happened.
        state: StudentState<'a>,
    },
    /// A cell's training resumes from a checkpoint an earlier run left.
    TrainingResumes {
        /// The cell.
        key: &'a str,
        /// The step it resumes at, when the checkpoint says (`state.json`'s `step`).
        step: Option<u64>,
        /// The checkpoint.
        checkpoint: &'a Path,
    },
    /// A cell starts; its resolved config is written to `config_file`.
    CellStarted {
        /// The cell.
        planned: &'a PlannedCell,
        /// Its resolved config.
        config: &'a serde_json::Value,
        /// Where that config is.
        config_file: &'a Path,
    },
    /// The cell's samplers ran and its training file is written.
    CellSampled {
        /// The cell's key.
        key: &'a str,
        /// What each stage kept.
        outcome: &'a PipelineOutcome,
        /// The record ids in training order.
        ids: &'a [&'a str],
        /// The stage summary file.
        stages_file: &'a Path,
    },
    /// Metric points of a cell: what plugins streamed, and the evaluator's final metrics.
    Metrics {
        /// The cell's key.
        key: &'a str,
        /// The points.
        points: &'a [MetricPoint],
    },
    /// Progress of a cell's trainer or evaluator (or of a student's trainer: its key is
    /// `student NAME`).
    Progress {
        /// The cell's key.
        key: &'a str,
        /// Which call.
        phase: Phase,
        /// How far it is.
        progress: &'a Progress,
    },
    /// A file to keep with the cell's run under `name`.
    Artifact {
        /// The cell's key.
        key: &'a str,
        /// The file.
        path: &'a Path,
        /// Its name in the run (`eval/generations.jsonl`).
        name: &'a str,
    },
    /// A cell ended.
    CellEnded {
        /// The cell's key.
        key: &'a str,
        /// How.
        end: &'a CellEnd,
    },
    /// Every cell has ended (or the sweep stopped).
    Finished,
}

/// Receives a sweep's events. Called from the sweep's worker threads.
pub trait SweepObserver: Sync {
    /// Handles one event.
    ///
    /// # Errors
    /// An error stops the sweep, except for [`SweepEvent::Metrics`] and
    /// [`SweepEvent::Progress`], whose errors are logged as warnings.
    fn on_sweep_event(&self, event: &SweepEvent<'_>) -> Result<()>;

    /// Where a finished run of cell `key` with config hash `config_hash` is recorded, if this
    /// observer knows one (the tracker does); the sweep skips such a cell unless forced.
    fn finished_run(&self, key: &str, config_hash: &str) -> Option<String> {
        let _ = (key, config_hash);
        None
    }
}

/// Several observers as one, called in order.
pub struct Observers<'a>(pub &'a [&'a dyn SweepObserver]);

impl SweepObserver for Observers<'_> {
    fn on_sweep_event(&self, event: &SweepEvent<'_>) -> Result<()> {
        for o in self.0 {
            o.on_sweep_event(event)?;
        }
        Ok(())
    }

    fn finished_run(&self, key: &str, config_hash: &str) -> Option<String> {
        self.0.iter().find_map(|o| o.finished_run(key, config_hash))
    }
}
