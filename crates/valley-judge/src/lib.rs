//! The judge, generic over how programs run: it builds the sandbox requests for a candidate
//! program, hands them to a [`Runner`] (the harness's sandbox, or a plugin's
//! `Host::run_sandboxed`) and gives a verdict, following LiveCodeBench's rules (see [`compare`])
//! for LiveCodeBench-shaped problems and OpenAI's HumanEval harness for HumanEval-shaped ones
//! (`prompt` + completion + `test` + `check(entry_point)`, passing when it exits 0).
//!
//! A LiveCodeBench sample is one sandbox run (see [`forking_driver`]): a driver imports the
//! prelude and compiles the solution once, then forks a fresh process per test, each with its own
//! timeout (default 6 s) and CPU and memory limits, under an overall deadline per sample. The
//! first failing test decides the verdict (LiveCodeBench stops at the first failure), and a sample
//! is solved only when every test passes. The program never sees expected outputs: stdout (or the
//! JSON of a functional call's return value) comes back to the caller, which compares.
//!
//! The currency is the plugin interface's FFI sandbox types ([`SandboxRequest`],
//! [`SandboxResult`]) so that the host and plugins judge with the same code.
//!
//! ```
//! use valley_judge::{extract_code, pass_at_k};
//!
//! // The last fenced block of a model's response is the program.
//! let response = "<think>sum them</think>\n```python\nprint(sum(map(int, input().split())))\n```";
//! assert_eq!(extract_code(response).trim(), "print(sum(map(int, input().split())))");
//! // Unbiased pass@k: 2 of 4 samples pass.
//! assert_eq!(pass_at_k(4, 2, 1), Some(0.5));
//! ```

#![warn(missing_docs)]

pub mod batch;
mod compare;
mod extract;
mod forking_driver;
mod pass_at_k;
mod problem;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use valley_plugin_api::{
    abi_stable::std_types::{RString, RVec},
    SandboxFile, SandboxLimits, SandboxRequest, SandboxResult,
};

pub use compare::{python_eq, stdout_matches};
pub use extract::extract_code;
pub use pass_at_k::pass_at_k;
pub use problem::{parse_problems, EvalProblem, HumanEvalProblem, Problem, TestCase, TestKind};

/// Runs one program in a sandbox. The harness implements it over its sandbox; a plugin over
/// `Host::run_sandboxed`.
pub trait Runner {
    /// Why a run could not happen at all (the machinery, not the program).
    type Error;

    /// Runs the request; a misbehaving program is a result, not an error.
    ///
    /// # Errors
    /// When the sandbox cannot run the program (set-up failed, isolation missing).
    fn run(&self, request: &SandboxRequest) -> Result<SandboxResult, Self::Error>;
}

impl<R: Runner + ?Sized> Runner for &R {
    type Error = R::Error;
    fn run(&self, request: &SandboxRequest) -> Result<SandboxResult, Self::Error> {
        (**self).run(request)
    }
}

/// The host sandbox's default limits (the FFI's zeros), spelled out because the judge sizes
/// some limits from them. The harness checks they equal its `Limits::default()`.
pub const DEFAULT_LIMITS: SandboxLimits = SandboxLimits {
    wall_ms: 6_000,
    cpu_seconds: 6,
    address_space_bytes: 1 << 30,
    file_size_bytes: 16 << 20,
    open_files: 64,
    processes: 32,
    disk_bytes: 32 << 20,
    output_bytes: 8 << 20,
};

/// How a sample fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every test passed.
    Pass,
    /// Some test's output differed.
    WrongAnswer,
    /// A test ran past its timeout (wall or CPU) or the overall deadline.
    TimeLimit,
    /// The program raised, exited non-zero or was killed (memory included).
    RuntimeError,
    /// The code does not compile (Python `SyntaxError`).
    CompileError,
}

/// The verdict of one sample with where it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// The verdict.
    pub verdict: Verdict,
    /// Tests passed before the first failure.
    pub tests_passed: usize,
    /// Tests of the problem.
    pub tests_total: usize,
    /// Index of the failing test, if any.
    pub failed_test: Option<usize>,
    /// A short explanation (the last stderr line, what differed).
    pub detail: String,
    /// Wall time of all its runs.
    pub wall_ms: u64,
}

/// Judge settings.
#[derive(Debug, Clone)]
pub struct JudgeConfig {
    /// The interpreter (readable and executable by the sandbox uid).
    pub python: String,
    /// Timeout of one test (LiveCodeBench: 6 s).
    pub test_timeout: Duration,
    /// Deadline of all tests of one sample together.
    pub overall_timeout: Duration,
    /// Address space of each run.
    pub memory_bytes: u64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            python: "/usr/bin/python3".into(),
            test_timeout: Duration::from_secs(6),
            overall_timeout: Duration::from_secs(60),
            memory_bytes: 2 << 30,
        }
    }
}

