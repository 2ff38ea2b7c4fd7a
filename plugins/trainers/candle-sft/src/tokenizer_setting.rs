//! The trainer's `tokenizer` setting and which tokenizer a run uses. The tokenizer travels with
//! the weights: a resumed run, or one that starts from a checkpoint holding `tokenizer.json`,
//! uses the checkpoint's own; a checkpoint without one is refused unless its vocabulary is the
//! byte tokenizer's or the setting asks for `byte` by name (loading never guesses, issue 16). A
//! from-scratch model (`model = "small"` or a `config.json`) takes the setting: `auto` (the
//! default: the byte tokenizer for a from-scratch model), `byte` (the byte tokenizer), `bpe:N` (a byte-level BPE of N ids trained on the ChatML texts of
//! `tokenizer_corpus`, by default the job's training file), `bpe-lines:N` (the same with merges
//! across spaces inside a line: phrase tokens, about 3× shorter sequences on the generated corpus)
//! or a path to a `tokenizer.json` or a directory holding one.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
};

use valley_lm::{
    tokenizer::{train_bpe, train_bpe_lines, Tokenizer},
    ModelConfig,
};
use valley_plugin_api::PluginError;

use crate::data::{chat_turns, read_pairs};

/// What the `tokenizer` setting asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerSetting {
    /// `auto`: a checkpoint's own `tokenizer.json` (required unless its vocabulary is the byte
    /// tokenizer's), the byte tokenizer for a from-scratch model.
    Auto,
    /// `byte`: ids 0–255 are bytes, then the specials.
    Byte,
    /// `bpe:N`: train a byte-level BPE of N ids (merges inside words).
    Bpe(usize),
    /// `bpe-lines:N`: the same, with merges anywhere inside a line (phrase tokens).
    BpeLines(usize),
    /// A `tokenizer.json` file or a directory holding one.
    File(PathBuf),
}

impl FromStr for TokenizerSetting {
    type Err = PluginError;

    fn from_str(s: &str) -> Result<Self, PluginError> {
        match s {
            "auto" => return Ok(Self::Auto),
            "byte" => return Ok(Self::Byte),
            _ => {}
        }
        for (prefix, make) in [
            ("bpe:", Self::Bpe as fn(usize) -> Self),
            ("bpe-lines:", Self::BpeLines),
        ] {
            if let Some(n) = s.strip_prefix(prefix) {
                return match n.parse::<usize>() {
                    Ok(n) if n >= 261 => Ok(make(n)),
                    _ => Err(PluginError::invalid_config(format!(
                        "tokenizer `{s}`: N in {prefix}N must be a whole number of at least 261 \
                         (256 bytes and 5 specials)"
                    ))),
                };
            }
        }
        if s.is_empty() {
            return Err(PluginError::invalid_config(
                "tokenizer is empty: use auto, byte, bpe:N or a path to a tokenizer.json",
            ));
        }
        Ok(Self::File(PathBuf::from(s)))
    }
}

fn fail(e: impl std::fmt::Display) -> PluginError {
    PluginError::failed(e)
}

/// Reads a `tokenizer.json` file, or the one in a directory.
fn from_path(path: &Path) -> Result<Tokenizer, PluginError> {
    let file = if path.is_dir() {
        path.join("tokenizer.json")
    } else {
        path.to_path_buf()
    };
    if !file.is_file() {
        return Err(PluginError::invalid_config(format!(
            "tokenizer: {} does not exist",
            file.display()
        )));
    }
    Tokenizer::from_file(&file).map_err(PluginError::invalid_input)
}

