//! Model configuration, read from a Hugging Face `config.json` (Llama and Qwen2 field names) or
//! written by hand for models trained from scratch.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The shape of a decoder. Field names are Hugging Face's so that `config.json` round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `llama` or `qwen2`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); equal to the query heads when absent.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// RoPE base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// Longest sequence the rotary tables cover.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Whether the output projection shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama's switch for biases on the attention projections (Qwen2 always has QKV biases).
    #[serde(default)]
    pub attention_bias: bool,
}

fn default_model_type() -> String {
    "qwen2".into()
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_rms_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    4096
}

impl ModelConfig {
    /// The small decoder trained from scratch on CPU by default: Qwen2-shaped (QKV bias, GQA,
    /// tied embeddings), about 0.9 M parameters with a 512-token vocabulary.
    pub fn small(vocab_size: usize) -> Self {
        Self {
            model_type: "qwen2".into(),
            vocab_size,
            hidden_size: 128,
            intermediate_size: 384,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: Some(2),
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-6,
            max_position_embeddings: 2048,
            tie_word_embeddings: true,
            attention_bias: false,
        }
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Whether q, k and v projections have biases.
    pub fn qkv_bias(&self) -> bool {
        self.model_type == "qwen2" || self.attention_bias
    }

    /// Checks the shape is consistent.
    ///
    /// # Errors
    /// [`Error::Config`] naming the inconsistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !matches!(self.model_type.as_str(), "qwen2" | "llama") {
            return bad(format!(
                "model_type `{}`: only llama and qwen2 are supported",
                self.model_type
            ));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.head_dim() % 2 != 0 {
            return bad(format!(
                "head dimension {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if self.kv_heads() == 0 || self.num_attention_heads % self.kv_heads() != 0 {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if self.vocab_size == 0 || self.num_hidden_layers == 0 || self.intermediate_size == 0 {
            return bad(
                "vocab_size, num_hidden_layers and intermediate_size must be positive".into(),
            );
        }
        Ok(())
    }

    /// Parameters of the model.
    pub fn parameter_count(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let kv = self.kv_heads() * self.head_dim();
        let bias = if self.qkv_bias() { h + 2 * kv } else { 0 };
        let attention = h * h + 2 * h * kv + h * h + bias;
        let layer = attention + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * layer + h + head
    }

    /// Reads a Hugging Face `config.json`.
    ///
    /// # Errors
    /// [`Error::File`] naming the file and the field at fault.
    pub fn from_json_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| Error::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        cfg.validate().map_err(|e| Error::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_qwen2_config_and_counts_parameters() {
        // Fields of Qwen/Qwen2.5-0.5B-Instruct's config.json (494,032,768 parameters, as its model
        // card states: 0.49B).
        let json = r#"{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":151936,
            "hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,"num_attention_heads":14,
            "num_key_value_heads":2,"rope_theta":1000000.0,"rms_norm_eps":1e-06,
            "max_position_embeddings":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16"}"#;
        let cfg: ModelConfig = serde_json::from_str(json).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.head_dim(), 64);
        assert!(cfg.qkv_bias());
        assert_eq!(cfg.parameter_count(), 494_032_768);
    }

    #[test]
    fn inconsistent_shapes_are_refused() {
        let mut cfg = ModelConfig::small(300);
        cfg.num_key_value_heads = Some(3);
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("num_key_value_heads"));
        let mut cfg = ModelConfig::small(300);
        cfg.model_type = "gpt2".into();
        assert!(cfg.validate().is_err());
    }
}
