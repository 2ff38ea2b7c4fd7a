//! The weighted next-token cross-entropy.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, WithDType};

use super::{cpu_slice, for_each_chunk, max_of, msg, read, slice, sum_exp_shifted, tensor, Real};
use crate::Result;

/// Per-position weighted negative log-likelihood `weights[i] · (logsumexp(logits[i]) −
/// logits[i, targets[i]])` for `logits [n, vocab]`, `targets [n]` (u32) and `weights [n]` (the
/// logits' dtype). The gradient flows to the logits only.
///
/// # Errors
/// Shape errors, a target outside the vocabulary, or tensors the kernels do not apply to.
pub fn weighted_nll(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (n, _) = logits.dims2()?;
    if targets.dims() != [n] || weights.dims() != [n] || targets.dtype() != DType::U32 {
        return Err(msg(
            "cross_entropy",
            "targets and weights must be [n], targets u32",
        )
        .into());
    }
    let op = CrossEntropy {
        logsumexp: Mutex::new(None),
    };
    Ok(logits
        .contiguous()?
        .apply_op3(&targets.contiguous()?, &weights.contiguous()?, op)?)
}

struct CrossEntropy {
    logsumexp: Mutex<Option<Vec<f64>>>,
}

fn logsumexp<T: Real>(row: &[T]) -> T {
    let max = max_of(row);
    max + sum_exp_shifted(row, max).ln()
}

impl CrossEntropy {
    fn fwd<T: Real>(
        &self,
        logits: &[T],
        targets: &[u32],
        weights: &[T],
        vocab: usize,
    ) -> candle_core::Result<Vec<T>> {
        if let Some(&bad) = targets.iter().find(|&&t| t as usize >= vocab) {
            return Err(msg(
                "cross_entropy",
                format!("target {bad} outside a vocabulary of {vocab}"),
            ));
        }
        let mut lse = vec![T::zero(); targets.len()];
        for_each_chunk(&mut lse, super::ROWS_PER_CHUNK, |k, lse| {
            let first = k * super::ROWS_PER_CHUNK;
            for (i, l) in lse.iter_mut().enumerate() {
                *l = logsumexp(&logits[(first + i) * vocab..(first + i + 1) * vocab]);
            }
        });
        let out = lse
            .iter()
            .zip(targets)
            .zip(weights)
            .enumerate()
            .map(|(i, ((&l, &t), &w))| w * (l - logits[i * vocab + t as usize]))
            .collect();
        *self.logsumexp.lock().expect("logsumexp lock") =
            Some(lse.into_iter().map(|v| WithDType::to_f64(v)).collect());
        Ok(out)
    }

    fn bwd<T: Real>(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        weights: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (_, vocab) = logits.dims2()?;
        let lse = self.logsumexp.lock().expect("logsumexp lock");
        let lse = lse
            .as_ref()
            .ok_or_else(|| msg("cross_entropy", "backward before the forward"))?;
        let grad = grad.contiguous()?;
        let ((ls, ll), (ws, wl), (gs, gl)) = (read(logits), read(weights), read(&grad));
        let x = cpu_slice::<T>("cross_entropy", &ls, ll)?;
        let w = cpu_slice::<T>("cross_entropy", &ws, wl)?;
        let g = cpu_slice::<T>("cross_entropy", &gs, gl)?;
        let targets = targets.to_vec1::<u32>()?;
        let mut dx = vec![T::zero(); x.len()];
        for_each_chunk(&mut dx, vocab, |i, dx| {
            let x = &x[i * vocab..(i + 1) * vocab];
            let c = g[i] * w[i];
            if c == T::zero() {
                return;
            }
            let l = T::from(lse[i]).expect("logsumexp fits a float");
            for (dx, &x) in dx.iter_mut().zip(x) {
                *dx = c * (x - l).exp_fast();
            }
            let t = targets[i] as usize;
            dx[t] -= c;
        });
        tensor(dx, ll.shape())
    }
}

impl CustomOp3 for CrossEntropy {
    fn name(&self) -> &'static str {
        "valley-weighted-nll"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, vocab) = l1.shape().dims2()?;
        let targets = match s2 {
            CpuStorage::U32(t) => {
                let (a, b) = l2
                    .contiguous_offsets()
                    .ok_or_else(|| msg("cross_entropy", "targets not contiguous"))?;
                &t[a..b]
            }
            _ => return Err(msg("cross_entropy", "targets must be u32")),
        };
        let out = match s1 {
            CpuStorage::F32(_) => f32::to_cpu_storage_owned(self.fwd::<f32>(
                slice("cross_entropy", s1, l1)?,
                targets,
                slice("cross_entropy", s3, l3)?,
                vocab,
            )?),
            CpuStorage::F64(_) => f64::to_cpu_storage_owned(self.fwd::<f64>(
                slice("cross_entropy", s1, l1)?,
                targets,
                slice("cross_entropy", s3, l3)?,
                vocab,
            )?),
            _ => return Err(msg("cross_entropy", "only f32 and f64")),
        };
        Ok((out, Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        weights: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = match logits.dtype() {
            DType::F32 => self.bwd::<f32>(logits, targets, weights, grad)?,
            _ => self.bwd::<f64>(logits, targets, weights, grad)?,
        };
        Ok((Some(dx), None, None))
    }
}