/// Imports LiveCodeBench prepends to every program (`lcb_runner/evaluation/testing_util.py`).
const LCB_IMPORTS: &str = "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n";

/// Marker the drivers print on stderr for a `SyntaxError`, with exit status 113.
const COMPILE_MARKER: &str = "__VALLEY_COMPILE_ERROR__";
const COMPILE_EXIT: i32 = 113;

/// Runs `solution.py` as `__main__` (HumanEval). `PRELUDE` is replaced.
const SCRIPT_DRIVER: &str = r#"import sys, os
_src = open("solution.py", encoding="utf-8").read()
try:
    _code = compile(_src, "solution.py", "exec")
except (SyntaxError, ValueError):
    import traceback
    traceback.print_exc()
    sys.stderr.write("\n__VALLEY_COMPILE_ERROR__\n")
    sys.stderr.flush()
    os._exit(113)
_g = {"__name__": "__main__", "__builtins__": __builtins__}
exec(PRELUDE, _g)
del _src
exec(_code, _g)
"#;

fn python_literal(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

fn python_argv(config: &JudgeConfig) -> RVec<RString> {
    RVec::from(vec![
        RString::from(config.python.as_str()),
        RString::from("-B"),
        RString::from("driver.py"),
    ])
}

fn file(name: &str, contents: Vec<u8>) -> SandboxFile {
    SandboxFile {
        name: name.into(),
        contents: RVec::from(contents),
    }
}

/// Milliseconds, at least 1 (0 would mean the host's default).
fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// The last non-empty line of stderr, for the verdict's detail.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.contains(COMPILE_MARKER))
        .unwrap_or("");
    line.chars().take(300).collect()
}

/// A failure verdict for a run that did not end normally, `None` when it exited 0 in time.
fn run_failure(out: &SandboxResult) -> Option<(Verdict, String)> {
    let exit_code = out.exit_code.into_option();
    if exit_code == Some(COMPILE_EXIT)
        && String::from_utf8_lossy(&out.stderr).contains(COMPILE_MARKER)
    {
        return Some((Verdict::CompileError, last_line(&out.stderr)));
    }
    if out.timed_out || out.cpu_limit_exceeded {
        return Some((
            Verdict::TimeLimit,
            format!("{:.1} s", out.wall_ms as f64 / 1000.0),
        ));
    }
    if out.output_limit_exceeded {
        return Some((Verdict::WrongAnswer, "output over the limit".into()));
    }
    match (exit_code, out.signal.into_option()) {
        (Some(0), _) => None,
        (Some(code), _) => Some((
            Verdict::RuntimeError,
            format!("exit {code}: {}", last_line(&out.stderr)),
        )),
        (None, Some(sig)) => Some((Verdict::RuntimeError, format!("killed by signal {sig}"))),
        (None, None) => Some((Verdict::RuntimeError, "ended without a status".into())),
    }
}

