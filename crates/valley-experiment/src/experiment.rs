//! Experiment files (`experiments/*.toml`): the schema, and its resolution into a config with
//! every default filled in.
//!
//! Layers, later wins: built-in defaults (serde) < the file < `VALLEY__*` environment variables
//! (`VALLEY__SWEEP__SEEDS=[1,2]`; `__` separates keys) < `--set key=value` (the value is TOML; a
//! bare word is a string). The file is first checked on its own so that an unknown key or a wrong
//! type is reported with the file's name and line; the merged result is then checked again with
//! the failing key named and the layer it came from.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use valley_tracking::TrackingSection;

pub use crate::data_source::DataSection;
use crate::error::{Error, Result};

/// An experiment file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// What question the experiment asks, in a paragraph.
    #[serde(default)]
    pub description: String,
    /// Where the training data comes from.
    pub data: DataSection,
    /// Extra plugin libraries, loaded by path before any search.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// Arms by name, each a sampler pipeline.
    pub arms: IndexMap<String, ArmSpec>,
    /// The grid of sizes and seeds.
    pub sweep: SweepSection,
    /// The students cells start from, by name (built once, cached by config hash; see
    /// [`crate::students`]). Arms pick one with `student`; the first is the default.
    #[serde(default)]
    pub students: IndexMap<String, StudentSpec>,
    /// The trainer of every cell; without it the experiment only samples. The string
    /// `"{student}"` anywhere in its config stands for the arm's student checkpoint.
    #[serde(default)]
    pub trainer: Option<PluginSpec>,
    /// The evaluator of every trained cell and of the students (size 0).
    #[serde(default)]
    pub evaluator: Option<PluginSpec>,
    /// Experiment tracking (used from the tracking issue on; validated now).
    #[serde(default)]
    pub tracking: TrackingSection,
    /// Where results go.
    #[serde(default)]
    pub output: OutputSection,
    /// How the report reads the runs.
    #[serde(default)]
    pub report: Option<ReportSection>,
    /// Where the cells run.
    #[serde(default)]
    pub executor: ExecutorSection,
}

/// Where an experiment's cells run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Threads of the `valley experiment` process on this machine.
    #[default]
    Local,
    /// Jobs of a Slurm cluster: a job per student, a job array of cells, a report job.
    Slurm,
}

/// The `[executor]` section (`valley experiment --executor slurm --partition P …` sets the same
/// keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// `local` (the default) or `slurm`.
    #[serde(default)]
    pub kind: ExecutorKind,
    /// Slurm: the partition (the cluster's default when absent).
    #[serde(default)]
    pub partition: Option<String>,
    /// Slurm: GPUs per cell (and per student).
    #[serde(default)]
    pub gpus_per_cell: Option<u32>,
    /// Slurm: CPUs per cell.
    #[serde(default)]
    pub cpus_per_cell: Option<u32>,
    /// Slurm: memory per cell (`--mem`, e.g. `16G`).
    #[serde(default)]
    pub mem: Option<String>,
    /// Slurm: time limit per job (`--time`, e.g. `2:00:00`).
    #[serde(default)]
    pub time: Option<String>,
    /// Slurm: cells running at once (the array's `%K` throttle).
    #[serde(default)]
    pub max_running: Option<u32>,
    /// Slurm: seconds before the time limit a task is told to checkpoint and requeue (USR1).
    #[serde(default)]
    pub signal_seconds: Option<u32>,
    /// Slurm: more `sbatch` arguments, as given (`--account=a`, `--qos=q`).
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

/// The `[report]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// The metric tables, plots and the verdict are about (`pass@1` when absent).
    #[serde(default)]
    pub primary_metric: Option<String>,
    /// The paper table this experiment mirrors, and the paper series beside each arm.
    #[serde(default)]
    pub mirrors: Option<valley_reports::PaperMirror>,
}

