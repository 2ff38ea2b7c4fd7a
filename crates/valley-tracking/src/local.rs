//! The local run store: one directory per run under `runs/<experiment>/tracking/`, holding
//!
//! - `events.jsonl` — the run's events, one JSON object per line, append-only;
//! - `artifacts/` — a copy of every logged artifact, taken when it was logged;
//! - `sync.json` — per tracking server (by URI): the MLflow experiment and run ids and how many
//!   events (and bytes of the log) that server has acknowledged.
//!
//! Directories are named `<sequence>-<label>` (`000001-parent`, `000002-random-n200-s1`), so that
//! listing them in name order is creation order: a parent always comes before its children.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

use super::{Event, Result, RunId, RunSpec, RunStatus, Tracker, TrackingError};

/// The tag that identifies a local run on the server: a replay that lost the answer of
/// `runs/create` finds the run by it instead of creating a second one.
pub const RUN_UID_TAG: &str = "valley.run_uid";

/// A run's unique id: a hash of its directory's absolute path, the time and the process.
fn run_uid(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{}|{nanos}|{}", abs.display(), std::process::id()));
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// What one tracking server has of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    /// The MLflow experiment id.
    pub experiment_id: Option<String>,
    /// The MLflow run id, recorded as soon as `runs/create` answers.
    pub run_id: Option<String>,
    /// Events acknowledged.
    pub acked_events: usize,
    /// Bytes of `events.jsonl` acknowledged (the start of the first unsent line).
    pub acked_bytes: u64,
    /// The last refusal by the server, kept until the run syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `sync.json`: by tracking URI.
pub type SyncState = BTreeMap<String, Remote>;

/// A run as its log tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run.
    pub id: RunId,
    /// How it started.
    pub spec: RunSpec,
    /// Tags: those at creation, then every tags event (the last value wins).
    pub tags: BTreeMap<String, String>,
    /// The end status, if it ended.
    pub status: Option<RunStatus>,
    /// Events in the log.
    pub events: usize,
}

/// The run directories of one experiment.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    next: Mutex<u64>,
}

impl LocalStore {
    /// The store at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            next: Mutex::new(0),
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A run's directory.
    pub fn run_dir(&self, run: &RunId) -> PathBuf {
        self.root.join(&run.0)
    }

    fn events_path(&self, run: &RunId) -> PathBuf {
        self.run_dir(run).join("events.jsonl")
    }

    /// Every run, in creation order.
    ///
    /// # Errors
    /// When the directory cannot be listed.
    pub fn runs(&self) -> Result<Vec<RunId>> {
        if !self.root.is_dir() {
            return Ok(Vec::new());
        }
        let mut runs = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(|e| TrackingError::io(&self.root, e))? {
            let entry = entry.map_err(|e| TrackingError::io(&self.root, e))?;
            if entry.path().join("events.jsonl").is_file() {
                runs.push(RunId(entry.file_name().to_string_lossy().into_owned()));
            }
        }
        runs.sort();
        Ok(runs)
    }

    /// Creates a run directory and writes its start event.
    ///
    /// # Errors
    /// When the directory or its log cannot be written.
    pub fn create_run(&self, spec: &RunSpec, label: &str) -> Result<RunId> {
        std::fs::create_dir_all(&self.root).map_err(|e| TrackingError::io(&self.root, e))?;
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if *next == 0 {
            *next = self
                .runs()?
                .iter()
                .filter_map(|r| r.0.split('-').next()?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
        }
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        loop {
            let id = RunId(format!("{:06}-{label}", *next));
            *next += 1;
            let dir = self.run_dir(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let mut spec = spec.clone();
                    spec.tags.insert(RUN_UID_TAG.into(), run_uid(&dir));
                    self.append(&id, &Event::Start(spec))?;
                    return Ok(id);
                }
                // Another process took this number: take the next.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(TrackingError::io(&dir, e)),
            }
        }
    }

