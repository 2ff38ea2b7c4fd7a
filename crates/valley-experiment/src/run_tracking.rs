//! What `valley experiment` records, and `valley sync`.
//!
//! One MLflow experiment per experiment file (its name, or `[tracking] experiment_name`); a
//! parent run per invocation (the resolved experiment file as params) and a child run per cell
//! with tags `valley.experiment`, `valley.arm`, `valley.size`, `valley.seed`, `valley.cell_key`,
//! `valley.config_hash`, `valley.git_commit`, `valley.host`; params are the cell's resolved
//! config flattened to dot keys (every sampler's config included); metrics are what plugins
//! streamed plus the records each stage kept and dropped; artifacts are `config.json`,
//! `stages.json` and `manifest.json` (the ids in training order and their SHA-256).
//!
//! A cell is finished when a child run with its key and config hash ended `FINISHED`, in the
//! local run directory or in MLflow; a rerun skips it unless forced.
//!
//! The server is chosen by [`choose_target`]: `[tracking] enabled = false` is local only; else
//! `[tracking] uri`, else `MLFLOW_TRACKING_URI`, else the local server of `just mlflow`. No
//! server, or one that does not answer, is one line of output, not an error.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::Path,
    sync::Mutex,
    time::Duration,
};

use valley_plugin_api::{Direction, MetricPoint};

use valley_tracking::{
    direction_serde, flatten, now_ms, pending, target_from_env, LocalStore, Metric, MetricValue,
    MlflowClient, Result, RunId, RunSpec, RunStatus, SyncedTracker, Target, Tracker,
};

use crate::{
    events::{CellEnd, SweepEvent, SweepObserver},
    experiment::{Cell, Experiment},
    fingerprint::{config_hash, order_hash},
    pipeline::PipelineOutcome,
};

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the epoch.
pub fn utc_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Finished cells: cell key → config hashes of finished child runs.
type Finished = BTreeMap<String, BTreeSet<String>>;

fn finished_in_store(store: &LocalStore) -> Finished {
    let mut done = Finished::new();
    for run in store.runs().unwrap_or_default() {
        let Ok(s) = store.summary(&run) else { continue };
        if s.status == Some(RunStatus::Finished)
            && s.tags.get("valley.kind").map(String::as_str) == Some("cell")
        {
            if let (Some(key), Some(hash)) = (
                s.tags.get("valley.cell_key"),
                s.tags.get("valley.config_hash"),
            ) {
                done.entry(key.clone()).or_default().insert(hash.clone());
            }
        }
    }
    done
}

fn finished_in_mlflow(client: &MlflowClient, experiment: &str) -> Result<Finished> {
    let mut done = Finished::new();
    let Some(id) = client.experiment_id(experiment)? else {
        return Ok(done);
    };
    let runs = client.search_runs(
        &[id],
        "tags.`valley.kind` = 'cell' and attributes.status = 'FINISHED'",
    )?;
    for run in runs {
        if let (Some(key), Some(hash)) = (run.tag("valley.cell_key"), run.tag("valley.config_hash"))
        {
            done.entry(key.to_string())
                .or_default()
                .insert(hash.to_string());
        }
    }
    Ok(done)
}

/// The tracking of one `valley experiment` invocation.
pub struct Session {
    tracker: SyncedTracker,
    client: Option<MlflowClient>,
    experiment: String,
    mlflow_experiment: String,
    parent: RunId,
    context: Vec<(String, String)>,
    finished_local: Finished,
    finished_remote: Finished,
    units_logged: Mutex<BTreeSet<(RunId, String)>>,
    /// The child run of each started cell, by cell key.
    cells: Mutex<BTreeMap<String, RunId>>,
}

impl Session {
    /// Opens tracking for `exp` and starts its parent run; prints one line saying where runs go.
    ///
    /// # Errors
    /// When the local run directory cannot be written.
    pub fn open(exp: &Experiment, out: &mut dyn Write) -> Result<Self> {
        Self::open_with(exp, target_from_env(&exp.spec.tracking), out)
    }

    /// [`Session::open`] with the target chosen by the caller.
    ///
    /// # Errors
    /// As [`Session::open`].
    pub fn open_with(exp: &Experiment, target: Target, out: &mut dyn Write) -> Result<Self> {
        Self::start(exp, target, None, out)
    }

    /// Tracking for one step of an experiment whose parent run another process started (a
    /// Slurm task): cells become children of `parent`; the parent is neither created nor ended.
    ///
    /// # Errors
    /// As [`Session::open`].
    pub fn attach(exp: &Experiment, parent: RunId, out: &mut dyn Write) -> Result<Self> {
        Self::start(exp, target_from_env(&exp.spec.tracking), Some(parent), out)
    }

