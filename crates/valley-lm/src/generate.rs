//! Batched generation with a KV cache: many prompts of different lengths are left-padded into one
//! batch ([`Decoder::forward_padded`]), prefilled in one forward pass, then extended one token per
//! step for every live row at once; rows that stop are dropped from the batch and the cache.
//! Greedy decoding (temperature 0) or sampling with temperature and top-p (nucleus); each
//! sequence has its own seeded random stream, so a sample does not depend on which other
//! sequences share its batch. A sequence stops at a stop token (not included in its output) or at
//! the token cap ([`Generation::finished`] tells which).

use candle_core::{DType, Tensor};

use crate::{Decoder, KvCache, Result};

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Tokens generated at most per sequence.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling: sample among the most likely tokens whose probabilities add up to
    /// `top_p` (1 keeps every token).
    pub top_p: f64,
    /// Token ids that end a sequence (`<|im_end|>`, `<|endoftext|>`).
    pub stop_tokens: Vec<u32>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            stop_tokens: Vec::new(),
        }
    }
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The new tokens, without the stop token.
    pub tokens: Vec<u32>,
    /// Ended at a stop token (rather than the token cap or the model's position limit).
    pub finished: bool,
}

/// A small seeded generator (SplitMix64): one per sequence.
#[derive(Debug, Clone)]
pub struct SeqRng(u64);

impl SeqRng {
    /// The stream of sequence `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut r = Self(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks the next token from one row of logits: argmax at temperature 0 (the first maximum on
/// ties), else a sample from the temperature-scaled softmax restricted to the top-p nucleus.
pub fn pick_token(logits: &[f32], config: &GenerationConfig, rng: &mut SeqRng) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if config.temperature <= 0.0 {
        return argmax();
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return argmax();
    }
    let t = config.temperature;
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, ((f64::from(l) - f64::from(max)) / t).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // The nucleus: the shortest prefix whose mass reaches top_p (at least one token).
    let mut kept = 0;
    let mut mass = 0.0;
    for p in &probs {
        kept += 1;
        mass += p.1 / total;
        if mass >= config.top_p {
            break;
        }
    }
    probs.truncate(kept);
    let nucleus: f64 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.next_f64() * nucleus;
    for &(id, p) in &probs {
        if u < p {
            return id;
        }
        u -= p;
    }
    probs[probs.len() - 1].0
}

/// Groups prompt indices into batches of at most `batch_size`, longest prompts first, so that a
/// batch holds prompts of similar length (little padding) and the slowest batch starts first.
pub fn plan_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Generates a continuation of every prompt in one batch. `rngs` holds one stream per prompt
/// (see [`SeqRng::new`]; unused when greedy).
///
/// # Errors
/// An empty prompt, `rngs` not one per prompt, tensor errors. A prompt at the model's position
/// limit is not an error: it stops there, unfinished.
pub fn generate_batch(
    model: &Decoder,
    prompts: &[Vec<u32>],
    rngs: &mut [SeqRng],
    config: &GenerationConfig,
) -> Result<Vec<Generation>> {
    if rngs.len() != prompts.len() {
        return Err(crate::Error::Config(format!(
            "{} random streams for {} prompts",
            rngs.len(),
            prompts.len()
        )));
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(crate::Error::Config("an empty prompt".into()));
    }
    let mut out: Vec<Generation> = prompts
        .iter()
        .map(|_| Generation {
            tokens: Vec::new(),
            finished: false,
        })
        .collect();
    if prompts.is_empty() || config.max_new_tokens == 0 {
        return Ok(out);
    }
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let limit = model.config().max_position_embeddings;
    if width >= limit {
        return Ok(out);
    }
    // Columns left before the position limit (the padded width counts: the cache is that wide).
    let steps = config.max_new_tokens.min(limit - width);
    let device = model.device().clone();
    let mut pad: Vec<usize> = prompts.iter().map(|p| width - p.len()).collect();
    let ids: Vec<u32> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(0u32, width - p.len()).chain(p.iter().copied()))
        .collect();
    let mut cache = KvCache::new();
    let ids = Tensor::from_vec(ids, (prompts.len(), width), &device)?;
    let mut logits = model.forward_padded(&ids, &pad, &mut cache)?;
    // Live rows: their index into `prompts`.
    let mut live: Vec<usize> = (0..prompts.len()).collect();
    for step in 0..steps {
        let rows: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut next = Vec::with_capacity(live.len());
        let mut keep = Vec::with_capacity(live.len());
        for (r, &seq) in live.iter().enumerate() {
            let token = pick_token(&rows[r], config, &mut rngs[seq]);
            if config.stop_tokens.contains(&token) {
                out[seq].finished = true;
            } else {
                out[seq].tokens.push(token);
                next.push(token);
                keep.push(r);
            }
        }
        if keep.is_empty() || step + 1 == steps {
            break;
        }
        if keep.len() != live.len() {
            cache.select_rows(&keep)?;
            pad = keep.iter().map(|&r| pad[r]).collect();
            live = keep.iter().map(|&r| live[r]).collect();
        }
        let ids = Tensor::from_vec(next, (live.len(), 1), &device)?;
        logits = model.forward_padded(&ids, &pad, &mut cache)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_the_first_maximum_and_top_p_keeps_the_nucleus() {
        let cfg = GenerationConfig::default();
        let mut rng = SeqRng::new(1, 0);
        assert_eq!(pick_token(&[0.0, 3.0, 3.0, 1.0], &cfg, &mut rng), 1);
        // Probabilities ~ [0.64, 0.24, 0.09, 0.03]: top_p 0.5 keeps the first token only.
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let nucleus = GenerationConfig {
            temperature: 1.0,
            top_p: 0.5,
            ..cfg.clone()
        };
        for i in 0..50 {
            assert_eq!(pick_token(&logits, &nucleus, &mut SeqRng::new(i, 0)), 0);
        }
        // top_p 1 at temperature 1 reaches every token over enough draws.
        let full = GenerationConfig {
            temperature: 1.0,
            ..cfg
        };
        let mut seen = [false; 4];
        let mut rng = SeqRng::new(7, 3);
        for _ in 0..2000 {
            seen[pick_token(&logits, &full, &mut rng) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn batches_group_by_length_longest_first() {
        assert_eq!(
            plan_batches(&[3, 10, 5, 10, 1], 2),
            vec![vec![1, 3], vec![2, 0], vec![4]]
        );
        assert_eq!(plan_batches(&[], 4), Vec::<Vec<usize>>::new());
    }
}
