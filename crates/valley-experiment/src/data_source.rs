//! Where an experiment's training records come from: a file (`[data] train`) or the generated
//! corpus (`[data] synth`), which is generated on first use into a cache directory and read from
//! there afterwards.
//!
//! ```toml
//! [data]
//! synth = { train = 300, eval = 100, seed = 1 }   # valley data synth, cached
//! subset = "train_30k"                            # which of the seven subsets (the default);
//!                                                 # "correct_6k+incorrect_6k" joins several
//! # cache_dir = ".valley/data"                    # the default, relative to the current directory
//! ```
//!
//! or a dataset in its own shape, from a file, a directory of shards or the Hugging Face hub
//! (`hf://datasets/org/name@revision/path`, through the standard cache; `HF_HUB_OFFLINE=1`
//! never downloads):
//!
//! ```toml
//! [data]
//! train = "hf://datasets/BAAI/TACO@main/train"
//! preset = "taco"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use valley_data::{
    hf_hub::{HubCache, HubFile},
    problems::write_eval_jsonl,
    records::{read_training_jsonl, BadRowPolicy, RecordSet},
    sources::{
        humaneval::read_humaneval,
        livecodebench::{read_livecodebench_jsonl, DateWindow},
        read_training_preset, ColumnMap, EvalPreset, Preset,
    },
    synth::{ensure_cached, python_runner::BatchedPython, subsets::SUBSETS, SynthRequest},
};

use crate::{
    error::{Error, Result},
    fingerprint::config_hash,
};

/// The `[data]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training records (JSONL, plain or gzip), relative to the experiment file; or `synth`.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The generated corpus instead of a file (see `data_source`).
    #[serde(default)]
    pub synth: Option<SynthRequest>,
    /// Which subset of the generated corpus to train on (`train_30k` when absent).
    #[serde(default)]
    pub subset: Option<String>,
    /// Cache of generated corpora, relative to the current directory (`.valley/data`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Read `train` in a dataset's own shape (`taco`, `open-code-reasoning-2`, `collinear`).
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The preset's columns, renamed (see `valley data inspect`).
    #[serde(default)]
    pub columns: Option<ColumnMap>,
    /// Evaluation problems (the harness's problem JSONL), relative to the experiment file, or an
    /// `hf://` hub file.
    #[serde(default)]
    pub eval: Option<PathBuf>,
    /// Read `eval` in a benchmark's own shape: `livecodebench` (its release files; tests that
    /// may be base64 → zlib → pickle → JSON) or `humaneval` (`HumanEval.jsonl.gz`), converted
    /// once into the problem JSONL.
    #[serde(default)]
    pub eval_preset: Option<EvalPreset>,
    /// Keep LiveCodeBench problems whose contest date is on or after this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub eval_from: Option<String>,
    /// Keep LiveCodeBench problems whose contest date is on or before this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub eval_to: Option<String>,
    /// `error` (default) stops at the first bad row; `skip` skips and counts.
    #[serde(default)]
    pub on_bad_row: BadRowPolicy,
    /// Train on direct answers: each response cut to its last fenced code block (no `<think>`,
    /// no prose) — how the from-scratch student learns to answer before it learns to reason.
    #[serde(default)]
    pub direct: bool,
}

/// The default cache of generated corpora, relative to the current directory.
pub const DEFAULT_CACHE_DIR: &str = ".valley/data";
/// The subset an experiment trains on when `[data] subset` is absent.
pub const DEFAULT_SUBSET: &str = "train_30k";

