//! `valley experiment` on the shipped experiment files: planning, writing, reproducibility, the
//! ordering and nesting properties of the files written, and configuration errors.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use serde_json::Value;
use valley_e2e::{
    assert_code, read_lines, show, snapshot, stderr, stdout, tiny_train, toml_path, valley,
    workspace_root, write_file,
};

const ARMS: [&str; 3] = ["random", "easy-first", "hard-first"];
const SEEDS: [u64; 3] = [1, 2, 3];

fn runs_dir_arg(dir: &Path) -> String {
    format!("output.runs_dir={}", dir.display())
}

/// Runs `valley experiment NAME [extra…] --set output.runs_dir=<runs>` from the workspace root.
fn experiment(name: &str, runs: &Path, extra: &[&str]) -> std::process::Output {
    // Sampling only: these tests are about the ordered training files (training and evaluation
    // are tested in tests/tests/sweep.rs).
    let mut args: Vec<String> = vec!["experiment".into(), name.into(), "--sample-only".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--set".into(), runs_dir_arg(runs)]);
    valley(args, &workspace_root(), &[])
}

fn records(path: &Path) -> Vec<Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn ids(path: &Path) -> Vec<String> {
    records(path)
        .iter()
        .map(|r| r["id"].as_str().expect("a string id").to_string())
        .collect()
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every id of the training file the experiment read: the path its cells' config.json records
/// (the generated corpus's cache, for the shipped experiments).
fn all_data_ids(runs: &Path, exp: &str) -> BTreeSet<String> {
    let cell = std::fs::read_dir(runs.join(exp))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("config.json").is_file())
        .expect("a cell directory");
    let config = json(&cell.join("config.json"));
    let train = config["data"]["train"].as_str().expect("data.train");
    ids(Path::new(train)).into_iter().collect()
}

fn cell_dir(runs: &Path, exp: &str, key: &str) -> PathBuf {
    runs.join(exp).join(key)
}

#[test]
fn dry_run_plans_every_cell_and_writes_nothing() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment("easy-first", runs.path(), &["--dry-run"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("18 cells = 3 arms × 2 sizes × 3 seeds"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("3000 records, 0 bad rows skipped"),
        "{}",
        show(&out)
    );
    assert!(text.contains("dry run: nothing written"), "{}", show(&out));
    // One row per cell, arm-major then seed: key, arm, size, seed, pool.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() == 5 && cols[0].contains("-n500-s"))
        .collect();
    let mut expected = Vec::new();
    for arm in ARMS {
        for seed in SEEDS {
            expected.push(vec![
                format!("{arm}-n500-s{seed}"),
                arm.to_string(),
                "500".into(),
                seed.to_string(),
                "3000".into(),
            ]);
        }
    }
    assert_eq!(rows, expected, "{}", show(&out));
    assert!(!runs.path().join("easy-first").exists());
    assert_eq!(std::fs::read_dir(runs.path()).unwrap().count(), 0);
}

#[test]
fn easy_first_writes_nine_reproducible_ordered_cells() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment("easy-first", runs.path(), &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "9 cells written, 9 base, 0 failed, under {}",
            runs.path().join("easy-first").display()
        )),
        "{}",
        show(&out)
    );

    let exp_dir = runs.path().join("easy-first");
    let mut entries: Vec<String> = std::fs::read_dir(&exp_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut expected_entries: Vec<String> = ARMS
        .iter()
        .flat_map(|arm| {
            [0, 500]
                .into_iter()
                .flat_map(move |n| SEEDS.iter().map(move |s| format!("{arm}-n{n}-s{s}")))
        })
        .chain(["experiment.json".to_string(), "tracking".to_string()])
        .collect();
    expected_entries.sort();
    assert_eq!(entries, expected_entries);

    let universe = all_data_ids(runs.path(), "easy-first");
    for arm in ARMS {
        for seed in SEEDS {
            let key = format!("{arm}-n500-s{seed}");
            let dir = cell_dir(runs.path(), "easy-first", &key);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(
                files,
                ["config.json", "result.json", "stages.json", "train.jsonl"],
                "{key}"
            );
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&key) && l.contains("wrote 500 records")),
                "{}",
                show(&out)
            );

            let config = json(&dir.join("config.json"));
            assert_eq!(config["cell"]["key"], key.as_str());
            assert_eq!(config["cell"]["arm"], arm);
            assert_eq!(config["cell"]["size"], 500);
            assert_eq!(config["cell"]["seed"], seed);
            assert_eq!(config["data"]["records"], 3000);

            let train = ids(&dir.join("train.jsonl"));
            assert_eq!(train.len(), 500, "{key}");
            let unique: BTreeSet<_> = train.iter().cloned().collect();
            assert_eq!(unique.len(), 500, "{key}: repeated ids");
            assert!(unique.is_subset(&universe), "{key}: ids not in the data");

            let stages = json(&dir.join("stages.json"));
            assert_eq!(stages["records"], 500);
            let stage_ids: Vec<&str> = stages["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(stage_ids, train, "{key}: stages.json ids vs train.jsonl");
            let plugins: Vec<&str> = stages["stages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["plugin"].as_str().unwrap())
                .collect();
            assert_eq!(plugins, ["nested-size", arm], "{key}");
        }
    }

    // is the same. (The tracking logs under `tracking/` grow by design: one run per invocation.)
    // Four files per trained cell (config.json, result.json, stages.json, train.jsonl), two per
    // base cell (config.json, result.json), experiment.json.
    let first = outputs(runs.path());
    assert_eq!(first.len(), 9 * 4 + 9 * 2 + 1);
    let again = experiment("easy-first", runs.path(), &["--force"]);
    assert_code(&again, 0);
    // Cells run in parallel (one per core), so they end in any order: compare the lines.
    let sorted = |t: &str| {
        let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&stdout(&again)), sorted(&text));
    let second = outputs(runs.path());
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &first {
        assert!(second[path] == *bytes, "{} changed", path.display());
    }
    // And in a fresh place: the cells' files are the same too (experiment.json records the runs
    // directory, so it differs by design).
    let other = tempfile::tempdir().unwrap();
    let third_run = experiment("easy-first", other.path(), &[]);
    assert_code(&third_run, 0);
    let third = outputs(other.path());
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        third.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &first {
        if path.ends_with("experiment.json") {
            continue;
        }
        assert!(
            third[path] == *bytes,
            "{} differs in a fresh runs dir",
            path.display()
        );
    }
}

