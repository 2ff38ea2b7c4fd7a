//! Tracking against a real MLflow server (issue 6): `valley mlflow start` runs MLflow 3.17.2 from
//! the project venv `.venv-mlflow` (installed by `.ci/run`; `VALLEY_MLFLOW_VENV` points
//! elsewhere) in a temporary home, `valley experiment` runs a small sweep, and everything is read
//! back through MLflow's REST API: the parent run, one child per cell with tags and params, full
//! metric histories and the artifacts.
//!
//! The kill-and-restart test stops the server (the whole process group) between two invocations,
//! so the second one runs with the server down — sampling is too fast to stop it between cells
//! reliably — then restarts it on the same port and replays with `valley sync`. It then throws
//! away the record of what the server acknowledged and replays everything again, as after a
//! crash that lost the answers: every metric point must still be there exactly once.
//!
//! A last test drives the background worker in-process: events logged while the server is down
//! reach it after it comes back, within the same run.
//!
//! Without the venv these tests fail with the command that installs it (`just test-deps`).

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use serde_json::Value;
use valley_e2e::{assert_code, read_lines, show, stdout, tiny_train, toml_path, write_file};
use valley_tracking::Run;

mod mlflow_server;
use mlflow_server::{assert_histories_match, mlflow_runs, Server};

const ARMS: [&str; 2] = ["random", "easy-first"];
const SIZES: [u64; 2] = [0, 20];
const SEEDS: [u64; 2] = [1, 2];

/// A small experiment: 2 arms × sizes {0, 20} × 2 seeds = 8 cells (4 base, 4 sampled).
fn experiment_file(dir: &Path, name: &str) -> PathBuf {
    write_file(
        dir,
        &format!("{name}.toml"),
        &format!(
            r#"description = "tracking e2e"

[data]
train = {train}

[arms.random]
order = {{ plugin = "random" }}

[arms.easy-first]
order = {{ plugin = "easy-first", config = {{ mode = "buckets" }} }}

[sweep]
sizes = [0, 20]
seeds = [1, 2]
"#,
            train = toml_path(&tiny_train())
        ),
    )
}

fn run_experiment(server: &Server, file: &Path, runs: &Path, extra: &[&str]) -> Output {
    let runs_arg = format!("output.runs_dir={}", runs.display());
    let mut args = vec!["experiment", file.to_str().unwrap(), "--set", &runs_arg];
    args.extend_from_slice(extra);
    server.valley(&args, &[("MLFLOW_TRACKING_URI", Some(&server.uri))])
}

fn cell_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for arm in ARMS {
        for size in SIZES {
            for seed in SEEDS {
                keys.push(format!("{arm}-n{size}-s{seed}"));
            }
        }
    }
    keys
}

