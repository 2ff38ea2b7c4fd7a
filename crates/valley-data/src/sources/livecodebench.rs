//! LiveCodeBench's `code_generation_lite` rows as evaluation problems: `question_id`,
//! `question_content`, `platform`, `contest_date`, `starter_code`, `difficulty`,
//! `public_test_cases` (a JSON string), `private_test_cases` (a JSON string, or
//! base64 → zlib → pickle → JSON as the release stores it) and `metadata` (a JSON string with
//! `func_name`). Releases differ only in which contest dates they cover: filter with a
//! [`DateWindow`].

use std::{io::Read, path::Path};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{bad, for_each_row, pickle::read_pickle};
use crate::{
    problems::{EvalProblem, TestCase, TestKind},
    records::DataError,
};

/// Contest dates to keep, inclusive, as `YYYY-MM-DD` (either end open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateWindow {
    /// First date kept.
    pub from: Option<String>,
    /// Last date kept.
    pub to: Option<String>,
}

impl DateWindow {
    fn contains(&self, date: &str) -> bool {
        self.from.as_deref().is_none_or(|f| date >= f)
            && self.to.as_deref().is_none_or(|t| date <= t)
    }
}

/// Decodes a `private_test_cases` value: JSON, else base64 → zlib → pickle → JSON.
///
/// # Errors
/// A message saying which step failed.
pub fn decode_test_blob(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(text.trim().as_bytes())
        .map_err(|e| format!("neither JSON nor base64: {e}"))?;
    let mut pickled = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut pickled)
        .map_err(|e| format!("base64 decoded, but not zlib data: {e}"))?;
    let inner = read_pickle(&pickled).map_err(|e| format!("zlib decoded, but {e}"))?;
    match inner {
        Value::String(json) => {
            serde_json::from_str(&json).map_err(|e| format!("unpickled, but not JSON: {e}"))
        }
        other => Ok(other),
    }
}

fn tests_of(value: &Value, public: bool) -> Result<Vec<TestCase>, String> {
    let items = value.as_array().ok_or("expected a list of tests")?;
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let field = |k: &str| {
                t.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or(format!("test {i}: `{k}` missing or not a string"))
            };
            let kind = match field("testtype")?.as_str() {
                "stdin" => TestKind::Stdin,
                "functional" => TestKind::Functional,
                other => {
                    return Err(format!(
                        "test {i}: testtype `{other}` (stdin or functional)"
                    ))
                }
            };
            Ok(TestCase {
                input: field("input")?,
                output: field("output")?,
                kind,
                public,
            })
        })
        .collect()
}

fn string_col(row: &Map<String, Value>, name: &str) -> Option<String> {
    row.get(name).and_then(Value::as_str).map(str::to_string)
}

/// Reads LiveCodeBench rows from JSONL, keeping the contest dates in `window`.
///
/// # Errors
/// [`DataError::BadRow`] naming the line and the column: a missing column, a test blob that
/// does not decode (and which step failed), `metadata` that is not JSON.
pub fn read_livecodebench_jsonl(
    path: &Path,
    window: &DateWindow,
) -> Result<Vec<EvalProblem>, DataError> {
    let mut problems = Vec::new();
    for_each_row(path, |line, row| {
        let required = |name: &str| {
            string_col(&row, name)
                .ok_or_else(|| bad(path, line, Some(name), "missing or not a string".into()))
        };
        let date_full = required("contest_date")?;
        let date: String = date_full.chars().take(10).collect();
        if !window.contains(&date) {
            return Ok(());
        }
        let mut tests = Vec::new();
        for (col, public) in [("public_test_cases", true), ("private_test_cases", false)] {
            let text = required(col)?;
            let value = decode_test_blob(&text).map_err(|m| bad(path, line, Some(col), m))?;
            tests.extend(tests_of(&value, public).map_err(|m| bad(path, line, Some(col), m))?);
        }
        let metadata: Value = match row.get("metadata") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|e| bad(path, line, Some("metadata"), format!("not JSON: {e}")))?,
            Some(v) => v.clone(),
        };
        let fn_name = metadata
            .get("func_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut meta = Map::new();
        for key in ["question_title", "contest_id"] {
            if let Some(v) = row.get(key) {
                meta.insert(key.into(), v.clone());
            }
        }
        meta.insert("contest_date".into(), Value::String(date_full));
        problems.push(EvalProblem {
            id: required("question_id")?,
            statement: required("question_content")?,
            starter_code: string_col(&row, "starter_code").unwrap_or_default(),
            difficulty: required("difficulty")?,
            platform: string_col(&row, "platform").unwrap_or_default(),
            date,
            tests,
            fn_name,
            meta,
        });
        Ok(())
    })?;
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// The private tests exactly as LiveCodeBench's release encodes them, made by Python itself.
    fn lcb_blob(tests_json: &str) -> String {
        let out = Command::new("python3")
            .args([
                "-c",
                "import base64, pickle, sys, zlib; print(base64.b64encode(zlib.compress(pickle.dumps(sys.argv[1]))).decode())",
                tests_json,
            ])
            .output()
            .expect("python3 runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn row(private: &str, date: &str) -> Value {
        serde_json::json!({
            "question_title": "Sum", "question_content": "Add two numbers.", "platform": "atcoder",
            "question_id": format!("abc-{date}"), "contest_id": "abc300", "contest_date": format!("{date}T00:00:00"),
            "starter_code": "", "difficulty": "easy",
            "public_test_cases": "[{\"input\": \"1 2\\n\", \"output\": \"3\\n\", \"testtype\": \"stdin\"}]",
            "private_test_cases": private,
            "metadata": "{\"func_name\": null}"
        })
    }

    #[test]
    fn reads_compressed_private_tests_and_filters_dates() {
        let blob = lcb_blob(
            r#"[{"input": "2 2\n", "output": "4\n", "testtype": "stdin"}, {"input": "5 5\n", "output": "10\n", "testtype": "stdin"}]"#,
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lcb.jsonl");
        let plain = r#"[{"input": "0 0\n", "output": "0\n", "testtype": "stdin"}]"#;
        std::fs::write(
            &p,
            format!(
                "{}\n{}\n",
                row(&blob, "2024-06-01"),
                row(plain, "2023-05-01")
            ),
        )
        .unwrap();
        let all = read_livecodebench_jsonl(&p, &DateWindow::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].tests.len(), 3);
        assert!(all[0].tests[0].public && !all[0].tests[1].public);
        assert_eq!(all[0].tests[2].output, "10\n");
        assert_eq!(all[0].date, "2024-06-01");
        assert_eq!(all[0].fn_name, None);
        let window = DateWindow {
            from: Some("2024-01-01".into()),
            to: None,
        };
        let recent = read_livecodebench_jsonl(&p, &window).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].id, "abc-2024-06-01");
    }

    #[test]
    fn a_bad_blob_names_the_line_the_column_and_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lcb.jsonl");
        std::fs::write(&p, format!("{}\n", row("bm90IHpsaWI=", "2024-06-01"))).unwrap();
        let err = read_livecodebench_jsonl(&p, &DateWindow::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "lcb.jsonl:1: field `private_test_cases`: base64 decoded, but not zlib data"
            ),
            "{err}"
        );
        std::fs::write(&p, format!("{}\n", row("%%%", "2024-06-01"))).unwrap();
        let err = read_livecodebench_jsonl(&p, &DateWindow::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither JSON nor base64"), "{err}");
    }
}
