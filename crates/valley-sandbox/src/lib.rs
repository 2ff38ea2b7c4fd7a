//! The sandbox: runs untrusted programs (model-written code) so that they cannot reach the
//! network, write outside a fresh work directory, read secrets, keep processes alive or exhaust
//! the machine, and so that the harness survives whatever they do.
//!
//! Each run goes through a small supervisor, the `valley` binary re-executed as
//! `valley __sandbox-init SPEC` (see [`init`]). Re-executing keeps the fork-then-exec window of the
//! multi-threaded harness trivial (std's `Command`), while the supervisor, single-threaded, can do
//! arbitrary set-up between its own `fork` and the `exec` of the program. The layers, one module
//! each:
//!
//! - `namespaces`: new network, PID, IPC and mount namespaces; a size-limited tmpfs as the work
//!   directory (the disk quota); a fresh `/proc` that shows only the sandbox's processes; killing
//!   the namespace's init kills every process in it, `setsid` daemons included.
//! - `readable` and `landlock_rules`: reads limited to an allowlist computed from the program (its
//!   executable, its libraries, an interpreter's `sys.path`, a minimal `/dev` and `/etc`), writes
//!   to the work directory; TCP bind/connect denied, signals and abstract sockets scoped to the
//!   sandbox. Problems and expected outputs declared with [`Sandbox::hide`] must lie outside the
//!   allowlist, or the run is refused.
//! - `seccomp`: `socket()` refused for every family and `socketpair()` allowed for AF_UNIX only;
//!   `ptrace`, `process_vm_readv`/`writev`, `pidfd_getfd`, `kcmp` and `io_uring` refused, so the
//!   processes of one run cannot tamper with each other; the network fallback where namespaces
//!   are unavailable, and a second wall where they are.
//! - `rlimits`: CPU time, address space, file size, open files, processes (counted per uid, so
//!   every concurrent slot gets its own unprivileged uid).
//! - `capture`: stdout and stderr read up to a byte cap; going over it kills the run.
//!
//! The parent enforces the wall-clock deadline (the supervisor kills the namespace's init at the
//! deadline; the harness kills the supervisor if it overruns), the environment is replaced by a
//! fixed minimal one, and expected outputs never enter the sandbox: callers compare in the parent.
//!
//! Every run reports which mechanism enforced each [`Property`]; a run that would miss a required
//! property is refused before the program starts unless the configuration allows weaker isolation.
//!
//! ```no_run
//! use std::time::Duration;
//! use valley_sandbox::{Request, Sandbox, SandboxConfig};
//!
//! // The supervisor is the `valley` binary (`valley __sandbox-init`): a test or tool that links
//! // this crate names it; `valley` itself uses `SandboxConfig::from_current_exe()`.
//! let sandbox = Sandbox::new(SandboxConfig::new("target/debug/valley".into()))?;
//! let outcome = sandbox.run(&Request {
//!     argv: vec!["/usr/bin/python3".into(), "-c".into(), "print(6 * 7)".into()],
//!     stdin: Vec::new(),
//!     files: Vec::new(),
//!     env: Vec::new(),
//!     limits: Default::default(),
//! })?;
//! assert_eq!(outcome.stdout, b"42\n");
//! # Ok::<(), valley_sandbox::SandboxError>(())
//! ```

#![warn(missing_docs)]

mod capture;
pub mod init;
mod judge_runner;
mod landlock_rules;
mod namespaces;
mod readable;
mod rlimits;
mod runner;
mod seccomp;
pub mod service;

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

pub use runner::Sandbox;

