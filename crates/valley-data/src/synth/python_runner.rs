//! Runs Python programs on stdin tests to decide correctness labels — behind the
//! [`ProgramRunner`] trait, so that the sandbox service can take over once it exists.
//!
//! [`BatchedPython`] starts one `python3` per worker (two by default, for two cores) and runs a
//! whole chunk of programs in it: each program is compiled once, and each test `exec`s it in a
//! fresh namespace (`__name__ == "__main__"`) with `sys.stdin` and `sys.stdout` replaced by
//! in-memory files, under a per-test `SIGALRM` deadline; `SystemExit` with status 0 or `None` is a
//! normal end. Starting Python once per chunk instead of once per test is ~100× faster (a start
//! costs ~15 ms; a test of these programs ~20 µs).
//!
//! What this trades away, and why that is acceptable here: programs share one interpreter, so a
//! program that changed global state (monkey-patched a module, `sys.setrecursionlimit`, a
//! `global` in builtins) would affect the ones after it, and nothing is isolated from the file
//! system or network. That is fine only for code this generator wrote itself (the teacher's
//! pipelines: list comprehensions and `print`). Model-generated code is hostile input and goes
//! through the sandbox (docs/design.md section 6), never through this runner. The interpreter runs with
//! `-I -S -B` in an empty temporary directory with a cleared environment.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// A program and the stdin texts of its tests.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramJob {
    /// Python source.
    pub code: String,
    /// One stdin text per test.
    pub inputs: Vec<String>,
}

/// What one test run printed, or why it failed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestRun {
    /// Captured stdout (capped at 64 KiB).
    pub stdout: String,
    /// An exception, a timeout or a non-zero exit; `None` when the program ended normally.
    pub error: Option<String>,
}

/// The runs of one program: a compile error, or one [`TestRun`] per input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProgramRun {
    /// Set when the program does not compile (then `tests` is empty).
    pub compile_error: Option<String>,
    /// One per input, in order.
    pub tests: Vec<TestRun>,
}

/// Why programs could not be run at all (a failing program is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The interpreter could not be started.
    #[error("cannot start `{python}`: {source}; the synthetic corpus decides correctness by running Python: install Python 3 or set VALLEY_PYTHON")]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The batch protocol broke (the interpreter died, printed garbage or ran past its deadline).
    #[error("python batch runner ({python}): {message}")]
    Batch {
        /// The interpreter.
        python: PathBuf,
        /// What happened.
        message: String,
    },
}

/// Something that runs programs on stdin tests.
pub trait ProgramRunner: Sync {
    /// Runs every job; the result `i` belongs to `jobs[i]`.
    ///
    /// # Errors
    /// [`RunnerError`] when the runner itself fails (not when a program fails a test).
    fn run_programs(&self, jobs: &[ProgramJob]) -> Result<Vec<ProgramRun>, RunnerError>;
}

/// Runs chunks of programs in a few long-lived `python3` processes (see the module docs).
#[derive(Debug, Clone)]
pub struct BatchedPython {
    /// The interpreter (`VALLEY_PYTHON`, else `python3`).
    pub python: PathBuf,
    /// Processes run at once.
    pub workers: usize,
    /// Programs per process.
    pub chunk: usize,
    /// Deadline of one test.
    pub per_test: Duration,
}

