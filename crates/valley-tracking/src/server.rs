//! The local MLflow tracking server of `just mlflow` (`valley mlflow start|stop|status`):
//! MLflow pinned to [`MLFLOW_VERSION`] in a project venv (`.venv-mlflow`, created on first use),
//! a SQLite store and an artifacts directory under `.valley/mlflow/`, bound to 127.0.0.1 on a
//! free port recorded in `.valley/mlflow/server.json`.
//!
//! MLflow 3 notes (measured, issue 6): `--workers 1` and `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`
//! keep it to one small process tree; it runs in its own process group and is stopped by
//! signalling the group (SIGTERM to the parent alone leaves workers behind); on a busy port it
//! exits with status 0, so the port is checked first; it is ready when `GET /health` answers
//! (15–25 s).

use std::{
    io::Write,
    net::TcpListener,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::{mlflow::MlflowClient, Result, TrackingError};

/// The MLflow release the project pins.
pub const MLFLOW_VERSION: &str = "3.17.2";

/// How long a fresh server may take to answer `/health`.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Where the server keeps its things.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPaths {
    /// Store, artifacts, log and state: `VALLEY_MLFLOW_HOME`, else `<project>/.valley/mlflow`.
    pub home: PathBuf,
    /// The venv: `VALLEY_MLFLOW_VENV`, else `<project>/.venv-mlflow`.
    pub venv: PathBuf,
}

impl ServerPaths {
    /// From the environment and the project around the current directory (the nearest ancestor
    /// holding `.valley`, `.git` or a `justfile`; the current directory when none does).
    pub fn from_env() -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let project = cwd
            .ancestors()
            .find(|d| {
                d.join(".valley").is_dir()
                    || d.join(".git").exists()
                    || d.join("justfile").is_file()
            })
            .unwrap_or(&cwd)
            .to_path_buf();
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            home: var("VALLEY_MLFLOW_HOME").unwrap_or_else(|| project.join(".valley/mlflow")),
            venv: var("VALLEY_MLFLOW_VENV").unwrap_or_else(|| project.join(".venv-mlflow")),
        }
    }

    /// The state file.
    pub fn state_file(&self) -> PathBuf {
        self.home.join("server.json")
    }

    /// The server's log.
    pub fn log_file(&self) -> PathBuf {
        self.home.join("server.log")
    }

    /// The `mlflow` executable of the venv.
    pub fn mlflow_exe(&self) -> PathBuf {
        self.venv.join("bin/mlflow")
    }
}

/// `server.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerState {
    /// The server's process id, also its process group.
    pub pid: u32,
    /// Its port on 127.0.0.1 (kept after a stop, and reused when free).
    pub port: u16,
    /// Its tracking URI.
    pub uri: String,
    /// Whether it was started and not stopped since.
    pub running: bool,
}

