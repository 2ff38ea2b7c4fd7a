//! Evaluation problems in the LiveCodeBench shape (docs/design.md section 4): a statement, optional
//! starter code, a difficulty label, platform and date, and tests that are either stdin/stdout or
//! functional (call `fn_name`). Read from JSONL, plain or gzip; a bad row is an error naming the
//! file, the line and the field (a nested one as `tests[3].kind`).

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
};

use crate::records::{BadRow, DataError};

pub use valley_judge::{EvalProblem, TestCase, TestKind};

/// Reads evaluation problems from JSONL (plain or gzip, detected from the content).
///
/// # Errors
/// [`DataError::Unreadable`] for a file that cannot be read, [`DataError::BadRow`] naming the
/// line and field of the first bad row (unknown fields included, a problem without tests, a
/// repeated id).
pub fn read_eval_jsonl(path: &Path) -> Result<Vec<EvalProblem>, DataError> {
    let unreadable = |message: String| DataError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let mut file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut magic = [0u8; 2];
    let n = file
        .read(&mut magic)
        .map_err(|e| unreadable(e.to_string()))?;
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let reader: Box<dyn BufRead> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let bad = |line: usize, field: Option<String>, message: String| {
        DataError::BadRow(BadRow {
            path: path.to_path_buf(),
            line,
            field,
            message,
        })
    };
    let mut problems: Vec<EvalProblem> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| unreadable(format!("read failed at line {line_no}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(&line);
        let problem: EvalProblem = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let field = (field != "." && !field.is_empty()).then_some(field);
            bad(line_no, field, e.inner().to_string())
        })?;
        if problem.tests.is_empty() {
            return Err(bad(line_no, Some("tests".into()), "no tests".into()));
        }
        if let Some(first) = seen.insert(problem.id.clone(), line_no) {
            return Err(bad(
                line_no,
                Some("id".into()),
                format!("duplicate id `{}` (first seen on line {first})", problem.id),
            ));
        }
        problems.push(problem);
    }
    Ok(problems)
}

/// Writes problems as JSONL, one per line.
///
/// # Errors
/// I/O errors.
pub fn write_eval_jsonl<'a>(
    out: &mut impl std::io::Write,
    problems: impl IntoIterator<Item = &'a EvalProblem>,
) -> std::io::Result<()> {
    for p in problems {
        serde_json::to_writer(&mut *out, p)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"p1","statement":"s","difficulty":"EASY","platform":"synth","date":"2025-01-01","tests":[{"input":"1\n","output":"2","kind":"stdin","public":true}]}"#;

    fn read(text: &str) -> Result<Vec<EvalProblem>, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eval.jsonl");
        std::fs::write(&p, text).unwrap();
        read_eval_jsonl(&p)
    }

    #[test]
    fn reads_and_round_trips() {
        let problems = read(&format!("{GOOD}\n")).unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].tests[0].kind, TestKind::Stdin);
        assert_eq!(problems[0].fn_name, None);
        let mut out = Vec::new();
        write_eval_jsonl(&mut out, &problems).unwrap();
        assert_eq!(read(std::str::from_utf8(&out).unwrap()).unwrap(), problems);
    }

    #[test]
    fn bad_rows_name_the_line_and_nested_field() {
        let err = read(&format!(
            "{GOOD}\n{}\n",
            GOOD.replace("\"stdin\"", "\"stdio\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("eval.jsonl:2: field `tests[0].kind`"), "{err}");
        let err = read(&GOOD.replace(",\"tests\"", ",\"tsts\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("eval.jsonl:1"), "{err}");
        assert!(err.contains("tsts"), "{err}");
        let err = read(&format!("{GOOD}\n{GOOD}\n")).unwrap_err().to_string();
        assert!(err.contains(":2: field `id`: duplicate id"), "{err}");
        let err = read(&GOOD.replace(
            r#"[{"input":"1\n","output":"2","kind":"stdin","public":true}]"#,
            "[]",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("field `tests`: no tests"), "{err}");
    }
}
