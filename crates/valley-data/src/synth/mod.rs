//! The embedded default corpus: synthetic code-reasoning data generated in Rust, in the shape of
//! the paper's release (docs/design.md sections 1 and 4), deterministic for a seed.
//!
//! Problems are stdin/stdout list pipelines ([`family`], [`ops`]) with English statements
//! ([`statement`]), public examples and 10–20 hidden tests ([`hidden_tests`]); a teacher answers
//! each with a `<think>` trace and a Python solution ([`teacher`]), sometimes with a plausible
//! bug ([`noisy_teacher`]). The `correct` label is decided by **running** the teacher's code on
//! the tests ([`python_runner`]), never copied from whether a bug was injected. The seven subsets
//! ([`subsets`]) and an evaluation set in the LiveCodeBench shape (disjoint from every training
//! problem) are written as JSONL files with a `manifest.json`.
//!
//! Every problem draws from its own random stream, derived from the seed and the problem's place
//! (`train/17`, `pool/3`, `eval/5/0`), so the files are byte-identical for a seed.

pub mod family;
pub mod hidden_tests;
pub mod noisy_teacher;
pub mod ops;
pub mod python_runner;
pub mod statement;
pub mod subsets;
pub mod teacher;

use std::{
    collections::{BTreeMap, HashSet},
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use valley_plugin_api::SeedRng;

use self::{
    family::{random_spec, PipelineSpec},
    hidden_tests::{hidden_tests, public_examples, IoTest},
    noisy_teacher::{believe, Belief},
    python_runner::{passed_tests, ProgramJob, ProgramRunner, RunnerError},
    subsets::{Draw, SUBSETS},
};
use crate::{
    problems::{write_eval_jsonl, EvalProblem, TestCase, TestKind},
    records::{write_training_jsonl, TrainingRecord},
};

/// Bumped whenever the generator's output changes for a seed; cache directories carry it.
pub const GENERATOR_VERSION: u32 = 1;

/// What to generate: the `[data] synth` table of an experiment and the flags of `valley data
/// synth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthRequest {
    /// Training problems (the size of `train_30k`; the other subsets scale with it).
    pub train: usize,
    /// Evaluation problems.
    pub eval: usize,
    /// The seed.
    pub seed: u64,
}

impl SynthRequest {
    /// The cache directory name of this request: `synth-s<seed>-t<train>-e<eval>-v<version>`.
    pub fn cache_name(&self) -> String {
        format!(
            "synth-s{}-t{}-e{}-v{GENERATOR_VERSION}",
            self.seed, self.train, self.eval
        )
    }
}

/// Why the corpus could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Running the programs failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The generator's own check failed: a faithful solution failed its tests, or the pool could
    /// not supply a subset. Either is a bug of the generator, not of the data.
    #[error("synthetic corpus self-check: {0}")]
    SelfCheck(String),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One generated problem with the teacher's answer.
struct Item {
    id: String,
    spec: PipelineSpec,
    statement: String,
    tests: Vec<IoTest>,
    public: usize,
    belief: Belief,
    response: String,
}

fn make_item(seed: u64, id: String, stream: &str, with_teacher: bool) -> Item {
    let mut rng = SeedRng::derive(seed, &format!("synth/{stream}"));
    let level = rng.below(5) as usize;
    let spec = random_spec(&mut rng, level);
    let examples = public_examples(&spec, &mut rng);
    let hidden = hidden_tests(&spec, &mut rng);
    let statement = statement::statement(&spec, &examples);
    let (belief, response) = if with_teacher {
        let belief = believe(&spec, &mut rng);
        let response = teacher::response(&spec, &belief, &examples);
        (belief, response)
    } else {
        (Belief::faithful(&spec), String::new())
    };
    let public = examples.len();
    let mut tests = examples;
    tests.extend(hidden);
    Item {
        id,
        spec,
        statement,
        tests,
        public,
        belief,
        response,
    }
}