fn read_state(paths: &ServerPaths) -> Option<ServerState> {
    let bytes = std::fs::read(paths.state_file()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_state(paths: &ServerPaths, state: &ServerState) -> Result<()> {
    let path = paths.state_file();
    let mut bytes =
        serde_json::to_vec_pretty(state).map_err(|e| TrackingError::io(&path, e.into()))?;
    bytes.push(b'\n');
    std::fs::write(&path, bytes).map_err(|e| TrackingError::io(&path, e))
}

/// Whether any live (not zombie) process is in process group `pgid` (Linux `/proc`).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2].parse::<u32>().ok() == Some(pgid)
    })
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TrackingError::Server(format!("no free port on 127.0.0.1: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| TrackingError::Server(e.to_string()))
}

/// The running server's state, if its state file says it runs, its process group lives and it
/// answers `/health`.
pub fn running(paths: &ServerPaths) -> Option<ServerState> {
    let state = read_state(paths)?;
    if !state.running || !group_alive(state.pid) {
        return None;
    }
    let client = MlflowClient::new(&state.uri).ok()?;
    client.health().ok().map(|()| state)
}

/// Creates the venv with MLflow [`MLFLOW_VERSION`] when it has no `mlflow` yet (about 850 MB and
/// 80 s from PyPI).
///
/// # Errors
/// When `python3 -m venv` or `pip install` fails (their output is shown).
pub fn ensure_venv(paths: &ServerPaths, out: &mut dyn Write) -> Result<()> {
    if paths.mlflow_exe().is_file() {
        return Ok(());
    }
    let _ = writeln!(
        out,
        "installing mlflow=={MLFLOW_VERSION} into {} (first use: ~850 MB, about 80 s)…",
        paths.venv.display()
    );
    let run = |cmd: &mut Command, what: &str| -> Result<()> {
        let output = cmd
            .output()
            .map_err(|e| TrackingError::Server(format!("{what}: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(TrackingError::Server(format!(
                "{what} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    };
    if !paths.venv.join("bin/pip").is_file() {
        run(
            Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&paths.venv),
            &format!("python3 -m venv {}", paths.venv.display()),
        )?;
    }
    run(
        Command::new(paths.venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("mlflow=={MLFLOW_VERSION}"),
        ]),
        &format!("pip install mlflow=={MLFLOW_VERSION}"),
    )
}

/// Starts the server unless it already runs; returns its state. The port is `port`, else the
/// last one used when it is free, else a free one.
///
/// # Errors
/// [`TrackingError::Server`] when the venv cannot be made, the port is taken, or the server
/// exits or does not answer in time (the end of its log is shown).
pub fn start(
    paths: &ServerPaths,
    port: Option<u16>,
    install: bool,
    out: &mut dyn Write,
) -> Result<ServerState> {
    if let Some(state) = running(paths) {
        let _ = writeln!(
            out,
            "MLflow already running at {} (pid {})",
            state.uri, state.pid
        );
        return Ok(state);
    }
    if install {
        ensure_venv(paths, out)?;
    } else if !paths.mlflow_exe().is_file() {
        return Err(TrackingError::Server(format!(
            "{} is missing: create the venv with `just mlflow` (or `valley mlflow start`)",
            paths.mlflow_exe().display()
        )));
    }
    std::fs::create_dir_all(paths.home.join("artifacts"))
        .map_err(|e| TrackingError::io(&paths.home, e))?;
    let home = std::path::absolute(&paths.home).map_err(|e| TrackingError::io(&paths.home, e))?;
    let port = match port {
        Some(p) if !port_free(p) => {
            // MLflow would exit with status 0 on a busy port: refuse here, clearly.
            return Err(TrackingError::Server(format!(
                "port {p} on 127.0.0.1 is in use"
            )));
        }
        Some(p) => p,
        None => match read_state(paths) {
            Some(s) if port_free(s.port) => s.port,
            _ => free_port()?,
        },
    };
    let log_path = paths.log_file();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| TrackingError::io(&log_path, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| TrackingError::io(&log_path, e))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(paths.mlflow_exe());
    cmd.args([
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--workers",
        "1",
    ])
    .arg("--backend-store-uri")
    .arg(format!("sqlite:///{}", home.join("mlflow.db").display()))
    .arg("--artifacts-destination")
    .arg(home.join("artifacts"))
    .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    .stdin(Stdio::null())
    .stdout(log)
    .stderr(log_err);
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: stopped by signalling the group, untouched by Ctrl-C here.
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| TrackingError::Server(format!("{}: {e}", paths.mlflow_exe().display())))?;
    let state = ServerState {
        pid: child.id(),
        port,
        uri: format!("http://127.0.0.1:{port}"),
        running: true,
    };
    write_state(paths, &state)?;
    let client = MlflowClient::new(&state.uri)?;
    let started = Instant::now();
    loop {
        if client.health().is_ok() {
            let _ = writeln!(
                out,
                "MLflow {MLFLOW_VERSION} running at {} (pid {}, ready in {:.0} s; data in {})",
                state.uri,
                state.pid,
                started.elapsed().as_secs_f64(),
                paths.home.display()
            );
            return Ok(state);
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || started.elapsed() > READY_TIMEOUT {
            signal_group(state.pid, "KILL");
            let _ = child.wait();
            write_state(
                paths,
                &ServerState {
                    running: false,
                    ..state.clone()
                },
            )?;
            let log_text = std::fs::read(&log_path).unwrap_or_default();
            let tail =
                String::from_utf8_lossy(&log_text[(log_start as usize).min(log_text.len())..])
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
            let why = match exited {
                Some(status) => format!("exited ({status}) before answering"),
                None => format!(
                    "did not answer /health within {} s",
                    READY_TIMEOUT.as_secs()
                ),
            };
            return Err(TrackingError::Server(format!(
                "MLflow on port {port} {why}; end of {}:\n{tail}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Stops the server (SIGTERM to its process group, SIGKILL after 15 s); false when none ran.
///
/// # Errors
/// When the state file cannot be written.
pub fn stop(paths: &ServerPaths, out: &mut dyn Write) -> Result<bool> {
    let Some(state) = read_state(paths).filter(|s| s.running) else {
        let _ = writeln!(
            out,
            "MLflow is not running ({})",
            paths.state_file().display()
        );
        return Ok(false);
    };
    let alive = group_alive(state.pid);
    if alive {
        signal_group(state.pid, "TERM");
        let started = Instant::now();
        while group_alive(state.pid) {
            if started.elapsed() > Duration::from_secs(15) {
                signal_group(state.pid, "KILL");
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(TrackingError::Server(format!(
                    "process group {} still alive after SIGKILL",
                    state.pid
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    write_state(
        paths,
        &ServerState {
            running: false,
            ..state.clone()
        },
    )?;
    let _ = writeln!(
        out,
        "MLflow at {} {}",
        state.uri,
        if alive { "stopped" } else { "was not running" }
    );
    Ok(alive)
}

/// A one-line status.
pub fn describe(paths: &ServerPaths) -> String {
    match running(paths) {
        Some(s) => format!("MLflow running at {} (pid {})", s.uri, s.pid),
        None => format!(
            "MLflow not running (state: {}; start with `just mlflow`)",
            paths.state_file().display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_venv_is_an_error_naming_it_when_install_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ServerPaths {
            home: dir.path().join("home"),
            venv: dir.path().join("no-venv"),
        };
        let err = start(&paths, None, false, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no-venv/bin/mlflow is missing"), "{err}");
        assert!(running(&paths).is_none());
        let mut out = Vec::new();
        assert!(!stop(&paths, &mut out).unwrap());
        assert!(String::from_utf8(out).unwrap().contains("not running"));
    }

    #[test]
    fn ci_installs_the_pinned_mlflow_version() {
        let ci =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/install-deps.sh");
        let text = std::fs::read_to_string(&ci).unwrap();
        assert!(
            text.contains(&format!("\"mlflow=={MLFLOW_VERSION}\"")),
            "{} must install mlflow=={MLFLOW_VERSION}",
            ci.display()
        );
    }

    #[test]
    fn a_busy_port_is_refused_before_mlflow_is_started() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("bin/mlflow"), "").unwrap();
        let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let paths = ServerPaths {
            home: dir.path().join("home"),
            venv,
        };
        let err = start(&paths, Some(port), false, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("port {port} on 127.0.0.1 is in use")),
            "{err}"
        );
    }

    #[test]
    fn the_own_process_group_is_seen_alive_and_a_dead_one_not() {
        let pgid = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_string();
                rest.split_whitespace().nth(2)?.parse::<u32>().ok()
            })
            .expect("/proc/self/stat");
        assert!(group_alive(pgid));
        assert!(!group_alive(u32::MAX - 1));
    }
}
