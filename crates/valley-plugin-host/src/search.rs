//! Where plugins are found: `VALLEY_PLUGIN_PATH`, then `target/<profile>/` of the workspace.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use crate::{
    error::{HostError as Error, Result},
    library::PluginLibrary,
    load_error::LoadError,
};

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
