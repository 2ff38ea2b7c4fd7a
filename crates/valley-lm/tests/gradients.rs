//! Gradient tests: every op and a whole tiny model are checked against central finite differences
//! in f64, and every trainable tensor must receive a gradient. candle 0.11's fused ops return no
//! gradient without an error (docs/design.md section 9); these tests fail if one sneaks back in.
//!
//! The whole-model checks run twice: through the CPU kernels (the default on the CPU) and through
//! the composed ops that CUDA, bf16 and generation take ([`valley_lm::fused::composed`]), and the
//! two paths must agree on the same weights (issue 16: the composed path had been checked op by
//! op only).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use valley_lm::{
    fused, init::init_varmap, loss::weighted_cross_entropy, ops, Decoder, ModelConfig,
};

mod common;
use common::{check, project, scalar, values, var};

#[test]
fn rms_norm_matches_finite_differences() {
    let (x, w) = (var(&[2, 3, 6], 0.1), var(&[6], 0.9));
    check("rms_norm", &[&x, &w], || {
        project(&ops::rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap())
    });
}

#[test]
fn rope_matches_finite_differences() {
    let x = var(&[1, 2, 5, 4], 0.2);
    let (cos, sin) = ops::rope_tables(4, 16, 10_000.0, DType::F64, &Device::Cpu).unwrap();
    let (cos, sin) = (cos.narrow(0, 3, 5).unwrap(), sin.narrow(0, 3, 5).unwrap());
    check("rope", &[&x], || {
        project(&ops::rope(x.as_tensor(), &cos, &sin).unwrap())
    });
}

#[test]
fn masked_softmax_matches_finite_differences() {
    let x = var(&[1, 2, 4, 4], 0.4);
    let mask = ops::causal_mask(4, 4, 0, DType::F64, &Device::Cpu).unwrap();
    check("softmax", &[&x], || {
        project(&ops::softmax_last(&x.as_tensor().broadcast_add(&mask).unwrap()).unwrap())
    });
}

#[test]
fn repeat_kv_and_silu_match_finite_differences() {
    let x = var(&[1, 2, 3, 4], 0.5);
    check("repeat_kv", &[&x], || {
        project(&ops::repeat_kv(x.as_tensor(), 3).unwrap())
    });
    check("silu", &[&x], || project(&x.as_tensor().silu().unwrap()));
}

#[test]
fn weighted_cross_entropy_matches_finite_differences() {
    let logits = var(&[2, 3, 5], 0.7);
    let targets = Tensor::from_vec(vec![0u32, 4, 2, 1, 3, 3], (2, 3), &Device::Cpu).unwrap();
    let weights = Tensor::from_vec(vec![1f32, 0., 1., 1., 1., 0.], (2, 3), &Device::Cpu).unwrap();
    check("cross_entropy", &[&logits], || {
        weighted_cross_entropy(logits.as_tensor(), &targets, &weights)
            .unwrap()
            .0
    });
}

fn tiny(model_type: &str, tied: bool) -> ModelConfig {
    ModelConfig {
        model_type: model_type.into(),
        vocab_size: 11,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: Some(1),
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 32,
        tie_word_embeddings: tied,
        attention_bias: false,
    }
}

fn model_loss(cfg: &ModelConfig, varmap: &VarMap) -> Tensor {
    let vb = VarBuilder::from_varmap(varmap, DType::F64, &Device::Cpu);
    let model = Decoder::new(cfg, &vb).unwrap();
    let ids = Tensor::from_vec(vec![1u32, 5, 2, 9, 3, 7, 7, 0], (2, 4), &Device::Cpu).unwrap();
    let targets = Tensor::from_vec(vec![5u32, 2, 9, 10, 7, 7, 0, 4], (2, 4), &Device::Cpu).unwrap();
    let weights =
        Tensor::from_vec(vec![0f32, 1., 1., 1., 1., 1., 0., 1.], (2, 4), &Device::Cpu).unwrap();
    let logits = model.forward(&ids, None).unwrap();
    weighted_cross_entropy(&logits, &targets, &weights)
        .unwrap()
        .0
}

/// Bigger init than the 0.02 default so that gradients are far from zero everywhere.
fn tiny_varmap(cfg: &ModelConfig) -> VarMap {
    let varmap = init_varmap(cfg, 3, DType::F64, &Device::Cpu).unwrap();
    for (i, v) in varmap.all_vars().iter().enumerate() {
        let t = v.as_tensor();
        let noise =
            Tensor::from_vec(values(t.elem_count(), i as f64), t.shape(), &Device::Cpu).unwrap();
        v.set(&(t + (noise * 0.3).unwrap()).unwrap()).unwrap();
    }
    varmap
}

/// Which ops a test runs through.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// The CPU kernels of `valley_lm::fused` (training on the CPU).
    Fused,
    /// The composed candle ops (CUDA, half precision, generation).
    Composed,
}