/// Checks the `[data]` section: exactly one of `train` and `synth`; `subset` and `cache_dir`
/// only with `synth`, and `subset` one of the seven names.
///
/// # Errors
/// [`Error::DataSection`] naming the key.
pub fn validate(data: &DataSection) -> std::result::Result<(), String> {
    match (&data.train, &data.synth) {
        (Some(_), Some(_)) => {
            return Err("`data.train` and `data.synth` are both set: use one".into())
        }
        (None, None) => return Err(
            "`data` needs `train = \"file.jsonl\"` or `synth = { train = N, eval = M, seed = S }`"
                .into(),
        ),
        _ => {}
    }
    if data.synth.is_none() {
        for (key, set) in [
            ("subset", data.subset.is_some()),
            ("cache_dir", data.cache_dir.is_some()),
        ] {
            if set {
                return Err(format!("`data.{key}` applies to `data.synth` only"));
            }
        }
    }
    if data.eval_preset.is_some() && data.eval.is_none() {
        return Err(
            "`data.eval_preset` reads `data.eval` in a benchmark's shape: set `eval`".into(),
        );
    }
    if (data.eval_from.is_some() || data.eval_to.is_some()) && data.eval_preset.is_none() {
        return Err(
            "`data.eval_from` / `data.eval_to` filter LiveCodeBench problems: set `eval_preset = \"livecodebench\"`"
                .into(),
        );
    }
    if data.preset.is_some() && data.train.is_none() {
        return Err("`data.preset` reads `data.train` in a dataset's shape: set `train`".into());
    }
    if data.columns.is_some() && data.preset.is_none() {
        return Err("`data.columns` renames a preset's columns: set `data.preset` too".into());
    }
    if let Some(subset) = &data.subset {
        for part in subset.split('+') {
            if !SUBSETS.iter().any(|d| d.name == part) {
                return Err(format!(
                    "`data.subset = \"{subset}\"`: `{part}` is not a subset of the generated corpus (known: {}; join several with `+`)",
                    SUBSETS.map(|d| d.name).join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The synthetic corpus's directory for a `[data] synth` section, generated if not cached.
///
/// # Errors
/// [`Error::DataSection`] when the corpus cannot be generated (Python missing, say).
pub fn synth_dir(request: &SynthRequest, cache_dir: Option<&Path>) -> Result<PathBuf> {
    let root = cache_dir.map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), Path::to_path_buf);
    // Absolute, so that the cells' config.json names the file wherever it is read from.
    let root = std::path::absolute(&root).unwrap_or(root);
    ensure_cached(request, &root, &BatchedPython::default())
        .map_err(|e| Error::data_section("data.synth", e))
}

/// Writes the union of `a+b+…` subsets of a generated corpus (records in the order of the
/// parts, a record in several parts once) beside them, through a temporary file.
fn join_subsets(dir: &Path, subset: &str, file: &Path) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    let mut joined = String::new();
    for part in subset.split('+') {
        let path = dir.join(format!("{part}.jsonl"));
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let id = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
                .unwrap_or_else(|| line.to_owned());
            if seen.insert(id) {
                joined.push_str(line);
                joined.push('\n');
            }
        }
    }
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, joined).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| Error::io(file, e))
}

/// The training file of a `[data]` section (generating the corpus first when needed).
///
/// # Errors
/// As [`synth_dir`].
pub fn training_file(data: &DataSection) -> Result<PathBuf> {
    match (&data.train, &data.synth) {
        (Some(path), _) if path.starts_with("hf:") => {
            let text = path.to_string_lossy();
            let file: HubFile = text
                .parse()
                .map_err(|e| Error::data_section("data.train", e))?;
            HubCache::from_env()
                .get(&file)
                .map_err(|e| Error::data_section("data.train", e))
        }
        (Some(path), _) => Ok(path.clone()),
        (None, Some(request)) => {
            let dir = synth_dir(request, data.cache_dir.as_deref())?;
            let subset = data.subset.as_deref().unwrap_or(DEFAULT_SUBSET);
            let file = dir.join(format!("{subset}.jsonl"));
            if subset.contains('+') && !file.is_file() {
                join_subsets(&dir, subset, &file)?;
            }
            Ok(file)
        }
        (None, None) => Err(Error::data_section("data", "needs `train` or `synth`")),
    }
}

/// When the training data is a hub file the cache does not hold, what reading it would download:
/// `(hf:// source, download URL, cache directory, whether downloads are forbidden offline)`.
/// A dry run reports this instead of downloading.
///
/// # Errors
/// [`Error::DataSection`] when the `hf://` address does not parse.
pub fn uncached_hub_source(data: &DataSection) -> Result<Option<(String, String, PathBuf, bool)>> {
    let Some(path) = data.train.as_ref().filter(|p| p.starts_with("hf:")) else {
        return Ok(None);
    };
    let text = path.to_string_lossy().to_string();
    let file: HubFile = text
        .parse()
        .map_err(|e| Error::data_section("data.train", e))?;
    let cache = HubCache::from_env();
    if cache.cached(&file).is_some() {
        return Ok(None);
    }
    Ok(Some((
        text,
        file.url(&cache.endpoint),
        cache.root,
        cache.offline,
    )))
}

/// The evaluation file of a `[data]` section: `eval`, else the generated corpus's `eval.jsonl`.
///
/// # Errors
/// As [`synth_dir`].
pub fn eval_file(data: &DataSection) -> Result<Option<PathBuf>> {
    match (&data.eval, &data.synth) {
        (Some(path), _) => {
            let source = if path.starts_with("hf:") {
                let text = path.to_string_lossy();
                let file: HubFile = text
                    .parse()
                    .map_err(|e| Error::data_section("data.eval", e))?;
                HubCache::from_env()
                    .get(&file)
                    .map_err(|e| Error::data_section("data.eval", e))?
            } else {
                path.clone()
            };
            match data.eval_preset {
                None => Ok(Some(source)),
                Some(preset) => convert_eval(data, preset, &source).map(Some),
            }
        }
        (None, Some(request)) => Ok(Some(
            synth_dir(request, data.cache_dir.as_deref())?.join("eval.jsonl"),
        )),
        (None, None) => Ok(None),
    }
}

