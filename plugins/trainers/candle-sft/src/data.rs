//! From the ordered training file to token batches: the chat template (ChatML, or the starting
//! checkpoint's own), the loss mask (assistant turn only, or all tokens), truncation at the maximum
//! length (counted), and batching by padding or packing. The order of the file is the curriculum
//! and is kept.

use std::path::Path;

use serde::Deserialize;
use valley_lm::{
    chat_template::{ChatTemplate, ChatTemplateError},
    tokenizer::Tokenizer,
};

/// One training example after tokenization: input ids, next-token targets and loss weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Input ids (all tokens but the last).
    pub inputs: Vec<u32>,
    /// Targets (all tokens but the first).
    pub targets: Vec<u32>,
    /// 1.0 where the target counts towards the loss.
    pub weights: Vec<f32>,
}

#[derive(Deserialize)]
struct Row {
    problem: String,
    response: String,
}

/// Reads the problem/response pairs of the ordered training file.
///
/// # Errors
/// A message naming the file and line.
pub fn read_pairs(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Row>(l)
                .map(|r| (r.problem, r.response))
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The ChatML text of one pair, as the model sees it: the prompt (user turn and the assistant's
/// header) and the answer (the response and its end of turn). Tokenizers are trained on the
/// same two strings.
pub fn chat_turns(problem: &str, response: &str) -> (String, String) {
    valley_lm::chat_template::chatml_turns(None, problem, response)
}

/// Tokenizes one pair with the ChatML template; returns the sequence and whether it was cut.
pub fn tokenize(
    tok: &Tokenizer,
    problem: &str,
    response: &str,
    max_length: usize,
    assistant_only: bool,
) -> (Sequence, bool) {
    let (prompt, answer) = chat_turns(problem, response);
    tokenize_turns(tok, &prompt, &answer, max_length, assistant_only)
}

/// Tokenizes one pair with `template` (the problem as the user turn, no system message); returns
/// the sequence and whether it was cut. With [`ChatTemplate::ChatMl`] it is [`tokenize`].
///
/// # Errors
/// The template's error (naming where it came from) when it fails to render or its prompt is
/// not a prefix of the whole conversation.
pub fn tokenize_with(
    tok: &Tokenizer,
    template: &ChatTemplate,
    problem: &str,
    response: &str,
    max_length: usize,
    assistant_only: bool,
) -> Result<(Sequence, bool), ChatTemplateError> {
    let (prompt, answer) = template.turns(None, problem, response)?;
    Ok(tokenize_turns(
        tok,
        &prompt,
        &answer,
        max_length,
        assistant_only,
    ))
}

/// Tokenizes a rendered prompt and answer: the loss covers the answer (or everything), the
/// sequence is cut at `max_length + 1` tokens.
fn tokenize_turns(
    tok: &Tokenizer,
    prompt: &str,
    answer: &str,
    max_length: usize,
    assistant_only: bool,
) -> (Sequence, bool) {
    let (prompt, answer) = (tok.encode(prompt), tok.encode(answer));
    let mut ids = prompt.clone();
    ids.extend_from_slice(&answer);
    let mut counts: Vec<f32> = vec![if assistant_only { 0.0 } else { 1.0 }; prompt.len()];
    counts.extend(std::iter::repeat_n(1.0, answer.len()));
    let truncated = ids.len() > max_length + 1;
    ids.truncate(max_length + 1);
    counts.truncate(max_length + 1);
    let seq = Sequence {
        inputs: ids[..ids.len() - 1].to_vec(),
        targets: ids[1..].to_vec(),
        weights: counts[1..].to_vec(),
    };
    (seq, truncated)
}

/// A rectangular batch `[rows, len]` in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub len: usize,
    /// Input ids.
    pub inputs: Vec<u32>,
    /// Targets.
    pub targets: Vec<u32>,
    /// Loss weights.
    pub weights: Vec<f32>,
}

impl Batch {
    /// Tokens that count towards the loss.
    pub fn weighted_tokens(&self) -> f64 {
        self.weights.iter().map(|w| f64::from(*w)).sum()
    }
}

/// Pads sequences to the longest one with `pad` (weight 0).
pub fn pad(seqs: &[Sequence], pad: u32) -> Batch {
    let len = seqs
        .iter()
        .map(|s| s.inputs.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut b = Batch {
        rows: seqs.len(),
        len,
        inputs: vec![],
        targets: vec![],
        weights: vec![],
    };
    for s in seqs {
        let fill = len - s.inputs.len();
        b.inputs.extend(
            s.inputs
                .iter()
                .copied()
                .chain(std::iter::repeat_n(pad, fill)),
        );
        b.targets.extend(
            s.targets
                .iter()
                .copied()
                .chain(std::iter::repeat_n(pad, fill)),
        );
        b.weights.extend(
            s.weights
                .iter()
                .copied()
                .chain(std::iter::repeat_n(0.0, fill)),
        );
    }
    b
}

/// Packs sequences end to end into rows of exactly `len` tokens (the last row padded). Documents
/// in one row attend to each other; the paper's torchtune recipe packs the same way.
pub fn pack(seqs: &[Sequence], len: usize, pad_id: u32) -> Batch {
    let (mut inputs, mut targets, mut weights) = (vec![], vec![], vec![]);
    for s in seqs {
        inputs.extend_from_slice(&s.inputs);
        targets.extend_from_slice(&s.targets);
        weights.extend_from_slice(&s.weights);
    }
    let rows = inputs.len().div_ceil(len).max(1);
    let fill = rows * len - inputs.len();
    inputs.extend(std::iter::repeat_n(pad_id, fill));
    targets.extend(std::iter::repeat_n(pad_id, fill));
    weights.extend(std::iter::repeat_n(0.0, fill));
    Batch {
        rows,
        len,
        inputs,
        targets,
        weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The targets that count towards the loss.
    fn weighted(seq: &Sequence) -> Vec<u32> {
        seq.targets
            .iter()
            .zip(&seq.weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(t, _)| *t)
            .collect()
    }

    #[test]
    fn assistant_only_mask_covers_the_answer_and_end_of_turn() {
        let tok = Tokenizer::default();
        let (seq, cut) = tokenize(&tok, "hi", "ok", 100, true);
        assert!(!cut);
        assert_eq!(tok.decode(&weighted(&seq)), "ok<|im_end|>\n");
        let (all, _) = tokenize(&tok, "hi", "ok", 100, false);
        assert!(all.weights.iter().all(|w| *w == 1.0));
        assert_eq!(seq.inputs.len(), seq.targets.len());
    }

    #[test]
    fn a_checkpoints_template_puts_its_end_of_turn_in_the_loss() {
        let tok = Tokenizer::default();
        let template = ChatTemplate::Jinja(
            valley_lm::chat_template::JinjaTemplate::new(
                "{% for m in messages %}<|im_start|>{{ m.role }}:{{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant:{% endif %}".into(),
                "test",
                None,
                Some("<|endoftext|>".into()),
            )
            .unwrap(),
        );
        let (seq, cut) = tokenize_with(&tok, &template, "hi", "ok", 100, true).unwrap();
        assert!(!cut);
        assert_eq!(tok.decode(&weighted(&seq)), "ok<|endoftext|>");
        assert_eq!(
            tok.decode(&seq.inputs[..seq.inputs.len() - 2]),
            "<|im_start|>user:hi<|im_start|>assistant:"
        );
        // ChatML through the template type is byte for byte the plain path.
        assert_eq!(
            tokenize_with(&tok, &ChatTemplate::ChatMl, "hi", "ok", 100, true).unwrap(),
            tokenize(&tok, "hi", "ok", 100, true)
        );
    }

    #[test]
    fn truncation_is_reported_and_padding_and_packing_keep_weights() {
        let tok = Tokenizer::default();
        let (seq, cut) = tokenize(&tok, "a long problem", "a long answer", 10, true);
        assert!(cut);
        assert_eq!(seq.inputs.len(), 10);
        let (short, _) = tokenize(&tok, "a", "b", 100, true);
        let b = pad(&[seq.clone(), short.clone()], 256);
        assert_eq!((b.rows, b.len), (2, short.inputs.len().max(10)));
        assert_eq!(
            b.weighted_tokens(),
            f64::from(seq.weights.iter().sum::<f32>() + short.weights.iter().sum::<f32>())
        );
        let p = pack(&[seq, short], 8, 256);
        assert_eq!(p.inputs.len(), p.rows * 8);
        assert_eq!(p.weighted_tokens(), b.weighted_tokens());
    }
}