#[test]
fn an_experiment_is_recorded_in_mlflow_with_parent_children_params_metrics_and_artifacts() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path(), "tracked");
    let runs = dir.path().join("runs");
    let out = run_experiment(&server, &file, &runs, &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "tracking: MLflow at {}, experiment `tracked`",
            server.uri
        )),
        "{}",
        show(&out)
    );
    let ui_line = text
        .lines()
        .find(|l| l.contains("parent run: "))
        .unwrap_or_else(|| panic!("no parent run address\n{}", show(&out)));

    let client = server.client();
    let (parents, children) = mlflow_runs(&client, "tracked");
    assert_eq!(parents.len(), 1);
    let parent = &parents[0];
    assert_eq!(parent.info.status, "FINISHED");
    assert!(
        ui_line.ends_with(&format!(
            "{}/#/experiments/{}/runs/{}?workflowType=machine_learning",
            server.uri, parent.info.experiment_id, parent.info.run_id
        )),
        "{ui_line}"
    );
    assert_eq!(parent.param("sweep.seeds.1"), Some("2"));
    assert_eq!(
        parent.param("arms.easy-first.order.config.mode"),
        Some("buckets")
    );
    assert_eq!(children.keys().cloned().collect::<Vec<_>>(), {
        let mut k = cell_keys();
        k.sort();
        k
    });
    let commit = parent.tag("valley.git_commit");
    for (key, runs_of_key) in &children {
        assert_eq!(runs_of_key.len(), 1, "{key}");
        let run = &runs_of_key[0];
        assert_eq!(run.info.status, "FINISHED", "{key}");
        assert_eq!(run.info.run_name, *key);
        assert_eq!(
            run.tag("mlflow.parentRunId"),
            Some(parent.info.run_id.as_str())
        );
        let cell = json(&runs.join("tracked").join(key).join("config.json"));
        assert_eq!(run.tag("valley.experiment"), Some("tracked"));
        assert_eq!(run.tag("valley.arm"), cell["cell"]["arm"].as_str());
        assert_eq!(
            run.tag("valley.size"),
            Some(cell["cell"]["size"].to_string().as_str())
        );
        assert_eq!(
            run.tag("valley.seed"),
            Some(cell["cell"]["seed"].to_string().as_str())
        );
        assert_eq!(run.tag("valley.git_commit"), commit);
        assert!(run.tag("valley.host").is_some_and(|h| !h.is_empty()));
        assert_eq!(run.param("cell.key"), Some(key.as_str()));
        assert_eq!(run.param("data.records"), Some("300"));
        let size = cell["cell"]["size"].as_u64().unwrap();
        let files: Vec<String> = client
            .list_artifacts(&run.info.run_id, "")
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        if size == 0 {
            assert_eq!(files, ["config.json", "result.json"], "{key}");
            continue;
        }
        // Every sampler's config is a param: the order stage is the second stage.
        let order_plugin = if key.starts_with("easy-first") {
            "easy-first"
        } else {
            "random"
        };
        assert_eq!(run.param("pipeline.1.spec.plugin"), Some(order_plugin));
        if order_plugin == "easy-first" {
            assert_eq!(run.param("pipeline.1.spec.config.mode"), Some("buckets"));
        }
        // Stage counts: nested-size keeps 20 of 300, the order stage all 20.
        let latest = |k: &str| {
            run.data
                .metrics
                .iter()
                .find(|m| m.key == k)
                .unwrap_or_else(|| panic!("{key}: no metric {k}"))
                .value
                .0
        };
        assert_eq!(latest("sampling/0-subset-nested-size/input"), 300.0);
        assert_eq!(latest("sampling/0-subset-nested-size/kept"), 20.0);
        assert_eq!(latest("sampling/0-subset-nested-size/dropped"), 280.0);
        assert_eq!(
            latest(&format!("sampling/1-order-{order_plugin}/kept")),
            20.0
        );
        assert_eq!(latest("sampling/records"), 20.0);
        assert_eq!(run.tag("valley.unit.sampling/records"), Some("records"));
        let mut files = files;
        files.sort();
        assert_eq!(
            files,
            ["config.json", "manifest.json", "result.json", "stages.json"],
            "{key}"
        );
        let exp_id = &run.info.experiment_id;
        let cell_dir = runs.join("tracked").join(key);
        assert_eq!(
            client
                .download_artifact(exp_id, &run.info.run_id, "config.json")
                .unwrap(),
            std::fs::read(cell_dir.join("config.json")).unwrap()
        );
        let manifest: Value = serde_json::from_slice(
            &client
                .download_artifact(exp_id, &run.info.run_id, "manifest.json")
                .unwrap(),
        )
        .unwrap();
        let ids: Vec<String> = read_lines(&cell_dir.join("train.jsonl"))
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(manifest["ids"], serde_json::json!(ids), "{key}");
        assert_eq!(
            manifest["order_sha256"].as_str(),
            run.tag("valley.order_sha256")
        );
    }
    let tracking = runs.join("tracked").join("tracking");
    let points = assert_histories_match(&client, &tracking, &server.uri);
    // 4 sampled cells × (2 stages × 3 counts + records) = 28 points.
    assert_eq!(points, 28);

    // A rerun skips every finished cell and adds only a parent run.
    let again = run_experiment(&server, &file, &runs, &[]);
    assert_code(&again, 0);
    for key in cell_keys() {
        assert!(
            stdout(&again).lines().any(|l| l.starts_with(&key)
                && l.contains("skipped (finished; found in local run directory)")),
            "{key}\n{}",
            show(&again)
        );
    }
    // Without the local record, the finished runs are found in MLflow.
    std::fs::remove_dir_all(&tracking).unwrap();
    let third = run_experiment(&server, &file, &runs, &[]);
    assert_code(&third, 0);
    assert!(
        stdout(&third).contains("0 cells written, 8 skipped"),
        "{}",
        show(&third)
    );
    assert!(
        stdout(&third).contains("found in MLflow"),
        "{}",
        show(&third)
    );
    let (parents, children) = mlflow_runs(&client, "tracked");
    assert_eq!(parents.len(), 3);
    assert!(children.values().all(|r| r.len() == 1));
}

