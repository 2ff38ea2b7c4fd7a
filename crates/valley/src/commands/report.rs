//! `valley report NAME`: the report of an experiment from its runs, written to
//! `reports/out/NAME.md` with its plots, and logged as artifacts of the experiment's parent run
//! when called at the end of `valley experiment`.
//!
//! The runs are read from the experiment's run directory (`runs/NAME/<cell>/`): `result.json`
//! of a finished cell (the same values that were logged to MLflow), `error.txt` of a failed one;
//! or, with `--from-mlflow` (or when there is no run directory, on another machine), from the
//! tracking server: the newest finished child run of each cell and its `result.json` artifact.

use std::{collections::BTreeSet, io::Write, path::Path};

use valley_reports::{CellRecord, ExperimentRecord, RunRecords};

use anyhow::{anyhow, Result};
use valley_experiment::{Error, Experiment, Session};
use valley_tracking::{target_from_env, MlflowClient, Run, Target};

use super::Outcome;
use crate::cli::ReportArgs;

/// `valley report NAME` (from its runs) or `valley report --from-json FILE` (from run records).
///
/// # Errors
/// As [`report`], and a records file that does not parse (naming the file and field).
pub fn run(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    if let Some(file) = &args.from_json {
        for path in valley_reports::render_json_file(file, &args.out)? {
            writeln!(out, "wrote {}", path.display())?;
        }
    } else if let Some(name) = &args.name {
        report(name, &[], args.from_mlflow, &args.out, out)?;
    }
    Ok(Outcome::Passed)
}

/// Where reports go unless told otherwise.
pub const REPORTS_DIR: &str = "reports/out";

/// The report's description of an experiment: name, question, arm order, primary metric and
/// the paper table it mirrors (`[report]` in the experiment file).
pub fn experiment_record(exp: &Experiment) -> ExperimentRecord {
    let mut record = ExperimentRecord::new(
        exp.name.clone(),
        exp.spec
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    );
    record.arms = exp.arms.iter().map(|a| a.name.clone()).collect();
    if let Some(section) = &exp.spec.report {
        if let Some(metric) = &section.primary_metric {
            record.primary_metric = metric.clone();
        }
        record.mirrors = section.mirrors.clone();
    }
    record
}

/// Reads the cells of an experiment's run directory: finished cells from `result.json`, failed
/// ones from `error.txt` (with the cell's arm, size and seed from `config.json`). Cells that
/// never ran (no `config.json`) or were stopped are left out, and so are cells that are not in
/// `keys` when it is given (directories left by an earlier version of the experiment file).
///
/// # Errors
/// an error when the run directory does not exist; a `result.json` that does not parse
/// is an error naming the file.
pub fn read_cells(runs_dir: &Path, keys: Option<&BTreeSet<String>>) -> Result<Vec<CellRecord>> {
    let entries = std::fs::read_dir(runs_dir).map_err(|e| {
        anyhow!(
            "{}: {e} — run the experiment first (`valley experiment NAME`)",
            runs_dir.display()
        )
    })?;
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.json").is_file())
        .filter(|p| {
            keys.is_none_or(|keys| {
                p.file_name()
                    .is_some_and(|n| keys.contains(n.to_string_lossy().as_ref()))
            })
        })
        .collect();
    dirs.sort();
    let mut cells = Vec::new();
    for dir in dirs {
        let result = dir.join("result.json");
        if result.is_file() {
            let text = std::fs::read_to_string(&result).map_err(|e| Error::io(&result, e))?;
            let cell: CellRecord =
                serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", result.display()))?;
            cells.push(cell);
            continue;
        }
        let error = dir.join("error.txt");
        if let Ok(message) = std::fs::read_to_string(&error) {
            let config_file = dir.join("config.json");
            let text =
                std::fs::read_to_string(&config_file).map_err(|e| Error::io(&config_file, e))?;
            let config: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{}: {e}", config_file.display()))?;
            let cell = &config["cell"];
            cells.push(CellRecord::failed(
                cell["arm"].as_str().unwrap_or("?"),
                cell["size"].as_u64().unwrap_or(0),
                cell["seed"].as_u64().unwrap_or(0),
                message.trim(),
            ));
        }
    }
    Ok(cells)
}

/// Renders the report of `exp` from its run directory into `dir` ([`REPORTS_DIR`] by default), writes the records
/// it was made from beside it (`NAME.records.json`, renderable with `valley report --from-json`),
/// logs everything as artifacts of the parent run when a session is given, and prints the paths
/// and a headline line.
///
/// # Errors
/// As [`read_cells`], and when the report cannot be written.
pub fn write_experiment_report(
    exp: &Experiment,
    session: Option<&Session>,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let cells = read_cells(&exp.runs_dir(), Some(&cell_keys(exp)))?;
    write_report_of(exp, cells, session, dir, out)
}

