//! Training records (docs/design.md section 4) read from JSONL, plain or gzip.
//!
//! A bad row is an error naming the file, the line and the field; with [`BadRowPolicy::Skip`] it
//! is skipped and counted instead, and the count travels with the records so that it is reported.
//! Never a silent drop.

use std::{
    collections::HashMap,
    fmt,
    fs::File,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use valley_plugin_api::{abi_stable::std_types::RVec, Candidate};

/// One training example: a problem and the teacher's response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// Unique within a source.
    pub id: String,
    /// The user turn.
    pub problem: String,
    /// The assistant turn (may hold `<think>…</think>`, then the answer and code).
    pub response: String,
    /// Difficulty label as the source spells it.
    pub difficulty: String,
    /// Numeric difficulty rank; larger is harder.
    pub difficulty_rank: f64,
    /// Whether the response passed its tests; `None` when unknown.
    pub correct: Option<bool>,
    /// Where the record came from.
    pub source: String,
    /// Anything else, kept as it was.
    pub meta: Map<String, Value>,
}

impl TrainingRecord {
    /// The metadata a sampler sees for the record at `index`. Token counts are bytes until a
    /// tokenizer is configured (the data issue adds one).
    pub fn candidate(&self, index: u64) -> Candidate {
        let tags: RVec<_> = self
            .meta
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(Into::into)
                    .collect()
            })
            .unwrap_or_default();
        Candidate {
            index,
            id: self.id.as_str().into(),
            difficulty: self.difficulty.as_str().into(),
            difficulty_rank: self.difficulty_rank,
            correct: self.correct.into(),
            token_count: (self.problem.len() + self.response.len()) as u64,
            source: self.source.as_str().into(),
            tags,
        }
    }
}

/// TACO's difficulty labels in rank order; used when a record gives a TACO label and no rank.
pub const TACO_LEVELS: [&str; 5] = ["EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD"];

/// What to do with a row that does not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum BadRowPolicy {
    /// Stop with an error naming file, line and field.
    #[default]
    Error,
    /// Skip the row, count it, and report the count.
    Skip,
}

impl TryFrom<String> for BadRowPolicy {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "error" => Ok(Self::Error),
            "skip" => Ok(Self::Skip),
            other => Err(format!(
                "`{other}` is not a bad-row policy: use \"error\" or \"skip\""
            )),
        }
    }
}

/// A data error, naming the file and (for bad rows) the line and field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A row is malformed.
    #[error("{}", BadRowDisplay(.0))]
    BadRow(BadRow),
}

/// One malformed row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRow {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

struct BadRowDisplay<'a>(&'a BadRow);

impl fmt::Display for BadRowDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = self.0;
        write!(f, "{}:{}: ", row.path.display(), row.line)?;
        if let Some(field) = &row.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&row.message)
    }
}

/// Records read from one file, with the rows that were skipped.
#[derive(Debug, Clone)]
pub struct RecordSet {
    /// The file read.
    pub path: PathBuf,
    /// The good records, in file order.
    pub records: Vec<TrainingRecord>,
    /// Rows skipped under [`BadRowPolicy::Skip`].
    pub skipped: Vec<BadRow>,
}

impl RecordSet {
    /// Candidates for the samplers; index `i` is `records[i]`.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| r.candidate(i as u64))
            .collect()
    }
}

