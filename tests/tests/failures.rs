//! Experiments that go wrong: a sampler that panics in one cell, a plugin of the wrong kind in a
//! slot, and a bad row in the data.

use std::path::Path;

use valley_e2e::{
    assert_code, fixture_lib, read_lines, show, stderr, stdout, tiny_train, toml_path, valley,
    write_file,
};

/// Runs `valley experiment <file> --set output.runs_dir=<runs> [extra…]` from `cwd`.
fn run(file: &Path, runs: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "experiment".into(),
        file.display().to_string(),
        "--set".into(),
        format!("output.runs_dir={}", runs.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    valley(args, file.parent().unwrap(), &[])
}

#[test]
fn a_panicking_sampler_fails_its_cell_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "panics.toml",
        &format!(
            r#"[data]
train = {train}

[arms.good]
order = {{ plugin = "random" }}

[arms.bad]
order = {{ plugin = "panicking-sampler", path = {lib} }}

[sweep]
sizes = [10]
seeds = [1]
"#,
            train = toml_path(&tiny_train()),
            lib = toml_path(&fixture_lib("panicking_sampler")),
        ),
    );
    let runs = dir.path().join("runs");
    let out = run(&file, &runs, &[]);
    assert_code(&out, 1);
    let text = stdout(&out);
    let failed = text
        .lines()
        .find(|l| l.starts_with("bad-n10-s1 "))
        .unwrap_or_else(|| panic!("no line for the bad cell\n{}", show(&out)));
    assert!(failed.contains("FAILED"), "{}", show(&out));
    assert!(failed.contains("panicked"), "{}", show(&out));
    assert!(failed.contains("panicking-sampler"), "{}", show(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with("good-n10-s1 ") && l.contains("wrote 10 records")),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("1 cells written, 0 base, 1 failed"),
        "{}",
        show(&out)
    );
    let err = stderr(&out);
    assert!(
        !err.contains("SIGSEGV") && !err.contains("Aborted"),
        "{err}"
    );

    let good = runs.join("panics/good-n10-s1");
    assert_eq!(read_lines(&good.join("train.jsonl")).len(), 10);
    assert!(!good.join("error.txt").exists());
    let bad = runs.join("panics/bad-n10-s1");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bad.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["cell"]["key"], "bad-n10-s1");
    let error = std::fs::read_to_string(bad.join("error.txt")).unwrap();
    assert!(error.contains("panicked"), "{error}");
    assert!(error.contains("fixture panic"), "{error}");
    assert!(!bad.join("train.jsonl").exists());
    assert!(!bad.join("stages.json").exists());
}

#[test]
fn a_trainer_in_an_order_slot_is_refused_naming_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "wrong.toml",
        &format!(
            r#"[data]
train = {train}

[arms.mixed-up]
order = {{ plugin = "wrong-kind", path = {lib} }}

[sweep]
sizes = [10]
seeds = [1]
"#,
            train = toml_path(&tiny_train()),
            lib = toml_path(&fixture_lib("wrong_kind")),
        ),
    );
    let runs = dir.path().join("runs");
    let out = run(&file, &runs, &[]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("arms.mixed-up.order"), "{}", show(&out));
    assert!(
        err.contains("is a trainer, but this slot needs a sampler"),
        "{}",
        show(&out)
    );
    assert!(
        err.contains(&fixture_lib("wrong_kind").display().to_string()),
        "{}",
        show(&out)
    );
    assert!(!runs.exists(), "nothing may be written");
}

const ROW: &str = r#""response": "r", "difficulty": "EASY", "difficulty_rank": 0, "correct": true, "source": "e2e""#;

