//! The `strict` rule set's driver: all tests of one LiveCodeBench-shaped sample in one sandbox
//! run. A Python driver imports LiveCodeBench's prelude and compiles the solution once, then
//! forks a fresh child per test (so every test starts from a clean process state, with its own
//! CPU and memory limits, its real stdin and stdout, its exit status respected) and reports each
//! test as a frame on its stdout: a JSON header line, then the test's stdout bytes (or, for a
//! functional test, its return value as plain data, see the `plain_py` module). It stops at the
//! first test that times out, crashes or exits non-zero; wrong answers are decided by the judge,
//! which holds the expected outputs. This saves the interpreter start-up and the ~30 ms prelude
//! per test.

use serde_json::Value;

/// The driver; `PRELUDE`, `TIMEOUT`, `CAP` and `PLAIN_DATA` ([`crate::plain_py::ENCODER`]) are
/// replaced.
pub const DRIVER: &str = r#"import os, sys, json, time, select, signal, traceback
_frames = os.dup(1)
def _frame(head, payload=b""):
    head["len"] = len(payload)
    _data = json.dumps(head).encode() + b"\n" + payload
    while _data:
        _data = _data[os.write(_frames, _data):]
_src = open("solution.py", encoding="utf-8").read()
try:
    _code = compile(_src, "solution.py", "exec")
except (SyntaxError, ValueError):
    _frame({"compile_error": traceback.format_exc(limit=0)[-300:]})
    sys.exit(0)
_tests = json.load(open("tests.json"))
PLAIN_DATA
exec(PRELUDE, {"__builtins__": __builtins__})
sys.stdout.flush(); sys.stderr.flush()
for _i, _t in enumerate(_tests):
    with open("input.txt", "w", encoding="utf-8") as _f:
        _f.write(_t["input"] if _t["kind"] == "stdin" else "")
    _ro, _wo = os.pipe()
    _re, _we = os.pipe()
    _pid = os.fork()
    if _pid == 0:
        try:
            os.setpgid(0, 0)
            _fd = os.open("input.txt", os.O_RDONLY)
            os.dup2(_fd, 0)
            os.dup2(_we, 2)
            os.dup2(_wo if _t["kind"] == "stdin" else _we, 1)
            for _x in range(3, 1024):
                if _x != _wo:
                    try:
                        os.close(_x)
                    except OSError:
                        pass
            if _t["kind"] == "stdin":
                _g = {"__name__": "__main__", "__builtins__": __builtins__}
                exec(PRELUDE, _g)
                exec(_code, _g)
            else:
                _g = {"__name__": "solution", "__builtins__": __builtins__}
                exec(PRELUDE, _g)
                exec(_code, _g)
                _args = [json.loads(_l) for _l in _t["input"].split("\n") if _l.strip()]
                _fn = getattr(_g["Solution"](), _t["fn_name"]) if "Solution" in _g else _g[_t["fn_name"]]
                _data = json.dumps(_plain(_fn(*_args))).encode()
                while _data:
                    _data = _data[os.write(_wo, _data):]
            try:
                sys.stdout.flush()
            except ValueError:
                pass
            os._exit(0)
        except SystemExit as _e:
            try:
                sys.stdout.flush()
            except BaseException:
                pass
            _c = _e.code
            os._exit(_c if isinstance(_c, int) else (0 if _c is None else 1))
        except BaseException:
            try:
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:
                pass
            os._exit(1)
    os.close(_wo); os.close(_we)
    _bufs = {_ro: bytearray(), _re: bytearray()}
    _open = [_ro, _re]
    _deadline = time.monotonic() + TIMEOUT
    _timed_out = _over = False
    _status = None
    def _drain(ready):
        global _over
        for _r in ready:
            _chunk = os.read(_r, 65536)
            if not _chunk:
                _open.remove(_r)
            elif len(_bufs[_r]) < CAP:
                _bufs[_r] += _chunk
            else:
                _over = True
    while True:
        _left = _deadline - time.monotonic()
        if _left <= 0:
            _timed_out = True
            break
        _drain(select.select(_open, [], [], min(_left, 0.02))[0] if _open else [])
        if _over:
            break
        _p, _st, _u = os.wait4(_pid, os.WNOHANG)
        if _p:
            # Exited: everything it wrote is in the pipes now; read what is there and stop
            # (a lingering grandchild may hold the pipes open).
            _status = _st
            while _open and not _over:
                _rd = select.select(_open, [], [], 0)[0]
                if not _rd:
                    break
                _drain(_rd)
            break
        if not _open:
            time.sleep(0.001)
    for _k in (lambda: os.killpg(_pid, signal.SIGKILL), lambda: os.kill(_pid, signal.SIGKILL)):
        try:
            _k()
        except OSError:
            pass
    if _status is None:
        _, _status, _u = os.wait4(_pid, 0)
    os.close(_ro); os.close(_re)
    _code_ = os.WEXITSTATUS(_status) if os.WIFEXITED(_status) else None
    _sig = os.WTERMSIG(_status) if os.WIFSIGNALED(_status) else None
    if _sig == signal.SIGXCPU:
        _timed_out = True
    _frame({"test": _i, "code": _code_, "signal": _sig, "timed_out": _timed_out,
            "output_limit": _over, "stderr": bytes(_bufs[_re][-300:]).decode("utf-8", "replace")},
           bytes(_bufs[_ro][:CAP]))
    if _timed_out or _over or _code_ != 0:
        break
"#;

/// Splits a driver's stdout into frames (a JSON header with the payload's `len`, then the
/// payload); stops at the first malformed or cut frame (the run was killed mid-way, or the
/// program wrote garbage), returning the complete ones.
pub fn split_frames(mut bytes: &[u8]) -> Vec<(Value, Vec<u8>)> {
    let mut frames = Vec::new();
    while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
        let Ok(head) = serde_json::from_slice::<Value>(&bytes[..nl]) else {
            break;
        };
        let Some(len) = head.get("len").and_then(Value::as_u64) else {
            break;
        };
        let rest = &bytes[nl + 1..];
        let Some(payload) = usize::try_from(len).ok().and_then(|n| rest.get(..n)) else {
            break;
        };
        bytes = &rest[payload.len()..];
        frames.push((head, payload.to_vec()));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_a_cut_frame_is_dropped() {
        let text = b"{\"test\":0,\"code\":0,\"len\":3}\nab\n{\"test\":1,\"code\":1,\"len\":0}\n{\"test\":2,\"len\":9}\nxx";
        let frames = split_frames(text);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].1, b"ab\n");
        assert_eq!(frames[1].0["code"], 1);
        assert!(
            split_frames(b"{\"test\":0}\n").is_empty(),
            "a header without len"
        );
    }
}
