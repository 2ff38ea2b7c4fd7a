//! Checkpoints in the Hugging Face layout: `config.json` plus `model.safetensors` (or shards listed
//! in `model.safetensors.index.json`), so that other tools load ours and we load theirs.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{model::parameter_shapes, Error, ModelConfig, Result};

fn file_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Saves `config.json` and `model.safetensors` into `dir`, each weight in its own dtype.
///
/// # Errors
/// I/O errors naming the file.
pub fn save(dir: &Path, cfg: &ModelConfig, varmap: &VarMap) -> Result<()> {
    save_weights(dir, cfg, varmap, None)
}

/// [`save`] with every weight converted to `dtype`: the bf16 export of a mixed-precision run,
/// whose f32 masters stay in its resumable checkpoints.
///
/// # Errors
/// I/O errors naming the file.
pub fn save_as(dir: &Path, cfg: &ModelConfig, varmap: &VarMap, dtype: DType) -> Result<()> {
    save_weights(dir, cfg, varmap, Some(dtype))
}

fn save_weights(
    dir: &Path,
    cfg: &ModelConfig,
    varmap: &VarMap,
    dtype: Option<DType>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let config = dir.join("config.json");
    let text = serde_json::to_string_pretty(cfg).map_err(|e| file_err(&config, e))?;
    std::fs::write(&config, text).map_err(|e| file_err(&config, e))?;
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("the VarMap lock is poisoned".into()))?
        .iter()
        .map(|(k, v)| {
            let t = v.as_tensor();
            Ok((
                k.clone(),
                dtype.map_or_else(|| Ok(t.clone()), |d| t.to_dtype(d))?,
            ))
        })
        .collect::<Result<_>>()?;
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights).map_err(|e| file_err(&weights, e))
}

/// The safetensors files of a checkpoint directory: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`.
///
/// # Errors
/// [`Error::File`] when neither exists or the index is malformed.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).map_err(|_| {
        file_err(
            dir,
            "no model.safetensors and no model.safetensors.index.json",
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| file_err(&index, e))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| file_err(&index, "no `weight_map` object"))?;
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(|f| dir.join(f))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// A checkpoint loaded by [`load_varmap`] or [`load_for_inference`]: its configuration, its
/// weights, and the tensors it holds that the model does not use (listed, not loaded).
pub struct Loaded<W> {
    /// `config.json`.
    pub config: ModelConfig,
    /// The weights the model needs, and only those.
    pub weights: W,
    /// Tensors in the files that the model does not use (e.g. `lm_head.weight` of a model whose
    /// config ties it to the embeddings, or a rotary buffer), sorted.
    pub extra: Vec<String>,
}

/// Checks the tensors a checkpoint holds (`found`: name → shape) against every weight `cfg`
/// needs ([`parameter_shapes`]): returns the tensors the model does not use, sorted.
///
/// This is the one rule every loader follows (trainer, students, evaluator, GGUF import): a weight
/// the model needs is never made up. candle-nn's `VarBuilder::from_varmap` creates a missing name
/// as zeros, and training from such a model runs without an error (issue 16).
///
/// # Errors
/// [`Error::File`] naming `source` and every missing tensor or wrong shape (with what
/// `config.json` says when the missing one is the output projection of an untied model).
pub fn check_tensors(
    cfg: &ModelConfig,
    found: &BTreeMap<String, Vec<usize>>,
    source: &Path,
) -> Result<Vec<String>> {
    check_tensors_as(cfg, found, source, &|name: &str| format!("`{name}`"))
}

