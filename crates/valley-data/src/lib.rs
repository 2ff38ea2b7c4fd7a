//! Data for valley's experiments: training records and evaluation problems, the sources they are
//! read from (JSONL plain or gzip, Parquet shards, the Hugging Face hub cache), and the embedded
//! synthetic code-reasoning corpus.
//!
//! A bad row is always an error naming the file, the line and the field ([`DataError`]); with
//! [`BadRowPolicy::Skip`] it is counted instead, never dropped silently.
//!
//! ```
//! use valley_data::{read_training_jsonl, BadRowPolicy};
//!
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("train.jsonl");
//! std::fs::write(
//!     &file,
//!     r#"{"id": "p1", "difficulty": "EASY", "correct": true, "problem": "Add two numbers.", "response": "print(1 + 2)"}"#,
//! )?;
//! let set = read_training_jsonl(&file, BadRowPolicy::Error)?;
//! assert_eq!(set.records.len(), 1);
//! assert_eq!(set.records[0].id, "p1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod hf_hub;
pub mod judge_input;
pub mod problems;
pub mod records;
pub mod sources;
pub mod synth;

pub use problems::{read_eval_jsonl, write_eval_jsonl};
pub use records::{
    read_training_jsonl, write_training_jsonl, BadRow, BadRowPolicy, DataError, RecordSet,
    TrainingRecord, TACO_LEVELS,
};