/// Every file under `dir` but the tracking logs.
fn outputs(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .filter(|(path, _)| !path.components().any(|c| c.as_os_str() == "tracking"))
        .collect()
}

/// A rerun skips the cells that finished with the same config, and redoes one whose config
/// changed (issue 6: cell keys make reruns idempotent).
#[test]
fn a_rerun_skips_finished_cells_and_redoes_changed_ones() {
    let runs = tempfile::tempdir().unwrap();
    let first = experiment("easy-first", runs.path(), &["--set", "sweep.seeds=[1]"]);
    assert_code(&first, 0);
    let again = experiment("easy-first", runs.path(), &["--set", "sweep.seeds=[1]"]);
    assert_code(&again, 0);
    let text = stdout(&again);
    for arm in ARMS {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{arm}-n500-s1 "))
                    && l.contains("skipped (finished; found in local run directory)")),
            "{}",
            show(&again)
        );
    }
    assert!(
        text.contains("0 cells written, 6 skipped"),
        "{}",
        show(&again)
    );
    // A changed sampler config is another cell: redone.
    let changed = experiment(
        "easy-first",
        runs.path(),
        &[
            "--set",
            "sweep.seeds=[1]",
            "--set",
            "arms.easy-first.order.config.mode=buckets",
        ],
    );
    assert_code(&changed, 0);
    assert!(
        // (the arm's base cell too: its config holds the arm's pipeline)
        stdout(&changed)
            .contains("1 cells written, 4 skipped (finished; --force redoes them), 1 base"),
        "{}",
        show(&changed)
    );
    // Each invocation is a parent run, each cell run a child run, all logged locally.
    let tracking = runs.path().join("easy-first").join("tracking");
    let dirs = std::fs::read_dir(&tracking).unwrap().count();
    assert_eq!(
        dirs,
        3 + 6 + 2,
        "3 parents, 6 first cells (3 trained, 3 base), 2 redone (the arm's trained and base cells)"
    );
}

