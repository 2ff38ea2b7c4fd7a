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
    let (g, u) = (var(&[2, 50, 24], 0.3), var(&[2, 50, 24], 1.3));
    let composed = || (g.as_tensor().silu().unwrap() * u.as_tensor()).unwrap();
    same_as_composed(
        "swiglu",
        &[&g, &u],
        || fused::swiglu(g.as_tensor(), u.as_tensor()).unwrap(),
        composed,
    );
    let (g, u) = (var(&[2, 5], 0.4), var(&[2, 5], 2.1));
    check("fused swiglu", &[&g, &u], || {
        project(&fused::swiglu(g.as_tensor(), u.as_tensor()).unwrap())
    });
}

#[test]
fn rope_equals_composed_and_finite_differences() {
    // Fused: [b, t, heads, d]; composed: [b, heads, t, d].
    let x = var(&[2, 9, 3, 8], 0.5);
    let (cos, sin) = ops::rope_tables(8, 9, 10_000.0, DType::F64, &Device::Cpu).unwrap();
    same_as_composed(
        "rope",
        &[&x],
        || fused::rope_bthd(x.as_tensor(), &cos, &sin).unwrap(),
        || {
            ops::rope(&x.as_tensor().transpose(1, 2).unwrap(), &cos, &sin)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
        },
    );
    let x = var(&[1, 4, 2, 4], 0.6);
    let (cos, sin) = ops::rope_tables(4, 4, 10_000.0, DType::F64, &Device::Cpu).unwrap();
    check("fused rope", &[&x], || {
        project(&fused::rope_bthd(x.as_tensor(), &cos, &sin).unwrap())
    });
}

/// Causal grouped-query attention from composed ops, `[b, t, heads, d]` in and out.
fn composed_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let (_, t, h, d) = q.dims4().unwrap();
    let rep = h / k.dim(2).unwrap();
    let heads_first = |x: &Tensor| x.transpose(1, 2).unwrap().contiguous().unwrap();
    let (q, k, v) = (
        heads_first(q),
        ops::repeat_kv(&heads_first(k), rep).unwrap(),
        ops::repeat_kv(&heads_first(v), rep).unwrap(),
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

#[test]
fn causal_attention_equals_composed_across_blocks() {
    // 130 positions: three 64-row blocks, the last partial; 4 query heads share 2 kv heads.
    let (q, k, v) = (
        var(&[2, 130, 4, 8], 0.1),
        var(&[2, 130, 2, 8], 0.2),
        var(&[2, 130, 2, 8], 0.3),
    );
    same_as_composed(
        "attention",
        &[&q, &k, &v],
        || fused::causal_attention(q.as_tensor(), k.as_tensor(), v.as_tensor()).unwrap(),
        || composed_attention(q.as_tensor(), k.as_tensor(), v.as_tensor()),
    );
}

#[test]
fn causal_attention_matches_finite_differences() {
    let (q, k, v) = (
        var(&[1, 5, 4, 4], 0.7),
        var(&[1, 5, 2, 4], 0.8),
        var(&[1, 5, 2, 4], 0.9),
    );
    check("fused attention", &[&q, &k, &v], || {
        project(&fused::causal_attention(q.as_tensor(), k.as_tensor(), v.as_tensor()).unwrap())
    });
}

#[test]
fn causal_attention_attends_to_the_past_only() {
    // Changing the last position's key and value leaves every earlier output unchanged.
    let q = var(&[1, 6, 2, 4], 0.1);
    let (k, v) = (var(&[1, 6, 1, 4], 0.2), var(&[1, 6, 1, 4], 0.3));
    let out = |k: &Tensor, v: &Tensor| fused::causal_attention(q.as_tensor(), k, v).unwrap();
    let bump = |t: &Tensor| {
        let last = (t.narrow(1, 5, 1).unwrap() + 10.0).unwrap();
        Tensor::cat(&[&t.narrow(1, 0, 5).unwrap(), &last], 1).unwrap()
    };
    let (a, b) = (
        out(k.as_tensor(), v.as_tensor()),
        out(&bump(k.as_tensor()), &bump(v.as_tensor())),
    );
    let early = |t: &Tensor| t.narrow(1, 0, 5).unwrap();
    assert_eq!(rel_diff(&early(&a), &early(&b)), 0.0);
    assert!(rel_diff(&a.narrow(1, 5, 1).unwrap(), &b.narrow(1, 5, 1).unwrap()) > 1e-3);
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
    let (q, k, v) = (
        f32var(&[3, 100, 4, 8], 0.1),
        f32var(&[3, 100, 2, 8], 0.2),
        f32var(&[3, 100, 2, 8], 0.3),
    );
    let w = f32var(&[32], 0.4);
    let (cos, sin) = ops::rope_tables(8, 100, 10_000.0, DType::F32, &Device::Cpu).unwrap();
    let q_rot = fused::rope_bthd(q.as_tensor(), &cos, &sin).unwrap();
    let att = fused::causal_attention(&q_rot, k.as_tensor(), v.as_tensor()).unwrap();
    let normed = fused::rms_norm(&att.reshape((300, 32)).unwrap(), w.as_tensor(), 1e-6).unwrap();
    let act = fused::swiglu(&normed, &normed.sin().unwrap()).unwrap();
    let targets =
        Tensor::from_vec((0..300u32).map(|i| i % 32).collect(), 300, &Device::Cpu).unwrap();
    let weights = Tensor::ones(300, DType::F32, &Device::Cpu).unwrap();
    let loss = fused::weighted_nll(&act, &targets, &weights)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let mut bits = vec![loss.to_scalar::<f32>().unwrap().to_bits()];
    for t in [q.as_tensor(), k.as_tensor(), v.as_tensor(), w.as_tensor()] {
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
