//! The model's building blocks, composed only of candle primitives that have a backward pass.

use candle_core::{DType, Device, Tensor, D};

use crate::Result;

/// RMSNorm: `x / sqrt(mean(x²) + eps) * weight`, over the last dimension, computed in f32 for
/// half-precision inputs.
///
/// # Errors
/// Shape errors.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let internal = if matches!(dtype, DType::F16 | DType::BF16) {
        DType::F32
    } else {
        dtype
    };
    let xf = x.to_dtype(internal)?;
    let rms = (xf.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
    let normed = xf.broadcast_div(&rms)?.to_dtype(dtype)?;
    Ok(normed.broadcast_mul(weight)?)
}

/// Rotary tables `(cos, sin)` of shape `[positions, head_dim]`, Hugging Face's layout (the two
/// halves of a head rotate together).
///
/// # Errors
/// Allocation errors.
pub fn rope_tables(
    head_dim: usize,
    positions: usize,
    theta: f64,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    // In f64 and cast at the end: f32 tables cost an f64 model about 5e-9 in its logits.
    let half = head_dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64))
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
    let pos: Vec<f64> = (0..positions).map(|p| p as f64).collect();
    let pos = Tensor::from_vec(pos, (positions, 1), device)?;
    let freqs = pos.broadcast_mul(&inv_freq)?;
    let freqs = Tensor::cat(&[&freqs, &freqs], 1)?;
    Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
}

/// Applies rotary embeddings to `x` of shape `[batch, heads, seq, head_dim]` with tables already
/// narrowed to the sequence's positions (`[seq, head_dim]`).
///
/// # Errors
/// Shape errors.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

/// Repeats key/value heads for grouped-query attention: `[b, kv, s, d]` → `[b, kv·n, s, d]`.
///
/// # Errors
/// Shape errors.
pub fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, kv, s, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, kv, n, s, d))?
        .reshape((b, kv * n, s, d))?)
}

/// An additive causal mask `[q_len, kv_len]` for queries at positions `offset..offset+q_len`:
/// 0 where a query may attend, −∞ where it may not.
///
/// # Errors
/// Allocation errors.
pub fn causal_mask(
    q_len: usize,
    kv_len: usize,
    offset: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let mask: Vec<f32> = (0..q_len)
        .flat_map(|i| {
            (0..kv_len).map(move |j| {
                if j > i + offset {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (q_len, kv_len), device)?.to_dtype(dtype)?)
}

/// Softmax over the last dimension, composed (max, exp, sum, divide) so it has a backward pass.
///
/// # Errors
/// Shape errors.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::softmax(x, D::Minus1)?)
}
