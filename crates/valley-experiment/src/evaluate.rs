//! Scoring a checkpoint with an evaluator plugin: build the job, call the plugin with the host
//! services (the sandbox included), and return the metrics and artifacts. The sweep calls it for
//! every cell; `valley eval` for one checkpoint outside any experiment.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use valley_plugin_api::{EvalJob, MetricPoint, MetricValue};
use valley_plugin_host::{CallServices, LoadedEvaluator, PluginLibrary};

use crate::error::{Error, Result};

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
/// [`Error::Override`] for a pair without `=` or an empty key.
pub fn config_from_overrides(overrides: &[String]) -> Result<Value> {
    let mut map = Map::new();
    for o in overrides {
        let (key, value) = o.split_once('=').ok_or_else(|| Error::Override {
            layer: format!("--set `{o}`"),
            message: "expected KEY=VALUE".into(),
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Override {
                layer: format!("--set `{o}`"),
                message: "empty key".into(),
            });
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
    // The problems hold the expected outputs: no program the evaluator has judged may read them.
    valley_sandbox::service::hide(problems).map_err(|e| Error::EvalSetVisible {
        path: problems.to_path_buf(),
        why: e,
    })?;
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
