//! Students: the checkpoints cells start from, trained once and cached.
//!
//! A student (`[students.NAME]` in an experiment file) is a trainer run on a data section, from
//! another student, from a checkpoint directory, or from scratch. The CPU default mirrors the
//! paper's "instruct model that does not reason": stage 0 trains the small decoder from scratch on
//! direct answers (`data.direct = true`: problem → code, no `<think>`), and every cell then
//! distills the teacher's reasoning traces on top of it.
//!
//! A student lives in `.valley/students/<name>-<hash>/`, where the hash covers everything that
//! shapes it (what it starts from, its data, its trainer and their configs), so experiments that
//! describe the same student share one, and a changed config builds a new one. The directory
//! holds the training file, the trainer's output (`train/`, resumable: an interrupted build
//! continues from its newest checkpoint) and `student.json`, written last, which marks it done.

use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
};

use serde::{Deserialize, Serialize};
use valley_plugin_api::{TrainEnd, TrainJob};

use valley_data::write_training_jsonl;
use valley_plugin_api::Progress;
use valley_plugin_host::{CallServices, LoadedTrainer};

use crate::{
    data_source::load_training,
    error::{Error, Result},
    events::{Phase, StudentState, SweepEvent, SweepObserver},
    experiment::{Experiment, StudentSpec},
    fingerprint::config_hash,
    sampling::PluginRegistry,
};

/// Where students are cached, relative to the current directory.
pub const STUDENTS_DIR: &str = ".valley/students";

/// The placeholder for the starting checkpoint in a trainer's config.
pub const STUDENT_PLACEHOLDER: &str = "{student}";

/// A built student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Student {
    /// Its name in the experiment file.
    pub name: String,
    /// The hash of everything that shapes it.
    pub hash: String,
    /// Its final checkpoint.
    pub checkpoint: PathBuf,
    /// The trainer's summary (JSON).
    pub summary: serde_json::Value,
}

/// The identity of a student: a hash over its chain of starting points, data and trainer.
///
/// # Errors
/// [`Error::ExperimentFile`] for a `from` naming no student.
pub fn student_hash(exp: &Experiment, name: &str) -> Result<String> {
    let spec = student_spec(exp, name)?;
    let from = match &spec.from {
        Some(f) if exp.spec.students.contains_key(f) => {
            serde_json::json!({ "student": student_hash(exp, f)? })
        }
        Some(path) => serde_json::json!({ "checkpoint": path }),
        None => serde_json::Value::Null,
    };
    let data = serde_json::to_value(&spec.data).unwrap_or_default();
    Ok(config_hash(&serde_json::json!({
        "from": from,
        "data": data,
        "trainer": spec.trainer,
    })))
}

fn student_spec<'a>(exp: &'a Experiment, name: &str) -> Result<&'a StudentSpec> {
    exp.spec.students.get(name).ok_or_else(|| {
        Error::experiment_file(&exp.file, format!("no student `{name}` in `[students]`"))
    })
}

/// The cache directory of a student.
///
/// # Errors
/// As [`student_hash`].
pub fn student_dir(exp: &Experiment, name: &str) -> Result<PathBuf> {
    let hash = student_hash(exp, name)?;
    let root = PathBuf::from(STUDENTS_DIR);
    let root = std::path::absolute(&root).unwrap_or(root);
    Ok(root.join(format!("{name}-{}", &hash[..12])))
}

