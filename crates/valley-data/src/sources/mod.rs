//! Real datasets in their own shapes, mapped onto valley's records: column mappings with presets
//! for the Collinear release, OpenCodeReasoning-2 and TACO (training records) and LiveCodeBench
//! (evaluation problems, [`livecodebench`]). Rows come from JSONL files (plain or gzip), as the
//! Hugging Face datasets exports hold them; a bad row is an error naming the file, the line and
//! the column.
//!
//! Difficulty labels are kept as the source spells them and mapped to a rank per preset: TACO's
//! EASY < MEDIUM < MEDIUM_HARD < HARD < VERY_HARD (0 … 4), a numeric label (a rating) is its own
//! rank.

pub mod humaneval;
pub mod livecodebench;
pub mod parquet_rows;
pub mod pickle;

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::records::{BadRow, DataError, TrainingRecord, TACO_LEVELS};

/// Shapes of evaluation problems the host converts into its problem JSONL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvalPreset {
    /// LiveCodeBench's release files (`question_content`, `public_test_cases`,
    /// `private_test_cases`, `metadata`, `contest_date`, …).
    Livecodebench,
    /// OpenAI's HumanEval (`HumanEval.jsonl.gz`, or the same columns in Parquet).
    Humaneval,
}

/// A training-data preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// `collinear-ai/valley-of-reasoning-data`. Its field names are not known offline: the
    /// defaults are a guess — check with `valley data inspect` and override `columns`.
    Collinear,
    /// `nvidia/OpenCodeReasoning-2`: `question`, `r1_generation`, `difficulty`, `pass_rate`.
    OpenCodeReasoning2,
    /// `BAAI/TACO`: `question`, `solutions` (a JSON list; the first is the response),
    /// `difficulty` EASY … VERY_HARD.
    Taco,
}

/// Which column holds each field of a training record; `None` leaves the field empty (or, for
/// `id`, numbers the rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    /// The id column.
    pub id: Option<String>,
    /// The problem (user turn).
    pub problem: String,
    /// The response (assistant turn); a JSON list of strings takes its first element.
    pub response: String,
    /// The difficulty label.
    pub difficulty: Option<String>,
    /// Correctness: a boolean, or a pass rate (correct when 1.0).
    pub correct: Option<String>,
    /// The source column.
    pub source: Option<String>,
}

impl Preset {
    /// The preset's column map.
    pub fn columns(self) -> ColumnMap {
        let s = |v: &str| Some(v.to_string());
        match self {
            Preset::Collinear => ColumnMap {
                id: s("id"),
                problem: "question".into(),
                response: "response".into(),
                difficulty: s("difficulty"),
                correct: s("correct"),
                source: s("source"),
            },
            Preset::OpenCodeReasoning2 => ColumnMap {
                id: s("id"),
                problem: "question".into(),
                response: "r1_generation".into(),
                difficulty: s("difficulty"),
                correct: s("pass_rate"),
                source: s("source"),
            },
            Preset::Taco => ColumnMap {
                id: None,
                problem: "question".into(),
                response: "solutions".into(),
                difficulty: s("difficulty"),
                correct: None,
                source: s("source"),
            },
        }
    }

    /// The name written in `source` when the row has none.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Collinear => "collinear",
            Preset::OpenCodeReasoning2 => "open-code-reasoning-2",
            Preset::Taco => "taco",
        }
    }
}

/// The rank of a difficulty label: its place among TACO's levels (case-insensitive), or the
/// number itself for a numeric label; `None` for anything else.
pub fn difficulty_rank(label: &str) -> Option<f64> {
    let upper = label.trim().to_ascii_uppercase().replace([' ', '-'], "_");
    if let Some(i) = TACO_LEVELS.iter().position(|l| *l == upper) {
        return Some(i as f64);
    }
    label.trim().parse::<f64>().ok().filter(|r| r.is_finite())
}

/// Opens a JSONL file, plain or gzip (detected from the content).
///
/// # Errors
/// [`DataError::Unreadable`].
pub fn open_jsonl(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    let unreadable = |e: std::io::Error| DataError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut file = File::open(path).map_err(unreadable)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(unreadable)?;
    let file = File::open(path).map_err(unreadable)?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Calls `f` with each row (a JSON object) and its 1-based line (row number for Parquet) of a
/// JSONL file (plain or gzip), a Parquet file (detected from the content), or a directory of
/// shards (`*.parquet`, `*.jsonl`, `*.jsonl.gz`, in name order).
///
/// # Errors
/// Read errors (a truncated gzip names the line reached), rows that are not JSON objects, a
/// directory without shards, and whatever `f` returns.
pub fn for_each_row(
    path: &Path,
    mut f: impl FnMut(usize, Map<String, Value>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    if !path.is_dir() {
        return file_rows(path, &mut f);
    }
    let mut shards: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.to_string_lossy();
            [".parquet", ".jsonl", ".jsonl.gz"]
                .iter()
                .any(|ext| name.ends_with(ext))
        })
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(DataError::Unreadable {
            path: path.to_path_buf(),
            message: "a directory without shards (*.parquet, *.jsonl, *.jsonl.gz)".into(),
        });
    }
    for shard in shards {
        file_rows(&shard, &mut f)?;
    }
    Ok(())
}

