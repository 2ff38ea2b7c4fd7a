//! SwiGLU on the packed output of one `[gate; up]` projection.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, D};

use super::{applies, cpu_slice, for_each_chunk, msg, read, slice, tensor, Real, ROWS_PER_CHUNK};
use crate::Result;

/// `silu(gate) * up` where `gate_up [..., 2·i]` holds the gate in its first `i` columns and up in
/// the last `i` (one matmul against the stacked `[gate_proj; up_proj]` weights gives it).
/// Returns `[..., i]`.
///
/// # Errors
/// An odd last dimension.
pub fn swiglu_packed(gate_up: &Tensor) -> Result<Tensor> {
    let width = gate_up.dim(D::Minus1)?;
    if width % 2 != 0 {
        return Err(msg("swiglu", format!("packed width {width} is odd")).into());
    }
    if !applies(&[gate_up]) {
        let i = width / 2;
        let (gate, up) = (
            gate_up.narrow(D::Minus1, 0, i)?,
            gate_up.narrow(D::Minus1, i, i)?,
        );
        return Ok((gate.silu()? * up)?);
    }
    Ok(gate_up.contiguous()?.apply_op1(SwiGlu)?)
}

struct SwiGlu;

fn sigmoid<T: Real>(x: T) -> T {
    (T::one() + (-x).exp_fast()).recip()
}

impl SwiGlu {
    fn fwd<T: Real>(x: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice::<T>("swiglu", x, l)?;
        let width = l.dims().last().copied().unwrap_or(0);
        let i = width / 2;
        let mut y = vec![T::zero(); x.len() / 2];
        for_each_chunk(&mut y, i * ROWS_PER_CHUNK, |k, y| {
            let x = &x[k * width * ROWS_PER_CHUNK..][..2 * y.len()];
            for (y, x) in y.chunks_mut(i).zip(x.chunks(width)) {
                let (g, u) = x.split_at(i);
                for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                    *y = g * sigmoid(g) * u;
                }
            }
        });
        let mut dims = l.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = i;
        }
        Ok((T::to_cpu_storage_owned(y), Shape::from(dims)))
    }

    fn bwd<T: Real>(x: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
        let dy = dy.contiguous()?;
        let ((xs, xl), (ds, dl)) = (read(x), read(&dy));
        let x = cpu_slice::<T>("swiglu", &xs, xl)?;
        let dy = cpu_slice::<T>("swiglu", &ds, dl)?;
        let width = xl.dims().last().copied().unwrap_or(0);
        let i = width / 2;
        let mut dx = vec![T::zero(); x.len()];
        for_each_chunk(&mut dx, width * ROWS_PER_CHUNK, |k, dx| {
            let x = &x[k * width * ROWS_PER_CHUNK..][..dx.len()];
            let dy = &dy[k * i * ROWS_PER_CHUNK..][..dx.len() / 2];
            for ((dx, x), dy) in dx.chunks_mut(width).zip(x.chunks(width)).zip(dy.chunks(i)) {
                let (g, u) = x.split_at(i);
                let (dg, du) = dx.split_at_mut(i);
                for ((((dg, du), &g), &u), &dy) in
                    dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dy)
                {
                    let s = sigmoid(g);
                    *du = dy * g * s;
                    // silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
                    *dg = dy * u * s * (T::one() + g * (T::one() - s));
                }
            }
        });
        tensor(dx, xl.shape())
    }
}

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "valley-swiglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match s {
            CpuStorage::F32(_) => Self::fwd::<f32>(s, l),
            CpuStorage::F64(_) => Self::fwd::<f64>(s, l),
            _ => Err(msg("swiglu", "only f32 and f64")),
        }
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(match x.dtype() {
            DType::F32 => Self::bwd::<f32>(x, dy)?,
            _ => Self::bwd::<f64>(x, dy)?,
        }))
    }
}
