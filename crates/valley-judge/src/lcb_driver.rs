//! The `livecodebench@28fef95` rule set's driver: one sandbox run does to a sample what
//! LiveCodeBench's `check_correctness` → `run_test` does to it at commit 28fef95
//! (`lcb_runner/evaluation/compute_code_generation_metrics.py`, `testing_util.py`), so that an
//! honest program gets their verdict, quirks included:
//!
//! - one process for every test of the sample, stdin and stdout of the process itself on
//!   `/dev/null` (their worker is a `multiprocessing.Process`), integers printable up to 50,000
//!   digits (`sys.set_int_max_str_digits(50000)` at the evaluator's import), and the parts of
//!   `reliability_guard` an honest program can meet (`exit`, `quit` and `help` are `None`; `os`,
//!   `shutil` and `subprocess` functions are `None`);
//! - stdin programs: a last top-level `if __name__ == '__main__':` is unwrapped
//!   (`clean_if_name`), the imports are hoisted and the rest becomes the body of a function
//!   (`make_function`), exec'd after the prelude in a module `tmp_sol`; each test calls it with
//!   `sys.stdout` replaced by a `StringIO` (whose `close` takes one argument) and `sys.stdin` by
//!   their mock (`read` gives all the input every call, `readline` reads on, `readlines` is
//!   `input.split("\n")`, no iteration, `buffer.readline` is the first line every call), the
//!   real stdin's `read`/`readline`/`readlines` patched too, `builtins.open` their `mock_open`, and
//!   `SystemExit` swallowed (`call_method`);
//! - functional programs: the prelude and the program exec'd once in `tmp_sol`; the method found
//!   on one `Solution()` when the text `class Solution` occurs in the code, else on the module
//!   (`compile_code`, `get_function`); arguments are `json.loads` of every line of the input,
//!   blank ones included (`grade_call_based`);
//! - per test, `signal.alarm`'s timeout raising an exception whose name says `TimeoutException`
//!   (an `Exception`: -3), any other `Exception` is a runtime error (-4) and stops the sample; a
//!   `BaseException` that escapes, `os._exit` or the overall deadline leave no result, which they
//!   count as every test failed (-1).
//!
//! Two processes in the one sandbox run. The driver forks the *solution's process* (their
//! worker), which does all of the above; the driver itself never runs a line of the program and
//! alone writes the run's stdout. For each test it sends the test's index with a fresh nonce and
//! accepts exactly one answer carrying that nonce (the captured text, or the return value as
//! plain data, see the `plain_py` module), so the program can only report on a test it has been
//! given; answers it forges for later tests, or a closing frame it writes, count for nothing.
//! The judge compares with LiveCodeBench's rules; expected outputs never enter the sandbox. The
//! sample's result stands only with the driver's closing frame.

/// The driver; `PRELUDE`, `TIMEOUT`, `CAP` and `PLAIN_DATA` are replaced.
pub const DRIVER: &str = r#"import os, sys, io, json, ast, types, signal, builtins, faulthandler
def _describe(e):
    try:
        return repr(e)[:300]
    except BaseException:
        return "an exception that cannot be printed"
