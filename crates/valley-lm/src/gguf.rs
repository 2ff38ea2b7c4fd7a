//! GGUF import: reads a Llama- or Qwen2-family model stored as a llama.cpp GGUF file (for example
//! SmolLM2-135M-Instruct as it ships in GGUF form), dequantizes every tensor, renames it to the
//! Hugging Face name [`crate::Decoder`] reads, and writes a checkpoint in the HF layout
//! (`config.json` + `model.safetensors`, `tokenizer.json` when the file carries a GPT-2-style
//! BPE vocabulary, and its `tokenizer.chat_template` in `tokenizer_config.json`) so the trainer
//! and the evaluator use it like any other checkpoint, prompting with the model's own template.
//!
//! The file is read with candle's own reader (`candle_core::quantized::gguf_file`); nothing else
//! is needed. Two facts of llama.cpp's converter (`convert_hf_to_gguf.py`) shape the import:
//!
//! - For the `llama` architecture, `LlamaModel.modify_tensors` permutes the rows of the Q and K
//!   projections (weights and biases) so that llama.cpp's RoPE, which rotates adjacent pairs, sees
//!   the pairs HF's rotate-half RoPE forms from the two halves of each head:
//!
//!   ```python
//!   @staticmethod
//!   def permute(weights: Tensor, n_head: int, n_head_kv: int | None):
//!       if n_head_kv is not None and n_head != n_head_kv:
//!           n_head = n_head_kv
//!       return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
//!               .swapaxes(1, 2)
//!               .reshape(weights.shape))
//!   # q_proj: permute(w, n_head, n_head); k_proj: permute(w, n_head, n_kv_head)
//!   ```
//!
//!   [`unpermute_rows`] inverts it. The `qwen2` converter (`Qwen2Model`) does not permute, so
//!   Qwen2 files are taken as they are.
//! - GGUF stores dimensions innermost first; candle's reader reverses them, so a projection comes
//!   out as `[out, in]`, as in PyTorch.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    io::BufReader,
    path::{Path, PathBuf},
};

use candle_core::{
    quantized::gguf_file::{Content, Value},
    DType, Device, Tensor, Var,
};
use candle_nn::VarMap;

use crate::{
    chat_template::{ChatTemplate, JinjaTemplate},
    model::parameter_shapes,
    Error, ModelConfig, Result,
};

mod tokenizer;

/// A GGUF model read into memory: its configuration and its weights under Hugging Face names.
#[derive(Debug)]
pub struct GgufModel {
    /// The configuration built from the file's metadata.
    pub config: ModelConfig,
    /// Dequantized weights, by Hugging Face name.
    pub tensors: HashMap<String, Tensor>,
    /// The `tokenizer.json` text built from the file's vocabulary, when it has one we can build.
    pub tokenizer_json: Option<String>,
    /// Why no `tokenizer.json` was built, when none was.
    pub tokenizer_note: Option<String>,
    /// The file's own chat template (`tokenizer.chat_template`), compiled, with the vocabulary's
    /// `bos`/`eos` tokens; `None` when the file has none or it does not compile.
    pub chat_template: Option<ChatTemplate>,
    /// Why no chat template was taken, when none was.
    pub chat_template_note: Option<String>,
    /// The file's tensors the model does not use (GGUF names for those without a Hugging Face
    /// one, e.g. `rope_freqs.weight`), sorted.
    pub extra: Vec<String>,
}

fn err(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads an integer metadata value of any integer width.
fn as_usize(v: &Value) -> Option<usize> {
    match v {
        Value::U8(x) => Some(usize::from(*x)),
        Value::U16(x) => Some(usize::from(*x)),
        Value::U32(x) => usize::try_from(*x).ok(),
        Value::U64(x) => usize::try_from(*x).ok(),
        Value::I8(x) => usize::try_from(*x).ok(),
        Value::I16(x) => usize::try_from(*x).ok(),
        Value::I32(x) => usize::try_from(*x).ok(),
        Value::I64(x) => usize::try_from(*x).ok(),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::F32(x) => Some(f64::from(*x)),
        Value::F64(x) => Some(*x),
        other => as_usize(other).map(|x| x as f64),
    }
}

struct Metadata<'a> {
    path: &'a Path,
    map: &'a HashMap<String, Value>,
}

