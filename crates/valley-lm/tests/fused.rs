//! The CPU kernels of `valley_lm::fused` against the composed ops they replace (forward values and
//! every input's gradient, in f64, on shapes that cross the attention kernel's 64-row blocks) and
//! against central finite differences; and their results do not depend on the thread count.

use candle_core::{DType, Device, Tensor, Var, D};
use valley_lm::{fused, ops};

mod common;
use common::{check, project, var};

/// Largest absolute difference between two tensors, relative to the larger magnitude (≥ 1).
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let scale = a.iter().chain(&b).fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// In f64 the fused and composed ops differ only in summation order: ~1e-15 relative.
const SAME: f64 = 1e-12;

/// Runs `fused_op` and `composed_op` on the same inputs and compares outputs and the gradients of
/// a fixed projection with respect to every input.
fn same_as_composed(
    name: &str,
    inputs: &[&Var],
    fused_op: impl Fn() -> Tensor,
    composed_op: impl Fn() -> Tensor,
) {
    let tensors: Vec<&Tensor> = inputs.iter().map(|v| v.as_tensor()).collect();
    assert!(
        fused::applies(&tensors),
        "{name}: the kernels must apply to CPU f64 tensors (is VALLEY_LM_COMPOSED_OPS set?)"
    );
    let (a, b) = (fused_op(), composed_op());
    let diff = rel_diff(&a, &b);
    assert!(diff < SAME, "{name}: forward differs by {diff}");
    let (ga, gb) = (
        project(&a).backward().unwrap(),
        project(&b).backward().unwrap(),
    );
    for (k, v) in inputs.iter().enumerate() {
        let (x, y) = (
            ga.get(v.as_tensor())
                .unwrap_or_else(|| panic!("{name}: fused op gave input {k} no gradient")),
            gb.get(v.as_tensor()).unwrap(),
        );
        let diff = rel_diff(x, y);
        assert!(
            diff < SAME,
            "{name}: gradient of input {k} differs by {diff}"
        );
    }
}

#[test]
fn rms_norm_equals_composed_and_finite_differences() {
    let (x, w) = (var(&[3, 70, 16], 0.1), var(&[16], 0.9));
    same_as_composed(
        "rms_norm",
        &[&x, &w],
        || fused::rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap(),
        || ops::rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap(),
    );
    let (x, w) = (var(&[2, 3, 6], 0.2), var(&[6], 0.7));
    check("fused rms_norm", &[&x, &w], || {
        project(&fused::rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap())
    });
}

#[test]
fn swiglu_equals_composed_and_finite_differences() {
    // Packed [gate | up] along the last dimension.
    let x = var(&[2, 50, 48], 0.3);
    let composed = |x: &Tensor| {
        let (g, u) = (
            x.narrow(D::Minus1, 0, 24).unwrap(),
            x.narrow(D::Minus1, 24, 24).unwrap(),
        );
        (g.silu().unwrap() * u).unwrap()
    };
    same_as_composed(
        "swiglu",
        &[&x],
        || fused::swiglu_packed(x.as_tensor()).unwrap(),
        || composed(x.as_tensor()),
    );
    let x = var(&[2, 10], 0.4);
    check("fused swiglu", &[&x], || {
        project(&fused::swiglu_packed(x.as_tensor()).unwrap())
    });
}

/// Causal grouped-query attention with RoPE from composed ops, on a packed `[b, t, h + 2·kv, d]`
/// input, returning `[b, t, h, d]`.
fn composed_attention(qkv: &Tensor, h: usize, kv: usize) -> Tensor {
    let (_, t, _, d) = qkv.dims4().unwrap();
    let (cos, sin) = ops::rope_tables(d, t, 10_000.0, DType::F64, &Device::Cpu).unwrap();
    let heads_first = |from: usize, n: usize| {
        qkv.narrow(2, from, n)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let q = ops::rope(&heads_first(0, h), &cos, &sin).unwrap();
    let k = ops::rope(&heads_first(h, kv), &cos, &sin).unwrap();
    let (k, v) = (
        ops::repeat_kv(&k, h / kv).unwrap(),
        ops::repeat_kv(&heads_first(h + kv, kv), h / kv).unwrap(),
    );
    let mask = ops::causal_mask(t, t, 0, DType::F64, &Device::Cpu).unwrap();
    let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt())
        .unwrap()
        .broadcast_add(&mask)
        .unwrap();
    ops::softmax_last(&scores)
        .unwrap()
        .matmul(&v)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
}

