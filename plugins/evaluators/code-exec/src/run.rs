//! One evaluation job from start to end: read the problems, load the checkpoint, generate in
//! batches, judge each batch as it comes, stream running metrics and progress, write
//! `generations.jsonl`, and return the final metrics.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Serialize;
use valley_judge::{batch::OtherRules, parse_problems, JudgeConfig, Judged, Problem};
use valley_lm::{
    chat_template::ChatTemplate,
    checkpoint::load_for_inference,
    generate::{generate_batch, plan_batches, GenerationConfig, SeqRng},
    tokenizer::Tokenizer,
    Decoder,
};
use valley_plugin_api::prelude::*;

use crate::{
    metrics::{compute, rules_metrics, SampleFacts},
    prompt::prompt_with,
    score::{has_code_block, score, HostRunner},
    CodeExecConfig,
};

/// One row of `generations.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationRow {
    /// Problem id.
    pub id: String,
    /// Sample index within the problem.
    pub sample: usize,
    /// The problem's difficulty label.
    pub difficulty: String,
    /// The prompt as the model saw it.
    pub prompt: String,
    /// The response (without the end-of-turn token).
    pub response: String,
    /// The code that was judged (the last fenced block, or the raw response without one).
    pub code: String,
    /// Stopped at end of turn before the token cap.
    pub finished: bool,
    /// Tokens generated.
    pub response_tokens: usize,
    /// Every test passed.
    pub passed: bool,
    /// The verdict, tests passed and total, the failing test and why.
    #[serde(flatten)]
    pub judged: Judged,
    /// The verdict under the other rule set (`compare_rules`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<OtherRules>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::failed(format!("code-exec: {what}: {e}"))
}

/// Reads an evaluation set (LiveCodeBench- or HumanEval-shaped JSONL).
///
/// # Errors
/// [`PluginError::Failed`] naming the file and line of the first bad row.
pub fn read_problems(path: &Path) -> Result<Vec<Problem>, PluginError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PluginError::failed(format!("code-exec: {}: {e}", path.display())))?;
    parse_problems(&text).map_err(|e| {
        PluginError::failed(format!(
            "code-exec: {}:{}: {}",
            path.display(),
            e.line,
            e.message
        ))
    })
}

