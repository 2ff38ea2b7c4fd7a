//! `valley data stats`: the numbers a researcher checks before training: rows, difficulty
//! histogram, correctness, length percentiles, duplicates.

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead, Write},
};

use serde_json::Value;
use valley_data::{read_eval_jsonl, read_training_jsonl, sources::open_jsonl, BadRowPolicy};
use valley_experiment::Result;

use super::super::{out_err, Outcome};
use crate::cli::SourceArgs;

/// The `q`-quantile (nearest rank) of sorted values.
fn percentile(sorted: &[usize], q: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `valley data stats SOURCE`: rows, difficulty histogram, correct/incorrect counts, length
/// percentiles (bytes of problem + response until a tokenizer is configured) and duplicates, for
/// a training-record file; evaluation-problem files (with `statement` and `tests`) get rows,
/// difficulty and test counts.
///
/// # Errors
/// Data errors naming file, line and field.
pub fn run(args: &SourceArgs, out: &mut dyn Write) -> Result<Outcome> {
    let source = args.source.as_path();
    let first: Option<Value> = open_jsonl(source)?
        .lines()
        .map_while(std::result::Result::ok)
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(&l).ok());
    let is_eval = first
        .as_ref()
        .is_some_and(|v| v.get("statement").is_some() && v.get("tests").is_some());
    let w = |e| out_err(e);
    if is_eval {
        let problems = read_eval_jsonl(source)?;
        let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &problems {
            *hist.entry(p.difficulty.as_str()).or_default() += 1;
        }
        let mut tests: Vec<usize> = problems.iter().map(|p| p.tests.len()).collect();
        tests.sort_unstable();
        writeln!(
            out,
            "{}: {} evaluation problems",
            source.display(),
            problems.len()
        )
        .map_err(w)?;
        writeln!(out, "difficulty:").map_err(w)?;
        for (label, n) in hist {
            writeln!(out, "  {label:<14} {n:>7}").map_err(w)?;
        }
        writeln!(
            out,
            "tests per problem: min {} p50 {} max {}",
            tests.first().unwrap_or(&0),
            percentile(&tests, 0.5),
            tests.last().unwrap_or(&0)
        )
        .map_err(w)?;
        return Ok(Outcome::Passed);
    }
    let set = read_training_jsonl(source, BadRowPolicy::Skip)?;
    let n = set.records.len();
    writeln!(
        out,
        "{}: {n} rows, {} bad rows skipped",
        source.display(),
        set.skipped.len()
    )
    .map_err(w)?;
    let mut hist: BTreeMap<(i64, String), usize> = BTreeMap::new();
    for r in &set.records {
        *hist
            .entry(((r.difficulty_rank * 1000.0) as i64, r.difficulty.clone()))
            .or_default() += 1;
    }
    writeln!(out, "difficulty (label, rank, rows, share):").map_err(w)?;
    for ((rank, label), count) in &hist {
        writeln!(
            out,
            "  {label:<14} {:>5} {count:>7} {:>6.1}%",
            *rank as f64 / 1000.0,
            100.0 * *count as f64 / n.max(1) as f64
        )
        .map_err(w)?;
    }
    let correct = set
        .records
        .iter()
        .filter(|r| r.correct == Some(true))
        .count();
    let incorrect = set
        .records
        .iter()
        .filter(|r| r.correct == Some(false))
        .count();
    writeln!(
        out,
        "correct: {correct}  incorrect: {incorrect}  unlabeled: {}",
        n - correct - incorrect
    )
    .map_err(w)?;
    let mut lengths: Vec<usize> = set
        .records
        .iter()
        .map(|r| r.problem.len() + r.response.len())
        .collect();
    lengths.sort_unstable();
    writeln!(
        out,
        "length in bytes (problem + response; no tokenizer configured): min {} p50 {} p90 {} p99 {} max {} total {}",
        lengths.first().unwrap_or(&0),
        percentile(&lengths, 0.5),
        percentile(&lengths, 0.9),
        percentile(&lengths, 0.99),
        lengths.last().unwrap_or(&0),
        lengths.iter().sum::<usize>()
    )
    .map_err(w)?;
    let dupes = |key: &dyn Fn(&valley_data::TrainingRecord) -> String| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in &set.records {
            *seen.entry(key(r)).or_default() += 1;
        }
        seen.values().map(|c| c - 1).sum::<usize>()
    };
    writeln!(
        out,
        "duplicates: {} identical problem+response, {} repeated problems",
        dupes(&|r| format!("{}\u{0}{}", r.problem, r.response)),
        dupes(&|r| r.problem.clone())
    )
    .map_err(w)?;
    Ok(Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<usize> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.5), 5);
        assert_eq!(percentile(&v, 0.9), 9);
        assert_eq!(percentile(&v, 0.99), 10);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
