//! Tokenizers: the byte-level BPE trained on the repository's training fixture round-trips
//! arbitrary UTF-8 exactly, keeps the specials atomic, is deterministic and shortens the
//! sequences; `tokenizer.json` files laid out as Qwen2's and Llama-3's load and encode; a
//! checkpoint directory carries its tokenizer.

use std::path::Path;

use serde_json::{json, Value};
use valley_lm::tokenizer::{train_bpe, train_bpe_lines, ByteTokenizer, Tokenizer, SPECIALS};

/// The problem and response texts of the repository's training fixture (300 synthetic records).
fn corpus() -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/fixtures/tiny-train.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            [
                v["problem"].as_str().unwrap().to_owned(),
                v["response"].as_str().unwrap().to_owned(),
            ]
        })
        .collect()
}

fn trained(vocab: usize) -> Tokenizer {
    let texts = corpus();
    train_bpe(texts.iter().map(String::as_str), vocab).unwrap()
}

/// Texts the corpus never showed: scripts, emoji, whitespace runs, CRLF, code, specials glued
/// to text, a lone `<` and a cut special.
const HARD_TEXTS: [&str; 10] = [
    "",
    "naïve café — 東京 🚀🦀 Ωμέγα ✓",
    "   leading, trailing   \t\t\n\n\n    \u{a0}\u{2003} ",
    "line one\r\nline two\n\n\n\tindented\n        deeper\n",
    "def f(xs):\n    return [x*x for x in xs if x >= 0]  # ok\n",
    "<|im_start|>user\nsort [3, 1]<|im_end|>\n<|im_start|>assistant\n<think>plan</think>```python\nprint(1)\n```<|im_end|><|endoftext|>",
    "a<b <think <|im_start <th ink> </think",
    "x<think>y</think>z<|im_end|><|im_end|>",
    "\u{0}\u{1}\u{7f}\u{ffff}\u{10ffff}",
    "1234567890 -0.5e-3 0x1F",
];

#[test]
fn bpe_round_trips_arbitrary_utf8_exactly() {
    let tok = trained(512);
    for text in HARD_TEXTS {
        let ids = tok.encode(text);
        assert_eq!(tok.decode(&ids), text, "ids {ids:?}");
        assert!(ids.iter().all(|&i| (i as usize) < tok.vocab_size()));
    }
    for text in corpus().iter().take(40) {
        assert_eq!(&tok.decode(&tok.encode(text)), text);
    }
}

#[test]
fn bpe_specials_are_atomic_with_ids_0_to_4() {
    let tok = trained(512);
    for (i, s) in SPECIALS.iter().enumerate() {
        assert_eq!(tok.special(s), Some(i as u32), "{s}");
        assert_eq!(tok.encode(s), vec![i as u32], "{s} is one token");
    }
    let ids = tok.encode("x<think>y</think>z");
    let think = tok.special("<think>").unwrap();
    let end = tok.special("</think>").unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == think).count(), 1);
    assert_eq!(ids.iter().filter(|&&i| i == end).count(), 1);
    // A spelled-out but unfinished special is text, not the special.
    assert!(!tok.encode("<think").contains(&think));
}

#[test]
fn bpe_training_is_deterministic() {
    let (a, b) = (trained(400), trained(400));
    let json = |t: &Tokenizer| match t {
        Tokenizer::Hf(h) => h.to_json().unwrap(),
        Tokenizer::Byte(_) => panic!("expected a BPE"),
    };
    assert_eq!(json(&a), json(&b), "same texts, different tokenizer.json");
    // Saved bytes too, through the checkpoint path.
    let dir = tempfile::tempdir().unwrap();
    for (t, sub) in [(&a, "a"), (&b, "b")] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        t.save(&dir.path().join(sub)).unwrap();
    }
    assert_eq!(
        std::fs::read(dir.path().join("a/tokenizer.json")).unwrap(),
        std::fs::read(dir.path().join("b/tokenizer.json")).unwrap()
    );
}

