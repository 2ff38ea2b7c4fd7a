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
    collections::BTreeSet,
    fmt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use valley_plugin_api::{
    abi_stable::{
        library::{lib_header_from_path, LibraryError},
        std_types::{RSlice, RStr},
    },
    host::{host_ref, HostServices},
    Candidate, Capability, EvalJob, EvalOutcome, EvaluatorBox, Manifest, MetricPoint,
    PluginInstance, PluginKind, PluginModRef, Progress, SampleContext, SamplerBox, SamplerRole,
    Selection, TrainJob, TrainOutcome, TrainerBox, INTERFACE_VERSION,
};

use crate::error::{Error, Result};

/// Why a library could not be loaded as a valley plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// No file at the path.
    #[error("{}: no such file", .path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file is not a shared library, or one that exports no abi_stable root module.
    #[error("{}: not a valley plugin ({detail})", .path.display())]
    NotAPlugin {
        /// The path.
        path: PathBuf,
        /// The loader's reason, one line.
        detail: String,
    },
    /// The plugin was built against an interface version this host cannot use.
    #[error("{}: built against valley-plugin-api {found}, this host needs a version compatible with {expected}; rebuild the plugin", .path.display())]
    IncompatibleVersion {
        /// The path.
        path: PathBuf,
        /// The host's interface version.
        expected: String,
        /// The plugin's.
        found: String,
    },
    /// The root module's layout differs from the host's: the interface changed incompatibly.
    #[error("{}: interface layout mismatch ({first_line}); rebuild the plugin against this valley-plugin-api", .path.display())]
    LayoutMismatch {
        /// The path.
        path: PathBuf,
        /// The first meaningful line of abi_stable's report (the whole report is logged at debug
        /// level; it runs to about a thousand lines).
        first_line: String,
    },
    /// The library's root module could not be initialised (its constructor panicked or failed).
    #[error("{}: the plugin failed to initialise: {detail}", .path.display())]
    InitFailed {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The manifest call panicked (caught) or returned nonsense.
    #[error("{}: bad manifest: {detail}", .path.display())]
    BadManifest {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl LoadError {
    /// The library the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Missing { path }
            | Self::NotAPlugin { path, .. }
            | Self::IncompatibleVersion { path, .. }
            | Self::LayoutMismatch { path, .. }
            | Self::InitFailed { path, .. }
            | Self::BadManifest { path, .. } => path,
        }
    }

    fn from_library(path: &Path, err: LibraryError) -> Self {
        let path = path.to_path_buf();
        match err {
            LibraryError::OpenError { err, .. } => Self::NotAPlugin {
                path,
                detail: first_line(&err.to_string()),
            },
            LibraryError::GetSymbolError { .. } => Self::NotAPlugin {
                path,
                detail: "it exports no abi_stable root module".to_string(),
            },
            LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
                Self::NotAPlugin {
                    path,
                    detail: "built with an incompatible abi_stable".into(),
                }
            }
            LibraryError::IncompatibleVersionNumber {
                expected_version,
                actual_version,
                ..
            } => Self::IncompatibleVersion {
                path,
                expected: expected_version.to_string(),
                found: actual_version.to_string(),
            },
            LibraryError::ParseVersionError(e) => Self::IncompatibleVersion {
                path,
                expected: INTERFACE_VERSION.to_string(),
                found: format!("an unparsable version ({e})"),
            },
            LibraryError::AbiInstability(report) => {
                let full = report.to_string();
                tracing::debug!(library = %path.display(), "layout mismatch report:\n{full}");
                Self::LayoutMismatch {
                    path,
                    first_line: summarize_layout_report(&full),
                }
            }
            LibraryError::RootModule { err, .. } => Self::InitFailed {
                path,
                detail: first_line(&err.to_string()),
            },
            other => Self::NotAPlugin {
                path,
                detail: first_line(&other.to_string()),
            },
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// abi_stable's report starts with generic lines; the first line that names an error kind
/// (`Mismatched …`, `Unexpected …`) is the useful one.
fn summarize_layout_report(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("error") || l.contains("mismatch") || l.contains("unexpected")
        })
        .or(lines.first())
        .map(|l| l.chars().take(200).collect())
        .unwrap_or_else(|| "no details".to_string())
}

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

/// Where a call's metric points go as they arrive.
pub type MetricSink<'a> = Box<dyn Fn(Vec<MetricPoint>) + Send + Sync + 'a>;

/// What a call's progress reports drive (a progress bar, log lines).
pub type ProgressSink<'a> = Box<dyn Fn(&Progress) + Send + Sync + 'a>;

/// The host services behind one plugin call: metrics are collected for the caller (or streamed
/// to a sink as they arrive), progress is logged (or handed to a sink), and cancellation is a
/// shared flag (Ctrl-C sets it).
#[derive(Default)]
pub struct CallServices<'a> {
    metrics: Mutex<Vec<MetricPoint>>,
    cancel: Arc<AtomicBool>,
    label: String,
    sink: Option<MetricSink<'a>>,
    progress: Option<ProgressSink<'a>>,
}

impl<'a> CallServices<'a> {
    /// Services for a call labelled `label` (shown in progress lines), sharing `cancel`.
    pub fn new(label: impl Into<String>, cancel: Arc<AtomicBool>) -> Self {
        Self {
            metrics: Mutex::default(),
            cancel,
            label: label.into(),
            sink: None,
            progress: None,
        }
    }

