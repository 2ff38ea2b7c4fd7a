//! Where an experiment's training records come from: a file (`[data] train`) or the generated
//! corpus (`[data] synth`), which is generated on first use into a cache directory and read from
//! there afterwards.
//!
//! ```toml
//! [data]
//! synth = { train = 300, eval = 100, seed = 1 }   # valley data synth, cached
//! subset = "train_30k"                            # which of the seven subsets (the default)
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

use crate::{
    error::{Error, Result},
    experiment::DataSection,
    hf_hub::{HubCache, HubFile},
    records::{read_training_jsonl, RecordSet},
    sources::read_training_preset,
    synth::{ensure_cached, python_runner::BatchedPython, subsets::SUBSETS, SynthRequest},
};

/// The default cache of generated corpora, relative to the current directory.
pub const DEFAULT_CACHE_DIR: &str = ".valley/data";
/// The subset an experiment trains on when `[data] subset` is absent.
pub const DEFAULT_SUBSET: &str = "train_30k";

/// Checks the `[data]` section: exactly one of `train` and `synth`; `subset` and `cache_dir`
/// only with `synth`, and `subset` one of the seven names.
///
/// # Errors
/// [`Error::Config`] naming the key.
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
    if data.preset.is_some() && data.train.is_none() {
        return Err("`data.preset` reads `data.train` in a dataset's shape: set `train`".into());
    }
    if data.columns.is_some() && data.preset.is_none() {
        return Err("`data.columns` renames a preset's columns: set `data.preset` too".into());
    }
    if let Some(subset) = &data.subset {
        if !SUBSETS.iter().any(|d| d.name == subset) {
            return Err(format!(
                "`data.subset = \"{subset}\"` is not a subset of the generated corpus (known: {})",
                SUBSETS.map(|d| d.name).join(", ")
            ));
        }
    }
    Ok(())
}

/// The synthetic corpus's directory for a `[data] synth` section, generated if not cached.
///
/// # Errors
/// [`Error::Config`] when the corpus cannot be generated (Python missing, say).
pub fn synth_dir(request: &SynthRequest, cache_dir: Option<&Path>) -> Result<PathBuf> {
    let root = cache_dir.map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), Path::to_path_buf);
    // Absolute, so that the cells' config.json names the file wherever it is read from.
    let root = std::path::absolute(&root).unwrap_or(root);
    ensure_cached(request, &root, &BatchedPython::default())
        .map_err(|e| Error::Config(format!("data.synth: {e}")))
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
                .map_err(|e| Error::Config(format!("data.train: {e}")))?;
            HubCache::from_env()
                .get(&file)
                .map_err(|e| Error::Config(format!("data.train: {e}")))
        }
        (Some(path), _) => Ok(path.clone()),
        (None, Some(request)) => {
            let dir = synth_dir(request, data.cache_dir.as_deref())?;
            let subset = data.subset.as_deref().unwrap_or(DEFAULT_SUBSET);
            Ok(dir.join(format!("{subset}.jsonl")))
        }
        (None, None) => Err(Error::Config("`data` needs `train` or `synth`".to_string())),
    }
}

/// When the training data is a hub file the cache does not hold, what reading it would download:
/// `(hf:// source, download URL, cache directory, whether downloads are forbidden offline)`.
/// A dry run reports this instead of downloading.
///
/// # Errors
/// [`Error::Config`] when the `hf://` address does not parse.
pub fn uncached_hub_source(data: &DataSection) -> Result<Option<(String, String, PathBuf, bool)>> {
    let Some(path) = data.train.as_ref().filter(|p| p.starts_with("hf:")) else {
        return Ok(None);
    };
    let text = path.to_string_lossy().to_string();
    let file: HubFile = text
        .parse()
        .map_err(|e| Error::Config(format!("data.train: {e}")))?;
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
        (Some(path), _) => Ok(Some(path.clone())),
        (None, Some(request)) => Ok(Some(
            synth_dir(request, data.cache_dir.as_deref())?.join("eval.jsonl"),
        )),
        (None, None) => Ok(None),
    }
}

/// Reads the training records of a `[data]` section.
///
/// # Errors
/// As [`training_file`], and data errors naming file, line and field.
pub fn load_training(data: &DataSection) -> Result<RecordSet> {
    let path = training_file(data)?;
    if let Some(preset) = data.preset {
        // Presets read JSONL, Parquet or a directory of shards; a bad row is always an error.
        let records = read_training_preset(&path, preset, data.columns.as_ref())?;
        return Ok(RecordSet {
            path,
            records,
            skipped: Vec::new(),
        });
    }
    Ok(read_training_jsonl(&path, data.on_bad_row)?)
}