impl Path {
    fn run<T>(self, f: impl FnOnce() -> T) -> T {
        match self {
            Self::Fused => f(),
            Self::Composed => fused::composed(f),
        }
    }
}

#[test]
fn every_parameter_of_the_model_gets_a_gradient() {
    every_parameter_gets_a_gradient(Path::Fused);
}

#[test]
fn every_parameter_of_the_model_gets_a_gradient_on_the_composed_path() {
    every_parameter_gets_a_gradient(Path::Composed);
}

fn every_parameter_gets_a_gradient(path: Path) {
    path.run(|| every_parameter_gets_a_gradient_here(path));
}

fn every_parameter_gets_a_gradient_here(path: Path) {
    for (model_type, tied) in [("qwen2", true), ("qwen2", false), ("llama", false)] {
        let cfg = tiny(model_type, tied);
        let varmap = tiny_varmap(&cfg);
        let grads = model_loss(&cfg, &varmap).backward().unwrap();
        let data = varmap.data().lock().unwrap();
        assert_eq!(data.len(), valley_lm::model::parameter_shapes(&cfg).len());
        for (name, var) in data.iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{path:?} {model_type}: {name} got no gradient"));
            let norm = scalar(&g.sqr().unwrap().sum_all().unwrap());
            assert!(
                norm > 0.0,
                "{path:?} {model_type}: {name} has an all-zero gradient"
            );
        }
    }
}

#[test]
fn whole_model_matches_finite_differences() {
    whole_model_finite_differences(Path::Fused);
}

#[test]
fn whole_model_matches_finite_differences_on_the_composed_path() {
    whole_model_finite_differences(Path::Composed);
}

fn whole_model_finite_differences(path: Path) {
    // With Q/K/V biases (qwen2) and untied embeddings: every kind of parameter.
    let cfg = tiny("qwen2", false);
    let varmap = tiny_varmap(&cfg);
    let data = varmap.data().lock().unwrap().clone();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let vars: Vec<&Var> = names.iter().map(|n| &data[*n]).collect();
    path.run(|| {
        check(&format!("tiny qwen2, {path:?}"), &vars, || {
            model_loss(&cfg, &varmap)
        })
    });
}

/// The two paths compute the same function: same loss and same gradient for every parameter, on
/// the same weights, to f64 rounding (1e-10 relative; the kernels sum in a different order).
#[test]
fn the_composed_path_equals_the_fused_path_on_the_same_weights() {
    for (model_type, tied) in [("qwen2", true), ("qwen2", false), ("llama", false)] {
        let cfg = tiny(model_type, tied);
        let varmap = tiny_varmap(&cfg);
        let fused_loss = model_loss(&cfg, &varmap);
        let composed_loss = fused::composed(|| model_loss(&cfg, &varmap));
        let (a, b) = (scalar(&fused_loss), scalar(&composed_loss));
        assert!(
            (a - b).abs() <= 1e-10 * a.abs().max(1.0),
            "{model_type}: loss {a} fused vs {b} composed"
        );
        let fused_grads = fused_loss.backward().unwrap();
        let composed_grads = fused::composed(|| composed_loss.backward().unwrap());
        for (name, var) in varmap.data().lock().unwrap().iter() {
            let get = |g: &candle_core::backprop::GradStore| {
                g.get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{model_type}: {name} got no gradient"))
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            };
            let (gf, gc) = (get(&fused_grads), get(&composed_grads));
            let scale = gf.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
            let worst = gf
                .iter()
                .zip(&gc)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 1e-10 * scale,
                "{model_type}: {name}: gradients differ by {worst} (scale {scale})"
            );
        }
    }
}

#[test]
fn kv_cache_forward_equals_full_forward() {
    let cfg = tiny("qwen2", true);
    let varmap = tiny_varmap(&cfg);
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    let model = Decoder::new(&cfg, &vb).unwrap();
    let ids: Vec<u32> = vec![3, 1, 4, 1, 5, 9];
    let full = model
        .forward(
            &Tensor::from_vec(ids.clone(), (1, 6), &Device::Cpu).unwrap(),
            None,
        )
        .unwrap();
    let mut cache = valley_lm::KvCache::new();
    let mut steps = vec![model
        .forward(
            &Tensor::from_vec(ids[..3].to_vec(), (1, 3), &Device::Cpu).unwrap(),
            Some(&mut cache),
        )
        .unwrap()];
    for &id in &ids[3..] {
        steps.push(
            model
                .forward(
                    &Tensor::from_vec(vec![id], (1, 1), &Device::Cpu).unwrap(),
                    Some(&mut cache),
                )
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), 6);
    let incremental = Tensor::cat(&steps, 1).unwrap();
    let diff = scalar(
        &(full - incremental)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap(),
    );
    assert!(diff < 1e-12, "cached and full forward differ by {diff}");
}
