//! `valley experiment NAME`: plans the sweep and, unless dry, builds the students and runs every
//! cell — sample, train, evaluate, record — tracks it (a parent run, a child run per cell) and
//! writes the report.

use std::{
    io::Write,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use valley_experiment::{
    build_students, uncached_hub_source, ExecutorKind, Experiment, Observers, PluginRegistry,
    Prepared, Session, Sweep, SweepObserver,
};
use valley_plugin_host::{CallServices, PluginSearch};
use valley_tracking::{server, RunStatus};

use super::{out_err, report, Outcome};
use crate::{cli::ExperimentArgs, progress::SweepPrinter};

/// Runs `valley experiment` with `args.jobs(cores)` cells at once; SIGINT, SIGTERM or SIGUSR1
/// stops the running cells at their next step, each saving a checkpoint, and gives
/// [`Outcome::Interrupted`] (a rerun resumes them).
///
/// # Errors
/// Configuration, data and plugin errors found before any work; cell failures are reported and
/// give [`Outcome::Failed`].
pub fn run(
    args: &ExperimentArgs,
    cores: usize,
    search: &PluginSearch,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Outcome> {
    if args.start_mlflow && !args.dry_run && std::env::var_os("MLFLOW_TRACKING_URI").is_none() {
        let paths = server::ServerPaths::from_env();
        if let Err(e) = server::start(&paths, None, true, out) {
            writeln!(out, "tracking: {e}")?;
        }
    }
    let cancel = crate::interrupt::on_stop_signals();
    if let Some(task) = &args.slurm_task {
        return super::slurm::task(args, task, search, cancel, out);
    }
    if !args.dry_run {
        let exp = Experiment::load(&args.name, &args.all_overrides())?;
        if exp.spec.executor.kind == ExecutorKind::Slurm {
            return super::slurm::submit(args, exp, search, cancel, out);
        }
    }
    Ok(experiment(args, args.jobs(cores), search, cancel, out)?)
}

/// Plans the sweep and, unless dry, builds the students and runs every cell.
fn experiment(
    args: &ExperimentArgs,
    jobs: usize,
    search: &PluginSearch,
    cancel: Arc<AtomicBool>,
    out: &mut (dyn Write + Send),
) -> valley_experiment::Result<Outcome> {
    let (dry_run, force) = (args.dry_run, args.force);
    let exp = Experiment::load(&args.name, &args.all_overrides())?;
    if dry_run {
        if let Some(source) = uncached_hub_source(&exp.spec.data)? {
            return dry_run_without_data(&exp, search, source, out);
        }
    }
    let prepared = Prepared::new(exp, search)?;
    let services = CallServices::new("plan", cancel.clone());
    let plan = prepared.plan(&services)?;
    let exp = &prepared.experiment;
    writeln!(out, "experiment {} ({})", exp.name, exp.file.display()).map_err(out_err)?;
    if !exp.spec.description.trim().is_empty() {
        writeln!(
            out,
            "  {}",
            exp.spec
                .description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        )
        .map_err(out_err)?;
    }
    writeln!(
        out,
        "data: {} — {} records, {} bad rows skipped",
        prepared.data.path.display(),
        plan.records,
        plan.skipped_rows
    )
    .map_err(out_err)?;
    for arm in &exp.arms {
        let stages: Vec<String> = arm
            .stages
            .iter()
            .map(|s| format!("{} {} {}", s.role, s.spec.plugin, s.spec.config))
            .collect();
        writeln!(out, "arm {}: {}", arm.name, stages.join(" -> ")).map_err(out_err)?;
    }
    for (slot, spec) in [
        ("trainer", &exp.spec.trainer),
        ("evaluator", &exp.spec.evaluator),
    ] {
        if let Some(spec) = spec {
            writeln!(out, "{slot}: {} {}", spec.plugin, spec.config).map_err(out_err)?;
        }
    }
    writeln!(
        out,
        "{} cells = {} arms × {} sizes × {} seeds",
        plan.cells.len(),
        exp.arms.len(),
        exp.spec.sweep.sizes.len(),
        exp.spec.sweep.seeds.len()
    )
    .map_err(out_err)?;
    if dry_run {
        writeln!(
            out,
            "{:<32} {:<14} {:>6} {:>6} {:>6}",
            "CELL", "ARM", "SIZE", "SEED", "POOL"
        )
        .map_err(out_err)?;
        for c in &plan.cells {
            writeln!(
                out,
                "{:<32} {:<14} {:>6} {:>6} {:>6}",
                c.key, c.cell.arm, c.cell.size, c.cell.seed, c.pool
            )
            .map_err(out_err)?;
        }
        writeln!(
            out,
            "dry run: nothing written; cells would go under {}",
            exp.runs_dir().display()
        )
        .map_err(out_err)?;
        return Ok(Outcome::Passed);
    }
    let registry = &prepared.registry;
    // Without a trainer there is nothing but sampling to do.
    let sample_only = args.sample_only || exp.spec.trainer.is_none();
    let session = Session::open(exp, out)?;
    let printer = SweepPrinter::new(out);
    let observers = [&session as &dyn SweepObserver, &printer];
    let observer = Observers(&observers);
    let students = match build_students(&prepared, registry, &cancel, sample_only, &observer) {
        Ok(s) => s,
        Err(e) if cancel.load(std::sync::atomic::Ordering::SeqCst) => {
            // Stopped while a student trained: its checkpoint is kept and a rerun resumes it.
            drop(printer);
            session.close(RunStatus::Killed, out)?;
            writeln!(out, "stopped: {e}").map_err(out_err)?;
            return Ok(Outcome::Interrupted);
        }
        Err(e) => {
            drop(printer);
            session.close(RunStatus::Failed, out)?;
            return Err(e);
        }
    };
    let sweep = Sweep {
        prepared: &prepared,
        plan: &plan,
        observer: &observer,
        registry,
        students: &students,
        cancel: cancel.clone(),
        force,
        jobs,
        sample_only,
        base_evals: Default::default(),
    };
    let result = sweep.run();
    drop(printer);
    if let Ok(summary) = &result {
        let skipped = match summary.skipped.len() {
            0 => String::new(),
            n => format!("{n} skipped (finished; --force redoes them), "),
        };
        let killed = match summary.killed.len() {
            0 => String::new(),
            n => format!(", {n} stopped (a rerun resumes them)"),
        };
        if sample_only {
            writeln!(
                out,
                "{} cells written, {skipped}{} base, {} failed{killed}, under {}",
                summary.finished.len(),
                summary.base.len(),
                summary.failed.len(),
                exp.runs_dir().display()
            )
        } else {
            writeln!(
                out,
                "{} cells finished, {skipped}{} failed{killed}, under {}",
                summary.finished.len(),
                summary.failed.len(),
                exp.runs_dir().display()
            )
        }
        .map_err(out_err)?;
        if exp.spec.evaluator.is_some() && !sample_only {
            match report::write_experiment_report(
                exp,
                Some(&session),
                std::path::Path::new(report::REPORTS_DIR),
                out,
            ) {
                Ok(()) => {}
                Err(e) => writeln!(out, "report: {e}").map_err(out_err)?,
            }
        }
    }
    let status = match &result {
        _ if cancel.load(std::sync::atomic::Ordering::SeqCst) => RunStatus::Killed,
        Ok(summary) if summary.failed.is_empty() => RunStatus::Finished,
        _ => RunStatus::Failed,
    };
    session.close(status, out)?;
    let summary = result?;
    let interrupted =
        cancel.load(std::sync::atomic::Ordering::SeqCst) || !summary.killed.is_empty();
    Ok(if !summary.failed.is_empty() {
        Outcome::Failed
    } else if interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Passed
    })
}

/// The dry run of an experiment whose training data is on the hub and not in the cache: checks
/// every plugin it names and lists the cells, and says what a real run would download instead of
/// downloading it (pool sizes need the data, so they are not shown).
fn dry_run_without_data(
    exp: &Experiment,
    search: &PluginSearch,
    (source, url, cache, offline): (String, String, PathBuf, bool),
    out: &mut dyn Write,
) -> valley_experiment::Result<Outcome> {
    let registry = PluginRegistry::for_experiment(exp, search)?;
    for arm in &exp.arms {
        registry.arm_samplers(arm)?;
    }
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(out_err);
    w(
        out,
        format!("experiment {} ({})", exp.name, exp.file.display()),
    )?;
    if !exp.spec.description.trim().is_empty() {
        w(
            out,
            format!(
                "  {}",
                exp.spec
                    .description
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )?;
    }
    w(
        out,
        format!(
            "data: {source} is not in the Hugging Face cache ({})",
            cache.display()
        ),
    )?;
    w(out, format!("  a run would download {url}"))?;
    w(
        out,
        format!(
            "  {}; gated repositories need HF_TOKEN; HF_HOME or HF_HUB_CACHE move the cache",
            if offline {
                "HF_HUB_OFFLINE is set, so the run would stop instead"
            } else {
                "set HF_HUB_OFFLINE=1 to forbid downloads"
            }
        ),
    )?;
    for arm in &exp.arms {
        let stages: Vec<String> = arm
            .stages
            .iter()
            .map(|s| format!("{} {} {}", s.role, s.spec.plugin, s.spec.config))
            .collect();
        w(out, format!("arm {}: {}", arm.name, stages.join(" -> ")))?;
    }
    for (slot, spec) in [
        ("trainer", &exp.spec.trainer),
        ("evaluator", &exp.spec.evaluator),
    ] {
        if let Some(spec) = spec {
            w(out, format!("{slot}: {} {}", spec.plugin, spec.config))?;
        }
    }
    let cells = exp.cells();
    w(
        out,
        format!(
            "{} cells = {} arms × {} sizes × {} seeds (pools unknown until the data is cached)",
            cells.len(),
            exp.arms.len(),
            exp.spec.sweep.sizes.len(),
            exp.spec.sweep.seeds.len()
        ),
    )?;
    w(
        out,
        format!("{:<32} {:<14} {:>6} {:>6}", "CELL", "ARM", "SIZE", "SEED"),
    )?;
    for c in &cells {
        w(
            out,
            format!("{:<32} {:<14} {:>6} {:>6}", c.key(), c.arm, c.size, c.seed),
        )?;
    }
    w(
        out,
        format!(
            "dry run: nothing downloaded or written; cells would go under {}",
            exp.runs_dir().display()
        ),
    )?;
    Ok(Outcome::Passed)
}
