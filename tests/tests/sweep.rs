//! The sweep runner (issue 7) through the real binary and plugins, without MLflow (tracking off):
//! Ctrl-C stops a training cell cleanly — its run marked killed, its checkpoints kept — and a
//! rerun resumes it from its newest checkpoint to the end; a cell whose trainer fails is
//! recorded as failed and the others go on. (The MLflow side of a full sweep is tested in
//! tests/tests/tracking.rs.)

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
};

use serde_json::Value;
use valley_e2e::{assert_code, show, stdout, toml_path, valley, valley_command, write_file};

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A from-scratch trainer on 20 generated problems: 200 optimizer steps, a checkpoint every 2
/// (short sequences with the loss on every token, so that each step is quick and counts).
fn experiment(dir: &Path, trainer_extra: &str, arms: &str) -> std::path::PathBuf {
    let data = toml_path(&dir.join("data"));
    write_file(
        dir,
        "interrupted.toml",
        &format!(
            r#"[data]
synth = {{ train = 40, eval = 6, seed = 5 }}
cache_dir = {data}

[trainer]
plugin = "candle-sft"
config = {{ max_length = 128, assistant_only = false, micro_batch = 1, global_batch = 1, checkpoint_every = 2{trainer_extra} }}

{arms}

[sweep]
sizes = [20]
seeds = [1]

[tracking]
enabled = false
"#
        ),
    )
}

#[test]
fn ctrl_c_stops_a_cell_keeping_its_checkpoints_and_a_rerun_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(
        dir.path(),
        ", epochs = 10",
        "[arms.random]\norder = { plugin = \"random\" }",
    );
    let args = ["experiment", file.to_str().unwrap()];
    let mut child = valley_command(args, dir.path(), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress lines go to stderr (stdout is not a terminal): wait for the cell to be training.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("random-n20-s1 train: ") && !line.contains(": 0/") {
            // SAFETY: plain kill(2) on our own child.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGINT);
            }
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(valley_plugin_api::EXIT_INTERRUPTED)),
        "{}\n{}",
        show(&out),
        seen.join("\n")
    );
    let text = stdout(&out);
    assert!(
        text.contains("random-n20-s1") && text.contains("stopped: interrupted at step"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("1 stopped (a rerun resumes them)"),
        "{}",
        show(&out)
    );
    let cell = dir.path().join("runs/interrupted/random-n20-s1");
    assert!(!cell.join("result.json").exists());
    let checkpoints: Vec<String> = std::fs::read_dir(cell.join("train/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!checkpoints.is_empty(), "no checkpoint kept");
    // The cell's run is marked killed in the local tracking store.
    let tracking = dir.path().join("runs/interrupted/tracking");
    let killed = std::fs::read_dir(&tracking)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("events.jsonl")).unwrap())
        .filter(|events| events.contains("random-n20-s1"))
        .any(|events| events.contains("KILLED"));
    assert!(
        killed,
        "no KILLED run for the cell under {}",
        tracking.display()
    );

    let again = valley(args, dir.path(), &[]);
    assert_code(&again, 0);
    assert!(
        stdout(&again).contains("random-n20-s1                    resumes training at step"),
        "{}",
        show(&again)
    );
    let result = json(&cell.join("result.json"));
    assert_eq!(result["status"], "finished");
    assert_eq!(
        result["training_steps"], 200,
        "20 records × 10 epochs, batch 1"
    );
    let summary = json(&cell.join("train/summary.json"));
    let resumed = summary["resumed_from"]
        .as_u64()
        .unwrap_or_else(|| panic!("the rerun did not resume: {summary}\n{}", show(&again)));
    assert!(resumed > 0 && resumed < 200, "resumed from step {resumed}");
}

#[test]
fn a_trainer_error_fails_its_cell_with_the_plugins_message_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // A config the trainer refuses when it starts: micro_batch 3 does not divide global_batch 1.
    // The first cell fails and the second still runs (and fails the same way).
    let file = experiment(
        dir.path(),
        ", epochs = 1",
        "[arms.random]\norder = { plugin = \"random\" }\n\n[arms.easy-first]\norder = { plugin = \"easy-first\" }",
    );
    let out = valley(
        [
            "experiment",
            file.to_str().unwrap(),
            "--set",
            "trainer.config.micro_batch=3",
        ],
        dir.path(),
        &[],
    );
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("0 cells finished, 2 failed"),
        "{}",
        show(&out)
    );
    for key in ["random-n20-s1", "easy-first-n20-s1"] {
        let error = std::fs::read_to_string(
            dir.path()
                .join("runs/interrupted")
                .join(key)
                .join("error.txt"),
        )
        .unwrap();
        assert!(error.contains("candle-sft"), "{error}");
        assert!(error.contains("micro_batch"), "{error}");
    }
}
