//! Helpers for valley's end-to-end tests, which drive the real `valley` binary and the real plugin
//! libraries that `cargo build --workspace` leaves in `target/debug/`.
//!
//! The tests do not build anything themselves (the binary is not a dependency of this crate), so
//! build first:
//!
//! ```text
//! cargo build --workspace && cargo test -p valley-e2e
//! ```
//!
//! [`valley`] panics with that instruction when the binary or a plugin library is missing.
//!
//! Every run is hermetic with respect to the caller's environment: `VALLEY_PLUGIN_PATH`, every
//! `VALLEY__*` override and `RUST_LOG` are removed before the test's own variables are applied, so
//! a developer's shell settings cannot change what the tests see. Tracking too: without the test
//! saying otherwise, `MLFLOW_TRACKING_URI` is removed and the local MLflow server is looked for in a
//! directory that does not exist, so runs are logged locally and never reach a developer's server.

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

/// The sampler plugins of the workspace, as `(manifest name, library stem)`.
pub const SAMPLERS: [(&str, &str); 6] = [
    ("correctness", "valley_sampler_correctness"),
    ("difficulty-band", "valley_sampler_difficulty_band"),
    ("easy-first", "valley_sampler_easy_first"),
    ("hard-first", "valley_sampler_hard_first"),
    ("nested-size", "valley_sampler_nested_size"),
    ("random", "valley_sampler_random"),
];

/// Every plugin the workspace builds, in discovery order (sorted by library file name): the
/// evaluator, the six samplers, then the trainer. `(name, kind, library stem)`.
pub const PLUGINS: [(&str, &str, &str); 8] = [
    ("code-exec", "evaluator", "valley_evaluator_code_exec"),
    ("correctness", "sampler", "valley_sampler_correctness"),
    (
        "difficulty-band",
        "sampler",
        "valley_sampler_difficulty_band",
    ),
    ("easy-first", "sampler", "valley_sampler_easy_first"),
    ("hard-first", "sampler", "valley_sampler_hard_first"),
    ("nested-size", "sampler", "valley_sampler_nested_size"),
    ("random", "sampler", "valley_sampler_random"),
    ("candle-sft", "trainer", "valley_trainer_candle_sft"),
];

/// The built library of any workspace plugin, by plugin name.
///
/// # Panics
/// When `name` is not one of [`PLUGINS`].
pub fn plugin_lib(name: &str) -> PathBuf {
    let (_, _, stem) = PLUGINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no plugin named {name}"));
    profile_dir().join(lib_file_name(stem))
}

/// The failure fixtures under `tests/fixtures/plugins/`, by library stem (without the
/// `valley_fixture_` prefix).
pub const FIXTURES: [&str; 5] = [
    "changed_layout",
    "not_a_plugin",
    "old_interface",
    "panicking_sampler",
    "wrong_kind",
];

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives in <workspace>/tests")
        .to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` when set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The profile directory the binary and libraries are built into: `<target>/debug`.
pub fn profile_dir() -> PathBuf {
    target_dir().join("debug")
}

/// The `valley` binary.
pub fn valley_bin() -> PathBuf {
    profile_dir().join(format!("valley{}", std::env::consts::EXE_SUFFIX))
}

/// The file name of the library with crate stem `stem` on this platform
/// (`libvalley_sampler_random.so` on Linux).
pub fn lib_file_name(stem: &str) -> String {
    format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The built library of the sampler with manifest name `name` (e.g. `"easy-first"`).
///
/// # Panics
/// When `name` is not one of [`SAMPLERS`].
pub fn sampler_lib(name: &str) -> PathBuf {
    let (_, stem) = SAMPLERS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no sampler named {name}"));
    profile_dir().join(lib_file_name(stem))
}

/// The built library of a failure fixture, by stem (e.g. `"wrong_kind"`).
pub fn fixture_lib(stem: &str) -> PathBuf {
    profile_dir().join(lib_file_name(&format!("valley_fixture_{stem}")))
}

/// The small training file the experiments use.
pub fn tiny_train() -> PathBuf {
    workspace_root().join("experiments/fixtures/tiny-train.jsonl")
}

/// Panics with a clear instruction when the binary or any plugin library is missing.
pub fn require_built() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let mut needed = vec![valley_bin()];
        needed.extend(SAMPLERS.iter().map(|(name, _)| sampler_lib(name)));
        needed.extend(FIXTURES.iter().map(|stem| fixture_lib(stem)));
        let missing: Vec<String> = needed
            .iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        assert!(
            missing.is_empty(),
            "the e2e tests drive the built binary and plugins; run `cargo build --workspace` first \
             (missing: {})",
            missing.join(", ")
        );
    });
}

/// Runs `valley ARGS…` in `cwd` with `envs` applied (`None` removes a variable) after the
/// caller's valley variables are cleared (see the crate docs), and returns its output.
///
/// # Panics
/// When the binary or a plugin library is missing (see [`require_built`]), or the process cannot
/// be started.
pub fn valley<I, S>(args: I, cwd: &Path, envs: &[(&str, Option<&str>)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    valley_command(args, cwd, envs)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", valley_bin().display()))
}

/// The command [`valley`] runs, to spawn it instead (and talk to it while it runs).
///
/// # Panics
/// When the binary or a plugin library is missing (see [`require_built`]).
pub fn valley_command<I, S>(args: I, cwd: &Path, envs: &[(&str, Option<&str>)]) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require_built();
    let mut cmd = Command::new(valley_bin());
    cmd.args(args).current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k == "VALLEY_PLUGIN_PATH" || k.starts_with("VALLEY__") || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd.env_remove("MLFLOW_TRACKING_URI")
        .env("VALLEY_MLFLOW_HOME", "/nonexistent/valley-e2e/mlflow");
    for (key, value) in envs {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

/// The process's standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The process's standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status, stdout and stderr in one block, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// Asserts the exit code (a process killed by a signal has none and always fails this).
///
/// # Panics
/// When the code differs, showing the whole output.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit code {code}\n{}",
        show(out)
    );
}

/// The lines of a text file (panics with the path when it cannot be read).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(String::from)
        .collect()
}

/// Every file under `dir`, by path relative to it, with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                files.insert(rel, bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A TOML basic string holding `path` (quotes and backslashes escaped).
pub fn toml_path(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