impl Metadata<'_> {
    fn get(&self, key: &str) -> Result<&Value> {
        self.map
            .get(key)
            .ok_or_else(|| err(self.path, format!("GGUF metadata key `{key}` is missing")))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        as_usize(self.get(key)?).ok_or_else(|| {
            err(
                self.path,
                format!("GGUF metadata key `{key}` is not an integer"),
            )
        })
    }

    fn f64(&self, key: &str) -> Result<f64> {
        as_f64(self.get(key)?).ok_or_else(|| {
            err(
                self.path,
                format!("GGUF metadata key `{key}` is not a number"),
            )
        })
    }

    fn string(&self, key: &str) -> Result<&str> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            _ => Err(err(
                self.path,
                format!("GGUF metadata key `{key}` is not a string"),
            )),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<&str>> {
        let Value::Array(items) = self.get(key)? else {
            return Err(err(
                self.path,
                format!("GGUF metadata key `{key}` is not an array"),
            ));
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(err(
                    self.path,
                    format!("GGUF metadata key `{key}` holds a non-string"),
                )),
            })
            .collect()
    }
}

/// Builds the model configuration from a GGUF file's metadata (`general.architecture` and the
/// `<arch>.*` keys llama.cpp writes). `tensor_vocab` is the row count of `token_embd.weight`,
/// used when the file has no `tokenizer.ggml.tokens` list.
///
/// # Errors
/// [`Error::File`] naming a missing or mistyped key, an architecture other than `llama` or
/// `qwen2`, or a shape [`ModelConfig::validate`] refuses.
pub fn config_from_metadata(
    path: &Path,
    metadata: &HashMap<String, Value>,
    tensor_vocab: Option<usize>,
) -> Result<ModelConfig> {
    let md = Metadata {
        path,
        map: metadata,
    };
    let arch = md.string("general.architecture")?;
    if !matches!(arch, "llama" | "qwen2") {
        return Err(err(
            path,
            format!(
                "GGUF metadata key `general.architecture` is `{arch}`: only `llama` and `qwen2` \
                 can be imported"
            ),
        ));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let hidden_size = md.usize(&key("embedding_length"))?;
    let heads = md.usize(&key("attention.head_count"))?;
    let kv_heads = if md.map.contains_key(&key("attention.head_count_kv")) {
        md.usize(&key("attention.head_count_kv"))?
    } else {
        heads
    };
    // A head width other than hidden/heads (GGUF's `attention.key_length`) has no place in our
    // config; refuse it rather than mis-shape the projections.
    if let Some(v) = md.map.get(&key("attention.key_length")) {
        let k = as_usize(v).unwrap_or(0);
        if heads == 0 || k != hidden_size / heads {
            return Err(err(
                path,
                format!(
                    "GGUF metadata key `{}` is {k}, but embedding_length / head_count is {}: \
                     a separate head width is not supported",
                    key("attention.key_length"),
                    hidden_size / heads.max(1)
                ),
            ));
        }
    }
    let vocab_size = match md.map.get("tokenizer.ggml.tokens") {
        Some(_) => md.strings("tokenizer.ggml.tokens")?.len(),
        None => tensor_vocab.ok_or_else(|| {
            err(
                path,
                "GGUF metadata key `tokenizer.ggml.tokens` is missing and there is no \
                 `token_embd.weight` to take the vocabulary size from",
            )
        })?,
    };
    let rope_theta = if md.map.contains_key(&key("rope.freq_base")) {
        md.f64(&key("rope.freq_base"))?
    } else {
        10_000.0
    };
    let cfg = ModelConfig {
        model_type: arch.to_string(),
        vocab_size,
        hidden_size,
        intermediate_size: md.usize(&key("feed_forward_length"))?,
        num_hidden_layers: md.usize(&key("block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: Some(kv_heads),
        rope_theta,
        // f32 in the file; round-trip through its decimal form so 1e-5 stays 1e-5, not
        // 9.999999747378752e-6.
        rms_norm_eps: round_f32(md.f64(&key("attention.layer_norm_rms_epsilon"))?),
        max_position_embeddings: md.usize(&key("context_length"))?,
        // Set from the tensors: tied when the file has no `output.weight`.
        tie_word_embeddings: false,
        attention_bias: false,
    };
    cfg.validate().map_err(|e| err(path, e.to_string()))?;
    Ok(cfg)
}

fn round_f32(x: f64) -> f64 {
    (x as f32).to_string().parse().unwrap_or(x)
}

/// The Hugging Face name of a GGUF tensor name, or `None` for a tensor the decoder does not use
/// (for example `rope_freqs.weight`).
pub fn hf_name(gguf_name: &str) -> Option<String> {
    match gguf_name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// The GGUF name of a Hugging Face weight name (the inverse of [`hf_name`]).
pub fn gguf_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, kind) = rest.rsplit_once('.')?;
    let g = match part {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// llama.cpp's `LlamaModel.permute` (see the module doc): rows of a Q or K projection (weight
/// `[heads·d, in]` or bias `[heads·d]`) viewed as `[heads, 2, d/2, …]`, axes 1 and 2 swapped.
///
/// # Errors
/// A row count not divisible by `2·heads`.
pub fn permute_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    reorder_rows(w, heads, true)
}

/// The inverse of [`permute_rows`]: rows viewed as `[heads, d/2, 2, …]`, axes 1 and 2 swapped.
///
/// # Errors
/// A row count not divisible by `2·heads`.
pub fn unpermute_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    reorder_rows(w, heads, false)
}

fn reorder_rows(w: &Tensor, heads: usize, forward: bool) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    if heads == 0 || rows % (2 * heads) != 0 {
        return Err(Error::Config(format!(
            "cannot split {rows} rows into {heads} heads of rotary pairs"
        )));
    }
    let half = rows / heads / 2;
    let mut view = vec![heads];
    if forward {
        view.extend([2, half]);
    } else {
        view.extend([half, 2]);
    }
    view.extend_from_slice(&dims[1..]);
    Ok(w.reshape(view)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

/// Reads a GGUF file into memory: configuration, dequantized weights under HF names (in `dtype`,
/// f32 or bf16 typically) and, when possible, a `tokenizer.json`.
///
/// # Errors
/// [`Error::File`] naming the file and the missing or bad key or tensor.
pub fn read(path: &Path, dtype: DType) -> Result<GgufModel> {
    let file = File::open(path).map_err(|e| err(path, e.to_string()))?;
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader)
        .map_err(|e| err(path, format!("not a readable GGUF file: {e}")))?;
    let tensor_vocab = content
        .tensor_infos
        .get("token_embd.weight")
        .and_then(|t| t.shape.dims().first().copied());
    let mut cfg = config_from_metadata(path, &content.metadata, tensor_vocab)?;
    cfg.tie_word_embeddings = !content.tensor_infos.contains_key("output.weight");
    // A Llama file whose converter kept `attention_bias` carries Q/K/V biases.
    if cfg.model_type == "llama" && content.tensor_infos.contains_key("blk.0.attn_q.bias") {
        cfg.attention_bias = true;
    }
    // The one rule of every loader (checkpoint::check_tensors): every weight the model needs,
    // with its shape, before anything is read.
    let mut found = BTreeMap::new();
    let mut unused = Vec::new();
    for (g, info) in &content.tensor_infos {
        match hf_name(g) {
            Some(h) => {
                found.insert(h, info.shape.dims().to_vec());
            }
            None => unused.push(g.clone()),
        }
    }
    let mut extra =
        crate::checkpoint::check_tensors_as(&cfg, &found, path, &|hf: &str| match gguf_name(hf) {
            Some(g) => format!("`{g}` (for `{hf}`)"),
            None => format!("`{hf}`"),
        })?;
    extra.extend(unused);
    extra.sort();
    let permuted = cfg.model_type == "llama";
    let device = Device::Cpu;
    let mut tensors = HashMap::new();
    for (name, shape) in parameter_shapes(&cfg) {
        let g = gguf_name(&name).ok_or_else(|| {
            Error::Config(format!(
                "no GGUF name for weight `{name}` (an internal bug)"
            ))
        })?;
        if !content.tensor_infos.contains_key(&g) {
            return Err(err(
                path,
                format!("GGUF tensor `{g}` (for `{name}`) is missing"),
            ));
        }
        let q = content
            .tensor(&mut reader, &g, &device)
            .map_err(|e| err(path, format!("GGUF tensor `{g}`: {e}")))?;
        let mut t = q
            .dequantize(&device)
            .map_err(|e| err(path, format!("GGUF tensor `{g}`: {e}")))?;
        if t.dims() != shape.as_slice() {
            return Err(err(
                path,
                format!(
                    "GGUF tensor `{g}` has shape {:?}, the metadata implies {shape:?}",
                    t.dims()
                ),
            ));
        }
        if permuted {
            if name.contains(".q_proj.") {
                t = unpermute_rows(&t, cfg.num_attention_heads)?;
            } else if name.contains(".k_proj.") {
                t = unpermute_rows(&t, cfg.kv_heads())?;
            }
        }
        tensors.insert(name, t.to_dtype(dtype)?);
    }
    let (tokenizer_json, tokenizer_note) = match tokenizer::tokenizer_json(&content.metadata) {
        Ok(json) => (Some(json), None),
        Err(note) => (None, Some(note)),
    };
    let (chat_template, chat_template_note) = match chat_template(path, &content.metadata) {
        Ok(t) => (Some(t), None),
        Err(note) => (None, Some(note)),
    };
    Ok(GgufModel {
        config: cfg,
        tensors,
        tokenizer_json,
        tokenizer_note,
        chat_template,
        chat_template_note,
        extra,
    })
}

/// The file's `tokenizer.chat_template` (what llama.cpp's converter copies from the model's
/// `tokenizer_config.json`), compiled, with `bos`/`eos` spelled from `tokenizer.ggml.bos_token_id`
/// / `eos_token_id` in the token list. `Err` says why there is none: the key is absent or not a
/// string, or the template does not compile (then the checkpoint falls back to ChatML, as a
/// checkpoint without a template does).
fn chat_template(
    path: &Path,
    metadata: &HashMap<String, Value>,
) -> std::result::Result<ChatTemplate, String> {
    const KEY: &str = "tokenizer.chat_template";
    let source = match metadata.get(KEY) {
        None => return Err(format!("the file has no `{KEY}`")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("`{KEY}` is not a string")),
    };
    let md = Metadata {
        path,
        map: metadata,
    };
    let tokens = md.strings("tokenizer.ggml.tokens").ok();
    let token = |key: &str| -> Option<String> {
        let id = metadata.get(key).and_then(as_usize)?;
        tokens.as_ref()?.get(id).map(|t| (*t).to_string())
    };
    JinjaTemplate::new(
        source,
        format!("{} ({KEY})", path.display()),
        token("tokenizer.ggml.bos_token_id"),
        token("tokenizer.ggml.eos_token_id"),
    )
    .map(ChatTemplate::Jinja)
    .map_err(|e| format!("`{KEY}` does not compile ({e})"))
}

/// What [`import`] wrote.
#[derive(Debug)]
pub struct Imported {
    /// The model's configuration (also in `config.json`).
    pub config: ModelConfig,
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// Whether a `tokenizer.json` was written.
    pub tokenizer: bool,
    /// Why not, when it was not.
    pub tokenizer_note: Option<String>,
    /// Whether the file's chat template was written (into `tokenizer_config.json`).
    pub chat_template: bool,
    /// Why not, when it was not.
    pub chat_template_note: Option<String>,
    /// The file's tensors the model does not use (not written), sorted.
    pub extra: Vec<String>,
}

/// Imports a GGUF file as an f32 checkpoint in the Hugging Face layout under `out_dir`
/// (`config.json`, `model.safetensors`, and `tokenizer.json` when the vocabulary converts).
///
/// # Errors
/// As [`read`], plus I/O errors naming the output file.
pub fn import(gguf: &Path, out_dir: &Path) -> Result<ModelConfig> {
    import_as(gguf, out_dir, DType::F32).map(|i| i.config)
}

/// [`import`] with a chosen weight dtype (f32 or bf16), reporting what was written.
///
/// # Errors
/// As [`import`].
pub fn import_as(gguf: &Path, out_dir: &Path, dtype: DType) -> Result<Imported> {
    let model = read(gguf, dtype)?;
    let varmap = VarMap::new();
    {
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| Error::Config("poisoned VarMap".into()))?;
        for (name, t) in &model.tensors {
            data.insert(name.clone(), Var::from_tensor(t)?);
        }
    }
    crate::checkpoint::save(out_dir, &model.config, &varmap)?;
    let tokenizer = match &model.tokenizer_json {
        Some(json) => {
            let p = out_dir.join("tokenizer.json");
            std::fs::write(&p, json).map_err(|e| err(&p, e.to_string()))?;
            true
        }
        None => false,
    };
    if let Some(t) = &model.chat_template {
        t.save(out_dir)
            .map_err(|e| err(out_dir, format!("writing the chat template: {e}")))?;
    }
    Ok(Imported {
        config: model.config,
        dir: out_dir.to_path_buf(),
        tokenizer,
        tokenizer_note: model.tokenizer_note,
        chat_template: model.chat_template.is_some(),
        chat_template_note: model.chat_template_note,
        extra: model.extra,
    })
}
