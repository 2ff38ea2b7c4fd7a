//! A real MLflow server for the end-to-end tests (`valley mlflow start` from the project venv
//! `.venv-mlflow` in a temporary home) and what they read back through its REST API. Shared by
//! `tracking.rs` and `slurm.rs` (`mod mlflow_server;`).

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Output,
};

use serde_json::Value;
use valley_e2e::{assert_code, read_lines, show, stdout, valley, workspace_root};
use valley_tracking::{Event, MlflowClient, Run};

/// A real MLflow server in a temporary home, stopped (its process group) when dropped.
pub struct Server {
    pub home: tempfile::TempDir,
    pub venv: PathBuf,
    pub port: u16,
    pub uri: String,
}

impl Server {
    /// Starts one; the venv missing fails the test with the command that installs it.
    pub fn start() -> Self {
        let venv = std::env::var_os("VALLEY_MLFLOW_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv-mlflow"));
        assert!(
            venv.join("bin/mlflow").is_file(),
            "the tracking e2e tests need a real MLflow: {} is missing; `just test-deps` installs it",
            venv.join("bin/mlflow").display()
        );
        let home = tempfile::tempdir().unwrap();
        let mut server = Self {
            home,
            venv,
            port: 0,
            uri: String::new(),
        };
        let out = server.valley(&["mlflow", "start", "--no-install"], &[]);
        assert_code(&out, 0);
        let state: Value =
            serde_json::from_slice(&std::fs::read(server.home.path().join("server.json")).unwrap())
                .unwrap();
        server.port = state["port"].as_u64().unwrap() as u16;
        server.uri = state["uri"].as_str().unwrap().to_string();
        assert!(
            stdout(&out).contains(&format!("running at {}", server.uri)),
            "{}",
            show(&out)
        );
        server
    }

    pub fn envs<'a>(
        &'a self,
        extra: &[(&'a str, Option<&'a str>)],
    ) -> Vec<(&'a str, Option<&'a str>)> {
        let mut envs = vec![
            ("VALLEY_MLFLOW_HOME", self.home.path().to_str()),
            ("VALLEY_MLFLOW_VENV", self.venv.to_str()),
        ];
        envs.extend_from_slice(extra);
        envs
    }

    pub fn valley(&self, args: &[&str], extra: &[(&str, Option<&str>)]) -> Output {
        valley(args, self.home.path(), &self.envs(extra))
    }

    pub fn stop(&self) {
        let out = self.valley(&["mlflow", "stop"], &[]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains("stopped"), "{}", show(&out));
        assert!(
            MlflowClient::new(&self.uri).unwrap().health().is_err(),
            "the server still answers after `valley mlflow stop`"
        );
    }

    /// Starts it again on the same port (the state file remembers it).
    pub fn restart(&self) {
        let port = self.port.to_string();
        let out = self.valley(&["mlflow", "start", "--no-install", "--port", &port], &[]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains(&self.uri), "{}", show(&out));
    }

    pub fn client(&self) -> MlflowClient {
        MlflowClient::new(&self.uri).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = valley(["mlflow", "stop"], self.home.path(), &self.envs(&[]));
    }
}

/// The runs of an experiment in MLflow: (parents, children by cell key, several per key when the
/// cell ran more than once).
pub fn mlflow_runs(client: &MlflowClient, name: &str) -> (Vec<Run>, BTreeMap<String, Vec<Run>>) {
    let id = client
        .experiment_id(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no MLflow experiment `{name}`"));
    let runs = client.search_runs(&[id], "").unwrap();
    let mut parents = Vec::new();
    let mut children: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for run in runs {
        match run.tag("valley.kind") {
            Some("parent") => parents.push(run),
            Some("cell") => children
                .entry(run.tag("valley.cell_key").unwrap().to_string())
                .or_default()
                .push(run),
            other => panic!("run {} has valley.kind {other:?}", run.info.run_id),
        }
    }
    (parents, children)
}

/// Metric points per (local run dir, key), counted from the local event logs.
pub fn local_metric_counts(tracking: &Path) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(tracking).unwrap() {
        let dir = entry.unwrap().path();
        let run = dir.file_name().unwrap().to_string_lossy().into_owned();
        for line in read_lines(&dir.join("events.jsonl")) {
            if let Event::Metrics { metrics } = serde_json::from_str(&line).unwrap() {
                for m in metrics {
                    *counts.entry((run.clone(), m.key)).or_default() += 1;
                }
            }
        }
    }
    counts
}

/// The MLflow run id of each local run dir, from its sync.json, for `uri`.
pub fn mlflow_ids(tracking: &Path, uri: &str) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for entry in std::fs::read_dir(tracking).unwrap() {
        let dir = entry.unwrap().path();
        let state: Value =
            serde_json::from_slice(&std::fs::read(dir.join("sync.json")).unwrap()).unwrap();
        ids.insert(
            dir.file_name().unwrap().to_string_lossy().into_owned(),
            state[uri]["run_id"].as_str().unwrap().to_string(),
        );
    }
    ids
}

/// Every metric point of every local run is in MLflow exactly once.
pub fn assert_histories_match(client: &MlflowClient, tracking: &Path, uri: &str) -> usize {
    let ids = mlflow_ids(tracking, uri);
    let counts = local_metric_counts(tracking);
    assert!(!counts.is_empty());
    let mut total = 0;
    for ((run, key), n) in &counts {
        // Under the name MLflow accepts (`pass@1` is `pass_at_1` there).
        let history = client
            .metric_history(&ids[run], &valley_tracking::mlflow_name(key))
            .unwrap();
        assert_eq!(
            history.len(),
            *n,
            "{run} {key}: {} points in MLflow, {n} logged locally",
            history.len()
        );
        total += n;
    }
    total
}
