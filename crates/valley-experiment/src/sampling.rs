//! The sampling stage of an experiment: find each arm's samplers, plan the cells, and write a
//! cell's ordered training file and stage summary under `runs/<experiment>/<cell>/` (the sweep,
//! [`crate::sweep`], calls it per cell).
//!
//! The plan is computed (and checked: no size may exceed its arm's filtered pool) before any file
//! is written.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Serialize;
use valley_plugin_api::{Candidate, SamplerRole};

use valley_data::{write_training_jsonl, RecordSet};
use valley_plugin_host::{
    CallServices, Discovery, HostError, LoadedSampler, PluginLibrary, PluginSearch,
};

use crate::{
    error::{Error, Result},
    experiment::{Arm, Cell, Experiment, PluginSpec, StageSpec},
    pipeline::{run_pipeline, PipelineOutcome, Stage},
};

/// Plugins available to an experiment: the libraries it names by path, then discovery.
pub struct PluginRegistry {
    explicit: Vec<PluginLibrary>,
    discovery: Discovery,
    searched: Vec<PathBuf>,
}

impl PluginRegistry {
    /// Loads the experiment's explicit plugin paths (a failure there is an error: the user named
    /// that file) and discovers the rest.
    ///
    /// # Errors
    /// [`Error::Load`] for an explicit path that does not load.
    pub fn for_experiment(exp: &Experiment, search: &PluginSearch) -> Result<Self> {
        let explicit = exp
            .spec
            .plugins
            .paths
            .iter()
            .map(|p| PluginLibrary::load(p).map_err(|e| Error::from(HostError::from(e))))
            .collect::<Result<Vec<_>>>()?;
        let discovery = search.discover();
        for failure in &discovery.failures {
            tracing::warn!("skipping plugin library: {failure}");
        }
        Ok(Self {
            explicit,
            discovery,
            searched: search.dirs.clone(),
        })
    }

    /// The library that provides a slot's plugin.
    ///
    /// # Errors
    /// [`Error::Load`] when the slot's `path` does not load, [`Error::PluginNotFound`] when no
    /// library provides the name, [`Error::Slot`] when `path` provides another plugin.
    pub fn resolve(&self, spec: &PluginSpec, slot: &str) -> Result<PluginLibrary> {
        if let Some(path) = &spec.path {
            let lib = PluginLibrary::load(path).map_err(|source| HostError::SlotLoad {
                slot: slot.to_string(),
                source,
            })?;
            if lib.name() != spec.plugin {
                return Err(Error::Slot {
                    slot: slot.to_string(),
                    message: format!(
                        "{} provides plugin `{}`, not `{}`",
                        path.display(),
                        lib.name(),
                        spec.plugin
                    ),
                });
            }
            return Ok(lib);
        }
        self.explicit
            .iter()
            .find(|p| p.name() == spec.plugin)
            .or_else(|| self.discovery.find(&spec.plugin))
            .cloned()
            .ok_or_else(|| HostError::plugin_not_found(slot, &spec.plugin, &self.searched).into())
    }

    /// Builds the samplers of an arm, checking kind and role of each.
    ///
    /// # Errors
    /// As [`PluginRegistry::resolve`], plus [`Error::WrongKind`] and construction errors.
    pub fn arm_samplers(&self, arm: &Arm) -> Result<Vec<(StageSpec, LoadedSampler)>> {
        arm.stages
            .iter()
            .map(|stage| {
                let role = match stage.role.as_str() {
                    "filter" => SamplerRole::Filter,
                    "subset" => SamplerRole::Subset,
                    _ => SamplerRole::Order,
                };
                let lib = self.resolve(&stage.spec, &stage.slot)?;
                let sampler = lib.sampler(&stage.slot, role, &stage.spec.config)?;
                Ok((stage.clone(), sampler))
            })
            .collect()
    }
}

/// One planned cell.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCell {
    /// The cell.
    pub cell: Cell,
    /// The cell's key (its directory name).
    pub key: String,
    /// Records left after the arm's filters for this seed.
    pub pool: usize,
}

/// The plan of an experiment's sampling stage.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Records read.
    pub records: usize,
    /// Bad rows skipped (under `on_bad_row = "skip"`).
    pub skipped_rows: usize,
    /// Cells in order.
    pub cells: Vec<PlannedCell>,
}

/// An experiment with its data read and its samplers built.
pub struct Prepared {
    /// The experiment.
    pub experiment: Experiment,
    /// The training records.
    pub data: RecordSet,
    /// The candidate pool (metadata of every record).
    pub pool: Vec<Candidate>,
    /// Where the experiment's plugins come from.
    pub registry: PluginRegistry,
    samplers: BTreeMap<String, Vec<(StageSpec, LoadedSampler)>>,
}