    fn start(
        exp: &Experiment,
        target: Target,
        attach_to: Option<RunId>,
        out: &mut dyn Write,
    ) -> Result<Self> {
        let root = exp.runs_dir().join("tracking");
        let mlflow_experiment = exp
            .spec
            .tracking
            .experiment_name
            .clone()
            .unwrap_or_else(|| exp.name.clone());
        let (tracker, client, finished_remote) = match target {
            Target::Local(why) => {
                let _ = writeln!(
                    out,
                    "tracking: local only ({why}); runs logged under {}",
                    root.display()
                );
                (SyncedTracker::local(&root), None, Finished::new())
            }
            Target::Mlflow(uri) => {
                let client = MlflowClient::new(&uri)?;
                let finished = match client.health() {
                    Ok(()) => {
                        let _ = writeln!(
                            out,
                            "tracking: MLflow at {uri}, experiment `{mlflow_experiment}` (logged first under {})",
                            root.display()
                        );
                        finished_in_mlflow(&client, &mlflow_experiment).unwrap_or_else(|e| {
                            tracing::warn!("looking up finished cells in MLflow: {e}");
                            Finished::new()
                        })
                    }
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "tracking: {e}; logging under {} and sending when it answers (or `valley sync {}`)",
                            root.display(),
                            exp.name
                        );
                        Finished::new()
                    }
                };
                (
                    SyncedTracker::with_mlflow(&root, client.clone()),
                    Some(client),
                    finished,
                )
            }
        };
        let finished_local = finished_in_store(tracker.store());
        let base = exp.file.parent().unwrap_or(Path::new("."));
        let mut context = vec![("valley.host".to_string(), host_name())];
        if let Some(commit) = git_commit(base) {
            context.push(("valley.git_commit".into(), commit.clone()));
            context.push(("mlflow.source.git.commit".into(), commit));
        }
        // A Slurm task attaches to the parent run the submitting command started.
        let parent = match attach_to {
            Some(parent) => parent,
            None => {
                let start = now_ms();
                let mut tags: BTreeMap<String, String> = context.iter().cloned().collect();
                tags.insert("valley.kind".into(), "parent".into());
                tags.insert("valley.experiment".into(), exp.name.clone());
                tags.insert("valley.file".into(), exp.file.display().to_string());
                tags.insert("mlflow.source.name".into(), "valley experiment".into());
                let parent = tracker.create_run(RunSpec {
                    experiment: mlflow_experiment.clone(),
                    name: format!("{} {}", exp.name, utc_stamp(start)),
                    parent: None,
                    tags,
                    start_time: start,
                })?;
                let mut params = Vec::new();
                flatten(
                    "",
                    &serde_json::to_value(&exp.spec).unwrap_or_default(),
                    &mut params,
                );
                tracker.log_params(&parent, params)?;
                parent
            }
        };
        Ok(Self {
            tracker,
            client,
            experiment: exp.name.clone(),
            mlflow_experiment,
            parent,
            context,
            finished_local,
            finished_remote,
            units_logged: Mutex::default(),
            cells: Mutex::default(),
        })
    }

    /// The tracker (to log more to a cell's run).
    pub fn tracker(&self) -> &dyn Tracker {
        &self.tracker
    }

    /// The parent run.
    pub fn parent(&self) -> &RunId {
        &self.parent
    }

    /// Where a finished run of this cell with this config was found, if anywhere.
    pub fn finished(&self, key: &str, hash: &str) -> Option<&'static str> {
        let has = |f: &Finished| f.get(key).is_some_and(|h| h.contains(hash));
        if has(&self.finished_local) {
            Some("local run directory")
        } else if has(&self.finished_remote) {
            Some("MLflow")
        } else {
            None
        }
    }

    /// Starts a cell's child run: tags, its config flattened as params, `config.json` as an
    /// artifact.
    ///
    /// # Errors
    /// When the local run directory cannot be written.
    pub fn start_cell(
        &self,
        cell: &Cell,
        key: &str,
        config: &serde_json::Value,
        config_file: &Path,
    ) -> Result<RunId> {
        let mut tags: BTreeMap<String, String> = self.context.iter().cloned().collect();
        for (k, v) in [
            ("valley.kind", "cell".to_string()),
            ("valley.experiment", self.experiment.clone()),
            ("valley.arm", cell.arm.clone()),
            ("valley.size", cell.size.to_string()),
            ("valley.seed", cell.seed.to_string()),
            ("valley.cell_key", key.to_string()),
            ("valley.config_hash", config_hash(config)),
        ] {
            tags.insert(k.into(), v);
        }
        let run = self.tracker.create_run(RunSpec {
            experiment: self.mlflow_experiment.clone(),
            name: key.to_string(),
            parent: Some(self.parent.clone()),
            tags,
            start_time: now_ms(),
        })?;
        let mut params = Vec::new();
        flatten("", config, &mut params);
        self.tracker.log_params(&run, params)?;
        self.tracker
            .log_artifact(&run, config_file, "config.json")?;
        Ok(run)
    }

    /// Logs metric points a plugin streamed; the first time a name appears in a run, its unit and
    /// direction go in tags `valley.unit.<name>` and `valley.direction.<name>`.
    ///
    /// # Errors
    /// When the local run directory cannot be written.
    pub fn log_points(&self, run: &RunId, points: Vec<MetricPoint>) -> Result<()> {
        let metrics: Vec<Metric> = points
            .into_iter()
            .map(|p| {
                Metric::now(p.name.as_str(), p.value, p.step).with(p.unit.as_str(), p.direction)
            })
            .collect();
        self.log_metrics(run, metrics)
    }

    fn log_metrics(&self, run: &RunId, metrics: Vec<Metric>) -> Result<()> {
        let mut tags = Vec::new();
        {
            let mut seen = self.units_logged.lock().unwrap_or_else(|e| e.into_inner());
            for m in &metrics {
                if seen.insert((run.clone(), m.key.clone())) {
                    if !m.unit.is_empty() {
                        tags.push((format!("valley.unit.{}", m.key), m.unit.clone()));
                    }
                    tags.push((
                        format!("valley.direction.{}", m.key),
                        direction_serde::name(m.direction).into(),
                    ));
                }
            }
        }
        self.tracker.set_tags(run, tags)?;
        self.tracker.log_metrics(run, metrics)
    }

    /// Records a sampled cell: the records each stage took in, kept and dropped as metrics, the
    /// stage summaries and the manifest (ids in order and their hash) as artifacts.
    ///
    /// # Errors
    /// When the local run directory cannot be written or `stages.json` read.
    pub fn log_sampling(
        &self,
        run: &RunId,
        outcome: &PipelineOutcome,
        ids: &[&str],
        stages_file: &Path,
    ) -> Result<()> {
        let mut metrics = Vec::new();
        let records = |v: usize| MetricValue(v as f64);
        for (i, s) in outcome.stages.iter().enumerate() {
            let prefix = format!("sampling/{i}-{}-{}", s.role, s.plugin);
            for (what, v) in [("input", s.input), ("kept", s.kept), ("dropped", s.dropped)] {
                let mut m = Metric::now(format!("{prefix}/{what}"), 0.0, 0)
                    .with("records", Direction::Neutral);
                m.value = records(v);
                metrics.push(m);
            }
        }
        metrics.push(
            Metric::now("sampling/records", ids.len() as f64, 0)
                .with("records", Direction::Neutral),
        );
        self.log_metrics(run, metrics)?;
        let hash = order_hash(ids);
        self.tracker
            .set_tags(run, vec![("valley.order_sha256".into(), hash.clone())])?;
        self.tracker.log_artifact(run, stages_file, "stages.json")?;
        let manifest =
            serde_json::json!({ "records": ids.len(), "order_sha256": hash, "ids": ids });
        let mut bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        bytes.push(b'\n');
        self.tracker
            .log_artifact_bytes(run, "manifest.json", &bytes)
    }

    /// Ends a cell's run; a failure's message goes in tag `valley.error`.
    ///
    /// # Errors
    /// When the local run directory cannot be written.
    pub fn end_cell(&self, run: &RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        if let Some(e) = error {
            self.tracker.set_tags(
                run,
                vec![("valley.error".into(), valley_tracking::truncate(e, 5000))],
            )?;
        }
        self.tracker.end_run(run, status)
    }

    /// Ends the parent run, gives the worker time to send the rest (60 s while the server
    /// answers, 5 s when it does not), and prints where the runs are: the MLflow UI address of
    /// the parent run, or what is left to `valley sync`.
    ///
    /// # Errors
    /// When the local run directory cannot be written.
    pub fn close(self, status: RunStatus, out: &mut dyn Write) -> Result<()> {
        self.finish(Some(status), out)
    }

    /// Sends what this process logged and stops, leaving the parent run open (another process
    /// ends it: the Slurm executor's report job).
    ///
    /// # Errors
    /// As [`Session::close`].
    pub fn release(self, out: &mut dyn Write) -> Result<()> {
        self.finish(None, out)
    }

    fn finish(self, end: Option<RunStatus>, out: &mut dyn Write) -> Result<()> {
        if let Some(status) = end {
            self.tracker.end_run(&self.parent, status)?;
        }
        let root = self.tracker.store().root().to_path_buf();
        let Some(client) = self.client else {
            let _ = writeln!(out, "tracking: runs logged under {}", root.display());
            return Ok(());
        };
        let answering = client.health().is_ok();
        let wait = if answering {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(5)
        };
        let parent = self.parent.clone();
        let flushed = self.tracker.finish(wait);
        for line in &flushed.status.refused {
            let _ = writeln!(out, "tracking: MLflow refused {line}");
        }
        let store = LocalStore::new(&root);
        if flushed.complete {
            let ids = store
                .sync_state(&parent)
                .ok()
                .and_then(|s| s.get(client.uri()).cloned())
                .and_then(|r| r.experiment_id.zip(r.run_id));
            if let Some((exp_id, run_id)) = ids {
                let _ = writeln!(
                    out,
                    "tracking: {} metric points sent; parent run: {}",
                    flushed.status.metrics,
                    client.run_url(&exp_id, &run_id)
                );
            }
        } else {
            let left = store
                .runs()
                .unwrap_or_default()
                .iter()
                .filter(|r| pending(&store, r, client.uri()).unwrap_or(true))
                .count();
            let why =
                flushed.status.unreachable.clone().unwrap_or_else(|| {
                    format!("MLflow at {} did not take everything", client.uri())
                });
            let _ = writeln!(
                out,
                "tracking: {why}; {left} runs wait under {} — send them with `valley sync {}`",
                root.display(),
                self.experiment
            );
        }
        Ok(())
    }
}

