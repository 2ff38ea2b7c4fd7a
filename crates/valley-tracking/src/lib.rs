//! Experiment tracking: every parameter, metric, tag and artifact of a run, recorded first in the
//! local run directory (an append-only event log) and then replayed to an MLflow tracking server
//! in batches by a background worker.
//!
//! The local log is the source of truth. Tracking never stops an experiment: when the server is
//! down the events wait in the log and are sent when it answers again (or by `valley sync`). What
//! MLflow has acknowledged is recorded per run and per server, so a replay sends each event once;
//! the requests it repeats after a crash are the idempotent ones (log-batch rows with the same
//! timestamps, equal params), never `runs/create`.
//!
//! - [`Tracker`]: the sink trait; [`local::LocalTracker`] (run directories),
//!   [`memory::MemoryTracker`] (tests) and [`worker::SyncedTracker`] (local, then MLflow).
//! - [`batch`]: pure policy — events to MLflow requests, log-batch limits, retry and backoff.
//! - [`mlflow`]: a small typed client of MLflow's REST API.
//! - [`replay`]: sends a run directory's backlog; [`worker`]: does so from a background thread.
//! - [`target`]: where tracking goes (`[tracking]`, `MLFLOW_TRACKING_URI`, the local server);
//!   [`sync`]: `valley sync`.
//! - [`server`]: the local MLflow server of `just mlflow`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use valley_tracking::{LocalTracker, Metric, RunSpec, RunStatus, Tracker};
//!
//! let dir = tempfile::tempdir()?;
//! let tracker = LocalTracker::new(dir.path());
//! let run = tracker.create_run(RunSpec {
//!     experiment: "easy-first".into(),
//!     name: "random-n500-s1".into(),
//!     parent: None,
//!     tags: BTreeMap::new(),
//!     start_time: 0,
//! })?;
//! tracker.log_metrics(&run, vec![Metric::now("pass@1", 0.25, 0)])?;
//! tracker.end_run(&run, RunStatus::Finished)?;
//! // The run directory is the source of truth; a replay sends it to MLflow.
//! assert_eq!(tracker.store().runs()?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod batch;
mod local;
mod memory;
mod mlflow;
mod replay;
pub mod server;
mod sync;
mod target;
mod worker;

pub use batch::{mlflow_name, truncate, LogBatch};
pub use local::{LocalStore, LocalTracker};
pub use memory::MemoryTracker;
pub use mlflow::{MlflowClient, Run};
pub use replay::{pending, sync_store};
pub use sync::sync_command;
pub use target::{choose_target, target_from_env, Target, TrackingSection};
pub use worker::SyncedTracker;

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use valley_plugin_api::Direction;

/// Result alias for tracking.
pub type Result<T, E = TrackingError> = std::result::Result<T, E>;

/// What can go wrong while tracking.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// MLflow answered with an error; its code and message are kept as it sent them.
    #[error("MLflow {endpoint} answered {status}: {code}: {message}")]
    Api {
        /// The endpoint called, e.g. `runs/log-batch`.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// MLflow's `error_code` (e.g. `INVALID_PARAMETER_VALUE`), or empty.
        code: String,
        /// MLflow's `message`, or the body as text.
        message: String,
    },
    /// The server could not be reached (connection refused, timeout, DNS).
    #[error("MLflow at {uri} is not reachable: {message}")]
    Unreachable {
        /// The tracking URI.
        uri: String,
        /// What the transport said.
        message: String,
    },
    /// An answer that is not the JSON MLflow documents.
    #[error("MLflow {endpoint}: unexpected answer: {message}")]
    Protocol {
        /// The endpoint called.
        endpoint: String,
        /// What did not parse.
        message: String,
    },
    /// A line of a local event log that does not parse.
    #[error("{path}:{line}: not a tracking event: {message}")]
    CorruptLog {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        message: String,
    },
    /// A run that is not in the local store.
    #[error("no tracked run `{0}`")]
    UnknownRun(String),
    /// Starting or stopping the local MLflow server failed.
    #[error("local MLflow server: {0}")]
    Server(String),
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl TrackingError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// A run's identity in the local store: the name of its directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a run ended, as MLflow names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    /// Completed.
    Finished,
    /// Stopped by an error.
    Failed,
    /// Cancelled.
    Killed,
}

impl RunStatus {
    /// MLflow's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }
}

/// A metric value that keeps NaN and the infinities: finite values are JSON numbers, the others
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"` — the only spelling MLflow's log-batch
/// parses as non-finite (a bare `NaN` token is stored as 0 with status 200; serde's `null` is
/// refused). MLflow's SQL store then keeps NaN but clamps the infinities to ±`f64::MAX`
/// (measured, 3.17.2); the local event log keeps them exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricValue(pub f64);

