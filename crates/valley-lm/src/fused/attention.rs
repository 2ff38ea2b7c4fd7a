//! Causal grouped-query attention with rotary embeddings, straight from the packed output of one
//! `[q_proj; k_proj; v_proj]` projection: no split, no transpose, no repeated key/value heads, and
//! scores only for the unmasked blocks.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Storage, Tensor, WithDType};

use super::{
    applies, cpu_slice, exp_shifted_sum, for_each_chunk, for_each_index, max_of, msg, read, slice,
    tensor, Out, Real,
};
use crate::Result;

/// Query rows per block: each block's scores are computed against keys `0..end of block` only.
const BLOCK: usize = 64;

/// Causal attention over `qkv [batch, seq, heads + 2·kv_heads, head_dim]` (per position: the
/// query heads, then the key heads, then the value heads, as one projection against the stacked
/// weights produces them), with rotary tables `cos`, `sin [seq, head_dim]` (Hugging Face's
/// rotate-half layout, positions from 0) applied to queries and keys. Returns `[batch, seq, heads,
/// head_dim]`. The rotated queries and keys and the softmax are kept for the backward pass.
///
/// # Errors
/// Shapes that do not fit, or tensors the kernels do not apply to (check [`applies`] first).
pub fn causal_attention_packed(
    qkv: &Tensor,
    heads: usize,
    kv_heads: usize,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    let (_, t, n, d) = qkv.dims4()?;
    if kv_heads == 0 || heads % kv_heads != 0 || n != heads + 2 * kv_heads || d % 2 != 0 {
        return Err(msg(
            "attention",
            format!(
                "qkv {:?} for {heads} heads and {kv_heads} kv heads",
                qkv.dims()
            ),
        )
        .into());
    }
    if cos.dims() != [t, d] || sin.dims() != [t, d] {
        return Err(msg(
            "attention",
            format!("rotary tables {:?} for {t} × {d}", cos.dims()),
        )
        .into());
    }
    if !applies(&[qkv, cos, sin]) {
        return Err(msg(
            "attention",
            "the CPU kernel needs f32 or f64 tensors on the CPU",
        )
        .into());
    }
    let keep = qkv.track_op();
    let op = Attention {
        heads,
        kv_heads,
        keep,
        saved: Mutex::new(None),
    };
    let (qkv, cos, sin) = (qkv.contiguous()?, cos.contiguous()?, sin.contiguous()?);
    Ok(if keep {
        qkv.apply_op3(&cos, &sin, op)?
    } else {
        qkv.apply_op3_no_bwd(&cos, &sin, &op)?
    })
}

struct Attention {
    heads: usize,
    kv_heads: usize,
    /// Whether a backward pass can follow (else nothing is kept).
    keep: bool,
    saved: Mutex<Option<Saved>>,
}

/// What the backward pass needs beyond the op's inputs.
struct Saved {
    /// Rotated queries `[b, t, heads, d]` and keys `[b, t, kv_heads, d]`.
    q: CpuStorage,
    k: CpuStorage,
    /// The softmax `[b, heads, t, t]`, zero above the diagonal inside each computed block.
    probs: CpuStorage,
}

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
    /// Elements per position in the packed qkv.
    fn packed(&self) -> usize {
        (self.h + 2 * self.kv) * self.d
    }
    fn probs_at(&self, bi: usize, hi: usize) -> usize {
        (bi * self.h + hi) * self.t * self.t
    }
}

/// Heads of a `[b, t, ·, d]` buffer: `rs` elements per position, the heads starting at `off`.
#[derive(Clone, Copy)]
struct View {
    rs: usize,
    off: usize,
}

impl View {
    /// Offset of (batch `bi`, position 0, head `head`).
    fn at(&self, dims: &Dims, bi: usize, head: usize) -> usize {
        self.off + bi * dims.t * self.rs + head * dims.d
    }
}