#[test]
fn non_finite_metrics_reach_mlflow_as_nan_and_infinities() {
    // The encoding measured in issue 6: log-batch stores a bare NaN token as 0; the strings
    // "NaN", "Infinity", "-Infinity" are parsed as the non-finite values.
    let server = Server::start();
    let client = server.client();
    let exp = client.ensure_experiment("nan").unwrap();
    let run = client.create_run(&exp, "nan", 1, &[]).unwrap();
    let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5];
    let batch = valley_tracking::LogBatch {
        metrics: values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let mut m = valley_tracking::Metric::now("x", v, i as u64);
                m.timestamp = 1000 + i as i64;
                m
            })
            .collect(),
        ..Default::default()
    };
    client.log_batch(&run.info.run_id, &batch).unwrap();
    let mut history = client.metric_history(&run.info.run_id, "x").unwrap();
    history.sort_by_key(|m| m.step);
    let got: Vec<f64> = history.iter().map(|m| m.value.0).collect();
    assert_eq!(got.len(), 4);
    assert!(got[0].is_nan(), "{got:?}");
    // Measured against 3.17.2: the SQL store keeps NaN but clamps the infinities to ±f64::MAX
    // (the local event log keeps them exact); without the string encoding all three were 0.
    assert_eq!(got[1..], [f64::MAX, -f64::MAX, 1.5]);
    // A refusal keeps MLflow's own code and message.
    let err = client
        .log_batch(
            &run.info.run_id,
            &valley_tracking::LogBatch {
                params: vec![("p".into(), "1".into())],
                ..Default::default()
            },
        )
        .and_then(|()| {
            client.log_batch(
                &run.info.run_id,
                &valley_tracking::LogBatch {
                    params: vec![("p".into(), "2".into())],
                    ..Default::default()
                },
            )
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("400") && err.contains("INVALID_PARAMETER_VALUE"),
        "{err}"
    );
}