#[test]
fn bpe_shortens_the_corpus_and_respects_the_vocabulary_size() {
    let texts = corpus();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut counts = Vec::new();
    for vocab in [300, 400, 1024] {
        let tok = trained(vocab);
        assert!(tok.vocab_size() <= vocab, "{} > {vocab}", tok.vocab_size());
        counts.push(texts.iter().map(|t| tok.encode(t).len()).sum::<usize>());
    }
    // Measured: 103,664 / 61,019 / 49,960 tokens; the fixture's words run out near 473 ids
    // (pairs seen once are not merged), so 1024 asks for more than it can learn.
    assert!(
        counts[0] > counts[1] && counts[1] >= counts[2],
        "{counts:?}"
    );
    let previous = counts[2];
    // The fixture is repetitive template text: a 1024-id BPE at least halves it.
    assert!(previous * 2 < bytes, "{previous} tokens for {bytes} bytes");
    assert!(
        train_bpe(["abc"].into_iter(), 100).is_err(),
        "below 261 ids"
    );
}

#[test]
fn checkpoint_directory_carries_its_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    // No tokenizer.json: the byte tokenizer for the byte vocabulary, and saving it writes
    // nothing.
    assert!(matches!(
        Tokenizer::from_dir(dir.path(), ByteTokenizer::VOCAB_SIZE).unwrap(),
        Tokenizer::Byte(_)
    ));
    // Issue 16: any other vocabulary without its tokenizer.json is never guessed as bytes.
    let err = Tokenizer::from_dir(dir.path(), 32_000)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&dir.path().join("tokenizer.json").display().to_string())
            && err.contains("32000 ids")
            && err.contains("copy the model's own tokenizer.json"),
        "{err}"
    );
    Tokenizer::default().save(dir.path()).unwrap();
    assert!(!dir.path().join("tokenizer.json").exists());

    let tok = trained(512);
    tok.save(dir.path()).unwrap();
    let back = Tokenizer::from_dir(dir.path(), tok.vocab_size()).unwrap();
    assert!(matches!(back, Tokenizer::Hf(_)));
    assert_eq!(back.vocab_size(), tok.vocab_size());
    for text in HARD_TEXTS {
        assert_eq!(back.encode(text), tok.encode(text));
    }
    let same = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!(same.encode("print(max(xs))"), tok.encode("print(max(xs))"));
}

#[test]
fn a_file_that_is_not_a_tokenizer_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, "{\"model\": 3}").unwrap();
    let err = Tokenizer::from_dir(dir.path(), 300)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    let missing = Tokenizer::from_file(&dir.path().join("nope.json")).unwrap_err();
    assert!(missing.to_string().contains("nope.json"), "{missing}");
}

/// GPT-2's byte-to-character map, as every byte-level BPE file spells its vocabulary.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut by_byte = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(&chars) {
        by_byte[*b as usize] = char::from_u32(*c).unwrap();
    }
    by_byte
}

/// A tiny vocabulary (the 256 byte characters and a few merges) in a real file's layout.
fn byte_level_vocab(merges: &[(&str, &str)]) -> (Value, Vec<String>) {
    let chars = byte_chars();
    let mut vocab = serde_json::Map::new();
    for (i, c) in chars.iter().enumerate() {
        vocab.insert(c.to_string(), json!(i));
    }
    let mut merged = Vec::new();
    for (a, b) in merges {
        let id = vocab.len();
        vocab.insert(format!("{a}{b}"), json!(id));
        merged.push(format!("{a} {b}"));
    }
    (Value::Object(vocab), merged)
}

fn added(id: u32, content: &str) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": true})
}

