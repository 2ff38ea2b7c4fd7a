//! `valley bench train`: training throughput of the `candle-sft` trainer plugin against PyTorch on
//! the same model shape, data, optimizer and thread count, measured in one run on this machine.
//!
//! The bench writes a deterministic generated file of records whose ChatML text is exactly
//! `seq + 1` byte-tokenizer ids long (so every batch is `batch × seq` tokens with no padding and
//! the loss covers every token), trains the small from-scratch student on it through the real
//! plugin loader for `warmup + steps` steps, and times the `steps` after the warm-up from the
//! metrics the plugin streams (host-side timestamps of each step's `train/tokens_seen` point).
//! Then it runs `benches/torch_train.py` with a Python that has torch, on the same file and the
//! `config.json` our trainer saved, and prints both and their ratio. Model FLOP/s use PaLM's
//! count (Chowdhery et al. 2022, appendix B): `6·N + 12·L·H·T` per token, with `N` the parameters
//! (the tied embedding counted once, for the output projection), `L` layers, `H` the hidden width
//! and `T` the sequence length.
//!
//! Threads: candle's CPU kernels use `RAYON_NUM_THREADS` when set, else every core; the reference
//! gets the same number through `torch.set_num_threads`.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc, Mutex},
    time::Instant,
};

use serde_json::{json, Value};
use valley_plugin_api::TrainJob;

use anyhow::{anyhow, Result};
use valley_experiment::Error;
use valley_plugin_host::{workspace_root, CallServices, LoadedTrainer, PluginSearch};

use super::super::Outcome;
use crate::cli::BenchTrainArgs;

/// One implementation's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Tokens trained in the timed steps.
    pub tokens: f64,
    /// Their wall seconds.
    pub seconds: f64,
    /// CPU seconds of the whole process over the same span (threads summed; spinning included).
    pub cpu_seconds: f64,
    /// The loss after the last step.
    pub final_loss: f64,
}

impl Measurement {
    /// Tokens per second.
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens / self.seconds.max(1e-12)
    }

    /// Tokens per CPU second: less sensitive than tokens/s to other work on a shared machine.
    pub fn tokens_per_cpu_s(&self) -> f64 {
        self.tokens / self.cpu_seconds.max(1e-12)
    }
}

fn cfg_err(message: String) -> anyhow::Error {
    anyhow!("{}", message)
}

/// Records of exactly `seq + 1` tokens under the byte tokenizer's ChatML template: ASCII code-like
/// text from a SplitMix64 stream (seed 0), cut to length. The template costs 21 ids
/// (`<|im_start|>user\n` … `<|im_end|>\n`, specials one id each); the rest is split a quarter
/// to the problem, three quarters to the response.
///
/// # Errors
/// an error when `seq` is too short to hold the template and some text.
pub fn bench_records(count: usize, seq: usize) -> Result<Vec<Value>> {
    const TEMPLATE: usize = 21;
    if seq < TEMPLATE + 3 {
        return Err(cfg_err(format!(
            "--seq {seq}: at least {} tokens are needed (the chat template takes {TEMPLATE})",
            TEMPLATE + 3
        )));
    }
    let text_len = seq + 1 - TEMPLATE;
    let problem_len = text_len / 4;
    const WORDS: [&str; 24] = [
        "def",
        "return",
        "for",
        "in",
        "range(n)",
        "if",
        "else:",
        "print(",
        ")",
        "x",
        "xs",
        "=",
        "+",
        "sorted(",
        "sum(",
        "map(int,",
        "input().split())",
        "0",
        "1",
        "while",
        "len(xs)",
        "k",
        "==",
        "\n    ",
    ];
    let mut state: u64 = 0;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut text = |len: usize| {
        let mut s = String::with_capacity(len + 20);
        while s.len() < len {
            s.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
            s.push(' ');
        }
        s.truncate(len);
        s
    };
    Ok((0..count)
        .map(|i| {
            json!({
                "id": format!("bench-{i}"),
                "problem": text(problem_len),
                "response": text(text_len - problem_len),
            })
        })
        .collect())
}