/// Reads training records from a JSONL file, gzip-compressed or not (detected from the content,
/// not the name).
///
/// # Errors
/// [`DataError::Unreadable`] when the file cannot be read (a truncated gzip included, with the
/// line reached), [`DataError::BadRow`] for the first bad row under [`BadRowPolicy::Error`].
pub fn read_training_jsonl(path: &Path, policy: BadRowPolicy) -> Result<RecordSet, DataError> {
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

    let mut set = RecordSet {
        path: path.to_path_buf(),
        records: Vec::new(),
        skipped: Vec::new(),
    };
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| unreadable(format!("read failed at line {line_no}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed =
            parse_record(&line).and_then(|record| match first_line_of_id.get(&record.id) {
                Some(first) => Err((
                    Some("id".to_string()),
                    format!("duplicate id `{}` (first seen on line {first})", record.id),
                )),
                None => Ok(record),
            });
        match parsed {
            Ok(record) => {
                first_line_of_id.insert(record.id.clone(), line_no);
                set.records.push(record);
            }
            Err((field, message)) => {
                let row = BadRow {
                    path: path.to_path_buf(),
                    line: line_no,
                    field,
                    message,
                };
                match policy {
                    BadRowPolicy::Error => return Err(DataError::BadRow(row)),
                    BadRowPolicy::Skip => {
                        tracing::warn!("skipping bad row: {}", BadRowDisplay(&row));
                        set.skipped.push(row);
                    }
                }
            }
        }
    }
    Ok(set)
}

type FieldError = (Option<String>, String);

fn parse_record(line: &str) -> Result<TrainingRecord, FieldError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| (None, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err((
            None,
            format!("expected a JSON object, got {}", type_name(&value)),
        ));
    };
    let string = |name: &str| -> Result<String, FieldError> {
        match obj.get(name) {
            None | Some(Value::Null) => Err((Some(name.into()), "missing".into())),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err((
                Some(name.into()),
                format!("expected a string, got {}", type_name(other)),
            )),
        }
    };
    let id = string("id")?;
    if id.is_empty() {
        return Err((Some("id".into()), "empty".into()));
    }
    let problem = string("problem")?;
    let response = string("response")?;
    let difficulty = string("difficulty")?;
    let difficulty_rank = match obj.get("difficulty_rank") {
        None | Some(Value::Null) => match TACO_LEVELS.iter().position(|l| *l == difficulty) {
            Some(rank) => rank as f64,
            None => {
                return Err((
                    Some("difficulty_rank".into()),
                    format!(
                        "missing, and label `{difficulty}` is not a TACO level with a known rank"
                    ),
                ))
            }
        },
        Some(Value::Number(n)) => match n.as_f64() {
            Some(r) if r.is_finite() => r,
            _ => {
                return Err((
                    Some("difficulty_rank".into()),
                    format!("{n} is not a finite number"),
                ))
            }
        },
        Some(Value::String(s)) if s.trim().parse::<f64>().is_ok_and(|r| !r.is_finite()) => {
            return Err((
                Some("difficulty_rank".into()),
                format!("{s} is not a valid rank"),
            ));
        }
        Some(other) => {
            return Err((
                Some("difficulty_rank".into()),
                format!("expected a number, got {}", type_name(other)),
            ))
        }
    };
    let correct = match obj.get("correct") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err((
                Some("correct".into()),
                format!("expected true, false or null, got {}", type_name(other)),
            ))
        }
    };
    let source = match obj.get("source") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err((
                Some("source".into()),
                format!("expected a string, got {}", type_name(other)),
            ))
        }
    };
    let meta = match obj.get("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err((
                Some("meta".into()),
                format!("expected an object, got {}", type_name(other)),
            ))
        }
    };
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            return Err((
                Some(key.clone()),
                format!(
                    "unknown field (known: {}); put extra data under `meta`",
                    KNOWN_FIELDS.join(", ")
                ),
            ));
        }
    }
    Ok(TrainingRecord {
        id,
        problem,
        response,
        difficulty,
        difficulty_rank,
        correct,
        source,
        meta,
    })
}

