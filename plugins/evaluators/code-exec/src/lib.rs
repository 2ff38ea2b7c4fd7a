//! `code-exec`: the evaluator plugin. It loads a `valley-lm` checkpoint, its tokenizer and its chat
//! template (the one `candle-sft` saved, ChatML when there is none), builds a prompt per problem
//! ([`prompt`]), generates `n` samples per problem in length-sorted batches
//! with a KV cache ([`valley_lm::generate`]), extracts the last fenced code block of each
//! response and judges it in the host's sandbox with LiveCodeBench's rules ([`score`], through
//! `valley-judge`), and returns pass@k, pass@1 per difficulty and the paper's auxiliary metrics
//! ([`metrics`]). Every sample is written to `generations.jsonl` in the job's output directory,
//! returned as an artifact. Metrics are streamed while it runs and cancellation is honoured
//! between batches.

pub mod metrics;
pub mod prompt;
pub mod run;
pub mod score;

use serde::{Deserialize, Serialize};
use valley_plugin_api::prelude::*;

pub use prompt::PromptStyle;
pub use run::evaluate;

/// The evaluator's configuration (`[evaluator]` of an experiment file, `--set key=value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeExecConfig {
    /// Prompt format: `plain` (the statement as the user turn, as the student is trained) or
    /// `lcb` (LiveCodeBench's format, with its system message), rendered with the checkpoint's
    /// chat template.
    pub prompt: PromptStyle,
    /// Tokens generated at most per sample (the paper's cap is ~32K; the CPU student's ~1K).
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Samples per problem.
    pub n: usize,
    /// The k of pass@k (k > n are left out).
    pub k: Vec<usize>,
    /// Seed of the sampling streams (sample `j` of problem `i` has its own stream).
    pub seed: u64,
    /// Sequences generated at once.
    pub batch_size: usize,
    /// Evaluate the first `limit` problems only (0: all).
    pub limit: usize,
    /// Parallel sandbox runs while judging.
    pub workers: usize,
    /// Timeout of one test, seconds (LiveCodeBench: 6).
    pub test_timeout_s: f64,
    /// Deadline of all tests of one sample, seconds; unset: LiveCodeBench's, (test timeout + 1)
    /// × tests + 5.
    pub overall_timeout_s: Option<f64>,
    /// Python interpreter in the sandbox.
    pub python: String,
    /// Where the model runs: `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda` feature).
    pub device: valley_lm::device::DeviceSetting,
    /// Weights and activations: `f32`, or `bf16` (meant for CUDA).
    pub dtype: valley_lm::device::Precision,
    /// Judge rules: `livecodebench@28fef95` (LiveCodeBench's harness at that commit, quirks
    /// included: what the paper's numbers are) or `strict` (valley's own semantics).
    pub rules: valley_judge::Rules,
    /// Also judge every sample under the other rule set: `rules/<RULES>/pass@1` for both and
    /// `rules/samples_differ` are logged, and each sample row carries the other verdict.
    pub compare_rules: bool,
}

impl Default for CodeExecConfig {
    fn default() -> Self {
        Self {
            prompt: PromptStyle::Plain,
            max_new_tokens: 1024,
            temperature: 0.0,
            top_p: 1.0,
            n: 1,
            k: vec![1],
            seed: 0,
            batch_size: 32,
            limit: 0,
            workers: 2,
            test_timeout_s: 6.0,
            overall_timeout_s: None,
            python: "/usr/bin/python3".into(),
            device: Default::default(),
            dtype: Default::default(),
            rules: Default::default(),
            compare_rules: true,
        }
    }
}

impl CodeExecConfig {
    /// Checks the values serde cannot.
    ///
    /// # Errors
    /// [`PluginError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), PluginError> {
        let bad =
            |field: &str, why: &str| Err(PluginError::invalid_config(format!("`{field}`: {why}")));
        if self.n == 0 {
            return bad("n", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature", "must be a finite number >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "must be in (0, 1]");
        }
        if self.k.contains(&0) {
            return bad("k", "every k must be at least 1");
        }
        if !(self.test_timeout_s > 0.0 && self.overall_timeout_s.is_none_or(|t| t > 0.0)) {
            return bad("test_timeout_s", "timeouts must be positive");
        }
        if self.temperature == 0.0 && self.n > 1 {
            return bad(
                "n",
                "more than one sample needs temperature > 0 (greedy samples are identical)",
            );
        }
        Ok(())
    }
}

/// The evaluator plugin.
pub struct CodeExec(CodeExecConfig);

impl EvaluatorPlugin for CodeExec {
    type Config = CodeExecConfig;
    const NAME: &'static str = "code-exec";
    const DESCRIPTION: &'static str =
        "Generates with the checkpoint and judges the code in the sandbox (LiveCodeBench rules): pass@k, completion and <think> rates.";

    fn new(config: CodeExecConfig) -> Result<Self, PluginError> {
        config.validate()?;
        Ok(Self(config))
    }

    fn evaluate(&self, job: &EvalJob, host: &Host<'_>) -> Result<EvalOutcome, PluginError> {
        run::evaluate(&self.0, job, host)
    }
}

valley_plugin_api::export_evaluator!(CodeExec);