fn job(item: &Item) -> ProgramJob {
    ProgramJob {
        code: teacher::python_solution(&item.belief),
        inputs: item.tests.iter().map(|t| t.input.clone()).collect(),
    }
}

/// Runs every item's code; returns the number of tests each passed.
fn run_items(items: &[Item], runner: &dyn ProgramRunner) -> Result<Vec<usize>, SynthError> {
    let jobs: Vec<ProgramJob> = items.iter().map(job).collect();
    let runs = runner.run_programs(&jobs)?;
    let mut passed = Vec::with_capacity(items.len());
    for (item, run) in items.iter().zip(&runs) {
        let expected: Vec<String> = item.tests.iter().map(|t| t.output.clone()).collect();
        let n = passed_tests(run, &expected);
        if item.belief.bug.is_none() && n != item.tests.len() {
            let first = run
                .tests
                .iter()
                .zip(&item.tests)
                .find(|(r, t)| {
                    r.error.is_some()
                        || python_runner::normalized_lines(&r.stdout)
                            != python_runner::normalized_lines(&t.output)
                })
                .map(|(r, t)| {
                    format!(
                        "input {:?}: want {:?}, got {:?} ({:?})",
                        t.input, t.output, r.stdout, r.error
                    )
                });
            return Err(SynthError::SelfCheck(format!(
                "{}: the faithful solution passed {n} of {} tests ({}); spec {:?}",
                item.id,
                item.tests.len(),
                first.or(run.compile_error.clone()).unwrap_or_default(),
                item.spec
            )));
        }
        passed.push(n);
    }
    Ok(passed)
}

fn record(item: &Item, passed: usize, pool: &str) -> TrainingRecord {
    let mut meta = Map::new();
    meta.insert("family".into(), json!("list-pipeline"));
    meta.insert("pool".into(), json!(pool));
    meta.insert("steps".into(), json!(item.spec.ops.len()));
    meta.insert(
        "bug".into(),
        item.belief.bug.map_or(Value::Null, |b| json!(b.name())),
    );
    meta.insert("tests_passed".into(), json!(passed));
    meta.insert("tests_total".into(), json!(item.tests.len()));
    meta.insert("public_tests".into(), json!(item.public));
    meta.insert(
        "input_output".into(),
        json!({
            "inputs": item.tests.iter().map(|t| &t.input).collect::<Vec<_>>(),
            "outputs": item.tests.iter().map(|t| &t.output).collect::<Vec<_>>(),
        }),
    );
    meta.insert("tags".into(), json!(["synth", pool]));
    TrainingRecord {
        id: item.id.clone(),
        problem: item.statement.clone(),
        response: item.response.clone(),
        difficulty: item.spec.label().to_string(),
        difficulty_rank: item.spec.level as f64,
        correct: Some(passed == item.tests.len()),
        source: "valley-synth".into(),
        meta,
    }
}

/// A civil date `days` after 2024-01-01 (for the evaluation set's contest dates).
fn date_after_2024(days: u64) -> String {
    let (mut y, mut d) = (2024u64, days);
    loop {
        let len = if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
            366
        } else {
            365
        };
        if d < len {
            break;
        }
        d -= len;
        y += 1;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut m = 0;
    while d >= months[m] {
        d -= months[m];
        m += 1;
    }
    format!("{y:04}-{:02}-{:02}", m + 1, d + 1)
}

