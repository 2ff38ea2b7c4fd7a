//! The read allowlist: what a sandboxed program may read, computed from the program itself.
//!
//! Nothing else is readable (Landlock read rules on this list, see [`crate::landlock_rules`]):
//! no run directories, data caches, homes, other `/tmp` entries, `/proc` or `/sys`. The list is
//!
//! - the program's executable (symlinks resolved);
//! - the directories of the shared libraries it loads (`ldd`), where the libraries its extension
//!   modules load live too;
//! - for a Python interpreter, the entries of its `sys.path` (the standard library,
//!   `lib-dynload`, site-packages) and the files of the modules it imports at start-up wherever
//!   they resolve to (Debian's `sitecustomize.py` is a link into `/etc`), asked of the
//!   interpreter itself (`python -I`), plus a venv's `pyvenv.cfg`;
//! - a minimal `/dev` and `/etc`: [`DEVICES`] and [`ETC_FILES`].
//!
//! The work directory is added by the caller (read and write). Computing the list runs the
//! interpreter once outside the sandbox; [`crate::Sandbox`] caches it per program.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The `PATH` inside the sandbox, also where bare program names are resolved.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Devices a program may read (`/dev/null` is also writable, see [`crate::landlock_rules`]).
pub const DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Files of `/etc` the dynamic loader and the C library read.
pub const ETC_FILES: [&str; 2] = ["/etc/ld.so.cache", "/etc/localtime"];

/// What the interpreter reports about itself: its `sys.path` and the files of the modules it
/// imported at start-up.
const PYTHON_PROBE: &str = "import sys, json\nprint(json.dumps([p for p in sys.path] + [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]))";

/// The allowlist for `program` (an absolute path), sorted, without entries that lie beneath
/// another entry.
///
/// # Errors
/// When the program cannot be resolved or the interpreter's probe fails.
pub fn for_program(program: &Path) -> Result<Vec<PathBuf>, String> {
    let exe = std::fs::canonicalize(program)
        .map_err(|e| format!("resolving {}: {e}", program.display()))?;
    let mut paths = vec![exe.clone()];
    paths.extend(library_dirs(&exe));
    let name = program
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let real_name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.starts_with("python") || real_name.starts_with("python") {
        paths.extend(python_paths(program)?);
        for dir in program.ancestors().skip(1).take(2) {
            let cfg = dir.join("pyvenv.cfg");
            if cfg.is_file() {
                paths.push(cfg);
            }
        }
    }
    paths.extend(DEVICES.iter().map(PathBuf::from));
    paths.extend(ETC_FILES.iter().map(PathBuf::from));
    Ok(minimal(paths))
}

/// Directories of the shared libraries `exe` loads, from `ldd` (none for a static program).
fn library_dirs(exe: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(exe).env_clear().output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|t| t.starts_with('/'))
        .filter_map(|t| Path::new(t).parent().map(Path::to_path_buf))
        .collect()
}

/// `sys.path` and the start-up modules' files of the interpreter at `program`.
fn python_paths(program: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new(program)
        .args(["-I", "-c", PYTHON_PROBE])
        .env_clear()
        .env("PATH", SANDBOX_PATH)
        .output()
        .map_err(|e| format!("asking {} for its sys.path: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "asking {} for its sys.path: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let entries: Vec<String> = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "reading {}'s sys.path ({e}): {}",
            program.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    Ok(entries
        .into_iter()
        .filter(|e| e.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

/// Existing paths, symlinks resolved, sorted, deduplicated, and without those beneath another.
pub fn minimal(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut resolved: Vec<PathBuf> = paths
        .into_iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    resolved.sort();
    resolved.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for p in resolved {
        // Sorted order puts a directory before everything beneath it.
        if !kept.iter().any(|k| p.starts_with(k)) {
            kept.push(p);
        }
    }
    kept
}

/// The first allowlisted path that `hidden` (resolved) lies beneath or equals.
pub fn covering<'a>(allowlist: &'a [PathBuf], hidden: &Path) -> Option<&'a PathBuf> {
    allowlist.iter().find(|a| hidden.starts_with(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_collapse_into_their_parent() {
        let dir = std::env::temp_dir();
        let got = minimal(vec![
            dir.join("."),
            dir.clone(),
            PathBuf::from("/definitely/not/here"),
        ]);
        assert_eq!(got, vec![std::fs::canonicalize(&dir).unwrap()]);
    }

    #[test]
    fn a_hidden_file_under_an_allowed_directory_is_found() {
        let list = vec![PathBuf::from("/usr/lib/python3")];
        assert!(covering(&list, Path::new("/usr/lib/python3/dist-packages/x.jsonl")).is_some());
        assert!(covering(&list, Path::new("/usr/lib/python3.11/x")).is_none());
    }

    #[test]
    fn the_interpreter_reports_its_standard_library() {
        let list = for_program(Path::new("/usr/bin/python3")).unwrap();
        let os_py = list.iter().any(|p| {
            std::fs::canonicalize(p)
                .map(|p| p.join("os.py").is_file())
                .unwrap_or(false)
        });
        assert!(os_py, "{list:?}");
        assert!(list.iter().any(|p| p == Path::new("/dev/null")), "{list:?}");
        assert!(!list.iter().any(|p| p == Path::new("/")), "{list:?}");
        assert!(!list.iter().any(|p| p.starts_with("/tmp")), "{list:?}");
    }
}
