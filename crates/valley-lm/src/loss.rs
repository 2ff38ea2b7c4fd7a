//! Next-token cross-entropy with a per-position weight (1 on assistant tokens, 0 elsewhere, when
//! the loss is on the assistant turn only).

use candle_core::{DType, Tensor, D};

use crate::Result;

/// Mean cross-entropy of `logits [b, t, v]` predicting `targets [b, t]` (u32), weighted by `weights
/// [b, t]` (f32; 0 excludes a position). Returns `(loss, weight_sum)`; the loss is 0 when nothing
/// is weighted.
///
/// # Errors
/// Shape errors.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
) -> Result<(Tensor, f64)> {
    let (b, t, v) = logits.dims3()?;
    // Half-precision logits are promoted; f32 and f64 stay as they are.
    let dtype = match logits.dtype() {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    };
    let logits = logits.reshape((b * t, v))?.to_dtype(dtype)?;
    let w = weights.reshape(b * t)?.to_dtype(dtype)?;
    if crate::fused::applies(&[&logits]) {
        let total = w.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let loss = crate::fused::weighted_nll(&logits, &targets.reshape(b * t)?, &w)?.sum_all()?;
        let loss = if total > 0.0 { (loss / total)? } else { loss };
        return Ok((loss, total));
    }
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = log_probs
        .gather(&targets.reshape((b * t, 1))?, 1)?
        .squeeze(1)?;
    let total = w.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let loss = (picked * &w)?.sum_all()?.neg()?;
    let loss = if total > 0.0 { (loss / total)? } else { loss };
    Ok((loss, total))
}
