//! The host side of a run: a slot (and its uid), a fresh run directory, the read allowlist, the
//! supervisor process with its pipes, stdin fed and output captured on threads, the backstop
//! deadline, the outcome assembled from the supervisor's events, and the run directory removed.
//!
//! Run directories live in the sandbox's own work root: a directory `mkdtemp` makes (so its name
//! cannot be predicted and nobody else can have made it first, or planted a symlink there), owned
//! by the host, mode 0711 (slot uids can reach their own work directory below it and list
//! nothing), and removed when the [`Sandbox`] is dropped. Only the host writes in it.

use std::{
    collections::HashMap,
    ffi::CString,
    fs::File,
    io::{BufRead, BufReader, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::OpenOptionsExt, fs::PermissionsExt},
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use super::{
    capture,
    init::{self, Event, InitSpec},
    readable, LayerStatus, Outcome, Property, Request, Result, SandboxConfig, SandboxError,
};

use super::readable::SANDBOX_PATH;

/// Runs programs in the sandbox, at most `config.slots` at once (each slot has its own uid, so
/// the per-uid process limit of one run does not starve another).
pub struct Sandbox {
    config: SandboxConfig,
    /// The private work root (see the module doc).
    root: PathBuf,
    /// The read allowlist of each program run so far.
    readable: Mutex<HashMap<String, Arc<Vec<PathBuf>>>>,
    /// Files no program may be able to read (problems, expected outputs), resolved.
    hidden: Mutex<Vec<PathBuf>>,
    free: Mutex<Vec<usize>>,
    freed: Condvar,
    counter: AtomicU64,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Slot<'a> {
    sandbox: &'a Sandbox,
    index: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.sandbox.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push(self.index);
        self.sandbox.freed.notify_one();
    }
}

