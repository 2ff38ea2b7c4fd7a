//! CPU kernels for the training step's hot ops, each with a hand-written backward pass: RMSNorm,
//! SwiGLU, RoPE, causal grouped-query attention and the weighted cross-entropy.
//!
//! The composed versions in [`crate::ops`] and [`crate::loss`] build each of these from several
//! candle primitives; on the CPU every primitive is a separate pass over memory with its own
//! allocation, its own backward node and a zero-filled gradient buffer, and `perf` put more than
//! half of a training step there (BENCHMARKS.md). Here each op is one pass forward and one
//! backward, and attention skips the masked half of the scores and never repeats key/value heads.
//!
//! Every public function falls back to the composed ops where the kernels do not apply (a CUDA
//! tensor, a half-precision dtype) or when `VALLEY_LM_COMPOSED_OPS=1` is set (for A/B
//! measurements), so callers need not care. `tests/fused.rs` checks each kernel's forward and
//! gradients against the composed ops and against finite differences in f64.
//!
//! All kernels are deterministic: work is split into fixed chunks whose partial sums are combined
//! in a fixed order, whatever the thread count.

use std::sync::{Mutex, OnceLock};

use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Storage, Tensor, WithDType,
};
use rayon::prelude::*;

use crate::Result;

/// The float types the kernels are written for.
pub trait Real:
    WithDType
    + num_traits::Float
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + 'static
{
}
impl Real for f32 {}
impl Real for f64 {}

/// Rows per chunk of work (a fixed split keeps reductions deterministic across thread counts).
const ROWS_PER_CHUNK: usize = 64;
/// Query rows per attention block: each block computes scores against keys `0..end of block` only.
const ATTENTION_BLOCK: usize = 64;

fn composed_requested() -> bool {
    static COMPOSED: OnceLock<bool> = OnceLock::new();
    *COMPOSED.get_or_init(|| {
        std::env::var("VALLEY_LM_COMPOSED_OPS").is_ok_and(|v| !v.is_empty() && v != "0")
    })
}

/// Whether the kernels run for these tensors: all on the CPU, all f32 or all f64.
pub fn applies(tensors: &[&Tensor]) -> bool {
    let Some(first) = tensors.first() else {
        return false;
    };
    !composed_requested()
        && matches!(first.dtype(), DType::F32 | DType::F64)
        && tensors
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == first.dtype())
}

fn msg(op: &str, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("fused {op}: {what}"))
}

/// The contiguous elements of a CPU storage under `layout`.
fn slice<'a, T: Real>(
    op: &str,
    s: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(s)?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| msg(op, "input is not contiguous"))?;
    Ok(&data[start..end])
}

/// A tensor's storage, read-locked; see [`cpu_slice`].
fn read(t: &Tensor) -> (candle_core::StorageRef<'_>, &Layout) {
    t.storage_and_layout()
}

fn cpu_slice<'a, T: Real>(
    op: &str,
    s: &'a Storage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    match s {
        Storage::Cpu(cpu) => slice(op, cpu, layout),
        _ => Err(msg(op, "tensor is not on the CPU")),
    }
}

fn tensor<T: Real>(data: Vec<T>, shape: &Shape) -> candle_core::Result<Tensor> {
    Tensor::from_vec(data, shape.clone(), &candle_core::Device::Cpu)
}

/// A raw pointer that parallel tasks use to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct Out<T>(*mut T);
// SAFETY: every user writes only the elements its task owns (documented at each use).
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not the raw field).
    fn ptr(self) -> *mut T {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

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
        y.par_chunks_mut(n * ROWS_PER_CHUNK)
            .zip(x.par_chunks(n * ROWS_PER_CHUNK))
            .for_each(|(y, x)| {
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
        let partial_dw: Vec<Vec<T>> = dx
            .par_chunks_mut(n * ROWS_PER_CHUNK)
            .zip(x.par_chunks(n * ROWS_PER_CHUNK))
            .zip(g.par_chunks(n * ROWS_PER_CHUNK))
            .map(|((dx, x), g)| {
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
            })
            .collect();
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

// ---------------------------------------------------------------------------------------------
// SwiGLU

/// `silu(gate) * up`, the MLP's gated activation.
///
/// # Errors
/// Shape errors.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if !applies(&[gate, up]) || gate.shape() != up.shape() {
        return Ok((gate.silu()? * up)?);
    }
    Ok(gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)?)
}

