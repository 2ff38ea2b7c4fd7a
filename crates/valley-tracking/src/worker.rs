//! The background worker that replays local run logs to MLflow while an experiment runs, and
//! [`SyncedTracker`], the tracker that writes locally first and wakes the worker.
//!
//! The worker sends whatever is pending at most once per second while events keep coming (and
//! at once when they pause), so events are batched across calls. When the server is away it
//! retries with [`super::batch::backoff`]; the experiment does not wait for it. At the end,
//! [`SyncedTracker::finish`] gives the worker a deadline to send the rest.

use std::{
    sync::{
        mpsc::{self, RecvTimeoutError},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{
    batch,
    local::{LocalStore, LocalTracker},
    mlflow::{error_status, MlflowClient},
    replay::{pending, sync_store},
    Event, Result, RunId, RunSpec, Tracker,
};

/// How long the worker gathers events before sending them.
const GATHER: Duration = Duration::from_secs(1);

enum Msg {
    Nudge,
    Finish(Instant),
}

/// What the worker knows of the server.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus {
    /// Events the server acknowledged since the worker started.
    pub events: usize,
    /// Metric points among them.
    pub metrics: usize,
    /// The last transport error (cleared by a success).
    pub unreachable: Option<String>,
    /// Refusals by the server, one line per run.
    pub refused: Vec<String>,
}

/// How the end of a session went.
#[derive(Debug, Clone)]
pub struct Flushed {
    /// Whether every event reached the server.
    pub complete: bool,
    /// What the worker saw.
    pub status: WorkerStatus,
}

struct Worker {
    tx: mpsc::Sender<Msg>,
    handle: JoinHandle<()>,
    status: Arc<Mutex<WorkerStatus>>,
    uri: String,
}

/// A tracker that records every event in the local store first, then has a background worker
/// send it to MLflow. Without a client it is the local store alone.
pub struct SyncedTracker {
    local: LocalTracker,
    worker: Option<Worker>,
}

impl SyncedTracker {
    /// Local only: run directories under `root`.
    pub fn local(root: impl Into<std::path::PathBuf>) -> Self {
        Self {
            local: LocalTracker::new(root),
            worker: None,
        }
    }

    /// Local under `root`, then MLflow through `client`.
    pub fn with_mlflow(root: impl Into<std::path::PathBuf>, client: MlflowClient) -> Self {
        let root = root.into();
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(WorkerStatus::default()));
        let uri = client.uri().to_string();
        let handle = {
            let status = status.clone();
            let store = LocalStore::new(root.clone());
            std::thread::Builder::new()
                .name("valley-tracking".into())
                .spawn(move || run_worker(&store, &client, &rx, &status))
                .expect("spawn the tracking worker thread")
        };
        Self {
            local: LocalTracker::new(root),
            worker: Some(Worker {
                tx,
                handle,
                status,
                uri,
            }),
        }
    }

    /// The local store.
    pub fn store(&self) -> &LocalStore {
        self.local.store()
    }

    /// The tracking URI, when there is a server.
    pub fn uri(&self) -> Option<&str> {
        self.worker.as_ref().map(|w| w.uri.as_str())
    }

    /// Sends what is left within `wait`, stops the worker and says whether everything arrived.
    /// Local only: complete is false.
    pub fn finish(mut self, wait: Duration) -> Flushed {
        let Some(worker) = self.worker.take() else {
            return Flushed {
                complete: false,
                status: WorkerStatus::default(),
            };
        };
        let _ = worker.tx.send(Msg::Finish(Instant::now() + wait));
        let _ = worker.handle.join();
        let status = worker
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let store = self.local.store();
        let complete = store.runs().is_ok_and(|runs| {
            runs.iter()
                .all(|r| pending(store, r, &worker.uri).is_ok_and(|p| !p))
        });
        Flushed { complete, status }
    }
}

impl Tracker for SyncedTracker {
    fn create_run(&self, spec: RunSpec) -> Result<RunId> {
        let id = self.local.create_run(spec)?;
        self.nudge();
        Ok(id)
    }

    fn record(&self, run: &RunId, event: Event, content: Option<&[u8]>) -> Result<()> {
        self.local.record(run, event, content)?;
        self.nudge();
        Ok(())
    }
}

impl SyncedTracker {
    fn nudge(&self) {
        if let Some(w) = &self.worker {
            let _ = w.tx.send(Msg::Nudge);
        }
    }
}

fn run_worker(
    store: &LocalStore,
    client: &MlflowClient,
    rx: &mpsc::Receiver<Msg>,
    status: &Mutex<WorkerStatus>,
) {
    let mut dirty = true;
    let mut failures: u32 = 0;
    let mut last_try = Instant::now() - GATHER;
    let mut deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut wait = if failures > 0 {
            batch::backoff(failures - 1).saturating_sub(now - last_try)
        } else if dirty {
            GATHER.saturating_sub(now - last_try)
        } else {
            Duration::from_secs(3600)
        };
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        if !wait.is_zero() {
            match rx.recv_timeout(wait) {
                Ok(Msg::Nudge) => {
                    dirty = true;
                    continue;
                }
                Ok(Msg::Finish(d)) => {
                    deadline = Some(d);
                    dirty = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    deadline.get_or_insert_with(Instant::now);
                }
            }
        }
        if !dirty && failures == 0 {
            if deadline.is_some() {
                return;
            }
            continue;
        }
        // Gather the nudges that came meanwhile: one sync covers them.
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Finish(d) = msg {
                deadline = Some(d);
            }
        }
        last_try = Instant::now();
        let result = sync_store(store, client);
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(report) => {
                failures = 0;
                dirty = false;
                s.events += report.events();
                s.metrics += report.metrics();
                s.unreachable = None;
                for (run, e) in report.refused {
                    let line = format!("{run}: {e}");
                    tracing::warn!("MLflow refused {line}");
                    if !s.refused.contains(&line) {
                        s.refused.push(line);
                    }
                }
            }
            Err(e) if batch::is_retryable(error_status(&e)) => {
                failures = failures.saturating_add(1);
                tracing::debug!("tracking: {e} (retry {failures})");
                s.unreachable = Some(e.to_string());
            }
            Err(e) => {
                // A local problem (unreadable log): retrying will not fix it.
                failures = 0;
                dirty = false;
                tracing::warn!("tracking: {e}");
                s.refused.push(e.to_string());
            }
        }
        drop(s);
        if deadline.is_some_and(|d| Instant::now() >= d || failures == 0) && !dirty {
            return;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
    }
}
