//! Chat templates: how a conversation becomes the text a model reads.
//!
//! [`ChatTemplate::ChatMl`] is valley's default and renders exactly the strings the trainer and
//! evaluator have always used (`<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n`).
//! [`ChatTemplate::Jinja`] is a checkpoint's own Hugging Face template, read from its
//! `tokenizer_config.json` (`chat_template`, a string or the list form
//! `[{"name": "default", "template": …}, …]`) or from a `chat_template.jinja` file beside it, with
//! the `bos_token`/`eos_token` it refers to. It is rendered with `minijinja` set up the way
//! `transformers`' `apply_chat_template` sets up Jinja2: `trim_blocks` and `lstrip_blocks`, loop
//! controls, `raise_exception`, a `tojson` that writes what Python's `json.dumps` writes, and the
//! Python string methods (`.strip()`, `.split()`, …) through `minijinja-contrib`'s pycompat.
//!
//! [`ChatTemplate::turns`] splits one exchange into the prompt (everything up to and including
//! the assistant's header) and the answer (the response and its end of turn): the prompt is the
//! conversation without the assistant rendered with `add_generation_prompt = true`, the answer
//! what the conversation with the assistant, rendered with `add_generation_prompt = false`, adds
//! after it. [`ChatTemplate::save`] writes the template into a checkpoint's
//! `tokenizer_config.json` (ChatML as its equivalent Jinja text) so that other tools apply it.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use minijinja::{
    value::{Kwargs, ValueKind},
    Environment, Error as JinjaError, ErrorKind, Value,
};

/// The file holding a checkpoint's tokenizer settings and chat template.
pub const CONFIG_FILE: &str = "tokenizer_config.json";

/// The separate template file newer `transformers` versions write (it wins over the config's).
pub const JINJA_FILE: &str = "chat_template.jinja";

/// ChatML's end of turn.
pub const IM_END: &str = "<|im_end|>";

/// [`ChatTemplate::ChatMl`] as a Hugging Face Jinja template: renders the same strings.
pub const CHATML_JINJA: &str = "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/// What went wrong reading, rendering or saving a chat template. Every variant names where the
/// template came from.
#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// `tokenizer_config.json` is not JSON.
    #[error("{path}: not valid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A field has the wrong shape (`chat_template`, `bos_token`, `eos_token`).
    #[error("{path}: field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The template does not parse.
    #[error("{source_name}: chat template syntax error{}: {message}", line_suffix(*line))]
    Syntax {
        /// Where the template came from.
        source_name: String,
        /// The line of the template, when known.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// The template failed while rendering (including its own `raise_exception`).
    #[error("{source_name}: rendering the chat template failed{}: {message}", line_suffix(*line))]
    Render {
        /// Where the template came from.
        source_name: String,
        /// The line of the template, when known.
        line: Option<usize>,
        /// What failed.
        message: String,
    },
    /// The prompt is not a prefix of the whole conversation, so no answer can be split off.
    #[error(
        "{source_name}: the chat template renders the prompt (add_generation_prompt = true) as \
         {prompt:?}, which is not a prefix of the conversation with the assistant's turn \
         (add_generation_prompt = false), {full:?}; the answer cannot be split off for the loss mask"
    )]
    NotPrefix {
        /// Where the template came from.
        source_name: String,
        /// The rendered prompt.
        prompt: String,
        /// The rendered conversation.
        full: String,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l} of the template"))
        .unwrap_or_default()
}

/// How conversations are rendered for a model.
#[derive(Debug, Clone, Default)]
pub enum ChatTemplate {
    /// ChatML without a default system message (valley's own format).
    #[default]
    ChatMl,
    /// A Hugging Face Jinja template.
    Jinja(JinjaTemplate),
}

/// A compiled Hugging Face chat template with the special tokens it refers to.
#[derive(Clone)]
pub struct JinjaTemplate {
    source: String,
    origin: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
    env: Arc<Environment<'static>>,
}

impl fmt::Debug for JinjaTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JinjaTemplate")
            .field("origin", &self.origin)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("source_chars", &self.source.len())
            .finish()
    }
}

const TEMPLATE_NAME: &str = "chat_template";

impl JinjaTemplate {
    /// Compiles `source`; `origin` names where it came from in errors (a file path).
    ///
    /// # Errors
    /// [`ChatTemplateError::Syntax`] with the line of the template.
    pub fn new(
        source: String,
        origin: impl Into<String>,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<Self, ChatTemplateError> {
        let origin = origin.into();
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.clone())
            .map_err(|e| ChatTemplateError::Syntax {
                source_name: origin.clone(),
                line: e.line(),
                message: describe(&e),
            })?;
        Ok(Self {
            source,
            origin,
            bos_token,
            eos_token,
            env: Arc::new(env),
        })
    }