/// Runs the job.
///
/// # Errors
/// A checkpoint or evaluation set that cannot be read, the sandbox failing, cancellation.
pub fn evaluate(
    config: &CodeExecConfig,
    job: &EvalJob,
    host: &Host<'_>,
) -> Result<EvalOutcome, PluginError> {
    let checkpoint = Path::new(job.checkpoint_dir.as_str());
    let out_dir = PathBuf::from(job.output_dir.as_str());
    let mut problems = read_problems(Path::new(job.eval_set.as_str()))?;
    if config.limit > 0 {
        problems.truncate(config.limit);
    }
    let device = config.device.open().map_err(PluginError::invalid_config)?;
    let dtype = config.dtype.dtype();
    let loaded = load_for_inference(checkpoint, dtype, &device)
        .map_err(|e| failed("loading the checkpoint", e))?;
    if !loaded.extra.is_empty() {
        eprintln!(
            "code-exec: {} tensors of {} are not used by the model and were not loaded: {}",
            loaded.extra.len(),
            checkpoint.display(),
            loaded.extra.join(", ")
        );
    }
    let model_cfg = loaded.config;
    let model =
        Decoder::new(&model_cfg, &loaded.weights).map_err(|e| failed("building the model", e))?;
    let tok = Tokenizer::from_dir(checkpoint, model_cfg.vocab_size)
        .map_err(|e| failed("loading the tokenizer", e))?;
    if tok.vocab_size() > model_cfg.vocab_size {
        return Err(failed(
            "checkpoint",
            format!(
                "the tokenizer has {} tokens, the model {}",
                tok.vocab_size(),
                model_cfg.vocab_size
            ),
        ));
    }
    // The template the checkpoint was trained with (candle-sft saves it), ChatML without one.
    let template =
        ChatTemplate::from_dir(checkpoint).map_err(|e| failed("loading the chat template", e))?;
    let mut stop_tokens: Vec<u32> = ["<|im_end|>", "<|endoftext|>"]
        .into_iter()
        .chain(template.eos_token())
        .filter_map(|s| tok.special(s))
        .collect();
    stop_tokens.sort_unstable();
    stop_tokens.dedup();
    let gen = GenerationConfig {
        max_new_tokens: config.max_new_tokens,
        temperature: config.temperature,
        top_p: config.top_p,
        stop_tokens,
    };
    let judge_config = JudgeConfig {
        python: config.python.clone(),
        test_timeout: Duration::from_secs_f64(config.test_timeout_s),
        overall_timeout: config.overall_timeout_s.map(Duration::from_secs_f64),
        rules: config.rules,
        compare_rules: config.compare_rules,
        ..JudgeConfig::default()
    };
    let prompts: Vec<String> = problems
        .iter()
        .map(|p| prompt_with(&template, p, config.prompt))
        .collect::<Result<_, _>>()
        .map_err(|e| failed("rendering the prompt", e))?;
    let encoded: Vec<Vec<u32>> = prompts.iter().map(|p| tok.encode(p)).collect();
    // Sequence s is sample s % n of problem s / n.
    let n = config.n;
    let total = problems.len() * n;
    let lengths: Vec<usize> = (0..total).map(|s| encoded[s / n].len()).collect();
    let runner = HostRunner(host);
    let mut rows: Vec<GenerationRow> = Vec::with_capacity(total);
    let mut facts: Vec<SampleFacts> = Vec::with_capacity(total);
    let (mut gen_tokens, mut gen_time) = (0usize, Duration::ZERO);
    // The isolation the samples were judged under (each row records its own).
    let mut isolations: Vec<String> = Vec::new();
    // (problem, solved under `rules`, solved under the other rule set) per compared sample.
    let mut compared: Vec<(usize, bool, bool)> = Vec::new();
    host.progress(0, total as u64, "generating");
    for batch in plan_batches(&lengths, config.batch_size) {
        host.check_cancelled()?;
        let batch_prompts: Vec<Vec<u32>> = batch.iter().map(|&s| encoded[s / n].clone()).collect();
        let mut rngs: Vec<SeqRng> = batch
            .iter()
            .map(|&s| SeqRng::new(config.seed, s as u64))
            .collect();
        let started = Instant::now();
        let generations = generate_batch(&model, &batch_prompts, &mut rngs, &gen)
            .map_err(|e| failed("generation", e))?;
        gen_time += started.elapsed();
        gen_tokens += generations.iter().map(|g| g.tokens.len()).sum::<usize>();
        host.check_cancelled()?;
        let responses: Vec<String> = generations.iter().map(|g| tok.decode(&g.tokens)).collect();
        let samples: Vec<(&Problem, &str)> = batch
            .iter()
            .zip(&responses)
            .map(|(&s, r)| (&problems[s / n], r.as_str()))
            .collect();
        let verdicts = score(&runner, &judge_config, &samples, config.workers)?;
        for (judged, _) in &verdicts {
            if !isolations.contains(&judged.isolation) {
                isolations.push(judged.isolation.clone());
            }
        }
        for (((&s, g), response), (judged, other)) in
            batch.iter().zip(&generations).zip(responses).zip(verdicts)
        {
            let problem = &problems[s / n];
            let passed = judged.verdict == valley_judge::Verdict::Pass;
            let other = other.as_ref().map(OtherRules::of);
            if let Some(o) = &other {
                compared.push((s / n, passed, o.passed));
            }
            facts.push(SampleFacts {
                problem: s / n,
                difficulty: problem.difficulty().to_string(),
                passed,
                finished: g.finished,
                thinks: response.starts_with("<think>"),
                code_block: has_code_block(&response),
                response_tokens: g.tokens.len(),
            });
            rows.push(GenerationRow {
                id: problem.id().to_string(),
                sample: s % n,
                difficulty: problem.difficulty().to_string(),
                prompt: prompts[s / n].clone(),
                code: valley_judge::extract_code(&response).to_string(),
                response,
                finished: g.finished,
                response_tokens: g.tokens.len(),
                passed,
                judged,
                other,
            });
        }
        let done = rows.len() as u64;
        let solved = facts.iter().filter(|f| f.passed).count() as f64 / facts.len() as f64;
        let finished = facts.iter().filter(|f| f.finished).count() as f64 / facts.len() as f64;
        let tps = gen_tokens as f64 / gen_time.as_secs_f64().max(1e-9);
        host.log_all(&[
            MetricPoint::new("running/solved_fraction", solved, done)
                .unit("fraction")
                .higher_is_better(),
            MetricPoint::new("running/completion_rate", finished, done)
                .unit("fraction")
                .higher_is_better(),
            MetricPoint::new("generation/tokens_per_s", tps, done).unit("tokens/s"),
        ]);
        host.progress(
            done,
            total as u64,
            format!(
                "{done}/{total} samples, {:.0}% solved, {tps:.0} tok/s, isolation {}",
                solved * 100.0,
                isolations.join(" / ")
            ),
        );
    }
    rows.sort_by(|a, b| {
        let ia = problems.iter().position(|p| p.id() == a.id);
        let ib = problems.iter().position(|p| p.id() == b.id);
        ia.cmp(&ib).then(a.sample.cmp(&b.sample))
    });
    std::fs::create_dir_all(&out_dir).map_err(|e| failed(&out_dir.display().to_string(), e))?;
    let path = out_dir.join("generations.jsonl");
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for r in &rows {
            serde_json::to_writer(&mut f, r)?;
            f.write_all(b"\n")?;
        }
        f.flush()
    };
    write().map_err(|e| failed(&path.display().to_string(), e))?;
    let mut metrics = compute(&facts, &config.k);
    metrics.extend(rules_metrics(
        config.rules.name(),
        config.rules.other().name(),
        &compared,
    ));
    metrics.push(MetricValue {
        name: "generation_tokens_per_s".into(),
        value: gen_tokens as f64 / gen_time.as_secs_f64().max(1e-9),
        unit: "tokens/s".into(),
        direction: Direction::Neutral,
    });
    Ok(EvalOutcome {
        metrics: metrics.into(),
        artifacts: vec![path.display().to_string().into()].into(),
    })
}
