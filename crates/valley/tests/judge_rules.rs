//! The judge's two rule sets against their references:
//!
//! - `livecodebench@28fef95` against LiveCodeBench's own verdicts: every case of
//!   `fixtures/lcb-conformance.toml` (an honest program, its tests, the verdict and first failing
//!   test LiveCodeBench's harness gives it and where in their code that comes from; none of it
//!   produced by running this judge) is judged in the real sandbox and must get that verdict;
//! - `strict` against the documented clean semantics, the same cases' `strict` expectations;
//! - hostile programs fail under both (the integrity issue's guarantees hold whatever the rules).

use std::{path::PathBuf, sync::Mutex, time::Duration};

use serde::Deserialize;
use serde_json::json;
use valley_judge::{judge, parse_problems, JudgeConfig, Judged, Problem, Rules, Verdict};
use valley_sandbox::{Sandbox, SandboxConfig};

mod common;

const VALLEY: &str = env!("CARGO_BIN_EXE_valley");

fn sandbox(index: u32) -> Sandbox {
    let mut config = SandboxConfig::new(PathBuf::from(VALLEY));
    config.uid_base = 1_990_000 + index * 16;
    config.slots = 2;
    Sandbox::new(config).unwrap()
}

#[derive(Debug, Deserialize)]
struct Fixtures {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    class: String,
    kind: String,
    #[serde(default)]
    fn_name: Option<String>,
    program: String,
    tests: Vec<Test>,
    livecodebench: String,
    #[serde(default)]
    livecodebench_failed_test: Option<usize>,
    strict: String,
    #[serde(default)]
    strict_failed_test: Option<usize>,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Test {
    input: String,
    output: String,
}

fn fixtures() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lcb-conformance.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    toml::from_str::<Fixtures>(&text).unwrap().case
}

fn problem(case: &Case) -> Problem {
    let tests: Vec<_> = case
        .tests
        .iter()
        .map(|t| json!({"input": t.input, "output": t.output, "kind": case.kind}))
        .collect();
    let row = json!({"id": case.name, "statement": "", "difficulty": case.class,
                     "fn_name": case.fn_name, "tests": tests});
    parse_problems(&format!("{row}\n")).unwrap().remove(0)
}

fn config(rules: Rules) -> JudgeConfig {
    JudgeConfig {
        // The fixtures' references ran with a 2 s per-test timeout (their time-limit cases are
        // an endless loop and a 10 s sleep); the overall deadline is LiveCodeBench's for it.
        test_timeout: Duration::from_secs(2),
        rules,
        compare_rules: false,
        ..JudgeConfig::default()
    }
}

/// Whether a verdict is the expected one. LiveCodeBench's classes: `runtime_error` (-4)
/// includes compile errors; `global` (-1) is no result at all, every test failed.
fn matches(expected: &str, failed_test: Option<usize>, got: &Judged) -> bool {
    let class = match expected {
        "pass" => got.verdict == Verdict::Pass,
        "wrong_answer" => got.verdict == Verdict::WrongAnswer,
        "time_limit" => got.verdict == Verdict::TimeLimit,
        "compile_error" => got.verdict == Verdict::CompileError,
        "runtime_error" if got.rules == "strict" => got.verdict == Verdict::RuntimeError,
        "runtime_error" => matches!(got.verdict, Verdict::RuntimeError | Verdict::CompileError),
        "global" => {
            matches!(got.verdict, Verdict::RuntimeError | Verdict::TimeLimit)
                && got.detail.contains("every test failed")
        }
        other => panic!("unknown expected verdict {other:?}"),
    };
    let failed = if expected == "pass" {
        None
    } else {
        Some(failed_test.unwrap_or(0))
    };
    class && got.failed_test == failed
}

