//! A small typed client of MLflow's REST API (2.0 endpoints, as served by MLflow 3.17.2):
//! experiments, runs, log-batch, metric history, search and artifacts through the
//! `mlflow-artifacts` proxy. MLflow's own error code and message are kept in every error.
//!
//! Measured against 3.17.2 (see issue 6): log-batch stores a bare `NaN` as 0, so non-finite
//! values go as strings ([`super::MetricValue`]); a param logged again with another value is a
//! 400; identical metric rows are de-duplicated; `runs/create` is not idempotent.

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{batch::LogBatch, MetricValue, Result, RunStatus, TrackingError};

/// A key and a value (params and tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// A metric row as MLflow stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Name.
    pub key: String,
    /// Value.
    pub value: MetricValue,
    /// Milliseconds since the epoch.
    #[serde(default, deserialize_with = "int_or_string")]
    pub timestamp: i64,
    /// Step.
    #[serde(default, deserialize_with = "int_or_string")]
    pub step: i64,
}

/// MLflow's JSON writes 64-bit integers as strings in some answers (protobuf's JSON mapping).
fn int_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(i) => Ok(i),
        Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

fn opt_int_or_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Int(i)) => Ok(Some(i)),
        Some(Raw::Text(t)) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A run's info.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Experiment id.
    pub experiment_id: String,
    /// Name.
    #[serde(default)]
    pub run_name: String,
    /// `RUNNING`, `FINISHED`, `FAILED`, `KILLED`, `SCHEDULED`.
    #[serde(default)]
    pub status: String,
    /// Start time (ms).
    #[serde(default, deserialize_with = "opt_int_or_string")]
    pub start_time: Option<i64>,
    /// End time (ms).
    #[serde(default, deserialize_with = "opt_int_or_string")]
    pub end_time: Option<i64>,
    /// Where its artifacts live, e.g. `mlflow-artifacts:/1/<run>/artifacts`.
    #[serde(default)]
    pub artifact_uri: String,
}

/// A run's data: latest metric values, params, tags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunData {
    /// The latest value of each metric.
    #[serde(default)]
    pub metrics: Vec<MetricRow>,
    /// Params.
    #[serde(default)]
    pub params: Vec<KeyValue>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    /// Info.
    pub info: RunInfo,
    /// Data.
    #[serde(default)]
    pub data: RunData,
}

impl Run {
    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.data
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }

    /// A param's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.data
            .params
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// A file in a run's artifact listing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileInfo {
    /// Path relative to the run's artifact root.
    pub path: String,
    /// Whether it is a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes.
    #[serde(default, deserialize_with = "opt_int_or_string")]
    pub file_size: Option<i64>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

/// A client of one tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    uri: String,
    http: reqwest::blocking::Client,
}

impl MlflowClient {
    /// A client of the server at `uri` (e.g. `http://127.0.0.1:5000`).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(uri: &str) -> Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| TrackingError::Unreachable {
                uri: uri.into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            uri: uri.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The tracking URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The UI address of a run (the 3.x UI opens in a GenAI view; classic runs need
    /// `workflowType=machine_learning`).
    pub fn run_url(&self, experiment_id: &str, run_id: &str) -> String {
        format!(
            "{}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning",
            self.uri
        )
    }

    fn unreachable(&self, e: &reqwest::Error) -> TrackingError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        TrackingError::Unreachable {
            uri: self.uri.clone(),
            message,
        }
    }