fn write_report_of(
    exp: &Experiment,
    cells: Vec<CellRecord>,
    session: Option<&Session>,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let record = experiment_record(exp);
    let report = valley_reports::render(&record, &cells);
    let written =
        valley_reports::write_report(&report, &exp.name, dir).map_err(|e| anyhow!("{}", e))?;
    let records_file = dir.join(format!("{}.records.json", exp.name));
    let records = RunRecords {
        experiment: record.clone(),
        cells: cells.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&records).unwrap_or_default();
    bytes.push(b'\n');
    std::fs::write(&records_file, bytes).map_err(|e| Error::io(&records_file, e))?;
    if let Some(session) = session {
        for path in written.iter().chain(std::iter::once(&records_file)) {
            let name = path
                .file_name()
                .map(|n| format!("report/{}", n.to_string_lossy()))
                .unwrap_or_default();
            session
                .tracker()
                .log_artifact(session.parent(), path, &name)?;
        }
    }
    let _ = writeln!(out, "report: {}", written[0].display());
    let _ = writeln!(out, "{}", headline(&record, &cells));
    Ok(())
}

/// One line of headline numbers: the primary metric's mean over seeds per arm at the largest
/// size, beside the base model's.
pub fn headline(record: &ExperimentRecord, cells: &[CellRecord]) -> String {
    let metric = &record.primary_metric;
    let mean_of = |arm: Option<&str>, size: u64| -> Option<(f64, usize)> {
        let values: Vec<f64> = cells
            .iter()
            .filter(|c| c.size == size && arm.is_none_or(|a| c.arm == a))
            .filter_map(|c| c.metrics.get(metric).map(|m| m.value))
            .collect();
        (!values.is_empty()).then(|| {
            (
                values.iter().sum::<f64>() / values.len() as f64,
                values.len(),
            )
        })
    };
    // One base when every arm starts from the same model; else each arm shows its own.
    let bases: Vec<f64> = record
        .arms
        .iter()
        .filter_map(|a| mean_of(Some(a), 0).map(|(m, _)| m))
        .collect();
    let shared_base = bases.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-12);
    let mut parts = Vec::new();
    if shared_base {
        if let Some((base, _)) = mean_of(None, 0) {
            parts.push(format!("base {base:.3}"));
        }
    }
    let Some(largest) = cells.iter().filter(|c| c.size > 0).map(|c| c.size).max() else {
        if parts.is_empty() {
            return format!("headline: {metric}: no finished cell yet");
        }
        return format!("headline: {metric}: {}", parts.join(", "));
    };
    for arm in &record.arms {
        if let Some((mean, n)) = mean_of(Some(arm), largest) {
            match mean_of(Some(arm), 0).filter(|_| !shared_base) {
                Some((base, _)) => parts.push(format!("{arm} {mean:.3} (n={n}, base {base:.3})")),
                None => parts.push(format!("{arm} {mean:.3} (n={n})")),
            }
        }
    }
    format!(
        "headline: {metric} at size {largest}, mean over seeds: {}",
        parts.join(", ")
    )
}

/// The keys of the cells the experiment file defines now.
pub fn cell_keys(exp: &Experiment) -> BTreeSet<String> {
    exp.cells().iter().map(|c| c.key()).collect()
}

/// The cells of an experiment as MLflow holds them: for each cell key (of `keys` when given:
/// runs of cells the experiment file no longer defines are left out), the newest finished child
/// run (its `result.json` artifact), else the newest failed one (its `valley.error` tag).
///
/// # Errors
/// Transport and API errors; a finished run without a readable `result.json`.
pub fn read_cells_from_mlflow(
    client: &MlflowClient,
    experiment: &str,
    keys: Option<&BTreeSet<String>>,
) -> Result<Vec<CellRecord>> {
    let id = client.experiment_id(experiment)?.ok_or_else(|| {
        anyhow!(
            "MLflow at {} has no experiment `{experiment}`",
            client.uri()
        )
    })?;
    let runs = client.search_runs(std::slice::from_ref(&id), "tags.`valley.kind` = 'cell'")?;
    let mut newest: std::collections::BTreeMap<String, Run> = std::collections::BTreeMap::new();
    let rank = |r: &Run| (r.info.status == "FINISHED", r.info.start_time.unwrap_or(0));
    for run in runs {
        if !matches!(run.info.status.as_str(), "FINISHED" | "FAILED") {
            continue;
        }
        let Some(key) = run.tag("valley.cell_key").map(str::to_owned) else {
            continue;
        };
        if keys.is_some_and(|keys| !keys.contains(&key)) {
            continue;
        }
        if newest.get(&key).is_none_or(|old| rank(&run) > rank(old)) {
            newest.insert(key, run);
        }
    }
    let mut cells = Vec::new();
    for (key, run) in newest {
        if run.info.status == "FINISHED" {
            let bytes = client.download_artifact(&id, &run.info.run_id, "result.json")?;
            let cell: CellRecord = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("run {} ({key}): result.json: {e}", run.info.run_id))?;
            cells.push(cell);
        } else {
            let number = |t: &str| run.tag(t).and_then(|v| v.parse().ok()).unwrap_or(0);
            cells.push(CellRecord::failed(
                run.tag("valley.arm").unwrap_or("?"),
                number("valley.size"),
                number("valley.seed"),
                run.tag("valley.error").unwrap_or("failed"),
            ));
        }
    }
    Ok(cells)
}