/// A student: a checkpoint trained once from `from` (another student, a checkpoint directory,
/// or from scratch when absent) on `data` with `trainer`, cached under `.valley/students/` by
/// the hash of all of that.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentSpec {
    /// What it starts from: the name of another student, or a checkpoint directory (relative to
    /// the experiment file); from scratch when absent.
    #[serde(default)]
    pub from: Option<String>,
    /// Its training data.
    pub data: DataSection,
    /// Its trainer; `"{student}"` in the config stands for the `from` checkpoint.
    pub trainer: PluginSpec,
}

/// The `[plugins]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Plugin libraries by path, relative to the experiment file.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
}

/// One plugin in a slot: its name, configuration and, optionally, the library to load it from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The plugin's manifest name.
    pub plugin: String,
    /// Its configuration, passed to it as JSON.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// A library path (relative to the experiment file) that must provide this plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// An arm: filters, then the subset of the cell's size, then the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    /// Filters, applied in order.
    #[serde(default)]
    pub filters: Vec<PluginSpec>,
    /// The subset stage; `nested-size` when absent.
    #[serde(default)]
    pub subset: Option<PluginSpec>,
    /// The order stage; the subset's order is kept when absent.
    #[serde(default)]
    pub order: Option<PluginSpec>,
    /// The student this arm's cells start from (a name in `[students]`; the first when absent).
    #[serde(default)]
    pub student: Option<String>,
}

/// The `[sweep]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// Data sizes; 0 stands for the base model (nothing is sampled for it).
    pub sizes: Vec<u64>,
    /// Seeds.
    pub seeds: Vec<u64>,
}

/// The `[output]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Root of run directories, relative to the current directory.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
}

impl Default for OutputSection {
    fn default() -> Self {
        Self {
            runs_dir: default_runs_dir(),
        }
    }
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

/// One pipeline stage, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSpec {
    /// The experiment-file key of the slot, e.g. `arms.random.order`.
    pub slot: String,
    /// The role.
    pub role: String,
    /// The plugin and its configuration.
    pub spec: PluginSpec,
}

/// An arm, resolved: filters, subset and order in the order they run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    /// The arm's name.
    pub name: String,
    /// The stages in order.
    pub stages: Vec<StageSpec>,
    /// The student its cells start from (`None`: the trainer's config says).
    pub student: Option<String>,
}

/// An experiment with every default filled and every path absolute.
#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    /// The experiment's name (the file's stem).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The file as written, overrides applied.
    pub spec: ExperimentFile,
    /// Arms in file order.
    pub arms: Vec<Arm>,
}