    fn finish<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        response: std::result::Result<reqwest::blocking::Response, reqwest::Error>,
    ) -> Result<T> {
        let response = response.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_str::<ApiError>(&text) {
                Ok(e) if !e.message.is_empty() || !e.error_code.is_empty() => {
                    (e.error_code, e.message)
                }
                _ => (String::new(), text.trim().chars().take(2000).collect()),
            };
            return Err(TrackingError::Api {
                endpoint: endpoint.into(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text).map_err(|e| TrackingError::Protocol {
            endpoint: endpoint.into(),
            message: format!("{e}: {}", text.chars().take(500).collect::<String>()),
        })
    }

    fn get<T: DeserializeOwned>(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<T> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.uri);
        self.finish(endpoint, self.http.get(url).query(query).send())
    }

    fn post<T: DeserializeOwned>(&self, endpoint: &str, body: &serde_json::Value) -> Result<T> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.uri);
        self.finish(endpoint, self.http.post(url).json(body).send())
    }

    /// Whether the server answers `GET /health`.
    pub fn health(&self) -> Result<()> {
        let url = format!("{}/health", self.uri);
        let response = self
            .http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(TrackingError::Api {
                endpoint: "/health".into(),
                status: response.status().as_u16(),
                code: String::new(),
                message: response.text().unwrap_or_default(),
            })
        }
    }

    /// The id of the experiment named `name`, if it exists.
    ///
    /// # Errors
    /// Transport and API errors other than "does not exist".
    pub fn experiment_id(&self, name: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Exp {
            experiment_id: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            experiment: Exp,
        }
        match self.get::<Answer>("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(a) => Ok(Some(a.experiment.experiment_id)),
            Err(TrackingError::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The id of the experiment named `name`, created when missing.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn ensure_experiment(&self, name: &str) -> Result<String> {
        if let Some(id) = self.experiment_id(name)? {
            return Ok(id);
        }
        #[derive(Deserialize)]
        struct Answer {
            experiment_id: String,
        }
        match self.post::<Answer>("experiments/create", &serde_json::json!({ "name": name })) {
            Ok(a) => Ok(a.experiment_id),
            // Created meanwhile by someone else.
            Err(TrackingError::Api { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => self
                .experiment_id(name)?
                .ok_or_else(|| TrackingError::Protocol {
                    endpoint: "experiments/create".into(),
                    message: format!("`{name}` exists and does not"),
                }),
            Err(e) => Err(e),
        }
    }

    /// Creates a run (not idempotent: the caller records the id it gets).
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> Result<Run> {
        #[derive(Deserialize)]
        struct Answer {
            run: Run,
        }
        let tags: Vec<KeyValue> = tags
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let a: Answer = self.post(
            "runs/create",
            &serde_json::json!({
                "experiment_id": experiment_id, "run_name": name,
                "start_time": start_time, "tags": tags,
            }),
        )?;
        Ok(a.run)
    }

    /// One run.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn get_run(&self, run_id: &str) -> Result<Run> {
        #[derive(Deserialize)]
        struct Answer {
            run: Run,
        }
        Ok(self.get::<Answer>("runs/get", &[("run_id", run_id)])?.run)
    }

    /// Every run of the experiments matching `filter` (MLflow's search syntax), all pages.
    ///
    /// # Errors
    /// Transport and API errors (a bad filter is a 400 naming it).
    pub fn search_runs(&self, experiment_ids: &[String], filter: &str) -> Result<Vec<Run>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            runs: Vec<Run>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut runs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = serde_json::json!({
                "experiment_ids": experiment_ids, "filter": filter, "max_results": 1000,
            });
            if let Some(t) = &token {
                body["page_token"] = t.clone().into();
            }
            let a: Answer = self.post("runs/search", &body)?;
            runs.extend(a.runs);
            match a.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(runs),
            }
        }
    }

    /// Sends one log-batch (the caller keeps it within MLflow's limits, see [`super::batch`]).
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn log_batch(&self, run_id: &str, batch: &LogBatch) -> Result<()> {
        let metrics: Vec<serde_json::Value> = batch
            .metrics
            .iter()
            .map(|m| {
                serde_json::json!({
                    "key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step,
                })
            })
            .collect();
        let kv = |items: &[(String, String)]| -> Vec<KeyValue> {
            items
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect()
        };
        let _: serde_json::Value = self.post(
            "runs/log-batch",
            &serde_json::json!({
                "run_id": run_id, "metrics": metrics,
                "params": kv(&batch.params), "tags": kv(&batch.tags),
            }),
        )?;
        Ok(())
    }

    /// Ends a run.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn update_run(&self, run_id: &str, status: RunStatus, end_time: i64) -> Result<()> {
        let _: serde_json::Value = self.post(
            "runs/update",
            &serde_json::json!({ "run_id": run_id, "status": status.as_str(), "end_time": end_time }),
        )?;
        Ok(())
    }

    /// Every point of a metric, all pages.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricRow>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            metrics: Vec<MetricRow>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut rows = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![
                ("run_id", run_id),
                ("metric_key", key),
                ("max_results", "25000"),
            ];
            if !token.is_empty() {
                query.push(("page_token", &token));
            }
            let a: Answer = self.get("metrics/get-history", &query)?;
            rows.extend(a.metrics);
            match a.next_page_token {
                Some(t) if !t.is_empty() => token = t,
                _ => return Ok(rows),
            }
        }
    }

    fn artifact_url(&self, experiment_id: &str, run_id: &str, path: &str) -> String {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}",
            self.uri
        )
    }

    /// Uploads an artifact through the server's artifact proxy (`--artifacts-destination`).
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn upload_artifact(
        &self,
        experiment_id: &str,
        run_id: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let endpoint = "mlflow-artifacts/artifacts (PUT)";
        let response = self
            .http
            .put(self.artifact_url(experiment_id, run_id, path))
            .body(bytes)
            .send();
        let _: serde_json::Value = self.finish(endpoint, response)?;
        Ok(())
    }

    /// Downloads an artifact.
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn download_artifact(
        &self,
        experiment_id: &str,
        run_id: &str,
        path: &str,
    ) -> Result<Vec<u8>> {
        let response = self
            .http
            .get(self.artifact_url(experiment_id, run_id, path))
            .send()
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let bytes = response.bytes().map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            return Err(TrackingError::Api {
                endpoint: "mlflow-artifacts/artifacts (GET)".into(),
                status: status.as_u16(),
                code: String::new(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    }

    /// The artifacts of a run under `path` ("" for the root).
    ///
    /// # Errors
    /// Transport and API errors.
    pub fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<FileInfo>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let mut query = vec![("run_id", run_id)];
        if !path.is_empty() {
            query.push(("path", path));
        }
        Ok(self.get::<Answer>("artifacts/list", &query)?.files)
    }
}

/// The HTTP status of an error, `None` for a transport failure (for [`super::batch::is_retryable`]).
pub fn error_status(e: &TrackingError) -> Option<u16> {
    match e {
        TrackingError::Api { status, .. } => Some(*status),
        TrackingError::Unreachable { .. } => None,
        // Not the server's answer to this request: retrying cannot help.
        _ => Some(400),
    }
}
