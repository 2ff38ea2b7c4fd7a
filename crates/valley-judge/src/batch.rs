//! Judging many samples: a queue of (problem, sample) jobs shared by parallel workers (one
//! sandbox slot each), per-sample rows for the verdicts file, and pass@k overall and by
//! difficulty.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

use serde::Serialize;

use crate::{
    extract::extract_code, judge_compared, pass_at_k::pass_at_k, JudgeConfig, Judged, Problem,
    Runner, Verdict,
};

/// The error a [`Runner`] gave, boxed so that one error type serves every runner.
pub type RunnerError = Box<dyn std::error::Error + Send + Sync>;

/// What stops a batch.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// Generations name a problem the problems file lacks.
    #[error("generations name problem `{0}`, which is not in the problems file")]
    UnknownProblem(String),
    /// A generations file names a problem the problems file lacks.
    #[error("{}: problem `{id}` is not in {}", generations.display(), problems.display())]
    UnknownId {
        /// The id.
        id: String,
        /// The generations file.
        generations: std::path::PathBuf,
        /// The problems file.
        problems: std::path::PathBuf,
    },
    /// The runner (the sandbox) failed: not a program, the machinery.
    #[error(transparent)]
    Runner(RunnerError),
}

/// One judged sample, a row of the verdicts file.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRow {
    /// Problem id.
    pub id: String,
    /// Index of the completion within the problem's list.
    pub sample: usize,
    /// The problem's difficulty label.
    pub difficulty: String,
    /// Solved (every test passed).
    pub passed: bool,
    /// The verdict and its details.
    #[serde(flatten)]
    pub judged: Judged,
    /// The same sample under the other rule set, when it was judged under both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<OtherRules>,
}

/// A sample's verdict under the other rule set.
#[derive(Debug, Clone, Serialize)]
pub struct OtherRules {
    /// The rule set.
    pub rules: String,
    /// Solved under it.
    pub passed: bool,
    /// Its verdict.
    pub verdict: Verdict,
    /// Its first failing test.
    pub failed_test: Option<usize>,
    /// Why.
    pub detail: String,
}

impl OtherRules {
    /// From the other judging.
    pub fn of(j: &Judged) -> Self {
        OtherRules {
            rules: j.rules.clone(),
            passed: j.verdict == Verdict::Pass,
            verdict: j.verdict,
            failed_test: j.failed_test,
            detail: j.detail.clone(),
        }
    }
}

/// pass@1 under each rule set over the samples judged under both, and how many samples they
/// disagree on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RulesComparison {
    /// The rule set the verdicts (and pass@k) are under.
    pub rules: String,
    /// pass@1 under it, over the compared samples' problems.
    pub pass_at_1: f64,
    /// The other rule set.
    pub other: String,
    /// pass@1 under the other.
    pub other_pass_at_1: f64,
    /// Samples judged under both.
    pub samples: usize,
    /// Samples solved under `rules` and not under `other`.
    pub only_rules: usize,
    /// Samples solved under `other` and not under `rules`.
    pub only_other: usize,
    /// Samples whose verdict (class or first failing test) differs.
    pub verdicts_differ: usize,
}

impl RulesComparison {
    /// Samples solved under one rule set and not the other.
    pub fn differ(&self) -> usize {
        self.only_rules + self.only_other
    }
}

/// Compares the rule sets over rows judged under both; `None` when none was.
pub fn compare_rules(rows: &[SampleRow]) -> Option<RulesComparison> {
    let both: Vec<(&SampleRow, &OtherRules)> = rows
        .iter()
        .filter_map(|r| r.other.as_ref().map(|o| (r, o)))
        .collect();
    let (first, other) = both.first()?;
    // (n, c, c_other) per problem.
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (r, o) in &both {
        let e = per.entry(r.id.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(r.passed);
        e.2 += usize::from(o.passed);
    }
    let mean = |pick: &dyn Fn(&(usize, usize, usize)) -> usize| {
        let vals: Vec<f64> = per
            .values()
            .filter_map(|t| pass_at_k(t.0, pick(t), 1))
            .collect();
        vals.iter().sum::<f64>() / vals.len().max(1) as f64
    };
    Some(RulesComparison {
        rules: first.judged.rules.clone(),
        pass_at_1: mean(&|t| t.1),
        other: other.rules.clone(),
        other_pass_at_1: mean(&|t| t.2),
        samples: both.len(),
        only_rules: both.iter().filter(|(r, o)| r.passed && !o.passed).count(),
        only_other: both.iter().filter(|(r, o)| !r.passed && o.passed).count(),
        verdicts_differ: both
            .iter()
            .filter(|(r, o)| r.judged.verdict != o.verdict || r.judged.failed_test != o.failed_test)
            .count(),
    })
}

/// pass@k over a set of problems.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PassAtK {
    /// k.
    pub k: usize,
    /// Mean over the problems with at least k samples.
    pub value: f64,
    /// How many problems that mean is over.
    pub problems: usize,
}