#[test]
fn each_rule_set_gives_its_reference_verdict_on_every_conformance_case() {
    let cases = fixtures();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let sb = sandbox(0);
    let next = Mutex::new(0usize);
    let misses = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(case) = cases.get(i) else { break };
                let p = problem(case);
                for (rules, expected, failed) in [
                    (
                        Rules::LiveCodeBench,
                        &case.livecodebench,
                        case.livecodebench_failed_test,
                    ),
                    (Rules::Strict, &case.strict, case.strict_failed_test),
                ] {
                    let got = judge(&sb, &config(rules), &p, &case.program).unwrap();
                    assert_eq!(got.rules, rules.name());
                    if !matches(expected, failed, &got) {
                        misses.lock().unwrap().push(format!(
                            "{} [{}] under {rules}: expected {expected} at {failed:?}, got {:?} at {:?}: {}\n    (source: {})",
                            case.name, case.class, got.verdict, got.failed_test, got.detail, case.source
                        ));
                    }
                }
            });
        }
    });
    let misses = misses.into_inner().unwrap();
    assert!(
        misses.is_empty(),
        "{} of {} cases differ:\n{}",
        misses.len(),
        cases.len(),
        misses.join("\n")
    );
    common::assert_nothing_left(&sb);
}

/// Programs written to cheat pass under neither rule set: a functional return value equal to
/// everything (LiveCodeBench's own harness compares in the solution's process and would count
/// it), a lying `int`, frames forged on every descriptor, and a stdin program that forges the
/// driver's closing frame.
#[test]
fn a_hostile_program_fails_under_every_rule_set() {
    let sb = sandbox(1);
    let functional = problem(&Case {
        name: "f".into(),
        class: "hostile".into(),
        kind: "functional".into(),
        fn_name: Some("add".into()),
        program: String::new(),
        tests: vec![
            Test {
                input: "1\n2".into(),
                output: "3".into(),
            },
            Test {
                input: "5\n7".into(),
                output: "12".into(),
            },
        ],
        livecodebench: String::new(),
        livecodebench_failed_test: None,
        strict: String::new(),
        strict_failed_test: None,
        source: String::new(),
    });
    let stdin = problem(&Case {
        kind: "stdin".into(),
        fn_name: None,
        tests: vec![
            Test {
                input: "1 2\n".into(),
                output: "3\n".into(),
            },
            Test {
                input: "5 7\n".into(),
                output: "12\n".into(),
            },
        ],
        ..Case {
            name: "s".into(),
            class: "hostile".into(),
            kind: String::new(),
            fn_name: None,
            program: String::new(),
            tests: Vec::new(),
            livecodebench: String::new(),
            livecodebench_failed_test: None,
            strict: String::new(),
            strict_failed_test: None,
            source: String::new(),
        }
    });
    let always_equal = "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n    __hash__ = object.__hash__\nclass Solution:\n    def add(self, a, b):\n        return E()\n";
    let lying_int = "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\nclass Solution:\n    def add(self, a, b):\n        return I(-1)\n";
    let forged = "import os\nclass Solution:\n    def add(self, a, b):\n        for fd in range(1, 16):\n            try:\n                os.write(fd, b'{\"test\": 0, \"lcb\": 0, \"len\": 1}\\n3{\"test\": 1, \"lcb\": 0, \"len\": 2}\\n12{\"done\": true, \"len\": 0}\\n')\n            except OSError:\n                pass\n        os._exit(0)\n";
    let forged_stdin = "import os\nfor fd in range(1, 16):\n    try:\n        os.write(fd, b'{\"test\": 0, \"lcb\": 0, \"code\": 0, \"len\": 2}\\n3\\n{\"test\": 1, \"lcb\": 0, \"code\": 0, \"len\": 3}\\n12\\n{\"done\": true, \"len\": 0}\\n')\n    except OSError:\n        pass\nos._exit(0)\n";
    for rules in Rules::ALL {
        for (what, p, code) in [
            ("always equal", &functional, always_equal),
            ("lying int", &functional, lying_int),
            ("forged frames", &functional, forged),
            ("forged stdin frames", &stdin, forged_stdin),
        ] {
            let got = judge(&sb, &config(rules), p, code).unwrap();
            assert_ne!(got.verdict, Verdict::Pass, "{what} under {rules}: {got:?}");
        }
        let honest = judge(
            &sb,
            &config(rules),
            &functional,
            "class Solution:\n    def add(self, a, b):\n        return a + b\n",
        )
        .unwrap();
        assert_eq!(honest.verdict, Verdict::Pass, "{rules}: {honest:?}");
    }
    common::assert_nothing_left(&sb);
}
