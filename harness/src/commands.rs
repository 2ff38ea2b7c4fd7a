//! The `valley` subcommands as library functions that write to a given output, so that the
//! binary stays a thin argument parser and the commands are testable.

use std::{
    io::Write,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use valley_plugin_api::{
    abi_stable::std_types::{ROption, RVec},
    Candidate, PluginInstance, PluginKind, SampleContext, SamplerRole,
};

use crate::{
    error::{Error, Result},
    experiment::Experiment,
    plugins::{CallServices, PluginLibrary, PluginSearch},
    sampling::Prepared,
    sweep::{build_students, Sweep},
    tracking::{session::Session, RunStatus},
};

/// Whether a command's gate passed (exit 0) or not (exit 1). Errors are exit 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Passed,
    /// Something checked failed; the command reported it.
    Failed,
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// `valley plugins list`: every plugin found, in precedence order, and the libraries that failed.
///
/// # Errors
/// Only output errors; a library that fails to load is reported and skipped.
pub fn plugins_list(
    search: &PluginSearch,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome> {
    let discovery = search.discover();
    if json {
        let rows: Vec<_> = discovery
            .plugins
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({
                    "name": p.name(), "kind": p.kind().as_str(), "version": p.manifest.version.as_str(),
                    "path": p.path, "capabilities": p.manifest.capabilities().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "description": p.manifest.description.as_str(), "example_config": serde_json::from_str::<serde_json::Value>(&p.manifest.example_config).unwrap_or_default(),
                    "shadowed": discovery.is_shadowed(i),
                })
            })
            .collect();
        let failures: Vec<String> = discovery.failures.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "plugins": rows, "failures": failures })
        )
        .map_err(out_err)?;
    } else {
        writeln!(
            out,
            "{:<18} {:<10} {:<8} {:<28} PATH",
            "NAME", "KIND", "VERSION", "CAPABILITIES"
        )
        .map_err(out_err)?;
        for (i, p) in discovery.plugins.iter().enumerate() {
            let caps: Vec<String> = p
                .manifest
                .capabilities()
                .iter()
                .map(|c| c.to_string())
                .collect();
            let shadowed = if discovery.is_shadowed(i) {
                "  (shadowed by an earlier one)"
            } else {
                ""
            };
            writeln!(
                out,
                "{:<18} {:<10} {:<8} {:<28} {}{shadowed}",
                p.name(),
                p.kind().as_str(),
                p.manifest.version.as_str(),
                caps.join(", "),
                p.path.display()
            )
            .map_err(out_err)?;
        }
        if discovery.plugins.is_empty() {
            let dirs: Vec<String> = search
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            writeln!(
                out,
                "no plugins found in: {} (run `cargo build --workspace` or set VALLEY_PLUGIN_PATH)",
                dirs.join(", ")
            )
            .map_err(out_err)?;
        }
    }
    for failure in &discovery.failures {
        writeln!(err, "warning: {failure}").map_err(out_err)?;
    }
    Ok(Outcome::Passed)
}

