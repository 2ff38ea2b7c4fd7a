//! Prompts: the problem as the user turn of a conversation rendered with the checkpoint's chat
//! template ([`prompt_with`]; ChatML when the checkpoint has none, [`chat_prompt`]), so that a
//! model is evaluated with the template `candle-sft` trained it with. Two styles:
//!
//! - `plain`: the statement alone (and HumanEval's prompt in a code block) as the only (user)
//!   turn, exactly as the `candle-sft` trainer formats its training examples, so the student sees
//!   at evaluation what it saw in training.
//! - `lcb`: LiveCodeBench's generic format (`lcb_runner/prompts/code_generation.py`): its system
//!   prompt as the system message, then `### Question:`, the stdin or starter-code format line
//!   with a code block, and `### Answer:`.

use serde::{Deserialize, Serialize};
use valley_judge::Problem;
use valley_lm::chat_template::{ChatTemplate, ChatTemplateError};

/// Which prompt format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptStyle {
    /// The statement alone as the user turn (how the CPU student is trained).
    #[default]
    Plain,
    /// LiveCodeBench's format.
    Lcb,
}

/// LiveCodeBench's `SYSTEM_MESSAGE_GENERIC`.
pub const LCB_SYSTEM: &str = "You are an expert Python programmer. You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests.";

/// LiveCodeBench's `FORMATTING_MESSAGE_WITH_STARTER_CODE`.
pub const LCB_WITH_STARTER: &str = "You will use the following starter code to write the solution to the problem and enclose your code within delimiters.";

/// LiveCodeBench's `FORMATTING_WITHOUT_STARTER_CODE`.
pub const LCB_WITHOUT_STARTER: &str = "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.";

/// The statement and starter code of a problem (HumanEval: an instruction and its prompt as
/// the starter code).
fn question(problem: &Problem) -> (String, String) {
    match problem {
        Problem::LiveCodeBench(p) => (p.statement.clone(), p.starter_code.clone()),
        Problem::HumanEval(p) => (
            format!("Complete the Python function `{}` below.", p.entry_point),
            p.prompt.clone(),
        ),
    }
}

/// The user turn's text.
pub fn user_text(problem: &Problem, style: PromptStyle) -> String {
    let (statement, starter) = question(problem);
    match style {
        PromptStyle::Plain if starter.trim().is_empty() => statement,
        PromptStyle::Plain => format!("{statement}\n\n```python\n{starter}\n```\n"),
        PromptStyle::Lcb => {
            let mut text = format!("### Question:\n{statement}\n\n");
            if starter.trim().is_empty() {
                text.push_str(&format!("### Format: {LCB_WITHOUT_STARTER}\n"));
                text.push_str("```python\n# YOUR CODE HERE\n```\n\n");
            } else {
                text.push_str(&format!("### Format: {LCB_WITH_STARTER}\n"));
                text.push_str(&format!("```python\n{starter}\n```\n\n"));
            }
            text.push_str("### Answer: (use the provided format with backticks)\n\n");
            text
        }
    }
}

/// The whole prompt rendered with `template`, ending where the assistant's answer starts: the
/// user turn alone (`plain`) or after LiveCodeBench's system message (`lcb`).
///
/// # Errors
/// The template's error, naming where it came from, when it fails to render.
pub fn prompt_with(
    template: &ChatTemplate,
    problem: &Problem,
    style: PromptStyle,
) -> Result<String, ChatTemplateError> {
    let system = match style {
        PromptStyle::Plain => None,
        PromptStyle::Lcb => Some(LCB_SYSTEM),
    };
    template.prompt(system, &user_text(problem, style))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valley_judge::{EvalProblem, TestCase, TestKind};

    fn problem(starter: &str) -> Problem {
        Problem::LiveCodeBench(EvalProblem {
            id: "p".into(),
            statement: "Add two numbers.".into(),
            starter_code: starter.into(),
            difficulty: "EASY".into(),
            platform: String::new(),
            date: String::new(),
            tests: vec![TestCase {
                input: "1 2".into(),
                output: "3".into(),
                kind: TestKind::Stdin,
                public: true,
            }],
            fn_name: None,
            meta: Default::default(),
        })
    }

    /// ChatML as the evaluator renders it.
    fn chat_prompt(problem: &Problem, style: PromptStyle) -> String {
        prompt_with(&ChatTemplate::ChatMl, problem, style).unwrap()
    }

    /// Plain is candle-sft's training prompt (plugins/candle-sft/src/data.rs `chat_turns`).
    #[test]
    fn plain_is_the_training_template() {
        let (training, _) =
            valley_lm::chat_template::chatml_turns(None, "Add two numbers.", "answer");
        assert_eq!(chat_prompt(&problem(""), PromptStyle::Plain), training);
        assert_eq!(
            training,
            "<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    /// A checkpoint's own template renders the system message (lcb) and the user turn.
    #[test]
    fn a_checkpoints_template_is_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"}"#,
        )
        .unwrap();
        let t = ChatTemplate::from_dir(dir.path()).unwrap();
        assert_eq!(
            prompt_with(&t, &problem(""), PromptStyle::Plain).unwrap(),
            "<user>Add two numbers.</user><assistant>"
        );
        let lcb = prompt_with(&t, &problem(""), PromptStyle::Lcb).unwrap();
        assert!(
            lcb.starts_with(&format!("<system>{LCB_SYSTEM}</system><user>### Question:")),
            "{lcb}"
        );
    }

    #[test]
    fn lcb_has_the_system_prompt_question_format_and_answer() {
        let stdin = chat_prompt(&problem(""), PromptStyle::Lcb);
        assert!(stdin.starts_with(&format!("<|im_start|>system\n{LCB_SYSTEM}<|im_end|>\n")));
        assert!(stdin.contains("### Question:\nAdd two numbers.\n\n### Format: Read the inputs"));
        assert!(stdin.contains("```python\n# YOUR CODE HERE\n```\n\n### Answer:"));
        assert!(stdin.ends_with("<|im_start|>assistant\n"));
        let starter = chat_prompt(
            &problem("class Solution:\n    def f(self):"),
            PromptStyle::Lcb,
        );
        assert!(starter.contains(&format!(
            "### Format: {LCB_WITH_STARTER}\n```python\nclass Solution:"
        )));
    }
}