/// Trains the `bpe:N` tokenizer on the ChatML texts of `corpus` (records with `problem` and
/// `response`), prompt and answer apart as [`crate::data::tokenize`] encodes them.
///
/// # Errors
/// [`PluginError`] naming the file and line of a bad record, or the training failure.
pub fn train_on_corpus(
    corpus: &Path,
    vocab_size: usize,
    lines: bool,
) -> Result<Tokenizer, PluginError> {
    let pairs = read_pairs(corpus).map_err(PluginError::invalid_input)?;
    if pairs.is_empty() {
        return Err(PluginError::invalid_input(format!(
            "{}: no records to train the tokenizer on",
            corpus.display()
        )));
    }
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|(p, r)| {
            let (prompt, answer) = chat_turns(p, r);
            [prompt, answer]
        })
        .collect();
    let texts = texts.iter().map(String::as_str);
    if lines {
        train_bpe_lines(texts, vocab_size).map_err(fail)
    } else {
        train_bpe(texts, vocab_size).map_err(fail)
    }
}

/// The tokenizer of a run: the checkpoint's own when resuming (`resume`) or starting from a
/// checkpoint directory (`model` other than `small` or a `config.json`), else the one `setting`
/// asks for, trained on `corpus` for `bpe:N`.
///
/// # Errors
/// [`PluginError::invalid_config`] for a bad setting, `bpe:N` with a pretrained model, a missing
/// file, or a checkpoint without `tokenizer.json` whose vocabulary is not the byte tokenizer's
/// (naming the file to add); the errors of reading or training a tokenizer.
pub fn resolve(
    setting: &str,
    corpus: &Path,
    model: &str,
    resume: Option<&Path>,
) -> Result<Tokenizer, PluginError> {
    let setting: TokenizerSetting = setting.parse()?;
    let own = |dir: &Path| -> Result<Tokenizer, PluginError> {
        if setting == TokenizerSetting::Byte && !dir.join("tokenizer.json").is_file() {
            // Asked for by name.
            return Ok(Tokenizer::default());
        }
        let vocab = ModelConfig::from_json_file(&dir.join("config.json"))
            .map_err(PluginError::invalid_input)?
            .vocab_size;
        Tokenizer::from_dir(dir, vocab).map_err(PluginError::invalid_input)
    };
    if let Some(dir) = resume {
        return own(dir);
    }
    if model == "small" || Path::new(model).is_file() {
        return match setting {
            TokenizerSetting::Auto | TokenizerSetting::Byte => Ok(Tokenizer::default()),
            TokenizerSetting::Bpe(n) => train_on_corpus(corpus, n, false),
            TokenizerSetting::BpeLines(n) => train_on_corpus(corpus, n, true),
            TokenizerSetting::File(path) => from_path(&path),
        };
    }
    let dir = Path::new(model);
    match setting {
        _ if dir.join("tokenizer.json").is_file() => own(dir),
        TokenizerSetting::Auto | TokenizerSetting::Byte => own(dir),
        TokenizerSetting::Bpe(_) | TokenizerSetting::BpeLines(_) => {
            Err(PluginError::invalid_config(format!(
                "tokenizer bpe:N trains a new vocabulary, which only a from-scratch model \
             (model = \"small\") can use; {model} has its own"
            )))
        }
        TokenizerSetting::File(path) => from_path(&path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_ones_say_what_to_write() {
        assert_eq!(
            "byte".parse::<TokenizerSetting>().unwrap(),
            TokenizerSetting::Byte
        );
        assert_eq!(
            "bpe:1024".parse::<TokenizerSetting>().unwrap(),
            TokenizerSetting::Bpe(1024)
        );
        assert_eq!(
            "bpe-lines:2048".parse::<TokenizerSetting>().unwrap(),
            TokenizerSetting::BpeLines(2048)
        );
        assert_eq!(
            "ckpt/tokenizer.json".parse::<TokenizerSetting>().unwrap(),
            TokenizerSetting::File("ckpt/tokenizer.json".into())
        );
        for bad in ["bpe:12", "bpe:x", "bpe:", "bpe-lines:7", ""] {
            let e = bad.parse::<TokenizerSetting>().unwrap_err().to_string();
            assert!(e.contains("tokenizer"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_tokenizer_file_is_named() {
        let e = resolve("/no/such/tokenizer.json", Path::new("x"), "small", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/tokenizer.json"), "{e}");
    }
}
