//! The synthetic corpus (issue 3): byte-identical files for a seed, labels that hold when the
//! code is run again one fresh `python3` process per test, subsets with the right labels and
//! nesting, and an evaluation set disjoint from training. Needs python3 (CI installs it).

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use valley_data::{
    problems::read_eval_jsonl,
    records::{read_training_jsonl, BadRowPolicy, TrainingRecord},
    synth::{
        generate, python_runner::BatchedPython, teacher::extract_code, write_corpus, SynthRequest,
    },
};

fn corpus(dir: &Path, train: usize, eval: usize, seed: u64) {
    let request = SynthRequest { train, eval, seed };
    let corpus = generate(&request, &BatchedPython::default()).expect("generates");
    write_corpus(&corpus, dir).expect("writes");
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn records(dir: &Path, name: &str) -> Vec<TrainingRecord> {
    read_training_jsonl(&dir.join(format!("{name}.jsonl")), BadRowPolicy::Error)
        .unwrap()
        .records
}

#[test]
fn the_same_seed_gives_byte_identical_files() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    corpus(a.path(), 150, 20, 5);
    corpus(b.path(), 150, 20, 5);
    corpus(c.path(), 150, 20, 6);
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    let names: Vec<&str> = fa.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "correct_6k.jsonl",
            "easy_4k.jsonl",
            "eval.jsonl",
            "hard_4k.jsonl",
            "incorrect_6k.jsonl",
            "manifest.json",
            "train_10k.jsonl",
            "train_1k.jsonl",
            "train_30k.jsonl"
        ]
    );
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs for the same seed");
        if name != "manifest.json" {
            assert!(fc[name] != *bytes, "{name} is the same for another seed");
        }
    }
}

/// Runs `code` on `input` in a fresh interpreter, as a judge would: its own process per test.
fn run_alone(code_file: &Path, input: &str) -> Option<String> {
    let mut child = Command::new("python3")
        .args(["-I", "-S"])
        .arg(code_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn same_output(got: &str, want: &str) -> bool {
    let norm = |s: &str| {
        let mut lines: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    };
    norm(got) == norm(want)
}

/// Whether a record's code passes every test of its `meta.input_output`.
fn passes_all(record: &TrainingRecord, dir: &Path) -> bool {
    let code = extract_code(&record.response).expect("a fenced block");
    let file = dir.join(format!("{}.py", record.id));
    std::fs::write(&file, code).unwrap();
    let io = &record.meta["input_output"];
    let inputs = io["inputs"].as_array().unwrap();
    let outputs = io["outputs"].as_array().unwrap();
    assert!(inputs.len() >= 11, "{}: {} tests", record.id, inputs.len());
    inputs.iter().zip(outputs).all(|(i, o)| {
        run_alone(&file, i.as_str().unwrap())
            .is_some_and(|got| same_output(&got, o.as_str().unwrap()))
    })
}

#[test]
fn subsets_hold_what_their_names_say() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 30, 30, 2);
    let scratch = tempfile::tempdir().unwrap();

    // Sizes scaled from the paper's: k * 30 / 30000, at least 1.
    let correct = records(dir.path(), "correct_6k");
    let incorrect = records(dir.path(), "incorrect_6k");
    assert_eq!((correct.len(), incorrect.len()), (6, 6));
    std::thread::scope(|s| {
        s.spawn(|| {
            for r in &correct {
                assert_eq!(r.correct, Some(true));
                assert!(passes_all(r, scratch.path()), "{} fails a test", r.id);
            }
        });
        for r in &incorrect {
            assert_eq!(r.correct, Some(false));
            assert!(!passes_all(r, scratch.path()), "{} passes every test", r.id);
            assert!(
                !r.meta["bug"].is_null(),
                "{}: a faithful teacher failed",
                r.id
            );
        }
    });

    let easy = records(dir.path(), "easy_4k");
    let hard = records(dir.path(), "hard_4k");
    assert_eq!((easy.len(), hard.len()), (4, 4));
    assert!(easy
        .iter()
        .all(|r| ["EASY", "MEDIUM"].contains(&r.difficulty.as_str())));
    assert!(hard
        .iter()
        .all(|r| ["MEDIUM_HARD", "HARD", "VERY_HARD"].contains(&r.difficulty.as_str())));

    let ids = |name| -> Vec<String> {
        records(dir.path(), name)
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let (t1, t10, t30) = (ids("train_1k"), ids("train_10k"), ids("train_30k"));
    assert_eq!((t1.len(), t10.len(), t30.len()), (1, 10, 30));
    assert_eq!(t1[..], t10[..1], "train_1k is a prefix of train_10k");
    assert_eq!(t10[..], t30[..10], "train_10k is a prefix of train_30k");
    let pool: BTreeSet<String> = [&correct, &incorrect, &easy, &hard]
        .iter()
        .flat_map(|s| s.iter().map(|r| r.id.clone()))
        .collect();
    assert!(
        t30.iter().all(|id| !pool.contains(id)),
        "the pool is separate from training"
    );

    // The evaluation set: LiveCodeBench shape, and no question of training or pool asked again
    // (the steps and reducer — the statement up to "Input" — identify the question).
    let eval = read_eval_jsonl(&dir.path().join("eval.jsonl")).unwrap();
    assert_eq!(eval.len(), 30);
    let question = |s: &str| s.split("\nInput\n").next().unwrap().to_string();
    let seen: BTreeSet<String> = records(dir.path(), "train_30k")
        .iter()
        .chain(&correct)
        .chain(&incorrect)
        .chain(&easy)
        .chain(&hard)
        .map(|r| question(&r.problem))
        .collect();
    for p in &eval {
        assert!(
            !seen.contains(&question(&p.statement)),
            "{} repeats a training question",
            p.id
        );
        assert!(p.tests.iter().any(|t| t.public) && p.tests.iter().any(|t| !t.public));
        assert!((11..=22).contains(&p.tests.len()), "{}", p.id);
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let counts: Vec<(String, u64)> = manifest["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts[2], ("train_30k".to_string(), 30));
    assert_eq!(manifest["subsets"][0]["paper_size"], 1000);
}
