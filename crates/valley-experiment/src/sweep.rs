//! The sweep runner behind `valley experiment NAME`: for each cell (arm × size × seed) sample →
//! train → evaluate → record, with the arm's student evaluated as size 0.
//!
//! Cells run in parallel up to `jobs`, the largest first (so the longest cells do not start
//! last and run alone). A cell that fails is recorded as failed with its error
//! (`error.txt`, the run's `valley.error` tag) and the others go on. Ctrl-C (the shared cancel
//! flag) stops the running cells at their next step: their runs are marked killed, their
//! checkpoints kept, and a rerun resumes them. A finished cell (same key, same config hash, its
//! `result.json` present) is skipped unless `force`.
//!
//! Each cell's directory `runs/<experiment>/<cell>/` holds `config.json` (written first),
//! `train.jsonl` and `stages.json` (sampling), `train/` (the trainer's output), `eval/` (the
//! evaluator's) and `result.json` (the cell's record as reports read it), or `error.txt`, or
//! `interrupted.json` (the step and checkpoint a signal stopped its training at; a rerun resumes).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Arc, Mutex,
    },
};

use valley_plugin_api::{MetricPoint, Progress, TrainEnd, TrainJob};
use valley_plugin_host::{CallServices, LoadedTrainer, MetricSink, ProgressSink};
use valley_reports::{CellRecord, DifficultyScore, Direction as ReportDirection, Metric};

use crate::{
    error::{Error, Result},
    evaluate::evaluate,
    events::{CellEnd, Phase, SweepEvent, SweepObserver},
    experiment::PluginSpec,
    fingerprint::config_hash,
    sampling::{cell_config, exp_record, write_cell, Plan, PlannedCell, PluginRegistry, Prepared},
    students::{self, latest_resumable, resumable_step, substitute, Student},
};

/// What the sweep did.
#[derive(Debug, Default)]
pub struct SweepSummary {
    /// Cells that ran to the end.
    pub finished: Vec<String>,
    /// Failed cells and their errors.
    pub failed: Vec<(String, String)>,
    /// Cells stopped by Ctrl-C.
    pub killed: Vec<String>,
    /// Cells skipped because a finished run with the same config exists.
    pub skipped: Vec<String>,
    /// Base-model cells (size 0) of a sampling-only run: nothing to sample.
    pub base: Vec<String>,
}

/// Everything a cell needs, shared by the worker threads.
pub struct Sweep<'a> {
    /// The experiment, its data and samplers.
    pub prepared: &'a Prepared,
    /// The planned cells.
    pub plan: &'a Plan,
    /// Who hears what happens: the run tracker, the progress printer.
    pub observer: &'a dyn SweepObserver,
    /// Where plugins come from.
    pub registry: &'a PluginRegistry,
    /// Built students by name.
    pub students: &'a BTreeMap<String, Student>,
    /// Ctrl-C.
    pub cancel: Arc<AtomicBool>,
    /// Redo finished cells.
    pub force: bool,
    /// Cells at once.
    pub jobs: usize,
    /// Stop each cell after sampling (no training, no evaluation).
    pub sample_only: bool,
    /// One lock per base-model evaluation cache, so that parallel size-0 cells of one student
    /// evaluate it once and the others read the cache.
    pub base_evals: BaseEvalLocks,
}

/// Locks of the base-model evaluation caches by directory ([`Sweep::base_evals`]).
pub type BaseEvalLocks = Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>>;

/// The order cells start in: larger subsets first (they take longest), the plan's order among
/// equals.
fn dispatch_order(cells: &[PlannedCell]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cells[i].cell.size));
    order
}