/// `valley plugins check [PATH…] [--kind K]`: loads each library (all discovered ones when no
/// path is given), builds it from its example config, and calls a sampler once on a small
/// synthetic pool, so that a plugin that panics in use is caught here rather than mid-sweep.
/// Each failure is one line; the others are still checked.
///
/// # Errors
/// Only output errors.
pub fn plugins_check(
    search: &PluginSearch,
    paths: &[PathBuf],
    kind: Option<PluginKind>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let paths: Vec<PathBuf> = if paths.is_empty() {
        search.library_files()
    } else {
        paths.to_vec()
    };
    let mut failed = 0;
    for path in &paths {
        match check_one(path, kind) {
            Ok(line) => writeln!(out, "ok    {line}").map_err(out_err)?,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL  {e}").map_err(out_err)?;
            }
        }
    }
    writeln!(out, "{} checked, {} failed", paths.len(), failed).map_err(out_err)?;
    Ok(if failed == 0 {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn check_one(path: &std::path::Path, kind: Option<PluginKind>) -> Result<String> {
    let lib = PluginLibrary::load(path)?;
    if let Some(kind) = kind {
        lib.expect_kind("--kind", kind)?;
    }
    let example: serde_json::Value =
        serde_json::from_str(&lib.manifest.example_config).map_err(|e| Error::Plugin {
            plugin: lib.name().to_string(),
            path: lib.path.clone(),
            during: "has an example config that is not JSON".into(),
            error: valley_plugin_api::PluginError::invalid_config(e),
        })?;
    let mut detail = String::new();
    match lib.instantiate("its example config", &example)? {
        PluginInstance::Sampler(_) => {
            let roles: Vec<SamplerRole> =
                [SamplerRole::Filter, SamplerRole::Subset, SamplerRole::Order]
                    .into_iter()
                    .filter(|r| lib.manifest.has_role(*r))
                    .collect();
            let Some(&role) = roles.first() else {
                return Err(Error::WrongKind {
                    slot: "plugins check".into(),
                    plugin: lib.name().into(),
                    path: lib.path.clone(),
                    expected: "sampler with a filter, subset or order role".into(),
                    found: "sampler with no role".into(),
                });
            };
            let sampler = lib.sampler("plugins check", role, &example)?;
            let pool = smoke_pool();
            let ctx = SampleContext {
                seed: 1,
                target_size: 4,
                arm: "check".into(),
                stage: role.as_str().into(),
            };
            let services = CallServices::new("plugins check", Arc::new(AtomicBool::new(false)));
            let selection = sampler.select(&pool, &ctx, &services)?;
            detail = format!(
                ", selected {} of {} in a smoke call",
                selection.indices.len(),
                pool.len()
            );
        }
        PluginInstance::Trainer(_) | PluginInstance::Evaluator(_) => {}
    }
    Ok(format!(
        "{} ({} {}) {}{detail}",
        lib.name(),
        lib.kind(),
        lib.manifest.version.as_str(),
        path.display()
    ))
}

fn smoke_pool() -> Vec<Candidate> {
    let labels = ["EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD"];
    (0..10u64)
        .map(|i| Candidate {
            index: i,
            id: format!("check-{i}").into(),
            difficulty: labels[i as usize % 5].into(),
            difficulty_rank: (i % 5) as f64,
            correct: ROption::RSome(i % 2 == 0),
            token_count: 100 + i,
            source: "plugins-check".into(),
            tags: RVec::new(),
        })
        .collect()
}

/// How `valley experiment` runs (its flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Print the plan and stop.
    pub dry_run: bool,
    /// Redo finished cells.
    pub force: bool,
    /// Cells at once.
    pub jobs: usize,
    /// Stop each cell after sampling.
    pub sample_only: bool,
}

/// `valley experiment NAME [--dry-run] [--force] [--jobs N] [--sample-only]`: plans the sweep
/// and, unless dry, builds the students and runs every cell — sample, train, evaluate, record —
/// (see [`crate::sweep`]), tracks it (a parent run, a child run per cell; see
/// [`crate::tracking::session`]) and writes the report. Finished cells are skipped unless
/// `force`.
///
/// # Errors
/// Configuration, data and plugin errors found before any work; cell failures are reported and
/// give [`Outcome::Failed`].
pub fn experiment(
    name: &str,
    overrides: &[String],
    options: RunOptions,
    search: &PluginSearch,
    cancel: Arc<AtomicBool>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let RunOptions {
        dry_run,
        force,
        jobs,
        sample_only,
    } = options;
    let exp = Experiment::load(name, overrides)?;
    if dry_run {
        if let Some(source) = crate::data_source::uncached_hub_source(&exp.spec.data)? {
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
    let sample_only = sample_only || exp.spec.trainer.is_none();
    let session = Session::open(exp, out)?;
    let students = match build_students(&prepared, registry, &cancel, sample_only, out) {
        Ok(s) => s,
        Err(e) => {
            session.close(RunStatus::Failed, out)?;
            return Err(e);
        }
    };
    let sweep = Sweep {
        prepared: &prepared,
        plan: &plan,
        session: &session,
        registry,
        students: &students,
        cancel: cancel.clone(),
        force,
        jobs,
        sample_only,
        base_evals: Default::default(),
    };
    let result = sweep.run(out);
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
            match crate::report_commands::write_experiment_report(
                exp,
                Some(&session),
                std::path::Path::new(crate::report_commands::REPORTS_DIR),
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
    Ok(if summary.failed.is_empty() && summary.killed.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed
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
) -> Result<Outcome> {
    let registry = crate::sampling::PluginRegistry::for_experiment(exp, search)?;
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