/// Qwen2/Qwen2.5's `tokenizer.json` layout (NFC normalizer, the Split regex then ByteLevel without
/// its own regex, ByteLevel decoder, the specials right after the model's vocabulary as at
/// 151643–151645 in the real file, merges as strings), with the vocabulary cut down to the bytes
/// and three merges.
#[test]
fn a_qwen2_layout_file_loads_and_round_trips() {
    let (vocab, merges) = byte_level_vocab(&[("Ġ", "Ġ"), ("p", "r"), ("pr", "i")]);
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let file = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(259, "<|endoftext|>"), added(260, "<|im_start|>"), added(261, "<|im_end|>")],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            byte_level.clone()]},
        "post_processor": byte_level.clone(),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), file.to_string()).unwrap();
    let tok = Tokenizer::from_dir(dir.path(), 262).unwrap();
    assert_eq!(tok.vocab_size(), 262, "one past the largest added id");
    assert_eq!(tok.special("<|im_end|>"), Some(261));
    assert_eq!(tok.special("<think>"), None, "Qwen2.5 has no <think>");
    let text = "<|im_start|>user\nprint  4 2<|im_end|>\n";
    let ids = tok.encode(text);
    assert_eq!(ids[0], 260);
    let pri = 258; // 256 bytes, then "ĠĠ", "pr", "pri"
    assert!(ids.contains(&pri), "merges applied: {ids:?}");
    assert_eq!(tok.decode(&ids), text);
    // NFC text round-trips (the normalizer rewrites only non-NFC input).
    let nfc = "café 東京 🚀\n\n  x";
    assert_eq!(tok.decode(&tok.encode(nfc)), nfc);
}

/// Llama-3's layout: merges as pairs, digits in groups of three, and a post-processor that adds
/// `<|begin_of_text|>` (128000 in the real file, right after the model's vocabulary as here),
/// which encoding for training must not apply (the chat template does).
#[test]
fn a_llama3_layout_file_loads_without_adding_bos() {
    let (vocab, merges) = byte_level_vocab(&[("1", "2"), ("12", "3")]);
    let pairs: Vec<Value> = merges
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap();
            json!([a, b])
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true});
    let file = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(258, "<|begin_of_text|>"), added(259, "<|end_of_text|>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [258], "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": true,
                  "vocab": vocab, "merges": pairs}
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llama3.json");
    std::fs::write(&path, file.to_string()).unwrap();
    let tok = Tokenizer::from_file(&path).unwrap();
    assert_eq!(tok.vocab_size(), 260);
    let ids = tok.encode("x 1234");
    assert_ne!(ids[0], 258, "no BOS from the post-processor");
    assert!(
        ids.contains(&257),
        "`123` merged (digits in threes): {ids:?}"
    );
    assert_eq!(tok.decode(&ids), "x 1234");
}

/// The phrase-level BPE (merges across spaces inside a line) round-trips as exactly as the word
/// one, keeps the specials atomic, and cuts the templated fixture shorter than the word BPE at
/// the same vocabulary (measured on the 300-record fixture: see the assertion's numbers).
#[test]
fn line_bpe_round_trips_and_cuts_deeper_than_word_bpe() {
    let texts = corpus();
    let lines = train_bpe_lines(texts.iter().map(String::as_str), 1024).unwrap();
    for text in HARD_TEXTS
        .iter()
        .copied()
        .chain(texts.iter().take(40).map(String::as_str))
    {
        let ids = lines.encode(text);
        assert_eq!(lines.decode(&ids), text, "ids {ids:?}");
    }
    for (i, s) in SPECIALS.iter().enumerate() {
        assert_eq!(lines.encode(s), vec![i as u32], "{s} is one token");
    }
    let words = trained(1024);
    let count = |t: &Tokenizer| texts.iter().map(|x| t.encode(x).len()).sum::<usize>();
    let (by_lines, by_words) = (count(&lines), count(&words));
    assert!(
        by_lines * 3 < by_words * 2,
        "line BPE {by_lines} tokens, word BPE {by_words}: expected at least a third fewer"
    );
}
