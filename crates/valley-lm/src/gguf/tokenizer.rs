//! A Hugging Face `tokenizer.json` rebuilt from a GGUF file's `tokenizer.ggml.*` metadata, for
//! GPT-2-style byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`: Qwen2, SmolLM2,
//! Llama 3).
//!
//! The vocabulary (`tokens`), the merges and the special tokens (`token_type` 3 = control,
//! 4 = user-defined, as llama.cpp's `gguf-py` writes them) are in the file; the pre-tokenizer is
//! not, only its name (`tokenizer.ggml.pre`). The names we know are mapped to the pre-tokenizer of
//! the model's own `tokenizer.json` (regexes as in llama.cpp's `llama-vocab.cpp` for the same
//! names); any other name, or a SentencePiece (`llama`) vocabulary, gives no tokenizer and a note
//! saying why, rather than a tokenizer that splits text differently from the model's.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use serde_json::{json, Value as Json};

/// GPT-2's split (`ByteLevel` with `use_regex`), used by `gpt-2`/`default` and, after splitting
/// digits one by one, by SmolLM2 (`smollm`).
fn byte_level(use_regex: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split(pattern: &str) -> Json {
    json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false})
}

/// `(normalizer, pre_tokenizer, ignore_merges)` for a `tokenizer.ggml.pre` name.
fn pipeline(pre: &str) -> Option<(Json, Json, bool)> {
    // Qwen2's tokenizer.json: NFC, then this split, then ByteLevel without its own regex.
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // Llama 3's: the same with digits in groups of up to three; merges are skipped for whole
    // vocabulary words (`ignore_merges`).
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    Some(match pre {
        "gpt-2" | "default" => (Json::Null, byte_level(true), false),
        "smollm" => (
            Json::Null,
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            false,
        ),
        "qwen2" => (
            json!({"type": "NFC"}),
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2), byte_level(false)]}),
            false,
        ),
        "llama-bpe" => (
            Json::Null,
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3), byte_level(false)]}),
            true,
        ),
        _ => return None,
    })
}

fn strings<'a>(metadata: &'a HashMap<String, Value>, key: &str) -> Result<Vec<&'a str>, String> {
    match metadata.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(format!("GGUF metadata key `{key}` holds a non-string")),
            })
            .collect(),
        Some(_) => Err(format!("GGUF metadata key `{key}` is not an array")),
        None => Err(format!("GGUF metadata key `{key}` is missing")),
    }
}

/// The `tokenizer.json` text for the file's vocabulary, or why none can be built.
pub(crate) fn tokenizer_json(metadata: &HashMap<String, Value>) -> Result<String, String> {
    let model = match metadata.get("tokenizer.ggml.model") {
        Some(Value::String(m)) => m.as_str(),
        _ => return Err("the file has no `tokenizer.ggml.model`".into()),
    };
    if model != "gpt2" {
        return Err(format!(
            "`tokenizer.ggml.model` is `{model}`: only GPT-2-style byte-level BPE (`gpt2`) is \
             converted to tokenizer.json"
        ));
    }
    let pre = match metadata.get("tokenizer.ggml.pre") {
        Some(Value::String(p)) => p.as_str(),
        _ => "default",
    };
    let (normalizer, pre_tokenizer, ignore_merges) = pipeline(pre).ok_or_else(|| {
        format!(
            "`tokenizer.ggml.pre` is `{pre}`: its pre-tokenizer is not known here (known: \
             gpt-2, default, smollm, qwen2, llama-bpe)"
        )
    })?;
    let tokens = strings(metadata, "tokenizer.ggml.tokens")?;
    let merges: Vec<Json> = strings(metadata, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| json!([a, b]))
                .ok_or_else(|| format!("merge `{m}` is not two tokens separated by a space"))
        })
        .collect::<Result<_, _>>()?;
    let types: Vec<i64> = match metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::I32(x) => i64::from(*x),
                Value::U32(x) => i64::from(*x),
                _ => 1,
            })
            .collect(),
        _ => vec![1; tokens.len()],
    };
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert((*token).to_string(), json!(id));
        // 3 = control (HF `special: true`), 4 = user-defined (an added, non-special token).
        let kind = types.get(id).copied().unwrap_or(1);
        if kind == 3 || kind == 4 {
            added.push(json!({"id": id, "content": token, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": kind == 3}));
        }
    }
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges},
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    // Parsed once here so a file the tokenizers crate refuses never reaches the checkpoint.
    text.parse::<tokenizers::Tokenizer>()
        .map_err(|e| format!("the rebuilt tokenizer.json does not load: {e}"))?;
    Ok(text)
}