#[test]
fn with_the_server_down_the_experiment_goes_on_and_sync_delivers_every_point_once() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path(), "outage");
    let runs = dir.path().join("runs");
    let tracking = runs.join("outage").join("tracking");

    // 1. With the server up: everything arrives.
    let first = run_experiment(&server, &file, &runs, &[]);
    assert_code(&first, 0);
    assert!(stdout(&first).contains("parent run: "), "{}", show(&first));

    // 2. The server goes away; the experiment (forced to redo every cell) still succeeds,
    //    logging locally, and says how to send the backlog.
    server.stop();
    let second = run_experiment(&server, &file, &runs, &["--force"]);
    assert_code(&second, 0);
    let text = stdout(&second);
    assert!(
        text.contains("4 cells written, 4 base, 0 failed"),
        "{}",
        show(&second)
    );
    assert!(text.contains("not reachable"), "{}", show(&second));
    assert!(text.contains("valley sync outage"), "{}", show(&second));

    // 3. Back up on the same port: `valley sync` sends the backlog.
    server.restart();
    let runs_arg = runs.display().to_string();
    let sync = server.valley(
        &["sync", "outage", "--runs-dir", &runs_arg],
        &[("MLFLOW_TRACKING_URI", Some(&server.uri))],
    );
    assert_code(&sync, 0);
    assert!(stdout(&sync).contains("0 runs pending"), "{}", show(&sync));
    let client = server.client();
    let (parents, children) = mlflow_runs(&client, "outage");
    assert_eq!(parents.len(), 2);
    assert!(parents.iter().all(|p| p.info.status == "FINISHED"));
    assert_eq!(children.len(), 8);
    for (key, rs) in &children {
        assert_eq!(rs.len(), 2, "{key}: one run per invocation");
        let parent_ids: Vec<&str> = rs
            .iter()
            .map(|r| r.tag("mlflow.parentRunId").unwrap())
            .collect();
        assert_ne!(parent_ids[0], parent_ids[1], "{key}");
        for r in rs {
            assert_eq!(r.info.status, "FINISHED", "{key}");
            assert_eq!(r.param("cell.key"), Some(key.as_str()));
            assert_eq!(r.tag("valley.cell_key"), Some(key.as_str()));
        }
        // Params and tags of both runs are the same set (nothing lost while the server was down).
        let keys = |r: &Run| {
            let mut p: Vec<String> = r.data.params.iter().map(|p| p.key.clone()).collect();
            p.sort();
            p
        };
        assert_eq!(keys(&rs[0]), keys(&rs[1]), "{key}");
    }
    let points = assert_histories_match(&client, &tracking, &server.uri);
    assert_eq!(points, 2 * 28);

    // 4. Syncing again sends nothing.
    let again = server.valley(
        &["sync", "outage", "--runs-dir", &runs_arg],
        &[("MLFLOW_TRACKING_URI", Some(&server.uri))],
    );
    assert_code(&again, 0);
    assert!(
        stdout(&again).contains("0 events and 0 metric points sent now"),
        "{}",
        show(&again)
    );

    // 5. A crash that lost every acknowledgement: the replay finds the runs by their uid instead
    //    of creating them again, resends every event, and MLflow still holds each point once.
    for entry in std::fs::read_dir(&tracking).unwrap() {
        std::fs::remove_file(entry.unwrap().path().join("sync.json")).unwrap();
    }
    let replay = server.valley(
        &["sync", "outage", "--runs-dir", &runs_arg],
        &[("MLFLOW_TRACKING_URI", Some(&server.uri))],
    );
    assert_code(&replay, 0);
    assert!(
        !stdout(&replay).contains("run created"),
        "{}",
        show(&replay)
    );
    let (parents, children) = mlflow_runs(&client, "outage");
    assert_eq!(parents.len(), 2);
    assert!(children.values().all(|r| r.len() == 2));
    assert_eq!(
        assert_histories_match(&client, &tracking, &server.uri),
        2 * 28
    );
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[test]
fn the_background_worker_sends_the_backlog_when_the_server_returns() {
    use valley_tracking::{Metric, RunSpec, RunStatus, SyncedTracker, Tracker};
    let server = Server::start();
    server.stop();
    let dir = tempfile::tempdir().unwrap();
    let tracker = SyncedTracker::with_mlflow(dir.path().join("tracking"), server.client());
    // While the server is down: a run with 2500 points (three log-batches) is logged locally.
    let run = tracker
        .create_run(RunSpec {
            experiment: "worker".into(),
            name: "r".into(),
            parent: None,
            tags: Default::default(),
            start_time: 1,
        })
        .unwrap();
    let points: Vec<Metric> = (0..2500u64)
        .map(|i| Metric::now("loss", 1.0 / (i + 1) as f64, i))
        .collect();
    tracker.log_metrics(&run, points).unwrap();
    tracker
        .log_params(&run, vec![("lr".into(), "8e-5".into())])
        .unwrap();
    tracker.end_run(&run, RunStatus::Finished).unwrap();
    // The worker keeps retrying with backoff; the server comes back; the worker sends it all.
    server.restart();
    let flushed = tracker.finish(std::time::Duration::from_secs(120));
    assert!(flushed.complete, "{flushed:?}");
    assert_eq!(flushed.status.metrics, 2500);
    let client = server.client();
    let id = client.experiment_id("worker").unwrap().unwrap();
    let runs = client.search_runs(&[id], "").unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].info.status, "FINISHED");
    assert_eq!(runs[0].param("lr"), Some("8e-5"));
    let history = client.metric_history(&runs[0].info.run_id, "loss").unwrap();
    assert_eq!(history.len(), 2500);
}

