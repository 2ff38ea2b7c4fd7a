//! The two rule sets a LiveCodeBench-shaped sample is judged under, and their judging:
//!
//! - [`Rules::LiveCodeBench`] (`livecodebench@28fef95`, the default): LiveCodeBench's verdict
//!   as their harness at commit 28fef95 gives it, quirks included (see the `lcb_driver`
//!   module), so that our pass@1 sits beside published numbers;
//! - [`Rules::Strict`] (`strict`): valley's own semantics, where a verdict is about the program
//!   alone: every test in a fresh process with its real stdin and stdout, the exit status
//!   respected, no wrapping (see the `forking_driver` module), and a functional test's return
//!   value compared by what it means in JSON (tuples are lists at every depth, dict keys as
//!   `json.dumps` writes them).
//!
//! Under both, the program never holds an expected output: its stdout, or its return value as
//! type-preserving plain data, comes back to the judge, which compares (stdout: LiveCodeBench's
//! stripped lines with the `Decimal` fallback; return values: [`crate::value`]). A pass is
//! always this comparison's, never an exit status's.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use valley_plugin_api::{abi_stable::std_types::RVec, SandboxLimits, SandboxRequest};

use crate::{
    compare, file, forking_driver, last_line, lcb_driver, millis, plain_py, python_argv,
    python_literal, value, EvalProblem, JudgeConfig, Runner, TestCase, TestKind, Verdict,
    DEFAULT_LIMITS, LCB_IMPORTS,
};

/// A named, versioned choice of judge semantics for LiveCodeBench-shaped problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Rules {
    /// LiveCodeBench's harness at commit 28fef95.
    #[default]
    #[serde(rename = "livecodebench@28fef95")]
    LiveCodeBench,
    /// valley's own semantics.
    #[serde(rename = "strict")]
    Strict,
}

impl Rules {
    /// Both, the default first.
    pub const ALL: [Rules; 2] = [Rules::LiveCodeBench, Rules::Strict];

    /// The name experiment files, the command line, verdicts and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Rules::LiveCodeBench => "livecodebench@28fef95",
            Rules::Strict => "strict",
        }
    }

    /// The other rule set (what a sample is also judged under, to show what the choice is worth).
    pub fn other(self) -> Rules {
        match self {
            Rules::LiveCodeBench => Rules::Strict,
            Rules::Strict => Rules::LiveCodeBench,
        }
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown rule-set name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown judge rules `{0}`: expected `livecodebench@28fef95` or `strict`")]
pub struct UnknownRules(pub String);

impl FromStr for Rules {
    type Err = UnknownRules;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rules::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRules(s.to_string()))
    }
}

/// A verdict before the judge adds times and isolation.
pub(crate) struct Decided {
    pub verdict: Verdict,
    pub passed: usize,
    pub failed: Option<usize>,
    pub detail: String,
}

fn at(verdict: Verdict, i: usize, detail: String) -> Decided {
    Decided {
        verdict,
        passed: i,
        failed: Some(i),
        detail,
    }
}

/// Whether a test's output (stdout text, or a return value as plain data) is right under
/// `rules`; `Err` says what differed.
fn check(rules: Rules, i: usize, test: &TestCase, payload: &[u8]) -> Result<(), String> {
    match test.kind {
        TestKind::Stdin => {
            let got = String::from_utf8_lossy(payload);
            if compare::stdout_matches(&got, &test.output) {
                Ok(())
            } else {
                let shown: String = got.chars().take(100).collect();
                Err(format!("test {i}: got {shown:?}"))
            }
        }
        TestKind::Functional => {
            let expected = value::parse_json(&test.output)
                .map_err(|e| format!("test {i}: the expected output is not JSON: {e}"))?;
            let got = serde_json::from_slice::<Value>(payload)
                .map_err(|e| e.to_string())
                .and_then(|v| value::decode_plain(&v))
                .map_err(|e| format!("test {i}: the return value could not be read: {e}"))?;
            let equal = match rules {
                Rules::LiveCodeBench => value::livecodebench_eq(&got, &expected),
                Rules::Strict => value::strict_eq(&got, &expected)
                    .map_err(|why| format!("test {i}: returned {}: {why}", short(&got)))?,
            };
            if equal {
                Ok(())
            } else {
                Err(format!("test {i}: returned {}", short(&got)))
            }
        }
    }
}

fn short(v: &value::Py) -> String {
    v.show().chars().take(100).collect()
}