struct SwiGlu;

fn sigmoid<T: Real>(x: T) -> T {
    (T::one() + (-x).exp()).recip()
}

impl SwiGlu {
    fn fwd<T: Real>(
        g: &CpuStorage,
        lg: &Layout,
        u: &CpuStorage,
        lu: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, u) = (slice::<T>("swiglu", g, lg)?, slice::<T>("swiglu", u, lu)?);
        let mut y = vec![T::zero(); g.len()];
        const CHUNK: usize = 1 << 14;
        y.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(|(y, (g, u))| {
                for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                    *y = g * sigmoid(g) * u;
                }
            });
        Ok((T::to_cpu_storage_owned(y), lg.shape().clone()))
    }

    fn bwd<T: Real>(
        gate: &Tensor,
        up: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let dy = dy.contiguous()?;
        let ((gs, gl), (us, ul), (ds, dl)) = (read(gate), read(up), read(&dy));
        let g = cpu_slice::<T>("swiglu", &gs, gl)?;
        let u = cpu_slice::<T>("swiglu", &us, ul)?;
        let dy = cpu_slice::<T>("swiglu", &ds, dl)?;
        let (mut dg, mut du) = (vec![T::zero(); g.len()], vec![T::zero(); g.len()]);
        const CHUNK: usize = 1 << 14;
        dg.par_chunks_mut(CHUNK)
            .zip(du.par_chunks_mut(CHUNK))
            .zip(
                g.par_chunks(CHUNK)
                    .zip(u.par_chunks(CHUNK))
                    .zip(dy.par_chunks(CHUNK)),
            )
            .for_each(|((dg, du), ((g, u), dy))| {
                for ((((dg, du), &g), &u), &dy) in
                    dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dy)
                {
                    let s = sigmoid(g);
                    *du = dy * g * s;
                    // silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
                    *dg = dy * u * s * (T::one() + g * (T::one() - s));
                }
            });
        Ok((tensor(dg, gl.shape())?, tensor(du, ul.shape())?))
    }
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "valley-swiglu"
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
            _ => Err(msg("swiglu", "only f32 and f64")),
        }
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dg, du) = match gate.dtype() {
            DType::F32 => Self::bwd::<f32>(gate, up, dy)?,
            _ => Self::bwd::<f64>(gate, up, dy)?,
        };
        Ok((Some(dg), Some(du)))
    }
}

// ---------------------------------------------------------------------------------------------
// RoPE

/// Rotary embeddings for `x` of shape `[batch, seq, heads, head_dim]` (the layout a projection
/// produces, no transpose needed) with tables `[seq, head_dim]` (Hugging Face's rotate-half
/// layout, as [`crate::ops::rope_tables`] makes them).
///
/// # Errors
/// Shape errors, or tensors the kernels do not apply to (check [`applies`] first).
pub fn rope_bthd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (_, t, _, d) = x.dims4()?;
    if cos.dims() != [t, d] || sin.dims() != [t, d] || d % 2 != 0 {
        return Err(msg(
            "rope",
            format!("tables {:?} for x {:?}", cos.dims(), x.dims()),
        )
        .into());
    }
    Ok(x.contiguous()?
        .apply_op3(&cos.contiguous()?, &sin.contiguous()?, Rope)?)
}

struct Rope;

