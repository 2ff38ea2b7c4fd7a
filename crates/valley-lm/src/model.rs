//! The decoder: embeddings, `num_hidden_layers` pre-norm blocks (grouped-query attention with
//! RoPE, SwiGLU MLP), a final RMSNorm and the output projection. Forward passes return logits at
//! every position (training) and take an optional [`KvCache`] (generation). For a batch of
//! prompts of different lengths, [`Decoder::forward_padded`] takes left-padded rows: each row's
//! positions start after its padding and no query attends to a padding key.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::{
    fused,
    fused::rms_norm,
    ops::{causal_mask, repeat_kv, rope, rope_tables, softmax_last},
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
    // One 2-D matmul over every position (a broadcast matmul would run one per batch row and sum
    // the weight's gradient over them in the backward pass).
    let y = match *x.dims() {
        [_, _] => x.matmul(&w.t()?)?,
        ref dims => {
            let cols = *dims.last().expect("a matrix or more");
            let rows = x.elem_count() / cols.max(1);
            let mut out = dims.to_vec();
            *out.last_mut().expect("a matrix or more") = w.dim(0)?;
            x.reshape((rows, cols))?.matmul(&w.t()?)?.reshape(out)?
        }
    };
    Ok(match b {
        Some(b) => fused::add_bias(&y, b)?,
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

impl Layer {
    /// The block with every weight cast to `dtype` (a differentiable op).
    fn cast(&self, dtype: DType) -> Result<Self> {
        let c = |t: &Tensor| t.to_dtype(dtype);
        let pair = |(w, b): &(Tensor, Option<Tensor>)| -> Result<(Tensor, Option<Tensor>)> {
            Ok((c(w)?, b.as_ref().map(c).transpose()?))
        };
        Ok(Self {
            input_norm: c(&self.input_norm)?,
            q: pair(&self.q)?,
            k: pair(&self.k)?,
            v: pair(&self.v)?,
            o: c(&self.o)?,
            post_norm: c(&self.post_norm)?,
            gate: c(&self.gate)?,
            up: c(&self.up)?,
            down: c(&self.down)?,
        })
    }

    /// One block's weights under `vb` (`model.layers.N`), by their Hugging Face names:
    /// `input_layernorm`, `self_attn.{q,k,v,o}_proj`, `post_attention_layernorm`,
    /// `mlp.{gate,up,down}_proj`.
    fn new(cfg: &ModelConfig, vb: &VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let kv = cfg.kv_heads() * cfg.head_dim();
        let attn = vb.pp("self_attn");
        let projection = |name: &str, out: usize| -> Result<(Tensor, Option<Tensor>)> {
            let p = attn.pp(name);
            let bias = if cfg.qkv_bias() {
                Some(p.get(out, "bias")?)
            } else {
                None
            };
            Ok((p.get((out, h), "weight")?, bias))
        };
        let mlp = vb.pp("mlp");
        Ok(Self {
            input_norm: vb.pp("input_layernorm").get(h, "weight")?,
            q: projection("q_proj", h)?,
            k: projection("k_proj", kv)?,
            v: projection("v_proj", kv)?,
            o: attn.pp("o_proj").get((h, h), "weight")?,
            post_norm: vb.pp("post_attention_layernorm").get(h, "weight")?,
            gate: mlp.pp("gate_proj").get((i, h), "weight")?,
            up: mlp.pp("up_proj").get((i, h), "weight")?,
            down: mlp.pp("down_proj").get((h, i), "weight")?,
        })
    }
}

/// One layer's cached keys and values: buffers `[batch, kv_heads, capacity, head_dim]` of which
/// the first `len` positions are filled. Appending writes in place (amortized O(1) per token)
/// instead of concatenating a new tensor every step, which made long generations copy the whole
/// cache several times per token.
#[derive(Debug, Clone)]
struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerCache {
    /// Appends `k`, `v` (`[batch, kv_heads, t, head_dim]`, contiguous) and returns views of every
    /// cached position.
    fn append(slot: &mut Option<Self>, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, kv, t, d) = k.dims4()?;
        let len = slot.as_ref().map_or(0, |c| c.len);
        let cap = slot.as_ref().map_or(0, |c| c.k.dim(2).unwrap_or(0));
        if len + t > cap {
            let new_cap = (2 * cap).max(len + t + 256);
            let grow = |old: Option<&Tensor>| -> Result<Tensor> {
                let buf = Tensor::zeros((b, kv, new_cap, d), k.dtype(), k.device())?;
                if let Some(old) = old {
                    buf.slice_set(&old.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
                }
                Ok(buf)
            };
            let (nk, nv) = (
                grow(slot.as_ref().map(|c| &c.k))?,
                grow(slot.as_ref().map(|c| &c.v))?,
            );
            *slot = Some(Self { k: nk, v: nv, len });
        }
        let c = slot.as_mut().expect("allocated above");
        c.k.slice_set(&k.contiguous()?, 2, len)?;
        c.v.slice_set(&v.contiguous()?, 2, len)?;
        c.len = len + t;
        Ok((c.k.narrow(2, 0, c.len)?, c.v.narrow(2, 0, c.len)?))
    }
}

/// Keys and values of earlier positions, per layer, for incremental generation. Writes are in
/// place: a cache is for inference only (no gradient flows through it), and a clone shares its
/// buffers with the original.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
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
            .map_or(0, |c| c.len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (call between sequences, and never keep one across training steps).
    pub fn clear(&mut self) {
        self.layers.clear();
    }

    /// Keeps only the given batch rows, in that order (generation drops finished sequences).
    ///
    /// # Errors
    /// An index out of range.
    pub fn select_rows(&mut self, rows: &[usize]) -> Result<()> {
        let Some(device) = self.layers.iter().flatten().map(|c| c.k.device()).next() else {
            return Ok(());
        };
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), device)?;
        for c in self.layers.iter_mut().flatten() {
            c.k = c.k.index_select(&idx, 0)?;
            c.v = c.v.index_select(&idx, 0)?;
        }
        Ok(())
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
        let (h, v) = (cfg.hidden_size, cfg.vocab_size);
        let vb_model = vb.pp("model");
        let vb_layers = vb_model.pp("layers");
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| Layer::new(cfg, &vb_layers.pp(l)))
            .collect::<Result<Vec<_>>>()?;
        let embed = vb_model.pp("embed_tokens").get((v, h), "weight")?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            vb.pp("lm_head").get((v, h), "weight")?
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
            norm: vb_model.pp("norm").get(h, "weight")?,
            lm_head,
            cos,
            sin,
        })
    }

    /// The same model computing in `dtype`: mixed precision as PyTorch AMP does it. Every weight
    /// is cast with a differentiable op, so a loss computed through the cast model sends its
    /// gradients back to this model's weights in their own dtype: keep f32 master weights here,
    /// cast to bf16 for each step's forward and backward, and the optimizer updates the f32
    /// masters with f32 gradients (an update far below a bf16 step is not rounded away). The same
    /// dtype returns a model sharing these weights.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn cast(&self, dtype: DType) -> Result<Self> {
        let embed = self.embed.to_dtype(dtype)?;
        let lm_head = if self.cfg.tie_word_embeddings {
            // One cast shared by both uses, as the weight itself is.
            embed.clone()
        } else {
            self.lm_head.to_dtype(dtype)?
        };
        Ok(Self {
            cfg: self.cfg.clone(),
            embed,
            layers: self
                .layers
                .iter()
                .map(|l| l.cast(dtype))
                .collect::<Result<_>>()?,
            norm: self.norm.to_dtype(dtype)?,
            lm_head,
            cos: self.cos.to_dtype(dtype)?,
            sin: self.sin.to_dtype(dtype)?,
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
        self.forward_inner(ids, cache, None, false)
    }

    /// Logits of the last column only, `[batch, vocab]`, for left-padded rows: row `i` has
    /// `pad[i]` padding columns at the start of the sequence (counted over the cache and `ids`
    /// together, so the same `pad` is passed at every step). A row's positions start at 0 after
    /// its padding, and no query attends to a padding key, so each row's logits equal those of
    /// the row alone without padding.
    ///
    /// # Errors
    /// Shape errors, `pad` not one per row, or a sequence longer than `max_position_embeddings`.
    pub fn forward_padded(
        &self,
        ids: &Tensor,
        pad: &[usize],
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        if pad.len() != ids.dim(0)? {
            return Err(crate::Error::Config(format!(
                "{} padding lengths for {} rows",
                pad.len(),
                ids.dim(0)?
            )));
        }
        self.forward_inner(ids, Some(cache), Some(pad), true)
    }

    fn forward_inner(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        pad: Option<&[usize]>,
        last_only: bool,
    ) -> Result<Tensor> {
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
        let mut x =
            self.embed
                .embedding(&ids.flatten_all()?)?
                .reshape((b, t, self.cfg.hidden_size))?;
        // Training and full recomputes on the CPU take the fused kernels (causal attention from
        // position 0, no mask tensor); generation and other devices the composed ops.
        let fused_path = cache.is_none() && pad.is_none() && fused::applies(&[&x, &self.cos]);
        let (cos, sin, mask) = match pad {
            None if fused_path => (self.cos.narrow(0, 0, t)?, self.sin.narrow(0, 0, t)?, None),
            None => (
                self.cos.narrow(0, offset, t)?,
                self.sin.narrow(0, offset, t)?,
                Some(causal_mask(t, offset + t, offset, x.dtype(), x.device())?),
            ),
            Some(pad) => {
                // Per-row positions `[b, 1, t, d]` tables and a `[b, 1, t, kv]` mask.
                let positions: Vec<u32> = pad
                    .iter()
                    .flat_map(|&p| (offset..offset + t).map(move |c| c.saturating_sub(p) as u32))
                    .collect();
                let positions = Tensor::from_vec(positions, b * t, x.device())?;
                let d = self.cfg.head_dim();
                let table = |m: &Tensor| -> Result<Tensor> {
                    Ok(m.index_select(&positions, 0)?.reshape((b, 1, t, d))?)
                };
                let kv = offset + t;
                // Plain loops and slice fills: this runs every step, and the dev profile builds
                // this crate without optimization.
                let mut mask = vec![0f32; b * t * kv];
                for (i, &p) in pad.iter().enumerate() {
                    for j in 0..t {
                        let q = offset + j;
                        let row = &mut mask[(i * t + j) * kv..(i * t + j + 1) * kv];
                        // Causal: no later key. Padding keys hidden; a padding query sees only
                        // itself, so its row stays finite.
                        row[q + 1..].fill(f32::NEG_INFINITY);
                        row[..p.min(q)].fill(f32::NEG_INFINITY);
                    }
                }
                let mask =
                    Tensor::from_vec(mask, (b, 1, t, kv), x.device())?.to_dtype(x.dtype())?;
                (table(&self.cos)?, table(&self.sin)?, Some(mask))
            }
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let h = rms_norm(&x, &layer.input_norm, self.cfg.rms_norm_eps)?;
            let attention = match &mask {
                None => self.fused_attention(layer, &h, &cos, &sin)?,
                Some(mask) => self.attention(layer, &h, &cos, &sin, mask, slot)?,
            };
            x = (x + attention)?;
            let h = rms_norm(&x, &layer.post_norm, self.cfg.rms_norm_eps)?;
            let mlp = if fused_path {
                // One matmul against the stacked [gate; up] weights.
                let gate_up = Tensor::cat(&[&layer.gate, &layer.up], 0)?;
                fused::swiglu_packed(&linear(&h, &gate_up, None)?)?
            } else {
                (linear(&h, &layer.gate, None)?.silu()? * linear(&h, &layer.up, None)?)?
            };
            x = (x + linear(&mlp, &layer.down, None)?)?;
        }
        let x = if last_only {
            x.narrow(1, t - 1, 1)?.squeeze(1)?
        } else {
            x
        };
        let x = rms_norm(&x, &self.norm, self.cfg.rms_norm_eps)?;
        linear(&x, &self.lm_head, None)
    }

    /// Attention through the CPU kernels: one matmul against the stacked `[q; k; v]` weights,
    /// whose output the kernel reads in place (no split, no transpose).
    fn fused_attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (heads, kv_heads, d) = (
            self.cfg.num_attention_heads,
            self.cfg.kv_heads(),
            self.cfg.head_dim(),
        );
        let weight = Tensor::cat(&[&layer.q.0, &layer.k.0, &layer.v.0], 0)?;
        let bias = match (&layer.q.1, &layer.k.1, &layer.v.1) {
            (Some(q), Some(k), Some(v)) => Some(Tensor::cat(&[q, k, v], 0)?),
            _ => None,
        };
        let qkv = linear(x, &weight, bias.as_ref())?.reshape((b, t, heads + 2 * kv_heads, d))?;
        let out = fused::causal_attention_packed(&qkv, heads, kv_heads, cos, sin)?;
        linear(&out.reshape((b, t, heads * d))?, &layer.o, None)
    }

    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        slot: Option<&mut Option<LayerCache>>,
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
        let k = rope(
            &split(linear(x, &layer.k.0, layer.k.1.as_ref())?, kv_heads)?,
            cos,
            sin,
        )?;
        let v = split(linear(x, &layer.v.0, layer.v.1.as_ref())?, kv_heads)?;
        let n_rep = heads / kv_heads;
        let scale = (d as f64).sqrt();
        let out = match slot {
            None => {
                // Training and full recompute: differentiable ops only.
                let k = repeat_kv(&k, n_rep)?.contiguous()?;
                let v = repeat_kv(&v, n_rep)?.contiguous()?;
                let scores = (q.matmul(&k.t()?.contiguous()?)? / scale)?.broadcast_add(mask)?;
                softmax_last(&scores)?.matmul(&v)?
            }
            Some(slot) => {
                // Generation: attend over the cache's views without copying them, and without
                // repeating key/value heads: each kv head's query heads are stacked as rows.
                let (k, v) = LayerCache::append(slot, &k, &v)?;
                let s = k.dim(2)?;
                let q = q.reshape((b, kv_heads, n_rep * t, d))?;
                let scores = (q.matmul(&k.t()?)? / scale)?
                    .reshape((b, heads, t, s))?
                    .broadcast_add(mask)?;
                softmax_last(&scores)?
                    .reshape((b, kv_heads, n_rep * t, s))?
                    .matmul(&v)?
                    .reshape((b, heads, t, d))?
            }
        };
        let out = out.transpose(1, 2)?.reshape((b, t, heads * d))?;
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