fn packed_attention(qkv: &Tensor, h: usize, kv: usize) -> Tensor {
    let (_, t, _, d) = qkv.dims4().unwrap();
    let (cos, sin) = ops::rope_tables(d, t, 10_000.0, qkv.dtype(), &Device::Cpu).unwrap();
    fused::causal_attention_packed(qkv, h, kv, &cos, &sin).unwrap()
}

#[test]
fn causal_attention_equals_composed_across_blocks() {
    // 130 positions: three 64-row blocks, the last partial; 4 query heads share 2 kv heads.
    let qkv = var(&[2, 130, 8, 8], 0.1);
    same_as_composed(
        "attention",
        &[&qkv],
        || packed_attention(qkv.as_tensor(), 4, 2),
        || composed_attention(qkv.as_tensor(), 4, 2),
    );
    // Multi-head attention (as many kv heads as query heads) too.
    let qkv = var(&[1, 70, 6, 4], 0.2);
    same_as_composed(
        "attention (no grouping)",
        &[&qkv],
        || packed_attention(qkv.as_tensor(), 2, 2),
        || composed_attention(qkv.as_tensor(), 2, 2),
    );
}

#[test]
fn causal_attention_matches_finite_differences() {
    let qkv = var(&[1, 5, 4, 4], 0.7);
    check("fused attention", &[&qkv], || {
        project(&packed_attention(qkv.as_tensor(), 2, 1))
    });
}

#[test]
fn causal_attention_attends_to_the_past_only() {
    // Changing the last position's keys and values leaves every earlier output unchanged.
    let qkv = var(&[1, 6, 4, 4], 0.1).as_tensor().clone();
    let last = qkv.narrow(1, 5, 1).unwrap();
    let bumped_kv = (last.narrow(2, 2, 2).unwrap() + 10.0).unwrap();
    let last = Tensor::cat(&[&last.narrow(2, 0, 2).unwrap(), &bumped_kv], 2).unwrap();
    let bumped = Tensor::cat(&[&qkv.narrow(1, 0, 5).unwrap(), &last], 1).unwrap();
    let (a, b) = (
        packed_attention(&qkv, 2, 1),
        packed_attention(&bumped, 2, 1),
    );
    let early = |t: &Tensor| t.narrow(1, 0, 5).unwrap();
    assert_eq!(rel_diff(&early(&a), &early(&b)), 0.0);
    assert!(rel_diff(&a.narrow(1, 5, 1).unwrap(), &b.narrow(1, 5, 1).unwrap()) > 1e-3);
}

#[test]
fn causal_attention_refuses_a_packed_width_that_does_not_fit() {
    let qkv = Tensor::zeros((1, 4, 5, 4), DType::F32, &Device::Cpu).unwrap();
    let (cos, sin) = ops::rope_tables(4, 4, 10_000.0, DType::F32, &Device::Cpu).unwrap();
    let err = fused::causal_attention_packed(&qkv, 2, 1, &cos, &sin)
        .unwrap_err()
        .to_string();
    assert!(err.contains("for 2 heads and 1 kv heads"), "{err}");
}

#[test]
fn weighted_nll_equals_composed_and_finite_differences() {
    let logits = var(&[40, 33], 0.4);
    let targets: Vec<u32> = (0..40).map(|i| (i * 7 % 33) as u32).collect();
    let targets = Tensor::from_vec(targets, 40, &Device::Cpu).unwrap();
    let weights: Vec<f64> = (0..40).map(|i| f64::from(i % 3 != 0)).collect();
    let weights = Tensor::from_vec(weights, 40, &Device::Cpu).unwrap();
    same_as_composed(
        "weighted_nll",
        &[&logits],
        || fused::weighted_nll(logits.as_tensor(), &targets, &weights).unwrap(),
        || {
            let log_probs = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1).unwrap();
            let picked = log_probs
                .gather(&targets.reshape((40, 1)).unwrap(), 1)
                .unwrap()
                .squeeze(1)
                .unwrap();
            (picked * &weights).unwrap().neg().unwrap()
        },
    );
    let logits = var(&[3, 5], 0.5);
    let targets = Tensor::from_vec(vec![4u32, 0, 2], 3, &Device::Cpu).unwrap();
    let weights = Tensor::from_vec(vec![1.0f64, 0.0, 0.5], 3, &Device::Cpu).unwrap();
    check("fused weighted_nll", &[&logits], || {
        project(&fused::weighted_nll(logits.as_tensor(), &targets, &weights).unwrap())
    });
}

