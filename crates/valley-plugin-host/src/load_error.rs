//! Why a library could not be loaded: one line naming the file and what is wrong.

use std::path::{Path, PathBuf};

use valley_plugin_api::{abi_stable::library::LibraryError, INTERFACE_VERSION};

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

    pub(crate) fn from_library(path: &Path, err: LibraryError) -> Self {
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
}
