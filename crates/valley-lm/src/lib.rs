//! Decoder-only language models for valley's trainer and evaluator plugins.
//!
//! One model family covers Llama and Qwen2 (grouped-query attention, rotary position embeddings,
//! RMSNorm, SwiGLU, optional QKV bias, optional tied embeddings). Every op is composed from candle
//! primitives that have a backward pass: candle 0.11's fused `softmax_last_dim`, `rms_norm`,
//! `rope*` and `sdpa` silently return no gradient (docs/design.md section 9), so none of them is used
//! here, and `tests/gradients.rs` checks every parameter against finite differences. On the CPU
//! the hot ops run as [`fused`] kernels with hand-written backward passes, tested against the
//! composed ops and finite differences in `tests/fused.rs`.
//!
//! Weights use the Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, …) so that
//! checkpoints load from and save to the layout other tools read.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarBuilder;
//! use valley_lm::{init::init_varmap, tokenizer::ByteTokenizer, Decoder, ModelConfig};
//!
//! let mut cfg = ModelConfig::small(ByteTokenizer::VOCAB_SIZE);
//! (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) = (32, 64, 1);
//! let varmap = init_varmap(&cfg, 1, DType::F32, &Device::Cpu)?;
//! let model = Decoder::new(&cfg, &VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
//! let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu)?;
//! // Logits for every position: batch × sequence × vocabulary.
//! assert_eq!(model.forward(&ids, None)?.dims(), &[1, 3, ByteTokenizer::VOCAB_SIZE]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod chat_template;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod fused;
pub mod generate;
pub mod gguf;
pub mod init;
pub mod loss;
pub mod model;
pub mod ops;
pub mod optim;
pub mod tokenizer;

pub use config::ModelConfig;
pub use model::{Decoder, KvCache};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
    /// A configuration is invalid.
    #[error("invalid model config: {0}")]
    Config(String),
    /// A tokenizer could not be built, trained or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
