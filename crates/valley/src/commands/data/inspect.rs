//! `valley data inspect`: the columns and first three rows of any source, to write a column
//! mapping against.

use std::io::Write;

use serde_json::Value;
use valley_experiment::Result;

use super::super::{out_err, Outcome};
use crate::cli::SourceArgs;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value, max: usize) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let flat = text.replace('\n', "\\n");
    if flat.chars().count() > max {
        format!(
            "{}… ({} chars)",
            flat.chars().take(max).collect::<String>(),
            text.chars().count()
        )
    } else {
        flat
    }
}

/// `valley data inspect SOURCE`: the columns (with the type of their first value) and the first
/// three rows of a JSONL file, a Parquet file or a directory of shards, long values cut.
///
/// # Errors
/// [`Error::Data`] naming the file and line of a row that is not a JSON object.
pub fn run(args: &SourceArgs, out: &mut dyn Write) -> Result<Outcome> {
    let source = args.source.as_path();
    let mut columns: Vec<(String, &'static str)> = Vec::new();
    let mut rows: Vec<serde_json::Map<String, Value>> = Vec::new();
    let mut count = 0usize;
    valley_data::sources::for_each_row(source, |_, obj| {
        for (k, v) in &obj {
            if !columns.iter().any(|(c, _)| c == k) {
                columns.push((k.clone(), kind(v)));
            }
        }
        count += 1;
        if rows.len() < 3 {
            rows.push(obj);
        }
        Ok(())
    })?;
    let w = |e| out_err(e);
    writeln!(
        out,
        "{}: {count} rows, {} columns",
        source.display(),
        columns.len()
    )
    .map_err(w)?;
    for (name, kind) in &columns {
        writeln!(out, "  {name:<24} {kind}").map_err(w)?;
    }
    for (i, row) in rows.iter().enumerate() {
        writeln!(out, "\nrow {}:", i + 1).map_err(w)?;
        for (k, v) in row {
            writeln!(out, "  {k:<24} {}", short(v, 100)).map_err(w)?;
        }
    }
    Ok(Outcome::Passed)
}