PLAIN_DATA
_job = json.load(open("tests.json"))
_src = open("solution.py", encoding="utf-8").read()
_per_test_s = TIMEOUT
_cap = CAP
_req_r, _req_w = os.pipe()
_resp_r, _resp_w = os.pipe()
sys.stdout.flush()
sys.stderr.flush()
_pid = os.fork()
if _pid != 0:
    # The judge's side: it alone writes the run's stdout. For each test it sends a fresh nonce
    # and accepts exactly one answer carrying it, so the solution's process can report only on
    # a test it has been given; the closing frame is this process's.
    os.close(_req_r)
    os.close(_resp_w)
    _answers = os.fdopen(_resp_r, "rb")
    def _emit(head, payload=b""):
        head["len"] = len(payload)
        data = json.dumps(head).encode() + b"\n" + payload
        while data:
            data = data[os.write(1, data):]
    def _collect():
        for i in range(len(_job["inputs"])):
            nonce = os.urandom(16).hex()
            try:
                os.write(_req_w, (json.dumps({"test": i, "nonce": nonce}) + "\n").encode())
                line = _answers.readline(4096)
                head = json.loads(line) if line else None
            except (OSError, ValueError):
                head = None
            if type(head) is not dict or head.get("nonce") != nonce or head.get("test") != i:
                why = "no answer" if not line else "a malformed answer"
                _emit({"crash": "the solution's process gave %s for test %d" % (why, i)})
                return
            size = head.get("len")
            if type(size) is not int or size < 0 or size > _cap:
                _emit({"crash": "the solution's process gave a malformed answer"})
                return
            payload = _answers.read(size) if size else b""
            if len(payload) != size:
                _emit({"crash": "the solution's process ended mid-answer"})
                return
            head.pop("nonce", None)
            _emit(head, payload)
            if head.get("lcb") != 0 or head.get("output_limit"):
                return
        _emit({"done": True})
    _collect()
    for kill in (lambda: os.killpg(_pid, signal.SIGKILL), lambda: os.kill(_pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    os.waitpid(_pid, 0)
    os._exit(0)

# The solution's process: the worker LiveCodeBench runs a sample in.
os.setpgid(0, 0)
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 0)
os.dup2(_null, 1)
for _fd in range(3, 1024):
    if _fd not in (_req_r, _resp_w):
        try:
            os.close(_fd)
        except OSError:
            pass
_requests = os.fdopen(_req_r, "rb")
_write = os.write
_exit = os._exit
_nonce = None
def _next(i):
    global _nonce
    req = json.loads(_requests.readline())
    if req.get("test") != i:
        _exit(0)
    _nonce = req["nonce"]
def _frame(head, payload=b""):
    head["nonce"] = _nonce
    head["len"] = len(payload)
    data = json.dumps(head).encode() + b"\n" + payload
    while data:
        data = data[_write(_resp_w, data):]
sys.set_int_max_str_digits(50000)
import shutil, subprocess

class TimeoutException(Exception):
    pass

def _on_alarm(signum, frame):
    raise TimeoutException

signal.signal(signal.SIGALRM, _on_alarm)

def _alarm(seconds):
    signal.setitimer(signal.ITIMER_REAL, seconds)

def _guard():
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
                 "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
                 "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None

def _unwrap_main(code):
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except BaseException:
        pass
    return code

def _as_function(code):
    try:
        tree = ast.parse(code)
        hoisted = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        body = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        fields = dict(name="wrapped_function",
                      args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[],
                                         defaults=[]),
                      body=body, decorator_list=[], lineno=-1)
        if "type_params" in ast.FunctionDef._fields:
            fields["type_params"] = []
        fn = ast.FunctionDef(**fields)
        return PRELUDE + "\n" + ast.unparse(hoisted) + "\n" + ast.unparse(fn)
    except Exception:
        return code

def _load(code):
    _alarm(_per_test_s)
    try:
        module = types.ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        target = module.Solution() if "class Solution" in code else module
        assert target is not None
    finally:
        _alarm(0)
    return target

class _StdinBytes:
    def __init__(self, text):
        self._data = text.encode("utf-8")
    def read(self, *args):
        return self._data
    def readline(self, *args):
        return self._data.split(b"\n")[0] + b"\n"

class _Stdin:
    def __init__(self, text):
        self._text = text
        self._io = io.StringIO(text)
        self.buffer = _StdinBytes(text)
    def read(self, *args):
        return self._text
    def readline(self, *args):
        return self._io.readline(*args)
    def readlines(self, *args):
        return self._text.split("\n")
    def __getattr__(self, name):
        return getattr(self._io, name)

class _Patch:
    """Sets `obj.name` to `value` until `stop` (as `mock.patch` does, without importing
    `unittest.mock` for every sample: ~45 ms)."""
    def __init__(self, obj, name, value):
        self.obj, self.name, self.value = obj, name, value
    def start(self):
        self.local = self.name in getattr(self.obj, "__dict__", {})
        self.saved = getattr(self.obj, self.name)
        setattr(self.obj, self.name, self.value)
    def stop(self):
        if self.local or isinstance(self.obj, types.ModuleType):
            setattr(self.obj, self.name, self.saved)
        else:
            delattr(self.obj, self.name)