/// Judges one candidate program (already extracted from the response).
///
/// # Errors
/// Only when the sandbox cannot run at all (a set-up error, missing isolation); a bad program is
/// a verdict.
pub fn judge<R: Runner + ?Sized>(
    runner: &R,
    config: &JudgeConfig,
    problem: &Problem,
    code: &str,
) -> Result<Judged, R::Error> {
    let started = Instant::now();
    let limits = |remaining: Duration| {
        let wall = config.test_timeout.min(remaining);
        SandboxLimits {
            wall_ms: millis(wall),
            cpu_seconds: wall.as_secs_f64().ceil() as u64,
            address_space_bytes: config.memory_bytes,
            ..DEFAULT_LIMITS
        }
    };
    let run = |driver: String, solution: String, stdin: &str, remaining| {
        runner.run(&SandboxRequest {
            argv: python_argv(config),
            stdin: RVec::from(stdin.as_bytes().to_vec()),
            files: RVec::from(vec![
                file("driver.py", driver.into_bytes()),
                file("solution.py", solution.into_bytes()),
            ]),
            limits: limits(remaining),
        })
    };
    let done = |verdict, tests_passed, tests_total, failed_test, detail| Judged {
        verdict,
        tests_passed,
        tests_total,
        failed_test,
        detail,
        wall_ms: started.elapsed().as_millis() as u64,
    };
    match problem {
        Problem::HumanEval(p) => {
            let program = format!(
                "{}{}\n\n{}\n\ncheck({})\n",
                p.prompt, code, p.test, p.entry_point
            );
            let driver = SCRIPT_DRIVER.replace("PRELUDE", "''");
            let out = run(driver, program, "", config.overall_timeout)?;
            Ok(match run_failure(&out) {
                None => done(Verdict::Pass, 1, 1, None, String::new()),
                Some((v, why)) => done(v, 0, 1, Some(0), why),
            })
        }
        Problem::LiveCodeBench(p) => {
            let total = p.tests.len();
            let mut tests = Vec::with_capacity(total);
            for (i, test) in p.tests.iter().enumerate() {
                let fn_name = match (test.kind, &p.fn_name) {
                    (TestKind::Functional, None) => {
                        return Ok(done(
                            Verdict::RuntimeError,
                            i,
                            total,
                            Some(i),
                            "functional test without fn_name".into(),
                        ))
                    }
                    (_, f) => f.clone(),
                };
                let kind = match test.kind {
                    TestKind::Stdin => "stdin",
                    TestKind::Functional => "functional",
                };
                tests.push(
                    serde_json::json!({"kind": kind, "input": test.input, "fn_name": fn_name}),
                );
            }
            let cap = DEFAULT_LIMITS.output_bytes;
            let driver = forking_driver::DRIVER
                .replace("PRELUDE", &python_literal(LCB_IMPORTS))
                .replace(
                    "TIMEOUT",
                    &format!("{:.3}", config.test_timeout.as_secs_f64()),
                )
                .replace("CAP", &cap.to_string());
            let per_test = limits(config.test_timeout);
            let tests_json = serde_json::to_vec(&tests).expect("tests serialize");
            let largest_input = p
                .tests
                .iter()
                .map(|t| t.input.len() as u64)
                .max()
                .unwrap_or(0);
            let tests_json_len = tests_json.len() as u64;
            let out = runner.run(&SandboxRequest {
                argv: python_argv(config),
                stdin: RVec::new(),
                files: RVec::from(vec![
                    file("driver.py", driver.into_bytes()),
                    file("solution.py", code.as_bytes().to_vec()),
                    file("tests.json", tests_json),
                ]),
                limits: SandboxLimits {
                    // The whole sample under the overall deadline; each test's CPU and memory
                    // limits hold per process (every test is its own forked process).
                    wall_ms: millis(config.overall_timeout),
                    output_bytes: cap * total as u64 + (1 << 20),
                    // Room for the inputs (LiveCodeBench has multi-megabyte ones): tests.json
                    // and the current test's input.txt live in the work directory.
                    disk_bytes: per_test.disk_bytes + 2 * tests_json_len,
                    file_size_bytes: per_test.file_size_bytes.max(largest_input + (1 << 20)),
                    ..per_test
                },
            })?;
            let frames = forking_driver::parse_frames(&out.stdout);
            if let Some(err) = frames.first().and_then(|f| f.compile_error.clone()) {
                let line = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                return Ok(done(
                    Verdict::CompileError,
                    0,
                    total,
                    Some(0),
                    line.to_string(),
                ));
            }
            for (i, test) in p.tests.iter().enumerate() {
                let Some(frame) = frames.get(i) else {
                    // The driver stopped before this test: the overall deadline, or the program
                    // killed its driver.
                    let (v, why) = if out.timed_out {
                        (Verdict::TimeLimit, "overall deadline".to_string())
                    } else {
                        (
                            Verdict::RuntimeError,
                            format!("the test did not run: {}", last_line(&out.stderr)),
                        )
                    };
                    return Ok(done(v, i, total, Some(i), why));
                };
                if frame.timed_out {
                    return Ok(done(
                        Verdict::TimeLimit,
                        i,
                        total,
                        Some(i),
                        format!("test {i}: over {:.1} s", config.test_timeout.as_secs_f64()),
                    ));
                }
                if frame.output_limit {
                    return Ok(done(
                        Verdict::WrongAnswer,
                        i,
                        total,
                        Some(i),
                        format!("test {i}: output over the limit"),
                    ));
                }
                if frame.code != Some(0) {
                    let why = match (frame.code, frame.signal) {
                        (Some(c), _) => {
                            format!("test {i}: exit {c}: {}", last_line(frame.stderr.as_bytes()))
                        }
                        (None, Some(s)) => format!("test {i}: killed by signal {s}"),
                        (None, None) => format!("test {i}: ended without a status"),
                    };
                    return Ok(done(Verdict::RuntimeError, i, total, Some(i), why));
                }
                let got = String::from_utf8_lossy(&frame.payload);
                let ok = match test.kind {
                    TestKind::Stdin => compare::stdout_matches(&got, &test.output),
                    TestKind::Functional => {
                        match (
                            serde_json::from_str::<serde_json::Value>(&got),
                            serde_json::from_str::<serde_json::Value>(&test.output),
                        ) {
                            (Ok(g), Ok(e)) => compare::python_eq(&g, &e),
                            _ => false,
                        }
                    }
                };
                if !ok {
                    let shown: String = got.chars().take(100).collect();
                    return Ok(done(
                        Verdict::WrongAnswer,
                        i,
                        total,
                        Some(i),
                        format!("test {i}: got {shown:?}"),
                    ));
                }
            }
            Ok(done(Verdict::Pass, total, total, None, String::new()))
        }
    }
}
