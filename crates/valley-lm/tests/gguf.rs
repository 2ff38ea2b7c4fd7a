//! GGUF import: tiny models written as GGUF files here (with candle's own `gguf_file::write`),
//! imported with `valley_lm::gguf::import`, and compared with the model they came from.
//!
//! The Llama file's Q and K rows are permuted as llama.cpp's `convert_hf_to_gguf.py` does
//! (`LlamaModel.permute`: rows viewed as `[n_head, 2, d/2, in]`, axes 1 and 2 swapped; K uses the
//! KV head count), written out below with explicit index arithmetic rather than the library's own
//! `permute_rows`, so the import's inverse is checked against an independent statement of the rule.

use std::{collections::HashMap, path::Path};

use candle_core::{
    quantized::{gguf_file, GgmlDType, QTensor},
    DType, Device, Tensor, Var,
};
use candle_nn::{VarBuilder, VarMap};
use valley_lm::{
    chat_template::ChatTemplate, checkpoint, gguf, model::parameter_shapes, tokenizer::Tokenizer,
    Decoder, ModelConfig,
};

/// Dimensions are multiples of 32 so that every matrix also quantizes to Q8_0 (32-wide blocks).
fn config(model_type: &str, tied: bool) -> ModelConfig {
    ModelConfig {
        model_type: model_type.into(),
        vocab_size: 96,
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 64,
        tie_word_embeddings: tied,
        attention_bias: false,
    }
}

/// Every weight drawn from a seeded hash, uniform in [-0.3, 0.3) (Q and K in [-0.5, 0.5), so that
/// attention is sharp and scrambled rotary pairs show in the logits); biases non-zero and norms
/// away from one, so a bias or norm mapped to the wrong place changes the logits too.
fn weights(cfg: &ModelConfig) -> HashMap<String, Tensor> {
    parameter_shapes(cfg)
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let base = if name.ends_with("norm.weight") {
                1.0
            } else {
                0.0
            };
            let amp = if name.contains(".q_proj.") || name.contains(".k_proj.") {
                0.5
            } else {
                0.3
            };
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    // SplitMix64 of (tensor, index): uniform in [0, 1).
                    let mut z = ((k as u64) << 32 | i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    let u = ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32;
                    base + amp * (2.0 * u - 1.0)
                })
                .collect();
            (name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

fn logits(cfg: &ModelConfig, w: &HashMap<String, Tensor>) -> Tensor {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (k, t) in w {
            data.insert(k.clone(), Var::from_tensor(t).unwrap());
        }
    }
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    forward(&Decoder::new(cfg, &vb).unwrap())
}

fn forward(model: &Decoder) -> Tensor {
    let ids = Tensor::new(&[[3u32, 17, 42, 5, 88, 0, 61, 9]], &Device::Cpu).unwrap();
    model.forward(&ids, None).unwrap()
}

fn imported_logits(dir: &Path) -> Tensor {
    let loaded = checkpoint::load_for_inference(dir, DType::F32, &Device::Cpu).unwrap();
    forward(&Decoder::new(&loaded.config, &loaded.weights).unwrap())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// llama.cpp's permute: output row `h·d + i·2 + j` is input row `h·d + j·(d/2) + i`.
fn llama_cpp_permute(w: &Tensor, heads: usize) -> Tensor {
    let rows = w.dim(0).unwrap();
    let d = rows / heads;
    let idx: Vec<u32> = (0..rows)
        .map(|r| {
            let (h, rest) = (r / d, r % d);
            let (i, j) = (rest / 2, rest % 2);
            (h * d + j * (d / 2) + i) as u32
        })
        .collect();
    w.index_select(&Tensor::new(idx, &Device::Cpu).unwrap(), 0)
        .unwrap()
}

struct Spec<'a> {
    cfg: &'a ModelConfig,
    arch: &'a str,
    permute: bool,
    matrices: GgmlDType,
    drop_tensor: Option<&'a str>,
    drop_key: Option<&'a str>,
    extra: Vec<(String, gguf_file::Value)>,
}

