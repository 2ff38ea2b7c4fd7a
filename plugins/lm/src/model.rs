//! The decoder: embeddings, `num_hidden_layers` pre-norm blocks (grouped-query attention with
//! RoPE, SwiGLU MLP), a final RMSNorm and the output projection. Forward passes return logits at
//! every position (training) and take an optional [`KvCache`] (generation).

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::{
    ops::{causal_mask, repeat_kv, rms_norm, rope, rope_tables, softmax_last},
    ModelConfig, Result,
};

/// Every parameter of a model, by Hugging Face name, with its shape.
pub fn parameter_shapes(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let kv = cfg.kv_heads() * cfg.head_dim();
    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        shapes.push((format!("{p}.input_layernorm.weight"), vec![h]));
        for (name, out) in [("q_proj", h), ("k_proj", kv), ("v_proj", kv)] {
            shapes.push((format!("{p}.self_attn.{name}.weight"), vec![out, h]));
            if cfg.qkv_bias() {
                shapes.push((format!("{p}.self_attn.{name}.bias"), vec![out]));
            }
        }
        shapes.push((format!("{p}.self_attn.o_proj.weight"), vec![h, h]));
        shapes.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        shapes.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
        shapes.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
        shapes.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
    }
    shapes.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        shapes.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    shapes
}

fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = x.broadcast_matmul(&w.t()?)?;
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

struct Layer {
    input_norm: Tensor,
    q: (Tensor, Option<Tensor>),
    k: (Tensor, Option<Tensor>),
    v: (Tensor, Option<Tensor>),
    o: Tensor,
    post_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// Keys and values of earlier positions, per layer, for incremental generation.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .and_then(|(k, _)| k.dim(2).ok())
            .unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (call between sequences, and never keep one across training steps).
    pub fn clear(&mut self) {
        self.layers.clear();
    }
}

/// A Llama/Qwen2-family decoder.
pub struct Decoder {
    cfg: ModelConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
}

impl Decoder {
    /// Builds the model from weights under Hugging Face names (a `VarMap` for training, or
    /// safetensors files for inference).
    ///
    /// # Errors
    /// A missing weight or a shape mismatch, named.
    pub fn new(cfg: &ModelConfig, vb: &VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let shapes: std::collections::HashMap<String, Vec<usize>> =
            parameter_shapes(cfg).into_iter().collect();
        let get = |name: &str| -> Result<Tensor> { Ok(vb.get(shapes[name].as_slice(), name)?) };
        let opt = |name: &str| -> Result<Option<Tensor>> {
            if shapes.contains_key(name) {
                get(name).map(Some)
            } else {
                Ok(None)
            }
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let proj = |n: &str| -> Result<(Tensor, Option<Tensor>)> {
                Ok((
                    get(&format!("{p}.self_attn.{n}.weight"))?,
                    opt(&format!("{p}.self_attn.{n}.bias"))?,
                ))
            };
            layers.push(Layer {
                input_norm: get(&format!("{p}.input_layernorm.weight"))?,
                q: proj("q_proj")?,
                k: proj("k_proj")?,
                v: proj("v_proj")?,
                o: get(&format!("{p}.self_attn.o_proj.weight"))?,
                post_norm: get(&format!("{p}.post_attention_layernorm.weight"))?,
                gate: get(&format!("{p}.mlp.gate_proj.weight"))?,
                up: get(&format!("{p}.mlp.up_proj.weight"))?,
                down: get(&format!("{p}.mlp.down_proj.weight"))?,
            });
        }
        let embed = get("model.embed_tokens.weight")?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            get("lm_head.weight")?
        };
        let (cos, sin) = rope_tables(
            cfg.head_dim(),
            cfg.max_position_embeddings,
            cfg.rope_theta,
            embed.dtype(),
            embed.device(),
        )?;
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            norm: get("model.norm.weight")?,
            lm_head,
            cos,
            sin,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (u32). With a cache, the ids
    /// continue the cached positions and the cache is extended.
    ///
    /// # Errors
    /// Shape errors, or a sequence longer than `max_position_embeddings`.
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        if offset + t > self.cfg.max_position_embeddings {
            return Err(crate::Error::Config(format!(
                "sequence of {} positions exceeds max_position_embeddings {}",
                offset + t,
                self.cfg.max_position_embeddings
            )));
        }
        let mut cache = cache;
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize(self.layers.len(), None);
        }
        let cos = self.cos.narrow(0, offset, t)?;
        let sin = self.sin.narrow(0, offset, t)?;
        let mut x =
            self.embed
                .embedding(&ids.flatten_all()?)?
                .reshape((b, t, self.cfg.hidden_size))?;
        let mask = causal_mask(t, offset + t, offset, x.dtype(), x.device())?;
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let h = rms_norm(&x, &layer.input_norm, self.cfg.rms_norm_eps)?;
            x = (x + self.attention(layer, &h, &cos, &sin, &mask, slot)?)?;
            let h = rms_norm(&x, &layer.post_norm, self.cfg.rms_norm_eps)?;
            let mlp = (linear(&h, &layer.gate, None)?.silu()? * linear(&h, &layer.up, None)?)?;
            x = (x + linear(&mlp, &layer.down, None)?)?;
        }
        let x = rms_norm(&x, &self.norm, self.cfg.rms_norm_eps)?;
        linear(&x, &self.lm_head, None)
    }

    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        slot: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (heads, kv_heads, d) = (
            self.cfg.num_attention_heads,
            self.cfg.kv_heads(),
            self.cfg.head_dim(),
        );
        let split = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?)
        };
        let q = rope(
            &split(linear(x, &layer.q.0, layer.q.1.as_ref())?, heads)?,
            cos,
            sin,
        )?;
        let mut k = rope(
            &split(linear(x, &layer.k.0, layer.k.1.as_ref())?, kv_heads)?,
            cos,
            sin,
        )?;
        let mut v = split(linear(x, &layer.v.0, layer.v.1.as_ref())?, kv_heads)?;
        if let Some(slot) = slot {
            if let Some((pk, pv)) = slot.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let k = repeat_kv(&k, heads / kv_heads)?.contiguous()?;
        let v = repeat_kv(&v, heads / kv_heads)?.contiguous()?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (d as f64).sqrt())?.broadcast_add(mask)?;
        let probs = softmax_last(&scores)?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, heads * d))?;
        linear(&out, &layer.o, None)
    }

    /// Logits of the last position only, `[batch, vocab]`, for generation.
    ///
    /// # Errors
    /// As [`Decoder::forward`].
    pub fn forward_last(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let logits = self.forward(ids, cache)?;
        let t = logits.dim(1)?;
        Ok(logits.narrow(1, t - 1, 1)?.squeeze(1)?)
    }

    /// The weights' dtype.
    pub fn dtype(&self) -> DType {
        self.embed.dtype()
    }

    /// Index of the largest logit in the last dimension.
    ///
    /// # Errors
    /// Shape errors.
    pub fn argmax_last(logits: &Tensor) -> Result<Vec<u32>> {
        Ok(logits.argmax(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?)
    }
}
