//! Hostile programs run through the real sandbox (the `valley` binary as supervisor, the machine's
//! `/usr/bin/python3` as interpreter). Each one must be contained: the harness (this test process)
//! alive, the expected effect refused, no process of the sandbox uids left, nothing written
//! outside the work directory, and the run directory removed. Honest programs must still pass.
//!
//! Limits are small (2 s wall, 1 CPU second, 256 MiB address space) so the suite stays short on
//! two cores. Requires root (namespaces, setuid), which CI has.

use std::{
    io::ErrorKind,
    net::{TcpListener, UdpSocket},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Once,
    time::Duration,
};

mod common;

use valley_sandbox::{
    init::HOST_GRACE, Limits, Outcome, Property, Request, Sandbox, SandboxConfig,
};

const PYTHON: &str = "/usr/bin/python3";
const SECRET: &str = "valley-secret-7f3a9c";

static SET_SECRET: Once = Once::new();

/// A sandbox with its own uids and work root, so tests running in parallel do not see each
/// other's processes or directories.
struct Fixture {
    sandbox: Sandbox,
    root: PathBuf,
    outside: PathBuf,
}

impl Fixture {
    fn new(index: u32) -> Self {
        // The secret sits in this (the harness's) environment; no sandboxed program may see it.
        SET_SECRET.call_once(|| std::env::set_var("VALLEY_TEST_SECRET", SECRET));
        let root = PathBuf::from(format!(
            "/tmp/valley-sandbox-test-{}-{index}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let outside = root.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        // World-writable: only Landlock stands between the program and this directory.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut config = SandboxConfig::new(PathBuf::from(env!("CARGO_BIN_EXE_valley")));
        config.work_parent = root.join("runs");
        std::fs::create_dir_all(&config.work_parent).unwrap();
        config.uid_base = 1_970_000 + index * 16;
        config.slots = 2;
        Self {
            sandbox: Sandbox::new(config).unwrap(),
            root,
            outside,
        }
    }

    fn limits() -> Limits {
        Limits {
            wall: Duration::from_secs(2),
            cpu_seconds: 1,
            address_space_bytes: 256 << 20,
            file_size_bytes: 1 << 20,
            open_files: 32,
            processes: 16,
            disk_bytes: 4 << 20,
            output_bytes: 64 << 10,
        }
    }

    fn python(&self, code: &str, stdin: &str, args: &[&str]) -> Outcome {
        let mut argv = vec![PYTHON.to_string(), "main.py".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let req = Request {
            argv,
            stdin: stdin.as_bytes().to_vec(),
            files: vec![("main.py".into(), code.as_bytes().to_vec())],
            limits: Self::limits(),
            ..Request::default()
        };
        let out = self.sandbox.run(&req).expect("the sandbox runs");
        self.assert_nothing_left();
        out
    }

    /// No process of the sandbox uids, no run directory, nothing in `outside`.
    fn assert_nothing_left(&self) {
        common::assert_nothing_left(&self.sandbox);
        let outside: Vec<_> = std::fs::read_dir(&self.outside).unwrap().collect();
        assert!(outside.is_empty(), "files written outside: {outside:?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_property_is_enforced_on_this_machine() {
    let f = Fixture::new(0);
    let layers = f.sandbox.probe().unwrap();
    for l in &layers {
        eprintln!(
            "{:<30} {:<16} {:<5} {}",
            l.mechanism, l.property, l.enforced, l.detail
        );
    }
    for p in Property::ALL {
        assert!(
            layers.iter().any(|l| l.property == p && l.enforced),
            "{p} is not enforced here: {layers:#?}"
        );
    }
    // Every mechanism, the fallbacks included, works on this machine (measured in issue 5).
    let off: Vec<_> = layers.iter().filter(|l| !l.enforced).collect();
    assert!(off.is_empty(), "mechanisms not in force: {off:#?}");
}

#[test]
fn honest_programs_pass() {
    let f = Fixture::new(1);
    let code = r#"
import sys, json, collections, re, itertools, heapq, math, decimal, fractions, random, datetime
import threading, functools, bisect, string
data = sys.stdin.read().split()
nums = list(map(int, data))
buf = bytearray(8 * 1024 * 1024)          # a few MB
with open("scratch.txt", "w") as fh:       # the work directory is writable
    fh.write("ok")
ts = [threading.Thread(target=lambda: None) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(nums), len(buf) // 2**20, open("scratch.txt").read())
print(json.dumps(collections.Counter("abca").most_common(1)))
"#;
    let out = f.python(code, "1 2 3\n4\n", &[]);
    assert!(out.success(), "{out:?} stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "10 8 ok\n[[\"a\", 2]]\n");
    for p in Property::ALL {
        assert!(out.enforced(p), "{p} not enforced");
    }
}

#[test]
fn tcp_and_udp_to_loopback_reach_nothing() {
    let f = Fixture::new(2);
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let code = r#"
import socket, sys
tcp_port, udp_port = int(sys.argv[1]), int(sys.argv[2])
# AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_ALG, AF_VSOCK: the families are an empty allowlist.
kinds = {16: socket.SOCK_DGRAM, 38: socket.SOCK_SEQPACKET}
for family in (2, 10, 16, 17, 38, 40):
    try:
        socket.socket(family, kinds.get(family, socket.SOCK_STREAM))
        print("socket", int(family), "opened")
    except OSError as e:
        print("socket", int(family), "refused", e.errno)
try:
    socket.socket(socket.AF_UNIX).connect("/nonexistent")
    print("unix socket opened")
except OSError as e:
    print("unix socket refused", e.errno)
a, b = socket.socketpair()
a.sendall(b"pair")
print("socketpair works", b.recv(4) == b"pair")
try:
    socket.create_connection(("127.0.0.1", tcp_port), timeout=1).sendall(b"escaped")
    print("tcp connected")
except OSError as e:
    print("tcp refused")
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"escaped", ("127.0.0.1", udp_port))
    print("udp sent")
except OSError as e:
    print("udp refused")
"#;
    let tcp_port = tcp.local_addr().unwrap().port().to_string();
    let udp_port = udp.local_addr().unwrap().port().to_string();
    let out = f.python(code, "", &[&tcp_port, &udp_port]);
    let stdout = text(&out.stdout);
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    // The seccomp filter refuses the socket families themselves (EACCES = 13): the network
    // fallback works even inside the namespace.
    for family in [2, 10, 16, 17, 38, 40] {
        assert!(
            stdout.contains(&format!("socket {family} refused 13")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("tcp refused") && stdout.contains("udp refused"),
        "{stdout}"
    );
    // Pathname Unix sockets are beyond Landlock ABI 7: seccomp refuses socket(AF_UNIX), while
    // socketpair() (asyncio, multiprocessing) keeps working.
    assert!(stdout.contains("unix socket refused 13"), "{stdout}");
    assert!(stdout.contains("socketpair works True"), "{stdout}");
    assert_eq!(
        tcp.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the TCP listener got a connection"
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        udp.recv_from(&mut buf).map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the UDP listener got a datagram"
    );
}

#[test]
fn writes_outside_the_work_dir_fail_even_through_a_symlink() {
    let f = Fixture::new(3);
    let code = r#"
import os, sys
outside = sys.argv[1]
for path in (outside + "/direct.txt", "/tmp/valley-escape.txt", "/var/tmp/valley-escape.txt"):
    try:
        open(path, "w").write("escaped")
        print("wrote", path)
    except OSError as e:
        print("refused", path, e.errno)
os.symlink(outside, "link")
try:
    open("link/via-symlink.txt", "w").write("escaped")
    print("wrote through symlink")
except OSError as e:
    print("symlink refused", e.errno)
try:
    os.mkdir(outside + "/newdir")
    print("made dir")
except OSError as e:
    print("mkdir refused", e.errno)
"#;
    let out = f.python(code, "", &[f.outside.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(
        !stdout.contains("wrote") && !stdout.contains("made dir"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("refused").count(), 5, "{stdout}");
    assert!(!Path::new("/tmp/valley-escape.txt").exists());
}

#[test]
fn a_root_only_file_is_unreadable() {
    let f = Fixture::new(4);
    let secret_file = f.root.join("root-only.txt");
    std::fs::write(&secret_file, SECRET).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let code = r#"
import sys
try:
    print(open(sys.argv[1]).read())
except OSError as e:
    print("refused", e.errno)
"#;
    let out = f.python(code, "", &[secret_file.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "refused 13\n", "{out:?}");
}

#[test]
fn the_harness_environment_is_invisible() {
    let f = Fixture::new(5);
    assert_eq!(std::env::var("VALLEY_TEST_SECRET").unwrap(), SECRET);
    let code = r#"
import os, sys
found = [k for k, v in os.environ.items() if "valley-secret" in v]
try:
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
except OSError:
    pids = []  # /proc is outside the read allowlist
for pid in [sys.argv[1]] + pids:
    try:
        if b"valley-secret" in open(f"/proc/{pid}/environ", "rb").read():
            found.append(pid)
    except OSError:
        pass
print("env:", sorted(os.environ))
print("found:", found)
"#;
    let out = f.python(code, "", &[&std::process::id().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.success(), "{out:?}");
    assert!(stdout.contains("found: []"), "{stdout}");
    assert!(!stdout.contains(SECRET));
    // The environment is the fixed minimal one.
    assert!(
        stdout.contains(
            "env: ['HOME', 'LANG', 'LC_CTYPE', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR']"
        ) || stdout.contains("env: ['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR']"),
        "{stdout}"
    );
}

#[test]
fn fork_and_thread_bombs_are_contained() {
    let f = Fixture::new(6);
    let fork_bomb = r#"
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"#;
    let out = f.python(fork_bomb, "", &[]);
    assert!(!out.success(), "{out:?}");
    let thread_bomb = r#"
import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
        n += 1
except (RuntimeError, MemoryError) as e:
    print("stopped after", n, type(e).__name__)
"#;
    let out = f.python(thread_bomb, "", &[]);
    let stdout = text(&out.stdout);
    let n: u64 = stdout
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(n < Fixture::limits().processes, "{stdout}");
}

#[test]
fn memory_cpu_and_wall_limits_hold() {
    let f = Fixture::new(7);
    let out = f.python("x = bytearray(10 * 2**30)\nprint('allocated')", "", &[]);
    assert!(!out.success());
    assert!(text(&out.stderr).contains("MemoryError"), "{out:?}");

    let out = f.python("while True:\n    pass\n", "", &[]);
    assert!(out.cpu_limit_exceeded || out.timed_out, "{out:?}");
    // Ended by the limits, well before the host's backstop (the deadline plus its grace).
    assert!(out.wall < Duration::from_secs(2) + HOST_GRACE, "{out:?}");

    let out = f.python("import time\ntime.sleep(1000)\n", "", &[]);
    assert!(out.timed_out, "{out:?}");
    assert!(out.wall >= Duration::from_secs(2) && out.wall < Duration::from_secs(2) + HOST_GRACE);
}

#[test]
fn a_setsid_double_fork_daemon_dies_with_the_run() {
    let f = Fixture::new(8);
    let code = r#"
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(1000):
            time.sleep(1)
    os._exit(0)
print("parent done")
"#;
    let out = f.python(code, "", &[]);
    assert_eq!(text(&out.stdout), "parent done\n");
    assert!(
        !out.timed_out,
        "the run ended when the program did: {out:?}"
    );
    // `python` asserted above that no process of the sandbox uids is left.
}

#[test]
fn killing_the_parent_or_everything_reaches_nothing_outside() {
    let f = Fixture::new(9);
    // A process of ours (root) that kill(-1) must not reach.
    let mut bystander = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let code = r#"
import os, signal
for target in (os.getppid(), 1, -1):
    try:
        os.kill(target, signal.SIGKILL)
        print("killed", target)
    except OSError as e:
        print("refused", target, e.errno)
"#;
    let out = f.python(code, "", &[]);
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "kill(-1) reached outside"
    );
    bystander.kill().unwrap();
    let _ = bystander.wait();
    // kill(-1) from inside kills at most the program itself; it never reaches the supervisor.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("refused 1 1") || stdout.contains("refused 1 3"),
        "{out:?}"
    );
}

#[test]
fn printing_gigabytes_is_cut_at_the_cap() {
    let f = Fixture::new(10);
    let out = f.python(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
        "",
        &[],
    );
    assert!(out.output_limit_exceeded && out.stdout_truncated, "{out:?}");
    assert_eq!(out.stdout.len(), Fixture::limits().output_bytes);
    assert!(!out.timed_out, "the cap kills the run at once");
}

#[test]
fn filling_the_disk_stops_at_the_quota() {
    let f = Fixture::new(11);
    let code = r#"
import os
total = 0
try:
    for i in range(10000):
        with open(f"f{i}", "wb") as fh:
            for _ in range(16):
                fh.write(b"x" * 65536)
                total += 65536
except OSError as e:
    print("stopped", e.errno, total)
"#;
    let out = f.python(code, "", &[]);
    let stdout = text(&out.stdout);
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"stopped"), "{out:?}");
    assert_eq!(fields[1], "28", "ENOSPC from the tmpfs quota: {stdout}");
    let total: u64 = fields[2].parse().unwrap();
    assert!(total <= Fixture::limits().disk_bytes, "{stdout}");
}

#[test]
fn exhausting_file_descriptors_stops_at_the_limit() {
    let f = Fixture::new(12);
    let code = r#"
fhs = []
try:
    while True:
        fhs.append(open("main.py"))
except OSError as e:
    print("stopped", e.errno, len(fhs))
"#;
    let out = f.python(code, "", &[]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("stopped 24 "), "EMFILE: {out:?}");
    let n: u64 = stdout.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(n < Fixture::limits().open_files, "{stdout}");
}

#[test]
fn a_program_the_sandbox_uid_cannot_execute_is_a_setup_error() {
    let f = Fixture::new(13);
    let private = f.root.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let prog = private.join("prog");
    std::fs::copy("/bin/true", &prog).unwrap();
    let req = Request {
        argv: vec![prog.display().to_string()],
        limits: Fixture::limits(),
        ..Request::default()
    };
    let err = f.sandbox.run(&req).unwrap_err().to_string();
    assert!(err.contains("must be able to read and execute"), "{err}");
    f.assert_nothing_left();
}

/// A fixture with some mechanisms switched off.
fn weakened(index: u32, disabled: &[&str], allow_weaker: bool) -> Fixture {
    let mut f = Fixture::new(index);
    let mut config = f.sandbox.config().clone();
    config.disabled_mechanisms = disabled.iter().map(|s| s.to_string()).collect();
    config.allow_weaker_isolation = allow_weaker;
    f.sandbox = Sandbox::new(config).unwrap();
    f
}

#[test]
fn a_missing_required_property_refuses_the_run_loudly() {
    let f = weakened(14, &["landlock"], false);
    let req = Request {
        argv: vec![PYTHON.into(), "-c".into(), "open('/tmp/x', 'w')".into()],
        limits: Fixture::limits(),
        ..Request::default()
    };
    let err = f.sandbox.run(&req).unwrap_err().to_string();
    assert!(
        err.contains("required isolation missing") && err.contains("filesystem"),
        "{err}"
    );
    f.assert_nothing_left();
}

#[test]
fn without_namespaces_seccomp_still_blocks_the_network_and_the_uid_sweep_kills_daemons() {
    // Namespaces off: the network rests on seccomp alone, the process tree on the uid sweep.
    let f = weakened(
        15,
        &[
            "network namespace",
            "pid namespace",
            "work tmpfs (mount namespace)",
        ],
        true,
    );
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let code = r#"
import os, socket, sys, time
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    print("tcp connected")
except OSError as e:
    print("tcp refused", e.errno)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1000)
    os._exit(0)
"#;
    let port = tcp.local_addr().unwrap().port().to_string();
    let out = f.python(code, "", &[&port]);
    assert_eq!(text(&out.stdout), "tcp refused 13\n", "{out:?}");
    assert!(!out.enforced(Property::ProcessTree) && !out.enforced(Property::DiskQuota));
    assert!(
        out.enforced(Property::Network),
        "seccomp carries the network property"
    );
    assert_eq!(
        tcp.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // `python` asserted that the daemon (setsid, double fork) is gone: the uid sweep killed it.
}

/// Finding 1 of the judge-integrity issue: answers were readable, because every program could
/// read the whole file system. A canary token sits where answers live (a problems file under
/// /tmp, a data cache in the checkout, /var/tmp); a program told those paths, with the token on
/// stdin, searches them and every directory it can list. Control: the same search finds the
/// token in a file of its own work directory.
#[test]
fn the_answers_are_nowhere_to_be_read() {
    let f = Fixture::new(16);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let token = format!("canary-{nanos:x}-{}", std::process::id());
    let checkout_cache = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(format!("canary-{}", std::process::id()));
    let places = [
        f.root.join("hidden-eval.jsonl"),
        checkout_cache.join("eval.jsonl"),
        PathBuf::from(format!(
            "/var/tmp/valley-canary-{}.jsonl",
            std::process::id()
        )),
    ];
    for p in &places {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{{\"output\": \"{token}\"}}\n")).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let search = r#"
import os, sys, time
token = sys.stdin.read().strip().encode()
found, opened, started = [], 0, time.monotonic()
def look(path):
    global opened
    try:
        if os.path.getsize(path) > (1 << 20):
            return
        with open(path, "rb") as fh:
            opened += 1
            if token in fh.read():
                found.append(path)
    except OSError:
        pass
for path in sys.argv[1:]:
    look(path)
starts = ["/", "/tmp", "/var/tmp", "/root", "/home", "/work", "/etc", "/proc", "/usr", os.getcwd()] + sys.path
for top in starts:
    for root, dirs, files in os.walk(top or ".", onerror=lambda e: None):
        if time.monotonic() - started > 20:
            break
        for name in files:
            look(os.path.join(root, name))
print("opened", opened, "found", found)
"#;
    let mut args: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    args.push("/proc/1/environ".into());
    let req = |files: Vec<(String, Vec<u8>)>| Request {
        argv: [PYTHON.to_string(), "main.py".to_string()]
            .into_iter()
            .chain(args.iter().cloned())
            .collect(),
        stdin: token.as_bytes().to_vec(),
        files,
        limits: Limits {
            wall: Duration::from_secs(40),
            cpu_seconds: 30,
            ..Fixture::limits()
        },
        ..Request::default()
    };
    let main = ("main.py".to_string(), search.as_bytes().to_vec());
    let out = f.sandbox.run(&req(vec![main.clone()])).unwrap();
    let control = f
        .sandbox
        .run(&req(vec![
            main,
            ("answers.jsonl".into(), token.as_bytes().to_vec()),
        ]))
        .unwrap();
    for p in &places {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir_all(&checkout_cache);
    let stdout = text(&out.stdout);
    assert!(out.success(), "{out:?} {}", text(&out.stderr));
    assert!(stdout.contains("found []"), "the token was found: {stdout}");
    // The search did read: the standard library is in the allowlist.
    let opened: usize = stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(opened > 100, "{stdout}");
    assert!(
        text(&control.stdout).contains("answers.jsonl"),
        "the search cannot find a token it may read: {}",
        text(&control.stdout)
    );
    f.assert_nothing_left();
}

/// A problems file under a path the interpreter may read (a venv that packages a benchmark's
/// data, say) is refused before any program runs.
#[test]
fn answers_under_an_allowed_path_refuse_the_run() {
    let f = Fixture::new(17);
    let allowed = f.sandbox.readable(PYTHON).unwrap();
    let stdlib = allowed
        .iter()
        .find(|p| p.join("os.py").is_file())
        .expect("the standard library is allowlisted")
        .clone();
    f.sandbox.hide(&stdlib.join("os.py")).unwrap();
    let err = f
        .sandbox
        .run(&Request {
            argv: vec![PYTHON.into(), "-c".into(), "print(1)".into()],
            limits: Fixture::limits(),
            ..Request::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds answers") && err.contains("os.py"),
        "{err}"
    );
    f.assert_nothing_left();
    // Hiding something outside the allowlist leaves runs alone.
    let g = Fixture::new(18);
    g.sandbox.hide(&g.root).unwrap();
    let out = g.python("print(2)", "", &[]);
    assert_eq!(text(&out.stdout), "2\n");
}

/// Finding 3: a test's process could ptrace its driver (same uid), read its memory or take its
/// file descriptors. Each way in is refused; forking and pipes keep working.
#[test]
fn processes_of_one_run_cannot_tamper_with_each_other() {
    let f = Fixture::new(19);
    let code = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    return "ok" if r >= 0 else "refused %d" % ctypes.get_errno()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    parent = os.getppid()
    out = []
    out.append("ptrace " + call("ptrace", 16, parent, None, None))       # PTRACE_ATTACH
    out.append("seize " + call("ptrace", 0x4206, parent, None, None))    # PTRACE_SEIZE
    buf = ctypes.create_string_buffer(8)
    class iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
    remote = iovec(id(out), 8)
    out.append("vm_readv " + call("process_vm_readv", parent, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
    out.append("vm_writev " + call("process_vm_writev", parent, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
    pidfd = libc.syscall(434, parent, 0)                                # pidfd_open
    out.append("pidfd_getfd " + call("syscall", 438, pidfd, w, 0))      # pidfd_getfd
    for path in ("/proc/%d/mem" % parent, "/proc/%d/fd/%d" % (parent, w), "/proc/%d/environ" % parent):
        try:
            open(path, "rb").read(1)
            out.append("open ok " + path)
        except OSError as e:
            out.append("open refused %d" % e.errno)
    try:
        os.listdir("/proc/%d/fd" % parent)
        out.append("listdir ok")
    except OSError as e:
        out.append("listdir refused %d" % e.errno)
    os.write(w, ("\n".join(out)).encode())
    os._exit(0)
os.close(w)
time.sleep(0.1)
got = b""
while True:
    chunk = os.read(r, 4096)
    if not chunk:
        break
    got += chunk
os.waitpid(pid, 0)
print(got.decode())
print("parent alive")
"#;
    let out = f.python(code, "", &[]);
    let stdout = text(&out.stdout);
    assert!(out.success(), "{out:?} {}", text(&out.stderr));
    for line in [
        "ptrace refused 1",
        "seize refused 1",
        "vm_readv refused 1",
        "vm_writev refused 1",
        "pidfd_getfd refused 1",
        "listdir refused 13",
        "parent alive",
    ] {
        assert!(stdout.contains(line), "{line:?} missing: {stdout}");
    }
    // EACCES from Landlock, or ENOENT when the driver has closed the descriptor already.
    assert!(!stdout.contains("open ok"), "{stdout}");
    assert_eq!(stdout.matches("open refused ").count(), 3, "{stdout}");
}

/// Finding 5: the work root was a predictable `/tmp/valley-sandbox`, made and chmod-ed by root
/// without checking it. Now each sandbox makes its own with `mkdtemp`: a fresh directory (never a
/// symlink, never someone else's), mode 0711, removed with the sandbox; a planted symlink at the
/// old path is not touched.
#[test]
fn each_sandbox_makes_its_own_private_work_root() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(20);
    let target = f.root.join("victim");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&target, f.root.join("runs/valley-sandbox")).unwrap();
    let a = Sandbox::new(f.sandbox.config().clone()).unwrap();
    let b = Sandbox::new(f.sandbox.config().clone()).unwrap();
    assert_ne!(a.work_root(), b.work_root());
    for sb in [&a, &b] {
        let meta = std::fs::symlink_metadata(sb.work_root()).unwrap();
        assert!(meta.is_dir(), "{meta:?}");
        assert_eq!(meta.mode() & 0o7777, 0o711);
        assert_eq!(meta.uid(), unsafe { libc::geteuid() });
        assert!(sb.work_root().starts_with(f.root.join("runs")));
    }
    let out = a
        .run(&Request {
            argv: vec![PYTHON.into(), "-c".into(), "print(3)".into()],
            limits: Fixture::limits(),
            ..Request::default()
        })
        .unwrap();
    assert_eq!(text(&out.stdout), "3\n");
    let root = a.work_root().to_path_buf();
    drop(a);
    assert!(!root.exists(), "the work root outlived its sandbox");
    let victim = std::fs::metadata(&target).unwrap();
    assert_eq!(
        victim.mode() & 0o7777,
        0o700,
        "the symlink's target was changed"
    );
}

/// Finding 4: weakened isolation was quiet. Every run reports the isolation it had in one line;
/// a mechanism that is off (here the private /proc) makes it `weaker`.
#[test]
fn the_isolation_of_each_run_is_reported() {
    let f = Fixture::new(21);
    let out = f.python("print(4)", "", &[]);
    assert!(out.isolation().starts_with("full ("), "{}", out.isolation());
    let w = weakened(22, &["private /proc"], true);
    let out = w.python("print(5)", "", &[]);
    assert_eq!(out.isolation(), "weaker: private /proc off");
    let refused = weakened(23, &["private /proc"], false);
    let req = Request {
        argv: vec![PYTHON.into(), "-c".into(), "print(6)".into()],
        limits: Fixture::limits(),
        ..Request::default()
    };
    // The pid namespace still carries the process-tree property: the run goes ahead, reported.
    let out = refused.sandbox.run(&req).unwrap();
    assert_eq!(out.isolation(), "weaker: private /proc off");
}
