//! AdamW with decoupled weight decay (Loshchilov and Hutter, 2019), written here rather than taken
//! from candle-nn because a resumed run must restore the moments exactly and candle-nn's `AdamW`
//! keeps them private; plus the learning-rate schedule (linear warmup, cosine decay) and
//! global-norm gradient clipping.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Tensor, Var};

use crate::Result;

/// AdamW hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWParams {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// The optimizer: named variables and their first and second moments.
pub struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    pub step: u64,
    params: AdamWParams,
}

impl AdamW {
    /// An optimizer over `vars` (name, variable), moments at zero.
    ///
    /// # Errors
    /// Allocation errors.
    pub fn new(mut vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |v: &Var| {
            v.as_tensor()
                .zeros_like()
                .and_then(|t| t.to_dtype(DType::F32))
        };
        let m = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            m,
            v,
            step: 0,
            params,
        })
    }

    /// One update with learning rate `lr`. Moments are kept in f32 whatever the weights' dtype;
    /// keep the weights themselves in f32 (master weights, see [`crate::Decoder::cast`]) when
    /// the model computes in half precision.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming every variable `grads` has no gradient for (nothing is
    /// updated then: a parameter the loss does not reach is a broken model, not one to train
    /// around; leave frozen parameters out of the optimizer instead); tensor errors.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let missing: Vec<&str> = self
            .vars
            .iter()
            .filter(|(_, var)| grads.get(var.as_tensor()).is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(crate::Error::Config(format!(
                "no gradient reached {} of the {} trained parameters: {} (freeze them on purpose, \
                 or the model's forward pass does not use them)",
                missing.len(),
                self.vars.len(),
                missing.join(", ")
            )));
        }
        self.step += 1;
        let p = self.params;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - p.beta1.powi(t), 1.0 - p.beta2.powi(t));
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let g = grads
                .get(var.as_tensor())
                .expect("checked above")
                .to_dtype(DType::F32)?;
            self.m[i] = ((&self.m[i] * p.beta1)? + (&g * (1.0 - p.beta1))?)?;
            self.v[i] = ((&self.v[i] * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let update = ((&self.m[i] / bc1)? / ((&self.v[i] / bc2)?.sqrt()? + p.eps)?)?;
            let w = var.as_tensor().to_dtype(DType::F32)?;
            let w = ((w * (1.0 - lr * p.weight_decay))? - (update * lr)?)?;
            var.set(&w.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }

    /// The moments as named tensors, for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`] and the step count.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming a missing moment.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (i, (name, _)) in self.vars.iter().enumerate() {
            let get = |k: String| {
                state
                    .get(&k)
                    .cloned()
                    .ok_or_else(|| crate::Error::Config(format!("optimizer state lacks `{k}`")))
            };
            self.m[i] = get(format!("m.{name}"))?.to_dtype(DType::F32)?;
            self.v[i] = get(format!("v.{name}"))?.to_dtype(DType::F32)?;
        }
        self.step = step;
        Ok(())
    }

    /// Adds the gradients of `more` into `acc` (gradient accumulation over micro-batches).
    ///
    /// # Errors
    /// Tensor errors.
    pub fn accumulate(&self, acc: &mut GradStore, more: &GradStore) -> Result<()> {
        for (_, var) in &self.vars {
            if let Some(g) = more.get(var.as_tensor()) {
                let sum = match acc.remove(var.as_tensor()) {
                    Some(a) => (a + g)?,
                    None => g.clone(),
                };
                acc.insert(var.as_tensor(), sum);
            }
        }
        Ok(())
    }

    /// Scales every gradient so that their global L2 norm is at most `max_norm`; returns the norm
    /// before clipping. `max_norm <= 0` disables clipping.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn clip_grad_norm(&self, grads: &mut GradStore, max_norm: f64) -> Result<f64> {
        let mut sq = 0.0;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += g
                    .to_dtype(DType::F64)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f64>()?;
            }
        }
        let norm = sq.sqrt();
        if max_norm > 0.0 && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            for (_, var) in &self.vars {
                if let Some(g) = grads.remove(var.as_tensor()) {
                    grads.insert(var.as_tensor(), (g * scale)?);
                }
            }
        }
        Ok(norm)
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warmup over `warmup` steps to `peak`, then
/// cosine decay to `peak * min_ratio` at the last step.
pub fn lr_at(step: u64, total: u64, warmup: u64, peak: f64, min_ratio: f64) -> f64 {
    if warmup > 0 && step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup.min(step)) as f64 / decay_steps as f64).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak * (min_ratio + (1.0 - min_ratio) * cosine)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let lrs: Vec<f64> = (0..10).map(|s| lr_at(s, 10, 2, 1.0, 0.1)).collect();
        assert_eq!(lrs[0], 0.5);
        assert_eq!(lrs[1], 1.0);
        assert!((lrs[2] - 1.0).abs() < 1e-12, "decay starts at the peak");
        assert!(lrs.windows(2).skip(1).all(|w| w[1] <= w[0]));
        assert!(lrs[9] > 0.1 && lrs[9] < 0.2);
    }

    #[test]
    fn first_step_moves_each_weight_by_lr_against_the_gradient_sign() {
        // With zero moments, bias correction makes the first AdamW update exactly
        // lr * g / (|g| + eps): a step of size lr against the sign of the gradient.
        let var =
            Var::from_tensor(&Tensor::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap()).unwrap();
        let loss = (var.as_tensor() * Tensor::new(&[2.0f32, -1.0, 0.5], &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let mut grads = loss.backward().unwrap();
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], AdamWParams::default()).unwrap();
        let norm = opt.clip_grad_norm(&mut grads, 0.0).unwrap();
        assert!((norm - (4.0f64 + 1.0 + 0.25).sqrt()).abs() < 1e-6);
        opt.step(&grads, 0.1).unwrap();
        let w = var.as_tensor().to_vec1::<f32>().unwrap();
        for (got, want) in w.iter().zip([0.9f32, -1.9, 2.9]) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let var = Var::from_tensor(&Tensor::new(&[0.0f32, 0.0], &Device::Cpu).unwrap()).unwrap();
        let loss = (var.as_tensor() * Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let mut grads = loss.backward().unwrap();
        let opt = AdamW::new(vec![("w".into(), var.clone())], AdamWParams::default()).unwrap();
        assert!((opt.clip_grad_norm(&mut grads, 1.0).unwrap() - 5.0).abs() < 1e-9);
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            (g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5,
            "{g:?}"
        );
    }
}