const KNOWN_FIELDS: [&str; 8] = [
    "id",
    "problem",
    "response",
    "difficulty",
    "difficulty_rank",
    "correct",
    "source",
    "meta",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes records as JSONL, one per line, in the given order; the bytes depend only on the
/// records, so the same selection always gives the same file.
///
/// # Errors
/// Serialization cannot fail for these types; I/O errors are returned.
pub fn write_training_jsonl<'a>(
    out: &mut impl std::io::Write,
    records: impl IntoIterator<Item = &'a TrainingRecord>,
) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const GOOD: &str = r#"{"id":"a","problem":"p","response":"r","difficulty":"EASY","difficulty_rank":0,"correct":true,"source":"t","meta":{"tags":["x"]}}"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn bad(text: &str) -> BadRow {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t.jsonl", &format!("{GOOD}\n{text}\n"));
        match read_training_jsonl(&p, BadRowPolicy::Error) {
            Err(DataError::BadRow(row)) => row,
            other => panic!("expected a bad row for {text}, got {other:?}"),
        }
    }

    #[test]
    fn reads_plain_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(dir.path(), "t.jsonl", &format!("{GOOD}\n\n"));
        let gz_path = dir.path().join("t.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&gz_path).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(format!("{GOOD}\n").as_bytes()).unwrap();
        gz.finish().unwrap();
        let a = read_training_jsonl(&plain, BadRowPolicy::Error).unwrap();
        let b = read_training_jsonl(&gz_path, BadRowPolicy::Error).unwrap();
        assert_eq!(a.records, b.records);
        assert_eq!(a.records.len(), 1);
        let c = a.records[0].candidate(0);
        assert_eq!(c.tags.len(), 1);
        assert_eq!(c.correct(), Some(true));
        assert_eq!(c.token_count, 2);
    }

    #[test]
    fn truncated_gzip_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for _ in 0..200 {
            gz.write_all(format!("{GOOD}\n").as_bytes()).unwrap();
        }
        let bytes = gz.finish().unwrap();
        let p = dir.path().join("t.jsonl.gz");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_training_jsonl(&p, BadRowPolicy::Error)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&p.display().to_string()), "{err}");
        assert!(err.contains("read failed at line"), "{err}");
    }

    #[test]
    fn bad_rows_name_line_and_field() {
        // A missing rank is taken from the label when it is a TACO level.
        let rank = parse_record(r#"{"id":"b","problem":"p","response":"r","difficulty":"HARD"}"#);
        assert_eq!(rank.unwrap().difficulty_rank, 3.0);
        let row = bad(r#"{"id":"b","response":"r","difficulty":"EASY"}"#);
        assert_eq!(row.line, 2);
        assert_eq!(
            (row.field.as_deref(), row.message.as_str()),
            (Some("problem"), "missing")
        );
        let row = bad(r#"{"id":"b","problem":3,"response":"r","difficulty":"EASY"}"#);
        assert_eq!(row.field.as_deref(), Some("problem"));
        assert!(row.message.contains("expected a string, got a number"));
        let row = bad(
            r#"{"id":"b","problem":"p","response":"r","difficulty":"odd","difficulty_rank":"NaN"}"#,
        );
        assert_eq!(row.field.as_deref(), Some("difficulty_rank"));
        assert!(
            row.message.contains("NaN is not a valid rank"),
            "{}",
            row.message
        );
        let row = bad(r#"{"id":"b","problem":"p","response":"r","difficulty":"odd"}"#);
        assert_eq!(row.field.as_deref(), Some("difficulty_rank"));
        let row = bad(r#"{"id":"a","problem":"p","response":"r","difficulty":"EASY"}"#);
        assert_eq!(row.field.as_deref(), Some("id"));
        assert!(row
            .message
            .contains("duplicate id `a` (first seen on line 1)"));
        let row =
            bad(r#"{"id":"b","problem":"p","response":"r","difficulty":"EASY","correct":"yes"}"#);
        assert_eq!(row.field.as_deref(), Some("correct"));
        let row = bad("{not json");
        assert_eq!(row.field, None);
        let row =
            bad(r#"{"id":"b","problem":"p","response":"r","difficulty":"EASY","dificulty":1}"#);
        assert_eq!(row.field.as_deref(), Some("dificulty"));
        let full = DataError::BadRow(row).to_string();
        assert!(
            full.contains("t.jsonl:2: field `dificulty`: unknown field"),
            "{full}"
        );
    }

    #[test]
    fn skip_policy_counts_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "t.jsonl",
            &format!("{GOOD}\n{{\"id\":1}}\n{GOOD}\n"),
        );
        let set = read_training_jsonl(&p, BadRowPolicy::Skip).unwrap();
        assert_eq!(set.records.len(), 1);
        assert_eq!(set.skipped.len(), 2);
        assert_eq!(
            set.skipped.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn written_records_read_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t.jsonl", &format!("{GOOD}\n"));
        let set = read_training_jsonl(&p, BadRowPolicy::Error).unwrap();
        let mut out = Vec::new();
        write_training_jsonl(&mut out, &set.records).unwrap();
        let q = write(dir.path(), "u.jsonl", std::str::from_utf8(&out).unwrap());
        assert_eq!(
            read_training_jsonl(&q, BadRowPolicy::Error)
                .unwrap()
                .records,
            set.records
        );
    }
}
