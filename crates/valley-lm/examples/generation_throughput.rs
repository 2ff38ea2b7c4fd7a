//! Generation throughput of the small CPU student (random init, byte vocabulary): tokens per
//! second generating `PROMPTS` prompts of different lengths one at a time versus in one batch,
//! greedy, no stop token (every sequence runs to the cap). Run in release:
//!
//! ```text
//! cargo run --release -p valley-lm --example generation_throughput -- [PROMPTS] [NEW_TOKENS] [PROMPT_LEN]
//! ```

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use valley_lm::{
    generate::{generate_batch, GenerationConfig, SeqRng},
    init::init_varmap,
    tokenizer::ByteTokenizer,
    Decoder, ModelConfig,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let prompts: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let new_tokens: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let prompt_len: usize = args.next().map_or(Ok(400), |a| a.parse())?;
    let cfg = ModelConfig::small(ByteTokenizer::VOCAB_SIZE);
    let varmap = init_varmap(&cfg, 1, DType::F32, &Device::Cpu)?;
    let model = Decoder::new(
        &cfg,
        &VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    // Prompts of PROMPT_LEN to PROMPT_LEN + 40 bytes (default 400): a batch of the evaluator's,
    // which groups prompts of similar length; the synthetic problems' prompts are 300 to 900.
    let batch: Vec<Vec<u32>> = (0..prompts)
        .map(|i| {
            (0..prompt_len + (i * 7) % 40)
                .map(|j| ((i + j) % 200) as u32 + 32)
                .collect()
        })
        .collect();
    let config = GenerationConfig {
        max_new_tokens: new_tokens,
        ..GenerationConfig::default()
    };
    let rngs = |n: usize| (0..n as u64).map(|i| SeqRng::new(0, i)).collect::<Vec<_>>();
    let single_n = prompts.min(2);
    let started = Instant::now();
    let mut single_tokens = 0;
    for p in &batch[..single_n] {
        let g = generate_batch(&model, std::slice::from_ref(p), &mut rngs(1), &config)?;
        single_tokens += g[0].tokens.len();
    }
    let single = single_tokens as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let g = generate_batch(&model, &batch, &mut rngs(batch.len()), &config)?;
    let batched_tokens: usize = g.iter().map(|g| g.tokens.len()).sum();
    let batched = batched_tokens as f64 / started.elapsed().as_secs_f64();
    println!(
        "model: {} layers x {} wide, vocab {}; {new_tokens} new tokens per prompt",
        cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size
    );
    println!("one at a time ({single_n} prompts): {single:.0} tokens/s");
    println!(
        "batched ({prompts} prompts at once): {batched:.0} tokens/s ({:.1}x)",
        batched / single
    );
    Ok(())
}