impl Default for BatchedPython {
    fn default() -> Self {
        Self {
            python: std::env::var_os("VALLEY_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("python3")),
            workers: 2,
            chunk: 1000,
            per_test: Duration::from_secs(5),
        }
    }
}

const BATCH_SCRIPT: &str = r#"
import io, json, signal, sys

class _Deadline(BaseException):
    pass

def _alarm(signum, frame):
    raise _Deadline()

signal.signal(signal.SIGALRM, _alarm)
_limit = float(sys.argv[1])
_out = sys.stdout
_stdin = sys.stdin
for _line in _stdin:
    _job = json.loads(_line)
    try:
        _code = compile(_job["code"], "<solution>", "exec")
    except BaseException as _e:
        _out.write(json.dumps({"compile_error": type(_e).__name__ + ": " + str(_e), "tests": []}) + "\n")
        _out.flush()
        continue
    _tests = []
    for _inp in _job["inputs"]:
        _buf = io.StringIO()
        _err = None
        try:
            sys.stdin = io.StringIO(_inp)
            sys.stdout = _buf
            signal.setitimer(signal.ITIMER_REAL, _limit)
            try:
                exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Deadline:
            _err = "timeout"
        except SystemExit as _e:
            if _e.code not in (None, 0):
                _err = "exit status " + str(_e.code)
        except BaseException as _e:
            _err = type(_e).__name__ + ": " + str(_e)
        finally:
            sys.stdout = _out
            sys.stdin = _stdin
        _tests.append({"stdout": _buf.getvalue()[:65536], "error": _err})
    _out.write(json.dumps({"compile_error": None, "tests": _tests}) + "\n")
    _out.flush()
"#;

impl BatchedPython {
    fn run_chunk(&self, jobs: &[ProgramJob]) -> Result<Vec<ProgramRun>, RunnerError> {
        let batch_err = |message: String| RunnerError::Batch {
            python: self.python.clone(),
            message,
        };
        let dir =
            tempfile::tempdir().map_err(|e| batch_err(format!("temporary directory: {e}")))?;
        let mut child = Command::new(&self.python)
            .args(["-I", "-S", "-B", "-c", BATCH_SCRIPT])
            .arg(self.per_test.as_secs_f64().to_string())
            .current_dir(dir.path())
            .env_clear()
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RunnerError::Spawn {
                python: self.python.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        // A whole chunk may take at most this long (every test at its deadline, plus slack).
        let tests: usize = jobs.iter().map(|j| j.inputs.len()).sum();
        let deadline =
            Instant::now() + self.per_test * (tests as u32 + 1) + Duration::from_secs(30);
        let (runs, write_result, err_text) = std::thread::scope(|s| {
            let writer = s.spawn(move || -> std::io::Result<()> {
                let mut w = std::io::BufWriter::new(&mut stdin);
                for job in jobs {
                    serde_json::to_writer(&mut w, job)?;
                    w.write_all(b"\n")?;
                }
                w.flush()
                // stdin closes here: the script's loop ends.
            });
            let err_reader = s.spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                text
            });
            let mut runs = Vec::with_capacity(jobs.len());
            let mut bad = None;
            for line in BufReader::new(stdout).lines() {
                match line.map_err(|e| e.to_string()).and_then(|l| {
                    serde_json::from_str::<ProgramRun>(&l).map_err(|e| format!("{e}: {l:.200}"))
                }) {
                    Ok(run) => runs.push(run),
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                }
                if Instant::now() > deadline {
                    bad = Some("ran past the chunk deadline".into());
                    break;
                }
            }
            if bad.is_some() {
                let _ = child.kill();
            }
            let write_result = writer.join().expect("writer thread");
            let err_text = err_reader.join().expect("stderr thread");
            (bad.map_or(Ok(runs), Err), write_result, err_text)
        });
        let status = child.wait().map_err(|e| batch_err(format!("wait: {e}")))?;
        let runs = runs.map_err(|m| batch_err(format!("{m}; stderr: {}", err_text.trim())))?;
        if let Err(e) = write_result {
            return Err(batch_err(format!(
                "writing jobs: {e}; stderr: {}",
                err_text.trim()
            )));
        }
        if !status.success() || runs.len() != jobs.len() {
            return Err(batch_err(format!(
                "exited with {status} after {} of {} programs; stderr: {}",
                runs.len(),
                jobs.len(),
                err_text.trim()
            )));
        }
        for (run, job) in runs.iter().zip(jobs) {
            if run.compile_error.is_none() && run.tests.len() != job.inputs.len() {
                return Err(batch_err("a program's result lacks tests".into()));
            }
        }
        Ok(runs)
    }
}