/// Result alias for the sandbox.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// What can stop the sandbox from producing a run outcome. A program that misbehaves is not an
/// error: that is an [`Outcome`] with flags set.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Preparing the run (work directory, pipes, the supervisor) failed.
    #[error("sandbox: {what}: {source}")]
    Io {
        /// What the host was doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A required isolation property could not be enforced on this machine; the program was not
    /// started.
    #[error("sandbox: required isolation missing, program not run: {0} (set `allow_weaker_isolation` to run anyway)")]
    IsolationMissing(String),
    /// The supervisor failed to set up the run (a bad program path, a layer that errored).
    #[error("sandbox: set-up failed: {0}")]
    Setup(String),
    /// The request is invalid (empty argv, a file name with `/`).
    #[error("sandbox: bad request: {0}")]
    BadRequest(String),
    /// A file declared hidden (problems, expected outputs) lies where the program may read: the
    /// program was not started.
    #[error("sandbox: {} holds answers and lies under {}, which {program} may read; move the data out of it (program not run)", hidden.display(), allowed.display())]
    AnswersVisible {
        /// The hidden file.
        hidden: PathBuf,
        /// The allowlisted path that covers it.
        allowed: PathBuf,
        /// The program.
        program: String,
    },
}

impl SandboxError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// An isolation property the sandbox promises, enforced by one or more mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Property {
    /// No network: network namespace, or the seccomp socket filter.
    Network,
    /// Reads limited to the program's allowlist, writes to the work directory: Landlock.
    Filesystem,
    /// The whole process tree dies at the end: PID namespace (or a uid sweep).
    ProcessTree,
    /// The program runs as an unprivileged uid, distinct per slot.
    Unprivileged,
    /// CPU, address space, file size, open files and process limits.
    ResourceLimits,
    /// A size-limited tmpfs as the work directory.
    DiskQuota,
}

impl Property {
    /// Every property, in report order.
    pub const ALL: [Property; 6] = [
        Property::Network,
        Property::Filesystem,
        Property::ProcessTree,
        Property::Unprivileged,
        Property::ResourceLimits,
        Property::DiskQuota,
    ];
}

impl std::fmt::Display for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Property::Network => "network",
            Property::Filesystem => "filesystem",
            Property::ProcessTree => "process-tree",
            Property::Unprivileged => "unprivileged",
            Property::ResourceLimits => "resource-limits",
            Property::DiskQuota => "disk-quota",
        })
    }
}

/// One mechanism's state in one run: which property it serves, whether it took effect here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    /// The mechanism, e.g. `network namespace`.
    pub mechanism: String,
    /// The property it enforces.
    pub property: Property,
    /// Whether it is in force for this run.
    pub enforced: bool,
    /// Why not, or details (e.g. the Landlock ABI).
    pub detail: String,
}

/// Limits of one run. Defaults suit a LiveCodeBench test: 6 s wall, 1 GiB address space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Wall-clock deadline, enforced by the parent.
    pub wall: Duration,
    /// CPU seconds (RLIMIT_CPU; SIGXCPU, then SIGKILL a second later).
    pub cpu_seconds: u64,
    /// Address space in bytes (RLIMIT_AS).
    pub address_space_bytes: u64,
    /// Largest file the program may write (RLIMIT_FSIZE).
    pub file_size_bytes: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Processes and threads of the sandbox uid (RLIMIT_NPROC).
    pub processes: u64,
    /// Size of the work directory's tmpfs.
    pub disk_bytes: u64,
    /// Bytes kept of stdout and of stderr each; more kills the run.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(6),
            cpu_seconds: 6,
            address_space_bytes: 1 << 30,
            file_size_bytes: 16 << 20,
            open_files: 64,
            processes: 32,
            disk_bytes: 32 << 20,
            output_bytes: 8 << 20,
        }
    }
}

/// One program to run.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The program and its arguments; `argv[0]` is an absolute path or a name found on `PATH`
    /// (resolved by the host). It must be readable and executable by an unprivileged user.
    pub argv: Vec<String>,
    /// Bytes fed to stdin (then closed).
    pub stdin: Vec<u8>,
    /// Files placed in the work directory before the run: plain names, no `/`.
    pub files: Vec<(String, Vec<u8>)>,
    /// Extra environment variables (the environment is otherwise fixed and minimal).
    pub env: Vec<(String, String)>,
    /// Limits of this run.
    pub limits: Limits,
}

