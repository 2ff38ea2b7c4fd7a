//! The problems the judge scores: the LiveCodeBench shape ([`EvalProblem`], docs/design.md section 4:
//! statement, starter code, difficulty, tests that are stdin/stdout or functional) and OpenAI's
//! HumanEval shape ([`HumanEvalProblem`]), joined in [`Problem`]. [`parse_problems`] reads either
//! from JSONL text, detecting the shape per row (a `task_id` makes it HumanEval).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a test feeds the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// The input is stdin; the output is compared with stdout.
    Stdin,
    /// The input holds the arguments of `fn_name` (one JSON value per line); the output is the
    /// JSON of its return value.
    Functional,
}

/// One test of an evaluation problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Stdin text, or the arguments of a functional test.
    pub input: String,
    /// Expected stdout, or the expected return value.
    pub output: String,
    /// Stdin or functional.
    pub kind: TestKind,
    /// Shown in the statement (LiveCodeBench's public tests) rather than hidden.
    #[serde(default)]
    pub public: bool,
}

/// An evaluation problem in the LiveCodeBench shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalProblem {
    /// Unique within the set.
    pub id: String,
    /// The problem statement shown to the model.
    pub statement: String,
    /// Code the answer must start from (functional problems); empty for stdin problems.
    #[serde(default)]
    pub starter_code: String,
    /// Difficulty label as the source spells it.
    pub difficulty: String,
    /// Where the problem comes from (`atcoder`, `leetcode`, `codeforces`, `synth`, …).
    #[serde(default)]
    pub platform: String,
    /// Contest date, `YYYY-MM-DD` (LiveCodeBench filters releases by date).
    #[serde(default)]
    pub date: String,
    /// The tests; at least one.
    pub tests: Vec<TestCase>,
    /// The function functional tests call; `None` for stdin problems.
    #[serde(default)]
    pub fn_name: Option<String>,
    /// Anything else, kept as it was.
    #[serde(default)]
    pub meta: Map<String, Value>,
}

/// A HumanEval problem as OpenAI's `HumanEval.jsonl.gz` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanEvalProblem {
    /// e.g. `HumanEval/0`.
    pub task_id: String,
    /// Signature and docstring; the completion continues it.
    pub prompt: String,
    /// The reference completion.
    pub canonical_solution: String,
    /// Defines `check(candidate)`.
    pub test: String,
    /// The function `check` is called with.
    pub entry_point: String,
}

/// A problem of either shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// LiveCodeBench shape: stdin or functional tests.
    LiveCodeBench(EvalProblem),
    /// HumanEval shape.
    HumanEval(HumanEvalProblem),
}

impl Problem {
    /// The id generations refer to.
    pub fn id(&self) -> &str {
        match self {
            Problem::LiveCodeBench(p) => &p.id,
            Problem::HumanEval(p) => &p.task_id,
        }
    }

    /// The difficulty label (`humaneval` for HumanEval, which has none).
    pub fn difficulty(&self) -> &str {
        match self {
            Problem::LiveCodeBench(p) => &p.difficulty,
            Problem::HumanEval(_) => "humaneval",
        }
    }
}

/// A bad row of a problems file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadProblem {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (serde's message names the field or value).
    pub message: String,
}

/// Parses problems of either shape from JSONL text (blank lines skipped).
///
/// # Errors
/// `BadProblem` for the first row that does not parse, has no tests, or repeats an id.
pub fn parse_problems(text: &str) -> Result<Vec<Problem>, BadProblem> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| BadProblem {
            line: line_no,
            message,
        };
        let shape: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let problem = if shape.get("task_id").is_some() {
            Problem::HumanEval(serde_json::from_value(shape).map_err(|e| bad(e.to_string()))?)
        } else {
            let p: EvalProblem = serde_json::from_value(shape).map_err(|e| bad(e.to_string()))?;
            if p.tests.is_empty() {
                return Err(bad("field `tests`: no tests".into()));
            }
            Problem::LiveCodeBench(p)
        };
        if let Some(first) = seen.insert(problem.id().to_string(), line_no) {
            return Err(bad(format!(
                "field `id`: duplicate id `{}` (first on line {first})",
                problem.id()
            )));
        }
        out.push(problem);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_shapes_and_names_bad_lines() {
        let text = concat!(
            r#"{"task_id":"HumanEval/0","prompt":"def f():\n","canonical_solution":"    return 1\n","test":"def check(c):\n    assert c() == 1\n","entry_point":"f"}"#,
            "\n\n",
            r#"{"id":"p1","statement":"s","difficulty":"EASY","tests":[{"input":"1","output":"1","kind":"stdin"}]}"#,
            "\n"
        );
        let ps = parse_problems(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].difficulty(), "humaneval");
        assert_eq!(ps[1].id(), "p1");
        let err = parse_problems(&text.replace("\"stdin\"", "\"stdio\"")).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("stdio"), "{err}");
        let dup = format!(
            "{}\n{}",
            text.lines().nth(2).unwrap(),
            text.lines().nth(2).unwrap()
        );
        let err = parse_problems(&dup).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("duplicate id"), "{err}");
    }
}