/// Judges a LiveCodeBench-shaped sample under `config.rules`.
pub(crate) fn judge_tests<R: Runner + ?Sized>(
    runner: &R,
    config: &JudgeConfig,
    p: &EvalProblem,
    code: &str,
) -> Result<(Decided, String), R::Error> {
    let total = p.tests.len();
    if let Some(i) = p
        .tests
        .iter()
        .position(|t| t.kind == TestKind::Functional && p.fn_name.is_none())
    {
        let d = at(
            Verdict::RuntimeError,
            i,
            "functional test without fn_name".into(),
        );
        return Ok((d, "not run".into()));
    }
    let cap = DEFAULT_LIMITS.output_bytes;
    let per_test = SandboxLimits {
        wall_ms: millis(config.test_timeout),
        cpu_seconds: config.test_timeout.as_secs_f64().ceil() as u64,
        address_space_bytes: config.memory_bytes,
        ..DEFAULT_LIMITS
    };
    let deadline = config.sample_deadline(total);
    let (driver, tests_json) = match config.rules {
        Rules::Strict => {
            let tests: Vec<Value> = p
                .tests
                .iter()
                .map(|t| {
                    let kind = match t.kind {
                        TestKind::Stdin => "stdin",
                        TestKind::Functional => "functional",
                    };
                    serde_json::json!({"kind": kind, "input": t.input, "fn_name": p.fn_name})
                })
                .collect();
            (forking_driver::DRIVER, serde_json::to_vec(&tests))
        }
        Rules::LiveCodeBench => {
            let functional = p.tests[0].kind == TestKind::Functional;
            if let Some(i) = p
                .tests
                .iter()
                .position(|t| (t.kind == TestKind::Functional) != functional)
            {
                let d = at(
                    Verdict::RuntimeError,
                    i,
                    "LiveCodeBench's rules need one kind of test per problem".into(),
                );
                return Ok((d, "not run".into()));
            }
            let inputs: Vec<&str> = p.tests.iter().map(|t| t.input.as_str()).collect();
            let fn_name = if functional { p.fn_name.clone() } else { None };
            let job = serde_json::json!({"fn_name": fn_name, "inputs": inputs});
            (lcb_driver::DRIVER, serde_json::to_vec(&job))
        }
    };
    let tests_json = tests_json.expect("tests serialize");
    let driver = driver
        .replace("PLAIN_DATA", plain_py::ENCODER)
        .replace("PRELUDE", &python_literal(LCB_IMPORTS))
        .replace(
            "TIMEOUT",
            &format!("{:.3}", config.test_timeout.as_secs_f64()),
        )
        .replace("CAP", &cap.to_string());
    let largest_input = p
        .tests
        .iter()
        .map(|t| t.input.len() as u64)
        .max()
        .unwrap_or(0);
    let out = runner.run(&SandboxRequest {
        argv: python_argv(config),
        stdin: RVec::new(),
        files: RVec::from(vec![
            file("driver.py", driver.into_bytes()),
            file("solution.py", code.as_bytes().to_vec()),
            file("tests.json", tests_json.clone()),
        ]),
        limits: SandboxLimits {
            wall_ms: millis(deadline),
            // Strict: each test is its own process with the per-test CPU limit. LiveCodeBench:
            // one process runs them all, under the sample's deadline.
            cpu_seconds: match config.rules {
                Rules::Strict => per_test.cpu_seconds,
                Rules::LiveCodeBench => deadline.as_secs_f64().ceil() as u64,
            },
            output_bytes: cap * total as u64 + (1 << 20),
            // Room for the inputs (LiveCodeBench has multi-megabyte ones): tests.json and the
            // current test's input.txt live in the work directory.
            disk_bytes: per_test.disk_bytes + 2 * tests_json.len() as u64,
            file_size_bytes: per_test.file_size_bytes.max(largest_input + (1 << 20)),
            ..per_test
        },
    })?;
    let isolation = out.isolation();
    let frames = forking_driver::split_frames(&out.stdout);
    let decided = match config.rules {
        Rules::Strict => strict(config.test_timeout, p, &frames, &out),
        Rules::LiveCodeBench => livecodebench(p, &frames, &out),
    };
    Ok((decided, isolation))
}

type Frames = [(Value, Vec<u8>)];

fn field<'a>(head: &'a Value, name: &str) -> Option<&'a Value> {
    head.get(name).filter(|v| !v.is_null())
}

