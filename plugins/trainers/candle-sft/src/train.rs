//! The training loop: epochs over the ordered file in its order, micro-batches accumulated to the
//! global batch, AdamW with warmup then cosine decay, clipping, metrics every step, checkpoints
//! (weights, optimizer moments, step and data position) that a killed run resumes from exactly.
//!
//! Mixed precision as PyTorch AMP does it: the weights the optimizer updates (the masters) and
//! its moments stay in f32 whatever `dtype` says; with `dtype = "bf16"` each step casts them to
//! bf16 for the forward and backward passes ([`Decoder::cast`]), and the gradients come back to
//! the masters in f32. Resumable checkpoints keep the f32 masters; the final checkpoint is
//! exported in `dtype` for inference.
//!
//! Runs survive being killed by default: a resumable checkpoint every `checkpoint_minutes` (10)
//! and at the end of every epoch, and when the host asks to stop (SIGTERM, SIGINT, SIGUSR1) one at
//! the next step boundary, after which [`train`] returns [`Ended::Interrupted`].

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Instant,
};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use valley_lm::{
    chat_template::ChatTemplate,
    checkpoint,
    device::{DeviceSetting, Precision},
    init::init_varmap,
    loss::weighted_cross_entropy,
    optim::{lr_at, AdamW, AdamWParams},
    tokenizer::Tokenizer,
    Decoder, ModelConfig,
};
use valley_plugin_api::{Host, MetricPoint, PluginError};

use crate::{
    data::{pack, pad, read_pairs, tokenize_with, Batch, Sequence},
    template_setting, tokenizer_setting,
};