/// The batch's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every sample, in problem then sample order.
    pub rows: Vec<SampleRow>,
    /// pass@k over every problem with generations.
    pub overall: Vec<PassAtK>,
    /// pass@k per difficulty label.
    pub by_difficulty: BTreeMap<String, Vec<PassAtK>>,
    /// Problems that had no generations (not counted).
    pub without_generations: Vec<String>,
    /// Count of each verdict.
    pub verdicts: BTreeMap<String, usize>,
    /// pass@1 under both rule sets, when the samples were judged under both.
    pub rules: Option<RulesComparison>,
}

/// Judges every completion of `generations` against `problems` on `workers` threads.
///
/// # Errors
/// [`JudgeError::UnknownProblem`] before any work when an id is unknown; the first sandbox error.
pub fn judge_all<R>(
    runner: &R,
    config: &JudgeConfig,
    problems: &[Problem],
    generations: &[(String, Vec<String>)],
    ks: &[usize],
    workers: usize,
) -> Result<Report, JudgeError>
where
    R: Runner + Sync,
    R::Error: std::error::Error + Send + Sync + 'static,
{
    let by_id: HashMap<&str, &Problem> = problems.iter().map(|p| (p.id(), p)).collect();
    let mut jobs = Vec::new();
    for (id, completions) in generations {
        let problem = by_id
            .get(id.as_str())
            .ok_or_else(|| JudgeError::UnknownProblem(id.clone()))?;
        for (i, c) in completions.iter().enumerate() {
            jobs.push((*problem, i, c.as_str()));
        }
    }
    let next = AtomicUsize::new(0);
    // One slot per job, filled by whichever worker judged it.
    type Slots<E> = Mutex<Vec<Option<Result<(Judged, Option<Judged>), E>>>>;
    let results: Slots<R::Error> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some((problem, _, completion)) = jobs.get(j) else {
                    break;
                };
                let r = judge_compared(runner, config, problem, extract_code(completion));
                let failed = r.is_err();
                results.lock().unwrap_or_else(|e| e.into_inner())[j] = Some(r);
                if failed {
                    // Stop handing out work: the machinery is broken, not a program.
                    next.store(jobs.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let mut rows = Vec::with_capacity(jobs.len());
    for ((problem, sample, _), r) in jobs
        .iter()
        .zip(results.into_inner().unwrap_or_else(|e| e.into_inner()))
    {
        let Some(r) = r else { continue };
        let (judged, other) = r.map_err(|e| JudgeError::Runner(Box::new(e)))?;
        rows.push(SampleRow {
            id: problem.id().to_string(),
            sample: *sample,
            difficulty: problem.difficulty().to_string(),
            passed: judged.verdict == Verdict::Pass,
            judged,
            other: other.as_ref().map(OtherRules::of),
        });
    }
    Ok(summarize(rows, problems, ks))
}

/// pass@k overall and by difficulty from judged rows.
pub fn summarize(rows: Vec<SampleRow>, problems: &[Problem], ks: &[usize]) -> Report {
    // (n, c, difficulty) per problem, in problem order.
    let mut counts: Vec<(String, usize, usize, String)> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut verdicts = BTreeMap::new();
    for r in &rows {
        *verdicts
            .entry(
                serde_json::to_value(r.judged.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
            .or_insert(0) += 1;
        let i = *at.entry(r.id.as_str()).or_insert_with(|| {
            counts.push((r.id.clone(), 0, 0, r.difficulty.clone()));
            counts.len() - 1
        });
        counts[i].1 += 1;
        counts[i].2 += usize::from(r.passed);
    }
    let mean = |filter: &dyn Fn(&str) -> bool, k: usize| -> PassAtK {
        let vals: Vec<f64> = counts
            .iter()
            .filter(|c| filter(&c.3))
            .filter_map(|&(_, n, c, _)| pass_at_k(n, c, k))
            .collect();
        PassAtK {
            k,
            value: if vals.is_empty() {
                0.0
            } else {
                vals.iter().sum::<f64>() / vals.len() as f64
            },
            problems: vals.len(),
        }
    };
    let overall = ks.iter().map(|&k| mean(&|_| true, k)).collect();
    let mut by_difficulty = BTreeMap::new();
    for d in counts
        .iter()
        .map(|c| c.3.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let v = ks.iter().map(|&k| mean(&|x| x == d, k)).collect();
        by_difficulty.insert(d, v);
    }
    let judged: std::collections::HashSet<&str> = counts.iter().map(|c| c.0.as_str()).collect();
    let without_generations = problems
        .iter()
        .map(Problem::id)
        .filter(|id| !judged.contains(id))
        .map(str::to_string)
        .collect();
    let rules = compare_rules(&rows);
    Report {
        rows,
        overall,
        by_difficulty,
        without_generations,
        verdicts,
        rules,
    }
}