impl Experiment {
    /// Resolves the file of the experiment `name_or_path` (a name looked up as
    /// `experiments/<name>.toml`, or a path to a `.toml` file) with the environment and the
    /// `--set` overrides.
    ///
    /// # Errors
    /// [`Error::ExperimentFile`] or [`Error::Override`] naming the file, key and layer at fault.
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(name_or_path, overrides, &env)
    }

    /// [`Experiment::load`] with an explicit environment (for tests).
    ///
    /// # Errors
    /// As [`Experiment::load`].
    pub fn load_with_env(
        name_or_path: &str,
        overrides: &[String],
        env: &[(String, String)],
    ) -> Result<Self> {
        let located = locate(name_or_path)?;
        let file = std::path::absolute(&located).unwrap_or(located);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        // The file alone first: errors with its line and column.
        toml::from_str::<ExperimentFile>(&text)
            .map_err(|e| Error::experiment_file(&file, one_paragraph(&e)))?;

        let env_vars: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("VALLEY__"))
            .cloned()
            .collect();
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("VALLEY")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env_vars.iter().cloned().collect()))
                    .try_parsing(true),
            );
        let mut set_keys = Vec::new();
        for item in env_vars.iter().map(|(k, v)| (k.clone(), v.clone())) {
            // Lists and tables in the environment are TOML, as for --set.
            let key = item.0["VALLEY__".len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            if item.1.trim_start().starts_with('[') || item.1.trim_start().starts_with('{') {
                let value = parse_override_value(&item.1);
                builder =
                    builder
                        .set_override(key.clone(), value)
                        .map_err(|e| Error::Override {
                            layer: format!("environment variable {}", item.0),
                            message: e.to_string(),
                        })?;
            }
            set_keys.push((key, format!("environment variable {}", item.0)));
        }
        for item in overrides {
            let Some((key, value)) = item.split_once('=') else {
                return Err(Error::Override {
                    layer: format!("--set {item}"),
                    message: "expected key=value".into(),
                });
            };
            let key = key.trim().to_string();
            builder = builder
                .set_override(key.clone(), parse_override_value(value.trim()))
                .map_err(|e| Error::Override {
                    layer: format!("--set {item}"),
                    message: e.to_string(),
                })?;
            set_keys.push((key, format!("--set {item}")));
        }
        let merged = builder
            .build()
            .map_err(|e| Error::experiment_file(&file, e.to_string()))?;
        let spec: ExperimentFile = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            let layer = set_keys
                .iter()
                .rev()
                .find(|(k, _)| same_or_nested(&path, k))
                .map(|(_, layer)| layer.clone())
                .unwrap_or_else(|| file.display().to_string());
            Error::Override {
                layer,
                message: format!("key `{path}`: {}", e.inner()),
            }
        })?;

        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("experiment")
            .to_string();
        Self::resolve(name, file, spec)
    }

    /// The experiment a record of `experiment.json`'s shape holds (`name`, `file`, `resolved`),
    /// as it was resolved then: the Slurm executor's tasks run the plan the submitting command
    /// wrote, whatever changed in the file since. `path` is where the record was read (for
    /// errors).
    ///
    /// # Errors
    /// A record that is not of that shape, or whose spec no longer resolves.
    pub fn from_record(record: &serde_json::Value, path: &Path) -> Result<Self> {
        let err = |msg: String| Error::experiment_file(path, msg);
        let name = record["name"]
            .as_str()
            .ok_or_else(|| err("no `name`".into()))?
            .to_string();
        let file = PathBuf::from(
            record["file"]
                .as_str()
                .ok_or_else(|| err("no `file`".into()))?,
        );
        let spec: ExperimentFile = serde_json::from_value(record["resolved"].clone())
            .map_err(|e| err(format!("`resolved`: {e}")))?;
        Self::resolve(name, file, spec)
    }

    fn resolve(name: String, file: PathBuf, mut spec: ExperimentFile) -> Result<Self> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let err = |msg: String| Error::experiment_file(&file, msg);
        if spec.arms.is_empty() {
            return Err(err("no arms: add at least one `[arms.NAME]` table".into()));
        }
        if spec.sweep.sizes.is_empty() || spec.sweep.seeds.is_empty() {
            return Err(err(
                "`sweep.sizes` and `sweep.seeds` must each hold at least one value".into(),
            ));
        }
        for (key, values) in [
            ("sweep.sizes", &spec.sweep.sizes),
            ("sweep.seeds", &spec.sweep.seeds),
        ] {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != values.len() {
                return Err(err(format!("`{key}` repeats a value: {values:?}")));
            }
        }
        crate::data_source::validate(&spec.data).map_err(&err)?;
        spec.data.train = spec.data.train.as_ref().map(|p| {
            // `hf://…` names a hub file, not a path.
            if p.starts_with("hf:") {
                p.clone()
            } else {
                absolute(&base, p)
            }
        });
        spec.data.eval = spec.data.eval.as_ref().map(|p| {
            if p.starts_with("hf:") {
                p.clone()
            } else {
                absolute(&base, p)
            }
        });
        for p in &mut spec.plugins.paths {
            *p = absolute(&base, p);
        }
        let mut arms = Vec::new();
        for (arm_name, arm) in &mut spec.arms {
            if arm_name.is_empty()
                || !arm_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(format!(
                    "arm name `{arm_name}`: use letters, digits, `-` and `_` only"
                )));
            }
            let mut stages = Vec::new();
            for (i, f) in arm.filters.iter_mut().enumerate() {
                resolve_spec(&base, f, &err, &format!("arms.{arm_name}.filters[{i}]"))?;
                stages.push(StageSpec {
                    slot: format!("arms.{arm_name}.filters[{i}]"),
                    role: "filter".into(),
                    spec: f.clone(),
                });
            }
            let subset = arm.subset.get_or_insert_with(|| PluginSpec {
                plugin: "nested-size".into(),
                config: empty_object(),
                path: None,
            });
            resolve_spec(&base, subset, &err, &format!("arms.{arm_name}.subset"))?;
            stages.push(StageSpec {
                slot: format!("arms.{arm_name}.subset"),
                role: "subset".into(),
                spec: subset.clone(),
            });
            if let Some(order) = &mut arm.order {
                resolve_spec(&base, order, &err, &format!("arms.{arm_name}.order"))?;
                stages.push(StageSpec {
                    slot: format!("arms.{arm_name}.order"),
                    role: "order".into(),
                    spec: order.clone(),
                });
            }
            let student = match &arm.student {
                Some(name) if !spec.students.contains_key(name) => {
                    return Err(err(format!(
                        "arms.{arm_name}.student: no student `{name}` in `[students]` (have: {})",
                        spec.students.keys().cloned().collect::<Vec<_>>().join(", ")
                    )))
                }
                Some(name) => Some(name.clone()),
                None => spec.students.keys().next().cloned(),
            };
            arms.push(Arm {
                name: arm_name.clone(),
                stages,
                student,
            });
        }
        let names: Vec<String> = spec.students.keys().cloned().collect();
        for (i, (name, student)) in spec.students.iter_mut().enumerate() {
            crate::data_source::validate(&student.data)
                .map_err(|e| err(format!("students.{name}.data: {e}")))?;
            student.data.train = student.data.train.as_ref().map(|p| {
                if p.starts_with("hf:") {
                    p.clone()
                } else {
                    absolute(&base, p)
                }
            });
            resolve_spec(
                &base,
                &mut student.trainer,
                &err,
                &format!("students.{name}.trainer"),
            )?;
            if let Some(from) = &mut student.from {
                if names[..i].contains(from) {
                    continue;
                }
                if names.contains(from) {
                    return Err(err(format!(
                        "students.{name}.from: student `{from}` must be listed before `{name}`"
                    )));
                }
                *from = absolute(&base, Path::new(from.as_str()))
                    .display()
                    .to_string();
            }
        }
        for (slot, s) in [
            ("trainer", &mut spec.trainer),
            ("evaluator", &mut spec.evaluator),
        ] {
            if let Some(s) = s {
                resolve_spec(&base, s, &err, slot)?;
            }
        }
        Ok(Self {
            name,
            file,
            spec,
            arms,
        })
    }

    /// The cells of the sweep, arm-major, then size, then seed.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for arm in &self.arms {
            for &size in &self.spec.sweep.sizes {
                for &seed in &self.spec.sweep.seeds {
                    cells.push(Cell {
                        arm: arm.name.clone(),
                        size,
                        seed,
                    });
                }
            }
        }
        cells
    }

    /// The arm of a cell.
    pub fn arm(&self, name: &str) -> Option<&Arm> {
        self.arms.iter().find(|a| a.name == name)
    }

    /// The run directory of this experiment.
    pub fn runs_dir(&self) -> PathBuf {
        self.spec.output.runs_dir.join(&self.name)
    }
}

