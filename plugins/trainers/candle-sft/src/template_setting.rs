//! The trainer's `chat_template` setting and which template a run uses: `auto` (the default) is
//! the starting checkpoint's own Hugging Face template when it has one (in its
//! `tokenizer_config.json` or `chat_template.jinja`), else ChatML; `chatml` is ChatML always. A
//! from-scratch model (`model = "small"`, or a `config.json` file) has no template of its own and
//! uses ChatML; a resumed run uses the template saved in its checkpoint, the one it started with.

use std::{path::Path, str::FromStr};

use valley_lm::chat_template::ChatTemplate;
use valley_plugin_api::PluginError;

/// What the `chat_template` setting asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSetting {
    /// The starting checkpoint's own template, else ChatML.
    Auto,
    /// ChatML.
    ChatMl,
}

impl FromStr for TemplateSetting {
    type Err = PluginError;

    fn from_str(s: &str) -> Result<Self, PluginError> {
        match s {
            "auto" => Ok(Self::Auto),
            "chatml" => Ok(Self::ChatMl),
            other => Err(PluginError::invalid_config(format!(
                "chat_template `{other}`: use \"auto\" (the starting checkpoint's own template, \
                 else ChatML) or \"chatml\""
            ))),
        }
    }
}

/// The chat template of a run (see the module documentation).
///
/// # Errors
/// [`PluginError::InvalidConfig`] for an unknown setting; [`PluginError::InvalidInput`] naming
/// the file when a checkpoint's template cannot be read or does not parse.
pub fn resolve(
    setting: &str,
    model: &str,
    resume: Option<&Path>,
) -> Result<ChatTemplate, PluginError> {
    let setting: TemplateSetting = setting.parse()?;
    let read = |dir: &Path| ChatTemplate::from_dir(dir).map_err(PluginError::invalid_input);
    match (resume, setting) {
        (Some(dir), _) => read(dir),
        (None, TemplateSetting::ChatMl) => Ok(ChatTemplate::ChatMl),
        // A from-scratch model: `small`, or a `config.json` giving its shape.
        (None, TemplateSetting::Auto) if model == "small" || Path::new(model).is_file() => {
            Ok(ChatTemplate::ChatMl)
        }
        (None, TemplateSetting::Auto) => read(Path::new(model)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_ones_name_the_field() {
        assert_eq!(
            "auto".parse::<TemplateSetting>().unwrap(),
            TemplateSetting::Auto
        );
        assert_eq!(
            "chatml".parse::<TemplateSetting>().unwrap(),
            TemplateSetting::ChatMl
        );
        for bad in ["ChatML", "qwen", ""] {
            let e = bad.parse::<TemplateSetting>().unwrap_err().to_string();
            assert!(e.contains("chat_template"), "{bad}: {e}");
        }
    }

    #[test]
    fn auto_takes_the_checkpoints_template_and_chatml_ignores_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"}"#,
        )
        .unwrap();
        let model = dir.path().to_str().unwrap();
        let auto = resolve("auto", model, None).unwrap();
        assert_eq!(auto.prompt(None, "q").unwrap(), "<user>q<assistant>");
        let chatml = resolve("chatml", model, None).unwrap();
        assert!(matches!(chatml, ChatTemplate::ChatMl));
        assert!(matches!(
            resolve("auto", "small", None).unwrap(),
            ChatTemplate::ChatMl
        ));
        // A resumed run reads its own checkpoint, whatever the setting.
        assert!(matches!(
            resolve("chatml", "small", Some(dir.path())).unwrap(),
            ChatTemplate::Jinja(_)
        ));
    }
}