/// Rotates, in place, `heads` heads starting at `off` of every position of `buf` (`rs` elements
/// per position, `t` positions per batch row) by the position's `(cos, sin)`; `inverse` applies the
/// transpose (the backward pass).
#[allow(clippy::too_many_arguments)]
fn rotate<T: Real>(
    buf: &mut [T],
    view: View,
    heads: usize,
    d: usize,
    t: usize,
    cos: &[T],
    sin: &[T],
    inverse: bool,
) {
    let half = d / 2;
    for_each_chunk(buf, t * view.rs, |_, batch| {
        for (p, pos) in batch.chunks_mut(view.rs).enumerate() {
            let (c, s) = (&cos[p * d..(p + 1) * d], &sin[p * d..(p + 1) * d]);
            for head in pos[view.off..view.off + heads * d].chunks_mut(d) {
                let (x1, x2) = head.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = (x1[i], x2[i]);
                    if inverse {
                        x1[i] = a * c[i] + b * s[i + half];
                        x2[i] = b * c[i + half] - a * s[i];
                    } else {
                        x1[i] = a * c[i] - b * s[i];
                        x2[i] = b * c[i + half] + a * s[i + half];
                    }
                }
            }
        }
    });
}

/// Copies heads `off..off + heads·d` of every position of the packed buffer into a dense
/// `[b, t, heads, d]` one.
fn gather<T: Real>(src: &[T], src_rs: usize, off: usize, width: usize) -> Vec<T> {
    src.chunks(src_rs)
        .flat_map(|pos| pos[off..off + width].iter().copied())
        .collect()
}

/// `dst := beta·lhs·rhs` (+ `dst` when `accumulate`), matrices given by a pointer and (row,
/// column) strides, single-threaded (callers parallelize over heads).
///
/// # Safety
/// Every pointer must be valid for the elements its strides reach for the given sizes, and `dst`
/// must not alias `lhs` or `rhs`.
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

fn scale<T: Real>(d: usize) -> T {
    T::from(1.0 / (d as f64).sqrt()).expect("scale fits a float")
}

impl Attention {
    fn dims(&self, l: &Layout) -> candle_core::Result<Dims> {
        let (b, t, _, d) = l.shape().dims4()?;
        Ok(Dims {
            b,
            t,
            h: self.heads,
            kv: self.kv_heads,
            d,
        })
    }