/// Parameters of a model from its `config.json` (valley_lm's `ModelConfig::parameter_count`,
/// restated because the harness does not link candle).
pub fn parameter_count(cfg: &Value) -> Option<f64> {
    let get = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as f64);
    let (h, i, v, l) = (
        get("hidden_size")?,
        get("intermediate_size")?,
        get("vocab_size")?,
        get("num_hidden_layers")?,
    );
    let heads = get("num_attention_heads")?;
    let kv = get("num_key_value_heads").unwrap_or(heads) * (h / heads);
    let qkv_bias = cfg.get("model_type").and_then(Value::as_str) == Some("qwen2")
        || cfg.get("attention_bias").and_then(Value::as_bool) == Some(true);
    let bias = if qkv_bias { h + 2.0 * kv } else { 0.0 };
    let layer = 2.0 * h * h + 2.0 * h * kv + bias + 3.0 * h * i + 2.0 * h;
    let tied = cfg.get("tie_word_embeddings").and_then(Value::as_bool) == Some(true);
    Some(v * h + l * layer + h + if tied { 0.0 } else { v * h })
}

/// Training FLOPs per token, PaLM's count: `6·N + 12·L·H·T`.
pub fn flops_per_token(cfg: &Value, seq: usize) -> Option<f64> {
    let l = cfg.get("num_hidden_layers")?.as_u64()? as f64;
    let h = cfg.get("hidden_size")?.as_u64()? as f64;
    Some(6.0 * parameter_count(cfg)? + 12.0 * l * h * seq as f64)
}

/// The end of one training step, as the host saw it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// When the step's metrics arrived.
    pub at: Instant,
    /// CPU seconds of this process (all threads) by then.
    pub cpu: f64,
    /// The step.
    pub step: u64,
    /// Tokens trained so far.
    pub tokens_seen: f64,
}

/// Throughput of the timed steps from one mark per step: tokens, wall seconds and CPU seconds
/// between the end of step `warmup` and the end of the last step.
pub fn throughput(marks: &[Mark], warmup: u64) -> Option<Measurement> {
    let start = marks.iter().find(|m| m.step == warmup)?;
    let end = marks.last().filter(|m| m.step > warmup)?;
    Some(Measurement {
        tokens: end.tokens_seen - start.tokens_seen,
        seconds: (end.at - start.at).as_secs_f64(),
        cpu_seconds: end.cpu - start.cpu,
        final_loss: f64::NAN,
    })
}

/// CPU seconds used by this process so far, every thread included.
fn process_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        f64::NAN
    }
}

fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Trains with the plugin; returns the measurement and the saved `config.json`'s path.
fn run_ours(
    args: &BenchTrainArgs,
    search: &PluginSearch,
    data: &Path,
    out_dir: &Path,
    cancel: Arc<AtomicBool>,
) -> Result<(Measurement, PathBuf, PathBuf)> {
    let lib = search.find_plugin("--trainer", &args.trainer)?;
    let model = match args.model.as_str() {
        "small" => "small".to_string(),
        file => std::path::absolute(file)
            .map_err(|e| Error::io(Path::new(file), e))?
            .display()
            .to_string(),
    };
    let config = json!({
        "model": model,
        "tokenizer": "byte",
        "dtype": args.dtype,
        "device": args.device,
        "epochs": 1,
        "micro_batch": args.batch,
        "global_batch": args.batch,
        "max_length": args.seq,
        "packing": false,
        "assistant_only": false,
        "lr": 1e-3,
        "warmup_ratio": 0.1,
        "min_lr_ratio": 0.1,
        "grad_clip": 1.0,
        "checkpoint_every": 0,
    });
    let trainer = LoadedTrainer::new(lib.clone(), "trainer", &config)?;
    let job = TrainJob {
        config_json: config.to_string().into(),
        train_file: data.display().to_string().into(),
        output_dir: out_dir.display().to_string().into(),
        resume_from: None.into(),
    };
    let marks: Mutex<Vec<Mark>> = Mutex::default();
    let loss: Mutex<f64> = Mutex::new(f64::NAN);
    let services = CallServices::new("bench train", cancel)
        .streaming(Box::new(|points| {
            let now = Instant::now();
            for p in points {
                match p.name.as_str() {
                    "train/tokens_seen" => {
                        marks.lock().unwrap_or_else(|e| e.into_inner()).push(Mark {
                            at: now,
                            cpu: process_cpu_seconds(),
                            step: p.step,
                            tokens_seen: p.value,
                        });
                    }
                    "train/loss" => *loss.lock().unwrap_or_else(|e| e.into_inner()) = p.value,
                    _ => {}
                }
            }
        }))
        .with_progress(Box::new(|_| {}));
    let outcome = trainer.train(&job, &services)?;
    drop(services);
    if let valley_plugin_api::TrainEnd::Interrupted { step } = outcome.end() {
        return Err(cfg_err(format!(
            "interrupted at step {step}: nothing measured"
        )));
    }
    let marks = marks.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut measured = throughput(&marks, args.warmup).ok_or_else(|| {
        cfg_err(format!(
            "plugin `{}` streamed {} `train/tokens_seen` points; {} were expected",
            args.trainer,
            marks.len(),
            args.warmup + args.steps
        ))
    })?;
    measured.final_loss = loss.into_inner().unwrap_or_else(|e| e.into_inner());
    let checkpoint = PathBuf::from(outcome.checkpoint_dir.as_str());
    Ok((measured, checkpoint.join("config.json"), lib.path.clone()))
}

