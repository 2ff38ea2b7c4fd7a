//! The Slurm executor against a real Slurm: Debian 12's `slurmctld`, `slurmd` and `munge` form a
//! one-node cluster on localhost (`tests/slurm/cluster.sh`, started and stopped by each test by
//! pid; `tests/install-deps.sh` installs the packages). A small experiment (a student, two arms
//! of generated data, a report) runs through it and through the local executor with the same
//! records; a training cell warned with USR1 the way a preemption warns it (`scancel --signal=USR1
//! --batch`, reaching the batch shell as the job's `--signal=B:USR1` would) checkpoints, requeues
//! itself and finishes from its checkpoint; a cell killed outright is reported as failed while the
//! other finishes. `valley status` shows pending (a `%1` throttle), running, finished and failed
//! cells. The first test tracks into a real MLflow server from every task: one parent run, one
//! child per cell, every metric point once.
//!
//! The tests run one at a time (a lock): the node has the machine's two cores.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;
use valley_e2e::{assert_code, show, stdout, valley, workspace_root};

mod mlflow_server;
use mlflow_server::{assert_histories_match, mlflow_runs, Server};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A one-node cluster, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: String,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = workspace_root().join("tests/slurm/cluster.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the test cluster did not start (Slurm's packages: `bash tests/install-deps.sh`, \
             or apt-get install slurmctld slurmd slurm-client munge):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = dir.path().join("slurm.conf").display().to_string();
        Cluster { dir, conf }
    }

    fn env(&self) -> Vec<(&str, Option<&str>)> {
        vec![
            ("SLURM_CONF", Some(self.conf.as_str())),
            ("RAYON_NUM_THREADS", Some("1")),
        ]
    }

    /// Runs a Slurm client command against this cluster.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether any job is still in the queue.
    fn busy(&self) -> bool {
        !self.run("squeue", &["-h", "-o", "%i"]).trim().is_empty()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(workspace_root().join("tests/slurm/cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// A working directory that borrows the workspace's generated corpus, with a small experiment
/// file `NAME.toml`: a 2-step student, `arms` on `size` records of generated data, 4 evaluation
/// problems of 16 tokens.
fn workdir(name: &str, arms: &[&str], size: u64, seeds: &[u64]) -> (tempfile::TempDir, PathBuf) {
    let cwd = tempfile::tempdir().unwrap();
    let data = workspace_root().join(".valley/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(cwd.path().join(".valley")).unwrap();
    std::os::unix::fs::symlink(&data, cwd.path().join(".valley/data")).unwrap();
    let mut text = String::from(
        r#"description = "The Slurm executor's test experiment."
[data]
synth = { train = 3000, eval = 200, seed = 1 }
subset = "train_30k"
[students.base]
data = { synth = { train = 3000, eval = 10, seed = 1001 }, subset = "train_30k", direct = true }
trainer = { plugin = "candle-sft", config = { tokenizer = "bpe-lines:2048", tokenizer_corpus = ".valley/data/synth-s1-t3000-e200-v1/train_30k.jsonl", max_length = 256, micro_batch = 8, global_batch = 8, steps = 2, lr = 3e-3 } }
[trainer]
plugin = "candle-sft"
config = { model = "{student}", max_length = 256, micro_batch = 2, global_batch = 2, epochs = 1, lr = 1e-3 }
[evaluator]
plugin = "code-exec"
config = { max_new_tokens = 16, limit = 4 }
[tracking]
enabled = false
"#,
    );
    for arm in arms {
        text.push_str(&format!("[arms.{arm}]\norder = {{ plugin = \"{arm}\" }}\n"));
    }
    text.push_str(&format!(
        "[sweep]\nsizes = [{size}]\nseeds = [{}]\n",
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let file = cwd.path().join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    (cwd, file)
}

fn submit(cluster: &Cluster, cwd: &Path, file: &Path, runs: &str, extra: &[&str]) -> String {
    submit_with(cluster, cwd, file, runs, extra, &[])
}

fn submit_with(
    cluster: &Cluster,
    cwd: &Path,
    file: &Path,
    runs: &str,
    extra: &[&str],
    envs: &[(&str, Option<&str>)],
) -> String {
    let mut args = vec![
        "experiment".to_string(),
        file.display().to_string(),
        "--executor".into(),
        "slurm".into(),
        "--set".into(),
        format!("output.runs_dir={runs}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut env = cluster.env();
    env.extend_from_slice(envs);
    let out = valley(&args, cwd, &env);
    assert_code(&out, 0);
    stdout(&out)
}

fn status(cluster: &Cluster, cwd: &Path, file: &Path, runs: &str) -> String {
    let out = valley(
        [
            "status",
            &file.display().to_string(),
            "--set",
            &format!("output.runs_dir={runs}"),
        ],
        cwd,
        &cluster.env(),
    );
    assert_code(&out, 0);
    stdout(&out)
}

/// The state `valley status` gives a cell.
fn state_of<'a>(status: &'a str, cell: &str) -> Option<&'a str> {
    status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(cell))
        .and_then(|l| l.split_whitespace().nth(1))
}

/// Polls `done` until it holds; on timeout, fails with what the logs under `runs` say.
fn wait_until(what: &str, limit: Duration, runs: &Path, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            let mut logs = String::new();
            for entry in walk(runs) {
                if entry.extension().is_some_and(|e| e == "out") {
                    logs.push_str(&format!("== {}\n{}\n", entry.display(), read(&entry)));
                }
            }
            panic!("timed out waiting for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The submission's log directory.
fn logs(runs: &Path, name: &str) -> PathBuf {
    let slurm = runs.join(name).join("slurm");
    let stamp = std::fs::read_to_string(slurm.join("latest")).unwrap();
    slurm.join(stamp.trim()).join("logs")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn an_experiment_through_slurm_has_the_records_of_the_local_executor() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start();
    let server = Server::start();
    let (cwd, file) = workdir("tiny", &["random", "easy-first"], 20, &[1, 2]);
    let runs = cwd.path().join("runs-slurm");
    let runs_s = runs.display().to_string();
    // Tracked in a real MLflow from every task (the jobs inherit MLFLOW_TRACKING_URI).
    let printed = submit_with(
        &cluster,
        cwd.path(),
        &file,
        &runs_s,
        &["--max-running", "1", "--set", "tracking.enabled=true"],
        &[("MLFLOW_TRACKING_URI", Some(server.uri.as_str()))],
    );
    assert!(
        printed.contains("submitted student base: job")
            && printed.contains("submitted 4 cells: array job")
            && printed.contains("at most 1 at once")
            && printed.contains("submitted the report: job"),
        "{printed}"
    );
    // While one cell runs, the throttle holds the others pending.
    let mut seen_running_and_throttled = false;
    wait_until(
        "the cells to finish",
        Duration::from_secs(600),
        &runs,
        || {
            let s = status(&cluster, cwd.path(), &file, &runs_s);
            if s.contains(" running ") || s.lines().any(|l| l.contains("running")) {
                seen_running_and_throttled |= s.contains("JobArrayTaskLimit");
            }
            !cluster.busy()
        },
    );
    assert!(
        seen_running_and_throttled,
        "never saw a running cell beside one the %1 throttle held"
    );
    let s = status(&cluster, cwd.path(), &file, &runs_s);
    assert!(s.contains("4 finished"), "{s}");
    let report = read(&logs(&runs, "tiny").join("report.out"));
    assert!(report.contains("report: reports/out/tiny.md"), "{report}");

    // The same experiment with the local executor, one thread as each Slurm task has.
    let local = cwd.path().join("runs-local");
    let out = valley(
        [
            "experiment",
            &file.display().to_string(),
            "--jobs",
            "1",
            "--set",
            &format!("output.runs_dir={}", local.display()),
        ],
        cwd.path(),
        &[("RAYON_NUM_THREADS", Some("1"))],
    );
    assert_code(&out, 0);
    let cells = [
        "random-n20-s1",
        "random-n20-s2",
        "easy-first-n20-s1",
        "easy-first-n20-s2",
    ];
    for cell in cells {
        let (a, b) = (runs.join("tiny").join(cell), local.join("tiny").join(cell));
        // The same plan and config (hence config hash), the same training order, the same
        // results.
        // (`tracking` aside: where results are sent is outside the config hash, and only the
        // Slurm run was tracked in MLflow.)
        let config = |dir: &Path| {
            let mut c = json(&dir.join("config.json"));
            c.as_object_mut().unwrap().remove("tracking");
            c
        };
        assert_eq!(config(&a), config(&b), "{cell}");
        assert_eq!(
            read(&a.join("train.jsonl")),
            read(&b.join("train.jsonl")),
            "{cell}"
        );
        assert_eq!(
            json(&a.join("stages.json")),
            json(&b.join("stages.json")),
            "{cell}"
        );
        // The same trained weights, bit for bit.
        assert!(
            std::fs::read(a.join("train/final/model.safetensors")).unwrap()
                == std::fs::read(b.join("train/final/model.safetensors")).unwrap(),
            "{cell}: the weights differ"
        );
        let (ra, rb) = (json(&a.join("result.json")), json(&b.join("result.json")));
        assert_eq!(ra["status"], "finished", "{cell}: {ra}");
        // Every metric but the measured speeds.
        let results = |r: &Value| -> Vec<(String, Value)> {
            r["metrics"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, m)| !m["unit"].as_str().unwrap_or("").ends_with("/s"))
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect()
        };
        assert_eq!(results(&ra), results(&rb), "{cell}");
        assert!(results(&ra).iter().any(|(k, _)| k == "pass@1"), "{ra}");
    }
    // Every cell's run is a child of the submitting command's parent run.
    let tracking = runs.join("tiny").join("tracking");
    let mut parents = std::collections::BTreeSet::new();
    let mut children = 0;
    for entry in std::fs::read_dir(&tracking).unwrap() {
        let events = read(&entry.unwrap().path().join("events.jsonl"));
        for line in events.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            if let Some(p) = e.get("parent").and_then(Value::as_str) {
                parents.insert(p.to_string());
                children += 1;
            }
        }
    }
    assert_eq!(children, 4, "one child run per cell");
    assert_eq!(parents.len(), 1, "{parents:?}");
    // In MLflow: the submitting command's parent run, ended by the report job, with the four
    // cells as its children, each once, and every metric point each task logged, once.
    let client = server.client();
    let (mlflow_parents, mlflow_children) = mlflow_runs(&client, "tiny");
    assert_eq!(mlflow_parents.len(), 1, "{mlflow_parents:?}");
    let parent = &mlflow_parents[0];
    assert_eq!(parent.info.status, "FINISHED", "{parent:?}");
    assert_eq!(mlflow_children.len(), 4, "{:?}", mlflow_children.keys());
    for (key, runs) in &mlflow_children {
        assert_eq!(runs.len(), 1, "{key}: {runs:?}");
        assert_eq!(runs[0].info.status, "FINISHED", "{key}");
        assert_eq!(
            runs[0].tag("mlflow.parentRunId"),
            Some(parent.info.run_id.as_str()),
            "{key}"
        );
    }
    let points = assert_histories_match(&client, &tracking, &server.uri);
    assert!(points > 0);
    drop(cluster);
    let _ = show;
}

#[test]
fn a_cell_warned_with_usr1_checkpoints_requeues_and_finishes_from_its_checkpoint() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start();
    // 400 records in batches of 2: 200 steps, time to be warned mid-training.
    let (cwd, file) = workdir("warned", &["random"], 400, &[1]);
    let runs = cwd.path().join("runs");
    let runs_s = runs.display().to_string();
    let printed = submit(&cluster, cwd.path(), &file, &runs_s, &[]);
    let array = printed
        .split("array job ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let log = logs(&runs, "warned").join("cell-0.out");
    wait_until(
        "training past step 5",
        Duration::from_secs(300),
        &runs,
        || {
            read(&log)
                .lines()
                .filter_map(|l| l.split("train: ").nth(1))
                .filter_map(|l| l.split('/').next()?.parse::<u64>().ok())
                .any(|step| step >= 5)
        },
    );
    // The way a preemption's warning travels: scancel to the batch shell of the task.
    cluster.run(
        "scancel",
        &["--signal=USR1", "--batch", &format!("{array}_0")],
    );
    wait_until("the requeue", Duration::from_secs(120), &runs, || {
        read(&log).contains("interrupted, resumable: requeueing")
    });
    let interrupted = json(&runs.join("warned/random-n400-s1/interrupted.json"));
    let step = interrupted["step"].as_u64().unwrap();
    assert!(step >= 5, "{interrupted}");
    // Slurm holds a requeued job ~2 minutes before it may start again; start it now.
    let s = status(&cluster, cwd.path(), &file, &runs_s);
    assert!(
        s.contains(&format!("requeued, resumes at step {step}")),
        "{s}"
    );
    cluster.run(
        "scontrol",
        &["update", &format!("JobId={array}_0"), "StartTime=now"],
    );
    wait_until("the report", Duration::from_secs(600), &runs, || {
        !cluster.busy()
    });
    let text = read(&log);
    assert!(
        text.lines().any(|l| l.starts_with("random-n400-s1 ")
            && l.contains(&format!("resumes training at step {step} "))),
        "{text}"
    );
    assert!(text.contains("start 1 on"), "the second start: {text}");
    let result = json(&runs.join("warned/random-n400-s1/result.json"));
    assert_eq!(result["status"], "finished", "{result}");
    assert_eq!(result["training_steps"], 200, "{result}");
}

#[test]
fn a_cell_killed_outright_is_reported_failed_and_the_other_finishes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::start();
    let (cwd, file) = workdir("killed", &["random"], 400, &[1, 2]);
    let runs = cwd.path().join("runs");
    let runs_s = runs.display().to_string();
    let printed = submit(
        &cluster,
        cwd.path(),
        &file,
        &runs_s,
        &["--max-running", "1"],
    );
    let array = printed
        .split("array job ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let log = logs(&runs, "killed").join("cell-0.out");
    wait_until("training", Duration::from_secs(300), &runs, || {
        read(&log).contains(" train: ")
    });
    cluster.run(
        "scancel",
        &["--full", "--signal=KILL", &format!("{array}_0")],
    );
    wait_until("the report", Duration::from_secs(600), &runs, || {
        !cluster.busy()
    });
    let s = status(&cluster, cwd.path(), &file, &runs_s);
    assert_eq!(state_of(&s, "random-n400-s1"), Some("failed"), "{s}");
    assert_eq!(state_of(&s, "random-n400-s2"), Some("finished"), "{s}");
    let report = read(&logs(&runs, "killed").join("report.out"));
    assert!(
        report.contains("random-n400-s1: failed: the Slurm task ended without a result"),
        "{report}"
    );
    let md = read(&cwd.path().join("reports/out/killed.md"));
    assert!(md.contains("Cells: 1 finished, 1 failed."), "{md}");
    // The killed cell's child run does not run on: the report job ended it FAILED.
    let tracking = runs.join("killed").join("tracking");
    let killed_run = std::fs::read_dir(&tracking)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-random-n400-s1"))
        .expect("the killed cell's run");
    let events = read(&killed_run.join("events.jsonl"));
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"end\"") && l.contains("FAILED")),
        "{events}"
    );
}