    /// Sends every metric point to `sink` as it arrives instead of collecting it.
    #[must_use]
    pub fn streaming(mut self, sink: MetricSink<'a>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Hands progress reports to `sink` instead of logging them.
    #[must_use]
    pub fn with_progress(mut self, sink: ProgressSink<'a>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The metric points logged so far.
    pub fn take_metrics(&self) -> Vec<MetricPoint> {
        std::mem::take(&mut *self.metrics.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl HostServices for CallServices<'_> {
    fn log_metrics(&self, points: RSlice<'_, MetricPoint>) {
        if let Some(sink) = &self.sink {
            sink(points.to_vec());
            return;
        }
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(points.iter().cloned());
    }

    fn report_progress(&self, progress: &Progress) {
        if let Some(sink) = &self.progress {
            sink(progress);
            return;
        }
        tracing::info!(
            call = %self.label,
            "{}/{} {}",
            progress.done,
            progress.total,
            progress.message
        );
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn run_sandboxed(
        &self,
        request: &valley_plugin_api::SandboxRequest,
    ) -> abi_stable::std_types::RResult<
        valley_plugin_api::SandboxResult,
        abi_stable::std_types::RString,
    > {
        crate::sandbox::service::serve(request)
    }
}

/// Where plugins are looked for, in precedence order.
#[derive(Debug, Clone, Default)]
pub struct PluginSearch {
    /// Directories, first wins for a name.
    pub dirs: Vec<PathBuf>,
}

/// Libraries named `libvalley_fixture_*` are the workspace's failure fixtures: they are loaded
/// only by explicit path, never found by directory discovery.
const FIXTURE_PREFIX: &str = "valley_fixture_";

impl PluginSearch {
    /// The library that provides plugin `name` for `slot` (a command-line option or an
    /// experiment-file key, named in the error).
    ///
    /// # Errors
    /// [`Error::PluginNotFound`] listing the directories searched.
    pub fn find_plugin(&self, slot: &str, name: &str) -> Result<PluginLibrary> {
        self.discover()
            .find(name)
            .cloned()
            .ok_or_else(|| Error::plugin_not_found(slot, name, &self.dirs))
    }

    /// The default search: `VALLEY_PLUGIN_PATH` (colon-separated), then the directory of the
    /// running `valley` binary (`target/<profile>/` when run from the workspace), then
    /// `target/<profile>/` of the workspace around the current directory.
    pub fn from_env() -> Self {
        let mut dirs = Vec::new();
        if let Some(paths) = std::env::var_os("VALLEY_PLUGIN_PATH") {
            dirs.extend(std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()));
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            dirs.push(dir);
        }
        if let Some(root) = std::env::current_dir()
            .ok()
            .as_deref()
            .and_then(workspace_root)
        {
            let profile = if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            };
            dirs.push(root.join("target").join(profile));
        }
        let mut seen = BTreeSet::new();
        dirs.retain(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())));
        Self { dirs }
    }

    /// The candidate library files in the search directories, in precedence order.
    pub fn library_files(&self) -> Vec<PathBuf> {
        let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        let mut files = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    p.is_file()
                        && name.starts_with(prefix)
                        && name.ends_with(suffix)
                        && !name[prefix.len()..].starts_with(FIXTURE_PREFIX)
                })
                .collect();
            found.sort();
            files.extend(found);
        }
        files
    }

    /// Loads every library found; failures are returned beside the successes, never fatal.
    pub fn discover(&self) -> Discovery {
        let mut discovery = Discovery::default();
        for file in self.library_files() {
            match PluginLibrary::load(&file) {
                Ok(lib) => discovery.plugins.push(lib),
                Err(e) => discovery.failures.push(e),
            }
        }
        discovery
    }
}

/// The result of a discovery: plugins in precedence order and the libraries that failed.
#[derive(Debug, Default, Clone)]
pub struct Discovery {
    /// Loaded plugins; for a repeated name the first is the one used.
    pub plugins: Vec<PluginLibrary>,
    /// Libraries that did not load.
    pub failures: Vec<LoadError>,
}

impl Discovery {
    /// The plugin used for a name: the first found.
    pub fn find(&self, name: &str) -> Option<&PluginLibrary> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    /// Whether the plugin at `index` is shadowed by an earlier one of the same name.
    pub fn is_shadowed(&self, index: usize) -> bool {
        let name = self.plugins[index].name();
        self.plugins[..index].iter().any(|p| p.name() == name)
    }
}

/// The root of the cargo workspace around `start` (a directory whose `Cargo.toml` has a
/// `[workspace]` table), if any.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        text.lines()
            .any(|l| l.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_report_summary_picks_the_error_line() {
        let report = "\n  Layout checking\n  Error:Mismatched package name: a vs b\n  more\n";
        assert_eq!(
            summarize_layout_report(report),
            "Error:Mismatched package name: a vs b"
        );
        assert_eq!(summarize_layout_report("only line"), "only line");
    }

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

    #[test]
    fn discovery_skips_fixtures_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libvalley_fixture_x.so",
            "libreal.so",
            "notes.txt",
            "libother.rlib",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let search = PluginSearch {
            dirs: vec![dir.path().to_path_buf()],
        };
        let files = search.library_files();
        assert_eq!(files, vec![dir.path().join("libreal.so")]);
        let d = search.discover();
        assert_eq!((d.plugins.len(), d.failures.len()), (0, 1));
    }
}
