//! `valley plugins check`: load, construct and smoke-test plugin libraries.

use std::{
    io::Write,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use valley_plugin_api::{
    abi_stable::std_types::{ROption, RVec},
    Candidate, PluginInstance, PluginKind, SampleContext, SamplerRole,
};
use valley_plugin_host::{CallServices, HostError, PluginLibrary, PluginSearch};

use super::super::{out_err, Outcome};
use crate::cli::CheckArgs;

/// Loads each library (all discovered ones when no
/// path is given), builds it from its example config, and calls a sampler once on a small
/// synthetic pool, so that a plugin that panics in use is caught here rather than mid-sweep.
/// Each failure is one line; the others are still checked.
///
/// # Errors
/// Only output errors.
pub fn run(
    args: &CheckArgs,
    search: &PluginSearch,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let kind: Option<PluginKind> = args.kind.map(Into::into);
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        search.library_files()
    } else {
        args.paths.clone()
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

fn check_one(path: &std::path::Path, kind: Option<PluginKind>) -> Result<String, HostError> {
    let lib = PluginLibrary::load(path)?;
    if let Some(kind) = kind {
        lib.expect_kind("--kind", kind)?;
    }
    let example: serde_json::Value =
        serde_json::from_str(&lib.manifest.example_config).map_err(|e| HostError::Plugin {
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
                return Err(HostError::WrongKind {
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