def _mock_open(text):
    """`builtins.open` as their `mock_open(read_data=text)`, built on first use (the program's own
    `open` is the real one, bound by the prelude's `from builtins import *`)."""
    made = []
    def opener(*args, **kwargs):
        if not made:
            from unittest import mock
            made.append(mock.mock_open(read_data=text))
        return made[0](*args, **kwargs)
    return opener

def _failed(i, e):
    text = _describe(e)
    if "timeoutexception" in text.lower():
        _frame({"test": i, "lcb": -3, "detail": text})
    else:
        _frame({"test": i, "lcb": -4, "detail": text})

def _run_stdin(inputs):
    _next(0)
    code = _as_function(_unwrap_main(_src))
    try:
        target = _load(code)
    except Exception as e:
        _frame({"test": 0, "lcb": -4, "detail": _describe(e), "load": True})
        return
    if not hasattr(target, "wrapped_function"):
        _frame({"test": 0, "lcb": -4, "detail": "no wrapped_function on the loaded solution "
                "(the text 'class Solution' occurs in the program)", "load": True})
        return
    method = getattr(target, "wrapped_function")
    real_stdin = sys.stdin
    for i, text in enumerate(inputs):
        if i:
            _next(i)
        lines = iter(text.split("\n"))
        captured = io.StringIO()
        captured.close = lambda x: 1
        saved_stdout = sys.stdout
        sys.stdout = captured
        # In their decorators' order: the real stdin's methods, then sys.stdin, then open.
        patches = [
            _Patch(real_stdin, "read", lambda *a: text),
            _Patch(real_stdin, "readlines", lambda *a: text.split("\n")),
            _Patch(real_stdin, "readline", lambda *a: next(lines)),
            _Patch(sys, "stdin", _Stdin(text)),
            _Patch(builtins, "open", _mock_open(text)),
        ]
        started = []
        _alarm(_per_test_s)
        failure = None
        try:
            for p in patches:
                p.start()
                started.append(p)
            try:
                method()
            except SystemExit:
                pass
            _alarm(0)
        except Exception as e:
            _alarm(0)
            failure = e
        finally:
            _alarm(0)
            for p in reversed(started):
                try:
                    p.stop()
                except Exception:
                    pass
            sys.stdout = saved_stdout
        if failure is not None:
            _failed(i, failure)
            return
        out = captured.getvalue().encode("utf-8", "surrogatepass")
        if len(out) > _cap:
            _frame({"test": i, "output_limit": True})
            return
        _frame({"test": i, "lcb": 0}, out)

def _run_functional(fn_name, inputs):
    _next(0)
    code = PRELUDE + "\n\n" + _src
    try:
        target = _load(code)
    except Exception as e:
        _frame({"test": 0, "lcb": -4, "detail": _describe(e), "load": True})
        return
    method = getattr(target, fn_name, None) if hasattr(target, fn_name) else None
    if method is None:
        where = "Solution()" if "class Solution" in code else "the module (no text 'class Solution')"
        _frame({"test": 0, "lcb": -4, "detail": "no %s on %s" % (fn_name, where), "load": True})
        return
    try:
        all_args = [[json.loads(line) for line in text.split("\n")] for text in inputs]
    except Exception as e:
        _frame({"test": 0, "lcb": -4, "detail": "the inputs do not parse: " + _describe(e),
                "load": True})
        return
    for i, args in enumerate(all_args):
        if i:
            _next(i)
        _alarm(_per_test_s)
        faulthandler.enable()
        try:
            value = method(*args)
            _alarm(0)
            data = json.dumps(_plain(value)).encode()
        except Exception as e:
            _alarm(0)
            _failed(i, e)
            return
        finally:
            _alarm(0)
            faulthandler.disable()
        if len(data) > _cap:
            _frame({"test": i, "output_limit": True})
            return
        _frame({"test": i, "lcb": 0}, data)

# A BaseException that escapes ends the process without an answer, as it ends their worker.
_guard()
if _job["fn_name"] is None:
    _run_stdin(_job["inputs"])
else:
    _run_functional(_job["fn_name"], _job["inputs"])
_exit(0)
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn the_placeholders_are_there() {
        for p in ["PRELUDE", "TIMEOUT", "CAP", "PLAIN_DATA"] {
            assert!(super::DRIVER.contains(p), "{p}");
        }
    }
}