    /// The Jinja text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn render(
        &self,
        messages: &[(&str, &str)],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|(role, content)| minijinja::context! { role => *role, content => *content })
            .collect();
        let mut ctx = vec![
            ("messages", Value::from(messages)),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            // transformers passes `tools=None` when there are none.
            ("tools", Value::from(())),
        ];
        // Unset special tokens are left out, as transformers' special-token map leaves them.
        if let Some(b) = &self.bos_token {
            ctx.push(("bos_token", Value::from(b.as_str())));
        }
        if let Some(e) = &self.eos_token {
            ctx.push(("eos_token", Value::from(e.as_str())));
        }
        let ctx: Value = ctx.into_iter().collect();
        let render_err = |e: JinjaError| ChatTemplateError::Render {
            source_name: self.origin.clone(),
            line: e.line(),
            message: describe(&e),
        };
        self.env
            .get_template(TEMPLATE_NAME)
            .map_err(render_err)?
            .render(ctx)
            .map_err(render_err)
    }
}

/// The error's own text and its chain of causes.
fn describe(e: &JinjaError) -> String {
    let mut text = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(" ({s})"));
        source = s.source();
    }
    text
}

/// transformers' `raise_exception(message)`: fails the render with the template's message.
fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

/// transformers' `tojson`: Python's `json.dumps(x, ensure_ascii=False, indent=indent)`, so
/// `", "` and `": "` separators inline, and no HTML escaping (unlike minijinja's own filter).
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, JinjaError> {
    let indent: Option<usize> = kwargs.get("indent")?;
    // Accepted and ignored: the output is always `ensure_ascii=False`-style UTF-8.
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(
    value: &Value,
    indent: Option<usize>,
    depth: usize,
    out: &mut String,
) -> Result<(), JinjaError> {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&value.to_string()),
        ValueKind::String | ValueKind::Bytes | ValueKind::Plain | ValueKind::Invalid => {
            write_json_string(&value.to_string(), out);
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(item, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = value.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json_string(&key.to_string(), out);
                out.push_str(": ");
                write_json(&value.get_item(key)?, indent, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
        _ => write_json_string(&value.to_string(), out),
    }
    Ok(())
}

/// A JSON string as Python writes it with `ensure_ascii=False`.
fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn io_err(path: &Path, e: impl fmt::Display) -> ChatTemplateError {
    ChatTemplateError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn field_err(path: &Path, field: &str, message: impl Into<String>) -> ChatTemplateError {
    ChatTemplateError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

/// A special token in `tokenizer_config.json`: a string, a `{"content": …}` object, or null.
fn special_token(
    config: &serde_json::Value,
    field: &str,
    path: &Path,
) -> Result<Option<String>, ChatTemplateError> {
    match config.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Object(o)) => match o.get("content") {
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(field_err(
                path,
                field,
                "an object without a string `content`",
            )),
        },
        Some(other) => Err(field_err(
            path,
            field,
            format!("expected a string or an object with `content`, found {other}"),
        )),
    }
}

/// `chat_template` in `tokenizer_config.json`: a string, or a list of `{name, template}` from
/// which the one named `default` is taken.
fn template_field(
    config: &serde_json::Value,
    path: &Path,
) -> Result<Option<String>, ChatTemplateError> {
    const FIELD: &str = "chat_template";
    match config.get(FIELD) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Array(list)) => {
            let mut names = vec![];
            for (i, entry) in list.iter().enumerate() {
                let name = entry.get("name").and_then(|n| n.as_str());
                let template = entry.get("template").and_then(|t| t.as_str());
                match (name, template) {
                    (Some("default"), Some(t)) => return Ok(Some(t.to_string())),
                    (Some(n), Some(_)) => names.push(n.to_string()),
                    _ => {
                        return Err(field_err(
                            path,
                            FIELD,
                            format!("entry {i} needs a string `name` and a string `template`"),
                        ))
                    }
                }
            }
            Err(field_err(
                path,
                FIELD,
                format!(
                    "the list has no template named `default` (it has: {})",
                    names.join(", ")
                ),
            ))
        }
        Some(other) => Err(field_err(
            path,
            FIELD,
            format!(
                "expected a string or a list of {{\"name\", \"template\"}}, found {}",
                kind_of(other)
            ),
        )),
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn read_config(path: &Path) -> Result<Option<serde_json::Value>, ChatTemplateError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ChatTemplateError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if !value.is_object() {
        return Err(ChatTemplateError::Json {
            path: path.to_path_buf(),
            message: format!("expected an object, found {}", kind_of(&value)),
        });
    }
    Ok(Some(value))
}

impl ChatTemplate {
    /// The chat template of a checkpoint directory: `chat_template.jinja` when present, else
    /// `chat_template` in `tokenizer_config.json`, else ChatML.
    ///
    /// # Errors
    /// A [`ChatTemplateError`] naming the file: unreadable, not JSON, a field of the wrong
    /// shape, or a template that does not parse.
    pub fn from_dir(dir: &Path) -> Result<Self, ChatTemplateError> {
        let config_path = dir.join(CONFIG_FILE);
        let config = read_config(&config_path)?;
        let (bos, eos) = match &config {
            Some(c) => (
                special_token(c, "bos_token", &config_path)?,
                special_token(c, "eos_token", &config_path)?,
            ),
            None => (None, None),
        };
        let jinja_path = dir.join(JINJA_FILE);
        if jinja_path.is_file() {
            let source =
                std::fs::read_to_string(&jinja_path).map_err(|e| io_err(&jinja_path, e))?;
            let t = JinjaTemplate::new(source, jinja_path.display().to_string(), bos, eos)?;
            return Ok(Self::Jinja(t));
        }
        let Some(config) = config else {
            return Ok(Self::ChatMl);
        };
        match template_field(&config, &config_path)? {
            None => Ok(Self::ChatMl),
            Some(source) => JinjaTemplate::new(
                source,
                format!("{} (chat_template)", config_path.display()),
                bos,
                eos,
            )
            .map(Self::Jinja),
        }
    }

    /// Where the template comes from, for logs and errors.
    pub fn origin(&self) -> &str {
        match self {
            Self::ChatMl => "built-in ChatML",
            Self::Jinja(t) => t.origin(),
        }
    }

    /// The template's end-of-sequence token (ChatML: `<|im_end|>`), a stop token for generation.
    pub fn eos_token(&self) -> Option<&str> {
        match self {
            Self::ChatMl => Some(IM_END),
            Self::Jinja(t) => t.eos_token.as_deref(),
        }
    }

    /// The prompt of one user turn (after an optional system message), ending with the
    /// assistant's header where generation starts.
    ///
    /// # Errors
    /// [`ChatTemplateError::Render`] when a Jinja template fails (ChatML never does).
    pub fn prompt(&self, system: Option<&str>, user: &str) -> Result<String, ChatTemplateError> {
        match self {
            Self::ChatMl => Ok(chatml_prompt(system, user)),
            Self::Jinja(t) => t.render(&messages(system, user, None), true),
        }
    }

    /// One exchange as (prompt, answer): the prompt as [`Self::prompt`] renders it, the answer
    /// the response with its end of turn, so that prompt + answer is the whole conversation.
    ///
    /// # Errors
    /// [`ChatTemplateError::Render`] when a Jinja template fails, and
    /// [`ChatTemplateError::NotPrefix`] when its prompt is not a prefix of the conversation.
    pub fn turns(
        &self,
        system: Option<&str>,
        user: &str,
        assistant: &str,
    ) -> Result<(String, String), ChatTemplateError> {
        match self {
            Self::ChatMl => Ok(chatml_turns(system, user, assistant)),
            Self::Jinja(t) => {
                let prompt = t.render(&messages(system, user, None), true)?;
                let full = t.render(&messages(system, user, Some(assistant)), false)?;
                match full.strip_prefix(&prompt) {
                    Some(answer) => Ok((prompt.clone(), answer.to_string())),
                    None => Err(ChatTemplateError::NotPrefix {
                        source_name: t.origin.clone(),
                        prompt,
                        full,
                    }),
                }
            }
        }
    }

    /// The Jinja text that renders this template (ChatML: [`CHATML_JINJA`]).
    pub fn jinja_source(&self) -> &str {
        match self {
            Self::ChatMl => CHATML_JINJA,
            Self::Jinja(t) => t.source(),
        }
    }

    /// Writes the template into `dir/tokenizer_config.json`, keeping the file's other fields:
    /// `chat_template`, and `bos_token`/`eos_token` when the template has them (ChatML:
    /// `eos_token = "<|im_end|>"`). A `chat_template.jinja` already in `dir` is rewritten too,
    /// since `transformers` prefers it.
    ///
    /// # Errors
    /// [`ChatTemplateError`] naming the file when it cannot be read, parsed or written.
    pub fn save(&self, dir: &Path) -> Result<(), ChatTemplateError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join(CONFIG_FILE);
        let mut config = read_config(&path)?.unwrap_or_else(|| serde_json::json!({}));
        let map = config
            .as_object_mut()
            .ok_or_else(|| io_err(&path, "not a JSON object"))?;
        map.insert(
            "chat_template".into(),
            serde_json::Value::String(self.jinja_source().to_string()),
        );
        let (bos, eos) = match self {
            Self::ChatMl => (None, Some(IM_END.to_string())),
            Self::Jinja(t) => (t.bos_token.clone(), t.eos_token.clone()),
        };
        for (field, token) in [("bos_token", bos), ("eos_token", eos)] {
            if let Some(token) = token {
                map.insert(field.into(), serde_json::Value::String(token));
            }
        }
        let text = serde_json::to_string_pretty(&config).map_err(|e| io_err(&path, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| io_err(&path, e))?;
        let jinja = dir.join(JINJA_FILE);
        if jinja.is_file() {
            std::fs::write(&jinja, self.jinja_source()).map_err(|e| io_err(&jinja, e))?;
        }
        Ok(())
    }
}

/// One exchange in ChatML as (prompt, answer), the strings valley has always trained on: the
/// prompt ends with the assistant's header, the answer is the response and its end of turn.
pub fn chatml_turns(system: Option<&str>, user: &str, assistant: &str) -> (String, String) {
    (
        chatml_prompt(system, user),
        format!("{assistant}{IM_END}\n"),
    )
}

fn chatml_prompt(system: Option<&str>, user: &str) -> String {
    let system = system
        .map(|s| format!("<|im_start|>system\n{s}{IM_END}\n"))
        .unwrap_or_default();
    format!("{system}<|im_start|>user\n{user}{IM_END}\n<|im_start|>assistant\n")
}

fn messages<'a>(
    system: Option<&'a str>,
    user: &'a str,
    assistant: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut m = vec![];
    if let Some(s) = system {
        m.push(("system", s));
    }
    m.push(("user", user));
    if let Some(a) = assistant {
        m.push(("assistant", a));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jinja(source: &str) -> ChatTemplate {
        ChatTemplate::Jinja(
            JinjaTemplate::new(source.into(), "test", None, Some("</s>".into())).unwrap(),
        )
    }

    #[test]
    fn chatml_is_todays_strings() {
        let t = ChatTemplate::ChatMl;
        assert_eq!(
            t.turns(None, "hi", "ok").unwrap(),
            (
                "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n".to_string(),
                "ok<|im_end|>\n".to_string()
            )
        );
        assert_eq!(
            t.prompt(Some("sys"), "hi").unwrap(),
            "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn chatml_jinja_renders_what_chatml_renders() {
        let built_in = ChatTemplate::ChatMl;
        let as_jinja = jinja(CHATML_JINJA);
        for system in [None, Some("You are terse.")] {
            let user = "Sort [3, 1].\n\n```python\nx = 1\n```\n";
            let answer = "<think>plan</think>\n```python\nprint(1)\n```";
            assert_eq!(
                as_jinja.turns(system, user, answer).unwrap(),
                built_in.turns(system, user, answer).unwrap()
            );
            assert_eq!(
                as_jinja.prompt(system, user).unwrap(),
                built_in.prompt(system, user).unwrap()
            );
        }
    }

    #[test]
    fn tojson_writes_what_python_json_dumps_writes() {
        // Expected strings from Python 3: json.dumps({"a": [1, "x<y"], "b": None},
        // ensure_ascii=False) and the same with indent=2.
        let t = jinja(
            "{{ {'a': [1, 'x<y'], 'b': none} | tojson }}|{{ {'a': [1, 'é']} | tojson(indent=2) }}",
        );
        assert_eq!(
            t.prompt(None, "").unwrap(),
            "{\"a\": [1, \"x<y\"], \"b\": null}|{\n  \"a\": [\n    1,\n    \"é\"\n  ]\n}"
        );
    }

    #[test]
    fn raise_exception_and_syntax_errors_name_the_source_and_line() {
        let t = jinja("{{ raise_exception('only user turns') }}");
        let e = t.prompt(None, "x").unwrap_err().to_string();
        assert!(
            e.starts_with("test: rendering the chat template failed"),
            "{e}"
        );
        assert!(e.contains("only user turns"), "{e}");
        let e = JinjaTemplate::new("ok\n{% if %}".into(), "cfg.json", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cfg.json: chat template syntax error at line 2"),
            "{e}"
        );
    }

    #[test]
    fn a_template_whose_prompt_is_not_a_prefix_is_refused() {
        // The generation header differs from the assistant's header in the full rendering.
        let t = jinja("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[gen]{% endif %}");
        let e = t.turns(None, "q", "a").unwrap_err();
        assert!(matches!(e, ChatTemplateError::NotPrefix { .. }), "{e}");
        assert!(e.to_string().starts_with("test: "), "{e}");
    }

    #[test]
    fn python_string_methods_and_loop_controls_work() {
        let t = jinja("{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content.strip().upper() }}{% endfor %}");
        assert_eq!(t.prompt(Some("s"), "  hi ").unwrap(), "HI");
    }
}