type RowFn<'a> = dyn FnMut(usize, Map<String, Value>) -> Result<(), DataError> + 'a;

fn file_rows(path: &Path, f: &mut RowFn<'_>) -> Result<(), DataError> {
    if parquet_rows::is_parquet(path) {
        return parquet_rows::for_each_parquet_row(path, f);
    }
    for (i, line) in open_jsonl(path)?.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            message: format!("read failed at line {line_no}: {e}"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(Value::Object(row)) => f(line_no, row)?,
            Ok(_) => return Err(bad(path, line_no, None, "expected a JSON object".into())),
            Err(e) => return Err(bad(path, line_no, None, format!("not valid JSON: {e}"))),
        }
    }
    Ok(())
}

/// A bad-row error.
pub fn bad(path: &Path, line: usize, column: Option<&str>, message: String) -> DataError {
    DataError::BadRow(BadRow {
        path: path.to_path_buf(),
        line,
        field: column.map(str::to_string),
        message,
    })
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            // A JSON-encoded list of strings (TACO's `solutions`): its first element.
            if s.trim_start().starts_with('[') {
                if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s) {
                    return items.first().and_then(|i| i.as_str()).map(str::to_string);
                }
            }
            Some(s.clone())
        }
        Value::Array(items) => items.first().and_then(|i| i.as_str()).map(str::to_string),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads training records from a JSONL file in a preset's shape, with `columns` (the preset's
