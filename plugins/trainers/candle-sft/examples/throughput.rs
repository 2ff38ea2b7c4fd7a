//! Training throughput of the from-scratch student for a tokenizer choice.
//!
//! `throughput TRAIN_FILE MAX_LENGTH MICRO_BATCH [TOKENIZER [RECORDS]]`
//!
//! TOKENIZER is the trainer's `tokenizer` setting: `byte` (default), `bpe:N` (trained on all of
//! TRAIN_FILE, or on the file named by `VALLEY_TOKENIZER_CORPUS`) or a path. It prints the mean
//! tokens per sequence of TRAIN_FILE (untruncated), then trains one epoch on the first RECORDS
//! records (default: all; 0 stops after the lengths) and prints the truncation count and
//! sequences/s and loss tokens/s over the optimizer steps alone (tokenizer training and the final
//! accuracy pass excluded). For an equal content budget, give the BPE run MAX_LENGTH divided by
//! its compression ratio.
use std::path::{Path, PathBuf};

use valley_plugin_api::host::RecordingHost;
use valley_trainer_candle_sft::{data, tokenizer_setting, SftConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let train_file = Path::new(&args[1]);
    let corpus = std::env::var_os("VALLEY_TOKENIZER_CORPUS")
        .map_or_else(|| train_file.to_path_buf(), PathBuf::from);
    let mut cfg = SftConfig {
        max_length: args[2].parse().unwrap(),
        micro_batch: args[3].parse().unwrap(),
        tokenizer: args.get(4).cloned().unwrap_or_else(|| "byte".into()),
        tokenizer_corpus: Some(corpus.clone()),
        ..SftConfig::default()
    };
    cfg.global_batch = cfg.micro_batch;
    let pairs = data::read_pairs(train_file).unwrap();
    let records: usize = args.get(5).map_or(pairs.len(), |r| r.parse().unwrap());

    let started = std::time::Instant::now();
    let tok = tokenizer_setting::resolve(&cfg.tokenizer, &corpus, "small", None).unwrap();
    let tok_secs = started.elapsed().as_secs_f64();
    let lengths: Vec<usize> = pairs
        .iter()
        .map(|(p, r)| {
            data::tokenize(&tok, p, r, usize::MAX - 1, true)
                .0
                .inputs
                .len()
                + 1
        })
        .collect();
    let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
    let mut sorted = lengths.clone();
    sorted.sort_unstable();
    println!(
        "tokenizer {} vocab {} (built in {tok_secs:.1}s): mean {mean:.0} tokens/sequence, p50 {}, max {} over {} records",
        cfg.tokenizer,
        tok.vocab_size(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        sorted.len()
    );

    if records == 0 {
        return;
    }
    let dir = std::env::temp_dir().join(format!("valley-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(train_file).unwrap();
    let subset = dir.join("train.jsonl");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(records)
        .collect();
    std::fs::write(&subset, lines.join("\n") + "\n").unwrap();

    let rec = RecordingHost::default();
    let valley_trainer_candle_sft::Ended::Finished(s) =
        valley_trainer_candle_sft::train(&cfg, &subset, &dir.join("out"), None, &rec.host())
            .unwrap()
    else {
        panic!("interrupted")
    };
    let m = rec.metrics.lock().unwrap();
    let series = |name: &str| -> Vec<f64> {
        m.iter()
            .filter(|p| p.name.as_str() == name)
            .map(|p| p.value)
            .collect()
    };
    let (rates, seen) = (series("train/tokens_per_s"), series("train/tokens_seen"));
    // Each step's seconds from its weighted tokens and its tokens/s.
    let mut step_secs = 0.0;
    let mut previous = 0.0;
    for (rate, total) in rates.iter().zip(&seen) {
        step_secs += (total - previous) / rate;
        previous = *total;
    }
    println!(
        "steps {} sequences {} truncated {} loss tokens {} step secs {step_secs:.1}: {:.2} sequences/s, {:.0} loss tokens/s",
        s.steps,
        s.sequences,
        s.truncated,
        s.tokens_seen,
        s.sequences as f64 / step_secs,
        s.tokens_seen / step_secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