/// Whether two key paths name the same key or one lies inside the other (`sweep.sizes[0]` is
/// inside `sweep.sizes`; `arms.a` contains `arms.a.order`).
fn same_or_nested(a: &str, b: &str) -> bool {
    let inside = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    a == b || inside(a, b) || inside(b, a)
}

fn resolve_spec(
    base: &Path,
    spec: &mut PluginSpec,
    err: &dyn Fn(String) -> Error,
    slot: &str,
) -> Result<()> {
    if spec.plugin.trim().is_empty() {
        return Err(err(format!("{slot}: `plugin` is empty")));
    }
    if !spec.config.is_object() {
        return Err(err(format!(
            "{slot}.config: expected a table, got {}",
            spec.config
        )));
    }
    spec.path = spec.path.as_ref().map(|p| absolute(base, p));
    Ok(())
}

/// One cell of the sweep.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Cell {
    /// The arm.
    pub arm: String,
    /// The data size; 0 is the base model.
    pub size: u64,
    /// The seed.
    pub seed: u64,
}

impl Cell {
    /// The stable key of the cell, also its directory name: `<arm>-n<size>-s<seed>`.
    pub fn key(&self) -> String {
        format!("{}-n{}-s{}", self.arm, self.size, self.seed)
    }
}

fn locate(name_or_path: &str) -> Result<PathBuf> {
    let as_path = Path::new(name_or_path);
    if name_or_path.ends_with(".toml") || as_path.components().count() > 1 {
        return if as_path.is_file() {
            Ok(as_path.to_path_buf())
        } else {
            Err(Error::NoExperiment {
                name: name_or_path.to_string(),
                message: format!("{name_or_path}: no such experiment file"),
            })
        };
    }
    let file = PathBuf::from("experiments").join(format!("{name_or_path}.toml"));
    if file.is_file() {
        return Ok(file);
    }
    let known: Vec<String> = std::fs::read_dir("experiments")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    Err(Error::NoExperiment {
        name: name_or_path.to_string(),
        message: format!(
            "no experiment `{name_or_path}`: {} does not exist (known: {})",
            file.display(),
            if known.is_empty() {
                "none in ./experiments".to_string()
            } else {
                known.join(", ")
            }
        ),
    })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

fn one_paragraph(e: &toml::de::Error) -> String {
    e.to_string().trim().replace('\n', "\n  ")
}

/// Parses an override value as TOML (numbers, booleans, arrays, inline tables); anything that is
/// not TOML is taken as a string.
pub fn parse_override_value(text: &str) -> config::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t
            .remove("v")
            .map(toml_to_config)
            .unwrap_or_else(|| text.into()),
        Err(_) => text.into(),
    }
}

