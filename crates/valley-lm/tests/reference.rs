//! The forward pass of a tiny Qwen2-shaped model against an independent NumPy reference.
//!
//! The expected logits below were computed once with this script (NumPy 2, float64); the weights
//! are a formula both sides evaluate, so no file is shared:
//!
//! ```python
//! # Independent NumPy reference of a tiny Qwen2-shaped decoder (GQA, RoPE in the Hugging Face
//! # half-rotation layout, RMSNorm, SwiGLU, QKV bias, untied head), written from the Qwen2 paper and
//! # the HF modeling_qwen2.py description, not from valley-lm's code.
//! import numpy as np
//! V, H, I, L, NH, NKV, THETA, EPS = 11, 8, 12, 2, 2, 1, 10000.0, 1e-6
//! D = H // NH
//! def shapes():
//!     s = [("model.embed_tokens.weight", (V, H))]
//!     for l in range(L):
//!         p = f"model.layers.{l}"
//!         s.append((f"{p}.input_layernorm.weight", (H,)))
//!         for n, o in (("q_proj", H), ("k_proj", NKV * D), ("v_proj", NKV * D)):
//!             s.append((f"{p}.self_attn.{n}.weight", (o, H))); s.append((f"{p}.self_attn.{n}.bias", (o,)))
//!         s.append((f"{p}.self_attn.o_proj.weight", (H, H)))
//!         s.append((f"{p}.post_attention_layernorm.weight", (H,)))
//!         s.append((f"{p}.mlp.gate_proj.weight", (I, H))); s.append((f"{p}.mlp.up_proj.weight", (I, H)))
//!         s.append((f"{p}.mlp.down_proj.weight", (H, I)))
//!     s.append(("model.norm.weight", (H,))); s.append(("lm_head.weight", (V, H)))
//!     return s
//! names = sorted(n for n, _ in shapes())
//! W = {}
//! for n, shp in shapes():
//!     k = names.index(n); i = np.arange(int(np.prod(shp)), dtype=np.float64)
//!     base = 1.0 if n.endswith("norm.weight") else 0.0
//!     W[n] = (base + 0.3 * np.sin(0.37 * i + 1.3 * k)).reshape(shp)
//! def rms(x, w): return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * w
//! def rope(x, pos):
//!     inv = 1.0 / THETA ** (np.arange(0, D, 2) / D); f = np.outer(pos, inv); f = np.concatenate([f, f], -1)
//!     x1, x2 = x[..., :D // 2], x[..., D // 2:]
//!     return x * np.cos(f) + np.concatenate([-x2, x1], -1) * np.sin(f)
//! ids = np.array([1, 5, 2, 9]); T = len(ids); pos = np.arange(T)
//! x = W["model.embed_tokens.weight"][ids]
//! for l in range(L):
//!     p = f"model.layers.{l}"; h = rms(x, W[f"{p}.input_layernorm.weight"])
//!     lin = lambda n: h @ W[f"{p}.self_attn.{n}.weight"].T + W[f"{p}.self_attn.{n}.bias"]
//!     q = lin("q_proj").reshape(T, NH, D).transpose(1, 0, 2); k = lin("k_proj").reshape(T, NKV, D).transpose(1, 0, 2)
//!     v = lin("v_proj").reshape(T, NKV, D).transpose(1, 0, 2)
//!     q, k = rope(q, pos), rope(k, pos); k = np.repeat(k, NH // NKV, 0); v = np.repeat(v, NH // NKV, 0)
//!     s = q @ k.transpose(0, 2, 1) / np.sqrt(D) + np.triu(np.full((T, T), -np.inf), 1)
//!     a = np.exp(s - s.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
//!     o = (a @ v).transpose(1, 0, 2).reshape(T, H) @ W[f"{p}.self_attn.o_proj.weight"].T
//!     x = x + o; h = rms(x, W[f"{p}.post_attention_layernorm.weight"])
//!     g = h @ W[f"{p}.mlp.gate_proj.weight"].T; u = h @ W[f"{p}.mlp.up_proj.weight"].T
//!     x = x + (g / (1 + np.exp(-g)) * u) @ W[f"{p}.mlp.down_proj.weight"].T
//! logits = rms(x, W["model.norm.weight"]) @ W["lm_head.weight"].T
//! print(np.array2string(logits, precision=10, separator=", ", max_line_width=200))
//! ```

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use valley_lm::{model::parameter_shapes, Decoder, ModelConfig};

#[rustfmt::skip]
const EXPECTED: [[f64; 11]; 4] = [
    [-0.1682686034,  0.041966463 ,  0.0857157603, -0.2105791888,  0.3285176419, -0.4356526695,  0.5284610961, -0.603890882 ,  0.6594614904, -0.6933454612,  0.7044285071],
    [-0.3653705609,  0.2758852381, -0.177327326 ,  0.0729379385,  0.0338500404, -0.1395248481,  0.2406113289, -0.3337852163,  0.4159824519, -0.4844999491,  0.5370844843],
    [ 0.3974976439, -0.3494301671,  0.2898715485, -0.2207803957,  0.1444287971, -0.0633276034, -0.0198561422,  0.1023869111, -0.1815506482,  0.2547440243, -0.319560048 ],
    [-0.8075385184,  0.8351520828, -0.8353013587,  0.807981437 , -0.7540907437,  0.6754014942, -0.5745014141,  0.4547086401, -0.3199626025,  0.1746944751, -0.0236814545],
];

fn config() -> ModelConfig {
    ModelConfig {
        model_type: "qwen2".into(),
        vocab_size: 11,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: Some(1),
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 16,
        tie_word_embeddings: false,
        attention_bias: false,
    }
}

fn formula_weights(cfg: &ModelConfig, dtype: DType) -> VarMap {
    let shapes = parameter_shapes(cfg);
    let mut names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let varmap = VarMap::new();
    for (name, shape) in &shapes {
        let k = names.iter().position(|n| n == name).unwrap() as f64;
        let base = if name.ends_with("norm.weight") {
            1.0
        } else {
            0.0
        };
        let n: usize = shape.iter().product();
        let values: Vec<f64> = (0..n)
            .map(|i| base + 0.3 * (0.37 * i as f64 + 1.3 * k).sin())
            .collect();
        let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        varmap
            .data()
            .lock()
            .unwrap()
            .insert(name.clone(), Var::from_tensor(&t).unwrap());
    }
    varmap
}

fn logits(dtype: DType) -> Vec<Vec<f64>> {
    let cfg = config();
    let varmap = formula_weights(&cfg, dtype);
    let model = Decoder::new(&cfg, &VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu)).unwrap();
    let ids = Tensor::from_vec(vec![1u32, 5, 2, 9], (1, 4), &Device::Cpu).unwrap();
    let out = model.forward(&ids, None).unwrap().squeeze(0).unwrap();
    out.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

fn max_abs_diff(got: &[Vec<f64>]) -> f64 {
    got.iter()
        .zip(EXPECTED.iter())
        .flat_map(|(g, e)| g.iter().zip(e.iter()).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn f64_forward_matches_numpy() {
    // The reference prints 10 decimals; agreement to 1e-9 is rounding of the printout.
    let diff = max_abs_diff(&logits(DType::F64));
    assert!(diff < 1e-9, "max |logit - reference| = {diff}");
}

#[test]
fn f32_forward_matches_numpy_within_float_tolerance() {
    let diff = max_abs_diff(&logits(DType::F32));
    assert!(diff < 1e-5, "max |logit - reference| = {diff}");
}
