//! The plugin author's path, outside the workspace: `valley plugins new`, then the build, check and
//! experiment steps exactly as the command prints them.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use valley_e2e::{
    assert_code, read_lines, show, stdout, tiny_train, toml_path, valley, workspace_root,
    write_file,
};

/// The text after `prefix` on the first line of `text` that starts with it (after indentation).
fn line_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

/// The experiment-file lines printed after `… in an experiment file:`, de-indented.
fn experiment_snippet(text: &str) -> String {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim_end().ends_with("experiment file:"))
        .unwrap_or_else(|| panic!("no experiment-file snippet in:\n{text}"));
    lines.map(str::trim).collect::<Vec<_>>().join("\n")
}

/// Runs the printed `cargo build …` command, offline first (everything it needs is normally in
/// the local registry already), online when the registry lacks a crate.
fn cargo_build(printed: &str, cwd: &Path) {
    let args: Vec<&str> = printed
        .strip_prefix("cargo ")
        .unwrap_or_else(|| panic!("not a cargo command: {printed}"))
        .split_whitespace()
        .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(&args).current_dir(cwd);
        if offline {
            cmd.arg("--offline");
        }
        // The crate's own target/ directory, as the printed library path expects.
        cmd.env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        cmd.output().expect("cargo runs")
    };
    let mut out = build(true);
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("offline") {
        out = build(false);
    }
    assert!(
        out.status.success(),
        "building the generated plugin failed\n{}",
        show(&out)
    );
}

#[test]
fn a_new_plugin_outside_the_workspace_builds_checks_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let root_manifest_before =
        std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("workspace Cargo.toml");
    assert!(!root_manifest_before.contains("my-curriculum"));

    // 1. Scaffold, from a directory outside the workspace.
    let out = valley(
        [
            "plugins".into(),
            "new".into(),
            "my-curriculum".into(),
            "--kind".into(),
            "sampler".into(),
            "--dir".into(),
            tmp.as_os_str().to_owned(),
        ] as [std::ffi::OsString; 7],
        tmp,
        &[],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    let crate_dir = tmp.join("my-curriculum");
    assert_eq!(
        text.lines().next(),
        Some(format!("created {}", crate_dir.display()).as_str()),
        "{}",
        show(&out)
    );
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    let api = workspace_root().join("crates").join("valley-plugin-api");
    assert!(
        manifest.contains(&format!("path = \"{}\"", api.display())),
        "{manifest}"
    );
    assert!(crate_dir.join("src/lib.rs").is_file());
    assert!(crate_dir.join(".gitignore").is_file());
    // A standalone crate: the valley workspace is left alone.
    let root_manifest_after = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    assert!(!root_manifest_after.contains("my-curriculum"));

    // 2. Build as printed. The workspace's lock file pins the same versions (and keeps the build
    // offline-capable).
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();
    let build = line_after(&text, "cargo build");
    cargo_build(&format!("cargo build{build}"), tmp);
    // The library is the one the printed check line names.
    let lib = PathBuf::from(line_after(&text, "valley plugins check "));
    assert!(
        lib.is_file(),
        "the printed library {} is missing",
        lib.display()
    );
    assert!(lib.starts_with(&crate_dir), "{}", lib.display());

    // 3. Check as printed.
    let out = valley(
        ["plugins".as_ref(), "check".as_ref(), lib.as_os_str()],
        tmp,
        &[],
    );
    assert_code(&out, 0);
    let checked = stdout(&out);
    assert!(
        checked.starts_with("ok    my-curriculum (sampler "),
        "{}",
        show(&out)
    );
    assert!(checked.contains("1 checked, 0 failed"), "{}", show(&out));

    // 4. Use it in an experiment through the printed snippet (an arm table with the order line).
    let snippet = experiment_snippet(&text);
    assert!(
        snippet.contains("order = { plugin = \"my-curriculum\""),
        "{snippet}"
    );
    let file = write_file(
        tmp,
        "mine.toml",
        &format!(
            "[data]\ntrain = {}\n\n{snippet}\n\n[sweep]\nsizes = [20]\nseeds = [1]\n",
            toml_path(&tiny_train())
        ),
    );
    let runs = tmp.join("runs");
    let out = valley(
        [
            "experiment".to_string(),
            file.display().to_string(),
            "--set".into(),
            format!("output.runs_dir={}", runs.display()),
        ],
        tmp,
        &[],
    );
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("subset nested-size {} -> order my-curriculum {}"),
        "{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains("1 cells written, 0 base, 0 failed"),
        "{}",
        show(&out)
    );
    let cells: Vec<PathBuf> = std::fs::read_dir(runs.join("mine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        // `tracking/` holds the local MLflow event log beside the cells.
        .filter(|p| p.is_dir() && !p.ends_with("tracking"))
        .collect();
    assert_eq!(cells.len(), 1, "{cells:?}");
    assert!(cells[0].to_string_lossy().ends_with("-n20-s1"), "{cells:?}");
    let train = read_lines(&cells[0].join("train.jsonl"));
    assert_eq!(train.len(), 20);
    // The template orders by token count, which is bytes of problem + response for now.
    let lengths: Vec<usize> = train
        .iter()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            r["problem"].as_str().unwrap().len() + r["response"].as_str().unwrap().len()
        })
        .collect();
    assert!(
        lengths.windows(2).all(|w| w[0] <= w[1]),
        "not shortest first: {lengths:?}"
    );
    assert!(lengths.first() < lengths.last(), "{lengths:?}");
}
