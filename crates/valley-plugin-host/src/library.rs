//! Loading plugin libraries, finding them, and calling them safely.
//!
//! Each library is opened with `lib_header_from_path` and checked with `init_root_module`, not
//! with `RootModule::load_from_file`: the latter caches the first module of a root-module type
//! for the whole process, so a second plugin of the same type would silently be the first one
//! again (a test loads two samplers and shows they are two).
//!
//! Every failure is one line naming the file and what is wrong; the caller decides whether to go
//! on with the other plugins (listing and checking always do).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use valley_plugin_api::{
    abi_stable::{
        library::lib_header_from_path,
        std_types::{RSlice, RStr},
    },
    host::host_ref,
    Candidate, Capability, EvalJob, EvalOutcome, EvaluatorBox, Manifest, PluginInstance,
    PluginKind, PluginModRef, SampleContext, SamplerBox, SamplerRole, Selection, TrainJob,
    TrainOutcome, TrainerBox,
};

use crate::{
    error::{HostError as Error, Result},
    load_error::LoadError,
    services::CallServices,
};

/// A loaded plugin library: its path, manifest and root module.
#[derive(Clone)]
pub struct PluginLibrary {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// What it says about itself.
    pub manifest: Manifest,
    module: PluginModRef,
}

impl fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.path)
            .field("manifest", &self.manifest)
            .finish()
    }
}

