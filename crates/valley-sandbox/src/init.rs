//! The supervisor of one run: `valley __sandbox-init SPEC`, started by the host with the program's
//! stdin, stdout and stderr as its own, a status pipe on fd 3 and a control pipe on fd 4.
//!
//! Three processes, so that each does one job:
//!
//! 1. the supervisor (this process, root, outside the namespaces it creates for its children)
//!    unshares the network, PID, IPC, UTS and mount namespaces, mounts the work tmpfs, copies the
//!    staged files in, forks the namespace's init and enforces the wall-clock deadline: at the
//!    deadline, or when the host writes to (or closes) the control pipe, it kills the init, which
//!    takes every process of the namespace with it;
//! 2. the init (PID 1 of the new namespace) mounts a fresh `/proc`, forks the program and reaps
//!    every process until the program exits, then reports its status and exits;
//! 3. the program's process sets limits, drops to the slot's uid, restricts itself with Landlock
//!    and seccomp, checks that every required property is in force, and executes the program
//!    with a fixed environment.
//!
//! The supervisor is single-threaded (it dispatches before anything else in `main`), so the work
//! between its `fork`s and the final `exec` may allocate freely. Events go to the host as JSON
//! lines on fd 3, each written with one `write` (atomic below PIPE_BUF).

use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::{landlock_rules, namespaces, rlimits, seccomp, LayerStatus, Limits, Property};

/// The hidden subcommand name.
pub const SUBCOMMAND: &str = "__sandbox-init";
/// fd of the status pipe (supervisor, init, program → host).
pub const STATUS_FD: libc::c_int = 3;
/// fd of the control pipe (host → supervisor): any byte or EOF means "kill the run now".
pub const CONTROL_FD: libc::c_int = 4;

/// Everything the supervisor needs, passed as JSON in its argument list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    /// The program; `argv[0]` is an absolute path.
    pub argv: Vec<String>,
    /// The complete environment of the program.
    pub env: Vec<(String, String)>,
    /// Directory with the files to copy into the work directory.
    pub stage: PathBuf,
    /// The work directory (exists, owned by `uid`).
    pub work: PathBuf,
    /// The slot's uid and gid.
    pub uid: u32,
    /// What the program may read besides its work directory (see the `readable` module).
    pub readable: Vec<PathBuf>,
    /// Limits.
    pub limits: Limits,
    /// Properties that must be in force before the program starts.
    pub required: Vec<Property>,
    /// Start the program even when a required property is missing.
    pub allow_weaker: bool,
    /// Mechanisms to skip (tests of the fallbacks and of the refusal path).
    #[serde(default)]
    pub disabled: Vec<String>,
}

/// What the supervisor, init and program report on the status pipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Every mechanism and whether it took effect (sent by the program's process before exec).
    Layers {
        /// The mechanisms.
        layers: Vec<LayerStatus>,
    },
    /// A required property is missing: the program was not started.
    Refused {
        /// Which, and why.
        reason: String,
    },
    /// Set-up failed (exec, the work directory).
    SetupError {
        /// What failed.
        message: String,
    },
    /// The program exited or was killed by a signal (sent by the init).
    Exited {
        /// Exit code.
        code: Option<i32>,
        /// Terminating signal.
        signal: Option<i32>,
        /// User + system CPU time in milliseconds.
        cpu_ms: u64,
    },
    /// The supervisor killed the run at the wall-clock deadline.
    TimedOut,
    /// The host asked for the kill (output cap, cancellation, or it went away).
    KilledByHost,
}

fn emit(event: &Event) {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    // SAFETY: writing a live buffer to an fd; errors (host gone) are ignored on purpose.
    let _ = unsafe { libc::write(STATUS_FD, line.as_ptr().cast(), line.len()) };
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Entry point of `valley __sandbox-init SPEC`; never returns.
pub fn main(args: &[OsString]) -> ! {
    // The host passes the status and control pipe ends under their own fd numbers (arguments 2
    // and 3) so that it can spawn without fork; they move to STATUS_FD and CONTROL_FD before
    // anything is written. Through copies above 10 first, so that the moves cannot clobber each
    // other whatever the numbers are.
    let fd_arg = |i: usize| -> Option<libc::c_int> { args.get(i)?.to_str()?.parse().ok() };
    if let (Some(status), Some(control)) = (fd_arg(1), fd_arg(2)) {
        // SAFETY: fcntl/dup2/close on fds this process inherited for this purpose, before any
        // other thread exists.
        unsafe {
            let s = libc::fcntl(status, libc::F_DUPFD_CLOEXEC, 10);
            let c = libc::fcntl(control, libc::F_DUPFD_CLOEXEC, 10);
            if s < 0 || c < 0 {
                std::process::exit(2);
            }
            libc::close(status);
            libc::close(control);
            if libc::dup2(s, STATUS_FD) < 0 || libc::dup2(c, CONTROL_FD) < 0 {
                std::process::exit(2);
            }
            libc::close(s);
            libc::close(c);
        }
    }
    let spec: InitSpec = match args
        .first()
        .ok_or_else(|| "missing SPEC argument".to_string())
        .and_then(|a| serde_json::from_slice(a.as_bytes()).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            emit(&Event::SetupError {
                message: format!("bad spec: {e}"),
            });
            std::process::exit(2);
        }
    };
    supervise(&spec)
}