#[test]
fn easy_first_orders_hold_and_arms_share_each_seeds_subset() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment("easy-first", runs.path(), &[]);
    assert_code(&out, 0);
    let rank = |r: &Value| r["difficulty_rank"].as_f64().expect("a numeric rank");
    let mut orders_by_arm: Vec<Vec<Vec<String>>> = vec![Vec::new(); ARMS.len()];
    for seed in SEEDS {
        let mut sets = Vec::new();
        for (a, arm) in ARMS.iter().enumerate() {
            let path = cell_dir(runs.path(), "easy-first", &format!("{arm}-n500-s{seed}"))
                .join("train.jsonl");
            let recs = records(&path);
            let ranks: Vec<f64> = recs.iter().map(rank).collect();
            match *arm {
                "easy-first" => assert!(
                    ranks.windows(2).all(|w| w[0] <= w[1]),
                    "{}: ranks not non-decreasing: {ranks:?}",
                    path.display()
                ),
                "hard-first" => assert!(
                    ranks.windows(2).all(|w| w[0] >= w[1]),
                    "{}: ranks not non-increasing: {ranks:?}",
                    path.display()
                ),
                _ => {
                    // Random order: not sorted either way (500 records over 5 levels).
                    assert!(ranks.windows(2).any(|w| w[0] < w[1]));
                    assert!(ranks.windows(2).any(|w| w[0] > w[1]));
                }
            }
            let order = ids(&path);
            sets.push(order.iter().cloned().collect::<BTreeSet<_>>());
            orders_by_arm[a].push(order);
        }
        // Same subset for every arm of a seed, in different orders.
        assert_eq!(sets[0], sets[1], "seed {seed}: random vs easy-first");
        assert_eq!(sets[0], sets[2], "seed {seed}: random vs hard-first");
        let orders: Vec<&Vec<String>> = orders_by_arm.iter().map(|o| o.last().unwrap()).collect();
        assert_ne!(orders[0], orders[1], "seed {seed}");
        assert_ne!(orders[1], orders[2], "seed {seed}");
        assert_ne!(orders[0], orders[2], "seed {seed}");
    }
    // Different seeds give different orders, for every arm.
    for (arm, orders) in ARMS.iter().zip(&orders_by_arm) {
        assert_ne!(orders[0], orders[1], "{arm}: seeds 1 and 2");
        assert_ne!(orders[1], orders[2], "{arm}: seeds 2 and 3");
        assert_ne!(orders[0], orders[2], "{arm}: seeds 1 and 3");
    }
}

#[test]
fn valley_subsets_are_nested_prefixes_and_size_zero_is_the_base_model() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment("valley", runs.path(), &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let sizes = [0u64, 30, 100, 300, 1000, 3000];
    assert!(
        text.contains("18 cells = 1 arms × 6 sizes × 3 seeds"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("15 cells written, 3 base, 0 failed"),
        "{}",
        show(&out)
    );
    let universe = all_data_ids(runs.path(), "valley");
    assert_eq!(universe.len(), 3000);
    let mut largest_by_seed = Vec::new();
    for seed in SEEDS {
        let base = cell_dir(runs.path(), "valley", &format!("random-n0-s{seed}"));
        assert!(base.join("config.json").is_file(), "{}", base.display());
        assert!(!base.join("train.jsonl").exists(), "{}", base.display());
        assert!(!base.join("stages.json").exists(), "{}", base.display());
        assert_eq!(json(&base.join("config.json"))["cell"]["size"], 0);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("random-n0-s{seed} "))
                    && l.contains("base model (size 0): nothing to sample")),
            "{}",
            show(&out)
        );

        let orders: Vec<Vec<String>> = sizes[1..]
            .iter()
            .map(|n| {
                ids(
                    &cell_dir(runs.path(), "valley", &format!("random-n{n}-s{seed}"))
                        .join("train.jsonl"),
                )
            })
            .collect();
        for (order, &n) in orders.iter().zip(&sizes[1..]) {
            assert_eq!(order.len() as u64, n, "seed {seed} size {n}");
        }
        for i in 0..orders.len() {
            for j in i + 1..orders.len() {
                let (small, large) = (&orders[i], &orders[j]);
                let large_set: BTreeSet<_> = large.iter().collect();
                assert!(
                    small.iter().all(|id| large_set.contains(id)),
                    "seed {seed}: size {} not inside size {}",
                    small.len(),
                    large.len()
                );
                assert_eq!(
                    small[..],
                    large[..small.len()],
                    "seed {seed}: size {} is not a prefix of size {}",
                    small.len(),
                    large.len()
                );
            }
        }
        // The largest size is the whole pool.
        let last: BTreeSet<String> = orders.last().unwrap().iter().cloned().collect();
        assert_eq!(last, universe, "seed {seed}");
        largest_by_seed.push(orders.last().unwrap().clone());
    }
    assert_ne!(largest_by_seed[0], largest_by_seed[1]);
    assert_ne!(largest_by_seed[1], largest_by_seed[2]);
}

#[test]
fn unknown_key_in_a_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "typo.toml",
        &format!(
            "[data]\ntrain = {}\n\n[arms.random]\nordr = {{ plugin = \"random\" }}\n\n[sweep]\nsizes = [10]\nseeds = [1]\n",
            toml_path(&tiny_train())
        ),
    );
    let runs = dir.path().join("runs");
    let out = experiment(file.to_str().unwrap(), &runs, &[]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{}", show(&out));
    assert!(err.contains(&file.display().to_string()), "{}", show(&out));
    assert!(err.contains("line 5"), "{}", show(&out));
    assert!(err.contains("ordr"), "{}", show(&out));
    assert!(stdout(&out).is_empty(), "{}", show(&out));
    assert!(!runs.exists());
}

