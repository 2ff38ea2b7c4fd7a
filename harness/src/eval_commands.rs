//! `valley eval`: scores a checkpoint with an evaluator plugin (by default `code-exec`) loaded
//! through the real plugin loader, outside any experiment, and prints its metrics. The call path
//! is [`evaluate`], which the experiment runner reuses: build the job, call the plugin with the
//! host services (the sandbox included), and return the metrics and artifacts.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
};

use serde_json::{Map, Value};
use valley_plugin_api::{Direction, EvalJob, MetricPoint, MetricValue};

use crate::{
    commands::Outcome,
    plugins::{CallServices, LoadedEvaluator, PluginLibrary, PluginSearch},
    Error, Result,
};

/// Options of `valley eval`.
#[derive(Debug, Clone)]
pub struct EvalArgs {
    /// The checkpoint directory.
    pub checkpoint: PathBuf,
    /// The evaluation set (JSONL).
    pub problems: PathBuf,
    /// The evaluator plugin's name.
    pub evaluator: String,
    /// `key=value` overrides of the evaluator's configuration.
    pub overrides: Vec<String>,
    /// Output directory (default: `CHECKPOINT/eval-EVALUATOR`).
    pub out: Option<PathBuf>,
}

/// What an evaluation returned.
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// Final metrics with units and directions.
    pub metrics: Vec<MetricValue>,
    /// Files the evaluator wrote (generations and verdicts).
    pub artifacts: Vec<PathBuf>,
    /// Metric points streamed while it ran (collected unless `services` streams them elsewhere).
    pub streamed: Vec<MetricPoint>,
}

/// Builds an evaluator configuration from `key=value` pairs: each value is read as JSON when
/// it parses (`0.7`, `[1,5]`, `true`), else as a string (`prompt=lcb`).
///
/// # Errors
/// [`Error::Config`] for a pair without `=` or an empty key.
pub fn config_from_overrides(overrides: &[String]) -> Result<Value> {
    let mut map = Map::new();
    for o in overrides {
        let (key, value) = o
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--set `{o}`: expected KEY=VALUE")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Config(format!("--set `{o}`: empty key")));
        }
        let value = serde_json::from_str(value.trim()).unwrap_or(Value::String(value.to_string()));
        map.insert(key.to_string(), value);
    }
    Ok(Value::Object(map))
}

/// Runs an evaluator plugin on a checkpoint: the call path shared by `valley eval` and the
/// experiment runner. The output directory is created.
///
/// # Errors
/// [`Error::WrongKind`] for a plugin that is not an evaluator, [`Error::Plugin`] when it rejects
/// its config or fails (naming the plugin), I/O errors on `out`.
pub fn evaluate(
    lib: &PluginLibrary,
    config: &Value,
    checkpoint: &Path,
    problems: &Path,
    out: &Path,
    services: &CallServices,
) -> Result<EvalResult> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out.display().to_string(), e))?;
    let evaluator = LoadedEvaluator::new(lib.clone(), "evaluator", config)?;
    let job = EvalJob {
        config_json: config.to_string().into(),
        checkpoint_dir: checkpoint.display().to_string().into(),
        eval_set: problems.display().to_string().into(),
        output_dir: out.display().to_string().into(),
    };
    let outcome = evaluator.evaluate(&job, services)?;
    Ok(EvalResult {
        metrics: outcome.metrics.into_iter().collect(),
        artifacts: outcome
            .artifacts
            .iter()
            .map(|a| PathBuf::from(a.as_str()))
            .collect(),
        streamed: services.take_metrics(),
    })
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::HigherIsBetter => "higher is better",
        Direction::LowerIsBetter => "lower is better",
        Direction::Neutral => "neutral",
    }
}

/// `valley eval`: finds the evaluator, runs it, prints the metrics and writes them to
/// `OUT/metrics.json`.
///
/// # Errors
/// [`Error::PluginNotFound`] for an unknown evaluator; as [`evaluate`].
pub fn eval(
    args: &EvalArgs,
    search: &PluginSearch,
    cancel: Arc<AtomicBool>,
    out: &mut impl Write,
) -> Result<Outcome> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_as_json_or_string() {
        let v = config_from_overrides(&[
            "temperature=0.7".into(),
            "k=[1,5]".into(),
            "prompt=lcb".into(),
        ])
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"temperature": 0.7, "k": [1, 5], "prompt": "lcb"})
        );
        let err = config_from_overrides(&["nokey".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected KEY=VALUE"), "{err}");
    }
}