/// `valley report NAME`: the report of an experiment from its run directory, or from MLflow
/// (`from_mlflow`, or when the run directory does not exist).
///
/// # Errors
/// As [`write_experiment_report`], and when the experiment file does not load or the server
/// cannot be read.
pub fn report(
    name: &str,
    overrides: &[String],
    from_mlflow: bool,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let exp = Experiment::load(name, overrides)?;
    if !from_mlflow && exp.runs_dir().is_dir() {
        let _ = writeln!(out, "runs: {}", exp.runs_dir().display());
        return write_experiment_report(&exp, None, dir, out);
    }
    let uri = match target_from_env(&exp.spec.tracking) {
        Target::Mlflow(uri) => uri,
        Target::Local(why) => {
            return Err(anyhow!(
                "no runs under {} and no MLflow to read them from ({why})",
                exp.runs_dir().display()
            ))
        }
    };
    let client = MlflowClient::new(&uri)?;
    let name = exp
        .spec
        .tracking
        .experiment_name
        .clone()
        .unwrap_or_else(|| exp.name.clone());
    let cells = read_cells_from_mlflow(&client, &name, Some(&cell_keys(&exp)))?;
    let _ = writeln!(out, "runs: MLflow at {uri}, experiment `{name}`");
    write_report_of(&exp, cells, None, dir, out)
}

#[cfg(test)]
mod tests {
    use valley_reports::{Direction, Metric};

    use super::*;

    #[test]
    fn the_headline_gives_each_arms_mean_at_the_largest_size_beside_the_base() {
        let mut exp = ExperimentRecord::new("e", "");
        exp.arms = vec!["random".into(), "easy-first".into()];
        assert_eq!(
            headline(&exp, &[]),
            "headline: pass@1: no finished cell yet"
        );
        let cell = |arm: &str, size, seed, v| {
            CellRecord::finished(arm, size, seed).with_metric(
                "pass@1",
                Metric::new(v, "fraction", Direction::HigherIsBetter),
            )
        };
        let cells = [
            cell("random", 0, 1, 0.15),
            cell("random", 10, 1, 0.1),
            cell("random", 20, 1, 0.2),
            cell("random", 20, 2, 0.3),
            cell("easy-first", 20, 1, 0.4),
        ];
        assert_eq!(
            headline(&exp, &cells),
            "headline: pass@1 at size 20, mean over seeds: base 0.150, random 0.250 (n=2), easy-first 0.400 (n=1)"
        );
        // Arms that start from different models show their own base, not a mean of the two.
        let cells = [
            cell("random", 0, 1, 0.15),
            cell("random", 20, 1, 0.2),
            cell("easy-first", 0, 1, 0.01),
            cell("easy-first", 20, 1, 0.4),
        ];
        assert_eq!(
            headline(&exp, &cells),
            "headline: pass@1 at size 20, mean over seeds: random 0.200 (n=1, base 0.150), easy-first 0.400 (n=1, base 0.010)"
        );
    }

    #[test]
    fn cells_the_experiment_no_longer_defines_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        for (key, arm, size) in [
            ("random-n500-s1", "random", 500),
            ("random-n200-s1", "random", 200),
        ] {
            let cell = dir.path().join(key);
            std::fs::create_dir(&cell).unwrap();
            std::fs::write(cell.join("config.json"), "{}").unwrap();
            let record = CellRecord::finished(arm, size, 1);
            std::fs::write(
                cell.join("result.json"),
                serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
        }
        assert_eq!(read_cells(dir.path(), None).unwrap().len(), 2);
        let keys = BTreeSet::from(["random-n500-s1".to_string()]);
        let kept = read_cells(dir.path(), Some(&keys)).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].size, 500);
    }
}
