//! CPU kernels for the training step's hot ops, each with a hand-written backward pass: RMSNorm
//! and bias add ([`norm`]), SwiGLU on a packed gate/up projection ([`swiglu`]), causal
//! grouped-query attention with RoPE on a packed q/k/v projection ([`attention`]) and the weighted
//! cross-entropy ([`cross_entropy`]).
//!
//! The composed versions in [`crate::ops`] and [`crate::loss`] build each of these from several
//! candle primitives; on the CPU every primitive is a separate pass over memory with its own
//! allocation, its own backward node and a zero-filled gradient buffer, and `perf` put more than
//! half of a training step there (BENCHMARKS.md). Here each op is one pass forward and one
//! backward, and attention skips the masked half of the scores and never repeats key/value heads.
//!
//! The kernels run where [`applies`] says so: CPU tensors in f32 or f64, unless
//! `VALLEY_LM_COMPOSED_OPS=1` is set (for A/B measurements). Elsewhere (CUDA, half precision) the
//! norm, bias, SwiGLU and cross-entropy functions fall back to composed ops themselves, and the
//! model takes its composed attention path. `tests/fused.rs` checks each kernel's forward and
//! gradients against the composed ops and against finite differences in f64.
//!
//! All kernels are deterministic: work is split into fixed chunks whose partial sums are combined
//! in a fixed order, whatever the thread count.

use std::sync::OnceLock;

use candle_core::{CpuStorage, DType, Layout, Shape, Storage, Tensor, WithDType};

pub mod attention;
pub mod cross_entropy;
pub mod norm;
pub mod swiglu;

pub use attention::causal_attention_packed;
pub use cross_entropy::weighted_nll;
pub use norm::{add_bias, rms_norm};
pub use swiglu::swiglu_packed;

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
    /// `e^self`: the standard library's for f64 (the tests compare f64 results to 1e-12), a
    /// branch-free polynomial for f32 that the compiler vectorizes (libm's `expf` is a call per
    /// element, and was 5 % of a training step).
    fn exp_fast(self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn exp_fast(self) -> Self {
        exp_f32(self)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp_fast(self) -> Self {
        self.exp()
    }
}

/// `e^x` for f32 (0 below −87, `e^88` above 88): Cody–Waite reduction `x = n·ln 2 + r`,
/// `|r| ≤ ln 2 / 2`, a degree-7 Taylor polynomial for `e^r` (truncation error `r⁸/8! < 6e-9`
/// relative), and `2^n` built from the exponent bits. Only arithmetic, so loops over
/// it vectorize. `tests/fused.rs` checks it against `f32::exp` over the whole range.
#[inline(always)]
pub fn exp_f32(x_in: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer n and leaves n in the low mantissa bits:
    // `bits(t) − bits(ROUND)` is n, so no float-to-int conversion (and no call) is needed.
    const ROUND: f32 = 12_582_912.0;
    // Comparisons rather than `clamp`/`max`, whose NaN handling kept the loops scalar.
    #[allow(clippy::manual_clamp)]
    let x = if x_in < -87.0 {
        -87.0
    } else if x_in > 88.0 {
        88.0
    } else {
        x_in
    };
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if x_in < -87.0 {
        0.0
    } else {
        p * scale
    }
}

/// Maximum of a slice, in eight independent lanes (one running maximum is a dependency chain).
pub(crate) fn max_of<T: Real>(row: &[T]) -> T {
    let mut lanes = [T::neg_infinity(); 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x > *m { x } else { *m };
        }
    }
    tail.iter()
        .chain(lanes.iter())
        .fold(T::neg_infinity(), |m, &x| if x > m { x } else { m })
}

/// Whether to split a kernel's work over rayon's pool. With one thread the caller's thread runs
/// it: handing every op to the pool's single worker (and waking it) cost time and made step times
/// vary by 15 %.
fn split() -> bool {
    rayon::current_num_threads() > 1
}

/// Calls `f(k, chunk)` for the `k`-th `chunk`-long piece of `data`, on the pool when it has more
/// than one thread.
pub(crate) fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    if split() {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(k, c)| f(k, c));
    } else {
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(k, c)| f(k, c));
    }
}