/// A built student, if its directory says it is done.
pub fn cached(dir: &Path) -> Option<Student> {
    let text = std::fs::read_to_string(dir.join("student.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Replaces every string equal to `{student}` in a plugin config with `checkpoint`.
///
/// # Errors
/// [`Error::Slot`] when the config names `{student}` and there is no checkpoint.
pub fn substitute(
    config: &serde_json::Value,
    checkpoint: Option<&Path>,
    slot: &str,
) -> Result<serde_json::Value> {
    Ok(match config {
        serde_json::Value::String(s) if s == STUDENT_PLACEHOLDER => match checkpoint {
            Some(p) => serde_json::Value::String(p.display().to_string()),
            None => {
                return Err(Error::Slot {
                    slot: slot.to_string(),
                    message: format!("the config names `{STUDENT_PLACEHOLDER}` but there is no student to start from (add `[students]`, or `from` to this student)"),
                })
            }
        },
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|v| substitute(v, checkpoint, slot))
                .collect::<Result<_>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, checkpoint, slot)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// The newest resumable checkpoint a trainer left under `out` (`out/checkpoints/<name>/` holding
/// `state.json`, names sorting in step order), for the resume contract of [`TrainJob`].
pub fn latest_resumable(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("state.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// The step a resumable checkpoint holds: its `state.json`'s `step` when it has one (the
/// resume contract of [`TrainJob`] asks only for the file).
pub fn resumable_step(checkpoint: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(checkpoint.join("state.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("step")?
        .as_u64()
}

/// Builds the student `name` (and the students it starts from) unless cached, telling `observer`
/// where each stands and how its training goes.
///
/// # Errors
/// Data, plugin and trainer errors, named with the student.
pub fn ensure(
    exp: &Experiment,
    name: &str,
    registry: &PluginRegistry,
    cancel: &Arc<AtomicBool>,
    observer: &dyn SweepObserver,
) -> Result<Student> {
    let spec = student_spec(exp, name)?;
    let dir = student_dir(exp, name)?;
    if let Some(done) = cached(&dir) {
        observer.on_sweep_event(&SweepEvent::Student {
            name,
            state: StudentState::Cached(&done.checkpoint),
        })?;
        return Ok(done);
    }
    let from = match &spec.from {
        Some(f) if exp.spec.students.contains_key(f) => Some(
            ensure(exp, f, registry, cancel, observer)?
                .checkpoint
                .clone(),
        ),
        Some(path) => Some(PathBuf::from(path)),
        None => None,
    };
    let slot = format!("students.{name}.trainer");
    let config = substitute(&spec.trainer.config, from.as_deref(), &slot)?;
    let lib = registry.resolve(&spec.trainer, &slot)?;
    let trainer = LoadedTrainer::new(lib, &slot, &config)?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let train_file = dir.join("train.jsonl");
    if !train_file.is_file() {
        let data = load_training(&spec.data)
            .map_err(|e| Error::data_section(format!("students.{name}.data"), e))?;
        let mut bytes = Vec::new();
        write_training_jsonl(&mut bytes, data.records.iter())
            .map_err(|e| Error::io(&train_file, e))?;
        let tmp = train_file.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &train_file).map_err(|e| Error::io(&train_file, e))?;
    }
    let output = dir.join("train");
    let resume = latest_resumable(&output);
    observer.on_sweep_event(&SweepEvent::Student {
        name,
        state: StudentState::Training {
            trainer: &spec.trainer.plugin,
            dir: &dir,
            resume_from: resume.clone(),
        },
    })?;
    let job = TrainJob {
        config_json: serde_json::to_string(&config).unwrap_or_default().into(),
        train_file: train_file.display().to_string().into(),
        output_dir: output.display().to_string().into(),
        resume_from: resume.map(|p| p.display().to_string().into()).into(),
    };
    let key = format!("student {name}");
    let services = CallServices::new(key.as_str(), cancel.clone()).with_progress(Box::new(
        |progress: &Progress| {
            let event = SweepEvent::Progress {
                key: &key,
                phase: Phase::Train,
                progress,
            };
            if let Err(e) = observer.on_sweep_event(&event) {
                tracing::warn!("{key}: progress: {e}");
            }
        },
    ));
    let outcome = trainer.train(&job, &services)?;
    if let TrainEnd::Interrupted { step } = outcome.end() {
        return Err(Error::TrainingInterrupted {
            step,
            checkpoint: PathBuf::from(outcome.checkpoint_dir.as_str()),
        });
    }
    let student = Student {
        name: name.to_string(),
        hash: student_hash(exp, name)?,
        checkpoint: PathBuf::from(outcome.checkpoint_dir.as_str()),
        summary: serde_json::from_str(outcome.summary_json.as_str())
            .unwrap_or(serde_json::Value::Null),
    };
    let mut bytes = serde_json::to_vec_pretty(&student).unwrap_or_default();
    bytes.push(b'\n');
    std::fs::write(dir.join("student.json"), bytes).map_err(|e| Error::io(&dir, e))?;
    observer.on_sweep_event(&SweepEvent::Student {
        name,
        state: StudentState::Built(&student.checkpoint),
    })?;
    Ok(student)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_is_replaced_everywhere_and_only_as_a_whole_string() {
        let config = serde_json::json!({
            "model": "{student}",
            "nested": { "list": ["{student}", "x{student}"] },
            "n": 3
        });
        let got = substitute(&config, Some(Path::new("/ck/final")), "trainer").unwrap();
        assert_eq!(
            got,
            serde_json::json!({
                "model": "/ck/final",
                "nested": { "list": ["/ck/final", "x{student}"] },
                "n": 3
            })
        );
        let err = substitute(&config, None, "trainer")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trainer") && err.contains("{student}"),
            "{err}"
        );
    }

    #[test]
    fn the_newest_resumable_checkpoint_is_found() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_resumable(dir.path()), None);
        for (step, complete) in [(10, true), (20, true), (30, false)] {
            let ck = dir
                .path()
                .join("checkpoints")
                .join(format!("step-{step:08}"));
            std::fs::create_dir_all(&ck).unwrap();
            if complete {
                std::fs::write(ck.join("state.json"), "{}").unwrap();
            }
        }
        // step 30 has no state.json: an interrupted save, not a checkpoint.
        assert_eq!(
            latest_resumable(dir.path()),
            Some(dir.path().join("checkpoints").join("step-00000020"))
        );
    }
}
