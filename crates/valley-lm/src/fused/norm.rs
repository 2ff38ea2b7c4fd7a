//! RMSNorm and the projections' bias add.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, D};

use super::{
    applies, cpu_slice, for_each_chunk, map_chunks, msg, read, slice, tensor, Real, ROWS_PER_CHUNK,
};
use crate::Result;

/// `x / sqrt(mean(x²) + eps) * weight` over the last dimension (see [`crate::ops::rms_norm`]).
///
/// # Errors
/// Shape errors.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if !applies(&[x, weight]) {
        return crate::ops::rms_norm(x, weight, eps);
    }
    Ok(x.contiguous()?
        .apply_op2(&weight.contiguous()?, RmsNorm { eps })?)
}

struct RmsNorm {
    eps: f64,
}

fn inv_rms<T: Real>(row: &[T], eps: f64) -> T {
    let sum: T = row.iter().fold(T::zero(), |acc, &v| acc + v * v);
    let n = T::from(row.len()).expect("row length fits a float");
    (sum / n + T::from(eps).expect("eps fits a float"))
        .sqrt()
        .recip()
}

impl RmsNorm {
    fn fwd<T: Real>(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (
            slice::<T>("rms_norm", x, lx)?,
            slice::<T>("rms_norm", w, lw)?,
        );
        let n = w.len();
        if lx.shape().dims().last() != Some(&n) {
            return Err(msg(
                "rms_norm",
                "weight length differs from the last dimension",
            ));
        }
        let mut y = vec![T::zero(); x.len()];
        let chunk = n * ROWS_PER_CHUNK;
        for_each_chunk(&mut y, chunk, |k, y| {
            let x = &x[k * chunk..k * chunk + y.len()];
            for (y, x) in y.chunks_mut(n).zip(x.chunks(n)) {
                let r = inv_rms(x, self.eps);
                for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                    *y = x * r * w;
                }
            }
        });
        Ok((T::to_cpu_storage_owned(y), lx.shape().clone()))
    }

    fn bwd<T: Real>(
        &self,
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let g = g.contiguous()?;
        let ((xs, xl), (ws, wl), (gs, gl)) = (read(x), read(w), read(&g));
        let x = cpu_slice::<T>("rms_norm", &xs, xl)?;
        let w = cpu_slice::<T>("rms_norm", &ws, wl)?;
        let g = cpu_slice::<T>("rms_norm", &gs, gl)?;
        let n = w.len();
        let n_t = T::from(n).expect("row length fits a float");
        let mut dx = vec![T::zero(); x.len()];
        let chunk = n * ROWS_PER_CHUNK;
        let partial_dw: Vec<Vec<T>> = map_chunks(&mut dx, chunk, |k, dx| {
            let (x, g) = (
                &x[k * chunk..k * chunk + dx.len()],
                &g[k * chunk..k * chunk + dx.len()],
            );
            let mut dw = vec![T::zero(); n];
            for ((dx, x), g) in dx.chunks_mut(n).zip(x.chunks(n)).zip(g.chunks(n)) {
                let r = inv_rms(x, self.eps);
                // d/dx of x·r·w against g: r·(g∘w) − x·r³·⟨g∘w, x⟩/n.
                let dot = x
                    .iter()
                    .zip(g)
                    .zip(w)
                    .fold(T::zero(), |acc, ((&x, &g), &w)| acc + g * w * x);
                let c = r * r * r * dot / n_t;
                for (((dx, &x), &g), (&w, dw)) in
                    dx.iter_mut().zip(x).zip(g).zip(w.iter().zip(dw.iter_mut()))
                {
                    *dx = r * g * w - x * c;
                    *dw += g * x * r;
                }
            }
            dw
        });
        let mut dw = vec![T::zero(); n];
        for part in partial_dw {
            for (a, b) in dw.iter_mut().zip(part) {
                *a += b;
            }
        }
        Ok((tensor(dx, xl.shape())?, tensor(dw, wl.shape())?))
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "valley-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match s1 {
            CpuStorage::F32(_) => self.fwd::<f32>(s1, l1, s2, l2),
            CpuStorage::F64(_) => self.fwd::<f64>(s1, l1, s2, l2),
            _ => Err(msg("rms_norm", "only f32 and f64")),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = match x.dtype() {
            DType::F32 => self.bwd::<f32>(x, w, g)?,
            _ => self.bwd::<f64>(x, w, g)?,
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// `y + bias` over the last dimension. candle's broadcast add reduces the bias gradient with a
/// strided sum over every row (2 % of a step); here it is a row-by-row accumulation.
///
/// # Errors
/// Shape errors.
pub fn add_bias(y: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !applies(&[y, bias]) || bias.rank() != 1 || y.dim(D::Minus1)? != bias.dim(0)? {
        return Ok(y.broadcast_add(bias)?);
    }
    Ok(y.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)?)
}

struct AddBias;

impl AddBias {
    fn fwd<T: Real>(
        y: &CpuStorage,
        ly: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, b) = (slice::<T>("bias", y, ly)?, slice::<T>("bias", b, lb)?);
        let mut out = y.to_vec();
        for row in out.chunks_mut(b.len()) {
            for (o, &b) in row.iter_mut().zip(b) {
                *o += b;
            }
        }
        Ok((T::to_cpu_storage_owned(out), ly.shape().clone()))
    }

    fn bias_grad<T: Real>(g: &Tensor, n: usize) -> candle_core::Result<Tensor> {
        let g = g.contiguous()?;
        let (gs, gl) = read(&g);
        let g = cpu_slice::<T>("bias", &gs, gl)?;
        let mut db = vec![T::zero(); n];
        for row in g.chunks(n) {
            for (d, &x) in db.iter_mut().zip(row) {
                *d += x;
            }
        }
        tensor(db, &Shape::from(n))
    }
}

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "valley-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match s1 {
            CpuStorage::F32(_) => Self::fwd::<f32>(s1, l1, s2, l2),
            CpuStorage::F64(_) => Self::fwd::<f64>(s1, l1, s2, l2),
            _ => Err(msg("bias", "only f32 and f64")),
        }
    }

    fn bwd(
        &self,
        _y: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let n = bias.dim(0)?;
        let db = match g.dtype() {
            DType::F32 => Self::bias_grad::<f32>(g, n)?,
            _ => Self::bias_grad::<f64>(g, n)?,
        };
        Ok((Some(g.clone()), Some(db)))
    }
}
