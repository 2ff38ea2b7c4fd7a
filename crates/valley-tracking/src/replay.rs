//! Sends the unacknowledged tail of local run logs to an MLflow server: the requests planned by
//! [`super::batch::plan`], one at a time, recording after each what the server acknowledged in
//! the run's `sync.json`. Used by the background worker during an experiment and by
//! `valley sync` afterwards; both resume where the other stopped.

use super::{
    batch::{self, Request},
    local::{LocalStore, Remote, RUN_UID_TAG},
    mlflow::{error_status, MlflowClient},
    Event, Result, RunId, TrackingError,
};

/// What a sync did for one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSync {
    /// The run.
    pub run: RunId,
    /// Events sent (acknowledged) now.
    pub events: usize,
    /// Metric points among them.
    pub metrics: usize,
    /// Whether the run was created on the server now (not found there by its uid).
    pub created: bool,
    /// The MLflow experiment and run ids, once known.
    pub mlflow: Option<(String, String)>,
}

/// What a sync of a store did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Runs with something sent, or checked up to date.
    pub runs: Vec<RunSync>,
    /// Runs the server refused (a 4xx other than 429): the run's backlog stays and the message
    /// is kept in its `sync.json`.
    pub refused: Vec<(RunId, TrackingError)>,
}

impl SyncReport {
    /// Events sent in all.
    pub fn events(&self) -> usize {
        self.runs.iter().map(|r| r.events).sum()
    }

    /// Metric points sent in all.
    pub fn metrics(&self) -> usize {
        self.runs.iter().map(|r| r.metrics).sum()
    }
}

/// Whether the run's log holds events the server at `uri` has not acknowledged.
///
/// # Errors
/// When `sync.json` cannot be read.
pub fn pending(store: &LocalStore, run: &RunId, uri: &str) -> Result<bool> {
    let acked = store.sync_state(run)?.get(uri).map_or(0, |r| r.acked_bytes);
    let log = store.run_dir(run).join("events.jsonl");
    let len = std::fs::metadata(&log)
        .map_err(|e| TrackingError::io(&log, e))?
        .len();
    Ok(len > acked)
}

/// Sends one run's backlog.
///
/// # Errors
/// The first failed request: [`TrackingError::Unreachable`] (retry later) or the server's
/// refusal (kept in `sync.json` as well).
pub fn sync_run(store: &LocalStore, client: &MlflowClient, run: &RunId) -> Result<RunSync> {
    // Processes that share the run directory (the Slurm executor's tasks on a shared file system)
    // send a run one at a time: the lock holder reads what is acknowledged, sends the rest and
    // records it, so no event is sent twice.
    let _lock = RunLock::take(&store.run_dir(run))?;
    let uri = client.uri().to_string();
    let mut remote = store.sync_state(run)?.remove(&uri).unwrap_or_default();
    let mut done = RunSync {
        run: run.clone(),
        mlflow: remote.experiment_id.clone().zip(remote.run_id.clone()),
        ..RunSync::default()
    };
    let events = store.read_events(run, remote.acked_bytes)?;
    if events.is_empty() {
        return Ok(done);
    }
    let plain: Vec<Event> = events.iter().map(|(e, _)| e.clone()).collect();
    let mut acked_here = 0;
    for step in batch::plan(&plain) {
        match send(store, client, run, &mut remote, &step.request) {
            Ok(created) => done.created |= created,
            Err(e) => {
                if !batch::is_retryable(error_status(&e)) {
                    remote.error = Some(e.to_string());
                    store.save_remote(run, &uri, &remote)?;
                }
                return Err(e);
            }
        }
        if let Request::Batch(b) = &step.request {
            done.metrics += b.metrics.len();
        }
        if step.acked > acked_here {
            remote.acked_events += step.acked - acked_here;
            remote.acked_bytes = events[step.acked - 1].1;
            done.events += step.acked - acked_here;
            acked_here = step.acked;
        }
        remote.error = None;
        store.save_remote(run, &uri, &remote)?;
        done.mlflow = remote.experiment_id.clone().zip(remote.run_id.clone());
    }
    Ok(done)
}