/// The generated corpus, in memory.
pub struct Corpus {
    /// The request.
    pub request: SynthRequest,
    /// Training records in the nested permutation's order (`train_30k`).
    pub train: Vec<TrainingRecord>,
    /// The separate pool, in generation order.
    pub pool: Vec<TrainingRecord>,
    /// Subsets by name: indices into `train` (prefixes) or `pool`.
    pub subsets: Vec<(&'static str, usize, Vec<usize>)>,
    /// The evaluation set.
    pub eval: Vec<EvalProblem>,
}

impl Corpus {
    /// The records of a subset, in file order.
    pub fn subset(&self, name: &str) -> Option<Vec<&TrainingRecord>> {
        let (_, _, idx) = self.subsets.iter().find(|(n, _, _)| *n == name)?;
        let def = SUBSETS.iter().find(|d| d.name == name)?;
        let from = if def.draw == Draw::TrainPrefix {
            &self.train
        } else {
            &self.pool
        };
        Some(idx.iter().map(|&i| &from[i]).collect())
    }
}

/// Generates the corpus, running every teacher solution with `runner`.
///
/// # Errors
/// [`SynthError::Runner`] when programs cannot be run, [`SynthError::SelfCheck`] when the
/// generator contradicts itself.
pub fn generate(request: &SynthRequest, runner: &dyn ProgramRunner) -> Result<Corpus, SynthError> {
    let seed = request.seed;
    let n = request.train;
    let pool_target = subsets::scaled(subsets::PAPER_POOL, n);
    let need = |name: &str| {
        SUBSETS
            .iter()
            .find(|d| d.name == name)
            .map_or(0, |d| subsets::scaled(d.paper_size, n))
    };

    tracing::info!("generating {n} training problems and a pool of {pool_target}");
    let train_items: Vec<Item> = (0..n)
        .map(|i| {
            make_item(
                seed,
                format!("synth{seed}-train-{i:05}"),
                &format!("train/{i}"),
                true,
            )
        })
        .collect();
    let mut pool_items: Vec<Item> = (0..pool_target)
        .map(|i| {
            make_item(
                seed,
                format!("synth{seed}-pool-{i:05}"),
                &format!("pool/{i}"),
                true,
            )
        })
        .collect();
    // Train and the first pool batch in one call: the workers stay busy.
    let mut all: Vec<Item> = train_items;
    let n_train = all.len();
    all.append(&mut pool_items);
    tracing::info!("generated {} problems", all.len());
    let mut passed = run_items(&all, runner)?;
    tracing::info!("ran {} programs", all.len());
    let mut pool_items = all.split_off(n_train);
    let train_items = all;
    let mut pool_passed = passed.split_off(n_train);
    let train_passed = passed;

    // Grow the pool until every pool subset can be filled (the paper's pool held enough of each).
    let counts = |items: &[Item], passed: &[usize]| {
        let mut c = BTreeMap::new();
        for (item, &p) in items.iter().zip(passed) {
            for d in [Draw::Correct, Draw::Incorrect, Draw::Easy, Draw::Hard] {
                if subsets::qualifies(d, p == item.tests.len(), item.spec.level) {
                    *c.entry(format!("{d:?}")).or_insert(0usize) += 1;
                }
            }
        }
        c
    };
    let wanted = [
        ("Correct", need("correct_6k")),
        ("Incorrect", need("incorrect_6k")),
        ("Easy", need("easy_4k")),
        ("Hard", need("hard_4k")),
    ];
    let mut rounds = 0;
    loop {
        let c = counts(&pool_items, &pool_passed);
        let short: Vec<String> = wanted
            .iter()
            .filter(|(k, want)| c.get(*k).copied().unwrap_or(0) < *want)
            .map(|(k, want)| format!("{k} {} < {want}", c.get(*k).copied().unwrap_or(0)))
            .collect();
        if short.is_empty() {
            break;
        }
        rounds += 1;
        if rounds > 40 {
            return Err(SynthError::SelfCheck(format!(
                "the pool of {} problems still lacks records: {}",
                pool_items.len(),
                short.join(", ")
            )));
        }
        // Enough for the largest shortfall at the rates seen so far, plus a tenth.
        let extra_needed = wanted
            .iter()
            .map(|(k, want)| {
                let have = c.get(*k).copied().unwrap_or(0);
                let rate = (have as f64 / pool_items.len().max(1) as f64).max(0.02);
                (want.saturating_sub(have) as f64 / rate * 1.1) as usize
            })
            .max()
            .unwrap_or(0)
            .max(16);
        let start = pool_items.len();
        let extra: Vec<Item> = (start..start + extra_needed)
            .map(|i| {
                make_item(
                    seed,
                    format!("synth{seed}-pool-{i:05}"),
                    &format!("pool/{i}"),
                    true,
                )
            })
            .collect();
        pool_passed.extend(run_items(&extra, runner)?);
        pool_items.extend(extra);
    }

    // The evaluation set: problems whose question no training or pool problem asks.
    let mut taken: HashSet<String> = train_items
        .iter()
        .chain(&pool_items)
        .map(|i| i.spec.signature())
        .collect();
    let mut eval_items = Vec::with_capacity(request.eval);
    for i in 0..request.eval {
        let mut attempt = 0;
        let item = loop {
            let item = make_item(
                seed,
                format!("synth{seed}-eval-{i:04}"),
                &format!("eval/{i}/{attempt}"),
                false,
            );
            if taken.insert(item.spec.signature()) {
                break item;
            }
            attempt += 1;
        };
        eval_items.push(item);
    }
    // Every reference solution must pass its own tests (run_items checks faithful beliefs).
    run_items(&eval_items, runner)?;
    tracing::info!(
        "pool of {} and {} evaluation problems ready",
        pool_items.len(),
        eval_items.len()
    );

    let train: Vec<TrainingRecord> = {
        let order = subsets::training_permutation(n, seed);
        order
            .iter()
            .map(|&i| record(&train_items[i], train_passed[i], "train"))
            .collect()
    };
    let pool: Vec<TrainingRecord> = pool_items
        .iter()
        .zip(&pool_passed)
        .map(|(item, &p)| record(item, p, "pool"))
        .collect();
    let mut subset_list = Vec::new();
    for def in SUBSETS {
        let size = subsets::scaled(def.paper_size, n);
        let idx = if def.draw == Draw::TrainPrefix {
            (0..size.min(train.len())).collect()
        } else {
            let eligible: Vec<usize> = pool_items
                .iter()
                .zip(&pool_passed)
                .enumerate()
                .filter(|(_, (item, &p))| {
                    subsets::qualifies(def.draw, p == item.tests.len(), item.spec.level)
                })
                .map(|(i, _)| i)
                .collect();
            subsets::draw(&eligible, size, seed, def.name)
        };
        subset_list.push((def.name, def.paper_size, idx));
    }
    let eval = eval_items
        .iter()
        .enumerate()
        .map(|(i, item)| EvalProblem {
            id: item.id.clone(),
            statement: item.statement.clone(),
            starter_code: String::new(),
            difficulty: item.spec.label().to_string(),
            platform: "valley-synth".into(),
            date: date_after_2024(i as u64 % 730),
            tests: item
                .tests
                .iter()
                .enumerate()
                .map(|(j, t)| TestCase {
                    input: t.input.clone(),
                    output: t.output.clone(),
                    kind: TestKind::Stdin,
                    public: j < item.public,
                })
                .collect(),
            fn_name: None,
            meta: {
                let mut m = Map::new();
                m.insert("difficulty_rank".into(), json!(item.spec.level));
                m.insert("steps".into(), json!(item.spec.ops.len()));
                m
            },
        })
        .collect();
    Ok(Corpus {
        request: *request,
        train,
        pool,
        subsets: subset_list,
        eval,
    })
}

fn level_histogram<'a>(records: impl IntoIterator<Item = &'a TrainingRecord>) -> Value {
    let mut h: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    for r in records {
        let e = h
            .entry(r.difficulty_rank as usize)
            .or_insert_with(|| (r.difficulty.clone(), 0));
        e.1 += 1;
    }
    Value::Object(
        h.into_values()
            .map(|(label, count)| (label, json!(count)))
            .collect(),
    )
}