/// The run tracker as a sweep observer: a child run per cell, started when the cell starts and
/// ended with the cell's end; the cell's metrics, sampling and artifacts logged to it.
impl SweepObserver for Session {
    fn on_sweep_event(&self, event: &SweepEvent<'_>) -> crate::error::Result<()> {
        let run_of = |key: &str| {
            self.cells
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned()
        };
        match event {
            SweepEvent::CellStarted {
                planned,
                config,
                config_file,
            } => {
                let run = self.start_cell(&planned.cell, &planned.key, config, config_file)?;
                self.cells
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(planned.key.clone(), run);
            }
            SweepEvent::CellSampled {
                key,
                outcome,
                ids,
                stages_file,
            } => {
                if let Some(run) = run_of(key) {
                    self.log_sampling(&run, outcome, ids, stages_file)?;
                }
            }
            SweepEvent::Metrics { key, points } => {
                if let Some(run) = run_of(key) {
                    self.log_points(&run, points.to_vec())?;
                }
            }
            SweepEvent::Artifact { key, path, name } => {
                if let Some(run) = run_of(key) {
                    self.tracker.log_artifact(&run, path, name)?;
                }
            }
            SweepEvent::CellEnded { key, end } => {
                let run = self
                    .cells
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(*key);
                if let Some(run) = run {
                    let (status, error) = match end {
                        CellEnd::Finished(_) | CellEnd::Base => (RunStatus::Finished, None),
                        CellEnd::Failed(e) => (RunStatus::Failed, Some(e.as_str())),
                        CellEnd::Killed(e) => (RunStatus::Killed, Some(e.as_str())),
                        CellEnd::Skipped(_) => return Ok(()),
                    };
                    self.end_cell(&run, status, error)?;
                }
            }
            SweepEvent::Started { .. }
            | SweepEvent::TrainingResumes { .. }
            | SweepEvent::Student { .. }
            | SweepEvent::Progress { .. }
            | SweepEvent::Finished => {}
        }
        Ok(())
    }

