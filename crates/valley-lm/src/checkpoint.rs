//! Checkpoints in the Hugging Face layout: `config.json` plus `model.safetensors` (or shards listed
//! in `model.safetensors.index.json`), so that other tools load ours and we load theirs.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{Error, ModelConfig, Result};

fn file_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Saves `config.json` and `model.safetensors` into `dir`.
///
/// # Errors
/// I/O errors naming the file.
pub fn save(dir: &Path, cfg: &ModelConfig, varmap: &VarMap) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let config = dir.join("config.json");
    let text = serde_json::to_string_pretty(cfg).map_err(|e| file_err(&config, e))?;
    std::fs::write(&config, text).map_err(|e| file_err(&config, e))?;
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("the VarMap lock is poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
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

/// Loads a checkpoint directory's config and weights into a trainable `VarMap`.
///
/// # Errors
/// File errors naming the file.
pub fn load_varmap(dir: &Path, dtype: DType, device: &Device) -> Result<(ModelConfig, VarMap)> {
    let cfg = ModelConfig::from_json_file(&dir.join("config.json"))?;
    let varmap = VarMap::new();
    {
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| Error::Config("poisoned VarMap".into()))?;
        for file in weight_files(dir)? {
            let tensors =
                candle_core::safetensors::load(&file, device).map_err(|e| file_err(&file, e))?;
            for (name, t) in tensors {
                data.insert(name, candle_core::Var::from_tensor(&t.to_dtype(dtype)?)?);
            }
        }
    }
    Ok((cfg, varmap))
}

/// A read-only `VarBuilder` over a checkpoint's weights (memory-mapped), for inference.
///
/// # Errors
/// File errors naming the file.
pub fn load_for_inference(
    dir: &Path,
    dtype: DType,
    device: &Device,
) -> Result<(ModelConfig, VarBuilder<'static>)> {
    let cfg = ModelConfig::from_json_file(&dir.join("config.json"))?;
    let files = weight_files(dir)?;
    // SAFETY: the files are memory-mapped read-only; changing them while mapped is undefined
    // behaviour, as with every mmap-based loader.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device) }
        .map_err(|e| file_err(dir, e))?;
    Ok((cfg, vb))
}