/// The manifest: the request, every file with the paper's label and size and the actual count,
/// the pool's labels and the bug counts.
pub fn manifest(corpus: &Corpus) -> Value {
    let files: Vec<Value> = corpus
        .subsets
        .iter()
        .map(|(name, paper, idx)| {
            let recs = corpus.subset(name).unwrap_or_default();
            let correct = recs.iter().filter(|r| r.correct == Some(true)).count();
            json!({
                "name": name, "file": format!("{name}.jsonl"), "paper_size": paper,
                "records": idx.len(), "correct": correct, "incorrect": idx.len() - correct,
                "difficulty": level_histogram(recs.iter().copied()),
            })
        })
        .collect();
    let mut bugs: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in corpus.train.iter().chain(&corpus.pool) {
        let name = r.meta["bug"].as_str().unwrap_or("none").to_string();
        let e = bugs.entry(name).or_default();
        e.0 += 1;
        if r.correct == Some(false) {
            e.1 += 1;
        }
    }
    json!({
        "generator": "valley-synth",
        "generator_version": GENERATOR_VERSION,
        "request": corpus.request,
        "note": "sizes scale with `train`: a subset the paper calls k holds round(k * train / 30000) records (at least 1); names keep the paper's labels. `correct` comes from running each solution on its tests.",
        "subsets": files,
        "pool": {
            "records": corpus.pool.len(),
            "correct": corpus.pool.iter().filter(|r| r.correct == Some(true)).count(),
            "difficulty": level_histogram(&corpus.pool),
        },
        "bugs": bugs.into_iter().map(|(k, (n, failed))| (k, json!({"records": n, "failed_tests": failed}))).collect::<Map<_, _>>(),
        "eval": { "file": "eval.jsonl", "problems": corpus.eval.len(), "shape": "LiveCodeBench (valley EvalProblem)" },
    })
}

