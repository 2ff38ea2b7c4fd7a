//! The judge, generic over how programs run: it builds the sandbox requests for a candidate
//! program, hands them to a [`Runner`] (the harness's sandbox, or a plugin's
//! `Host::run_sandboxed`) and gives a verdict. LiveCodeBench-shaped problems are judged under a
//! named rule set ([`Rules`], the `rules` module): `livecodebench@28fef95`, LiveCodeBench's
//! harness with its quirks (the `lcb_driver` module), or `strict`, valley's own semantics (the
//! `forking_driver` module); [`judge_compared`] judges under both. HumanEval-shaped problems
//! follow OpenAI's harness (`prompt` + completion, then `test`'s `check(entry_point)`) with one
//! difference: `check` runs in a process the completion never touches and sees only plain data
//! from it, so the completion cannot forge a pass (the `proxy_driver` module).
//!
//! A LiveCodeBench sample is one sandbox run. The first failing test decides the verdict
//! (LiveCodeBench stops at the first failure), and a sample is solved only when every test
//! passes. The program never sees expected outputs: stdout, or a functional call's return value
//! as type-preserving plain data ([`value`]), comes back to the judge, which compares. A
//! sample's deadline grows with its tests as LiveCodeBench's does: (per-test timeout + 1 s) ×
//! tests + 5 s.
//!
//! Each verdict records the isolation its runs had ([`Judged::isolation`]).
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
mod lcb_driver;
mod pass_at_k;
mod plain_py;
mod problem;
mod proxy_driver;
mod rules;
pub mod value;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use valley_plugin_api::{
    abi_stable::std_types::{RString, RVec},
    SandboxFile, SandboxLimits, SandboxRequest, SandboxResult,
};

pub use compare::stdout_matches;
pub use extract::extract_code;
pub use pass_at_k::pass_at_k;
pub use problem::{parse_problems, EvalProblem, HumanEvalProblem, Problem, TestCase, TestKind};
pub use rules::{Rules, UnknownRules};

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
    /// The isolation its run had: `full (N layers)`, or `weaker: ` and what was off.
    #[serde(default)]
    pub isolation: String,
    /// The rule set it was judged under (a [`Rules`] name, or `human-eval` for HumanEval's
    /// harness semantics).
    #[serde(default)]
    pub rules: String,
}

/// Judge settings.
#[derive(Debug, Clone)]
pub struct JudgeConfig {
    /// The interpreter (readable and executable by the sandbox uid).
    pub python: String,
    /// Timeout of one test (LiveCodeBench: 6 s).
    pub test_timeout: Duration,
    /// Deadline of all tests of one sample together; `None`: LiveCodeBench's, which grows with
    /// the number of tests (see [`JudgeConfig::sample_deadline`]).
    pub overall_timeout: Option<Duration>,
    /// Address space of each run.
    pub memory_bytes: u64,
    /// The rule set LiveCodeBench-shaped samples are judged under.
    pub rules: Rules,
    /// Also judge LiveCodeBench-shaped samples under the other rule set ([`judge_compared`]),
    /// to show what the choice of rules is worth on these samples.
    pub compare_rules: bool,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            python: "/usr/bin/python3".into(),
            test_timeout: Duration::from_secs(6),
            overall_timeout: None,
            memory_bytes: 2 << 30,
            rules: Rules::default(),
            compare_rules: true,
        }
    }
}

impl JudgeConfig {
    /// The deadline of a sample with `tests` tests: `overall_timeout` when set, else
    /// LiveCodeBench's `(timeout + 1) * len(inputs) + 5` seconds
    /// (`lcb_runner/evaluation/compute_code_generation_metrics.py`, `check_correctness`).
    pub fn sample_deadline(&self, tests: usize) -> Duration {
        self.overall_timeout.unwrap_or_else(|| {
            (self.test_timeout + Duration::from_secs(1)) * tests.max(1) as u32
                + Duration::from_secs(5)
        })
    }
}

