//! The sandbox as a host service: FFI-safe request and result types for
//! [`HostServices::run_sandboxed`](crate::HostServices::run_sandboxed). Plugins never spawn
//! untrusted code themselves; they hand the program to the host, which runs it with every
//! isolation layer (no network, reads limited to what the program needs and writes to a fresh
//! work directory, an unprivileged uid, limits, a wall-clock deadline, the process tree killed at
//! the end) and returns what it printed. Expected outputs stay in the plugin: compare there.

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

/// A file placed in the work directory before the run.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxFile {
    /// A plain file name (no `/`).
    pub name: RString,
    /// Its contents.
    pub contents: RVec<u8>,
}

/// Limits of one run; 0 means the host's default for that limit.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SandboxLimits {
    /// Wall-clock deadline in milliseconds (default 6,000).
    pub wall_ms: u64,
    /// CPU seconds.
    pub cpu_seconds: u64,
    /// Address space in bytes.
    pub address_space_bytes: u64,
    /// Largest file the program may write.
    pub file_size_bytes: u64,
    /// Open file descriptors.
    pub open_files: u64,
    /// Processes and threads.
    pub processes: u64,
    /// Size of the work directory.
    pub disk_bytes: u64,
    /// Bytes kept of stdout and of stderr each; more ends the run.
    pub output_bytes: u64,
}

/// One program to run in the host's sandbox.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxRequest {
    /// The program and its arguments: an absolute path or a bare name found on
    /// `/usr/local/bin:/usr/bin:/bin` (e.g. `["python3", "main.py"]`).
    pub argv: RVec<RString>,
    /// Bytes fed to stdin.
    pub stdin: RVec<u8>,
    /// Files placed in the work directory (the program text, typically).
    pub files: RVec<SandboxFile>,
    /// Limits; zeros take the host's defaults.
    pub limits: SandboxLimits,
}

impl SandboxRequest {
    /// Runs `code` with `python3` (saved as `main.py`), feeding `stdin`.
    pub fn python(code: &str, stdin: &[u8]) -> Self {
        Self {
            argv: RVec::from(vec![RString::from("python3"), RString::from("main.py")]),
            stdin: RVec::from(stdin.to_vec()),
            files: RVec::from(vec![SandboxFile {
                name: "main.py".into(),
                contents: RVec::from(code.as_bytes().to_vec()),
            }]),
            limits: SandboxLimits::default(),
        }
    }
}

/// How the run ended and what it printed.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxResult {
    /// Exit code when it exited.
    pub exit_code: ROption<i32>,
    /// Signal number when a signal ended it.
    pub signal: ROption<i32>,
    /// Killed at the wall-clock deadline.
    pub timed_out: bool,
    /// Ended by the CPU limit.
    pub cpu_limit_exceeded: bool,
    /// Killed because stdout or stderr went over the cap.
    pub output_limit_exceeded: bool,
    /// stdout, up to the cap.
    pub stdout: RVec<u8>,
    /// stderr, up to the cap.
    pub stderr: RVec<u8>,
    /// stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// stderr was cut at the cap.
    pub stderr_truncated: bool,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// CPU time in milliseconds (0 when killed).
    pub cpu_ms: u64,
    /// Each isolation mechanism as `mechanism (property): on|off — detail`.
    pub layers: RVec<RString>,
}

impl SandboxResult {
    /// One entry of [`SandboxResult::layers`]: `mechanism (property): on|off — detail`.
    pub fn layer_line(mechanism: &str, property: &str, enforced: bool, detail: &str) -> RString {
        let state = if enforced { "on" } else { "off" };
        RString::from(format!("{mechanism} ({property}): {state} — {detail}"))
    }

    /// One line saying what isolation the run had: `full (N layers)` when every mechanism was in
    /// force, else `weaker: ` and the mechanisms that were not (`none reported` without layers).
    pub fn isolation(&self) -> String {
        isolation_summary(self.layers.iter().map(|l| {
            // The first state marker ends `mechanism (property)`; a detail may repeat one.
            let l = l.as_str();
            let on = l.find("): on — ");
            let off = l.find("): off — ");
            let (end, enforced) = match (on, off) {
                (Some(a), Some(b)) => (a.min(b), a < b),
                (Some(a), None) => (a, true),
                (None, Some(b)) => (b, false),
                (None, None) => (l.len(), false),
            };
            let head = &l[..end];
            (head.rfind(" (").map_or(head, |i| &head[..i]), enforced)
        }))
    }

    /// Exited 0 within every limit.
    pub fn success(&self) -> bool {
        self.exit_code == ROption::RSome(0)
            && !self.timed_out
            && !self.cpu_limit_exceeded
            && !self.output_limit_exceeded
    }
}

/// `full (N layers)` when every `(mechanism, enforced)` is enforced, else `weaker: ` and the
/// mechanisms that are not; `none reported` for none.
pub fn isolation_summary<'a>(layers: impl IntoIterator<Item = (&'a str, bool)>) -> String {
    let mut n = 0;
    let mut off = Vec::new();
    for (mechanism, enforced) in layers {
        n += 1;
        if !enforced {
            off.push(mechanism);
        }
    }
    match (n, off.is_empty()) {
        (0, _) => "none reported".into(),
        (n, true) => format!("full ({n} layers)"),
        (_, false) => format!("weaker: {} off", off.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_is_full_only_when_every_layer_is_on() {
        let mut r = SandboxResult::default();
        assert_eq!(r.isolation(), "none reported");
        r.layers.push(SandboxResult::layer_line(
            "landlock",
            "filesystem",
            true,
            "V7",
        ));
        r.layers.push(SandboxResult::layer_line(
            "seccomp",
            "network",
            true,
            "x (y): on",
        ));
        assert_eq!(r.isolation(), "full (2 layers)");
        r.layers.push(SandboxResult::layer_line(
            "private /proc",
            "process-tree",
            false,
            "mount failed (e): on — no",
        ));
        assert_eq!(r.isolation(), "weaker: private /proc off");
        r.layers.push(SandboxResult::layer_line(
            "work tmpfs (mount namespace)",
            "disk-quota",
            false,
            "x",
        ));
        assert_eq!(
            r.isolation(),
            "weaker: private /proc, work tmpfs (mount namespace) off"
        );
    }
}
