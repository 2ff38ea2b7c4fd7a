//! `valley eval` with the real `code-exec` plugin and the real sandbox: a tiny random-init
//! checkpoint saved by the test is evaluated on a few problems of a generated evaluation set
//! (a random model solves nothing, so this checks the plumbing, the metrics' ranges and the
//! generations file); and the judging half of the plugin ([`score`]) is checked with known
//! responses, correct ones that must pass and broken ones that must fail with the right verdict.

use std::time::Duration;

use candle_core::{DType, Device};
use serde_json::{json, Value};
use valley_e2e::{assert_code, read_lines, show, stdout, valley, valley_bin};
use valley_evaluator_code_exec::score::score;
use valley_judge::{JudgeConfig, Problem, Verdict};
use valley_lm::{checkpoint, init::init_varmap, tokenizer::ByteTokenizer, ModelConfig};
use valley_sandbox::{Sandbox, SandboxConfig};

/// A 2-layer, 32-wide model over the byte tokenizer, saved in the Hugging Face layout.
fn tiny_checkpoint(dir: &std::path::Path) {
    let mut cfg = ModelConfig::small(ByteTokenizer::VOCAB_SIZE);
    cfg.hidden_size = 32;
    cfg.intermediate_size = 64;
    cfg.num_hidden_layers = 2;
    let varmap = init_varmap(&cfg, 5, DType::F32, &Device::Cpu).unwrap();
    checkpoint::save(dir, &cfg, &varmap).unwrap();
}

#[test]
fn valley_eval_scores_a_checkpoint_with_the_code_exec_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = valley(
        [
            "data",
            "synth",
            "--out",
            data.to_str().unwrap(),
            "--train",
            "10",
            "--eval",
            "5",
            "--seed",
            "2",
        ],
        dir.path(),
        &[],
    );
    assert_code(&out, 0);
    let ckpt = dir.path().join("ckpt");
    tiny_checkpoint(&ckpt);
    let eval_out = dir.path().join("eval");
    let problems = data.join("eval.jsonl");
    let out = valley(
        [
            "eval",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--problems",
            problems.to_str().unwrap(),
            "--set",
            "limit=3",
            "--set",
            "n=2",
            "--set",
            "temperature=0.8",
            "--set",
            "k=[1,2]",
            "--set",
            "max_new_tokens=24",
            "--set",
            "batch_size=4",
            "--set",
            "prompt=lcb",
            "--out",
            eval_out.to_str().unwrap(),
        ],
        dir.path(),
        &[],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("pass@1"), "{}", show(&out));
    let metrics: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(eval_out.join("metrics.json")).unwrap())
            .unwrap();
    let get = |name: &str| -> f64 {
        metrics
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["value"].as_f64())
            .unwrap_or_else(|| panic!("no metric {name}: {metrics:?}"))
    };
    for name in [
        "pass@1",
        "pass@2",
        "completion_rate",
        "think_rate",
        "code_block_rate",
    ] {
        let v = get(name);
        assert!((0.0..=1.0).contains(&v), "{name} = {v}");
    }
    let pass = metrics.iter().find(|m| m["name"] == "pass@1").unwrap();
    assert_eq!(pass["unit"], "fraction");
    assert_eq!(pass["direction"], "higher is better");
    let mean = get("mean_response_tokens");
    assert!(
        (0.0..=24.0).contains(&mean),
        "mean_response_tokens = {mean}"
    );
    assert_eq!(get("samples"), 6.0);
    // Judged under both rule sets: pass@1 under each (the evaluator's rules, by default
    // LiveCodeBench's, is the primary), and the samples they disagree on.
    assert_eq!(
        get("rules/livecodebench@28fef95/pass@1"),
        get("pass@1"),
        "the default rules are the primary metric's"
    );
    assert!((0.0..=1.0).contains(&get("rules/strict/pass@1")));
    assert!((0.0..=6.0).contains(&get("rules/samples_differ")));
    // One row per sample, problem by problem; every row judged.
    let rows: Vec<Value> = read_lines(&eval_out.join("generations.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    let ids: Vec<String> = read_lines(&problems)
        .iter()
        .take(3)
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], ids[i / 2], "{row}");
        assert_eq!(row["sample"], i % 2, "{row}");
        assert!(
            row["prompt"].as_str().unwrap().contains("### Question:"),
            "{row}"
        );
        assert!(row["verdict"].is_string(), "{row}");
        assert!(row["tests_total"].as_u64().unwrap() > 0, "{row}");
        let tokens = row["response_tokens"].as_u64().unwrap();
        assert!(tokens <= 24, "{row}");
        if row["finished"] == false {
            assert_eq!(tokens, 24, "an unfinished sample ran to the cap: {row}");
        }
        let difficulty = row["difficulty"].as_str().unwrap();
        get(&format!("pass@1/{difficulty}"));
    }
}

#[test]
fn valley_eval_names_a_bad_config_field_and_a_missing_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("p.jsonl");
    std::fs::write(&problems, "").unwrap();
    let out = valley(
        [
            "eval",
            "--checkpoint",
            "nope",
            "--problems",
            problems.to_str().unwrap(),
            "--set",
            "tempreature=1",
        ],
        dir.path(),
        &[],
    );
    assert_code(&out, 2);
    assert!(show(&out).contains("tempreature"), "{}", show(&out));
    let out = valley(
        [
            "eval",
            "--checkpoint",
            "nope",
            "--problems",
            problems.to_str().unwrap(),
        ],
        dir.path(),
        &[],
    );
    assert_code(&out, 2);
    assert!(
        show(&out).contains("code-exec") && show(&out).contains("nope"),
        "{}",
        show(&out)
    );
}