impl PluginLibrary {
    /// Loads and checks a plugin library: the file exists, is an abi_stable library, its
    /// interface version and root-module layout match this host's, and its manifest is sane.
    ///
    /// # Errors
    /// A [`LoadError`] naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        if !path.is_file() {
            return Err(LoadError::Missing {
                path: path.to_path_buf(),
            });
        }
        let header = lib_header_from_path(path).map_err(|e| LoadError::from_library(path, e))?;
        let module = header
            .init_root_module::<PluginModRef>()
            .map_err(|e| LoadError::from_library(path, e))?;
        let manifest = (module.manifest())();
        if manifest.name.trim().is_empty() {
            return Err(LoadError::BadManifest {
                path: path.to_path_buf(),
                detail: "empty plugin name".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
            module,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        self.manifest.kind
    }

    /// Builds an instance from its JSON configuration; `slot` names where it was asked for.
    ///
    /// # Errors
    /// [`Error::Plugin`] when the plugin rejects the configuration or panics.
    pub fn instantiate(&self, slot: &str, config: &serde_json::Value) -> Result<PluginInstance> {
        let json = config.to_string();
        (self.module.instantiate())(RStr::from_str(&json))
            .into_result()
            .map_err(|error| self.call_error(&format!("rejected its config at `{slot}`"), error))
    }

    /// Builds a sampler for a slot, refusing a plugin of another kind or without the role.
    ///
    /// # Errors
    /// [`Error::WrongKind`] for the wrong kind or role; [`Error::Plugin`] when construction fails.
    pub fn sampler(
        &self,
        slot: &str,
        role: SamplerRole,
        config: &serde_json::Value,
    ) -> Result<LoadedSampler> {
        self.expect_kind(slot, PluginKind::Sampler)?;
        if !self.manifest.has_role(role) {
            return Err(self.wrong_kind(
                slot,
                &format!("sampler {role} stage"),
                &format!("sampler for {}", self.role_list()),
            ));
        }
        match self.instantiate(slot, config)? {
            PluginInstance::Sampler(obj) => Ok(LoadedSampler {
                library: self.clone(),
                obj,
            }),
            other => Err(self.wrong_kind(slot, "sampler", other.kind().as_str())),
        }
    }

    /// Builds a trainer for a slot.
    ///
    /// # Errors
    /// [`Error::WrongKind`] or [`Error::Plugin`].
    pub fn trainer(&self, slot: &str, config: &serde_json::Value) -> Result<TrainerBox> {
        self.expect_kind(slot, PluginKind::Trainer)?;
        match self.instantiate(slot, config)? {
            PluginInstance::Trainer(obj) => Ok(obj),
            other => Err(self.wrong_kind(slot, "trainer", other.kind().as_str())),
        }
    }

    /// Builds an evaluator for a slot.
    ///
    /// # Errors
    /// [`Error::WrongKind`] or [`Error::Plugin`].
    pub fn evaluator(&self, slot: &str, config: &serde_json::Value) -> Result<EvaluatorBox> {
        self.expect_kind(slot, PluginKind::Evaluator)?;
        match self.instantiate(slot, config)? {
            PluginInstance::Evaluator(obj) => Ok(obj),
            other => Err(self.wrong_kind(slot, "evaluator", other.kind().as_str())),
        }
    }

    /// Checks the plugin's kind against a slot's.
    ///
    /// # Errors
    /// [`Error::WrongKind`].
    pub fn expect_kind(&self, slot: &str, kind: PluginKind) -> Result<()> {
        if self.kind() == kind {
            Ok(())
        } else {
            Err(self.wrong_kind(slot, kind.as_str(), self.kind().as_str()))
        }
    }

    fn role_list(&self) -> String {
        let roles: Vec<String> = self
            .manifest
            .capabilities()
            .into_iter()
            .filter_map(|c| match c {
                Capability::Role(r) => Some(r.to_string()),
                _ => None,
            })
            .collect();
        if roles.is_empty() {
            "no stage".into()
        } else {
            roles.join(", ")
        }
    }

    fn wrong_kind(&self, slot: &str, expected: &str, found: &str) -> Error {
        Error::WrongKind {
            slot: slot.to_string(),
            plugin: self.name().to_string(),
            path: self.path.clone(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn call_error(&self, during: &str, error: valley_plugin_api::PluginError) -> Error {
        Error::Plugin {
            plugin: self.name().to_string(),
            path: self.path.clone(),
            during: during.to_string(),
            error,
        }
    }
}

/// A constructed trainer with the library it came from.
pub struct LoadedTrainer {
    /// The library.
    pub library: PluginLibrary,
    obj: TrainerBox,
}

impl LoadedTrainer {
    /// Builds the trainer of a slot.
    ///
    /// # Errors
    /// As [`PluginLibrary::trainer`].
    pub fn new(library: PluginLibrary, slot: &str, config: &serde_json::Value) -> Result<Self> {
        let obj = library.trainer(slot, config)?;
        Ok(Self { library, obj })
    }

    /// Runs a training job.
    ///
    /// # Errors
    /// [`Error::Plugin`] when the trainer returns an error or panics.
    pub fn train(&self, job: &TrainJob, services: &CallServices) -> Result<TrainOutcome> {
        self.obj
            .train(job, host_ref(services))
            .into_result()
            .map_err(|e| self.library.call_error("failed during train", e))
    }
}

/// A constructed evaluator with the library it came from.
pub struct LoadedEvaluator {
    /// The library.
    pub library: PluginLibrary,
    obj: EvaluatorBox,
}

impl LoadedEvaluator {
    /// Builds the evaluator of a slot.
    ///
    /// # Errors
    /// As [`PluginLibrary::evaluator`].
    pub fn new(library: PluginLibrary, slot: &str, config: &serde_json::Value) -> Result<Self> {
        let obj = library.evaluator(slot, config)?;
        Ok(Self { library, obj })
    }

    /// Runs an evaluation job.
    ///
    /// # Errors
    /// [`Error::Plugin`] when the evaluator returns an error or panics.
    pub fn evaluate(&self, job: &EvalJob, services: &CallServices) -> Result<EvalOutcome> {
        self.obj
            .evaluate(job, host_ref(services))
            .into_result()
            .map_err(|e| self.library.call_error("failed during evaluate", e))
    }
}

/// A constructed sampler with the library it came from.
pub struct LoadedSampler {
    /// The library.
    pub library: PluginLibrary,
    obj: SamplerBox,
}

impl LoadedSampler {
    /// Calls the sampler.
    ///
    /// # Errors
    /// [`Error::Plugin`] when it returns an error or panics (the panic is caught in the plugin).
    pub fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        services: &CallServices,
    ) -> Result<Selection> {
        self.obj
            .select(RSlice::from_slice(pool), ctx, host_ref(services))
            .into_result()
            .map_err(|e| self.library.call_error("failed during select", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_named() {
        let err = PluginLibrary::load(Path::new("/nonexistent/libx.so")).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/libx.so: no such file");
    }

    #[test]
    fn text_file_is_not_a_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("libfake.so");
        std::fs::write(&p, "not an ELF file").unwrap();
        let err = PluginLibrary::load(&p).unwrap_err();
        assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with(&format!("{}: not a valley plugin", p.display())));
    }
}
