//! Tokenizers: [`Tokenizer`] is what trainers and evaluators hold; it is read from a checkpoint
//! directory ([`Tokenizer::from_dir`]) and saved beside the weights ([`Tokenizer::save`]) so that
//! a checkpoint always carries the tokenizer it was trained with.
//!
//! [`ByteTokenizer`]: ids 0–255 are bytes, then the chat and reasoning specials as atomic tokens.
//! Every string round-trips exactly. A checkpoint without `tokenizer.json` uses it.
//!
//! [`HfTokenizer`] (module [`hf`]): any Hugging Face `tokenizer.json` — a Qwen2 or Llama-3
//! checkpoint's, or a byte-level BPE trained on the corpus with [`train_bpe`], which shortens the
//! synthetic training sequences several times over the byte tokenizer.

use std::path::Path;

use crate::Result;

pub mod hf;

pub use hf::HfTokenizer;

/// The tokenizer of a model: encode, decode, special ids.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// Bytes plus atomic specials ([`ByteTokenizer`]).
    Byte(ByteTokenizer),
    /// A Hugging Face `tokenizer.json` ([`HfTokenizer`]).
    Hf(HfTokenizer),
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::Byte(ByteTokenizer)
    }
}

/// Trains a byte-level BPE of at most `vocab_size` ids (the specials included) on `texts`:
/// every byte stays representable, so encode/decode round-trip exactly, and the same texts give a
/// byte-identical `tokenizer.json`.
///
/// # Errors
/// [`crate::Error::Tokenizer`] when `vocab_size` is below 261 (bytes and specials) or training fails.
pub fn train_bpe<'a>(texts: impl Iterator<Item = &'a str>, vocab_size: usize) -> Result<Tokenizer> {
    hf::train_byte_level_bpe(texts, vocab_size).map(Tokenizer::Hf)
}

/// [`train_bpe`] with merges allowed anywhere inside a line (see [`hf::BpeSplit::Lines`]).
///
/// # Errors
/// As [`train_bpe`].
pub fn train_bpe_lines<'a>(
    texts: impl Iterator<Item = &'a str>,
    vocab_size: usize,
) -> Result<Tokenizer> {
    hf::train_bpe_split(texts, vocab_size, hf::BpeSplit::Lines).map(Tokenizer::Hf)
}

