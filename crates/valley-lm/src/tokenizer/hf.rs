//! Hugging Face `tokenizer.json` tokenizers through the `tokenizers` crate: loading any such file
//! (Qwen2's or Llama-3's byte-level BPE, or one trained here), saving it, and training a small
//! byte-level BPE on a corpus ([`train_byte_level_bpe`]).
//!
//! A BPE trained here has no normalizer, the `ByteLevel` pre-tokenizer (GPT-2's split, no prefix
//! space) and the `ByteLevel` decoder, and all 256 bytes in its alphabet, so every UTF-8 string
//! encodes and decodes back to itself exactly. The chat and reasoning specials ([`SPECIALS`]) are
//! atomic added tokens with ids 0–4, and training never merges across them.

use std::{fmt, path::Path};

use tokenizers::{
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::{
        bpe::{BpeTrainerBuilder, BPE},
        TrainerWrapper,
    },
    pre_tokenizers::{
        byte_level::ByteLevel,
        digits::Digits,
        sequence::Sequence,
        split::{Split, SplitPattern},
        PreTokenizerWrapper,
    },
    AddedToken, SplitDelimiterBehavior,
};

use super::SPECIALS;
use crate::{Error, Result};

/// A tokenizer read from (and saved as) a Hugging Face `tokenizer.json`.
#[derive(Clone)]
pub struct HfTokenizer {
    inner: Box<tokenizers::Tokenizer>,
    /// One past the largest id, added tokens included.
    vocab_size: usize,
}

impl fmt::Debug for HfTokenizer {
    // The derived form would print the whole vocabulary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.vocab_size)
            .finish_non_exhaustive()
    }
}

impl HfTokenizer {
    fn new(inner: tokenizers::Tokenizer) -> Self {
        let vocab_size = inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1);
        Self {
            inner: Box::new(inner),
            vocab_size,
        }
    }

    /// Reads a `tokenizer.json` file.
    ///
    /// # Errors
    /// [`Error::File`] naming the file when it cannot be read or is not a tokenizer.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let inner: tokenizers::Tokenizer = text.parse().map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: format!("not a Hugging Face tokenizer.json: {e}"),
        })?;
        Ok(Self::new(inner))
    }

    /// The file's text (pretty JSON); the same tokenizer always gives the same bytes.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when serialization fails.
    pub fn to_json(&self) -> Result<String> {
        self.inner
            .to_string(true)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Writes `tokenizer.json` at `path`.
    ///
    /// # Errors
    /// [`Error::File`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// One past the largest id, added tokens included (the rows an embedding needs).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Encodes text without the file's post-processing (no BOS/EOS template); added tokens
    /// spelled out in the text become their atomic ids.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the file's pipeline fails on this text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Decodes ids, specials included; ids outside the vocabulary are skipped.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the file's decoder fails.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The id of a token (an added special such as `<|im_end|>`, or any vocabulary entry).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// Trains a byte-level BPE of (at most) `vocab_size` ids, the specials included, on `texts`.
/// The same texts give a byte-identical `tokenizer.json`. Pairs seen fewer than twice are not
/// merged, so a small corpus may give a smaller vocabulary.
///
/// # Errors
/// [`Error::Tokenizer`] when `vocab_size` cannot hold the 256 bytes and the specials, or when
/// training fails.
pub fn train_byte_level_bpe<'a>(
    texts: impl Iterator<Item = &'a str>,
    vocab_size: usize,
) -> Result<HfTokenizer> {
    train_bpe_split(texts, vocab_size, BpeSplit::Words)
}

/// Where a trained BPE may merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BpeSplit {
    /// Inside GPT-2's words only (letters, digits, punctuation runs): the usual tokenizer.
    Words,
    /// Anywhere inside a line, across spaces, but never into a number (each digit is its own
    /// token): a phrase-level vocabulary. On a templated corpus (the generated one) it cuts
    /// sequences several times shorter than [`BpeSplit::Words`] at the same vocabulary, which is
    /// what makes the CPU-scale student affordable.
    Lines,
}

/// [`train_byte_level_bpe`] with a choice of where merges may happen.
///
/// # Errors
/// [`Error::Tokenizer`] for a vocabulary below 261 or a training failure.
pub fn train_bpe_split<'a>(
    texts: impl Iterator<Item = &'a str>,
    vocab_size: usize,
    split: BpeSplit,
) -> Result<HfTokenizer> {
    let floor = 256 + SPECIALS.len();
    if vocab_size < floor {
        return Err(Error::Tokenizer(format!(
            "a byte-level BPE needs a vocabulary of at least {floor} (256 bytes and {} specials), got {vocab_size}",
            SPECIALS.len()
        )));
    }
    let specials: Vec<AddedToken> = SPECIALS
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials.clone())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tok = tokenizers::Tokenizer::new(BPE::default());
    // No prefix space: a prefix would be added on encode and break the exact round trip.
    match split {
        BpeSplit::Words => {
            tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
        BpeSplit::Lines => {
            let lines = Split::new(
                SplitPattern::String("\n".into()),
                SplitDelimiterBehavior::MergedWithPrevious,
                false,
            )
            .map_err(|e| Error::Tokenizer(format!("the line split: {e}")))?;
            // Digits stay single tokens: a phrase token that swallowed a number ("than 8.")
            // would hide the number from a student that must copy it into code.
            tok.with_pre_tokenizer(Some(Sequence::new(vec![
                PreTokenizerWrapper::Split(lines),
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
            ])));
        }
    }
    tok.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    // Registered before training so that the trainer's pre-processing cuts them out of the
    // texts instead of learning merges such as `<th` + `ink`.
    tok.add_special_tokens(specials.clone())
        .map_err(|e| Error::Tokenizer(format!("adding the specials: {e}")))?;
    // `train` wants a `Send` iterator; the texts stay borrowed.
    let texts: Vec<&str> = texts.collect();
    tok.train(&mut TrainerWrapper::BpeTrainer(trainer), texts.into_iter())
        .map_err(|e| Error::Tokenizer(format!("training the BPE: {e}")))?;
    // Re-read from its own JSON: the loaded form is what every later run sees, so training and
    // loading cannot differ.
    let json = tok
        .to_string(true)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    let inner: tokenizers::Tokenizer = json
        .parse()
        .map_err(|e| Error::Tokenizer(format!("re-reading the trained BPE: {e}")))?;
    Ok(HfTokenizer::new(inner))
}
