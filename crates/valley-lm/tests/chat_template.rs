//! Real checkpoints' chat templates (Qwen2.5-Instruct, Llama-3.1-Instruct; sources in
//! `tests/fixtures/chat_templates/README.md`) render a user/assistant exchange into the strings
//! `transformers` renders, the answer carries the end of turn, a saved template reads back the
//! same, and broken files give errors naming the file.

use std::path::{Path, PathBuf};

use valley_lm::chat_template::{ChatTemplate, ChatTemplateError, CHATML_JINJA};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chat_templates")
        .join(name)
}

const USER: &str = "Add two numbers.";
const ANSWER: &str = "print(1 + 2)";

/// Expected strings: rendered with Python Jinja2 configured as transformers configures it (see
/// the fixtures' README); by the template text, Qwen2.5 adds its default system prompt when no
/// system message is given, and puts `<|im_end|>\n` after the assistant's turn.
#[test]
fn qwen2_5_renders_its_default_system_prompt_and_im_end() {
    let t = ChatTemplate::from_dir(&fixture("qwen2.5-instruct")).unwrap();
    assert!(matches!(t, ChatTemplate::Jinja(_)));
    let (prompt, answer) = t.turns(None, USER, ANSWER).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(answer, "print(1 + 2)<|im_end|>\n");
    assert_eq!(
        t.prompt(Some("You are terse."), USER).unwrap(),
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(t.eos_token(), Some("<|im_end|>"));
}

/// Expected strings as above; by the template text, Llama 3.1 starts with `bos_token`, always
/// writes a system header with "Cutting Knowledge Date: December 2023" and "Today Date: 26 Jul
/// 2024" (its default `date_string`), and ends the assistant's turn with `<|eot_id|>` (no newline).
#[test]
fn llama_3_1_renders_its_knowledge_date_header_and_eot_id() {
    let t = ChatTemplate::from_dir(&fixture("llama-3.1-instruct")).unwrap();
    let (prompt, answer) = t.turns(None, USER, ANSWER).unwrap();
    assert_eq!(
        prompt,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAdd two numbers.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(answer, "print(1 + 2)<|eot_id|>");
    let (with_system, _) = t.turns(Some("You are terse."), USER, ANSWER).unwrap();
    assert_eq!(
        with_system,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAdd two numbers.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(t.eos_token(), Some("<|eot_id|>"));
}

#[test]
fn a_directory_without_a_template_is_chatml() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ChatTemplate::from_dir(dir.path()).unwrap(),
        ChatTemplate::ChatMl
    ));
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"eos_token": "</s>"}"#,
    )
    .unwrap();
    assert!(matches!(
        ChatTemplate::from_dir(dir.path()).unwrap(),
        ChatTemplate::ChatMl
    ));
}

#[test]
fn the_list_form_takes_default_and_token_objects_give_their_content() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
        "eos_token": {"content": "</s>"},
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS"},
            {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"}
        ]
    });
    std::fs::write(dir.path().join("tokenizer_config.json"), config.to_string()).unwrap();
    let t = ChatTemplate::from_dir(dir.path()).unwrap();
    assert_eq!(
        t.turns(None, "q", "a").unwrap(),
        ("<s>[user]q[assistant]".to_string(), "a</s>".to_string())
    );
}

#[test]
fn chat_template_jinja_wins_over_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("qwen2.5-instruct/tokenizer_config.json"),
        dir.path().join("tokenizer_config.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("chat_template.jinja"), CHATML_JINJA).unwrap();
    let t = ChatTemplate::from_dir(dir.path()).unwrap();
    assert!(
        t.origin().ends_with("chat_template.jinja"),
        "{}",
        t.origin()
    );
    assert_eq!(
        t.prompt(None, "q").unwrap(),
        ChatTemplate::ChatMl.prompt(None, "q").unwrap()
    );
}

#[test]
fn saving_merges_into_the_config_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    // Another tool's fields survive.
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"model_max_length": 32768, "eos_token": "<|endoftext|>"}"#,
    )
    .unwrap();
    let llama = ChatTemplate::from_dir(&fixture("llama-3.1-instruct")).unwrap();
    llama.save(dir.path()).unwrap();
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["model_max_length"], 32768);
    assert_eq!(saved["eos_token"], "<|eot_id|>");
    assert_eq!(saved["bos_token"], "<|begin_of_text|>");
    assert_eq!(saved["chat_template"].as_str(), Some(llama.jinja_source()));
    let back = ChatTemplate::from_dir(dir.path()).unwrap();
    assert_eq!(
        back.turns(Some("s"), USER, ANSWER).unwrap(),
        llama.turns(Some("s"), USER, ANSWER).unwrap()
    );

    // ChatML is saved as its Jinja equivalent, which renders the same strings.
    let chatml_dir = tempfile::tempdir().unwrap();
    ChatTemplate::ChatMl.save(chatml_dir.path()).unwrap();
    let back = ChatTemplate::from_dir(chatml_dir.path()).unwrap();
    assert!(matches!(back, ChatTemplate::Jinja(_)));
    assert_eq!(
        back.turns(None, USER, ANSWER).unwrap(),
        ChatTemplate::ChatMl.turns(None, USER, ANSWER).unwrap()
    );
    assert_eq!(back.eos_token(), Some("<|im_end|>"));
}

#[test]
fn broken_files_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer_config.json");
    let name = path.display().to_string();

    std::fs::write(&path, "{\"chat_template\": ").unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err();
    assert!(matches!(e, ChatTemplateError::Json { .. }), "{e}");
    assert!(e.to_string().starts_with(&name), "{e}");

    std::fs::write(
        &path,
        r#"{"chat_template": "line one\n{% for m in messages %}{{ m.content }}"}"#,
    )
    .unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err();
    assert!(matches!(e, ChatTemplateError::Syntax { .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with(&name), "{text}");
    assert!(text.contains("syntax error at line 2"), "{text}");

    std::fs::write(&path, r#"{"chat_template": 7}"#).unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.starts_with(&name) && e.contains("`chat_template`"), "{e}");

    std::fs::write(
        &path,
        r#"{"chat_template": [{"name": "tool_use", "template": "x"}]}"#,
    )
    .unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("no template named `default`") && e.contains("tool_use"),
        "{e}"
    );

    std::fs::write(&path, r#"{"eos_token": 3, "chat_template": "x"}"#).unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.starts_with(&name) && e.contains("`eos_token`"), "{e}");

    // A template that raises while rendering names the file too.
    std::fs::write(
        &path,
        r#"{"chat_template": "{% if messages[0].role == 'user' %}{{ raise_exception('System role required') }}{% endif %}"}"#,
    )
    .unwrap();
    let t = ChatTemplate::from_dir(dir.path()).unwrap();
    let e = t.prompt(None, "q").unwrap_err().to_string();
    assert!(
        e.starts_with(&name) && e.contains("System role required"),
        "{e}"
    );
}