    fn fwd<T: Real>(&self, qkv: &[T], cos: &[T], sin: &[T], dims: Dims) -> Vec<T> {
        let Dims { b, t, h, kv, d } = dims;
        let packed = dims.packed();
        let mut q = gather(qkv, packed, 0, h * d);
        let mut k = gather(qkv, packed, h * d, kv * d);
        rotate(&mut q, View { rs: h * d, off: 0 }, h, d, t, cos, sin, false);
        rotate(
            &mut k,
            View { rs: kv * d, off: 0 },
            kv,
            d,
            t,
            cos,
            sin,
            false,
        );
        let (qv, kvv) = (View { rs: h * d, off: 0 }, View { rs: kv * d, off: 0 });
        let vv = View {
            rs: packed,
            off: (h + kv) * d,
        };
        let scale = scale::<T>(d);
        let mut out = vec![T::zero(); b * t * h * d];
        let mut probs = vec![T::zero(); b * h * t * t];
        let (out_ptr, probs_ptr) = (Out(out.as_mut_ptr()), Out(probs.as_mut_ptr()));
        let (q_ref, k_ref) = (&q, &k);
        for_each_index(b * h, |task| {
            let (bi, hi) = (task / h, task % h);
            let g = hi / dims.rep();
            let (qo, ko, vo) = (
                qv.at(&dims, bi, hi),
                kvv.at(&dims, bi, g),
                vv.at(&dims, bi, g),
            );
            // SAFETY: task (bi, hi) writes only its own `[t, t]` block of `probs` and the `d`
            // columns of head hi in `out`; every read stays inside q, k, qkv for these shapes.
            unsafe {
                let p = probs_ptr.ptr().add(dims.probs_at(bi, hi));
                for r0 in (0..t).step_by(BLOCK) {
                    let r1 = (r0 + BLOCK).min(t);
                    // Scores of rows r0..r1 against keys 0..r1: scale·Q·Kᵀ.
                    matmul(
                        (r1 - r0, r1, d),
                        (p.add(r0 * t), t),
                        (q_ref.as_ptr().add(qo + r0 * qv.rs), qv.rs, 1),
                        (k_ref.as_ptr().add(ko), 1, kvv.rs),
                        scale,
                        false,
                    );
                    for i in r0..r1 {
                        let row = std::slice::from_raw_parts_mut(p.add(i * t), r1);
                        let max = max_of(&row[..=i]);
                        let inv = exp_shifted_sum(&mut row[..=i], max).recip();
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
                        (qkv.as_ptr().add(vo), vv.rs, 1),
                        T::one(),
                        false,
                    );
                }
            }
        });
        if self.keep {
            *self.saved.lock().expect("attention state lock") = Some(Saved {
                q: T::to_cpu_storage_owned(q),
                k: T::to_cpu_storage_owned(k),
                probs: T::to_cpu_storage_owned(probs),
            });
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn bwd<T: Real>(
        qkv: &[T],
        cos: &[T],
        sin: &[T],
        saved: &Saved,
        o: &[T],
        d_o: &[T],
        dims: Dims,
    ) -> candle_core::Result<Vec<T>> {
        let Dims { b, t, h, kv, d } = dims;
        let packed = dims.packed();
        let q = T::cpu_storage_as_slice(&saved.q)?;
        let k = T::cpu_storage_as_slice(&saved.k)?;
        let probs = T::cpu_storage_as_slice(&saved.probs)?;
        let (qv, kvv) = (View { rs: h * d, off: 0 }, View { rs: kv * d, off: 0 });
        let vv = View {
            rs: packed,
            off: (h + kv) * d,
        };
        // Gradients land in the packed layout: queries, keys (still rotated), values.
        let (dqv, dkv) = (
            View { rs: packed, off: 0 },
            View {
                rs: packed,
                off: h * d,
            },
        );
        let scale = scale::<T>(d);
        let mut dqkv = vec![T::zero(); qkv.len()];
        let dqkv_ptr = Out(dqkv.as_mut_ptr());
        for_each_index(b * kv, |task| {
            let (bi, g) = (task / kv, task % kv);
            let (ko, vo) = (kvv.at(&dims, bi, g), vv.at(&dims, bi, g));
            let (dko, dvo) = (dkv.at(&dims, bi, g), vv.at(&dims, bi, g));
            let mut ds = vec![T::zero(); BLOCK * t];
            let mut delta = vec![T::zero(); t];
            for hi in g * dims.rep()..(g + 1) * dims.rep() {
                let (qo, dqo) = (qv.at(&dims, bi, hi), dqv.at(&dims, bi, hi));
                let p = &probs[dims.probs_at(bi, hi)..dims.probs_at(bi, hi) + t * t];
                // rowsum(dO ∘ O) per query position.
                for (i, delta) in delta.iter_mut().enumerate() {
                    let at = qo + i * h * d;
                    *delta = d_o[at..at + d]
                        .iter()
                        .zip(&o[at..at + d])
                        .fold(T::zero(), |acc, (&a, &b)| acc + a * b);
                }
                for r0 in (0..t).step_by(BLOCK) {
                    let r1 = (r0 + BLOCK).min(t);
                    let m = r1 - r0;
                    // SAFETY: task (bi, g) writes only the query columns of heads
                    // g·rep..(g+1)·rep and the key and value columns of kv head g in dqkv; `ds`
                    // is its own scratch; every read stays inside its buffer for these shapes.
                    unsafe {
                        // dP = dO·Vᵀ for rows r0..r1, keys 0..r1 (into ds, row stride t).
                        matmul(
                            (m, r1, d),
                            (ds.as_mut_ptr(), t),
                            (d_o.as_ptr().add(qo + r0 * h * d), h * d, 1),
                            (qkv.as_ptr().add(vo), 1, vv.rs),
                            T::one(),
                            false,
                        );
                        // dS = P ∘ (dP − rowsum(dO ∘ O)), zero where P is.
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
                            (dqkv_ptr.ptr().add(dqo + r0 * packed), packed),
                            (ds.as_ptr(), t, 1),
                            (k.as_ptr().add(ko), kvv.rs, 1),
                            scale,
                            false,
                        );
                        // dK += scale·dSᵀ·Q.
                        matmul(
                            (r1, d, m),
                            (dqkv_ptr.ptr().add(dko), packed),
                            (ds.as_ptr(), 1, t),
                            (q.as_ptr().add(qo + r0 * qv.rs), qv.rs, 1),
                            scale,
                            true,
                        );
                        // dV += Pᵀ·dO.
                        matmul(
                            (r1, d, m),
                            (dqkv_ptr.ptr().add(dvo), packed),
                            (p.as_ptr().add(r0 * t), 1, t),
                            (d_o.as_ptr().add(qo + r0 * h * d), h * d, 1),
                            T::one(),
                            true,
                        );
                    }
                }
            }
        });
        // Back through the rotation: its transpose, on the query and key columns.
        rotate(
            &mut dqkv,
            View { rs: packed, off: 0 },
            h,
            d,
            t,
            cos,
            sin,
            true,
        );
        rotate(
            &mut dqkv,
            View {
                rs: packed,
                off: h * d,
            },
            kv,
            d,
            t,
            cos,
            sin,
            true,
        );
        Ok(dqkv)
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
        let dims = self.dims(l1)?;
        let out = match s1 {
            CpuStorage::F32(_) => f32::to_cpu_storage_owned(self.fwd::<f32>(
                slice("attention", s1, l1)?,
                slice("attention", s2, l2)?,
                slice("attention", s3, l3)?,
                dims,
            )),
            CpuStorage::F64(_) => f64::to_cpu_storage_owned(self.fwd::<f64>(
                slice("attention", s1, l1)?,
                slice("attention", s2, l2)?,
                slice("attention", s3, l3)?,
                dims,
            )),
            _ => return Err(msg("attention", "only f32 and f64")),
        };
        Ok((out, Shape::from((dims.b, dims.t, dims.h, dims.d))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = self.dims(qkv.layout())?;
        let saved = self.saved.lock().expect("attention state lock");
        let saved = saved
            .as_ref()
            .ok_or_else(|| msg("attention", "backward before the forward"))?;
        let grad = grad.contiguous()?;
        let parts = [read(qkv), read(cos), read(sin), read(res), read(&grad)];
        fn run<T: Real>(
            parts: [(&Storage, &Layout); 5],
            saved: &Saved,
            dims: Dims,
        ) -> candle_core::Result<Tensor> {
            let [qkv, cos, sin, o, g] = parts;
            let dqkv = Attention::bwd::<T>(
                cpu_slice("attention", qkv.0, qkv.1)?,
                cpu_slice("attention", cos.0, cos.1)?,
                cpu_slice("attention", sin.0, sin.1)?,
                saved,
                cpu_slice("attention", o.0, o.1)?,
                cpu_slice("attention", g.0, g.1)?,
                dims,
            )?;
            tensor(dqkv, qkv.1.shape())
        }
        let parts = parts.each_ref().map(|(s, l)| (&**s, *l));
        let dqkv = match qkv.dtype() {
            DType::F32 => run::<f32>(parts, saved, dims)?,
            _ => run::<f64>(parts, saved, dims)?,
        };
        Ok((Some(dqkv), None, None))
    }
}