/// The main job end to end (issue 7): a tiny experiment through the real binary, the real
/// trainer and evaluator plugins, the sandbox and a real MLflow server — a student built from
/// scratch on direct answers, cells that sample, train and evaluate, the student evaluated as
/// size 0, and the report. Budgets are tiny (a few optimizer steps, three problems, 24 new
/// tokens), so the numbers mean nothing; what is checked is that they are where they belong and
/// agree everywhere.
#[test]
fn a_trained_and_evaluated_experiment_lands_in_mlflow_with_its_report() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let data = toml_path(&dir.path().join("data"));
    let file = write_file(
        dir.path(),
        "trained.toml",
        &format!(
            r#"description = "A tiny trained sweep."

[data]
synth = {{ train = 40, eval = 6, seed = 5 }}
subset = "train_30k"
cache_dir = {data}

[students.base]
data = {{ synth = {{ train = 40, eval = 6, seed = 5 }}, subset = "train_30k", direct = true, cache_dir = {data} }}
trainer = {{ plugin = "candle-sft", config = {{ max_length = 512, micro_batch = 4, global_batch = 4, tokenizer = "bpe-lines:1024" }} }}

[trainer]
plugin = "candle-sft"
config = {{ model = "{{student}}", max_length = 512, micro_batch = 4, global_batch = 4 }}

[evaluator]
plugin = "code-exec"
config = {{ max_new_tokens = 24, limit = 3 }}

[arms.random]
order = {{ plugin = "random" }}

[arms.easy-first]
order = {{ plugin = "easy-first" }}

[sweep]
sizes = [0, 8]
seeds = [1, 2]
"#
        ),
    );
    let runs = dir.path().join("runs");
    let out = run_experiment(&server, &file, &runs, &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("student base: done"), "{}", show(&out));
    assert!(
        text.contains("8 cells finished, 0 failed"),
        "{}",
        show(&out)
    );
    assert!(text.contains("headline: pass@1"), "{}", show(&out));
    let report = server.home.path().join("reports/out/trained.md");
    assert!(
        text.contains("report: reports/out/trained.md"),
        "{}",
        show(&out)
    );
    let markdown = std::fs::read_to_string(&report).unwrap();
    assert!(markdown.contains("A tiny trained sweep."), "{markdown}");
    let records = json(&server.home.path().join("reports/out/trained.records.json"));

    let client = server.client();
    let (parents, children) = mlflow_runs(&client, "trained");
    assert_eq!(parents.len(), 1);
    let parent_files: Vec<String> = client
        .list_artifacts(&parents[0].info.run_id, "report")
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert!(
        parent_files.contains(&"report/trained.md".to_string()),
        "{parent_files:?}"
    );
    assert_eq!(children.len(), 8);
    let mut base_scores = Vec::new();
    for (key, runs_of_key) in &children {
        let run = &runs_of_key[0];
        assert_eq!(run.info.status, "FINISHED", "{key}\n{}", show(&out));
        let metric = |k: &str| {
            run.data
                .metrics
                .iter()
                .find(|m| m.key == k)
                .map(|m| m.value.0)
                .unwrap_or_else(|| panic!("{key}: no metric {k}"))
        };
        // MLflow refuses `@` in names: `pass@1` is sent as `pass_at_1`.
        let pass = metric("pass_at_1");
        assert!((0.0..=1.0).contains(&pass), "{key}: pass@1 {pass}");
        let completion = metric("completion_rate");
        assert!((0.0..=1.0).contains(&completion), "{key}");
        // The report's records hold the same number as MLflow.
        let cell = records["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                format!(
                    "{}-n{}-s{}",
                    c["arm"].as_str().unwrap(),
                    c["size"],
                    c["seed"]
                ) == *key
            })
            .unwrap_or_else(|| panic!("{key} not in the report's records"));
        assert_eq!(
            cell["metrics"]["pass@1"]["value"].as_f64(),
            Some(pass),
            "{key}"
        );
        let artifacts: Vec<String> = client
            .list_artifacts(&run.info.run_id, "eval")
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert!(
            artifacts.contains(&"eval/generations.jsonl".to_string()),
            "{key}: {artifacts:?}"
        );
        if key.contains("-n0-") {
            base_scores.push(pass);
            continue;
        }
        // 8 records, 4 per step: two optimizer steps, each streamed.
        let loss = client
            .metric_history(&run.info.run_id, "train/loss")
            .unwrap();
        assert_eq!(loss.len(), 2, "{key}");
        assert!(loss.iter().all(|p| p.value.0.is_finite()), "{key}");
        let generations = read_lines(
            &runs
                .join("trained")
                .join(key)
                .join("eval/generations.jsonl"),
        );
        assert_eq!(
            generations.len(),
            3,
            "{key}: one sample for each of 3 problems"
        );
    }
    // The student is evaluated once: every size-0 cell records the same score.
    assert_eq!(base_scores.len(), 4);
    assert!(
        base_scores.windows(2).all(|w| w[0] == w[1]),
        "{base_scores:?}"
    );

    // The same report, read back from MLflow alone, is byte for byte the same.
    let back = server.valley(
        &[
            "report",
            file.to_str().unwrap(),
            "--from-mlflow",
            "--out",
            "from-mlflow",
        ],
        &[("MLFLOW_TRACKING_URI", Some(&server.uri))],
    );
    assert_code(&back, 0);
    assert!(stdout(&back).contains("runs: MLflow at"), "{}", show(&back));
    assert_eq!(
        std::fs::read_to_string(server.home.path().join("from-mlflow/trained.md")).unwrap(),
        markdown
    );

    // A rerun finds every cell finished and trains nothing.
    let again = run_experiment(&server, &file, &runs, &[]);
    assert_code(&again, 0);
    assert!(
        stdout(&again).contains("0 cells finished, 8 skipped"),
        "{}",
        show(&again)
    );
    assert!(
        stdout(&again).contains("student base: cached"),
        "{}",
        show(&again)
    );
}
