//! Deterministic weight initialisation for models trained from scratch.
//!
//! candle's default `VarMap` init with tied embeddings starts at a loss near 24 for a 256-token
//! vocabulary (docs/design.md section 9), and its CPU generator cannot be seeded portably; this module
//! draws every weight from a SplitMix64 stream seeded per tensor name, so the same seed gives the
//! same model on every machine: normal(0, 0.02) for matrices, with the output projections of each
//! residual branch scaled by 1/sqrt(2·layers) (GPT-2's rule), ones for norms, zeros for biases.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use crate::{model::parameter_shapes, ModelConfig, Result};

/// A SplitMix64 stream with a Box–Muller normal draw.
struct Stream(u64);

impl Stream {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn name_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A fresh, seeded set of weights for `cfg` in a `VarMap` (trainable), under Hugging Face names.
///
/// # Errors
/// Tensor allocation errors.
pub fn init_varmap(cfg: &ModelConfig, seed: u64, dtype: DType, device: &Device) -> Result<VarMap> {
    let varmap = VarMap::new();
    let residual_scale = 1.0 / (2.0 * cfg.num_hidden_layers as f64).sqrt();
    {
        let mut data = varmap
            .data()
            .lock()
            .expect("a fresh VarMap is not poisoned");
        for (name, shape) in parameter_shapes(cfg) {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                let std = if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") {
                    0.02 * residual_scale
                } else {
                    0.02
                };
                let mut s = Stream(name_seed(seed, &name));
                (0..n).map(|_| (s.normal() * std) as f32).collect()
            };
            let t = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    Ok(varmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_and_sane_statistics() {
        let cfg = ModelConfig::small(300);
        let a = init_varmap(&cfg, 7, DType::F32, &Device::Cpu).unwrap();
        let b = init_varmap(&cfg, 7, DType::F32, &Device::Cpu).unwrap();
        let c = init_varmap(&cfg, 8, DType::F32, &Device::Cpu).unwrap();
        let name = "model.layers.0.mlp.up_proj.weight";
        let get = |m: &VarMap| {
            m.data().lock().unwrap()[name]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(get(&a), get(&b));
        assert_ne!(get(&a), get(&c));
        let v = get(&a);
        let mean = v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len() as f64;
        let var = v
            .iter()
            .map(|x| (f64::from(*x) - mean).powi(2))
            .sum::<f64>()
            / v.len() as f64;
        // 49,152 draws of N(0, 0.02²): the sample std is within 2 % of 0.02 with overwhelming odds.
        assert!(
            mean.abs() < 0.001 && (var.sqrt() - 0.02).abs() < 0.0004,
            "mean {mean}, std {}",
            var.sqrt()
        );
        let total: usize = a.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(total, cfg.parameter_count());
    }
}
