//! `valley eval`: scores a checkpoint with an evaluator plugin (by default `code-exec`) loaded
//! through the real plugin loader, outside any experiment, prints its metrics and writes them to
//! `OUT/metrics.json`.

use std::io::Write;

use serde_json::Value;
use valley_experiment::{config_from_overrides, evaluate, Error};
use valley_plugin_api::Direction;
use valley_plugin_host::{CallServices, PluginSearch};

use super::Outcome;
use crate::cli::EvalArgs;

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::HigherIsBetter => "higher is better",
        Direction::LowerIsBetter => "lower is better",
        Direction::Neutral => "neutral",
    }
}

/// Finds the evaluator, runs it, prints the metrics and writes them to
/// `OUT/metrics.json`.
///
/// # Errors
/// [`Error::PluginNotFound`] for an unknown evaluator; as [`evaluate`].
pub fn run(
    args: &EvalArgs,
    search: &PluginSearch,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let cancel = crate::interrupt::on_stop_signals();
    let lib = search.find_plugin("--evaluator", &args.evaluator)?;
    let config = config_from_overrides(&args.overrides)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.checkpoint.join(format!("eval-{}", args.evaluator)));
    let services = CallServices::new("eval", cancel).with_progress(Box::new(|p| {
        eprintln!("eval: {}/{} {}", p.done, p.total, p.message);
    }));
    let result = evaluate(
        &lib,
        &config,
        &args.checkpoint,
        &args.problems,
        &out_dir,
        &services,
    )?;
    let io = |e| Error::io("<stdout>", e);
    let width = result
        .metrics
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0);
    for m in &result.metrics {
        writeln!(
            out,
            "{:width$}  {:>10.4}  {} ({})",
            m.name.as_str(),
            m.value,
            m.unit.as_str(),
            direction(m.direction)
        )
        .map_err(io)?;
    }
    for a in &result.artifacts {
        writeln!(out, "artifact: {}", a.display()).map_err(io)?;
    }
    let json: Vec<Value> = result
        .metrics
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name.as_str(),
                "value": m.value,
                "unit": m.unit.as_str(),
                "direction": direction(m.direction),
            })
        })
        .collect();
    let path = out_dir.join("metrics.json");
    let text = serde_json::to_string_pretty(&json).expect("metrics serialize");
    std::fs::write(&path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
    writeln!(out, "metrics: {}", path.display()).map_err(io)?;
    Ok(Outcome::Passed)
}