impl ProgramRunner for BatchedPython {
    fn run_programs(&self, jobs: &[ProgramJob]) -> Result<Vec<ProgramRun>, RunnerError> {
        let chunks: Vec<&[ProgramJob]> = jobs.chunks(self.chunk.max(1)).collect();
        let mut results: Vec<Option<Result<Vec<ProgramRun>, RunnerError>>> =
            (0..chunks.len()).map(|_| None).collect();
        let next = AtomicUsize::new(0);
        let slots = std::sync::Mutex::new(&mut results);
        std::thread::scope(|s| {
            for _ in 0..self.workers.max(1).min(chunks.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { break };
                    let result = self.run_chunk(chunk);
                    let failed = result.is_err();
                    slots.lock().expect("no panics while holding the lock")[i] = Some(result);
                    if failed {
                        // Stop handing out work; the error is reported below.
                        next.store(chunks.len(), Ordering::Relaxed);
                    }
                });
            }
        });
        let mut all = Vec::with_capacity(jobs.len());
        for r in results.into_iter().flatten() {
            all.extend(r?);
        }
        if all.len() != jobs.len() {
            return Err(RunnerError::Batch {
                python: self.python.clone(),
                message: "stopped before every chunk ran".into(),
            });
        }
        Ok(all)
    }
}

/// Lines of output as LiveCodeBench compares them: trailing whitespace of each line and trailing
/// empty lines do not count.
pub fn normalized_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// How many tests a run passed, against the expected outputs.
pub fn passed_tests(run: &ProgramRun, expected: &[String]) -> usize {
    if run.compile_error.is_some() {
        return 0;
    }
    run.tests
        .iter()
        .zip(expected)
        .filter(|(t, want)| {
            t.error.is_none() && normalized_lines(&t.stdout) == normalized_lines(want)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(code: &str, inputs: &[&str]) -> ProgramJob {
        ProgramJob {
            code: code.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Runs real Python (the project needs Python 3; CI installs it).
    #[test]
    fn runs_programs_in_fresh_namespaces_and_reports_failures() {
        let runner = BatchedPython {
            chunk: 2,
            per_test: Duration::from_millis(500),
            ..BatchedPython::default()
        };
        let jobs = vec![
            job("print(int(input()) * 2)", &["3\n", "-4\n"]),
            // A fresh namespace per test: `seen` never survives from one test to the next.
            job(
                "try:\n    seen += 1\nexcept NameError:\n    seen = 0\nprint(seen)",
                &["", ""],
            ),
            job("def broken(:\n", &["1\n"]),
            job("import sys\nsys.exit(3)", &[""]),
            job("import sys\nprint('ok')\nsys.exit(0)", &[""]),
            job("while True:\n    pass", &[""]),
            job("print(max([]))", &[""]),
        ];
        let runs = runner.run_programs(&jobs).unwrap();
        assert_eq!(runs.len(), jobs.len());
        assert_eq!(runs[0].tests[0].stdout, "6\n");
        assert_eq!(runs[0].tests[1].stdout, "-8\n");
        assert_eq!(runs[1].tests[1].stdout, "0\n");
        assert!(runs[2]
            .compile_error
            .as_deref()
            .unwrap()
            .starts_with("SyntaxError"));
        assert_eq!(runs[3].tests[0].error.as_deref(), Some("exit status 3"));
        assert_eq!(runs[4].tests[0].error, None);
        assert_eq!(runs[4].tests[0].stdout, "ok\n");
        assert_eq!(runs[5].tests[0].error.as_deref(), Some("timeout"));
        assert!(runs[6].tests[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("ValueError"));
        assert_eq!(passed_tests(&runs[0], &["6".into(), "-7".into()]), 1);
    }

    #[test]
    fn a_missing_interpreter_says_what_to_set() {
        let runner = BatchedPython {
            python: "/nonexistent/python3".into(),
            ..BatchedPython::default()
        };
        let err = runner
            .run_programs(&[job("print(1)", &[""])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("VALLEY_PYTHON"), "{err}");
    }

    #[test]
    fn comparison_ignores_trailing_whitespace_only() {
        assert_eq!(normalized_lines("1 2 \n\n"), normalized_lines("1 2"));
        assert_ne!(normalized_lines("1  2"), normalized_lines("1 2"));
    }
}