fn toml_to_config(v: toml::Value) -> config::Value {
    use config::{Value, ValueKind};
    let kind = match v {
        toml::Value::String(s) => ValueKind::String(s),
        toml::Value::Integer(i) => ValueKind::I64(i),
        toml::Value::Float(f) => ValueKind::Float(f),
        toml::Value::Boolean(b) => ValueKind::Boolean(b),
        toml::Value::Datetime(d) => ValueKind::String(d.to_string()),
        toml::Value::Array(a) => ValueKind::Array(a.into_iter().map(toml_to_config).collect()),
        toml::Value::Table(t) => {
            ValueKind::Table(t.into_iter().map(|(k, v)| (k, toml_to_config(v))).collect())
        }
    };
    Value::new(None, kind)
}

#[cfg(test)]
mod tests {
    use valley_data::BadRowPolicy;

    use super::*;

    const FILE: &str = r#"
description = "test"
[data]
train = "data/train.jsonl"
[arms.plain]
[arms.sorted]
filters = [{ plugin = "difficulty-band", config = { labels = ["EASY"] } }]
order = { plugin = "easy-first", config = { mode = "buckets" } }
[sweep]
sizes = [0, 10]
seeds = [1, 2]
"#;

    fn write(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exp.toml");
        std::fs::write(&p, text).unwrap();
        let s = p.display().to_string();
        (dir, s)
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resolves_defaults_paths_and_stages() {
        let (dir, path) = write(FILE);
        let exp = Experiment::load_with_env(&path, &[], &[]).unwrap();
        assert_eq!(exp.name, "exp");
        assert_eq!(
            exp.spec.data.train,
            Some(dir.path().join("data/train.jsonl"))
        );
        assert_eq!(exp.spec.data.on_bad_row, BadRowPolicy::Error);
        assert_eq!(exp.spec.output.runs_dir, PathBuf::from("runs"));
        let names: Vec<_> = exp.arms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["plain", "sorted"], "arms keep file order");
        let plain: Vec<_> = exp.arms[0]
            .stages
            .iter()
            .map(|s| (s.role.as_str(), s.spec.plugin.as_str()))
            .collect();
        assert_eq!(plain, [("subset", "nested-size")]);
        let sorted: Vec<_> = exp.arms[1].stages.iter().map(|s| s.slot.as_str()).collect();
        assert_eq!(
            sorted,
            [
                "arms.sorted.filters[0]",
                "arms.sorted.subset",
                "arms.sorted.order"
            ]
        );
        assert_eq!(
            exp.arms[1].stages[2].spec.config,
            serde_json::json!({"mode": "buckets"})
        );
        let keys: Vec<_> = exp.cells().iter().map(Cell::key).collect();
        assert_eq!(keys[..3], ["plain-n0-s1", "plain-n0-s2", "plain-n10-s1"]);
        assert_eq!(keys.len(), 8);
    }