impl Tokenizer {
    /// The tokenizer saved in a checkpoint directory whose model has `model_vocab` ids: its
    /// `tokenizer.json`; without one, the byte tokenizer only when the model's vocabulary is the
    /// byte tokenizer's ([`ByteTokenizer::VOCAB_SIZE`]; valley's byte checkpoints carry no
    /// `tokenizer.json`). Anything else is never guessed: a Qwen or Llama directory without its
    /// `tokenizer.json` would otherwise train and evaluate on byte ids.
    ///
    /// # Errors
    /// [`crate::Error::File`] when `tokenizer.json` exists but cannot be read, or is missing for a
    /// vocabulary that is not the byte tokenizer's (saying what to add).
    pub fn from_dir(dir: &Path, model_vocab: usize) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if path.exists() {
            return Self::from_file(&path);
        }
        if model_vocab == ByteTokenizer::VOCAB_SIZE {
            return Ok(Self::default());
        }
        Err(crate::Error::File {
            path,
            message: format!(
                "missing: the model's vocabulary has {model_vocab} ids (config.json's vocab_size), \
                 not the byte tokenizer's {}, so its tokenizer cannot be guessed; copy the \
                 model's own tokenizer.json into {} (or set tokenizer = \"byte\" to use bytes on \
                 purpose)",
                ByteTokenizer::VOCAB_SIZE,
                dir.display()
            ),
        })
    }

    /// A `tokenizer.json` file.
    ///
    /// # Errors
    /// [`crate::Error::File`] naming the file when it cannot be read or is not a tokenizer.
    pub fn from_file(path: &Path) -> Result<Self> {
        HfTokenizer::from_file(path).map(Self::Hf)
    }

    /// Saves the tokenizer into a checkpoint directory as `tokenizer.json` (nothing to write
    /// for the byte tokenizer, whose absence of `tokenizer.json` is its mark).
    ///
    /// # Errors
    /// [`crate::Error::File`] when the file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        match self {
            Self::Byte(_) => Ok(()),
            Self::Hf(t) => t.save(&dir.join("tokenizer.json")),
        }
    }

    /// Vocabulary size, specials included (one past the largest id).
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Byte(_) => ByteTokenizer::VOCAB_SIZE,
            Self::Hf(t) => t.vocab_size(),
        }
    }

    /// Encodes text; specials spelled out in the text become their atomic ids.
    ///
    /// # Panics
    /// When a loaded `tokenizer.json`'s pipeline fails on the text (use [`Self::try_encode`] to
    /// get the error instead); the byte tokenizer and byte-level BPEs never fail.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.try_encode(text) {
            Ok(ids) => ids,
            Err(e) => panic!("{e}"),
        }
    }

    /// Encodes text, returning the error of a failing `tokenizer.json` pipeline.
    ///
    /// # Errors
    /// [`crate::Error::Tokenizer`] from the `tokenizers` crate.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Self::Byte(t) => Ok(t.encode(text)),
            Self::Hf(t) => t.encode(text),
        }
    }

    /// Decodes ids to text (specials spelled out); ids outside the vocabulary are skipped and
    /// a cut multi-byte character is replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Self::Byte(t) => t.decode(ids),
            // The byte-level decoder cannot fail; should another file's decoder fail, the text
            // is empty rather than a panic in the middle of generation.
            Self::Hf(t) => t.decode(ids).unwrap_or_default(),
        }
    }

    /// The id of a special token (`<|im_end|>`, `<think>`, …).
    pub fn special(&self, name: &str) -> Option<u32> {
        match self {
            Self::Byte(_) => ByteTokenizer::special(name),
            Self::Hf(t) => t.token_id(name),
        }
    }
}

/// Special tokens, in id order after the 256 bytes.
pub const SPECIALS: [&str; 5] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<think>",
    "</think>",
];

/// Byte-level tokenizer with atomic specials.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// Vocabulary size: 256 bytes plus the specials.
    pub const VOCAB_SIZE: usize = 256 + SPECIALS.len();

    /// The id of a special token.
    pub fn special(name: &str) -> Option<u32> {
        SPECIALS
            .iter()
            .position(|s| *s == name)
            .map(|i| 256 + i as u32)
    }

    /// Encodes text; specials spelled out in the text become their atomic ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len());
        let bytes = text.as_bytes();
        let mut i = 0;
        'outer: while i < bytes.len() {
            if bytes[i] == b'<' {
                for (k, s) in SPECIALS.iter().enumerate() {
                    if bytes[i..].starts_with(s.as_bytes()) {
                        ids.push(256 + k as u32);
                        i += s.len();
                        continue 'outer;
                    }
                }
            }
            ids.push(u32::from(bytes[i]));
            i += 1;
        }
        ids
    }

    /// Decodes ids; invalid UTF-8 (a cut multi-byte character) is replaced, ids past the
    /// vocabulary are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len());
        for &id in ids {
            match id {
                0..=255 => bytes.push(id as u8),
                _ => {
                    if let Some(s) = SPECIALS.get(id as usize - 256) {
                        bytes.extend_from_slice(s.as_bytes());
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_specials_atomic() {
        let t = ByteTokenizer;
        let text = "<|im_start|>user\nsort [3, 1] — ok<|im_end|>\n<think>plan</think>```python\nprint(1)\n```<|endoftext|>";
        let ids = t.encode(text);
        assert_eq!(t.decode(&ids), text);
        assert_eq!(ids[0], ByteTokenizer::special("<|im_start|>").unwrap());
        assert_eq!(ids.iter().filter(|&&i| i >= 256).count(), 5);
        // A lone '<' stays a byte.
        assert_eq!(t.encode("a<b"), vec![97, 60, 98]);
        assert_eq!(ByteTokenizer::VOCAB_SIZE, 261);
    }
}