/// Imports LiveCodeBench prepends to every program (`lcb_runner/evaluation/testing_util.py`).
const LCB_IMPORTS: &str = "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n";

/// 128 random bits as hex: the HumanEval driver's verdict line must carry them.
fn nonce() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        // Without /dev/urandom: std's per-process random hash keys.
        use std::hash::{BuildHasher, RandomState};
        let a = RandomState::new().hash_one(std::time::SystemTime::now());
        let b = RandomState::new().hash_one(a);
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The verdict of a HumanEval run: only the driver's verdict line with the run's nonce counts;
/// without it the run failed (the deadline, a crash), whatever its exit status.
fn proxy_verdict(out: &SandboxResult, nonce: &str) -> (Verdict, String) {
    #[derive(Deserialize)]
    struct Line {
        nonce: String,
        verdict: String,
        #[serde(default)]
        detail: String,
    }
    let lines: Vec<Line> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .filter(|l| l.nonce == nonce)
        .collect();
    if out.timed_out || out.cpu_limit_exceeded {
        return (
            Verdict::TimeLimit,
            format!("{:.1} s", out.wall_ms as f64 / 1000.0),
        );
    }
    let [line] = lines.as_slice() else {
        let why = if lines.is_empty() {
            format!("no verdict from the driver: {}", last_line(&out.stderr))
        } else {
            "more than one verdict line".to_string()
        };
        return (Verdict::RuntimeError, why);
    };
    let verdict = match line.verdict.as_str() {
        "pass" => Verdict::Pass,
        "wrong_answer" => Verdict::WrongAnswer,
        "compile_error" => Verdict::CompileError,
        _ => Verdict::RuntimeError,
    };
    (verdict, line.detail.chars().take(300).collect())
}

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
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    line.chars().take(300).collect()
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
    let limits = |wall: Duration| SandboxLimits {
        wall_ms: millis(wall),
        cpu_seconds: wall.as_secs_f64().ceil() as u64,
        address_space_bytes: config.memory_bytes,
        ..DEFAULT_LIMITS
    };
    let done = |verdict, tests_passed, tests_total, failed_test, detail, isolation| Judged {
        verdict,
        tests_passed,
        tests_total,
        failed_test,
        detail,
        wall_ms: started.elapsed().as_millis() as u64,
        isolation,
        rules: "human-eval".to_string(),
    };
    match problem {
        Problem::HumanEval(p) => {
            let nonce = nonce();
            let job = serde_json::json!({"nonce": nonce, "prompt": p.prompt, "test": p.test});
            let driver = proxy_driver::DRIVER
                .replace("PLAIN_DATA", plain_py::ENCODER)
                .replace("ENTRY", &python_literal(&p.entry_point));
            let out = runner.run(&SandboxRequest {
                argv: python_argv(config),
                stdin: RVec::from(serde_json::to_vec(&job).expect("the job serializes")),
                files: RVec::from(vec![
                    file("driver.py", driver.into_bytes()),
                    file(
                        "solution.py",
                        format!("{}{}\n", p.prompt, code).into_bytes(),
                    ),
                ]),
                limits: limits(config.sample_deadline(1)),
            })?;
            let isolation = out.isolation();
            let (verdict, detail) = proxy_verdict(&out, &nonce);
            let passed = usize::from(verdict == Verdict::Pass);
            let failed = (verdict != Verdict::Pass).then_some(0);
            Ok(done(verdict, passed, 1, failed, detail, isolation))
        }
        Problem::LiveCodeBench(p) => {
            let (d, isolation) = rules::judge_tests(runner, config, p, code)?;
            Ok(Judged {
                rules: config.rules.name().into(),
                ..done(
                    d.verdict,
                    d.passed,
                    p.tests.len(),
                    d.failed,
                    d.detail,
                    isolation,
                )
            })
        }
    }
}