impl Serialize for MetricValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match non_finite_name(self.0) {
            Some(name) => s.serialize_str(name),
            None => s.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Ok(Self(v)),
            Raw::Text(t) => parse_non_finite(&t)
                .map(Self)
                .ok_or_else(|| serde::de::Error::custom(format!("not a metric value: {t:?}"))),
        }
    }
}

/// The string MLflow stores a non-finite value as, or `None` for a finite one.
pub fn non_finite_name(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

fn parse_non_finite(t: &str) -> Option<f64> {
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// One metric point: value at a step, with the time it was recorded (replays resend the same
/// timestamp, so MLflow de-duplicates the row), its unit and which way is better.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Name, e.g. `train/loss`.
    pub key: String,
    /// Value (NaN and infinities kept).
    pub value: MetricValue,
    /// Step.
    pub step: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Unit, e.g. `nats`; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Which way is better.
    #[serde(default = "neutral", with = "direction_serde")]
    pub direction: Direction,
}

fn neutral() -> Direction {
    Direction::Neutral
}

/// `Direction` as `higher`, `lower` or `neutral`.
pub mod direction_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use valley_plugin_api::Direction;

    /// The word for a direction.
    pub fn name(d: Direction) -> &'static str {
        match d {
            Direction::HigherIsBetter => "higher",
            Direction::LowerIsBetter => "lower",
            Direction::Neutral => "neutral",
        }
    }

    /// Serializes as a word.
    pub fn serialize<S: Serializer>(d: &Direction, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*d))
    }

    /// Reads a word.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Direction, D::Error> {
        match String::deserialize(d)?.as_str() {
            "higher" => Ok(Direction::HigherIsBetter),
            "lower" => Ok(Direction::LowerIsBetter),
            "neutral" => Ok(Direction::Neutral),
            other => Err(serde::de::Error::custom(format!(
                "direction `{other}`: expected higher, lower or neutral"
            ))),
        }
    }
}

impl Metric {
    /// A point recorded now.
    pub fn now(key: impl Into<String>, value: f64, step: u64) -> Self {
        Self {
            key: key.into(),
            value: MetricValue(value),
            step,
            timestamp: now_ms(),
            unit: String::new(),
            direction: Direction::Neutral,
        }
    }

    /// Sets unit and direction.
    pub fn with(mut self, unit: &str, direction: Direction) -> Self {
        self.unit = unit.to_string();
        self.direction = direction;
        self
    }
}

/// What a run is when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The MLflow experiment it belongs to (by name).
    pub experiment: String,
    /// The run's name (shown in the UI).
    pub name: String,
    /// The parent run, for a child run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RunId>,
    /// Tags set at creation.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Milliseconds since the Unix epoch.
    pub start_time: i64,
}

/// One event of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run starts (always the first event of a log).
    Start(RunSpec),
    /// Parameters (a key keeps one value for the life of a run).
    Params {
        /// Key, value.
        params: Vec<(String, String)>,
    },
    /// Metric points.
    Metrics {
        /// The points.
        metrics: Vec<Metric>,
    },
    /// Tags (a key may be set again; the last value wins).
    Tags {
        /// Key, value.
        tags: Vec<(String, String)>,
    },
    /// A file, copied into the run directory's `artifacts/` under `path`.
    Artifact {
        /// Path relative to the run's artifact root.
        path: String,
    },
    /// The run ends.
    End {
        /// How.
        status: RunStatus,
        /// Milliseconds since the Unix epoch.
        end_time: i64,
    },
}

/// A sink for runs and their events.
///
/// `create_run` returns the run's id; every other event names it. Implementations record the
/// events in the order given. The provided methods build the events.
pub trait Tracker: Send + Sync {
    /// Creates a run.
    ///
    /// # Errors
    /// When the run cannot be recorded (the local store is not writable).
    fn create_run(&self, spec: RunSpec) -> Result<RunId>;

    /// Records one event of a run. For [`Event::Artifact`], `content` is the file's bytes.
    ///
    /// # Errors
    /// When the event cannot be recorded locally; a remote server being down is not an error.
    fn record(&self, run: &RunId, event: Event, content: Option<&[u8]>) -> Result<()>;

    /// Logs parameters.
    ///
    /// # Errors
    /// As [`Tracker::record`].
    fn log_params(&self, run: &RunId, params: Vec<(String, String)>) -> Result<()> {
        if params.is_empty() {
            return Ok(());
        }
        self.record(run, Event::Params { params }, None)
    }