/// How the program ended and what it printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code when it exited.
    pub exit_code: Option<i32>,
    /// Signal number when a signal ended it (SIGXCPU: the CPU limit).
    pub signal: Option<i32>,
    /// Killed at the wall-clock deadline.
    pub timed_out: bool,
    /// Ended by the CPU limit.
    pub cpu_limit_exceeded: bool,
    /// Killed because stdout or stderr went over the cap.
    pub output_limit_exceeded: bool,
    /// What it wrote to stdout, up to the cap.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr, up to the cap.
    pub stderr: Vec<u8>,
    /// stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// stderr was cut at the cap.
    pub stderr_truncated: bool,
    /// Wall time from start to the end of the process tree.
    pub wall: Duration,
    /// CPU time (user + system) of the program and the children it waited for; zero when it
    /// was killed.
    pub cpu: Duration,
    /// Each mechanism and whether it was in force.
    pub layers: Vec<LayerStatus>,
}

impl Outcome {
    /// Exited with status 0, within every limit.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
            && !self.timed_out
            && !self.cpu_limit_exceeded
            && !self.output_limit_exceeded
    }

    /// One line saying what isolation this run had: `full` when every mechanism was in force,
    /// else `weaker: ` and the mechanisms that were not.
    pub fn isolation(&self) -> String {
        valley_plugin_api::isolation_summary(
            self.layers
                .iter()
                .map(|l| (l.mechanism.as_str(), l.enforced)),
        )
    }

    /// Whether the property was enforced by at least one mechanism in this run.
    pub fn enforced(&self, property: Property) -> bool {
        self.layers
            .iter()
            .any(|l| l.property == property && l.enforced)
    }
}

/// How the sandbox is set up for a session of runs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The program that acts as the supervisor (`PROGRAM __sandbox-init`): the `valley` binary.
    pub init_program: PathBuf,
    /// Where the sandbox makes its private work root (a fresh `mkdtemp` directory holding one
    /// directory per run, removed with the sandbox). Every directory above it must be searchable
    /// by other users (slot uids reach their work directory through it).
    pub work_parent: PathBuf,
    /// First uid (and gid) of the slots; slot `i` runs as `uid_base + i`.
    pub uid_base: u32,
    /// Runs at once (each holds a slot and its uid).
    pub slots: usize,
    /// Properties that must be enforced; a run that would miss one is refused.
    pub required: Vec<Property>,
    /// Run anyway when a required property is missing (it is still reported).
    pub allow_weaker_isolation: bool,
    /// Mechanisms to switch off, by name (one of [`init::DISABLEABLE`]): for testing the
    /// fallbacks and the refusal of runs that miss a required property.
    pub disabled_mechanisms: Vec<String>,
}

impl SandboxConfig {
    /// The defaults: the running executable as supervisor (right when it is `valley`), run
    /// directories under the system temp dir, one slot per core, every property required, and
    /// uids far from real users, in a block of 256 chosen by the process id so that two `valley`
    /// processes running at once rarely share a uid (the process limit counts per uid).
    pub fn new(init_program: PathBuf) -> Self {
        Self {
            init_program,
            work_parent: std::env::temp_dir(),
            uid_base: 2_000_000 + (std::process::id() % 4096) * 256,
            // At most 256: the width of the uid block.
            slots: std::thread::available_parallelism().map_or(1, |n| n.get().min(256)),
            required: Property::ALL.to_vec(),
            allow_weaker_isolation: false,
            disabled_mechanisms: Vec::new(),
        }
    }

    /// Defaults with the running executable as supervisor.
    ///
    /// # Errors
    /// When the running executable cannot be found.
    pub fn from_current_exe() -> Result<Self> {
        let exe = std::env::current_exe()
            .map_err(|e| SandboxError::io("locating the running executable", e))?;
        Ok(Self::new(exe))
    }
}