impl<'a> Spec<'a> {
    fn new(cfg: &'a ModelConfig) -> Self {
        Self {
            cfg,
            arch: &cfg.model_type,
            permute: cfg.model_type == "llama",
            matrices: GgmlDType::F32,
            drop_tensor: None,
            drop_key: None,
            extra: Vec::new(),
        }
    }
}

/// Writes `w` as a GGUF file with the metadata llama.cpp's converter writes for this shape.
fn write_gguf(path: &Path, spec: &Spec, w: &HashMap<String, Tensor>) {
    use gguf_file::Value;
    let cfg = spec.cfg;
    let a = spec.arch;
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(a.into())),
        (
            format!("{a}.embedding_length"),
            Value::U32(cfg.hidden_size as u32),
        ),
        (
            format!("{a}.block_count"),
            Value::U32(cfg.num_hidden_layers as u32),
        ),
        (
            format!("{a}.feed_forward_length"),
            Value::U32(cfg.intermediate_size as u32),
        ),
        (
            format!("{a}.attention.head_count"),
            Value::U32(cfg.num_attention_heads as u32),
        ),
        (
            format!("{a}.attention.head_count_kv"),
            Value::U32(cfg.kv_heads() as u32),
        ),
        (
            format!("{a}.rope.freq_base"),
            Value::F32(cfg.rope_theta as f32),
        ),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            Value::F32(cfg.rms_norm_eps as f32),
        ),
        (
            format!("{a}.context_length"),
            Value::U32(cfg.max_position_embeddings as u32),
        ),
    ];
    meta.extend(spec.extra.iter().cloned());
    meta.retain(|(k, _)| Some(k.as_str()) != spec.drop_key);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = w.keys().collect();
    names.sort();
    for name in names {
        let g = gguf::gguf_name(name).unwrap();
        if Some(g.as_str()) == spec.drop_tensor {
            continue;
        }
        let mut t = w[name].clone();
        if spec.permute && name.contains(".q_proj.") {
            t = llama_cpp_permute(&t, cfg.num_attention_heads);
        } else if spec.permute && name.contains(".k_proj.") {
            t = llama_cpp_permute(&t, cfg.kv_heads());
        }
        // llama.cpp keeps norms and biases (1-D) in F32 whatever the file's type.
        let dtype = if t.rank() == 2 {
            spec.matrices
        } else {
            GgmlDType::F32
        };
        tensors.push((g, QTensor::quantize(&t, dtype).unwrap()));
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).unwrap();
}

#[test]
fn a_qwen2_gguf_imports_to_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("qwen2", false);
    let w = weights(&cfg);
    let file = dir.path().join("tiny-qwen2.gguf");
    write_gguf(&file, &Spec::new(&cfg), &w);
    let out = dir.path().join("ckpt");
    let imported = gguf::import(&file, &out).unwrap();
    assert_eq!(imported, cfg, "the config rebuilt from GGUF metadata");
    assert!(out.join("config.json").is_file() && out.join("model.safetensors").is_file());
    // F32 tensors are copied exactly, so the logits agree to the last bit but for summation order.
    let diff = max_abs_diff(&logits(&cfg, &w), &imported_logits(&out));
    assert!(diff < 1e-5, "max |Δlogit| = {diff}");
}