fn bad_data_experiment(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let rows = [
        format!(r#"{{"id": "a", "problem": "p1", {ROW}}}"#),
        format!(r#"{{"id": "b", "problem": "p2", {ROW}}}"#),
        format!(r#"{{"id": "c", {ROW}}}"#),
        format!(r#"{{"id": "d", "problem": "p4", {ROW}}}"#),
    ];
    let data = write_file(dir, "data.jsonl", &(rows.join("\n") + "\n"));
    let file = write_file(
        dir,
        "bad-row.toml",
        "[data]\ntrain = \"data.jsonl\"\n\n[arms.random]\norder = { plugin = \"random\" }\n\n[sweep]\nsizes = [2]\nseeds = [1]\n",
    );
    (file, data)
}

#[test]
fn a_bad_row_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = bad_data_experiment(dir.path());
    let runs = dir.path().join("runs");
    let out = run(&file, &runs, &[]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3: field `problem`: missing", data.display())),
        "{}",
        show(&out)
    );
    assert!(!runs.exists(), "nothing may be written");
}

#[test]
fn a_bad_row_can_be_skipped_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = bad_data_experiment(dir.path());
    let runs = dir.path().join("runs");
    let out = run(&file, &runs, &["--set", "data.on_bad_row=skip"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("3 records, 1 bad rows skipped"),
        "{}",
        show(&out)
    );
    let train = read_lines(&runs.join("bad-row/random-n2-s1/train.jsonl"));
    assert_eq!(train.len(), 2);
    assert!(
        train.iter().all(|l| !l.contains("\"id\":\"c\"")),
        "{train:?}"
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.join("bad-row/random-n2-s1/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["data"]["skipped_rows"], 1);
    assert_eq!(config["data"]["records"], 3);
}

/// A cell that wrote its training file once and fails on a rerun must not keep the old
/// `train.jsonl` and `stages.json` beside its new `config.json` and `error.txt`: a later stage
/// would train on a file that the cell's config no longer describes.
#[test]
fn a_cell_that_fails_on_a_rerun_keeps_no_stale_training_file() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = |order: &str| {
        format!(
            "[data]\ntrain = {}\n\n[arms.x]\norder = {order}\n\n[sweep]\nsizes = [10]\nseeds = [1]\n",
            toml_path(&tiny_train())
        )
    };
    let file = write_file(
        dir.path(),
        "rerun.toml",
        &experiment("{ plugin = \"random\" }"),
    );
    let runs = dir.path().join("runs");
    let cell = runs.join("rerun/x-n10-s1");
    let out = run(&file, &runs, &[]);
    assert_code(&out, 0);
    assert_eq!(read_lines(&cell.join("train.jsonl")).len(), 10);

    // The same cell, now with a sampler that panics.
    write_file(
        dir.path(),
        "rerun.toml",
        &experiment(&format!(
            "{{ plugin = \"panicking-sampler\", path = {} }}",
            toml_path(&fixture_lib("panicking_sampler"))
        )),
    );
    let out = run(&file, &runs, &[]);
    assert_code(&out, 1);
    assert!(cell.join("error.txt").is_file(), "{}", show(&out));
    let config = std::fs::read_to_string(cell.join("config.json")).unwrap();
    assert!(config.contains("panicking-sampler"), "{config}");
    assert!(
        !cell.join("train.jsonl").exists(),
        "stale train.jsonl of the earlier run is left beside error.txt"
    );
    assert!(
        !cell.join("stages.json").exists(),
        "stale stages.json of the earlier run is left beside error.txt"
    );
}

/// A library path in a slot that does not exist: the error names the slot, as every other
/// plugin error in an experiment does.
#[test]
fn a_missing_library_path_names_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "missing.toml",
        &format!(
            "[data]\ntrain = {}\n\n[arms.x]\norder = {{ plugin = \"random\", path = \"nope/librandom.so\" }}\n\n[sweep]\nsizes = [10]\nseeds = [1]\n",
            toml_path(&tiny_train())
        ),
    );
    let runs = dir.path().join("runs");
    let out = run(&file, &runs, &[]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: no such file",
            dir.path().join("nope/librandom.so").display()
        )),
        "{}",
        show(&out)
    );
    assert!(err.contains("arms.x.order"), "{}", show(&out));
    assert!(!runs.exists());
}