/// Rotates every `[d]` row of `x` (rows grouped `heads` per position) with the position's
/// `(c, s)`; `inverse` applies the transpose (the backward pass).
fn rotate<T: Real>(
    x: &[T],
    c: &[T],
    s: &[T],
    t: usize,
    heads: usize,
    d: usize,
    inverse: bool,
) -> Vec<T> {
    let half = d / 2;
    let mut y = vec![T::zero(); x.len()];
    y.par_chunks_mut(t * heads * d)
        .zip(x.par_chunks(t * heads * d))
        .for_each(|(y, x)| {
            for (p, (y, x)) in y.chunks_mut(heads * d).zip(x.chunks(heads * d)).enumerate() {
                let (c, s) = (&c[p * d..(p + 1) * d], &s[p * d..(p + 1) * d]);
                for (y, x) in y.chunks_mut(d).zip(x.chunks(d)) {
                    for i in 0..half {
                        let (a, b) = (x[i], x[i + half]);
                        if inverse {
                            y[i] = a * c[i] + b * s[i + half];
                            y[i + half] = b * c[i + half] - a * s[i];
                        } else {
                            y[i] = a * c[i] - b * s[i];
                            y[i + half] = b * c[i + half] + a * s[i + half];
                        }
                    }
                }
            }
        });
    y
}

impl Rope {
    fn fwd<T: Real>(
        x: &CpuStorage,
        lx: &Layout,
        c: &CpuStorage,
        lc: &Layout,
        s: &CpuStorage,
        ls: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, t, h, d) = lx.shape().dims4()?;
        let y = rotate(
            slice::<T>("rope", x, lx)?,
            slice::<T>("rope", c, lc)?,
            slice::<T>("rope", s, ls)?,
            t,
            h,
            d,
            false,
        );
        Ok((T::to_cpu_storage_owned(y), lx.shape().clone()))
    }

    fn bwd<T: Real>(cos: &Tensor, sin: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
        let g = g.contiguous()?;
        let (_, t, h, d) = g.dims4()?;
        let ((gs, gl), (cs, cl), (ss, sl)) = (read(&g), read(cos), read(sin));
        let dx = rotate(
            cpu_slice::<T>("rope", &gs, gl)?,
            cpu_slice::<T>("rope", &cs, cl)?,
            cpu_slice::<T>("rope", &ss, sl)?,
            t,
            h,
            d,
            true,
        );
        tensor(dx, gl.shape())
    }
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "valley-rope"
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
        match s1 {
            CpuStorage::F32(_) => Self::fwd::<f32>(s1, l1, s2, l2, s3, l3),
            CpuStorage::F64(_) => Self::fwd::<f64>(s1, l1, s2, l2, s3, l3),
            _ => Err(msg("rope", "only f32 and f64")),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = match x.dtype() {
            DType::F32 => Self::bwd::<f32>(cos, sin, g)?,
            _ => Self::bwd::<f64>(cos, sin, g)?,
        };
        Ok((Some(dx), None, None))
    }
}

// ---------------------------------------------------------------------------------------------
// Causal attention

/// Causal scaled dot-product attention with grouped-query heads: `q [batch, seq, heads, d]`,
/// `k`, `v [batch, seq, kv_heads, d]` (`heads` a multiple of `kv_heads`), all attending from
/// position 0 (no cache). Returns `[batch, seq, heads, d]`. Scores are computed per block of 64
/// query rows against the keys up to the block's end only, and the softmax is kept for the
/// backward pass instead of recomputed.
///
/// # Errors
/// Shape errors, or tensors the kernels do not apply to (check [`applies`] first).
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, t, h, d) = q.dims4()?;
    let (kb, kt, kv, kd) = k.dims4()?;
    if (kb, kt, kd) != (b, t, d) || v.dims() != k.dims() || kv == 0 || h % kv != 0 {
        return Err(msg(
            "attention",
            format!("q {:?}, k {:?}, v {:?}", q.dims(), k.dims(), v.dims()),
        )
        .into());
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let keep = q.track_op() || k.track_op() || v.track_op();
    let op = Attention {
        keep,
        probs: Mutex::new(None),
    };
    Ok(if keep {
        q.apply_op3(&k, &v, op)?
    } else {
        q.apply_op3_no_bwd(&k, &v, &op)?
    })
}