/// Runs the PyTorch reference; returns its measurement and its `torch` version.
fn run_reference(
    args: &BenchTrainArgs,
    python: &Path,
    config: &Path,
    data: &Path,
    threads: usize,
) -> Result<(Measurement, String)> {
    let script = match &args.script {
        Some(s) => s.clone(),
        None => std::env::current_dir()
            .ok()
            .as_deref()
            .and_then(workspace_root)
            .map(|r| r.join("benches/torch_train.py"))
            .ok_or_else(|| {
                cfg_err("no workspace here to find benches/torch_train.py in; give --script".into())
            })?,
    };
    if !script.is_file() {
        return Err(cfg_err(format!(
            "{}: the PyTorch reference script is missing",
            script.display()
        )));
    }
    let output = std::process::Command::new(python)
        .arg(&script)
        .args(["--config".as_ref(), config.as_os_str()])
        .args(["--data".as_ref(), data.as_os_str()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--seq", &args.seq.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--device", &args.device, "--dtype", &args.dtype])
        .args([
            "--lr",
            "1e-3",
            "--warmup-ratio",
            "0.1",
            "--min-lr-ratio",
            "0.1",
        ])
        .args(["--grad-clip", "1.0"])
        .output()
        .map_err(|e| Error::io(python, e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Option<Value> = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    match (output.status.success(), parsed) {
        (true, Some(v)) => {
            let num = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
            Ok((
                Measurement {
                    tokens: num("tokens"),
                    seconds: num("seconds"),
                    cpu_seconds: num("cpu_seconds"),
                    final_loss: num("final_loss"),
                },
                v.get("torch")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            ))
        }
        _ => Err(cfg_err(format!(
            "the PyTorch reference ({} {}) failed: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("(no output)")
        ))),
    }
}

/// Trains the small student with the trainer plugin and, unless `python` is `None`, the same
/// model with PyTorch; prints tokens/s, model FLOP/s and the ratio to PyTorch.
///
/// # Errors
/// Bad sizes, the plugin missing or failing, the reference failing (its last stderr line).
pub fn run(args: &BenchTrainArgs, search: &PluginSearch, out: &mut impl Write) -> Result<Outcome> {
    let cancel = crate::interrupt::on_stop_signals();
    if args.batch == 0 || args.steps == 0 {
        return Err(cfg_err("--batch and --steps must be positive".into()));
    }
    let threads = threads();
    let dir = tempfile::tempdir().map_err(|e| Error::io("a temporary directory", e))?;
    let data = dir.path().join("bench.jsonl");
    let records = bench_records(args.batch * (args.warmup + args.steps) as usize, args.seq)?;
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&data, text).map_err(|e| Error::io(&data, e))?;
    let (ours, config_path, plugin) =
        run_ours(args, search, &data, &dir.path().join("out"), cancel)?;
    let config: Value = std::fs::read_to_string(&config_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| cfg_err(format!("{}: unreadable", config_path.display())))?;
    let reference = match (!args.no_reference).then_some(&args.python) {
        Some(python) => Some(run_reference(args, python, &config_path, &data, threads)?),
        None => None,
    };
    let flops = flops_per_token(&config, args.seq).unwrap_or(f64::NAN);
    let io = |e| Error::io("<stdout>", e);
    let num = |k: &str| config.get(k).and_then(Value::as_u64).unwrap_or(0);
    writeln!(
        out,
        "model: {} decoder, {} layers, hidden {}, {} heads ({} KV), intermediate {}, vocab {}, {:.2} M parameters",
        config.get("model_type").and_then(Value::as_str).unwrap_or("?"),
        num("num_hidden_layers"),
        num("hidden_size"),
        num("num_attention_heads"),
        num("num_key_value_heads"),
        num("intermediate_size"),
        num("vocab_size"),
        parameter_count(&config).unwrap_or(f64::NAN) / 1e6,
    )
    .map_err(io)?;
    writeln!(
        out,
        "run: batch {} × seq {} = {} tokens/step, {} on {}, AdamW lr 1e-3 (warm-up 10 %, cosine to 10 %), clip 1.0, {} timed steps after {} warm-up, {threads} threads; trainer {}",
        args.batch,
        args.seq,
        args.batch * args.seq,
        args.dtype,
        args.device,
        args.steps,
        args.warmup,
        plugin.display()
    )
    .map_err(io)?;
    writeln!(
        out,
        "{:<28} {:>10} {:>9} {:>8} {:>7} {:>14} {:>9}",
        "implementation", "tokens/s", "GFLOP/s", "loss", "ratio", "tokens/CPU-s", "ratio"
    )
    .map_err(io)?;
    let base = reference.as_ref().map(|(m, _)| m.clone());
    let mut row = |name: &str, m: &Measurement| {
        let ratio = |f: fn(&Measurement) -> f64| {
            base.as_ref()
                .map_or("-".to_string(), |b| format!("{:.2}", f(m) / f(b)))
        };
        writeln!(
            out,
            "{name:<28} {:>10.0} {:>9.2} {:>8.4} {:>7} {:>14.0} {:>9}",
            m.tokens_per_s(),
            m.tokens_per_s() * flops / 1e9,
            m.final_loss,
            ratio(Measurement::tokens_per_s),
            m.tokens_per_cpu_s(),
            ratio(Measurement::tokens_per_cpu_s),
        )
    };
    row(&format!("{} (candle)", args.trainer), &ours).map_err(io)?;
    if let Some((m, version)) = &reference {
        row(&format!("PyTorch {version} eager"), m).map_err(io)?;
    }
    Ok(Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn records_have_exactly_the_requested_token_count() {
        // The byte tokenizer gives one id per ASCII byte and one per special; the template has
        // four specials and 17 ASCII bytes (`user\n`, `\n`, `assistant\n`, `\n`).
        let records = bench_records(3, 64).unwrap();
        for r in &records {
            let text = format!(
                "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n{}<|im_end|>\n",
                r["problem"].as_str().unwrap(),
                r["response"].as_str().unwrap()
            );
            assert!(text.is_ascii());
            let specials = 4;
            let bytes = text.len() - "<|im_start|>".len() * 2 - "<|im_end|>".len() * 2;
            assert_eq!(bytes + specials, 65, "{text:?}");
        }
        assert_ne!(records[0]["response"], records[1]["response"]);
        assert_eq!(bench_records(3, 64).unwrap(), records, "deterministic");
        assert!(bench_records(1, 10)
            .unwrap_err()
            .to_string()
            .contains("--seq 10"));
    }

    #[test]
    fn parameters_and_flops_follow_the_config() {
        // Qwen2.5-0.5B-Instruct's config.json: 494,032,768 parameters (its model card: 0.49B;
        // the same number valley_lm's config test checks).
        let cfg = json!({"model_type":"qwen2","vocab_size":151936,"hidden_size":896,
            "intermediate_size":4864,"num_hidden_layers":24,"num_attention_heads":14,
            "num_key_value_heads":2,"tie_word_embeddings":true});
        assert_eq!(parameter_count(&cfg), Some(494_032_768.0));
        let f = flops_per_token(&cfg, 2048).unwrap();
        assert_eq!(f, 6.0 * 494_032_768.0 + 12.0 * 24.0 * 896.0 * 2048.0);
    }

    #[test]
    fn throughput_counts_from_the_end_of_the_warm_up() {
        let t0 = Instant::now();
        let mark = |secs: u64, step: u64| Mark {
            at: t0 + Duration::from_secs(secs),
            cpu: 3.0 * secs as f64,
            step,
            tokens_seen: 100.0 * step as f64,
        };
        let marks = [mark(0, 1), mark(2, 2), mark(4, 3)];
        let m = throughput(&marks, 1).unwrap();
        assert_eq!((m.tokens, m.seconds, m.cpu_seconds), (200.0, 4.0, 12.0));
        assert_eq!(m.tokens_per_s(), 50.0);
        assert!(throughput(&marks[..1], 1).is_none(), "no timed step");
    }
}
