//! Helpers shared by the gradient tests: deterministic inputs, a scalar projection and the central
//! finite-difference check.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor, Var};

pub const EPS: f64 = 1e-6;
/// In f64 with h = 1e-6 the central difference is accurate to about 1e-8 relative; 1e-5 leaves
/// room for cancellation in small gradients while still catching a missing or wrong backward.
pub const TOL: f64 = 1e-5;

pub fn values(n: usize, salt: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.618 + salt).sin())
        .collect()
}

pub fn var(shape: &[usize], salt: f64) -> Var {
    let n = shape.iter().product();
    Var::from_tensor(&Tensor::from_vec(values(n, salt), shape, &Device::Cpu).unwrap()).unwrap()
}

pub fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// Compares the analytic gradient of `loss` with central differences for every element of every
/// input (inputs are small).
pub fn check(name: &str, inputs: &[&Var], loss: impl Fn() -> Tensor) {
    let grads = loss().backward().unwrap();
    for (k, input) in inputs.iter().enumerate() {
        let analytic = grads
            .get(input.as_tensor())
            .unwrap_or_else(|| panic!("{name}: input {k} got no gradient"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let original = input
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let shape = input.as_tensor().shape().clone();
        for j in 0..original.len() {
            let at = |delta: f64| {
                let mut v = original.clone();
                v[j] += delta;
                input
                    .set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
                    .unwrap();
                scalar(&loss())
            };
            let numeric = (at(EPS) - at(-EPS)) / (2.0 * EPS);
            let scale = numeric.abs().max(analytic[j].abs()).max(1e-3);
            assert!(
                (numeric - analytic[j]).abs() / scale < TOL,
                "{name}: input {k} element {j}: analytic {} vs numeric {numeric}",
                analytic[j]
            );
        }
        input
            .set(&Tensor::from_vec(original, shape, &Device::Cpu).unwrap())
            .unwrap();
    }
}

/// A fixed projection so that a tensor-valued op becomes a scalar loss with a generic gradient.
pub fn project(t: &Tensor) -> Tensor {
    let r = Tensor::from_vec(values(t.elem_count(), 0.3), t.shape(), &Device::Cpu).unwrap();
    (t * r).unwrap().sum_all().unwrap()
}