/// Judges one program under `config.rules` and, when `config.compare_rules` is set and the
/// problem is LiveCodeBench-shaped, under the other rule set too (second).
///
/// # Errors
/// As [`judge`].
pub fn judge_compared<R: Runner + ?Sized>(
    runner: &R,
    config: &JudgeConfig,
    problem: &Problem,
    code: &str,
) -> Result<(Judged, Option<Judged>), R::Error> {
    let first = judge(runner, config, problem, code)?;
    if !config.compare_rules || matches!(problem, Problem::HumanEval(_)) {
        return Ok((first, None));
    }
    let other = JudgeConfig {
        rules: config.rules.other(),
        ..config.clone()
    };
    Ok((first, Some(judge(runner, &other, problem, code)?)))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Records the requests and answers as a sandbox would for a program that printed nothing.
    struct Recorder(RefCell<Vec<SandboxRequest>>);

    impl Runner for Recorder {
        type Error = std::convert::Infallible;
        fn run(&self, request: &SandboxRequest) -> Result<SandboxResult, Self::Error> {
            self.0.borrow_mut().push(request.clone());
            Ok(SandboxResult {
                exit_code: Some(0).into(),
                ..SandboxResult::default()
            })
        }
    }

    fn lcb(tests: usize) -> Problem {
        let tests: Vec<serde_json::Value> = (0..tests)
            .map(|i| serde_json::json!({"input": i.to_string(), "output": i.to_string(), "kind": "stdin"}))
            .collect();
        let row =
            serde_json::json!({"id": "p", "statement": "", "difficulty": "easy", "tests": tests});
        parse_problems(&format!("{row}\n")).unwrap().remove(0)
    }

    /// Finding 6: the deadline was a fixed 60 s, so a slow but correct solution with many tests
    /// could time out. It now grows as LiveCodeBench's: (6 + 1) × tests + 5 seconds.
    #[test]
    fn the_sample_deadline_grows_with_the_tests_as_livecodebench_s() {
        let config = JudgeConfig::default();
        assert_eq!(config.sample_deadline(1), Duration::from_secs(12));
        assert_eq!(config.sample_deadline(20), Duration::from_secs(145));
        let fixed = JudgeConfig {
            overall_timeout: Some(Duration::from_secs(9)),
            ..JudgeConfig::default()
        };
        assert_eq!(fixed.sample_deadline(20), Duration::from_secs(9));
        let recorder = Recorder(RefCell::new(Vec::new()));
        judge(&recorder, &config, &lcb(30), "print(1)").unwrap();
        assert_eq!(recorder.0.borrow()[0].limits.wall_ms, 215_000);
    }

    /// Exit status 0 with no verdict line is no pass (finding 2: `sys.exit(0)` passed every
    /// HumanEval problem when exit 0 meant success).
    #[test]
    fn an_exit_status_proves_nothing() {
        let row = serde_json::json!({"task_id": "T/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"});
        let problem = parse_problems(&format!("{row}\n")).unwrap().remove(0);
        let recorder = Recorder(RefCell::new(Vec::new()));
        let got = judge(
            &recorder,
            &JudgeConfig::default(),
            &problem,
            "    return 1\n",
        )
        .unwrap();
        assert_eq!(got.verdict, Verdict::RuntimeError, "{got:?}");
        // A verdict line without the run's nonce counts for nothing either.
        let forged = SandboxResult {
            exit_code: Some(0).into(),
            stdout: br#"{"nonce": "00", "verdict": "pass"}"#.to_vec().into(),
            ..SandboxResult::default()
        };
        assert_eq!(proxy_verdict(&forged, "ff").0, Verdict::RuntimeError);
        let real = SandboxResult {
            stdout: br#"{"nonce": "ff", "verdict": "pass", "detail": ""}"#
                .to_vec()
                .into(),
            ..SandboxResult::default()
        };
        assert_eq!(proxy_verdict(&real, "ff").0, Verdict::Pass);
    }
}
