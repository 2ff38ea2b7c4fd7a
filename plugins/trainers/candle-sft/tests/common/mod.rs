//! Helpers shared by the trainer's test suites: the data fixture, the losses a run streamed, the
//! summary of a finished run, and bitwise comparisons of saved weights.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use valley_plugin_api::host::RecordingHost;
use valley_trainer_candle_sft::{Ended, TrainSummary};

/// The first `n` records of the repository's small training fixture, written into `dir`.
pub fn fixture(dir: &Path, n: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../experiments/fixtures/tiny-train.jsonl");
    let text = std::fs::read_to_string(&src).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    let path = dir.join("train.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Every `train/loss` the run streamed, in order.
pub fn losses(rec: &RecordingHost) -> Vec<f64> {
    rec.metrics
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.name.as_str() == "train/loss")
        .map(|m| m.value)
        .collect()
}

/// The summary of a run that ran to the end (panics on an interrupted one).
pub fn finished(ended: Ended) -> TrainSummary {
    match ended {
        Ended::Finished(summary) => summary,
        other => panic!("the run did not finish: {other:?}"),
    }
}

/// Every tensor of a safetensors file, sorted by name, with its dtype and its values as f32
/// bytes (bf16 widens exactly), for bitwise comparisons.
pub fn tensor_bytes(file: &Path) -> Vec<(String, DType, Vec<u8>)> {
    let mut tensors: Vec<(String, Tensor)> = candle_core::safetensors::load(file, &Device::Cpu)
        .unwrap()
        .into_iter()
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
        .into_iter()
        .map(|(n, t)| {
            let dtype = t.dtype();
            let f = t.flatten_all().unwrap().to_dtype(DType::F32).unwrap();
            let bytes = f
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (n, dtype, bytes)
        })
        .collect()
}

/// Asserts that two checkpoint directories hold bitwise the same weights (names, dtypes, values).
pub fn assert_same_weights(a: &Path, b: &Path, what: &str) {
    let (a, b) = (
        tensor_bytes(&a.join("model.safetensors")),
        tensor_bytes(&b.join("model.safetensors")),
    );
    assert_eq!(a.len(), b.len(), "{what}: tensor counts");
    for ((na, da, wa), (nb, db, wb)) in a.iter().zip(&b) {
        assert_eq!((na, da), (nb, db), "{what}");
        assert!(wa == wb, "{what}: {na} differs");
    }
}
