//! `valley sync`: sends what the local run directories hold and a server has not acknowledged.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use crate::{
    local::LocalStore,
    mlflow::MlflowClient,
    replay::{pending, sync_store},
    target::{target_from_env, Target, TrackingSection},
    Result, TrackingError,
};

/// `valley sync [EXPERIMENT]`: sends the backlog of the experiment's runs (every experiment's
/// under `runs_dir` when none is named) to the server at `uri` (else `MLFLOW_TRACKING_URI`, else
/// the local server). Returns whether everything arrived.
///
/// # Errors
/// When no server is configured, or local files cannot be read.
pub fn sync_command(
    runs_dir: &Path,
    experiment: Option<&str>,
    uri: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool> {
    let section = TrackingSection {
        enabled: true,
        uri: uri.map(String::from),
        experiment_name: None,
    };
    let uri = match target_from_env(&section) {
        Target::Mlflow(u) => u,
        Target::Local(why) => return Err(TrackingError::Server(why)),
    };
    let client = MlflowClient::new(&uri)?;
    let stores: Vec<(String, PathBuf)> = match experiment {
        Some(name) => vec![(name.to_string(), runs_dir.join(name).join("tracking"))],
        None => {
            let mut all = Vec::new();
            if let Ok(entries) = std::fs::read_dir(runs_dir) {
                for e in entries.flatten() {
                    let t = e.path().join("tracking");
                    if t.is_dir() {
                        all.push((e.file_name().to_string_lossy().into_owned(), t));
                    }
                }
            }
            all.sort();
            all
        }
    };
    if stores.is_empty() || stores.iter().all(|(_, p)| !p.is_dir()) {
        let _ = writeln!(out, "nothing to sync under {}", runs_dir.display());
        return Ok(true);
    }
    let mut all_ok = true;
    for (name, root) in stores {
        let store = LocalStore::new(&root);
        match sync_store(&store, &client) {
            Ok(report) => {
                for r in &report.runs {
                    let _ = writeln!(
                        out,
                        "{name}/{}: {} events sent ({} metric points){}",
                        r.run,
                        r.events,
                        r.metrics,
                        if r.created { ", run created" } else { "" }
                    );
                }
                for (run, e) in &report.refused {
                    all_ok = false;
                    let _ = writeln!(out, "{name}/{run}: REFUSED: {e}");
                }
                let runs = store.runs()?;
                let left = runs
                    .iter()
                    .filter(|r| pending(&store, r, &uri).unwrap_or(true))
                    .count();
                let _ = writeln!(
                    out,
                    "{name}: {} runs, {} events and {} metric points sent now, {left} runs pending, to {uri}",
                    runs.len(),
                    report.events(),
                    report.metrics()
                );
                all_ok &= left == 0;
            }
            Err(e) => {
                let _ = writeln!(out, "{name}: {e}");
                all_ok = false;
            }
        }
    }
    Ok(all_ok)
}