/// Converts a benchmark's file (LiveCodeBench inside the date window, or HumanEval) into the
/// problem JSONL the evaluators read, once, cached under the data cache by the source's path,
/// size and window.
fn convert_eval(data: &DataSection, preset: EvalPreset, source: &Path) -> Result<PathBuf> {
    let root = data
        .cache_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));
    let len = std::fs::metadata(source)
        .map_err(|e| Error::io(source, e))?
        .len();
    let key = config_hash(&serde_json::json!({
        "source": source, "bytes": len, "from": data.eval_from, "to": data.eval_to,
        "preset": preset,
    }));
    let out = root.join(format!("eval-{key}.jsonl"));
    if out.is_file() {
        return Ok(std::path::absolute(&out).unwrap_or(out));
    }
    let mut bytes = Vec::new();
    match preset {
        EvalPreset::Livecodebench => {
            let window = DateWindow {
                from: data.eval_from.clone(),
                to: data.eval_to.clone(),
            };
            let problems = read_livecodebench_jsonl(source, &window)?;
            write_eval_jsonl(&mut bytes, &problems).map_err(|e| Error::io(&out, e))?;
        }
        EvalPreset::Humaneval => {
            for p in read_humaneval(source)? {
                let row = serde_json::json!({
                    "task_id": p.task_id, "prompt": p.prompt,
                    "canonical_solution": p.canonical_solution, "test": p.test,
                    "entry_point": p.entry_point,
                });
                bytes.extend_from_slice(row.to_string().as_bytes());
                bytes.push(b'\n');
            }
        }
    }
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
    Ok(std::path::absolute(&out).unwrap_or(out))
}

/// Reads the training records of a `[data]` section.
///
/// # Errors
/// As [`training_file`], and data errors naming file, line and field.
pub fn load_training(data: &DataSection) -> Result<RecordSet> {
    let path = training_file(data)?;
    let mut set = if let Some(preset) = data.preset {
        // Presets read JSONL, Parquet or a directory of shards; a bad row is always an error.
        let records = read_training_preset(&path, preset, data.columns.as_ref())?;
        RecordSet {
            path,
            records,
            skipped: Vec::new(),
        }
    } else {
        read_training_jsonl(&path, data.on_bad_row)?
    };
    if data.direct {
        for r in &mut set.records {
            r.response = direct_answer(&r.response);
        }
    }
    Ok(set)
}

/// A response cut to its answer: the last fenced code block, fenced again as Python (the whole
/// response when it has no block).
pub fn direct_answer(response: &str) -> String {
    let code = valley_judge::extract_code(response).trim_end();
    format!("```python\n{code}\n```")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> DataSection {
        toml::from_str(toml_text).unwrap()
    }

    /// A HumanEval file (gzip, as OpenAI ships it) given as `data.eval` with
    /// `eval_preset = "humaneval"` becomes the problem JSONL the evaluators read, once.
    #[test]
    fn a_humaneval_eval_set_is_converted_for_the_evaluators() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            r#"{"task_id": "HumanEval/0", "prompt": "def add(a, b):\n", "canonical_solution": "    return a + b\n", "test": "def check(f):\n    assert f(1, 2) == 3\n", "entry_point": "add"}"#,
            r#"{"task_id": "HumanEval/1", "prompt": "def neg(a):\n", "canonical_solution": "    return -a\n", "test": "def check(f):\n    assert f(1) == -1\n", "entry_point": "neg"}"#,
        ];
        let gz = dir.path().join("HumanEval.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, (rows.join("\n") + "\n").as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let data = section(&format!(
            "synth = {{ train = 10, eval = 2, seed = 1 }}\neval = {:?}\neval_preset = \"humaneval\"\ncache_dir = {:?}\n",
            gz.display().to_string(),
            dir.path().join("cache").display().to_string()
        ));
        validate(&data).unwrap();
        let converted = eval_file(&data).unwrap().unwrap();
        assert!(converted.starts_with(std::path::absolute(dir.path()).unwrap()));
        let problems =
            valley_judge::parse_problems(&std::fs::read_to_string(&converted).unwrap()).unwrap();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[1].id(), "HumanEval/1");
        // The same section again reads the cached conversion.
        assert_eq!(eval_file(&data).unwrap().unwrap(), converted);
    }

    #[test]
    fn eval_settings_without_their_file_or_preset_are_refused_by_name() {
        let no_file = section(
            "synth = { train = 10, eval = 2, seed = 1 }\neval_preset = \"livecodebench\"\n",
        );
        assert!(validate(&no_file).unwrap_err().contains("data.eval_preset"));
        let no_preset = section("synth = { train = 10, eval = 2, seed = 1 }\neval = \"x.jsonl\"\neval_from = \"2024-01-01\"\n");
        assert!(validate(&no_preset).unwrap_err().contains("eval_from"));
    }
}