    /// Logs metric points.
    ///
    /// # Errors
    /// As [`Tracker::record`].
    fn log_metrics(&self, run: &RunId, metrics: Vec<Metric>) -> Result<()> {
        if metrics.is_empty() {
            return Ok(());
        }
        self.record(run, Event::Metrics { metrics }, None)
    }

    /// Sets tags.
    ///
    /// # Errors
    /// As [`Tracker::record`].
    fn set_tags(&self, run: &RunId, tags: Vec<(String, String)>) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        self.record(run, Event::Tags { tags }, None)
    }

    /// Logs the file `source` as the artifact `path` (relative, `/`-separated).
    ///
    /// # Errors
    /// As [`Tracker::record`], and when `source` cannot be read.
    fn log_artifact(&self, run: &RunId, source: &std::path::Path, path: &str) -> Result<()> {
        let bytes = std::fs::read(source).map_err(|e| TrackingError::io(source, e))?;
        self.log_artifact_bytes(run, path, &bytes)
    }

    /// Logs `bytes` as the artifact `path` (relative, `/`-separated).
    ///
    /// # Errors
    /// As [`Tracker::record`].
    fn log_artifact_bytes(&self, run: &RunId, path: &str, bytes: &[u8]) -> Result<()> {
        self.record(run, Event::Artifact { path: path.into() }, Some(bytes))
    }

    /// Ends a run.
    ///
    /// # Errors
    /// As [`Tracker::record`].
    fn end_run(&self, run: &RunId, status: RunStatus) -> Result<()> {
        self.record(
            run,
            Event::End {
                status,
                end_time: now_ms(),
            },
            None,
        )
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Flattens a JSON value into `(dot.key, value)` pairs, MLflow's param shape: objects by key,
/// arrays by index (`pipeline.1.plugin`), strings as they are, other scalars as JSON, empty
/// objects and arrays as `{}` and `[]`.
pub fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_round_trip_as_mlflow_strings() {
        let json = serde_json::to_string(&[
            MetricValue(f64::NAN),
            MetricValue(f64::INFINITY),
            MetricValue(f64::NEG_INFINITY),
            MetricValue(0.25),
        ])
        .unwrap();
        // The strings MLflow parses (measured against 3.17.2; a bare NaN is stored as 0).
        assert_eq!(json, r#"["NaN","Infinity","-Infinity",0.25]"#);
        let back: Vec<MetricValue> = serde_json::from_str(&json).unwrap();
        assert!(back[0].0.is_nan());
        assert_eq!(back[1].0, f64::INFINITY);
        assert_eq!(back[2].0, f64::NEG_INFINITY);
        assert_eq!(back[3].0, 0.25);
        assert!(serde_json::from_str::<MetricValue>(r#""nan""#).is_err());
    }

    #[test]
    fn events_round_trip_through_json_lines() {
        let events = vec![
            Event::Start(RunSpec {
                experiment: "e".into(),
                name: "r".into(),
                parent: Some(RunId("p".into())),
                tags: [("a".to_string(), "b".to_string())].into(),
                start_time: 5,
            }),
            Event::Metrics {
                metrics: vec![
                    Metric::now("loss", f64::NAN, 3).with("nats", Direction::LowerIsBetter)
                ],
            },
            Event::End {
                status: RunStatus::Killed,
                end_time: 9,
            },
        ];
        for e in &events {
            let line = serde_json::to_string(e).unwrap();
            assert!(!line.contains('\n'));
            let back: Event = serde_json::from_str(&line).unwrap();
            match (&back, e) {
                (Event::Metrics { metrics: a }, Event::Metrics { metrics: b }) => {
                    assert!(a[0].value.0.is_nan());
                    assert_eq!(a[0].unit, b[0].unit);
                    assert_eq!(a[0].direction, Direction::LowerIsBetter);
                }
                _ => assert_eq!(&back, e),
            }
        }
        assert!(serde_json::to_string(&events[2])
            .unwrap()
            .contains(r#""status":"KILLED""#));
    }

    #[test]
    fn flatten_gives_dot_keys_for_nested_config() {
        let v = serde_json::json!({
            "cell": {"arm": "random", "size": 200},
            "pipeline": [{"plugin": "nested-size", "config": {}}, {"plugin": "easy-first", "config": {"mode": "buckets"}}],
            "trainer": null,
            "seeds": [],
        });
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        assert_eq!(
            out,
            [
                ("cell.arm", "random"),
                ("cell.size", "200"),
                ("pipeline.0.plugin", "nested-size"),
                ("pipeline.0.config", "{}"),
                ("pipeline.1.plugin", "easy-first"),
                ("pipeline.1.config.mode", "buckets"),
                ("trainer", "null"),
                ("seeds", "[]"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