fn write_file(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), SynthError> {
    let io = |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    f(&mut w).map_err(io)?;
    w.flush().map_err(io)
}

/// Writes the corpus into `dir` (created if needed): one JSONL file per subset, `eval.jsonl` and
/// `manifest.json`.
///
/// # Errors
/// [`SynthError::Io`] naming the file.
pub fn write_corpus(corpus: &Corpus, dir: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(dir).map_err(|source| SynthError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (name, _, _) in &corpus.subsets {
        let recs = corpus.subset(name).unwrap_or_default();
        write_file(&dir.join(format!("{name}.jsonl")), |w| {
            write_training_jsonl(w, recs.iter().copied())
        })?;
    }
    write_file(&dir.join("eval.jsonl"), |w| {
        write_eval_jsonl(w, &corpus.eval)
    })?;
    write_file(&dir.join("manifest.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &manifest(corpus))?;
        w.write_all(b"\n")
    })
}

/// The directory of a cached corpus under `cache_root`, generating it first when it is not
/// there. Generation writes into a temporary sibling and renames it, so concurrent callers and
/// interrupted runs never see half a corpus.
///
/// # Errors
/// As [`generate`] and [`write_corpus`].
pub fn ensure_cached(
    request: &SynthRequest,
    cache_root: &Path,
    runner: &dyn ProgramRunner,
) -> Result<PathBuf, SynthError> {
    let dir = cache_root.join(request.cache_name());
    if dir.join("manifest.json").is_file() {
        return Ok(dir);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    std::fs::create_dir_all(cache_root).map_err(io(cache_root))?;
    tracing::info!("generating the synthetic corpus into {}", dir.display());
    let corpus = generate(request, runner)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}-", request.cache_name()))
        .tempdir_in(cache_root)
        .map_err(io(cache_root))?;
    write_corpus(&corpus, tmp.path())?;
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        // Another process finished first: use its corpus (same seed, same bytes).
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join("manifest.json").is_file() {
            return Err(io(&dir)(e));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_from_2024() {
        assert_eq!(date_after_2024(0), "2024-01-01");
        assert_eq!(date_after_2024(59), "2024-02-29");
        assert_eq!(date_after_2024(366), "2025-01-01");
        assert_eq!(date_after_2024(730), "2025-12-31"); // 366 days of 2024 + 364
    }
}