/// The trainer's configuration. The paper's settings: `lr = 8e-5`, `warmup_ratio = 0.1`,
/// `global_batch = 128`, `max_length = 32768`, `epochs = 5`, `dtype = "bf16"` (mixed precision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// `small` (the from-scratch CPU student), a checkpoint directory in the Hugging Face layout,
    /// or a `config.json` file: a from-scratch model of that shape (e.g. Qwen2-0.5B's, for
    /// `valley bench train --model`).
    pub model: String,
    /// Seed of the from-scratch initialisation.
    pub init_seed: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Fraction of the steps spent warming up.
    pub warmup_ratio: f64,
    /// Final learning rate as a fraction of the peak.
    pub min_lr_ratio: f64,
    /// Passes over the training file.
    pub epochs: u64,
    /// Optimizer steps in all, cycling through the file in order (overrides `epochs` when set):
    /// the equal-steps control trains small subsets for as many steps as the largest.
    pub steps: Option<u64>,
    /// Sequences per forward pass.
    pub micro_batch: usize,
    /// Sequences per optimizer step (a multiple of `micro_batch`).
    pub global_batch: usize,
    /// Longest sequence in tokens; longer ones are cut and counted.
    pub max_length: usize,
    /// Pack sequences into rows of `max_length` instead of padding each batch.
    pub packing: bool,
    /// Loss on the assistant turn only (true) or on every token.
    pub assistant_only: bool,
    /// Clip the global gradient norm to this (0 disables).
    pub grad_clip: f64,
    /// AdamW.
    pub adamw: AdamWParams,
    /// The precision of the forward and backward passes: `f32`, or `bf16` (mixed precision: f32
    /// master weights and AdamW moments, bf16 compute, f32 gradients; meant for CUDA, runs on the
    /// CPU too). The final checkpoint is written in this dtype.
    pub dtype: Precision,
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda` feature).
    pub device: DeviceSetting,
    /// Save a resumable checkpoint every this many steps (0: off).
    pub checkpoint_every: u64,
    /// Save a resumable checkpoint when this many minutes have passed since the last one (0:
    /// off). On by default, so that a killed run loses at most this much work.
    pub checkpoint_minutes: f64,
    /// Save a resumable checkpoint at the end of every epoch (the last one included).
    pub checkpoint_epochs: bool,
    /// Resumable checkpoints kept (the newest).
    pub keep_checkpoints: usize,
    /// `auto` (a checkpoint's own `tokenizer.json`, required unless its vocabulary is the byte
    /// tokenizer's; the byte tokenizer for a from-scratch model), `byte`, `bpe:N` (train a
    /// byte-level BPE of N ids, from-scratch models only) or a path to a `tokenizer.json` or a
    /// directory holding one. A checkpoint's own tokenizer wins when resuming or starting from
    /// one.
    pub tokenizer: String,
    /// The records (`problem`, `response`) whose ChatML texts train a `bpe:N` tokenizer; by
    /// default the job's training file. Point every arm of an experiment at the same file so
    /// that they share one vocabulary.
    pub tokenizer_corpus: Option<PathBuf>,
    /// `auto` (the starting checkpoint's own chat template when it has one, else ChatML) or
    /// `chatml`. Checkpoints carry the template in `tokenizer_config.json`, so the evaluator
    /// prompts with the one the model was trained with.
    pub chat_template: String,
    /// Parameters not trained: exact Hugging Face names, or prefixes ending in `.`
    /// (`model.embed_tokens.`). Every other parameter must receive a gradient every step, or the
    /// step fails naming it.
    pub freeze: Vec<String>,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            model: "small".into(),
            init_seed: 0,
            lr: 1e-3,
            warmup_ratio: 0.1,
            min_lr_ratio: 0.1,
            epochs: 1,
            steps: None,
            micro_batch: 8,
            global_batch: 8,
            max_length: 512,
            packing: false,
            assistant_only: true,
            grad_clip: 1.0,
            adamw: AdamWParams::default(),
            dtype: Precision::F32,
            device: DeviceSetting::Cpu,
            checkpoint_every: 0,
            checkpoint_minutes: 10.0,
            checkpoint_epochs: true,
            keep_checkpoints: 2,
            tokenizer: "auto".into(),
            tokenizer_corpus: None,
            chat_template: "auto".into(),
            freeze: Vec::new(),
        }
    }
}

/// Where a run stands; saved with every checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Weighted (loss) tokens seen.
    pub tokens_seen: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSummary {
    /// Steps taken in all (including before a resume).
    pub steps: u64,
    /// Sequences in the training file.
    pub sequences: usize,
    /// Sequences cut at `max_length`.
    pub truncated: usize,
    /// Weighted tokens seen.
    pub tokens_seen: f64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Next-token accuracy on the training set's weighted tokens, at the end.
    pub train_token_accuracy: f64,
    /// The final checkpoint (Hugging Face layout).
    pub checkpoint: PathBuf,
    /// The step this run resumed from, if any.
    pub resumed_from: Option<u64>,
    /// Tensors of the starting checkpoint the model does not use (not loaded, not trained).
    pub extra_tensors: Vec<String>,
}

/// How [`train`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// Every step ran and the final checkpoint is written.
    Finished(TrainSummary),
    /// The host asked to stop; a resumable checkpoint was saved at `step`.
    Interrupted {
        /// Optimizer steps done.
        step: u64,
        /// The resumable checkpoint saved.
        checkpoint: PathBuf,
        /// The step this run resumed from, if any.
        resumed_from: Option<u64>,
    },
}

/// Which resumable checkpoints to delete: all but the newest `keep` (a pure policy).
pub fn checkpoints_to_delete(steps: &[u64], keep: usize) -> Vec<u64> {
    let mut sorted = steps.to_vec();
    sorted.sort_unstable();
    let n = sorted.len().saturating_sub(keep.max(1));
    sorted[..n].to_vec()
}

fn fail(e: impl std::fmt::Display) -> PluginError {
    PluginError::failed(e)
}

fn ckpt_dir(out: &Path, step: u64) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:08}"))
}

/// The newest complete resumable checkpoint under `out`, if any.
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("state.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Whether a resumable checkpoint is due after `step`: every `checkpoint_every` steps, at the end
/// of each epoch, or when `checkpoint_minutes` have passed since the last one (a pure policy).
pub fn checkpoint_due(cfg: &SftConfig, step: u64, steps_per_epoch: u64, minutes: f64) -> bool {
    (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0)
        || (cfg.checkpoint_epochs && steps_per_epoch > 0 && step % steps_per_epoch == 0)
        || (cfg.checkpoint_minutes > 0.0 && minutes >= cfg.checkpoint_minutes)
}

/// Trains on `train_file`, writing checkpoints under `out`; resumes from `resume` (a checkpoint
/// directory) when given. When the host asks to stop, saves a resumable checkpoint at the next
/// step boundary and returns [`Ended::Interrupted`].
///
/// # Errors
/// [`PluginError`] naming what failed (before any training when the model, its checkpoint or
/// its tokenizer is wrong).
pub fn train(
    cfg: &SftConfig,
    train_file: &Path,
    out: &Path,
    resume: Option<&Path>,
    host: &Host<'_>,
) -> Result<Ended, PluginError> {
    let mut run = Run::prepare(cfg, train_file, resume)?;
    if !run.extra_tensors.is_empty() {
        eprintln!(
            "candle-sft: {} tensors of {} are not used by the model and were not loaded: {}",
            run.extra_tensors.len(),
            cfg.model,
            run.extra_tensors.join(", ")
        );
    }
    let mut last_save = Instant::now();
    let mut saved_at = run.resumed_from;
    loop {
        if host.is_cancelled() {
            let step = run.state.step;
            if saved_at != Some(step) {
                run.save_resumable(out)?;
                prune(out, cfg.keep_checkpoints)?;
            }
            return Ok(Ended::Interrupted {
                step,
                checkpoint: ckpt_dir(out, step),
                resumed_from: run.resumed_from,
            });
        }
        if run.state.step >= run.total {
            break;
        }
        run.step(cfg, host)?;
        let step = run.state.step;
        let minutes = last_save.elapsed().as_secs_f64() / 60.0;
        if checkpoint_due(cfg, step, run.steps_per_epoch, minutes) {
            run.save_resumable(out)?;
            prune(out, cfg.keep_checkpoints)?;
            last_save = Instant::now();
            saved_at = Some(step);
        }
    }
    run.finish(cfg, out, host).map(Ended::Finished)
}

/// A training run between its set-up and its final checkpoint: the data, the model, the
/// optimizer and where the run stands.
struct Run {
    tok: Tokenizer,
    template: ChatTemplate,
    pad_id: u32,
    seqs: Vec<Sequence>,
    /// Sequences cut at `max_length`.
    truncated: usize,
    model_cfg: ModelConfig,
    /// The f32 master weights.
    varmap: VarMap,
    /// The model over the master weights.
    model: Decoder,
    /// The dtype of the forward and backward passes.
    compute: DType,
    opt: AdamW,
    device: Device,
    state: TrainState,
    resumed_from: Option<u64>,
    steps_per_epoch: u64,
    /// Optimizer steps in all.
    total: u64,
    warmup: u64,
    final_loss: f64,
    extra_tensors: Vec<String>,
}

/// The dtype of the master weights and the optimizer's moments, whatever the compute dtype.
const MASTER: DType = DType::F32;

impl Run {
    /// Checks the config, tokenizes the file, and builds the model and optimizer: from `resume`
    /// (a resumable checkpoint) when given, else from `cfg.model`.
    fn prepare(
        cfg: &SftConfig,
        train_file: &Path,
        resume: Option<&Path>,
    ) -> Result<Self, PluginError> {
        if cfg.micro_batch == 0 || cfg.global_batch % cfg.micro_batch != 0 {
            return Err(PluginError::invalid_config(format!(
                "global_batch {} must be a positive multiple of micro_batch {}",
                cfg.global_batch, cfg.micro_batch
            )));
        }
        let compute = cfg.dtype.dtype();
        let device = cfg.device.open().map_err(PluginError::invalid_config)?;
        // The tokenizer travels with the weights: a checkpoint's own, else the configured one.
        let tok = tokenizer_setting::resolve(
            &cfg.tokenizer,
            cfg.tokenizer_corpus.as_deref().unwrap_or(train_file),
            &cfg.model,
            resume,
        )?;
        let template = template_setting::resolve(&cfg.chat_template, &cfg.model, resume)?;
        let pad_id = tok.special("<|endoftext|>").unwrap_or(0);
        let (seqs, truncated) = sequences(cfg, train_file, &tok, &template)?;
        let (model_cfg, varmap, extra_tensors) = model_weights(cfg, resume, &tok, &device)?;
        if model_cfg.vocab_size < tok.vocab_size() {
            return Err(PluginError::invalid_config(format!(
                "the model's vocabulary ({}) is smaller than its tokenizer's ({})",
                model_cfg.vocab_size,
                tok.vocab_size()
            )));
        }
        // A VarBuilder that errors on a name the map lacks (candle-nn's from_varmap would create
        // it as zeros).
        let vb = checkpoint::strict_builder(&varmap, MASTER, &device).map_err(fail)?;
        let model = Decoder::new(&model_cfg, &vb).map_err(fail)?;
        let vars = trained_vars(&varmap, &cfg.freeze)?;
        let mut opt = AdamW::new(vars, cfg.adamw).map_err(fail)?;
        let mut state = TrainState {
            step: 0,
            tokens_seen: 0.0,
        };
        if let Some(dir) = resume {
            let text = std::fs::read_to_string(dir.join("state.json")).map_err(fail)?;
            state = serde_json::from_str(&text).map_err(fail)?;
            let moments =
                candle_core::safetensors::load(dir.join("optimizer.safetensors"), &device)
                    .map_err(fail)?;
            opt.restore(&moments, state.step).map_err(fail)?;
        }
        let steps_per_epoch = seqs.len().div_ceil(cfg.global_batch) as u64;
        let total = cfg
            .steps
            .unwrap_or(steps_per_epoch * cfg.epochs.max(1))
            .max(1);
        Ok(Self {
            tok,
            template,
            pad_id,
            seqs,
            truncated,
            model_cfg,
            varmap,
            model,
            compute,
            opt,
            device,
            resumed_from: resume.map(|_| state.step),
            state,
            steps_per_epoch,
            total,
            warmup: (cfg.warmup_ratio * total as f64).round() as u64,
            final_loss: f64::NAN,
            extra_tensors,
        })
    }

    /// One optimizer step over the next global batch of the file, in its order; its metrics go
    /// to the host.
    fn step(&mut self, cfg: &SftConfig, host: &Host<'_>) -> Result<(), PluginError> {
        let started = Instant::now();
        let in_epoch = (self.state.step % self.steps_per_epoch) as usize;
        let chunk = &self.seqs
            [in_epoch * cfg.global_batch..((in_epoch + 1) * cfg.global_batch).min(self.seqs.len())];
        let micro: Vec<Batch> = chunk
            .chunks(cfg.micro_batch)
            .map(|c| {
                if cfg.packing {
                    pack(c, cfg.max_length, self.pad_id)
                } else {
                    pad(c, self.pad_id)
                }
            })
            .collect();
        let step_tokens: f64 = micro.iter().map(Batch::weighted_tokens).sum();
        // The masters cast to the compute dtype, once per step (the same model in f32).
        let model = self.model.cast(self.compute).map_err(fail)?;
        let mut acc = None;
        let mut loss_sum = 0.0;
        for b in &micro {
            let t = |v: &[u32]| Tensor::from_vec(v.to_vec(), (b.rows, b.len), &self.device);
            let logits = model
                .forward(&t(&b.inputs).map_err(fail)?, None)
                .map_err(fail)?;
            let weights =
                Tensor::from_vec(b.weights.clone(), (b.rows, b.len), &self.device).map_err(fail)?;
            let (mean, w) =
                weighted_cross_entropy(&logits, &t(&b.targets).map_err(fail)?, &weights)
                    .map_err(fail)?;
            if w == 0.0 {
                continue;
            }
            // Each micro-batch's share of the global batch's mean loss.
            let share = (mean * (w / step_tokens.max(1.0))).map_err(fail)?;
            loss_sum += share
                .to_dtype(DType::F64)
                .and_then(|s| s.to_scalar::<f64>())
                .map_err(fail)?;
            let grads = share.backward().map_err(fail)?;
            match acc.as_mut() {
                None => acc = Some(grads),
                Some(a) => self.opt.accumulate(a, &grads).map_err(fail)?,
            }
        }
        let Some(mut grads) = acc else {
            // Nothing in this batch counts towards the loss: the step passes without an update.
            self.state.step += 1;
            return Ok(());
        };
        let grad_norm = self
            .opt
            .clip_grad_norm(&mut grads, cfg.grad_clip)
            .map_err(fail)?;
        let lr = lr_at(
            self.state.step,
            self.total,
            self.warmup,
            cfg.lr,
            cfg.min_lr_ratio,
        );
        self.opt.step(&grads, lr).map_err(fail)?;
        self.state.step += 1;
        self.state.tokens_seen += step_tokens;
        self.final_loss = loss_sum;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let step = self.state.step;
        host.log_all(&[
            MetricPoint::new("train/loss", loss_sum, step)
                .unit("nats")
                .lower_is_better(),
            MetricPoint::new("train/lr", lr, step),
            MetricPoint::new("train/grad_norm", grad_norm, step),
            MetricPoint::new("train/tokens_per_s", step_tokens / secs, step)
                .unit("tokens/s")
                .higher_is_better(),
            MetricPoint::new("train/tokens_seen", self.state.tokens_seen, step).unit("tokens"),
        ]);
        host.progress(step, self.total, format!("loss {loss_sum:.4}"));
        Ok(())
    }

    /// Saves a checkpoint this run can resume from exactly (f32 master weights, optimizer
    /// moments, step and data position).
    fn save_resumable(&self, out: &Path) -> Result<(), PluginError> {
        save_resumable(
            out,
            &self.tok,
            &self.template,
            &self.model_cfg,
            &self.varmap,
            &self.opt,
            &self.state,
        )
    }

    /// Measures the token accuracy on the training file, saves the final checkpoint (with its
    /// tokenizer and chat template) and sums the run up.
    fn finish(
        self,
        cfg: &SftConfig,
        out: &Path,
        host: &Host<'_>,
    ) -> Result<TrainSummary, PluginError> {
        let model = self.model.cast(self.compute).map_err(fail)?;
        let accuracy = token_accuracy(&model, &self.seqs, cfg, self.pad_id, &self.device)?;
        host.log(
            MetricPoint::new("train/token_accuracy", accuracy, self.state.step)
                .unit("fraction")
                .higher_is_better(),
        );
        let final_dir = out.join("final");
        // Exported in the compute dtype, as the model ran (bf16 halves the size).
        checkpoint::save_as(&final_dir, &self.model_cfg, &self.varmap, self.compute)
            .map_err(fail)?;
        self.tok.save(&final_dir).map_err(fail)?;
        self.template.save(&final_dir).map_err(fail)?;
        Ok(TrainSummary {
            steps: self.state.step,
            sequences: self.seqs.len(),
            truncated: self.truncated,
            tokens_seen: self.state.tokens_seen,
            final_loss: self.final_loss,
            train_token_accuracy: accuracy,
            checkpoint: final_dir,
            resumed_from: self.resumed_from,
            extra_tensors: self.extra_tensors,
        })
    }
}

/// The training file's records as token sequences, and how many were cut at `max_length`.
///
/// # Errors
/// An unreadable or empty file, a record that does not tokenize, or a `max_length` that cuts every
/// sequence before its answer.
fn sequences(
    cfg: &SftConfig,
    train_file: &Path,
    tok: &Tokenizer,
    template: &ChatTemplate,
) -> Result<(Vec<Sequence>, usize), PluginError> {
    let pairs = read_pairs(train_file).map_err(PluginError::invalid_input)?;
    if pairs.is_empty() {
        return Err(PluginError::invalid_input(format!(
            "{}: no training records",
            train_file.display()
        )));
    }
    let mut truncated = 0;
    let seqs: Vec<Sequence> = pairs
        .iter()
        .map(|(p, r)| {
            let (s, cut) = tokenize_with(tok, template, p, r, cfg.max_length, cfg.assistant_only)
                .map_err(PluginError::invalid_input)?;
            truncated += usize::from(cut);
            Ok(s)
        })
        .collect::<Result<_, PluginError>>()?;
    // A sequence cut before its answer teaches nothing under the assistant-only loss; when every
    // one is, training would take steps that change nothing. Say so instead.
    let without_loss = seqs
        .iter()
        .filter(|s| s.weights.iter().all(|&w| w == 0.0))
        .count();
    if without_loss == seqs.len() {
        let longest = pairs
            .iter()
            .filter_map(|(p, r)| {
                tokenize_with(tok, template, p, r, usize::MAX - 1, cfg.assistant_only)
                    .ok()
                    .map(|(s, _)| s.inputs.len())
            })
            .max()
            .unwrap_or(0);
        return Err(PluginError::invalid_config(format!(
            "max_length {}: every one of the {} sequences of {} is cut before its answer, so no token counts towards the loss; the longest sequence is {longest} tokens with this tokenizer — raise max_length (or use a tokenizer that makes them shorter)",
            cfg.max_length,
            seqs.len(),
            train_file.display()
        )));
    }
    Ok((seqs, truncated))
}

/// The model's shape and f32 master weights, and the tensors of its checkpoint it does not use: a
/// resumable checkpoint's, the small from-scratch student's, a from-scratch model of a
/// `config.json`'s shape, or a checkpoint directory's (through the one loader, which refuses a
/// missing or misshapen weight).
fn model_weights(
    cfg: &SftConfig,
    resume: Option<&Path>,
    tok: &Tokenizer,
    device: &Device,
) -> Result<(ModelConfig, VarMap, Vec<String>), PluginError> {
    let load = |dir: &Path| -> Result<(ModelConfig, VarMap, Vec<String>), PluginError> {
        let loaded =
            checkpoint::load_varmap(dir, MASTER, device).map_err(PluginError::invalid_input)?;
        Ok((loaded.config, loaded.weights, loaded.extra))
    };
    Ok(match (resume, cfg.model.as_str()) {
        (Some(dir), _) => load(dir)?,
        (None, "small") => {
            let m = ModelConfig::small(tok.vocab_size());
            let vm = init_varmap(&m, cfg.init_seed, MASTER, device).map_err(fail)?;
            (m, vm, Vec::new())
        }
        (None, file) if Path::new(file).is_file() => {
            let m = ModelConfig::from_json_file(Path::new(file)).map_err(fail)?;
            let vm = init_varmap(&m, cfg.init_seed, MASTER, device).map_err(fail)?;
            (m, vm, Vec::new())
        }
        (None, dir) => load(Path::new(dir))?,
    })
}

/// The variables the optimizer trains: all but those `freeze` names (exact names, or prefixes
/// ending in `.`).
///
/// # Errors
/// A `freeze` entry that names no parameter.
fn trained_vars(
    varmap: &VarMap,
    freeze: &[String],
) -> Result<Vec<(String, candle_core::Var)>, PluginError> {
    let data = varmap.data().lock().map_err(|_| fail("poisoned VarMap"))?;
    let frozen = |name: &str, f: &str| name == f || (f.ends_with('.') && name.starts_with(f));
    if let Some(f) = freeze.iter().find(|f| !data.keys().any(|n| frozen(n, f))) {
        return Err(PluginError::invalid_config(format!(
            "freeze: `{f}` names no parameter of the model (exact names like \
             `model.norm.weight`, or prefixes ending in `.` like `model.embed_tokens.`)"
        )));
    }
    Ok(data
        .iter()
        .filter(|(name, _)| !freeze.iter().any(|f| frozen(name, f)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

fn save_resumable(
    out: &Path,
    tok: &Tokenizer,
    template: &ChatTemplate,
    model_cfg: &ModelConfig,
    varmap: &VarMap,
    opt: &AdamW,
    state: &TrainState,
) -> Result<(), PluginError> {
    let dir = ckpt_dir(out, state.step);
    // Written into a temporary directory and renamed, so a kill never leaves half a checkpoint
    // that looks complete.
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    checkpoint::save(&tmp, model_cfg, varmap).map_err(fail)?;
    tok.save(&tmp).map_err(fail)?;
    template.save(&tmp).map_err(fail)?;
    let moments: HashMap<String, Tensor> = opt.state();
    candle_core::safetensors::save(&moments, tmp.join("optimizer.safetensors")).map_err(fail)?;
    std::fs::write(
        tmp.join("state.json"),
        serde_json::to_string(state).map_err(fail)?,
    )
    .map_err(fail)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(fail)
}

fn prune(out: &Path, keep: usize) -> Result<(), PluginError> {
    let steps: Vec<u64> = std::fs::read_dir(out.join("checkpoints"))
        .map_err(fail)?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()
        })
        .collect();
    for step in checkpoints_to_delete(&steps, keep) {
        std::fs::remove_dir_all(ckpt_dir(out, step)).map_err(fail)?;
    }
    Ok(())
}

fn token_accuracy(
    model: &Decoder,
    seqs: &[Sequence],
    cfg: &SftConfig,
    pad_id: u32,
    device: &Device,
) -> Result<f64, PluginError> {
    let (mut right, mut counted) = (0.0, 0.0);
    for chunk in seqs.chunks(cfg.micro_batch.max(1)) {
        let b = pad(chunk, pad_id);
        let ids = Tensor::from_vec(b.inputs.clone(), (b.rows, b.len), device).map_err(fail)?;
        let logits = model.forward(&ids, None).map_err(fail)?;
        let predicted = Decoder::argmax_last(&logits).map_err(fail)?;
        for ((p, t), w) in predicted.iter().zip(&b.targets).zip(&b.weights) {
            if *w > 0.0 {
                counted += 1.0;
                right += f64::from(u8::from(p == t));
            }
        }
    }
    Ok(if counted > 0.0 { right / counted } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest() {
        assert_eq!(checkpoints_to_delete(&[30, 10, 20], 2), vec![10]);
        assert_eq!(checkpoints_to_delete(&[10], 2), Vec::<u64>::new());
        assert_eq!(
            checkpoints_to_delete(&[1, 2, 3], 0),
            vec![1, 2],
            "at least one is kept"
        );
    }
}