/// when `None`). Columns not mapped are kept under `meta`.
///
/// # Errors
/// [`DataError::BadRow`] naming the line and the column: a missing or empty mapped column, a
/// difficulty label with no rank, a correctness value that is neither a boolean nor a rate.
pub fn read_training_preset(
    path: &Path,
    preset: Preset,
    columns: Option<&ColumnMap>,
) -> Result<Vec<TrainingRecord>, DataError> {
    let default = preset.columns();
    let cols = columns.unwrap_or(&default);
    let mut records = Vec::new();
    for_each_row(path, |line, mut row| {
        let mut take = |name: &str, required: bool| -> Result<Option<Value>, DataError> {
            match row.remove(name) {
                None | Some(Value::Null) if required => Err(bad(
                    path,
                    line,
                    Some(name),
                    format!(
                        "missing (preset {}; set the column in `columns` if it is named otherwise)",
                        preset.name()
                    ),
                )),
                v => Ok(v.filter(|v| !v.is_null())),
            }
        };
        let problem = take(&cols.problem, true)?.and_then(|v| text_of(&v));
        let response = take(&cols.response, true)?.and_then(|v| text_of(&v));
        let (Some(problem), Some(response)) = (problem, response) else {
            return Err(bad(
                path,
                line,
                Some(&cols.response),
                "expected text (a string, or a list of strings)".into(),
            ));
        };
        let id = match &cols.id {
            Some(c) => take(c, true)?.and_then(|v| text_of(&v)).unwrap_or_default(),
            None => format!("{}-{line}", preset.name()),
        };
        let difficulty = match &cols.difficulty {
            Some(c) => take(c, true)?.and_then(|v| text_of(&v)).unwrap_or_default(),
            None => String::new(),
        };
        let difficulty_rank = if cols.difficulty.is_none() {
            0.0
        } else {
            difficulty_rank(&difficulty).ok_or_else(|| {
                bad(
                    path,
                    line,
                    cols.difficulty.as_deref(),
                    format!("label `{difficulty}` has no rank (TACO levels or a number)"),
                )
            })?
        };
        let correct = match &cols.correct {
            None => None,
            Some(c) => match take(c, false)? {
                None => None,
                Some(Value::Bool(b)) => Some(b),
                Some(Value::Number(n)) => n.as_f64().map(|rate| rate >= 1.0),
                Some(Value::String(s)) if ["right", "correct", "true"].contains(&s.as_str()) => {
                    Some(true)
                }
                Some(Value::String(s)) if ["wrong", "incorrect", "false"].contains(&s.as_str()) => {
                    Some(false)
                }
                Some(other) => {
                    return Err(bad(
                        path,
                        line,
                        Some(c),
                        format!("expected a boolean or a pass rate, got {other}"),
                    ))
                }
            },
        };
        let source = match &cols.source {
            Some(c) => take(c, false)?.and_then(|v| text_of(&v)),
            None => None,
        }
        .unwrap_or_else(|| preset.name().to_string());
        records.push(TrainingRecord {
            id,
            problem,
            response,
            difficulty,
            difficulty_rank,
            correct,
            source,
            meta: row,
        });
        Ok(())
    })?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rows.jsonl");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn taco_rows_take_the_first_solution_and_rank_the_label() {
        // The columns of BAAI/TACO (train split), `solutions` and `input_output` JSON-encoded.
        let row = serde_json::json!({
            "question": "Print the sum.", "solutions": "[\"print(1)\", \"print(2)\"]",
            "starter_code": "", "input_output": "{\"inputs\": [\"\"], \"outputs\": [\"1\"]}",
            "difficulty": "MEDIUM_HARD", "raw_tags": "[]", "name": null, "source": "codeforces",
            "tags": "[]", "skill_types": "[]", "url": "https://x", "Expected Auxiliary Space": null,
            "time_limit": "1 second", "date": "2020-01-01", "picture_num": "0",
            "memory_limit": "256 megabytes", "Expected Time Complexity": null
        });
        let (_d, p) = write(&format!("{row}\n"));
        let recs = read_training_preset(&p, Preset::Taco, None).unwrap();
        assert_eq!(recs[0].response, "print(1)");
        assert_eq!(
            (recs[0].difficulty.as_str(), recs[0].difficulty_rank),
            ("MEDIUM_HARD", 2.0)
        );
        assert_eq!(recs[0].id, "taco-1");
        assert_eq!(recs[0].source, "codeforces");
        assert!(recs[0].meta.contains_key("input_output"));
    }

    #[test]
    fn ocr2_pass_rate_decides_correctness_and_missing_columns_are_named() {
        let rows = [
            serde_json::json!({"id": "a", "question_id": "q", "question": "Q", "r1_generation": "<think>x</think>A",
                "qwq_critique": "", "solution": "", "judgement": "right", "pass_rate": 1.0,
                "source": "codeforces", "license": "cc-by-4.0", "dataset": "code_contests", "split": "train",
                "difficulty": "7", "index": "1"}),
            serde_json::json!({"id": "b", "question": "Q", "r1_generation": "A", "pass_rate": 0.4, "difficulty": "EASY"}),
        ];
        let (_d, p) = write(&format!("{}\n{}\n", rows[0], rows[1]));
        let recs = read_training_preset(&p, Preset::OpenCodeReasoning2, None).unwrap();
        assert_eq!(recs[0].correct, Some(true));
        assert_eq!(recs[0].difficulty_rank, 7.0);
        assert_eq!(recs[1].correct, Some(false));
        assert_eq!(recs[1].difficulty_rank, 0.0);

        let (_d, p) = write("{\"id\": \"c\", \"question\": \"Q\", \"difficulty\": \"EASY\"}\n");
        let err = read_training_preset(&p, Preset::OpenCodeReasoning2, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rows.jsonl:1: field `r1_generation`: missing"),
            "{err}"
        );
    }

    #[test]
    fn collinear_columns_can_be_remapped() {
        let (_d, p) = write(
            "{\"uid\": \"x\", \"prompt\": \"P\", \"completion\": \"C\", \"level\": \"hard\", \"is_correct\": false}\n",
        );
        let err = read_training_preset(&p, Preset::Collinear, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `question`: missing"), "{err}");
        let cols = ColumnMap {
            id: Some("uid".into()),
            problem: "prompt".into(),
            response: "completion".into(),
            difficulty: Some("level".into()),
            correct: Some("is_correct".into()),
            source: None,
        };
        let recs = read_training_preset(&p, Preset::Collinear, Some(&cols)).unwrap();
        assert_eq!((recs[0].id.as_str(), recs[0].difficulty_rank), ("x", 3.0));
        assert_eq!(recs[0].correct, Some(false));
        assert_eq!(recs[0].source, "collinear");
    }

    /// Writes an OpenCodeReasoning-2-shaped Parquet shard (string columns and a float pass rate).
    fn ocr2_shard(path: &Path, ids: &[&str], with_generation: bool) {
        use std::sync::Arc;

        use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
        let strings = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
        let n = ids.len();
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("id", strings(ids.iter().map(|s| s.to_string()).collect())),
            ("question", strings(vec!["Q".into(); n])),
            ("difficulty", strings(vec!["HARD".into(); n])),
            ("source", strings(vec!["codeforces".into(); n])),
            (
                "pass_rate",
                Arc::new(Float64Array::from(vec![1.0; n])) as ArrayRef,
            ),
        ];
        if with_generation {
            cols.push((
                "r1_generation",
                strings(vec!["<think>t</think>code".into(); n]),
            ));
        }
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn presets_read_parquet_shards_and_name_a_missing_column() {
        let dir = tempfile::tempdir().unwrap();
        let shards = dir.path().join("data");
        std::fs::create_dir(&shards).unwrap();
        ocr2_shard(
            &shards.join("train-00000-of-00002.parquet"),
            &["a", "b"],
            true,
        );
        ocr2_shard(&shards.join("train-00001-of-00002.parquet"), &["c"], true);
        let recs = read_training_preset(&shards, Preset::OpenCodeReasoning2, None).unwrap();
        let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(recs[0].difficulty_rank, 3.0);
        assert_eq!(recs[2].correct, Some(true));
        assert_eq!(recs[2].response, "<think>t</think>code");

        let lacking = dir.path().join("lacking.parquet");
        ocr2_shard(&lacking, &["x"], false);
        let err = read_training_preset(&lacking, Preset::OpenCodeReasoning2, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lacking.parquet:1: field `r1_generation`: missing"),
            "{err}"
        );
    }
}