fn text(head: &Value, name: &str) -> String {
    field(head, name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

fn strict(
    timeout: Duration,
    p: &EvalProblem,
    frames: &Frames,
    out: &valley_plugin_api::SandboxResult,
) -> Decided {
    if let Some(err) = frames
        .first()
        .and_then(|(h, _)| field(h, "compile_error"))
        .and_then(Value::as_str)
    {
        let line = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return at(Verdict::CompileError, 0, line.to_string());
    }
    for (i, test) in p.tests.iter().enumerate() {
        let Some((head, payload)) = frames.get(i) else {
            // The driver stopped before this test: the overall deadline, or the program killed
            // its driver.
            return if out.timed_out {
                at(Verdict::TimeLimit, i, "overall deadline".into())
            } else {
                at(
                    Verdict::RuntimeError,
                    i,
                    format!("the test did not run: {}", last_line(&out.stderr)),
                )
            };
        };
        let flag = |name: &str| field(head, name).and_then(Value::as_bool) == Some(true);
        if flag("timed_out") {
            return at(
                Verdict::TimeLimit,
                i,
                format!("test {i}: over {:.1} s", timeout.as_secs_f64()),
            );
        }
        if flag("output_limit") {
            return at(
                Verdict::WrongAnswer,
                i,
                format!("test {i}: output over the limit"),
            );
        }
        let code = field(head, "code").and_then(Value::as_i64);
        if code != Some(0) {
            let why = match (code, field(head, "signal").and_then(Value::as_i64)) {
                (Some(c), _) => format!(
                    "test {i}: exit {c}: {}",
                    last_line(text(head, "stderr").as_bytes())
                ),
                (None, Some(s)) => format!("test {i}: killed by signal {s}"),
                (None, None) => format!("test {i}: ended without a status"),
            };
            return at(Verdict::RuntimeError, i, why);
        }
        if test.kind == TestKind::Functional && payload.is_empty() {
            return at(
                Verdict::RuntimeError,
                i,
                format!("test {i}: no return value (the process ended inside the call)"),
            );
        }
        if let Err(why) = check(Rules::Strict, i, test, payload) {
            return at(Verdict::WrongAnswer, i, why);
        }
    }
    Decided {
        verdict: Verdict::Pass,
        passed: p.tests.len(),
        failed: None,
        detail: String::new(),
    }
}

/// LiveCodeBench stops at the first failing test, so the frames are read in order and the
/// first wrong one decides, whatever the process did after it. Without the driver's closing
/// frame (the process died, exited or hit the overall deadline) LiveCodeBench has no result and
/// counts every test failed (-1): the sample fails at test 0.
fn livecodebench(
    p: &EvalProblem,
    frames: &Frames,
    out: &valley_plugin_api::SandboxResult,
) -> Decided {
    let total = p.tests.len();
    let mut next = 0;
    let mut closed = false;
    let mut crash = None;
    for (head, payload) in frames {
        if field(head, "done").is_some() {
            closed = true;
            break;
        }
        if let Some(c) = field(head, "crash") {
            crash = Some(
                c.as_str()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect::<String>(),
            );
            break;
        }
        let i = field(head, "test").and_then(Value::as_u64);
        if i != Some(next as u64) || next >= total {
            crash = Some("the frames are out of order".to_string());
            break;
        }
        let detail = text(head, "detail");
        if field(head, "output_limit").is_some() {
            return at(
                Verdict::WrongAnswer,
                next,
                format!("test {next}: output over the limit"),
            );
        }
        match field(head, "lcb").and_then(Value::as_i64) {
            Some(0) => {
                if let Err(why) = check(Rules::LiveCodeBench, next, &p.tests[next], payload) {
                    return at(Verdict::WrongAnswer, next, why);
                }
            }
            Some(-3) => return at(Verdict::TimeLimit, next, format!("test {next}: {detail}")),
            Some(-4) => {
                let compile = field(head, "load").is_some()
                    && ["SyntaxError", "IndentationError", "TabError"]
                        .iter()
                        .any(|e| detail.starts_with(e));
                let verdict = if compile {
                    Verdict::CompileError
                } else {
                    Verdict::RuntimeError
                };
                return at(verdict, next, format!("test {next}: {detail}"));
            }
            _ => {
                crash = Some("a frame without a result".to_string());
                break;
            }
        }
        next += 1;
    }
    if closed && next == total {
        return Decided {
            verdict: Verdict::Pass,
            passed: total,
            failed: None,
            detail: String::new(),
        };
    }
    let why = match (crash, closed) {
        (Some(c), _) => c,
        (None, true) => "the driver stopped before the last test".to_string(),
        (None, false) if out.timed_out => "the overall deadline".to_string(),
        (None, false) => format!("the process ended: {}", last_line(&out.stderr)),
    };
    let verdict = if out.timed_out {
        Verdict::TimeLimit
    } else {
        Verdict::RuntimeError
    };
    at(
        verdict,
        0,
        format!("no result (LiveCodeBench counts every test failed, -1): {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_round_trip_and_an_unknown_one_is_named() {
        for r in Rules::ALL {
            assert_eq!(r.name().parse::<Rules>(), Ok(r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.name())
            );
            assert_eq!(r.other().other(), r);
        }
        let err = "livecodebench".parse::<Rules>().unwrap_err();
        assert!(err.to_string().contains("`livecodebench`"), "{err}");
        assert_eq!(Rules::default(), Rules::LiveCodeBench);
    }
}