fn problem(row: Value) -> Problem {
    valley_judge_parse(&row.to_string())
}

fn valley_judge_parse(line: &str) -> Problem {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.jsonl");
    std::fs::write(&p, format!("{line}\n")).unwrap();
    valley_evaluator_code_exec::run::read_problems(&p)
        .unwrap()
        .remove(0)
}

/// A sandbox (its work root, under /tmp, goes with it).
struct Fixture(Sandbox);

/// The harness's sandbox with the built `valley` binary as its supervisor.
fn sandbox() -> Fixture {
    let mut config = SandboxConfig::new(valley_bin());
    config.uid_base = 1_990_000;
    config.slots = 2;
    Fixture(Sandbox::new(config).unwrap())
}

/// Responses shaped like a reasoning model's (a `<think>` block, prose, an earlier draft block,
/// then the final block, which is the one judged).
fn response(code: &str) -> String {
    format!("<think>\nplan it\n</think>\nA draft:\n```python\nprint('draft')\n```\nFinal:\n```python\n{code}\n```\n")
}

#[test]
fn known_responses_pass_and_broken_ones_fail() {
    let fixture = sandbox();
    let reverse_max = problem(json!({
        "id": "reverse-max", "statement": "Reverse, map 5x-6, print the max or NONE.",
        "difficulty": "EASY",
        "tests": [
            {"input": "6\n18 3 9 15 -2 -7\n", "output": "84", "kind": "stdin"},
            {"input": "0\n\n", "output": "NONE", "kind": "stdin"},
            {"input": "1\n9\n", "output": "39", "kind": "stdin"},
        ]
    }));
    let pair_sum = problem(json!({
        "id": "pair-sum", "statement": "Add k to each.", "difficulty": "MEDIUM", "fn_name": "pairSum",
        "starter_code": "class Solution:\n    def pairSum(self, nums: List[int], k: int) -> List[int]:\n",
        "tests": [
            {"input": "[1, 2, 3]\n1", "output": "[2, 3, 4]", "kind": "functional"},
            {"input": "[]\n5", "output": "[]", "kind": "functional"},
        ]
    }));
    let human_eval = problem(json!({
        "task_id": "HumanEval/x", "prompt": "def add(a, b):\n    \"\"\"Sum.\"\"\"\n",
        "canonical_solution": "    return a + b\n",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add"
    }));
    let good_reverse = "n = int(input())\na = list(map(int, input().split()))[::-1]\nb = [5 * x - 6 for x in a]\nprint(max(b) if b else 'NONE')";
    let cases: Vec<(&Problem, String, Verdict)> = vec![
        (&reverse_max, response(good_reverse), Verdict::Pass),
        // Forgets the empty case.
        (
            &reverse_max,
            response("n = int(input())\na = list(map(int, input().split()))\nprint(max(5 * x - 6 for x in a))"),
            Verdict::RuntimeError,
        ),
        // Off by one in the map.
        (
            &reverse_max,
            response("n = int(input())\na = list(map(int, input().split()))\nprint(max(5 * x - 5 for x in a) if a else 'NONE')"),
            Verdict::WrongAnswer,
        ),
        (&reverse_max, response("print(("), Verdict::CompileError),
        (&reverse_max, response("while True:\n    pass"), Verdict::TimeLimit),
        (
            &pair_sum,
            response("class Solution:\n    def pairSum(self, nums, k):\n        return [x + k for x in nums]"),
            Verdict::Pass,
        ),
        (
            &pair_sum,
            response("class Solution:\n    def pairSum(self, nums, k):\n        return [x + k + 1 for x in nums]"),
            Verdict::WrongAnswer,
        ),
        (&human_eval, "```python\n    return a + b\n```".to_string(), Verdict::Pass),
        // A failed assertion of `check` is a wrong answer (the checking process tells them
        // apart from a crash of the solution).
        (&human_eval, "```python\n    return a - b\n```".to_string(), Verdict::WrongAnswer),
    ];
    let samples: Vec<(&Problem, &str)> = cases.iter().map(|(p, r, _)| (*p, r.as_str())).collect();
    let config = JudgeConfig {
        test_timeout: Duration::from_secs(2),
        overall_timeout: Some(Duration::from_secs(10)),
        memory_bytes: 512 << 20,
        ..JudgeConfig::default()
    };
    let verdicts = score(&fixture.0, &config, &samples, 2).unwrap();
    assert_eq!(verdicts.len(), cases.len());
    // Ordinary programs: the same verdict under both rule sets (LiveCodeBench's, the default,
    // first; HumanEval has its own harness and no second verdict).
    for ((p, r, expected), (got, other)) in cases.iter().zip(&verdicts) {
        assert_eq!(got.verdict, *expected, "{}: {r}\n{got:?}", p.id());
        match p {
            Problem::LiveCodeBench(_) => {
                assert_eq!(got.rules, "livecodebench@28fef95");
                let other = other.as_ref().expect("judged under both");
                assert_eq!(other.rules, "strict");
                assert_eq!(other.verdict, *expected, "{}: {r}\n{other:?}", p.id());
            }
            Problem::HumanEval(_) => assert!(other.is_none()),
        }
    }
    assert_eq!(verdicts[0].0.tests_passed, 3);
    assert_eq!(verdicts[1].0.failed_test, Some(1), "the empty case fails");
}