#[test]
fn a_size_larger_than_the_pool_is_refused_before_writing() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment(
        "easy-first",
        runs.path(),
        &["--set", "sweep.sizes=[100000]"],
    );
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("exceeds its pool"), "{}", show(&out));
    assert!(err.contains("size 100000"), "{}", show(&out));
    assert!(err.contains("3000 records"), "{}", show(&out));
    assert_eq!(std::fs::read_dir(runs.path()).unwrap().count(), 0);
}

#[test]
fn a_misspelt_set_key_names_the_override() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment("easy-first", runs.path(), &["--set", "sweep.seedz=[1]"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("--set sweep.seedz"), "{}", show(&out));
    assert!(err.contains("unknown field"), "{}", show(&out));
    assert!(stdout(&out).is_empty(), "{}", show(&out));
    assert_eq!(std::fs::read_dir(runs.path()).unwrap().count(), 0);
}

#[test]
fn an_environment_override_changes_the_seeds() {
    let runs = tempfile::tempdir().unwrap();
    let out = valley(
        [
            "experiment",
            "easy-first",
            "--dry-run",
            "--set",
            &runs_dir_arg(runs.path()),
        ],
        &workspace_root(),
        &[("VALLEY__SWEEP__SEEDS", Some("[4,5]"))],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("12 cells = 3 arms × 2 sizes × 2 seeds"),
        "{}",
        show(&out)
    );
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| k.contains("-n500-s"))
        .collect();
    assert_eq!(
        keys,
        [
            "random-n500-s4",
            "random-n500-s5",
            "easy-first-n500-s4",
            "easy-first-n500-s5",
            "hard-first-n500-s4",
            "hard-first-n500-s5"
        ]
    );
}

/// A bad list element given by `--set` is blamed on that `--set`, not on the file.
#[test]
fn a_bad_list_element_from_set_is_blamed_on_the_override() {
    let runs = tempfile::tempdir().unwrap();
    let out = experiment(
        "easy-first",
        runs.path(),
        &["--dry-run", "--set", "sweep.sizes=[-1]"],
    );
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("sweep.sizes[0]"), "{}", show(&out));
    assert!(
        err.starts_with("error: --set sweep.sizes=[-1]: "),
        "the error should name the override that caused it\n{}",
        show(&out)
    );
}

/// Every experiment file the repository ships plans without error, offline, and says where its
/// cells would go.
#[test]
fn every_shipped_experiment_file_plans() {
    let hf = tempfile::tempdir().unwrap();
    let hf_home = hf.path().display().to_string();
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The seven files and `easy-first-3k`.
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        let out = valley(
            ["experiment", name.as_str(), "--dry-run"],
            &workspace_root(),
            &[("HF_HOME", Some(hf_home.as_str())), ("HF_HUB_CACHE", None)],
        );
        assert_code(&out, 0);
        assert!(
            stdout(&out).contains(&format!("cells would go under runs/{name}")),
            "{name}: {}",
            show(&out)
        );
    }
}

#[test]
fn the_paper_experiment_dry_runs_offline_and_says_what_it_would_download() {
    // An empty Hugging Face cache: the dry run must explain the download, not attempt it.
    let hf = tempfile::tempdir().unwrap();
    let hf_home = hf.path().display().to_string();
    for offline in [None, Some("1")] {
        let out = valley(
            ["experiment", "paper-qwen2.5-7b", "--dry-run"],
            &workspace_root(),
            &[
                ("HF_HOME", Some(hf_home.as_str())),
                ("HF_HUB_CACHE", None),
                ("HF_HUB_OFFLINE", offline),
            ],
        );
        assert_code(&out, 0);
        let text = stdout(&out);
        assert!(
            text.contains("is not in the Hugging Face cache"),
            "{}",
            show(&out)
        );
        assert!(
            text.contains("a run would download https://huggingface.co/datasets/collinear-ai/valley-of-reasoning-data/resolve/main/"),
            "{}",
            show(&out)
        );
        assert!(
            text.contains("4 cells = 1 arms × 4 sizes × 1 seeds"),
            "{}",
            show(&out)
        );
        for cell in [
            "random-n0-s1",
            "random-n1000-s1",
            "random-n10000-s1",
            "random-n30000-s1",
        ] {
            assert!(text.contains(cell), "{cell} missing\n{}", show(&out));
        }
        assert_eq!(
            offline.is_some(),
            text.contains("HF_HUB_OFFLINE is set"),
            "{}",
            show(&out)
        );
    }
    assert!(
        std::fs::read_dir(hf.path()).unwrap().next().is_none(),
        "a dry run wrote into the cache"
    );
}