fn supervise(spec: &InitSpec) -> ! {
    // Orphans of the program come to us (without a PID namespace) so that we can reap them.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    let mut layers = vec![
        unless_disabled(
            spec,
            "network namespace",
            Property::Network,
            namespaces::network,
        ),
        unless_disabled(
            spec,
            "pid namespace",
            Property::ProcessTree,
            namespaces::pid,
        ),
    ];
    let quota = unless_disabled(spec, namespaces::WORK_TMPFS, Property::DiskQuota, || {
        namespaces::work_tmpfs(&spec.work, spec.limits.disk_bytes, spec.uid)
    });
    let private_mounts = quota.enforced;
    layers.push(quota);
    if let Err(e) = stage_files(spec) {
        emit(&Event::SetupError { message: e });
        std::process::exit(2);
    }
    let pid_ns = layers[1].enforced;

    let mut go = [0 as libc::c_int; 2];
    // SAFETY: valid out-array of two fds.
    if unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        emit(&Event::SetupError {
            message: format!("pipe: {}", errno()),
        });
        std::process::exit(2);
    }
    let started = Instant::now();
    // SAFETY: the supervisor is single-threaded; the child continues in `namespace_init`.
    let init = unsafe { libc::fork() };
    if init < 0 {
        emit(&Event::SetupError {
            message: format!("fork: {}", errno()),
        });
        std::process::exit(2);
    }
    if init == 0 {
        // SAFETY: closing our copy of the write end so EOF means "supervisor gone".
        unsafe { libc::close(go[1]) };
        namespace_init(spec, layers, go[0], pid_ns && private_mounts);
    }
    // SAFETY: closing fds we own; writing one byte releases the init.
    unsafe {
        libc::close(go[0]);
        libc::write(go[1], b"g".as_ptr().cast(), 1);
        libc::close(go[1]);
    }
    let ended = wait_with_deadline(init, started + spec.limits.wall);
    if !pid_ns {
        // No namespace to take the tree down: kill every process of the slot's uid, and reap
        // them (orphans come to us, a subreaper), until no child is left.
        for _ in 0..1000 {
            sweep_uid(spec.uid);
            if reap_all() {
                break;
            }
        }
    }
    match ended {
        Ended::Exited => {}
        Ended::Deadline => emit(&Event::TimedOut),
        Ended::Host => emit(&Event::KilledByHost),
    }
    std::process::exit(0)
}

enum Ended {
    Exited,
    Deadline,
    Host,
}