#[test]
fn a_llama_gguf_with_permuted_q_and_k_rows_imports_to_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    // Tied embeddings: the file has no `output.weight`, as SmolLM2's.
    let cfg = config("llama", true);
    let w = weights(&cfg);
    let file = dir.path().join("tiny-llama.gguf");
    write_gguf(&file, &Spec::new(&cfg), &w);
    let out = dir.path().join("ckpt");
    let imported = gguf::import(&file, &out).unwrap();
    assert_eq!(imported, cfg);
    let reference = logits(&cfg, &w);
    let diff = max_abs_diff(&reference, &imported_logits(&out));
    assert!(diff < 1e-5, "max |Δlogit| = {diff}");

    // The check has teeth: a Llama file whose rows were NOT permuted imports to other logits
    // (the import un-permutes them, scrambling the rotary pairs): measured 4.8 for a largest
    // logit of 4.7.
    let unpermuted = dir.path().join("not-permuted.gguf");
    let mut spec = Spec::new(&cfg);
    spec.permute = false;
    write_gguf(&unpermuted, &spec, &w);
    let out2 = dir.path().join("ckpt2");
    gguf::import(&unpermuted, &out2).unwrap();
    let wrong = max_abs_diff(&reference, &imported_logits(&out2));
    assert!(
        wrong > 1.0,
        "unpermuted file gave nearly the same logits ({wrong})"
    );
}

#[test]
fn the_permutation_and_its_inverse_match_llama_cpp() {
    let w = Tensor::arange(0f32, 8.0 * 3.0, &Device::Cpu)
        .unwrap()
        .reshape((8, 3))
        .unwrap();
    let ours = gguf::permute_rows(&w, 2).unwrap();
    assert_eq!(max_abs_diff(&ours, &llama_cpp_permute(&w, 2)), 0.0);
    let back = gguf::unpermute_rows(&ours, 2).unwrap();
    assert_eq!(max_abs_diff(&back, &w), 0.0);
    // Biases (1-D) are permuted the same way.
    let b = Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap();
    assert_eq!(
        gguf::permute_rows(&b, 2).unwrap().to_vec1::<f32>().unwrap(),
        // [h, 2, 2] -> [h, 2(i), 2(j)]: rows 0,2,1,3 then 4,6,5,7.
        vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]
    );
}

#[test]
fn q8_0_tensors_import_within_the_quantization_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("llama", false);
    let w = weights(&cfg);
    let file = dir.path().join("tiny-q8.gguf");
    let mut spec = Spec::new(&cfg);
    spec.matrices = GgmlDType::Q8_0;
    write_gguf(&file, &spec, &w);
    let out = dir.path().join("ckpt");
    gguf::import(&file, &out).unwrap();
    let model = gguf::read(&file, DType::F32).unwrap();
    // Q8_0 stores each block of 32 as int8 times an f16 scale absmax/127: the rounding error is at
    // most half a step, absmax/254, plus the scale's own f16 rounding (relative 2^-11).
    for (name, t) in &model.tensors {
        let bound = max_abs(&w[name]) * (1.0 / 254.0 + 1.0 / 2048.0);
        let err = max_abs_diff(t, &w[name]);
        assert!(
            err <= bound,
            "{name}: max error {err} over the bound {bound}"
        );
    }
    // Exactly the weights the file holds: each matrix quantized and dequantized here, by HF name,
    // with no permutation in the way. The import must reproduce this model's logits.
    let dequantized: HashMap<String, Tensor> = w
        .iter()
        .map(|(k, t)| {
            let t = if t.rank() == 2 {
                QTensor::quantize(t, GgmlDType::Q8_0)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap()
            } else {
                t.clone()
            };
            (k.clone(), t)
        })
        .collect();
    let imported = imported_logits(&out);
    let diff = max_abs_diff(&logits(&cfg, &dequantized), &imported);
    assert!(
        diff < 1e-5,
        "max |Δlogit| = {diff} against the dequantized weights"
    );
    // Against the float model: measured 0.31 for a largest logit of 5.2 (6 %); the bound of 15 %
    // still catches a mis-permuted import, which moves the logits by about 100 % here.
    let reference = logits(&cfg, &w);
    let diff = max_abs_diff(&reference, &imported);
    let scale = max_abs(&reference);
    assert!(diff <= 0.15 * scale, "max |Δlogit| = {diff} of {scale}");
}

