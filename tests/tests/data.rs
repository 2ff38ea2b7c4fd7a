//! `valley data synth | inspect | stats` and the `[data] synth` source of experiment files, driven
//! through the binary (issue 3). Needs python3: the corpus's correctness labels come from running.

use valley_e2e::{
    assert_code, show, stderr, stdout, toml_path, valley, workspace_root, write_file,
};

#[test]
fn synth_writes_the_seven_subsets_and_stats_and_inspect_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("corpus");
    let out = valley(
        [
            "data",
            "synth",
            "--out",
            out_dir.to_str().unwrap(),
            "--train",
            "30",
            "--eval",
            "5",
            "--seed",
            "3",
        ],
        dir.path(),
        &[],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    // Sizes: the paper's k scaled by 30 / 30000, at least one.
    for (file, n) in [
        ("train_1k.jsonl", 1),
        ("train_10k.jsonl", 10),
        ("train_30k.jsonl", 30),
        ("correct_6k.jsonl", 6),
        ("incorrect_6k.jsonl", 6),
        ("easy_4k.jsonl", 4),
        ("hard_4k.jsonl", 4),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(file) && l.contains(&format!(" {n} records"))),
            "{file}: {}",
            show(&out)
        );
        assert!(out_dir.join(file).is_file(), "{file}");
    }
    assert!(text.contains("6 correct") && text.contains("incorrect_6k.jsonl"));
    assert!(out_dir.join("eval.jsonl").is_file() && out_dir.join("manifest.json").is_file());

    let train = out_dir.join("train_30k.jsonl");
    let out = valley(
        ["data", "inspect", train.to_str().unwrap()],
        dir.path(),
        &[],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("30 rows, 8 columns"), "{}", show(&out));
    for column in [
        "id",
        "problem",
        "response",
        "difficulty_rank",
        "correct",
        "meta",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(column)),
            "{column}: {}",
            show(&out)
        );
    }
    assert!(
        text.contains("row 3:") && !text.contains("row 4:"),
        "{}",
        show(&out)
    );

    let out = valley(["data", "stats", train.to_str().unwrap()], dir.path(), &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("30 rows, 0 bad rows skipped"),
        "{}",
        show(&out)
    );
    let counts: Vec<usize> = text
        .lines()
        .find(|l| l.starts_with("correct:"))
        .expect("a correct line")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts.iter().sum::<usize>(), 30);
    assert_eq!(counts[2], 0, "every record is labelled");
    assert!(
        text.contains("length in bytes") && text.contains("p90"),
        "{}",
        show(&out)
    );
    assert!(text.contains("duplicates:"), "{}", show(&out));

    let eval = out_dir.join("eval.jsonl");
    let out = valley(["data", "stats", eval.to_str().unwrap()], dir.path(), &[]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("5 evaluation problems"),
        "{}",
        show(&out)
    );

    let missing = dir.path().join("nope.jsonl");
    let out = valley(
        ["data", "stats", missing.to_str().unwrap()],
        dir.path(),
        &[],
    );
    assert_code(&out, 2);
    assert!(stderr(&out).contains("nope.jsonl"), "{}", show(&out));
}

#[test]
fn an_experiment_names_a_subset_of_the_generated_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let exp = |subset: &str| {
        format!(
            "[data]\nsynth = {{ train = 30, eval = 5, seed = 4 }}\nsubset = \"{subset}\"\ncache_dir = \"{}\"\n\n[arms.random]\n\n[sweep]\nsizes = [4]\nseeds = [1]\n",
            dir.path().join("cache").display()
        )
    };
    let file = write_file(dir.path(), "hard.toml", &exp("hard_4k"));
    let out = valley(
        ["experiment", file.to_str().unwrap(), "--dry-run"],
        &workspace_root(),
        &[],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("hard_4k.jsonl — 4 records"), "{}", show(&out));
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let name = cached[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("synth-s4-t30-e5-v"), "{name}");
    assert!(
        cached[0].join("manifest.json").is_file(),
        "generated into the cache"
    );

    let file = write_file(dir.path(), "typo.toml", &exp("hard_5k"));
    let out = valley(
        ["experiment", file.to_str().unwrap(), "--dry-run"],
        &workspace_root(),
        &[],
    );
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("`data.subset = \"hard_5k\"`: `hard_5k` is not a subset"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_preset_reads_a_hub_dataset_from_the_offline_cache() {
    let dir = tempfile::tempdir().unwrap();
    // The layout huggingface_hub writes: refs/main -> a commit, snapshots/<commit>/<path>.
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    let repo = dir.path().join("hf/hub/datasets--BAAI--TACO");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let shards = repo.join("snapshots").join(commit).join("train");
    std::fs::create_dir_all(&shards).unwrap();
    let rows: Vec<String> = ["EASY", "HARD", "VERY_HARD"]
        .iter()
        .map(|level| {
            serde_json::json!({
                "question": format!("A {level} question."), "solutions": "[\"print(1)\"]",
                "starter_code": "", "input_output": "{}", "difficulty": level, "source": "codeforces"
            })
            .to_string()
        })
        .collect();
    write_file(&shards, "part-0.jsonl", &(rows.join("\n") + "\n"));
    let exp = |revision: &str| {
        format!(
            "[data]\ntrain = \"hf://datasets/BAAI/TACO@{revision}/train\"\npreset = \"taco\"\n\n[arms.random]\n\n[sweep]\nsizes = [2]\nseeds = [1]\n"
        )
    };
    let home = dir.path().join("hf");
    let env = [
        ("HF_HOME", Some(home.to_str().unwrap())),
        ("HF_HUB_OFFLINE", Some("1")),
        ("HF_HUB_CACHE", None),
    ];
    let file = write_file(dir.path(), "taco.toml", &exp("main"));
    let out = valley(
        ["experiment", file.to_str().unwrap(), "--dry-run"],
        &workspace_root(),
        &env,
    );
    assert_code(&out, 0);
    assert!(stdout(&out).contains("3 records"), "{}", show(&out));

    let file = write_file(dir.path(), "pinned.toml", &exp("v9"));
    // A dry run explains what is missing instead of failing on it.
    let out = valley(
        ["experiment", file.to_str().unwrap(), "--dry-run"],
        &workspace_root(),
        &env,
    );
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("is not in the Hugging Face cache")
            && stdout(&out).contains("HF_HUB_OFFLINE is set, so the run would stop"),
        "{}",
        show(&out)
    );
    // A real run stops with the error saying what to set.
    let runs = dir.path().join("runs");
    let runs_arg = format!("output.runs_dir={}", toml_path(&runs));
    let out = valley(
        [
            "experiment",
            file.to_str().unwrap(),
            "--set",
            runs_arg.as_str(),
        ],
        &workspace_root(),
        &env,
    );
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("HF_HUB_OFFLINE is set"), "{}", show(&out));
    assert!(
        err.contains("datasets/BAAI/TACO@v9: train"),
        "{}",
        show(&out)
    );
}