/// Held while a supervisor is spawned with inheritable pipe ends (see `run`).
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// Clears `FD_CLOEXEC` on `fd`, so that the next spawned process inherits it.
fn set_inheritable(fd: libc::c_int) -> std::io::Result<()> {
    // SAFETY: fcntl on an fd this function's caller owns.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid out-array; both fds are owned from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SandboxError::io("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fds from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Sandbox {
    /// A sandbox with `config`; makes its private work root in `config.work_parent` (see the
    /// module doc).
    ///
    /// # Errors
    /// When the work root cannot be made.
    pub fn new(config: SandboxConfig) -> Result<Self> {
        let root = make_work_root(&config.work_parent)?;
        let slots = config.slots.clamp(1, 256);
        Ok(Self {
            root,
            readable: Mutex::new(HashMap::new()),
            hidden: Mutex::new(Vec::new()),
            free: Mutex::new((0..slots).rev().collect()),
            freed: Condvar::new(),
            counter: AtomicU64::new(0),
            config,
        })
    }

    /// The private work root, which holds one directory per run in progress.
    pub fn work_root(&self) -> &Path {
        &self.root
    }

    /// Declares a file (or directory) that no sandboxed program may be able to read: a problems
    /// file, a data cache holding expected outputs. A run whose read allowlist covers it is
    /// refused with [`SandboxError::AnswersVisible`].
    ///
    /// # Errors
    /// When the path cannot be resolved.
    pub fn hide(&self, path: &Path) -> Result<()> {
        let resolved = std::fs::canonicalize(path)
            .map_err(|e| SandboxError::io(format!("resolving {}", path.display()), e))?;
        let mut hidden = self.hidden.lock().unwrap_or_else(|e| e.into_inner());
        if !hidden.contains(&resolved) {
            hidden.push(resolved);
        }
        Ok(())
    }

    /// What `program` (a path or a bare name on the sandbox's `PATH`) may read besides its work
    /// directory; computed once per program (see the `readable` module).
    ///
    /// # Errors
    /// When the program cannot be found or probed.
    pub fn readable(&self, program: &str) -> Result<Arc<Vec<PathBuf>>> {
        let program = resolve_program(Some(program))?;
        if let Some(list) = self
            .readable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&program)
        {
            return Ok(Arc::clone(list));
        }
        let list =
            Arc::new(readable::for_program(Path::new(&program)).map_err(SandboxError::Setup)?);
        self.readable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(program, Arc::clone(&list));
        Ok(list)
    }

    /// The allowlist of `program`, refused when it covers a hidden path.
    fn readable_checked(&self, program: &str) -> Result<Arc<Vec<PathBuf>>> {
        let list = self.readable(program)?;
        let hidden = self.hidden.lock().unwrap_or_else(|e| e.into_inner());
        for h in hidden.iter() {
            if let Some(allowed) = readable::covering(&list, h) {
                return Err(SandboxError::AnswersVisible {
                    hidden: h.clone(),
                    allowed: allowed.clone(),
                    program: program.to_string(),
                });
            }
        }
        Ok(list)
    }

    /// The configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The uids the slots run as.
    pub fn uids(&self) -> std::ops::Range<u32> {
        self.config.uid_base..self.config.uid_base + self.config.slots.clamp(1, 256) as u32
    }

    /// Runs `/bin/true` allowing weaker isolation and returns what each mechanism did: the
    /// measured isolation of this machine.
    ///
    /// # Errors
    /// When the supervisor cannot run at all.
    pub fn probe(&self) -> Result<Vec<LayerStatus>> {
        let req = Request {
            argv: vec!["true".into()],
            ..Request::default()
        };
        Ok(self.run_with(&req, true)?.layers)
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(index) = free.pop() {
                return Slot {
                    sandbox: self,
                    index,
                };
            }
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Runs one program. A program that misbehaves gives an [`Outcome`] with flags set; an error
    /// means the run could not happen (or was refused for missing isolation).
    ///
    /// # Errors
    /// [`SandboxError::IsolationMissing`] when a required property is not enforced here (the
    /// program did not start), [`SandboxError::BadRequest`] for an empty argv or a bad file name,
    /// [`SandboxError::Setup`] and [`SandboxError::Io`] when preparing the run failed.
    pub fn run(&self, req: &Request) -> Result<Outcome> {
        self.run_with(req, self.config.allow_weaker_isolation)
    }

    fn run_with(&self, req: &Request, allow_weaker: bool) -> Result<Outcome> {
        let argv0 = resolve_program(req.argv.first().map(String::as_str))?;
        for (name, _) in &req.files {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(SandboxError::BadRequest(format!(
                    "file name {name:?} must be a plain name"
                )));
            }
        }
        for (k, _) in &req.env {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(SandboxError::BadRequest(format!(
                    "environment variable name {k:?}"
                )));
            }
        }
        if let Some(m) = self
            .config
            .disabled_mechanisms
            .iter()
            .find(|m| !init::DISABLEABLE.contains(&m.as_str()))
        {
            return Err(SandboxError::BadRequest(format!(
                "mechanism {m:?} cannot be disabled (only {:?})",
                init::DISABLEABLE
            )));
        }
        let readable = self.readable_checked(&argv0)?;
        let slot = self.acquire();
        let uid = self.config.uid_base + slot.index as u32;
        let run_dir = self.root.join(format!(
            "run-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.run_in(req, argv0, uid, &run_dir, &readable, allow_weaker);
        let _ = std::fs::remove_dir_all(&run_dir);
        drop(slot);
        result
    }

    fn run_in(
        &self,
        req: &Request,
        argv0: String,
        uid: u32,
        run_dir: &Path,
        readable: &[PathBuf],
        allow_weaker: bool,
    ) -> Result<Outcome> {
        let io = |what: &str, p: &Path| {
            let what = format!("{what} {}", p.display());
            move |e| SandboxError::io(what, e)
        };
        let stage = run_dir.join("stage");
        let work = run_dir.join("work");
        // Plain `create_dir`: the run directory is new (the root is ours alone), never reused.
        std::fs::create_dir(run_dir).map_err(io("creating", run_dir))?;
        std::fs::create_dir(&stage).map_err(io("creating", &stage))?;
        std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io("chmod", run_dir))?;
        std::fs::set_permissions(&stage, std::fs::Permissions::from_mode(0o700))
            .map_err(io("chmod", &stage))?;
        std::fs::create_dir(&work).map_err(io("creating", &work))?;
        std::os::unix::fs::chown(&work, Some(uid), Some(uid)).map_err(io("chown", &work))?;
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o700))
            .map_err(io("chmod", &work))?;
        for (name, bytes) in &req.files {
            let p = stage.join(name);
            std::fs::write(&p, bytes).map_err(io("writing", &p))?;
        }

        let mut env = vec![
            ("PATH".to_string(), SANDBOX_PATH.to_string()),
            ("HOME".to_string(), work.display().to_string()),
            ("TMPDIR".to_string(), work.display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
        ];
        env.extend(req.env.iter().cloned());
        let mut argv = req.argv.clone();
        argv[0] = argv0;
        let spec = InitSpec {
            argv,
            env,
            stage,
            work,
            uid,
            readable: readable.to_vec(),
            limits: req.limits.clone(),
            required: self.config.required.clone(),
            allow_weaker,
            disabled: self.config.disabled_mechanisms.clone(),
        };
        let spec_json = serde_json::to_string(&spec).expect("spec serializes");

        let (status_r, status_w) = pipe()?;
        let (control_r, control_w) = pipe()?;
        let (status_w_raw, control_r_raw) = (status_w.as_raw_fd(), control_r.as_raw_fd());
        let mut cmd = Command::new(&self.config.init_program);
        cmd.arg(init::SUBCOMMAND)
            .arg(&spec_json)
            .arg(status_w_raw.to_string())
            .arg(control_r_raw.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The supervisor inherits the two pipe ends under their own numbers (it moves them to
        // STATUS_FD and CONTROL_FD itself), so the spawn needs no `pre_exec` and std uses
        // posix_spawn (vfork-like) instead of fork: forking the host, whose heap holds the
        // model (gigabytes), copied its page tables for every program judged (measured: 77 % of
        // the evaluating process's CPU time in copy_page_range/unmap_page_range). The ends are
        // made inheritable only while SPAWN_LOCK is held and closed here right after the spawn,
        // so no other sandbox run's process can inherit them.
        let spawned = {
            let _spawning = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let inheritable = set_inheritable(status_w_raw).and(set_inheritable(control_r_raw));
            let spawned = inheritable.and_then(|()| cmd.spawn());
            drop(status_w);
            drop(control_r);
            spawned
        };
        let started = Instant::now();
        let mut child = spawned.map_err(|e| {
            SandboxError::io(
                format!(
                    "starting the supervisor {}",
                    self.config.init_program.display()
                ),
                e,
            )
        })?;
        let control = Arc::new(Mutex::new(Some(File::from(control_w))));
        let kill_run = {
            let control = Arc::clone(&control);
            move || {
                if let Some(f) = control.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    let _ = f.write_all(b"k");
                }
            }
        };

        let cap = req.limits.output_bytes;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = req.stdin.clone();
        let feeder = std::thread::spawn(move || {
            // The program may exit without reading: EPIPE is expected, not an error.
            let _ = stdin.write_all(&input);
        });
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (k1, k2) = (kill_run.clone(), kill_run.clone());
        let out_reader = std::thread::spawn(move || capture::read_capped(out, cap, k1));
        let err_reader = std::thread::spawn(move || capture::read_capped(err, cap, k2));

        let backstop = started + req.limits.wall + init::HOST_GRACE;
        let events = read_events(File::from(status_r), backstop, &mut child);
        let _ = child.wait();
        // Closing the control pipe also tells a still-running supervisor to kill the run.
        control.lock().unwrap_or_else(|e| e.into_inner()).take();
        let wall = started.elapsed();
        let _ = feeder.join();
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();

        let mut outcome = Outcome {
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
            output_limit_exceeded: stdout.truncated || stderr.truncated,
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            wall,
            ..Outcome::default()
        };
        let mut refused = None;
        let mut setup_error = None;
        for event in events {
            match event {
                Event::Layers { layers } => outcome.layers = layers,
                Event::Refused { reason } => refused = Some(reason),
                Event::SetupError { message } => setup_error = Some(message),
                Event::Exited {
                    code,
                    signal,
                    cpu_ms,
                } => {
                    outcome.exit_code = code;
                    outcome.signal = signal;
                    outcome.cpu = Duration::from_millis(cpu_ms);
                }
                Event::TimedOut => outcome.timed_out = true,
                Event::KilledByHost => {}
            }
        }
        if let Some(reason) = refused {
            return Err(SandboxError::IsolationMissing(reason));
        }
        if let Some(message) = setup_error {
            return Err(SandboxError::Setup(message));
        }
        outcome.cpu_limit_exceeded = outcome.signal == Some(libc::SIGXCPU)
            || (outcome.signal == Some(libc::SIGKILL)
                && outcome.cpu.as_secs() >= req.limits.cpu_seconds.max(1));
        if outcome.layers.is_empty() {
            return Err(SandboxError::Setup(
                "the supervisor reported nothing (killed before set-up?)".into(),
            ));
        }
        for p in Property::ALL {
            if !outcome.enforced(p) {
                tracing::debug!(property = %p, "sandbox property not enforced in this run");
            }
        }
        Ok(outcome)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Makes the private work root in `parent`: `mkdtemp` (mode 0700, a fresh name), then, through
/// a descriptor opened without following links, mode 0711.
fn make_work_root(parent: &Path) -> Result<PathBuf> {
    let template = parent.join("valley-sandbox-XXXXXX");
    let mut bytes = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| SandboxError::BadRequest(format!("NUL in {}", parent.display())))?
        .into_bytes_with_nul();
    // SAFETY: a writable NUL-terminated template; mkdtemp fills in the X's.
    let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(SandboxError::io(
            format!("making a work root in {}", parent.display()),
            std::io::Error::last_os_error(),
        ));
    }
    bytes.pop();
    let root = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(&root)
        .map_err(|e| SandboxError::io(format!("opening {}", root.display()), e))?;
    dir.set_permissions(std::fs::Permissions::from_mode(0o711))
        .map_err(|e| SandboxError::io(format!("chmod {}", root.display()), e))?;
    Ok(root)
}

