//! Runs survive being killed (issue 16), on a shipped experiment through the real binary: a cell
//! of `experiments/easy-first.toml` stopped with SIGTERM mid-training saves a checkpoint and
//! `valley` exits with 75 ("interrupted, resumable"); the rerun resumes it from that step, and
//! when that rerun is killed with SIGKILL (no chance to save), the next rerun resumes from the
//! last time-based checkpoint and finishes every cell.
//!
//! The experiment runs as shipped but smaller, through layered settings: one size (500) and one
//! seed, a 2-step student, 4 evaluation problems of 16 tokens, and a checkpoint every 0.6 s of
//! training (`checkpoint_minutes = 0.01`; the shipped default is 10) so that SIGKILL has a
//! time-based checkpoint to resume from. It runs in a temporary directory (its report and student
//! stay there) that borrows the workspace's generated corpus.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use valley_e2e::{assert_code, show, stdout, valley, valley_command, workspace_root};
use valley_plugin_api::EXIT_INTERRUPTED;

const CELL: &str = "random-n500-s1";

fn args(runs: &Path) -> Vec<String> {
    let experiment = workspace_root().join("experiments/easy-first.toml");
    let mut args = vec![
        "experiment".to_string(),
        experiment.display().to_string(),
        "--jobs".into(),
        "1".into(),
    ];
    for set in [
        format!("output.runs_dir={}", runs.display()),
        "sweep.sizes=[500]".into(),
        "sweep.seeds=[1]".into(),
        "students.base.trainer.config.steps=2".into(),
        "evaluator.config.limit=4".into(),
        "evaluator.config.max_new_tokens=16".into(),
        "tracking.enabled=false".into(),
        "trainer.config.checkpoint_minutes=0.01".into(),
    ] {
        args.extend(["--set".into(), set]);
    }
    args
}

/// Starts `valley experiment` and reads its progress (stderr) until the cell has trained past
/// step `past`; returns the process and the lines seen.
fn start_and_wait(cwd: &Path, runs: &Path, past: u64) -> (Child, Vec<String>) {
    let mut child = valley_command(args(runs), cwd, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let prefix = format!("{CELL} train: ");
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        let line = line.unwrap();
        seen.push(line.clone());
        let done = line
            .split_once(&prefix)
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(done, _)| done.trim().parse::<u64>().ok());
        if done.is_some_and(|d| d > past) {
            // Keep draining stderr so that the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, seen);
        }
    }
    let out = child.wait_with_output().unwrap();
    panic!(
        "the cell never trained past step {past}:\n{}\n{}",
        seen.join("\n"),
        show(&out)
    );
}

fn state_step(checkpoint: &Path) -> u64 {
    let text = std::fs::read_to_string(checkpoint.join("state.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["step"]
        .as_u64()
        .unwrap()
}

/// The newest resumable checkpoint of the cell and its step.
fn latest(cell: &Path) -> Option<(PathBuf, u64)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cell.join("train/checkpoints"))
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("state.json").is_file())
        .collect();
    dirs.sort();
    let dir = dirs.pop()?;
    let step = state_step(&dir);
    Some((dir, step))
}

#[test]
fn a_shipped_experiment_cell_resumes_after_sigterm_and_after_sigkill() {
    let cwd = tempfile::tempdir().unwrap();
    // The generated corpus the shipped file names (`.valley/data/…`), shared with the workspace.
    let data = workspace_root().join(".valley/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(cwd.path().join(".valley")).unwrap();
    std::os::unix::fs::symlink(&data, cwd.path().join(".valley/data")).unwrap();
    let runs = cwd.path().join("runs");
    let cell = runs.join("easy-first").join(CELL);

    // 1. SIGTERM mid-training: a checkpoint at the next step boundary, exit 75.
    let (child, seen) = start_and_wait(cwd.path(), &runs, 2);
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(EXIT_INTERRUPTED)),
        "{}\n{}",
        show(&out),
        seen.join("\n")
    );
    let text = stdout(&out);
    let (checkpoint, stopped_at) = latest(&cell).expect("a checkpoint saved on SIGTERM");
    assert!(stopped_at > 2, "stopped at step {stopped_at}");
    assert!(
        text.contains(&format!(
            "{CELL:<32} stopped: interrupted at step {stopped_at}; resumable from {}",
            checkpoint.display()
        )),
        "{}",
        show(&out)
    );
    assert!(!cell.join("result.json").exists());
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("interrupted.json")).unwrap())
            .unwrap();
    assert_eq!(recorded["step"], stopped_at, "{recorded}");

    // 2. The rerun resumes at that step; SIGKILL it once it has saved a later checkpoint.
    let (mut child, _) = start_and_wait(cwd.path(), &runs, stopped_at + 2);
    let deadline = Instant::now() + Duration::from_secs(300);
    let killed_after = loop {
        if let Some((_, step)) = latest(&cell).filter(|(_, s)| *s > stopped_at) {
            break step;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rerun ended before a later checkpoint"
        );
        assert!(Instant::now() < deadline, "no later checkpoint in time");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: nothing saved on the way out
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{CELL:<32} resumes training at step {stopped_at}")),
        "{}",
        show(&out)
    );
    assert!(!cell.join("result.json").exists());
    let (_, resume_at) = latest(&cell).unwrap();
    assert!(resume_at >= killed_after);

    // 3. The next rerun resumes from the last time-based checkpoint and finishes every cell.
    let out = valley(args(&runs), cwd.path(), &[]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("{CELL:<32} resumes training at step {resume_at}")),
        "{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains("3 cells finished, 0 failed"),
        "{}",
        show(&out)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("train/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["resumed_from"], resume_at, "{summary}");
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["status"], "finished");
    assert!(
        !cell.join("interrupted.json").exists(),
        "a finished cell is not interrupted"
    );
    assert_eq!(
        result["training_steps"], summary["steps"],
        "every step of the cell, counted across the three runs"
    );
}