impl Sweep<'_> {
    /// Runs every cell, `jobs` at a time, telling the observer as each starts, logs and ends.
    ///
    /// # Errors
    /// Only errors that stop the whole sweep (the run directory cannot be written, an observer
    /// fails).
    pub fn run(&self) -> Result<SweepSummary> {
        let exp = &self.prepared.experiment;
        let root = exp.runs_dir();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        write_json(&root.join("experiment.json"), &exp_record(exp))?;
        self.observer.on_sweep_event(&SweepEvent::Started {
            cells: self.plan.cells.len(),
        })?;
        let next = AtomicUsize::new(0);
        let order = dispatch_order(&self.plan.cells);
        let fatal: Mutex<Option<Error>> = Mutex::new(None);
        let (tx, rx) = mpsc::channel::<(String, CellEnd)>();
        let mut summary = SweepSummary::default();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.max(1).min(self.plan.cells.len().max(1)) {
                let tx = tx.clone();
                let (next, order, fatal) = (&next, &order, &fatal);
                scope.spawn(move || loop {
                    if self.cancel.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(planned) = order.get(i).and_then(|&i| self.plan.cells.get(i)) else {
                        break;
                    };
                    match self.cell(planned) {
                        Ok(end) => {
                            let _ = tx.send((planned.key.clone(), end));
                        }
                        Err(e) => {
                            *fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                            self.cancel.store(true, Ordering::SeqCst);
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (key, end) in rx {
                match end {
                    CellEnd::Finished(_) => summary.finished.push(key),
                    CellEnd::Base => summary.base.push(key),
                    CellEnd::Skipped(_) => summary.skipped.push(key),
                    CellEnd::Failed(e) => summary.failed.push((key, e)),
                    CellEnd::Killed(_) => summary.killed.push(key),
                }
            }
        });
        let finished = self.observer.on_sweep_event(&SweepEvent::Finished);
        if let Some(e) = fatal.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        finished?;
        Ok(summary)
    }

    fn student_of(&self, arm: &str) -> Option<&Student> {
        let exp = &self.prepared.experiment;
        exp.arm(arm)
            .and_then(|a| a.student.as_ref())
            .and_then(|name| self.students.get(name))
    }

    /// One cell, its end told to the observer. `Err` only for what stops the sweep; the cell's
    /// own failure is a [`CellEnd`].
    fn cell(&self, planned: &PlannedCell) -> Result<CellEnd> {
        let end = self.cell_run(planned)?;
        self.observer.on_sweep_event(&SweepEvent::CellEnded {
            key: &planned.key,
            end: &end,
        })?;
        Ok(end)
    }

    fn cell_run(&self, planned: &PlannedCell) -> Result<CellEnd> {
        let exp = &self.prepared.experiment;
        let dir = exp.runs_dir().join(&planned.key);
        let student = self.student_of(&planned.cell.arm);
        let mut config = cell_config(self.prepared, planned);
        config["student"] = match student {
            Some(s) => serde_json::json!({ "name": s.name, "hash": s.hash }),
            None => serde_json::Value::Null,
        };
        if self.sample_only {
            // Another config: a full run must not take a sampled cell for a finished one.
            config["stop_after"] = serde_json::json!("sample");
        }
        let hash = config_hash(&config);
        let result_file = dir.join("result.json");
        if !self.force && result_file.is_file() {
            if let Some(found) = self.observer.finished_run(&planned.key, &hash) {
                return Ok(CellEnd::Skipped(format!("finished; found in {found}")));
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // A changed config invalidates the trainer's checkpoints; the same config resumes them.
        let config_file = dir.join("config.json");
        let same_config = std::fs::read_to_string(&config_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|old| old == config);
        if !same_config || self.force {
            for stale in ["train", "eval"] {
                let p = dir.join(stale);
                if p.exists() {
                    std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        write_json(&config_file, &config)?;
        for stale in [
            "error.txt",
            "interrupted.json",
            "train.jsonl",
            "stages.json",
            "result.json",
        ] {
            let p = dir.join(stale);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        self.observer.on_sweep_event(&SweepEvent::CellStarted {
            planned,
            config: &config,
            config_file: &config_file,
        })?;
        let outcome = self.cell_work(planned, &dir, student);
        match outcome {
            Ok(record) => {
                let what = if self.sample_only {
                    format!(
                        "wrote {} records to {}",
                        planned.cell.size,
                        dir.join("train.jsonl").display()
                    )
                } else {
                    describe(&record)
                };
                write_json(&result_file, &record)?;
                self.artifact(&planned.key, &result_file, "result.json")?;
                if planned.cell.size == 0 && (self.sample_only || exp.spec.evaluator.is_none()) {
                    return Ok(CellEnd::Base);
                }
                Ok(CellEnd::Finished(what))
            }
            Err(e @ Error::TrainingInterrupted { .. }) => {
                // Recorded on the cell: where it stopped and what a rerun resumes from.
                if let Error::TrainingInterrupted { step, checkpoint } = &e {
                    write_json(
                        &dir.join("interrupted.json"),
                        &serde_json::json!({ "step": step, "checkpoint": checkpoint }),
                    )?;
                }
                Ok(CellEnd::Killed(e.to_string()))
            }
            Err(e) if self.cancel.load(Ordering::SeqCst) => Ok(CellEnd::Killed(e.to_string())),
            Err(e) => {
                let message = e.to_string();
                let error_file = dir.join("error.txt");
                std::fs::write(&error_file, format!("{message}\n"))
                    .map_err(|e| Error::io(&error_file, e))?;
                Ok(CellEnd::Failed(message))
            }
        }
    }

    /// Tells the observer of a file to keep with cell `key`'s run.
    fn artifact(&self, key: &str, path: &Path, name: &str) -> Result<()> {
        self.observer
            .on_sweep_event(&SweepEvent::Artifact { key, path, name })
    }

    /// Streams metric points to the observer; its failure is a warning, not the cell's.
    fn metrics(&self, key: &str, points: &[MetricPoint]) {
        if let Err(e) = self
            .observer
            .on_sweep_event(&SweepEvent::Metrics { key, points })
        {
            tracing::warn!("{key}: logging metrics: {e}");
        }
    }

    /// The metric sink a plugin call of cell `key` streams into.
    fn metric_sink<'s>(&'s self, key: &'s str) -> MetricSink<'s> {
        Box::new(move |points: Vec<MetricPoint>| self.metrics(key, &points))
    }

    /// The progress sink of a plugin call of cell `key`.
    fn progress_sink<'s>(&'s self, key: &'s str, phase: Phase) -> ProgressSink<'s> {
        Box::new(move |progress: &Progress| {
            let event = SweepEvent::Progress {
                key,
                phase,
                progress,
            };
            if let Err(e) = self.observer.on_sweep_event(&event) {
                tracing::warn!("{key}: progress: {e}");
            }
        })
    }

    fn cell_work(
        &self,
        planned: &PlannedCell,
        dir: &Path,
        student: Option<&Student>,
    ) -> Result<CellRecord> {
        let key = planned.key.as_str();
        let exp = &self.prepared.experiment;
        let cell = &planned.cell;
        let mut record = CellRecord::finished(&cell.arm, cell.size, cell.seed);
        if cell.size == 0 && (self.sample_only || exp.spec.evaluator.is_none()) {
            // Nothing to sample, train or evaluate.
            return Ok(record);
        }
        let checkpoint: PathBuf = if cell.size == 0 {
            // The base model: the arm's student as it is.
            match student {
                Some(s) => s.checkpoint.clone(),
                None => {
                    return Err(Error::experiment_file(
                        &exp.file,
                        "size 0 evaluates the base model: add `[students]` (or drop 0 from `sweep.sizes`)",
                    ))
                }
            }
        } else {
            let services =
                CallServices::new(key, self.cancel.clone()).streaming(self.metric_sink(key));
            let outcome = self.prepared.sample(cell, &services)?;
            write_cell(self.prepared, dir, &outcome)?;
            let ids: Vec<&str> = outcome
                .order
                .iter()
                .map(|&i| self.prepared.data.records[i as usize].id.as_str())
                .collect();
            self.observer.on_sweep_event(&SweepEvent::CellSampled {
                key,
                outcome: &outcome,
                ids: &ids,
                stages_file: &dir.join("stages.json"),
            })?;
            let Some(spec) = exp.spec.trainer.as_ref().filter(|_| !self.sample_only) else {
                return Ok(record);
            };
            let config = substitute(
                &spec.config,
                student.map(|s| s.checkpoint.as_path()),
                "trainer",
            )?;
            let lib = self.registry.resolve(spec, "trainer")?;
            let trainer = LoadedTrainer::new(lib, "trainer", &config)?;
            let output = dir.join("train");
            let resume = latest_resumable(&output);
            if let Some(checkpoint) = &resume {
                self.observer.on_sweep_event(&SweepEvent::TrainingResumes {
                    key,
                    step: resumable_step(checkpoint),
                    checkpoint,
                })?;
            }
            let job = TrainJob {
                config_json: config.to_string().into(),
                train_file: dir.join("train.jsonl").display().to_string().into(),
                output_dir: output.display().to_string().into(),
                resume_from: resume.map(|p| p.display().to_string().into()).into(),
            };
            let services = CallServices::new(key, self.cancel.clone())
                .streaming(self.metric_sink(key))
                .with_progress(self.progress_sink(key, Phase::Train));
            let outcome = trainer.train(&job, &services)?;
            if let TrainEnd::Interrupted { step } = outcome.end() {
                return Err(Error::TrainingInterrupted {
                    step,
                    checkpoint: PathBuf::from(outcome.checkpoint_dir.as_str()),
                });
            }
            let summary: serde_json::Value =
                serde_json::from_str(outcome.summary_json.as_str()).unwrap_or_default();
            record.training_steps = summary.get("steps").and_then(serde_json::Value::as_u64);
            record.training_tokens = summary
                .get("tokens_seen")
                .and_then(serde_json::Value::as_f64)
                .map(|t| t.round() as u64);
            let summary_file = dir.join("train").join("summary.json");
            write_json(&summary_file, &summary)?;
            self.artifact(key, &summary_file, "train-summary.json")?;
            PathBuf::from(outcome.checkpoint_dir.as_str())
        };
        let Some(spec) = &exp.spec.evaluator else {
            return Ok(record);
        };
        let eval_set = crate::data_source::eval_file(&exp.spec.data)?.ok_or_else(|| {
            Error::experiment_file(
                &exp.file,
                "the evaluator needs problems: set `data.eval` (or use `data.synth`)",
            )
        })?;
        // The base model is evaluated once per student, evaluator and problem set; its cells
        // record the same numbers (one model, not one per seed).
        let cache = (cell.size == 0).then(|| {
            let hash = config_hash(&serde_json::json!({
                "evaluator": spec, "eval_set": eval_set, "checkpoint": checkpoint,
            }));
            checkpoint
                .parent()
                .unwrap_or(&checkpoint)
                .join(format!("eval-{}", &hash[..12]))
        });
        let lock = cache.as_ref().map(|c| {
            let mut locks = self.base_evals.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(c.clone()).or_default())
        });
        let _evaluating = lock
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()));
        let cached: Option<Vec<MetricPoint>> = cache
            .as_ref()
            .and_then(|c| std::fs::read_to_string(c.join("metrics.json")).ok())
            .and_then(|t| serde_json::from_str::<Vec<StoredMetric>>(&t).ok())
            .map(|v| v.into_iter().map(StoredMetric::into_point).collect());
        let metrics = match (cached, &cache) {
            (Some(points), Some(dir)) => {
                self.metrics(key, &points);
                // The evaluation's files (generations and verdicts) belong to every base cell.
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|e| Error::io(dir, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && p.file_name() != Some("metrics.json".as_ref()))
                    .collect();
                files.sort();
                for file in files {
                    let name = format!(
                        "eval/{}",
                        file.file_name().unwrap_or_default().to_string_lossy()
                    );
                    self.artifact(key, &file, &name)?;
                }
                points
            }
            _ => {
                let output = cache.clone().unwrap_or_else(|| dir.join("eval"));
                let points = self.evaluate(spec, &checkpoint, &eval_set, &output, key)?;
                if let Some(c) = &cache {
                    let stored: Vec<StoredMetric> = points.iter().map(StoredMetric::from).collect();
                    write_json(&c.join("metrics.json"), &stored)?;
                }
                points
            }
        };
        fill_record(&mut record, &metrics);
        Ok(record)
    }

    /// Runs the evaluator on a checkpoint; logs its final metrics (step 0) and artifacts.
    fn evaluate(
        &self,
        spec: &PluginSpec,
        checkpoint: &Path,
        eval_set: &Path,
        output: &Path,
        key: &str,
    ) -> Result<Vec<MetricPoint>> {
        let lib = self.registry.resolve(spec, "evaluator")?;
        let services = CallServices::new(key, self.cancel.clone())
            .streaming(self.metric_sink(key))
            .with_progress(self.progress_sink(key, Phase::Eval));
        let outcome = evaluate(&lib, &spec.config, checkpoint, eval_set, output, &services)?;
        let points: Vec<MetricPoint> = outcome
            .metrics
            .iter()
            .map(|m| MetricPoint {
                name: m.name.clone(),
                value: m.value,
                step: 0,
                unit: m.unit.clone(),
                direction: m.direction,
            })
            .collect();
        self.metrics(key, &points);
        for path in &outcome.artifacts {
            let name = path
                .file_name()
                .map(|n| format!("eval/{}", n.to_string_lossy()))
                .unwrap_or_else(|| "eval/artifact".into());
            self.artifact(key, path, &name)?;
        }
        Ok(points)
    }
}

/// Builds every student the arms name (once each, cached across experiments).
///
/// # Errors
/// A student that cannot be built stops the experiment: every cell of its arms needs it.
pub fn build_students(
    prepared: &Prepared,
    registry: &PluginRegistry,
    cancel: &Arc<AtomicBool>,
    sample_only: bool,
    observer: &dyn SweepObserver,
) -> Result<BTreeMap<String, Student>> {
    let exp = &prepared.experiment;
    let mut built = BTreeMap::new();
    let trains = !sample_only && (exp.spec.trainer.is_some() || exp.spec.evaluator.is_some());
    for arm in &exp.arms {
        let Some(name) = &arm.student else { continue };
        if built.contains_key(name) || !trains {
            continue;
        }
        let student = students::ensure(exp, name, registry, cancel, observer).map_err(|e| {
            Error::Student {
                name: name.clone(),
                source: Box::new(e),
            }
        })?;
        built.insert(name.clone(), student);
    }
    Ok(built)
}

/// Builds one student (and the students it starts from), or finds it built: a Slurm task of its
/// own.
///
/// # Errors
/// As [`build_students`].
pub fn build_student(
    prepared: &Prepared,
    registry: &PluginRegistry,
    cancel: &Arc<AtomicBool>,
    name: &str,
    observer: &dyn SweepObserver,
) -> Result<Student> {
    students::ensure(&prepared.experiment, name, registry, cancel, observer).map_err(|e| {
        Error::Student {
            name: name.to_string(),
            source: Box::new(e),
        }
    })
}

/// Copies an evaluator's metrics into a report record: every metric by name, and the fields
/// reports treat specially (`pass@1/<difficulty>`, `completion_rate`, `think_rate`).
pub fn fill_record(record: &mut CellRecord, metrics: &[MetricPoint]) {
    for m in metrics {
        let name = m.name.as_str();
        let direction = match m.direction {
            valley_plugin_api::Direction::HigherIsBetter => ReportDirection::HigherIsBetter,
            valley_plugin_api::Direction::LowerIsBetter => ReportDirection::LowerIsBetter,
            valley_plugin_api::Direction::Neutral => ReportDirection::Neutral,
        };
        record.metrics.insert(
            name.to_string(),
            Metric::new(m.value, m.unit.as_str(), direction),
        );
        if let Some(difficulty) = name.strip_prefix("pass@1/") {
            record.pass_at_1_by_difficulty.push(DifficultyScore {
                difficulty: difficulty.to_string(),
                pass_at_1: m.value,
            });
        }
        match name {
            "completion_rate" => record.completion_rate = Some(m.value),
            "think_rate" => record.think_rate = Some(m.value),
            _ => {}
        }
    }
}

/// A metric point as the base model's evaluation cache stores it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMetric {
    name: String,
    value: f64,
    unit: String,
    direction: String,
}

impl From<&MetricPoint> for StoredMetric {
    fn from(p: &MetricPoint) -> Self {
        Self {
            name: p.name.to_string(),
            value: p.value,
            unit: p.unit.to_string(),
            direction: match p.direction {
                valley_plugin_api::Direction::HigherIsBetter => "higher",
                valley_plugin_api::Direction::LowerIsBetter => "lower",
                valley_plugin_api::Direction::Neutral => "neutral",
            }
            .into(),
        }
    }
}

impl StoredMetric {
    fn into_point(self) -> MetricPoint {
        let p = MetricPoint::new(self.name, self.value, 0).unit(self.unit);
        match self.direction.as_str() {
            "higher" => p.higher_is_better(),
            "lower" => p.lower_is_better(),
            _ => p,
        }
    }
}

fn describe(record: &CellRecord) -> String {
    let mut parts = Vec::new();
    if let Some(steps) = record.training_steps {
        parts.push(format!("{steps} steps"));
    }
    if let Some(m) = record.metrics.get(valley_reports::DEFAULT_PRIMARY_METRIC) {
        parts.push(format!(
            "{} {:.3}",
            valley_reports::DEFAULT_PRIMARY_METRIC,
            m.value
        ));
    }
    if parts.is_empty() {
        "sampled".into()
    } else {
        parts.join(", ")
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    crate::sampling::write_json(path, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_cells_start_first_and_equals_keep_the_plan_order() {
        let planned = |arm: &str, size: u64, seed: u64| PlannedCell {
            cell: crate::experiment::Cell {
                arm: arm.into(),
                size,
                seed,
            },
            key: format!("{arm}-n{size}-s{seed}"),
            pool: 100,
        };
        let cells = [
            planned("a", 0, 1),
            planned("a", 30, 1),
            planned("a", 300, 1),
            planned("a", 30, 2),
            planned("a", 300, 2),
        ];
        assert_eq!(dispatch_order(&cells), [2, 4, 1, 3, 0]);
    }

    #[test]
    fn evaluator_metrics_fill_the_report_fields() {
        let point = |name: &str, v: f64| MetricPoint::new(name, v, 0).unit("fraction");
        let mut record = CellRecord::finished("random", 10, 1);
        fill_record(
            &mut record,
            &[
                point("pass@1", 0.25).higher_is_better(),
                point("pass@1/EASY", 0.5),
                point("completion_rate", 0.9),
                point("think_rate", 0.75),
            ],
        );
        assert_eq!(record.metrics["pass@1"].value, 0.25);
        assert_eq!(
            record.metrics["pass@1"].direction,
            ReportDirection::HigherIsBetter
        );
        assert_eq!(record.pass_at_1_by_difficulty.len(), 1);
        assert_eq!(record.pass_at_1_by_difficulty[0].difficulty, "EASY");
        assert_eq!(record.completion_rate, Some(0.9));
        assert_eq!(record.think_rate, Some(0.75));
    }
}