/// As [`for_each_chunk`], collecting each call's result in chunk order.
pub(crate) fn map_chunks<T: Send, R: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> R + Sync + Send,
) -> Vec<R> {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    if split() {
        data.par_chunks_mut(chunk)
            .enumerate()
            .map(|(k, c)| f(k, c))
            .collect()
    } else {
        data.chunks_mut(chunk)
            .enumerate()
            .map(|(k, c)| f(k, c))
            .collect()
    }
}

/// Calls `f(i)` for `i` in `0..n`, on the pool when it has more than one thread.
pub(crate) fn for_each_index(n: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    if split() {
        (0..n).into_par_iter().for_each(f);
    } else {
        (0..n).for_each(f);
    }
}

/// `Σ e^(x − shift)` over a slice, without writing it: blocks of 64 go through a stack buffer so
/// that the exponentials and the sum are two simple loops that vectorize.
pub(crate) fn sum_exp_shifted<T: Real>(row: &[T], shift: T) -> T {
    let mut buf = [T::zero(); 64];
    let mut sum = T::zero();
    for block in row.chunks(64) {
        let buf = &mut buf[..block.len()];
        for (e, &x) in buf.iter_mut().zip(block) {
            *e = (x - shift).exp_fast();
        }
        sum += sum_of(buf);
    }
    sum
}

/// Replaces every `x` by `e^(x − shift)` and returns their sum (eight lanes, fixed order). Two
/// simple loops, so that both vectorize.
pub(crate) fn exp_shifted_sum<T: Real>(row: &mut [T], shift: T) -> T {
    for x in row.iter_mut() {
        *x = (*x - shift).exp_fast();
    }
    sum_of(row)
}

/// Sum of a slice in eight lanes (a fixed order, independent of threads).
fn sum_of<T: Real>(row: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..8 {
            lanes[j] += c[j];
        }
    }
    tail.iter()
        .chain(lanes.iter())
        .fold(T::zero(), |acc, &a| acc + a)
}

/// Rows per chunk of work (a fixed split keeps reductions deterministic across thread counts).
pub(crate) const ROWS_PER_CHUNK: usize = 64;

thread_local! {
    static COMPOSED_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn composed_requested() -> bool {
    static COMPOSED: OnceLock<bool> = OnceLock::new();
    COMPOSED_HERE.with(std::cell::Cell::get)
        || *COMPOSED.get_or_init(|| {
            std::env::var("VALLEY_LM_COMPOSED_OPS").is_ok_and(|v| !v.is_empty() && v != "0")
        })
}

/// Runs `f` with the kernels off on this thread: every op takes the composed path that CUDA and
/// half precision take, so that path can be checked on the CPU in f64 (finite differences, every
/// parameter's gradient) and against the kernels on the same weights.
pub fn composed<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPOSED_HERE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(COMPOSED_HERE.with(|c| c.replace(true)));
    f()
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

pub(crate) fn msg(op: &str, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("fused {op}: {what}"))
}

/// The contiguous elements of a CPU storage under `layout`.
pub(crate) fn slice<'a, T: Real>(
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
pub(crate) fn read(t: &Tensor) -> (candle_core::StorageRef<'_>, &Layout) {
    t.storage_and_layout()
}

pub(crate) fn cpu_slice<'a, T: Real>(
    op: &str,
    s: &'a Storage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    match s {
        Storage::Cpu(cpu) => slice(op, cpu, layout),
        _ => Err(msg(op, "tensor is not on the CPU")),
    }
}

pub(crate) fn tensor<T: Real>(data: Vec<T>, shape: &Shape) -> candle_core::Result<Tensor> {
    Tensor::from_vec(data, shape.clone(), &candle_core::Device::Cpu)
}

/// A raw pointer that parallel tasks use to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
pub(crate) struct Out<T>(*mut T);
// SAFETY: every user writes only the elements its task owns (documented at each use).
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not the raw field).
    pub(crate) fn ptr(self) -> *mut T {
        self.0
    }
}
