//! Rows of Parquet files (as Hugging Face datasets stores them: one or many shards) read in
//! record batches — never a whole file in memory — and turned into JSON objects, so that the
//! presets map Parquet and JSONL rows alike. Strings, integers, floats, booleans, nulls, lists and
//! structs are converted; another column type is an error naming the file and the column. A row
//! is named by its 1-based number in its file (shown where JSONL shows the line).

use std::{fs::File, path::Path};

use arrow_array::{cast::AsArray, types::*, Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Number, Value};

use super::bad;
use crate::records::DataError;

/// Rows per record batch.
pub const BATCH_ROWS: usize = 1024;

fn number(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The JSON value of `array[i]`.
///
/// # Errors
/// The name of an unsupported type.
pub fn value_at(array: &ArrayRef, i: usize) -> Result<Value, String> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(i).to_string()),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => number(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => number(array.as_primitive::<Float64Type>().value(i)),
        DataType::List(_) => {
            let inner = array.as_list::<i32>().value(i);
            Value::Array(
                (0..inner.len())
                    .map(|j| value_at(&inner, j))
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::LargeList(_) => {
            let inner = array.as_list::<i64>().value(i);
            Value::Array(
                (0..inner.len())
                    .map(|j| value_at(&inner, j))
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut obj = Map::new();
            for (f, col) in fields.iter().zip(s.columns()) {
                obj.insert(f.name().clone(), value_at(col, i)?);
            }
            Value::Object(obj)
        }
        other => return Err(format!("column type {other} is not supported")),
    })
}

/// Whether a file starts with Parquet's magic bytes.
pub fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"PAR1"
}

/// Calls `f` with each row of a Parquet file and its 1-based row number, batch by batch.
///
/// # Errors
/// [`DataError::Unreadable`] for a file that is not valid Parquet (with the row reached),
/// [`DataError::BadRow`] naming the row and column of a value that cannot be converted, and
/// whatever `f` returns.
pub fn for_each_parquet_row(
    path: &Path,
    mut f: impl FnMut(usize, Map<String, Value>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let unreadable = |message: String| DataError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| unreadable(format!("not a readable Parquet file: {e}")))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| unreadable(format!("not a readable Parquet file: {e}")))?;
    let mut row_no = 0usize;
    for batch in reader {
        let batch: RecordBatch =
            batch.map_err(|e| unreadable(format!("read failed after row {row_no}: {e}")))?;
        let schema = batch.schema();
        for i in 0..batch.num_rows() {
            row_no += 1;
            let mut row = Map::new();
            for (field, col) in schema.fields().iter().zip(batch.columns()) {
                let v = value_at(col, i).map_err(|m| bad(path, row_no, Some(field.name()), m))?;
                row.insert(field.name().clone(), v);
            }
            f(row_no, row)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;

    #[test]
    fn reads_rows_in_batches_with_types_and_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("i", DataType::Int64, false),
            Field::new("f", DataType::Float64, false),
            Field::new("b", DataType::Boolean, false),
        ]));
        let n = BATCH_ROWS + 10; // more than one batch
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|i| (i % 2 == 0).then(|| format!("r{i}")))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(vec![0.5; n])),
                Arc::new(BooleanArray::from(vec![true; n])),
            ],
        )
        .unwrap();
        let mut w = ArrowWriter::try_new(File::create(&p).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        assert!(is_parquet(&p));
        let mut rows = Vec::new();
        for_each_parquet_row(&p, |n, row| {
            rows.push((n, row));
            Ok(())
        })
        .unwrap();
        assert_eq!(rows.len(), n);
        assert_eq!(rows[0].0, 1);
        assert_eq!(rows[0].1["s"], "r0");
        assert_eq!(rows[1].1["s"], Value::Null);
        assert_eq!(rows[n - 1].1["i"], (n - 1) as i64);
        assert_eq!(rows[3].1["f"], 0.5);
        assert_eq!(rows[3].1["b"], true);
    }

    #[test]
    fn a_malformed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.parquet");
        std::fs::write(&p, b"PAR1 this is not parquet PAR1").unwrap();
        let err = for_each_parquet_row(&p, |_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&p.display().to_string()), "{err}");
        assert!(err.contains("not a readable Parquet file"), "{err}");
    }
}
