//! HumanEval-shaped problems (`prompt` + completion, then `test`'s `check(candidate)`) judged so
//! that the completion cannot forge the verdict. OpenAI's harness runs prompt, completion, test
//! and `check` as one program and counts exit status 0 as a pass; there, a completion can exit
//! early, return an object equal to everything, read `check`'s expected values through
//! `sys._getframe`, or patch the helpers and builtins `check` relies on. Here:
//!
//! - two processes in one sandbox run. The driver forks the *solution process* first, which
//!   gives up stdin, stdout and stderr (all `/dev/null`) and every descriptor but its two pipes,
//!   runs prompt + completion and then serves calls of the entry point;
//! - the driver, which never runs a line of the completion, then reads the job from stdin (the
//!   nonce, the prompt and the test, which the solution process never had), runs prompt + test
//!   in a clean namespace and calls `check` with a proxy: arguments go to the solution process,
//!   return values come back over a pipe as *plain data* (below) and are rebuilt here, so every
//!   comparison `check` makes is between real built-in values;
//! - only the driver holds the run's stdout; it prints one verdict line carrying the nonce the
//!   host put on stdin, and the host counts a pass only when that line says so. Exit statuses
//!   prove nothing.
//!
//! Plain data: `None`, `bool`, `int`, `float`, `complex`, `str`, `bytes`, and `list`, `tuple`,
//! `dict`, `set`, `frozenset` of those, types preserved. The solution process converts a value of
//! a subclass of one of them to its base value through the base type's own C methods (an `int`
//! subclass with a lying `__eq__` becomes its real int; `numpy` scalars go through `.item()`);
//! anything else is a runtime error naming the type. Whatever the solution process sends, the
//! driver decodes only this encoding, so the worst it can do is return a wrong plain value.
//! Processes of one run cannot tamper with each other: the sandbox refuses `ptrace`,
//! `process_vm_*` and `pidfd_getfd`, and `/proc` is outside the read allowlist.

/// The driver; `ENTRY` (twice) is replaced by the entry point's name as a Python string literal,
/// `PLAIN_DATA` by [`crate::plain_py::ENCODER`].
pub const DRIVER: &str = r#"import os, sys, json

PLAIN_DATA
def _value(v, depth=0):
    if depth > 100:
        raise ValueError("nested too deeply")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is list:
        return [_value(x, depth + 1) for x in v]
    if t is dict and len(v) == 1:
        ((k, x),) = v.items()
        tx = type(x)
        if k == "i" and tx is str:
            return int(x, 16)
        if k == "f" and tx is str:
            return float.fromhex(x)
        if k == "c" and tx is list and len(x) == 2 and all(type(p) is str for p in x):
            return complex(float.fromhex(x[0]), float.fromhex(x[1]))
        if k == "b" and tx is str:
            return bytes.fromhex(x)
        if tx is list:
            items = [_value(e, depth + 1) for e in x] if k != "d" else None
            if k == "t":
                return tuple(items)
            if k == "s":
                return set(items)
            if k == "fs":
                return frozenset(items)
            if k == "d":
                out = {}
                for pair in x:
                    if type(pair) is not list or len(pair) != 2:
                        raise ValueError("not plain data")
                    out[_value(pair[0], depth + 1)] = _value(pair[1], depth + 1)
                return out
    raise ValueError("not plain data")

def _send(fd, obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]

def _describe(e):
    try:
        return ("%s: %s" % (type(e).__name__, e))[:300]
    except BaseException:
        return "an exception that cannot be printed"

def _serve(rfd, wfd):
    src = open("solution.py", encoding="utf-8").read()
    try:
        code = compile(src, "solution.py", "exec")
    except (SyntaxError, ValueError) as e:
        _send(wfd, {"compile_error": _describe(e)})
        return
    g = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(code, g)
        fn = g[ENTRY]
    except BaseException as e:
        _send(wfd, {"error": _describe(e)})
        return
    _send(wfd, {"ready": True})
    for line in os.fdopen(rfd, "rb"):
        try:
            req = json.loads(line)
            out = {"ok": _plain(fn(*_value(req["args"]), **_value(req["kwargs"])))}
        except BaseException as e:
            out = {"error": _describe(e)}
        _send(wfd, out)

_req_r, _req_w = os.pipe()
_resp_r, _resp_w = os.pipe()
sys.stdout.flush()
sys.stderr.flush()
_pid = os.fork()
if _pid == 0:
    try:
        _null = os.open(os.devnull, os.O_RDWR)
        for _fd in (0, 1, 2):
            os.dup2(_null, _fd)
        for _fd in range(3, 1024):
            if _fd not in (_req_r, _resp_w):
                try:
                    os.close(_fd)
                except OSError:
                    pass
        _serve(_req_r, _resp_w)
    finally:
        os._exit(0)
os.close(_req_r)
os.close(_resp_w)

_job = json.loads(sys.stdin.read())
_resp = os.fdopen(_resp_r, "rb")

def _verdict(verdict, detail=""):
    _send(1, {"nonce": _job["nonce"], "verdict": verdict, "detail": str(detail)[:300]})
    sys.exit(0)

class _SolutionError(Exception):
    pass

def _answer():
    line = _resp.readline()
    if not line:
        raise _SolutionError("the solution's process ended")
    try:
        msg = json.loads(line)
    except ValueError:
        raise _SolutionError("the solution's process sent a malformed answer")
    if type(msg) is not dict:
        raise _SolutionError("the solution's process sent a malformed answer")
    return msg

def candidate(*args, **kwargs):
    _send(_req_w, {"args": _plain(list(args)), "kwargs": _plain(kwargs)})
    msg = _answer()
    if "ok" in msg:
        try:
            return _value(msg["ok"])
        except (ValueError, TypeError, RecursionError, OverflowError) as e:
            raise _SolutionError("the return value is not plain data: %s" % (e,))
    raise _SolutionError(str(msg.get("error", "no answer"))[:300])

try:
    _first = _answer()
except _SolutionError as e:
    _verdict("runtime_error", e)
if "compile_error" in _first:
    _verdict("compile_error", _first["compile_error"])
if "ready" not in _first:
    _verdict("runtime_error", _first.get("error", "the solution's process did not start"))
_ns = {"__name__": "__main__", "__builtins__": __builtins__}
exec(compile(_job["prompt"], "prompt.py", "exec"), _ns)
# The check may call the entry point by name (HumanEval/33 does): that is the solution too.
_ns[ENTRY] = candidate
exec(compile(_job["test"], "test.py", "exec"), _ns)
try:
    _ns["check"](candidate)
except _SolutionError as e:
    _verdict("runtime_error", e)
except AssertionError as e:
    _verdict("wrong_answer", "assertion failed " + str(e))
except Exception as e:
    _verdict("runtime_error", _describe(e))
_verdict("pass")
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn the_placeholders_are_there_once() {
        assert_eq!(super::DRIVER.matches("ENTRY").count(), 2);
        assert_eq!(super::DRIVER.matches("PLAIN_DATA").count(), 1);
    }
}