/// [`check_tensors`] with each tensor named in errors by `describe` (the GGUF importer adds the
/// file's own name).
///
/// # Errors
/// As [`check_tensors`].
pub fn check_tensors_as(
    cfg: &ModelConfig,
    found: &BTreeMap<String, Vec<usize>>,
    source: &Path,
    describe: &dyn Fn(&str) -> String,
) -> Result<Vec<String>> {
    let needed = parameter_shapes(cfg);
    let mut problems = Vec::new();
    for (name, shape) in &needed {
        let named = describe(name);
        match found.get(name) {
            None => problems.push(format!("tensor {named} {shape:?} is missing")),
            Some(got) if got != shape => problems.push(format!(
                "tensor {named} has shape {got:?}, the config implies {shape:?}"
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        let total = problems.len();
        let mut message = problems.into_iter().take(8).collect::<Vec<_>>().join("; ");
        if total > 8 {
            message.push_str(&format!("; and {} more", total - 8));
        }
        if !cfg.tie_word_embeddings && !found.contains_key("lm_head.weight") {
            message.push_str(
                " (config.json has tie_word_embeddings = false, so the output projection is its own tensor)",
            );
        }
        let prefixes: BTreeSet<&str> = found.keys().filter_map(|k| k.split('.').next()).collect();
        if !found.is_empty() && !prefixes.contains("model") {
            let prefixes: Vec<String> = prefixes.iter().map(|p| format!("`{p}.`")).collect();
            message.push_str(&format!(
                "; the file's tensor names start with {}, not the Hugging Face `model.`",
                prefixes.join(", ")
            ));
        }
        return Err(file_err(
            source,
            format!(
                "{total} of the {} weights the model needs {} missing or misshapen: {message}",
                needed.len(),
                if total == 1 { "is" } else { "are" }
            ),
        ));
    }
    let needed: BTreeSet<&str> = needed.iter().map(|(n, _)| n.as_str()).collect();
    Ok(found
        .keys()
        .filter(|k| !needed.contains(k.as_str()))
        .cloned()
        .collect())
}

/// What the weight files of `dir` are called in errors: the single file, or the directory of
/// shards.
fn weights_source(dir: &Path, files: &[PathBuf]) -> PathBuf {
    match files {
        [one] => one.clone(),
        _ => dir.join("model.safetensors.index.json"),
    }
}

/// Loads a checkpoint directory's config and weights into a trainable `VarMap` of `dtype`: the
/// weights the model needs and nothing else, after [`check_tensors`].
///
/// # Errors
/// File errors naming the file; a missing or misshapen weight, named.
pub fn load_varmap(dir: &Path, dtype: DType, device: &Device) -> Result<Loaded<VarMap>> {
    let cfg = ModelConfig::from_json_file(&dir.join("config.json"))?;
    let files = weight_files(dir)?;
    let mut tensors = HashMap::new();
    for file in &files {
        let loaded = candle_core::safetensors::load(file, device).map_err(|e| file_err(file, e))?;
        tensors.extend(loaded);
    }
    let found = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.dims().to_vec()))
        .collect();
    let extra = check_tensors(&cfg, &found, &weights_source(dir, &files))?;
    let varmap = VarMap::new();
    {
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| Error::Config("poisoned VarMap".into()))?;
        for (name, _) in parameter_shapes(&cfg) {
            let t = tensors.remove(&name).expect("checked by check_tensors");
            data.insert(name, candle_core::Var::from_tensor(&t.to_dtype(dtype)?)?);
        }
    }
    Ok(Loaded {
        config: cfg,
        weights: varmap,
        extra,
    })
}

/// A read-only `VarBuilder` over a checkpoint's weights (memory-mapped), for inference, after
/// [`check_tensors`].
///
/// # Errors
/// File errors naming the file; a missing or misshapen weight, named.
pub fn load_for_inference(
    dir: &Path,
    dtype: DType,
    device: &Device,
) -> Result<Loaded<VarBuilder<'static>>> {
    let cfg = ModelConfig::from_json_file(&dir.join("config.json"))?;
    let files = weight_files(dir)?;
    // SAFETY: the files are memory-mapped read-only; changing them while mapped is undefined
    // behaviour, as with every mmap-based loader.
    let mmaped = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
        .map_err(|e| file_err(dir, e))?;
    let found = mmaped
        .tensors()
        .into_iter()
        .map(|(k, view)| (k, view.shape().to_vec()))
        .collect();
    let extra = check_tensors(&cfg, &found, &weights_source(dir, &files))?;
    let vb = VarBuilder::from_backend(Box::new(mmaped), dtype, device.clone());
    Ok(Loaded {
        config: cfg,
        weights: vb,
        extra,
    })
}

/// A `VarBuilder` over exactly the variables of `varmap` (sharing their storage, so gradients
/// reach them): unlike `VarBuilder::from_varmap`, a name the map lacks is an error, never a new
/// zero tensor.
///
/// # Errors
/// A poisoned lock.
pub fn strict_builder(
    varmap: &VarMap,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("poisoned VarMap".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    Ok(VarBuilder::from_tensors(tensors, dtype, device))
}