    #[test]
    fn layers_file_then_environment_then_set() {
        let (_dir, path) = write(FILE);
        let e = env(&[
            ("VALLEY__SWEEP__SEEDS", "[4, 5, 6]"),
            ("VALLEY__DATA__ON_BAD_ROW", "skip"),
            ("OTHER", "x"),
        ]);
        let exp = Experiment::load_with_env(&path, &[], &e).unwrap();
        assert_eq!(exp.spec.sweep.seeds, [4, 5, 6]);
        assert_eq!(exp.spec.data.on_bad_row, BadRowPolicy::Skip);
        let sets = [
            "sweep.seeds=[9]".to_string(),
            "arms.sorted.order.config.mode=shuffle-ties".into(),
        ];
        let exp = Experiment::load_with_env(&path, &sets, &e).unwrap();
        assert_eq!(exp.spec.sweep.seeds, [9], "--set beats the environment");
        assert_eq!(
            exp.arms[1].stages[2].spec.config,
            serde_json::json!({"mode": "shuffle-ties"})
        );
        assert_eq!(
            exp.spec.sweep.sizes,
            [0, 10],
            "untouched keys keep the file's value"
        );
    }

    #[test]
    fn errors_name_the_file_line_key_and_layer() {
        let (_dir, path) = write(&FILE.replace("[sweep]", "[sweep]\nsizez = [1]"));
        let err = Experiment::load_with_env(&path, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&path)
                && err.contains("line 10")
                && err.contains("unknown field `sizez`"),
            "{err}"
        );

        let (_dir, path) = write(&FILE.replace("seeds = [1, 2]", "seeds = [1, \"two\"]"));
        let err = Experiment::load_with_env(&path, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 11") && err.contains("invalid type"),
            "{err}"
        );

        let (_dir, path) = write(FILE);
        let err = Experiment::load_with_env(&path, &["sweep.seeds=oops".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--set sweep.seeds=oops: key `sweep.seeds`"),
            "{err}"
        );
        let err = Experiment::load_with_env(&path, &[], &env(&[("VALLEY__SWEEP__BOGUS", "1")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable VALLEY__SWEEP__BOGUS"),
            "{err}"
        );
        assert!(err.contains("unknown field `bogus`"), "{err}");
        let err = Experiment::load_with_env(&path, &["nonsense".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected key=value"), "{err}");

        let (_dir, path) = write(&FILE.replace("seeds = [1, 2]", "seeds = [1, 1]"));
        let err = Experiment::load_with_env(&path, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`sweep.seeds` repeats a value"), "{err}");
    }

    #[test]
    fn unknown_experiment_lists_the_known_ones() {
        let err = locate("no-such-experiment").unwrap_err().to_string();
        assert!(
            err.contains("experiments/no-such-experiment.toml does not exist"),
            "{err}"
        );
    }

    #[test]
    fn override_values_are_toml_or_strings() {
        assert_eq!(parse_override_value("3").into_int().unwrap(), 3);
        assert_eq!(
            parse_override_value("[1, 2]").into_array().unwrap().len(),
            2
        );
        assert_eq!(
            parse_override_value("buckets").into_string().unwrap(),
            "buckets"
        );
        assert!(parse_override_value("true").into_bool().unwrap());
    }
}