impl Prepared {
    /// Reads the data and builds every arm's samplers; stops at the first problem, before any
    /// work is done.
    ///
    /// # Errors
    /// Data errors, plugin resolution and construction errors.
    pub fn new(experiment: Experiment, search: &PluginSearch) -> Result<Self> {
        let registry = PluginRegistry::for_experiment(&experiment, search)?;
        let mut samplers = BTreeMap::new();
        for arm in &experiment.arms {
            samplers.insert(arm.name.clone(), registry.arm_samplers(arm)?);
        }
        let data = crate::data_source::load_training(&experiment.spec.data)?;
        let pool = data.candidates();
        Ok(Self {
            experiment,
            data,
            pool,
            registry,
            samplers,
        })
    }

    fn stages(&self, arm: &str) -> Vec<(&StageSpec, &dyn Stage)> {
        self.samplers[arm]
            .iter()
            .map(|(spec, s)| (spec, s as &dyn Stage))
            .collect()
    }

    /// Plans every cell: runs each arm's filters per seed to size its pool.
    ///
    /// # Errors
    /// A sampler failure, or [`Error::ExperimentFile`] when a size exceeds its arm's filtered pool.
    pub fn plan(&self, services: &CallServices) -> Result<Plan> {
        let mut pools: BTreeMap<(String, u64), usize> = BTreeMap::new();
        let mut cells = Vec::new();
        for cell in self.experiment.cells() {
            let pool = match pools.get(&(cell.arm.clone(), cell.seed)) {
                Some(&n) => n,
                None => {
                    let filters: Vec<_> = self
                        .stages(&cell.arm)
                        .into_iter()
                        .filter(|(spec, _)| spec.role == "filter")
                        .collect();
                    let n = run_pipeline(&filters, &self.pool, &cell, services)?
                        .order
                        .len();
                    pools.insert((cell.arm.clone(), cell.seed), n);
                    n
                }
            };
            if cell.size as usize > pool {
                return Err(Error::experiment_file(&self.experiment.file, format!(
                    "size {} of arm `{}` exceeds its pool of {pool} records after filters (seed {}); lower `sweep.sizes` or loosen the filters",
                    cell.size,
                    cell.arm,
                    cell.seed
                )));
            }
            cells.push(PlannedCell {
                key: cell.key(),
                cell,
                pool,
            });
        }
        Ok(Plan {
            records: self.data.records.len(),
            skipped_rows: self.data.skipped.len(),
            cells,
        })
    }

    /// Runs the pipeline of one cell.
    ///
    /// # Errors
    /// A sampler failure or contract violation.
    pub fn sample(&self, cell: &Cell, services: &CallServices) -> Result<PipelineOutcome> {
        run_pipeline(&self.stages(&cell.arm), &self.pool, cell, services)
    }
}

/// Writes a cell's ordered training file (`train.jsonl`) and its stage summaries
/// (`stages.json`); returns the number of records.
///
/// # Errors
/// When the files cannot be written.
pub fn write_cell(prepared: &Prepared, dir: &Path, outcome: &PipelineOutcome) -> Result<usize> {
    let records = outcome
        .order
        .iter()
        .map(|&i| &prepared.data.records[i as usize]);
    let mut bytes = Vec::new();
    write_training_jsonl(&mut bytes, records).map_err(|e| Error::io(dir, e))?;
    write_atomic(&dir.join("train.jsonl"), &bytes)?;
    let ids: Vec<&str> = outcome
        .order
        .iter()
        .map(|&i| prepared.data.records[i as usize].id.as_str())
        .collect();
    write_json(
        &dir.join("stages.json"),
        &serde_json::json!({ "records": outcome.order.len(), "stages": outcome.stages, "ids": ids }),
    )?;
    Ok(outcome.order.len())
}

/// What `runs/<experiment>/experiment.json` holds: the name, the file and the resolved spec.
pub fn exp_record(exp: &Experiment) -> serde_json::Value {
    serde_json::json!({ "name": exp.name, "file": exp.file, "resolved": exp.spec })
}

/// The resolved configuration of a cell, as `config.json` holds it.
pub fn cell_config(prepared: &Prepared, planned: &PlannedCell) -> serde_json::Value {
    let exp = &prepared.experiment;
    let arm = exp.arm(&planned.cell.arm).map(|a| &a.stages);
    serde_json::json!({
        "experiment": exp.name,
        "file": exp.file,
        "cell": { "key": planned.key, "arm": planned.cell.arm, "size": planned.cell.size, "seed": planned.cell.seed },
        "data": {
            "train": prepared.data.path,
            "records": prepared.data.records.len(),
            "skipped_rows": prepared.data.skipped.len(),
            "pool_after_filters": planned.pool,
        },
        "pipeline": arm,
        "trainer": exp.spec.trainer,
        "evaluator": exp.spec.evaluator,
        "tracking": exp.spec.tracking,
    })
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::io(path, e.into()))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes through a temporary file and a rename, so that a killed run never leaves half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A temporary name of its own: other processes (Slurm tasks) and threads may write the same
    // file at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