#[test]
fn bf16_import_is_offered() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("qwen2", true);
    let file = dir.path().join("tiny.gguf");
    write_gguf(&file, &Spec::new(&cfg), &weights(&cfg));
    let out = dir.path().join("ckpt");
    let imported = gguf::import_as(&file, &out, DType::BF16).unwrap();
    assert!(
        !imported.tokenizer,
        "no vocabulary in the file, no tokenizer.json"
    );
    let t = candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(t["model.embed_tokens.weight"].dtype(), DType::BF16);
}

#[test]
fn another_architecture_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("qwen2", false);
    let file = dir.path().join("phi.gguf");
    let mut spec = Spec::new(&cfg);
    spec.arch = "phi3";
    write_gguf(&file, &spec, &weights(&cfg));
    let e = gguf::import(&file, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("general.architecture") && e.contains("phi3") && e.contains("phi.gguf"),
        "{e}"
    );
}

#[test]
fn a_missing_tensor_or_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("qwen2", false);
    let file = dir.path().join("holey.gguf");
    let mut spec = Spec::new(&cfg);
    spec.drop_tensor = Some("blk.1.ffn_up.weight");
    write_gguf(&file, &spec, &weights(&cfg));
    let e = gguf::import(&file, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("blk.1.ffn_up.weight") && e.contains("missing"),
        "{e}"
    );

    let mut spec = Spec::new(&cfg);
    spec.drop_key = Some("qwen2.block_count");
    write_gguf(&file, &spec, &weights(&cfg));
    let e = gguf::import(&file, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("qwen2.block_count") && e.contains("missing"),
        "{e}"
    );
}

const TEXTS: [&str; 3] = [
    "def add(a, b):\n    return a + b\n",
    "print(sum(map(int, input().split())))",
    "<think>sort the list, then take the first 3</think> answer: 42",
];

/// A byte-level BPE trained here, and a tiny model GGUF carrying it the way gguf-py stores one:
/// tokens by id, merges as "a b", token types (3 = control), with `tokenizer.ggml.pre = pre`.
fn gguf_with_vocabulary(
    dir: &Path,
    pre: &str,
) -> (valley_lm::tokenizer::HfTokenizer, gguf::Imported) {
    use gguf_file::Value;
    let corpus: Vec<&str> = TEXTS.iter().cycle().take(60).copied().collect();
    let Tokenizer::Hf(trained) = valley_lm::tokenizer::train_bpe(corpus.into_iter(), 320).unwrap()
    else {
        panic!("train_bpe gives an HF tokenizer")
    };
    let json: serde_json::Value = serde_json::from_str(&trained.to_json().unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    let mut tokens = vec![String::new(); vocab.len()];
    for (tok, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = tok.clone();
    }
    let specials: Vec<u64> = json["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    let merges: Vec<String> = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            pair => format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            ),
        })
        .collect();
    assert!(!merges.is_empty());
    let strings = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let types = Value::Array(
        (0..tokens.len())
            .map(|i| Value::I32(if specials.contains(&(i as u64)) { 3 } else { 1 }))
            .collect(),
    );
    let mut cfg = config("qwen2", true);
    cfg.vocab_size = tokens.len();
    let mut spec = Spec::new(&cfg);
    spec.extra = vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), strings(&tokens)),
        ("tokenizer.ggml.token_type".into(), types),
        ("tokenizer.ggml.merges".into(), strings(&merges)),
    ];
    let file = dir.join(format!("vocab-{pre}.gguf"));
    write_gguf(&file, &spec, &weights(&cfg));
    let imported = gguf::import_as(&file, &dir.join(pre), DType::F32).unwrap();
    assert!(imported.tokenizer, "{:?}", imported.tokenizer_note);
    assert_eq!(
        imported.config.vocab_size,
        tokens.len(),
        "vocab size from the token list"
    );
    (trained, imported)
}