struct Attention {
    /// Whether a backward pass can follow (else the softmax is not kept).
    keep: bool,
    /// The softmax `[batch, heads, seq, seq]` of the forward pass (zero above the diagonal).
    probs: Mutex<Option<CpuStorage>>,
}

/// Shapes and strides of one attention call.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    h: usize,
    kv: usize,
    d: usize,
}

impl Dims {
    fn rep(&self) -> usize {
        self.h / self.kv
    }
    /// Offset of `(batch, position 0, head)` in a `[b, t, heads, d]` buffer, and its row stride.
    fn q_at(&self, bi: usize, hi: usize) -> usize {
        bi * self.t * self.h * self.d + hi * self.d
    }
    fn kv_at(&self, bi: usize, g: usize) -> usize {
        bi * self.t * self.kv * self.d + g * self.d
    }
    fn probs_at(&self, bi: usize, hi: usize) -> usize {
        (bi * self.h + hi) * self.t * self.t
    }
}

/// `dst := beta·lhs·rhs` (+ `dst` when `accumulate`), every matrix given by a pointer and
/// (row, column) strides, single-threaded (callers parallelize over heads).
///
/// # Safety
/// Every pointer must be valid for the elements its strides reach for the given sizes, and `dst`
/// must not alias `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, usize),
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
    beta: T,
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            1,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
            rhs.2 as isize,
            rhs.1 as isize,
            T::one(),
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