#[test]
fn weighted_nll_names_a_target_outside_the_vocabulary() {
    let logits = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
    let targets = Tensor::from_vec(vec![1u32, 5], 2, &Device::Cpu).unwrap();
    let weights = Tensor::ones(2, DType::F32, &Device::Cpu).unwrap();
    let err = fused::weighted_nll(&logits, &targets, &weights)
        .unwrap_err()
        .to_string();
    assert!(err.contains("target 5 outside a vocabulary of 5"), "{err}");
}

/// Every kernel's output and gradients, as bits, for f32 inputs.
fn all_kernels_bits() -> Vec<u32> {
    let f32var = |shape: &[usize], salt: f64| {
        Var::from_tensor(&var(shape, salt).to_dtype(DType::F32).unwrap()).unwrap()
    };
    let (qkv, w, b) = (
        f32var(&[3, 100, 8, 8], 0.1),
        f32var(&[32], 0.4),
        f32var(&[64], 0.5),
    );
    let att = packed_attention(qkv.as_tensor(), 4, 2);
    let normed = fused::rms_norm(&att.reshape((300, 32)).unwrap(), w.as_tensor(), 1e-6).unwrap();
    let doubled = Tensor::cat(&[&normed, &normed.sin().unwrap()], 1).unwrap();
    let act = fused::swiglu_packed(&fused::add_bias(&doubled, b.as_tensor()).unwrap()).unwrap();
    let targets =
        Tensor::from_vec((0..300u32).map(|i| i % 32).collect(), 300, &Device::Cpu).unwrap();
    let weights = Tensor::ones(300, DType::F32, &Device::Cpu).unwrap();
    let loss = fused::weighted_nll(&act, &targets, &weights)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let mut bits = vec![loss.to_scalar::<f32>().unwrap().to_bits()];
    for t in [qkv.as_tensor(), w.as_tensor(), b.as_tensor()] {
        let g = grads.get(t).unwrap().flatten_all().unwrap();
        bits.extend(g.to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()));
    }
    bits
}

#[test]
fn kernels_give_the_same_bits_with_one_or_three_threads() {
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(all_kernels_bits)
    };
    let one = run(1);
    assert!(one.len() > 10_000);
    assert!(one == run(3), "results depend on the thread count");
}

#[test]
fn add_bias_equals_composed_and_finite_differences() {
    let (y, b) = (var(&[3, 70, 12], 0.1), var(&[12], 0.8));
    same_as_composed(
        "add_bias",
        &[&y, &b],
        || fused::add_bias(y.as_tensor(), b.as_tensor()).unwrap(),
        || y.as_tensor().broadcast_add(b.as_tensor()).unwrap(),
    );
    let (y, b) = (var(&[2, 3, 4], 0.2), var(&[4], 0.3));
    check("fused add_bias", &[&y, &b], || {
        project(&fused::add_bias(y.as_tensor(), b.as_tensor()).unwrap())
    });
}

#[test]
fn exp_f32_is_within_a_few_ulp_of_exp_over_its_range() {
    // Every 97th f32 bit pattern in [-87, 88], against f64's exp rounded to f32.
    let (lo, hi) = ((-87.0f32).to_bits(), 88.0f32.to_bits());
    let mut worst = 0.0f64;
    let mut check_at = |x: f32| {
        let exact = f64::from(x).exp();
        let ulp = f64::from(f32::EPSILON) * exact;
        worst = worst.max((f64::from(fused::exp_f32(x)) - exact).abs() / ulp);
    };
    // Negative floats have bit patterns from 0x8000_0000 (−0) up to `lo` (−87).
    for bits in (0x8000_0000..=lo).step_by(97) {
        check_at(f32::from_bits(bits));
    }
    for bits in (0..=hi).step_by(97) {
        check_at(f32::from_bits(bits));
    }
    // Measured 2026-11-27 on this sample: 0.83 (ulp taken as f32::EPSILON × e^x); 4 leaves room
    // for other targets' rounding, far below what training would notice.
    assert!(worst < 4.0, "exp_f32 is off by {worst} ulp");
    assert_eq!(fused::exp_f32(-100.0), 0.0);
    assert_eq!(fused::exp_f32(f32::NEG_INFINITY), 0.0);
    assert!(fused::exp_f32(100.0).is_finite());
}
