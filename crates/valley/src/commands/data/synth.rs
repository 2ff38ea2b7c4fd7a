//! `valley data synth`: generates the synthetic corpus into a directory and prints what it wrote.

use std::{io::Write, time::Instant};

use anyhow::{anyhow, Result};
use valley_data::synth::{generate, python_runner::BatchedPython, write_corpus, SynthRequest};

use super::super::{out_err, Outcome};
use crate::cli::SynthArgs;

/// Generates the corpus into `--out` and prints what it wrote.
///
/// # Errors
/// an error when generation fails (Python missing, say), I/O errors naming the file.
pub fn run(args: &SynthArgs, out: &mut dyn Write) -> Result<Outcome> {
    let request = &SynthRequest {
        train: args.train,
        eval: args.eval,
        seed: args.seed,
    };
    let out_dir = args.out.as_path();
    let runner = BatchedPython {
        workers: args.workers.max(1),
        ..BatchedPython::default()
    };
    let start = Instant::now();
    let corpus = generate(request, &runner).map_err(|e| anyhow!("{}", e))?;
    write_corpus(&corpus, out_dir).map_err(|e| anyhow!("{}", e))?;
    for (name, paper, idx) in &corpus.subsets {
        let correct = corpus
            .subset(name)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.correct == Some(true))
            .count();
        writeln!(
            out,
            "{:<19} {:>6} records (paper: {paper}), {correct} correct",
            format!("{name}.jsonl"),
            idx.len()
        )
        .map_err(out_err)?;
    }
    writeln!(
        out,
        "{:<19} {:>6} problems\nwrote {} in {:.1}s (pool of {} problems)",
        "eval.jsonl",
        corpus.eval.len(),
        out_dir.display(),
        start.elapsed().as_secs_f64(),
        corpus.pool.len()
    )
    .map_err(out_err)?;
    Ok(Outcome::Passed)
}