impl Attention {
    fn fwd<T: Real>(&self, q: &[T], k: &[T], v: &[T], dims: Dims) -> candle_core::Result<Vec<T>> {
        let Dims { b, t, h, kv, d } = dims;
        let scale = T::from(1.0 / (d as f64).sqrt()).expect("scale fits a float");
        let mut out = vec![T::zero(); b * t * h * d];
        let mut probs = vec![T::zero(); b * h * t * t];
        let out_ptr = Out(out.as_mut_ptr());
        let probs_ptr = Out(probs.as_mut_ptr());
        (0..b * h).into_par_iter().for_each(|task| {
            let (bi, hi) = (task / h, task % h);
            let g = hi / dims.rep();
            let (qo, ko) = (dims.q_at(bi, hi), dims.kv_at(bi, g));
            // SAFETY: task (bi, hi) writes only its own `[t, t]` block of `probs` and the `d`
            // columns of head hi in `out`; the reads stay within q, k, v for these shapes.
            unsafe {
                let p = probs_ptr.ptr().add(dims.probs_at(bi, hi));
                for r0 in (0..t).step_by(ATTENTION_BLOCK) {
                    let r1 = (r0 + ATTENTION_BLOCK).min(t);
                    // Scores of rows r0..r1 against keys 0..r1: Q·Kᵀ·scale.
                    matmul(
                        (r1 - r0, r1, d),
                        (p.add(r0 * t), t),
                        (q.as_ptr().add(qo + r0 * h * d), h * d, 1),
                        (k.as_ptr().add(ko), 1, kv * d),
                        scale,
                        false,
                    );
                    for i in r0..r1 {
                        let row = std::slice::from_raw_parts_mut(p.add(i * t), r1);
                        let max = row[..=i]
                            .iter()
                            .fold(T::neg_infinity(), |m, &x| num_traits::Float::max(m, x));
                        let mut sum = T::zero();
                        for x in &mut row[..=i] {
                            *x = (*x - max).exp();
                            sum += *x;
                        }
                        let inv = sum.recip();
                        for x in &mut row[..=i] {
                            *x *= inv;
                        }
                        row[i + 1..].fill(T::zero());
                    }
                    // Output rows r0..r1: P·V.
                    matmul(
                        (r1 - r0, d, r1),
                        (out_ptr.ptr().add(qo + r0 * h * d), h * d),
                        (p.add(r0 * t) as *const T, t, 1),
                        (v.as_ptr().add(ko), kv * d, 1),
                        T::one(),
                        false,
                    );
                }
            }
        });
        if self.keep {
            *self.probs.lock().expect("attention probs lock") =
                Some(T::to_cpu_storage_owned(probs));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn bwd<T: Real>(
        &self,
        q: &[T],
        k: &[T],
        v: &[T],
        o: &[T],
        d_o: &[T],
        probs: &[T],
        dims: Dims,
    ) -> (Vec<T>, Vec<T>, Vec<T>) {
        let Dims { b, t, h, kv, d } = dims;
        let scale = T::from(1.0 / (d as f64).sqrt()).expect("scale fits a float");
        let mut dq = vec![T::zero(); q.len()];
        let mut dk = vec![T::zero(); k.len()];
        let mut dv = vec![T::zero(); v.len()];
        let (dq_ptr, dk_ptr, dv_ptr) = (
            Out(dq.as_mut_ptr()),
            Out(dk.as_mut_ptr()),
            Out(dv.as_mut_ptr()),
        );
        (0..b * kv).into_par_iter().for_each(|task| {
            let (bi, g) = (task / kv, task % kv);
            let ko = dims.kv_at(bi, g);
            let mut ds = vec![T::zero(); ATTENTION_BLOCK * t];
            let mut delta = vec![T::zero(); t];
            for hi in g * dims.rep()..(g + 1) * dims.rep() {
                let qo = dims.q_at(bi, hi);
                let p = &probs[dims.probs_at(bi, hi)..dims.probs_at(bi, hi) + t * t];
                for (i, delta) in delta.iter_mut().enumerate() {
                    let at = qo + i * h * d;
                    *delta = d_o[at..at + d]
                        .iter()
                        .zip(&o[at..at + d])
                        .fold(T::zero(), |acc, (&a, &b)| acc + a * b);
                }
                for r0 in (0..t).step_by(ATTENTION_BLOCK) {
                    let r1 = (r0 + ATTENTION_BLOCK).min(t);
                    let m = r1 - r0;
                    // SAFETY: task (bi, g) writes only the rows of heads g·rep..(g+1)·rep in dq
                    // and the columns of kv head g in dk and dv; `ds` is its own scratch.
                    unsafe {
                        // dP = dO·Vᵀ for rows r0..r1, keys 0..r1 (into ds, row stride t).
                        matmul(
                            (m, r1, d),
                            (ds.as_mut_ptr(), t),
                            (d_o.as_ptr().add(qo + r0 * h * d), h * d, 1),
                            (v.as_ptr().add(ko), 1, kv * d),
                            T::one(),
                            false,
                        );
                        // dS = P ∘ (dP − rowsum(dO ∘ O)); zero above the diagonal since P is.
                        for i in 0..m {
                            let prow = &p[(r0 + i) * t..(r0 + i) * t + r1];
                            let drow = &mut ds[i * t..i * t + r1];
                            let di = delta[r0 + i];
                            for (x, &pv) in drow.iter_mut().zip(prow) {
                                *x = pv * (*x - di);
                            }
                        }
                        // dQ = scale·dS·K.
                        matmul(
                            (m, d, r1),
                            (dq_ptr.ptr().add(qo + r0 * h * d), h * d),
                            (ds.as_ptr(), t, 1),
                            (k.as_ptr().add(ko), kv * d, 1),
                            scale,
                            false,
                        );
                        // dK += scale·dSᵀ·Q.
                        matmul(
                            (r1, d, m),
                            (dk_ptr.ptr().add(ko), kv * d),
                            (ds.as_ptr(), 1, t),
                            (q.as_ptr().add(qo + r0 * h * d), h * d, 1),
                            scale,
                            true,
                        );
                        // dV += Pᵀ·dO.
                        matmul(
                            (r1, d, m),
                            (dv_ptr.ptr().add(ko), kv * d),
                            (p.as_ptr().add(r0 * t), 1, t),
                            (d_o.as_ptr().add(qo + r0 * h * d), h * d, 1),
                            T::one(),
                            true,
                        );
                    }
                }
            }
        });
        (dq, dk, dv)
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "valley-causal-attention"
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
        let (b, t, h, d) = l1.shape().dims4()?;
        let kv = l2.shape().dims4()?.2;
        let dims = Dims { b, t, h, kv, d };
        let out = match s1 {
            CpuStorage::F32(_) => f32::to_cpu_storage_owned(self.fwd::<f32>(
                slice("attention", s1, l1)?,
                slice("attention", s2, l2)?,
                slice("attention", s3, l3)?,
                dims,
            )?),
            CpuStorage::F64(_) => f64::to_cpu_storage_owned(self.fwd::<f64>(
                slice("attention", s1, l1)?,
                slice("attention", s2, l2)?,
                slice("attention", s3, l3)?,
                dims,
            )?),
            _ => return Err(msg("attention", "only f32 and f64")),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, t, h, d) = q.dims4()?;
        let kv = k.dims4()?.2;
        let dims = Dims { b, t, h, kv, d };
        let probs = self.probs.lock().expect("attention probs lock");
        let probs = probs
            .as_ref()
            .ok_or_else(|| msg("attention", "backward before the forward"))?;
        let grad = grad.contiguous()?;
        let (qs, ql) = read(q);
        let (ks, kl) = read(k);
        let (vs, vl) = read(v);
        let (os, ol) = read(res);
        let (gs, gl) = read(&grad);
        fn run<T: Real>(
            op: &Attention,
            parts: [(&Storage, &Layout); 5],
            probs: &CpuStorage,
            dims: Dims,
        ) -> candle_core::Result<[Tensor; 3]> {
            let [q, k, v, o, g] = parts;
            let (dq, dk, dv) = op.bwd::<T>(
                cpu_slice("attention", q.0, q.1)?,
                cpu_slice("attention", k.0, k.1)?,
                cpu_slice("attention", v.0, v.1)?,
                cpu_slice("attention", o.0, o.1)?,
                cpu_slice("attention", g.0, g.1)?,
                T::cpu_storage_as_slice(probs)?,
                dims,
            );
            Ok([
                tensor(dq, q.1.shape())?,
                tensor(dk, k.1.shape())?,
                tensor(dv, v.1.shape())?,
            ])
        }
        let parts = [(&*qs, ql), (&*ks, kl), (&*vs, vl), (&*os, ol), (&*gs, gl)];
        let [dq, dk, dv] = match q.dtype() {
            DType::F32 => run::<f32>(self, parts, probs, dims)?,
            _ => run::<f64>(self, parts, probs, dims)?,
        };
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

// ---------------------------------------------------------------------------------------------
// Weighted cross-entropy

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
    let max = row
        .iter()
        .fold(T::neg_infinity(), |m, &x| num_traits::Float::max(m, x));
    let sum = row.iter().fold(T::zero(), |acc, &x| acc + (x - max).exp());
    max + sum.ln()
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
        let lse: Vec<T> = logits.par_chunks(vocab).map(logsumexp).collect();
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
        dx.par_chunks_mut(vocab)
            .zip(x.par_chunks(vocab))
            .enumerate()
            .for_each(|(i, (dx, x))| {
                let c = g[i] * w[i];
                if c == T::zero() {
                    return;
                }
                let l = T::from(lse[i]).expect("logsumexp fits a float");
                for (dx, &x) in dx.iter_mut().zip(x) {
                    *dx = c * (x - l).exp();
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