    fn finished_run(&self, key: &str, config_hash: &str) -> Option<String> {
        self.finished(key, config_hash).map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valley_tracking::{Event, MemoryTracker};

    #[test]
    fn utc_stamp_formats_known_instants() {
        assert_eq!(utc_stamp(0), "1970-01-01T00:00:00Z");
        // date -u -d @1764199800 → 2025-11-26T23:30:00Z
        assert_eq!(utc_stamp(1_764_199_800_000), "2025-11-26T23:30:00Z");
        assert_eq!(utc_stamp(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn plugin_points_keep_unit_and_direction_in_the_memory_tracker() {
        let t = MemoryTracker::new();
        let run = t
            .create_run(RunSpec {
                experiment: "e".into(),
                name: "c".into(),
                parent: None,
                tags: BTreeMap::new(),
                start_time: 0,
            })
            .unwrap();
        let p = MetricPoint::new("train/loss", f64::NAN, 7)
            .unit("nats")
            .lower_is_better();
        let m = Metric::now(p.name.as_str(), p.value, p.step).with(p.unit.as_str(), p.direction);
        t.log_metrics(&run, vec![m]).unwrap();
        t.end_run(&run, RunStatus::Failed).unwrap();
        let events = t.run_events(&run);
        let Event::Metrics { metrics } = &events[1] else {
            panic!("{events:?}")
        };
        assert!(metrics[0].value.0.is_nan());
        assert_eq!(metrics[0].step, 7);
        assert_eq!(metrics[0].unit, "nats");
        assert_eq!(metrics[0].direction, Direction::LowerIsBetter);
        assert_eq!(t.status(&run), Some(RunStatus::Failed));
    }
}
