//! `valley-import-gguf FILE --out DIR`: converts a Llama- or Qwen2-family GGUF file (llama.cpp's
//! format, quantized or not) into a checkpoint in the Hugging Face layout that the `candle-sft`
//! trainer (`model = DIR`) and the evaluators load. A thin wrapper over `valley_lm::gguf`.
//! Exit status: 0 ok, 2 an error stopped the import.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use candle_core::DType;
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
enum Dtype {
    F32,
    Bf16,
}

/// Import a GGUF model (dequantized) as a Hugging Face-layout checkpoint: config.json,
/// model.safetensors, tokenizer.json for GPT-2-style BPE vocabularies, and the file's chat
/// template in tokenizer_config.json.
#[derive(Parser)]
#[command(name = "valley-import-gguf", version)]
struct Cli {
    /// The GGUF file (general.architecture `llama` or `qwen2`).
    #[arg(value_name = "FILE")]
    gguf: PathBuf,
    /// The checkpoint directory to write (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Weight type of the checkpoint.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let dtype = match cli.dtype {
        Dtype::F32 => DType::F32,
        Dtype::Bf16 => DType::BF16,
    };
    let imported = valley_lm::gguf::import_as(&cli.gguf, &cli.out, dtype)
        .with_context(|| format!("importing {}", cli.gguf.display()))?;
    let c = &imported.config;
    println!(
        "{}: {} layers, hidden {}, {} heads ({} KV), vocab {}, {:.1} M parameters{}",
        c.model_type,
        c.num_hidden_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.kv_heads(),
        c.vocab_size,
        c.parameter_count() as f64 / 1e6,
        if c.tie_word_embeddings {
            ", tied embeddings"
        } else {
            ""
        }
    );
    if !imported.extra.is_empty() {
        println!(
            "not imported ({} tensors the model does not use): {}",
            imported.extra.len(),
            imported.extra.join(", ")
        );
    }
    match &imported.tokenizer_note {
        None => println!("tokenizer.json written from the file's vocabulary"),
        Some(note) => println!(
            "no tokenizer.json: {note}; copy the model's own tokenizer.json into {} before \
             training or evaluating (without one, loading refuses the checkpoint unless its \
             vocabulary is the byte tokenizer's)",
            imported.dir.display()
        ),
    }
    match &imported.chat_template_note {
        None => println!("chat template: the file's own, written to tokenizer_config.json"),
        Some(note) => println!("no chat template: {note}; the checkpoint uses ChatML"),
    }
    println!("checkpoint: {}", imported.dir.display());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
