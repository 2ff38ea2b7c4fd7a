//! `valley judge`: scores generations against problems in the sandbox and prints pass@k overall
//! and by difficulty; per-sample verdicts go to a JSONL file.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use valley_data::judge_input::{read_generations, read_problems};
use valley_experiment::{Error, Result};
use valley_judge::{
    batch::{judge_all, JudgeError, Report},
    JudgeConfig, Problem,
};
use valley_sandbox::{Sandbox, SandboxConfig, SandboxError};

use super::Outcome;
use crate::cli::JudgeArgs;

/// An I/O error while doing `what`.
pub fn other(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// The host's sandbox (this executable as its supervisor) with `workers` slots.
///
/// # Errors
/// When the sandbox cannot be set up, or lacks a required isolation layer.
pub fn sandbox(workers: usize, allow_weaker: bool) -> std::result::Result<Sandbox, SandboxError> {
    let mut config = SandboxConfig::from_current_exe()?;
    config.slots = workers;
    config.allow_weaker_isolation = allow_weaker;
    Sandbox::new(config)
}

/// One worker per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Scores generations; prints pass@k overall and by difficulty; writes per-sample verdicts.
///
/// # Errors
/// Bad input files (naming file, line and field), a generation for an unknown problem, a sandbox
/// that cannot run (or lacks required isolation), an unwritable verdicts file.
pub fn run(args: &JudgeArgs, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let problems = read_problems(&args.problems)?;
    let generations = read_generations(&args.generations)?;
    let known: std::collections::HashSet<&str> = problems.iter().map(Problem::id).collect();
    if let Some((id, _)) = generations
        .iter()
        .find(|(id, _)| !known.contains(id.as_str()))
    {
        return Err(JudgeError::UnknownId {
            id: id.clone(),
            generations: args.generations.clone(),
            problems: args.problems.clone(),
        }
        .into());
    }
    let workers = args.workers.unwrap_or_else(default_workers).max(1);
    let sb = sandbox(workers, args.allow_weaker_isolation)?;
    // The problems hold the expected outputs: refuse to run where a program could read them.
    for path in [Some(args.problems.as_path()), args.problems.parent()]
        .into_iter()
        .flatten()
        .filter(|p| !p.as_os_str().is_empty())
    {
        sb.hide(path)?;
    }
    let config = JudgeConfig {
        python: args.python.clone().unwrap_or(JudgeConfig::default().python),
        test_timeout: Duration::from_secs_f64(args.timeout),
        rules: args.rules,
        compare_rules: !args.no_compare,
        ..JudgeConfig::default()
    };
    let started = Instant::now();
    let report = judge_all(&sb, &config, &problems, &generations, &args.k, workers)?;
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

/// The isolation the samples were judged under: one value when they all agree (the usual case),
/// else each value with its count.
fn isolation_line(report: &Report) -> String {
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for r in &report.rows {
        *seen.entry(r.judged.isolation.as_str()).or_insert(0) += 1;
    }
    match seen.len() {
        0 => "no samples".into(),
        1 => seen
            .keys()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        _ => seen
            .iter()
            .map(|(i, n)| format!("{i} ({n} samples)"))
            .collect::<Vec<_>>()
            .join("; "),
    }
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
    writeln!(out, "isolation: {}", isolation_line(report))?;
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
    if let Some(c) = &report.rules {
        writeln!(
            out,
            "rules: {} pass@1 {:.4}; {} pass@1 {:.4}; {} of {} samples differ \
             ({} pass only under {}, {} only under {}); verdicts differ on {}",
            c.rules,
            c.pass_at_1,
            c.other,
            c.other_pass_at_1,
            c.differ(),
            c.samples,
            c.only_rules,
            c.rules,
            c.only_other,
            c.other,
            c.verdicts_differ
        )?;
    } else if let Some(r) = report.rows.first() {
        writeln!(out, "rules: {}", r.judged.rules)?;
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