/// An exclusive `flock` on a run's `sync.lock`, released when dropped.
struct RunLock(std::fs::File);

impl RunLock {
    fn take(dir: &std::path::Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let path = dir.join("sync.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| TrackingError::io(&path, e))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Self(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(TrackingError::io(&path, e));
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `take`; closing the file would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn send(
    store: &LocalStore,
    client: &MlflowClient,
    run: &RunId,
    remote: &mut Remote,
    request: &Request,
) -> Result<bool> {
    let uri = client.uri();
    let ids = |remote: &Remote| -> Result<(String, String)> {
        remote
            .experiment_id
            .clone()
            .zip(remote.run_id.clone())
            .ok_or_else(|| TrackingError::CorruptLog {
                path: store.run_dir(run).join("sync.json"),
                line: 1,
                message: format!(
                    "no MLflow run recorded for {uri}, but events after the start are acknowledged"
                ),
            })
    };
    match request {
        Request::Create(spec) => {
            let experiment_id = client.ensure_experiment(&spec.experiment)?;
            remote.experiment_id = Some(experiment_id.clone());
            let mut tags: Vec<(String, String)> = spec
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(parent) = &spec.parent {
                let parent_remote = store.sync_state(parent)?.remove(uri).unwrap_or_default();
                let Some(parent_id) = parent_remote.run_id else {
                    return Err(TrackingError::Api {
                        endpoint: "runs/create".into(),
                        status: 409,
                        code: "PARENT_NOT_SYNCED".into(),
                        message: format!(
                            "parent run {parent} is not on {uri} yet (its sync failed: {})",
                            parent_remote.error.as_deref().unwrap_or("not tried")
                        ),
                    });
                };
                tags.push(("mlflow.parentRunId".into(), parent_id));
            }
            // runs/create is not idempotent: a run created before a crash that lost its answer
            // is found by its uid instead of created again.
            let existing = match spec.tags.get(RUN_UID_TAG) {
                Some(uid) => client
                    .search_runs(
                        std::slice::from_ref(&experiment_id),
                        &format!("tags.`{RUN_UID_TAG}` = '{uid}'"),
                    )?
                    .into_iter()
                    .next(),
                None => None,
            };
            let (found, created) = match existing {
                Some(run) => (run, false),
                None => (
                    client.create_run(&experiment_id, &spec.name, spec.start_time, &tags)?,
                    true,
                ),
            };
            remote.run_id = Some(found.info.run_id);
            Ok(created)
        }
        Request::Batch(b) => {
            let (_, run_id) = ids(remote)?;
            client.log_batch(&run_id, b).map(|()| false)
        }
        Request::Artifact(path) => {
            let (experiment_id, run_id) = ids(remote)?;
            let file = store.artifact_file(run, path);
            let bytes = std::fs::read(&file).map_err(|e| TrackingError::io(&file, e))?;
            client
                .upload_artifact(&experiment_id, &run_id, path, bytes)
                .map(|()| false)
        }
        Request::End { status, end_time } => {
            let (_, run_id) = ids(remote)?;
            client
                .update_run(&run_id, *status, *end_time)
                .map(|()| false)
        }
    }
}

/// Sends the backlog of every run of the store, parents before children.
///
/// # Errors
/// [`TrackingError::Unreachable`] (and 429/5xx answers) stop the sync at once: the server is
/// away and the rest waits too. A refusal of one run is recorded in the report and the others go
/// on. Local I/O errors stop the sync.
pub fn sync_store(store: &LocalStore, client: &MlflowClient) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    for run in store.runs()? {
        if !pending(store, &run, client.uri())? {
            continue;
        }
        match sync_run(store, client, &run) {
            Ok(done) => report.runs.push(done),
            Err(e) if batch::is_retryable(error_status(&e)) => return Err(e),
            Err(e @ (TrackingError::Io { .. } | TrackingError::CorruptLog { .. })) => {
                return Err(e)
            }
            Err(e) => report.refused.push((run, e)),
        }
    }
    Ok(report)
}