/// Waits for the init to exit, the deadline to pass, or the host to ask for the kill; kills and
/// reaps the init in the last two cases.
fn wait_with_deadline(init: libc::pid_t, deadline: Instant) -> Ended {
    // SAFETY: pidfd_open on our own child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, init, 0) } as libc::c_int;
    let reason = loop {
        let now = Instant::now();
        if now >= deadline {
            break Ended::Deadline;
        }
        let ms = (deadline - now).as_millis().min(i32::MAX as u128) as libc::c_int;
        if pidfd < 0 {
            // No pidfd (old kernel): poll the child every few milliseconds.
            let mut status = 0;
            // SAFETY: non-blocking wait on our child.
            if unsafe { libc::waitpid(init, &mut status, libc::WNOHANG) } == init {
                return Ended::Exited;
            }
            let mut fds = [libc::pollfd {
                fd: CONTROL_FD,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: valid pollfd array.
            if unsafe { libc::poll(fds.as_mut_ptr(), 1, ms.min(5)) } > 0 {
                break Ended::Host;
            }
            continue;
        }
        let mut fds = [
            libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: CONTROL_FD,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: valid pollfd array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            continue; // EINTR
        }
        if fds[0].revents != 0 {
            let mut status = 0;
            // SAFETY: reaping our child; with a PID namespace this returns only after every
            // process in it has been killed and reaped.
            unsafe { libc::waitpid(init, &mut status, 0) };
            return Ended::Exited;
        }
        if fds[1].revents != 0 {
            break Ended::Host;
        }
    };
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(init, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(init, &mut status, 0);
    }
    reason
}

/// Kills every process of `uid` from a helper process running as that uid (`kill(-1)` reaches
/// exactly the processes it may signal), a few rounds to catch processes forked meanwhile.
fn sweep_uid(uid: u32) {
    // SAFETY: single-threaded supervisor; the child only makes system calls, then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain system calls in the child.
        unsafe {
            if libc::setresgid(uid, uid, uid) != 0 || libc::setresuid(uid, uid, uid) != 0 {
                libc::_exit(1);
            }
            for _ in 0..5 {
                libc::kill(-1, libc::SIGKILL);
                libc::usleep(2_000);
            }
            libc::_exit(0);
        }
    }
    if pid > 0 {
        let mut status = 0;
        // SAFETY: reaping our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

/// Reaps every child that has exited; true when no child is left at all.
fn reap_all() -> bool {
    loop {
        let mut status = 0;
        // SAFETY: non-blocking wait for any child.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            continue;
        }
        if pid < 0 {
            return true; // ECHILD: nothing left
        }
        // Children remain (killed, not yet dead): give them a moment.
        // SAFETY: plain sleep.
        unsafe { libc::usleep(1_000) };
        return false;
    }
}

/// Copies the staged files into the work directory (after the tmpfs is mounted there), owned by
/// the slot's uid.
fn stage_files(spec: &InitSpec) -> Result<(), String> {
    use std::os::unix::fs::{chown, PermissionsExt};
    chown(&spec.work, Some(spec.uid), Some(spec.uid))
        .map_err(|e| format!("chown {}: {e}", spec.work.display()))?;
    let entries = std::fs::read_dir(&spec.stage)
        .map_err(|e| format!("reading {}: {e}", spec.stage.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let to = spec.work.join(entry.file_name());
        std::fs::copy(entry.path(), &to)
            .map_err(|e| format!("copying to {}: {e}", to.display()))?;
        chown(&to, Some(spec.uid), Some(spec.uid)).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// PID 1 of the run's namespace: forks the program, reaps everything, reports the program's
/// status, exits (which kills what is left in the namespace).
fn namespace_init(spec: &InitSpec, mut layers: Vec<LayerStatus>, go: libc::c_int, proc: bool) -> ! {
    // SAFETY: plain system calls; we are the only thread of this process.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        let mut b = 0u8;
        // EOF instead of the byte: the supervisor died before PDEATHSIG was armed.
        if libc::read(go, (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(1);
        }
        libc::close(go);
        libc::close(CONTROL_FD);
    }
    // A /proc that shows only the namespace's processes: its own layer, so that a failed mount
    // is reported (and counted as weaker isolation), not a note in another layer's detail.
    layers.push(if spec.disabled.iter().any(|d| d == PRIVATE_PROC) {
        LayerStatus {
            mechanism: PRIVATE_PROC.into(),
            property: Property::ProcessTree,
            enforced: false,
            detail: "disabled by configuration".into(),
        }
    } else if !proc {
        LayerStatus {
            mechanism: PRIVATE_PROC.into(),
            property: Property::ProcessTree,
            enforced: false,
            detail: "needs the pid and mount namespaces".into(),
        }
    } else {
        let result = namespaces::fresh_proc();
        LayerStatus {
            mechanism: PRIVATE_PROC.into(),
            property: Property::ProcessTree,
            enforced: result.is_ok(),
            detail: result.map_or_else(|e| e, |()| "only the run's processes".into()),
        }
    });
    // SAFETY: single-threaded; the child continues in `program`.
    let child = unsafe { libc::fork() };
    if child < 0 {
        emit(&Event::SetupError {
            message: format!("fork: {}", errno()),
        });
        // SAFETY: exiting the init.
        unsafe { libc::_exit(2) };
    }
    if child == 0 {
        program(spec, layers);
    }
    loop {
        let mut status = 0;
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: waiting for any child with valid out-pointers.
        let pid = unsafe { libc::wait4(-1, &mut status, 0, usage.as_mut_ptr()) };
        if pid < 0 && errno().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if pid == child || pid < 0 {
            // SAFETY: wait4 filled it (or it stayed zeroed).
            let usage = unsafe { usage.assume_init() };
            let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
            let (code, signal) = if pid < 0 {
                (None, None)
            } else if libc::WIFEXITED(status) {
                (Some(libc::WEXITSTATUS(status)), None)
            } else if libc::WIFSIGNALED(status) {
                (None, Some(libc::WTERMSIG(status)))
            } else {
                (None, None)
            };
            emit(&Event::Exited {
                code,
                signal,
                cpu_ms: ms(usage.ru_utime) + ms(usage.ru_stime),
            });
            // SAFETY: the init's work is done; exiting kills the rest of the namespace.
            unsafe { libc::_exit(0) };
        }
    }
}

/// The program's process: limits, uid, Landlock, seccomp, the required-property check, exec.
fn program(spec: &InitSpec, mut layers: Vec<LayerStatus>) -> ! {
    let fail = |message: String| -> ! {
        emit(&Event::SetupError { message });
        // SAFETY: exiting the child.
        unsafe { libc::_exit(127) }
    };
    // Prepare everything that allocates or can fail on bad input before dropping privileges.
    let to_c = |s: &str| CString::new(s).unwrap_or_else(|_| fail(format!("NUL byte in {s:?}")));
    let argv_c: Vec<CString> = spec.argv.iter().map(|a| to_c(a)).collect();
    let env_c: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| to_c(&format!("{k}={v}")))
        .collect();
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let Some(path) = argv_c.first() else {
        fail("empty argv".into())
    };
    let work = CString::new(spec.work.as_os_str().as_bytes())
        .unwrap_or_else(|_| fail("NUL byte in the work path".into()));

    // SAFETY: plain system calls in the single-threaded child.
    unsafe {
        libc::setsid();
        if libc::chdir(work.as_ptr()) != 0 {
            fail(format!(
                "chdir {}: {} (every parent of the work root must be searchable by other users)",
                spec.work.display(),
                errno()
            ));
        }
        // Signal dispositions and mask inherited from the supervisor go back to the defaults.
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in [libc::SIGPIPE, libc::SIGXFSZ, libc::SIGXCPU] {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    layers.push(rlimits::apply(&spec.limits));
    layers.push(drop_privileges(spec.uid));
    // SAFETY: plain prctl calls. NO_NEW_PRIVS lets Landlock and seccomp apply without
    // CAP_SYS_ADMIN; PDEATHSIG is armed after the uid change, which clears it.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    layers.push(unless_disabled(
        spec,
        "landlock",
        Property::Filesystem,
        || landlock_rules::restrict(&spec.work, &spec.readable),
    ));
    layers.push(unless_disabled(
        spec,
        "seccomp socket filter",
        Property::Network,
        seccomp::install,
    ));

    let missing: Vec<String> = spec
        .required
        .iter()
        .filter(|p| !layers.iter().any(|l| l.property == **p && l.enforced))
        .map(|p| {
            let why: Vec<String> = layers
                .iter()
                .filter(|l| l.property == *p)
                .map(|l| format!("{}: {}", l.mechanism, l.detail))
                .collect();
            format!("{p} ({})", why.join("; "))
        })
        .collect();
    emit(&Event::Layers {
        layers: layers.clone(),
    });
    if !missing.is_empty() && !spec.allow_weaker {
        emit(&Event::Refused {
            reason: missing.join(", "),
        });
        // SAFETY: exiting the child without running the program.
        unsafe { libc::_exit(126) };
    }
    // SAFETY: marking every fd above stderr close-on-exec (the status pipe included), then
    // replacing this process with the program.
    unsafe {
        let rc = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        );
        if rc != 0 {
            for fd in 3..1024 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        libc::execve(path.as_ptr(), argv_p.as_ptr(), env_p.as_ptr());
    }
    fail(format!(
        "exec {}: {} (the sandbox uid must be able to read and execute it)",
        spec.argv[0],
        errno()
    ))
}

/// The mechanism that mounts a fresh `/proc` in the run's PID namespace.
pub const PRIVATE_PROC: &str = "private /proc";

/// Mechanisms a configuration may switch off (never the uid drop or the limits).
pub const DISABLEABLE: [&str; 6] = [
    "network namespace",
    "pid namespace",
    PRIVATE_PROC,
    namespaces::WORK_TMPFS,
    "landlock",
    "seccomp socket filter",
];

fn unless_disabled(
    spec: &InitSpec,
    mechanism: &str,
    property: Property,
    set_up: impl FnOnce() -> LayerStatus,
) -> LayerStatus {
    if spec.disabled.iter().any(|d| d == mechanism) {
        LayerStatus {
            mechanism: mechanism.into(),
            property,
            enforced: false,
            detail: "disabled by configuration".into(),
        }
    } else {
        set_up()
    }
}

/// Drops supplementary groups, gid and uid to the slot's uid, for good (real, effective, saved).
fn drop_privileges(uid: u32) -> LayerStatus {
    // SAFETY: plain system calls.
    let result = unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            Err(format!("setgroups: {}", errno()))
        } else if libc::setresgid(uid, uid, uid) != 0 {
            Err(format!("setresgid: {}", errno()))
        } else if libc::setresuid(uid, uid, uid) != 0 {
            Err(format!("setresuid: {}", errno()))
        } else if libc::getuid() != uid || libc::geteuid() != uid {
            Err("uid did not change".into())
        } else {
            Ok(format!("uid/gid {uid}, no supplementary groups"))
        }
    };
    let (enforced, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    LayerStatus {
        mechanism: "setuid".into(),
        property: Property::Unprivileged,
        enforced,
        detail,
    }
}

/// How long after the deadline the host gives the supervisor before killing it.
pub const HOST_GRACE: Duration = Duration::from_secs(5);