    /// Appends one event to a run's log (one line, written at once).
    ///
    /// # Errors
    /// When the log cannot be written.
    pub fn append(&self, run: &RunId, event: &Event) -> Result<()> {
        let path = self.events_path(run);
        let mut line = serde_json::to_vec(event).map_err(|e| TrackingError::io(&path, e.into()))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrackingError::io(&path, e))?;
        file.write_all(&line)
            .map_err(|e| TrackingError::io(&path, e))
    }

    /// Writes an artifact's bytes into the run's `artifacts/<path>`.
    ///
    /// # Errors
    /// When `path` is not a plain relative path, or the copy fails.
    pub fn write_artifact(&self, run: &RunId, path: &str, bytes: &[u8]) -> Result<()> {
        let rel = Path::new(path);
        if path.is_empty()
            || rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(TrackingError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an artifact path must be relative, without `..`",
                ),
            ));
        }
        let dest = self.artifact_file(run, path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TrackingError::io(parent, e))?;
        }
        std::fs::write(&dest, bytes).map_err(|e| TrackingError::io(&dest, e))
    }

    /// Where the copy of an artifact lies.
    pub fn artifact_file(&self, run: &RunId, path: &str) -> PathBuf {
        self.run_dir(run).join("artifacts").join(path)
    }

    /// The complete events of a run's log from byte `from`, each with the byte offset just after
    /// it. A last line without its newline (a write cut short) is left for later.
    ///
    /// # Errors
    /// When the log cannot be read, or a complete line does not parse.
    pub fn read_events(&self, run: &RunId, from: u64) -> Result<Vec<(Event, u64)>> {
        let path = self.events_path(run);
        let bytes = std::fs::read(&path).map_err(|e| TrackingError::io(&path, e))?;
        let start = (from as usize).min(bytes.len());
        let line_base = bytes[..start].iter().filter(|&&b| b == b'\n').count();
        let mut events = Vec::new();
        let mut pos = start;
        for (n, line) in bytes[start..].split_inclusive(|&b| b == b'\n').enumerate() {
            if line.last() != Some(&b'\n') {
                break;
            }
            pos += line.len();
            let event: Event =
                serde_json::from_slice(line).map_err(|e| TrackingError::CorruptLog {
                    path: path.clone(),
                    line: line_base + n + 1,
                    message: e.to_string(),
                })?;
            events.push((event, pos as u64));
        }
        Ok(events)
    }

    /// The run as its log tells it.
    ///
    /// # Errors
    /// As [`LocalStore::read_events`]; [`TrackingError::CorruptLog`] when it does not start with
    /// a start event.
    pub fn summary(&self, run: &RunId) -> Result<RunSummary> {
        let events = self.read_events(run, 0)?;
        let Some((Event::Start(spec), _)) = events.first() else {
            return Err(TrackingError::CorruptLog {
                path: self.events_path(run),
                line: 1,
                message: "the first event is not `start`".into(),
            });
        };
        let mut summary = RunSummary {
            id: run.clone(),
            tags: spec.tags.clone(),
            spec: spec.clone(),
            status: None,
            events: events.len(),
        };
        for (event, _) in &events {
            match event {
                Event::Tags { tags } => summary.tags.extend(tags.iter().cloned()),
                Event::End { status, .. } => summary.status = Some(*status),
                _ => {}
            }
        }
        Ok(summary)
    }

    /// The run's `sync.json` (empty when it was never synced).
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn sync_state(&self, run: &RunId) -> Result<SyncState> {
        let path = self.run_dir(run).join("sync.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TrackingError::CorruptLog {
                path,
                line: e.line(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncState::new()),
            Err(e) => Err(TrackingError::io(&path, e)),
        }
    }

    /// Records what `uri` has of the run (written through a rename: never half a file).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_remote(&self, run: &RunId, uri: &str, remote: &Remote) -> Result<()> {
        let mut state = self.sync_state(run)?;
        state.insert(uri.to_string(), remote.clone());
        let path = self.run_dir(run).join("sync.json");
        let tmp = path.with_extension("json.tmp");
        let mut bytes =
            serde_json::to_vec_pretty(&state).map_err(|e| TrackingError::io(&path, e.into()))?;
        bytes.push(b'\n');
        std::fs::write(&tmp, bytes).map_err(|e| TrackingError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| TrackingError::io(&path, e))
    }
}

/// A [`Tracker`] that writes run directories only (`[tracking] enabled = false`, or the
/// local half of [`super::worker::SyncedTracker`]).
#[derive(Debug)]
pub struct LocalTracker {
    store: LocalStore,
}

impl LocalTracker {
    /// A tracker writing under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            store: LocalStore::new(root),
        }
    }

    /// The store.
    pub fn store(&self) -> &LocalStore {
        &self.store
    }
}

impl Tracker for LocalTracker {
    fn create_run(&self, spec: RunSpec) -> Result<RunId> {
        let label = spec.name.clone();
        self.store.create_run(&spec, &label)
    }