#[test]
fn a_gpt2_bpe_vocabulary_becomes_an_equivalent_tokenizer_json() {
    // The trained BPE uses GPT-2's split, which llama.cpp names `gpt-2`: the rebuilt tokenizer
    // must encode and decode exactly as the original.
    let dir = tempfile::tempdir().unwrap();
    let (trained, imported) = gguf_with_vocabulary(dir.path(), "gpt-2");
    let rebuilt = Tokenizer::from_dir(&imported.dir, imported.config.vocab_size).unwrap();
    assert_eq!(rebuilt.vocab_size(), trained.vocab_size());
    for text in TEXTS.iter().chain(&[
        "<|im_start|>user\nx = [1, 22, 333]<|im_end|>",
        "héllo wörld ✓",
    ]) {
        let expected = trained.encode(text).unwrap();
        assert_eq!(rebuilt.encode(text), expected, "{text:?}");
        assert_eq!(rebuilt.decode(&expected), *text);
    }
}

#[test]
fn the_known_pre_tokenizers_split_digits_as_their_models_do() {
    // SmolLM2 (`smollm`) and Qwen2 (`qwen2`) split numbers into single digits, Llama 3
    // (`llama-bpe`) into groups of up to three, GPT-2 keeps them whole (then BPE merges apply).
    let dir = tempfile::tempdir().unwrap();
    let digit_groups = |pre: &str| -> Vec<String> {
        let (_, imported) = gguf_with_vocabulary(dir.path(), pre);
        let tok = Tokenizer::from_dir(&imported.dir, imported.config.vocab_size).unwrap();
        let ids = tok.encode("12345");
        assert_eq!(tok.decode(&ids), "12345", "{pre}");
        ids.iter().map(|&i| tok.decode(&[i])).collect()
    };
    assert_eq!(digit_groups("smollm"), ["1", "2", "3", "4", "5"]);
    assert_eq!(digit_groups("qwen2"), ["1", "2", "3", "4", "5"]);
    let llama3 = digit_groups("llama-bpe");
    assert!(
        llama3.iter().all(|g| g.len() <= 3) && llama3.concat() == "12345",
        "{llama3:?}"
    );
    assert!(llama3.len() >= 2, "{llama3:?}");
}

#[test]
fn an_unknown_pre_tokenizer_gives_a_note_not_a_wrong_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.gguf");
    let cfg = config("qwen2", true);
    let mut spec = Spec::new(&cfg);
    spec.extra = vec![
        (
            "tokenizer.ggml.model".into(),
            gguf_file::Value::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".into(),
            gguf_file::Value::String("deepseek-coder".into()),
        ),
    ];
    write_gguf(&file, &spec, &weights(&cfg));
    let imported = gguf::import_as(&file, &dir.path().join("out"), DType::F32).unwrap();
    assert!(!imported.tokenizer);
    assert!(imported.tokenizer_note.unwrap().contains("deepseek-coder"));
}