/// Reads the supervisor's JSON events until every writer is gone; past `backstop` (the deadline
/// plus a grace the supervisor should never need) kills the supervisor, whose death kills the
/// namespace's init through its parent-death signal.
fn read_events(status: File, backstop: Instant, child: &mut std::process::Child) -> Vec<Event> {
    let fd = status.as_raw_fd();
    let mut reader = BufReader::new(status);
    let mut events = Vec::new();
    let mut killed = false;
    loop {
        let timeout = if killed {
            1000
        } else {
            backstop
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as libc::c_int
        };
        if reader.buffer().is_empty() {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
            if n == 0 {
                if killed {
                    break;
                }
                tracing::warn!("sandbox supervisor overran its deadline; killing it");
                let _ = child.kill();
                events.push(Event::TimedOut);
                killed = true;
                continue;
            }
            if n < 0 {
                continue;
            }
        }
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => match serde_json::from_str::<Event>(line.trim_end()) {
                Ok(e) => events.push(e),
                Err(e) => tracing::warn!("bad sandbox event {line:?}: {e}"),
            },
        }
    }
    events
}

/// Resolves the program: an absolute path as it is, a bare name on the sandbox's `PATH`.
fn resolve_program(name: Option<&str>) -> Result<String> {
    let name = name.ok_or_else(|| SandboxError::BadRequest("empty argv".into()))?;
    if name.starts_with('/') {
        return Ok(name.to_string());
    }
    if name.contains('/') {
        return Err(SandboxError::BadRequest(format!(
            "program {name:?}: give an absolute path or a bare name"
        )));
    }
    SANDBOX_PATH
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .ok_or_else(|| {
            SandboxError::BadRequest(format!("program {name:?} not found in {SANDBOX_PATH}"))
        })
}