    fn record(&self, run: &RunId, event: Event, content: Option<&[u8]>) -> Result<()> {
        if !self.store.events_path(run).is_file() {
            return Err(TrackingError::UnknownRun(run.0.clone()));
        }
        if let Event::Artifact { path } = &event {
            // The copy first: a logged artifact event always has its file.
            self.store
                .write_artifact(run, path, content.unwrap_or_default())?;
        }
        self.store.append(run, &event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metric, Tracker};

    fn spec(name: &str, parent: Option<RunId>) -> RunSpec {
        RunSpec {
            experiment: "exp".into(),
            name: name.into(),
            parent,
            tags: [("valley.cell_key".to_string(), name.to_string())].into(),
            start_time: 1,
        }
    }

    #[test]
    fn runs_are_listed_in_creation_order_and_summaries_follow_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTracker::new(dir.path().join("tracking"));
        let parent = t.create_run(spec("parent", None)).unwrap();
        let child = t.create_run(spec("b-n1-s1", Some(parent.clone()))).unwrap();
        let other = t.create_run(spec("a-n1-s1", Some(parent.clone()))).unwrap();
        assert_eq!(
            t.store().runs().unwrap(),
            [parent.clone(), child.clone(), other]
        );
        assert_eq!(parent.0, "000001-parent");
        t.log_metrics(&child, vec![Metric::now("m", f64::NAN, 0)])
            .unwrap();
        t.set_tags(&child, vec![("x".into(), "1".into())]).unwrap();
        t.end_run(&child, RunStatus::Finished).unwrap();
        let s = t.store().summary(&child).unwrap();
        assert_eq!(s.status, Some(RunStatus::Finished));
        assert_eq!(s.tags["x"], "1");
        assert_eq!(s.tags["valley.cell_key"], "b-n1-s1");
        assert_eq!(s.events, 4);
        assert_eq!(s.spec.parent, Some(parent));
        // A second store on the same directory (a later invocation) continues the numbering.
        let again = LocalTracker::new(dir.path().join("tracking"));
        let next = again.create_run(spec("parent", None)).unwrap();
        assert_eq!(next.0, "000004-parent");
    }

    #[test]
    fn reading_from_an_offset_skips_acked_events_and_leaves_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTracker::new(dir.path());
        let run = t.create_run(spec("r", None)).unwrap();
        t.log_params(&run, vec![("a".into(), "1".into())]).unwrap();
        let all = t.store().read_events(&run, 0).unwrap();
        assert_eq!(all.len(), 2);
        let after_first = all[0].1;
        let rest = t.store().read_events(&run, after_first).unwrap();
        assert_eq!(rest.len(), 1);
        assert!(matches!(rest[0].0, Event::Params { .. }));
        // A half-written line (no newline yet) is not read.
        let log = t.store().run_dir(&run).join("events.jsonl");
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(br#"{"event":"tags","ta"#).unwrap();
        assert_eq!(t.store().read_events(&run, 0).unwrap().len(), 2);
        // A complete bad line is an error naming the file and line.
        f.write_all(b"\n").unwrap();
        let err = t
            .store()
            .read_events(&run, after_first)
            .unwrap_err()
            .to_string();
        assert!(err.contains("events.jsonl:3:"), "{err}");
    }

    #[test]
    fn sync_state_is_kept_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTracker::new(dir.path());
        let run = t.create_run(spec("r", None)).unwrap();
        assert!(t.store().sync_state(&run).unwrap().is_empty());
        let remote = Remote {
            experiment_id: Some("1".into()),
            run_id: Some("abc".into()),
            acked_events: 1,
            acked_bytes: 10,
            error: None,
        };
        t.store().save_remote(&run, "http://a", &remote).unwrap();
        t.store()
            .save_remote(&run, "http://b", &Remote::default())
            .unwrap();
        let state = t.store().sync_state(&run).unwrap();
        assert_eq!(state["http://a"], remote);
        assert_eq!(state["http://b"].acked_events, 0);
    }

    #[test]
    fn artifacts_are_copied_when_logged_and_bad_paths_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = LocalTracker::new(dir.path().join("t"));
        let run = t.create_run(spec("r", None)).unwrap();
        let src = dir.path().join("config.json");
        std::fs::write(&src, "{}").unwrap();
        t.log_artifact(&run, &src, "cell/config.json").unwrap();
        std::fs::write(&src, "changed later").unwrap();
        let copy = t.store().artifact_file(&run, "cell/config.json");
        assert_eq!(std::fs::read_to_string(copy).unwrap(), "{}");
        assert!(t.log_artifact(&run, &src, "../escape").is_err());
        assert!(t
            .log_params(&RunId("nope".into()), vec![("a".into(), "b".into())])
            .is_err());
    }
}