#[test]
fn a_sentencepiece_vocabulary_gives_a_note_not_a_wrong_tokenizer() {
    use gguf_file::Value;
    let cfg = config("llama", true);
    let mut spec = Spec::new(&cfg);
    let tokens: Vec<Value> = (0..cfg.vocab_size)
        .map(|i| Value::String(format!("t{i}")))
        .collect();
    spec.extra = vec![
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spm.gguf");
    write_gguf(&file, &spec, &weights(&cfg));
    let out = dir.path().join("ckpt");
    let imported = gguf::import_as(&file, &out, DType::F32).unwrap();
    assert!(!imported.tokenizer && !out.join("tokenizer.json").exists());
    assert!(imported.tokenizer_note.unwrap().contains("`llama`"));
}

/// A chat template of SmolLM2-135M-Instruct's kind (written here from memory of its
/// `tokenizer_config.json`, not copied from the file): ChatML with a default system message, as
/// llama.cpp's converter stores it in `tokenizer.chat_template`.
const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A tiny model GGUF with a token list whose ids 1 and 2 are `<|im_start|>` / `<|im_end|>`
/// (SmolLM2's bos and eos) and the given `tokenizer.chat_template`; imported into `dir/out`.
fn gguf_with_template(dir: &Path, template: gguf_file::Value) -> gguf::Imported {
    use gguf_file::Value;
    let cfg = config("qwen2", true);
    let tokens: Vec<Value> = (0..cfg.vocab_size)
        .map(|i| {
            Value::String(match i {
                0 => "<|endoftext|>".into(),
                1 => "<|im_start|>".into(),
                2 => "<|im_end|>".into(),
                _ => format!("t{i}"),
            })
        })
        .collect();
    let mut spec = Spec::new(&cfg);
    spec.extra = vec![
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.chat_template".into(), template),
    ];
    let file = dir.join("chat.gguf");
    write_gguf(&file, &spec, &weights(&cfg));
    gguf::import_as(&file, &dir.join("out"), DType::F32).unwrap()
}

#[test]
fn the_files_chat_template_becomes_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let imported = gguf_with_template(
        dir.path(),
        gguf_file::Value::String(SMOLLM2_TEMPLATE.into()),
    );
    assert!(imported.chat_template, "{:?}", imported.chat_template_note);
    let template = ChatTemplate::from_dir(&imported.dir).unwrap();
    assert_eq!(template.jinja_source(), SMOLLM2_TEMPLATE);
    assert_eq!(
        template.eos_token(),
        Some("<|im_end|>"),
        "eos from the token id"
    );
    // Expected by reading the template: the default system turn, the user turn, the header.
    assert_eq!(
        template.prompt(None, "hi").unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(imported.dir.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["bos_token"], "<|im_start|>");
    assert_eq!(config["eos_token"], "<|im_end|>");
}

#[test]
fn a_template_that_does_not_compile_or_is_not_a_string_gives_a_note_and_chatml() {
    let dir = tempfile::tempdir().unwrap();
    let broken = gguf_with_template(
        dir.path(),
        gguf_file::Value::String("{% for m in messages %}{{ m['content'] }}".into()),
    );
    assert!(!broken.chat_template);
    let note = broken.chat_template_note.unwrap();
    assert!(
        note.contains("does not compile") && note.contains("chat.gguf"),
        "{note}"
    );
    assert!(!broken.dir.join("tokenizer_config.json").exists());
    assert!(matches!(
        ChatTemplate::from_dir(&broken.dir).unwrap(),
        ChatTemplate::ChatMl
    ));

    let dir = tempfile::tempdir().unwrap();
    let number = gguf_with_template(dir.path(), gguf_file::Value::U32(7));
    assert!(!number.chat_template);
    assert!(number.chat_template_note.unwrap().contains("not a string"));
}

#[test]
fn the_import_binary_writes_a_checkpoint_and_names_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("llama", true);
    let file = dir.path().join("tiny.gguf");
    write_gguf(&file, &Spec::new(&cfg), &weights(&cfg));
    let out = dir.path().join("ckpt");
    let bin = env!("CARGO_BIN_EXE_valley-import-gguf");
    let run = std::process::Command::new(bin)
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("llama: 2 layers")
            && stdout.contains("no tokenizer.json")
            && stdout.contains("no chat template: the file has no `tokenizer.chat_template`"),
        "{stdout}"
    );
    assert_eq!(
        ModelConfig::from_json_file(&out.join("config.json")).unwrap(),
        cfg
    );

    let not_gguf = dir.path().join("config.gguf");
    std::fs::write(&not_gguf, "{}").unwrap();
    let run = std::process::Command::new(bin)
        .arg(&not_gguf)
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config.gguf") && stderr.contains("not a readable GGUF"),
        "{stderr}"
    );
}
