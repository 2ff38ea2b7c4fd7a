//! The `valley data` subcommands: `synth` (generate the corpus into a directory), `inspect` (the
//! columns and three rows of any JSONL source, to write a column mapping against) and `stats`
//! (the numbers a researcher checks before training: rows, difficulty histogram, correctness,
//! length percentiles, duplicates).

pub mod inspect;
pub mod stats;
pub mod synth;
