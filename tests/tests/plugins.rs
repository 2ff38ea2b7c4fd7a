//! `valley plugins list` and `valley plugins check` against the real sampler libraries and the
//! failure fixtures.

use std::path::Path;

use valley_e2e::{
    assert_code, fixture_lib, plugin_lib, profile_dir, sampler_lib, show, stderr, stdout, valley,
    workspace_root, write_file, PLUGINS, SAMPLERS,
};

const NO_PLUGIN_PATH: &[(&str, Option<&str>)] = &[("VALLEY_PLUGIN_PATH", None)];

fn check(paths: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut args: Vec<std::ffi::OsString> = vec!["plugins".into(), "check".into()];
    args.extend(extra.iter().map(Into::into));
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    valley(args, &workspace_root(), NO_PLUGIN_PATH)
}

/// Asserts a one-library check failed with exit 1, one FAIL line containing every `wanted` text,
/// and the summary `1 checked, 1 failed`.
#[track_caller]
fn assert_single_failure(out: &std::process::Output, wanted: &[&str]) {
    assert_code(out, 1);
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(out));
    assert!(lines[0].starts_with("FAIL  "), "{}", show(out));
    for w in wanted {
        assert!(lines[0].contains(w), "missing {w:?}\n{}", show(out));
    }
    assert_eq!(lines[1], "1 checked, 1 failed", "{}", show(out));
}

#[test]
fn list_shows_exactly_the_workspace_plugins_and_no_fixture() {
    let out = valley(["plugins", "list"], &workspace_root(), NO_PLUGIN_PATH);
    assert_code(&out, 0);
    // Every library discovered loaded: no warnings.
    assert!(!stderr(&out).contains("warning"), "{}", show(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().expect("a header line");
    assert!(
        header.starts_with("NAME") && header.contains("KIND"),
        "{text}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    let expected: Vec<&str> = PLUGINS.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(names, expected, "{text}");
    for (row, (name, kind, _)) in rows.iter().zip(PLUGINS) {
        assert_eq!(row[1], kind, "{text}");
        let path = row.last().expect("a path column");
        assert_eq!(Path::new(path), plugin_lib(name), "{text}");
    }
    for hidden in ["fixture", "wrong-kind", "panicking-sampler", "shadowed"] {
        assert!(!text.contains(hidden), "{hidden:?} listed:\n{text}");
    }
}

#[test]
fn list_json_has_the_workspace_plugins() {
    let out = valley(
        ["plugins", "list", "--json"],
        &workspace_root(),
        NO_PLUGIN_PATH,
    );
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}", show(&out)));
    let plugins = json["plugins"].as_array().expect("a `plugins` array");
    assert_eq!(plugins.len(), PLUGINS.len(), "{json:#}");
    assert_eq!(json["failures"], serde_json::json!([]), "{json:#}");
    for (p, (name, kind, _)) in plugins.iter().zip(PLUGINS) {
        assert_eq!(p["name"], name, "{p:#}");
        assert_eq!(p["kind"], kind, "{p:#}");
        assert_eq!(p["shadowed"], false, "{p:#}");
        let path = p["path"].as_str().expect("a path string");
        assert_eq!(Path::new(path), plugin_lib(name), "{p:#}");
        assert!(p["version"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(p["example_config"].is_object(), "{p:#}");
    }
}

#[test]
fn check_without_paths_checks_every_workspace_plugin() {
    let out = check(&[], &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), PLUGINS.len() + 1, "{}", show(&out));
    assert!(
        lines[0].starts_with("ok    code-exec (evaluator "),
        "{}",
        show(&out)
    );
    let trainer = lines[SAMPLERS.len() + 1];
    assert!(
        trainer.starts_with("ok    candle-sft (trainer "),
        "{}",
        show(&out)
    );
    assert_eq!(
        lines[PLUGINS.len()],
        format!("{} checked, 0 failed", PLUGINS.len()),
        "{}",
        show(&out)
    );
    for (line, (name, _)) in lines[1..].iter().zip(SAMPLERS) {
        assert!(
            line.starts_with(&format!("ok    {name} (sampler ")),
            "{}",
            show(&out)
        );
        assert!(line.contains("in a smoke call"), "{}", show(&out));
    }
}

#[test]
fn check_changed_layout_is_a_layout_mismatch() {
    let lib = fixture_lib("changed_layout");
    let out = check(&[&lib], &[]);
    let path = lib.display().to_string();
    assert_single_failure(
        &out,
        &[&path, "interface layout mismatch", "rebuild the plugin"],
    );
}

#[test]
fn check_not_a_plugin_says_so() {
    let lib = fixture_lib("not_a_plugin");
    let out = check(&[&lib], &[]);
    let path = lib.display().to_string();
    assert_single_failure(&out, &[&path, "not a valley plugin"]);
}

#[test]
fn check_old_interface_names_the_version() {
    let lib = fixture_lib("old_interface");
    let out = check(&[&lib], &[]);
    let path = lib.display().to_string();
    assert_single_failure(
        &out,
        &[&path, "built against valley-plugin-api 0.0.1", "rebuild"],
    );
}

#[test]
fn check_catches_a_panic_in_select() {
    let lib = fixture_lib("panicking_sampler");
    let out = check(&[&lib], &[]);
    let path = lib.display().to_string();
    assert_single_failure(
        &out,
        &[
            "panicking-sampler",
            &path,
            "failed during select",
            "panicked: fixture panic",
        ],
    );
}

#[test]
fn check_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libnothing_here.so");
    let out = check(&[&lib], &[]);
    assert_single_failure(&out, &[&format!("{}: no such file", lib.display())]);
}

#[test]
fn check_text_file_named_like_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let lib = write_file(dir.path(), "libfake.so", "this is not an ELF file\n");
    let out = check(&[&lib], &[]);
    assert_single_failure(&out, &[&format!("{}: not a valley plugin", lib.display())]);
}

#[test]
fn check_wrong_kind_against_the_sampler_kind() {
    let lib = fixture_lib("wrong_kind");
    let out = check(&[&lib], &["--kind", "sampler"]);
    assert_single_failure(
        &out,
        &["wrong-kind", "is a trainer, but this slot needs a sampler"],
    );
}

#[test]
fn check_wrong_kind_alone_is_a_valid_trainer() {
    let lib = fixture_lib("wrong_kind");
    let out = check(&[&lib], &[]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&out));
    assert!(
        lines[0].starts_with("ok    wrong-kind (trainer "),
        "{}",
        show(&out)
    );
    assert_eq!(lines[1], "1 checked, 0 failed");
}

#[test]
fn check_goes_on_after_every_kind_of_failure() {
    let dir = tempfile::tempdir().unwrap();
    let fake = write_file(dir.path(), "libfake.so", "not a library\n");
    let missing = dir.path().join("libmissing.so");
    let fixtures = [
        ("changed_layout", "interface layout mismatch"),
        ("not_a_plugin", "not a valley plugin"),
        ("old_interface", "built against valley-plugin-api 0.0.1"),
        ("panicking_sampler", "panicked: fixture panic"),
        ("wrong_kind", "is a trainer, but this slot needs a sampler"),
    ];
    let libs: Vec<_> = fixtures.iter().map(|(stem, _)| fixture_lib(stem)).collect();
    let random = sampler_lib("random");
    // The good plugin comes after every failure (a caught panic included) and in the middle.
    let mut paths: Vec<&Path> = libs.iter().map(|p| p.as_path()).collect();
    paths.insert(2, &fake);
    paths.push(&random);
    paths.push(&missing);
    let out = check(&paths, &["--kind", "sampler"]);

    // The host did not crash: a clean exit with the failure code, no signal, no abort.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    for crash in ["SIGSEGV", "Aborted", "core dumped", "stack overflow"] {
        assert!(!err.contains(crash), "{crash}:\n{}", show(&out));
    }

    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), paths.len() + 1, "{}", show(&out));
    // One line per path, in the order given.
    for (line, path) in lines.iter().zip(&paths) {
        assert!(
            line.contains(&path.display().to_string()),
            "line {line:?} should be about {}\n{}",
            path.display(),
            show(&out)
        );
    }
    for ((_, message), lib) in fixtures.iter().zip(&libs) {
        let line = lines
            .iter()
            .find(|l| l.contains(&lib.display().to_string()))
            .unwrap();
        assert!(line.starts_with("FAIL  "), "{line}");
        assert!(line.contains(message), "{line} lacks {message:?}");
    }
    let random_line = lines
        .iter()
        .find(|l| l.contains(&random.display().to_string()))
        .unwrap();
    assert!(
        random_line.starts_with("ok    random (sampler "),
        "{random_line}"
    );
    assert!(lines[2].starts_with("FAIL  ") && lines[2].contains("not a valley plugin"));
    assert!(lines[7].starts_with("FAIL  ") && lines[7].contains("no such file"));
    assert_eq!(
        *lines.last().unwrap(),
        format!("{} checked, {} failed", paths.len(), paths.len() - 1)
    );
}

#[test]
fn discovery_comes_from_the_profile_dir_even_outside_the_workspace() {
    // From a directory outside any workspace, the binary still finds the plugins beside it.
    let dir = tempfile::tempdir().unwrap();
    let out = valley(["plugins", "list", "--json"], dir.path(), NO_PLUGIN_PATH);
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let paths: Vec<&str> = json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), PLUGINS.len(), "{json:#}");
    assert!(
        paths
            .iter()
            .all(|p| Path::new(p).starts_with(profile_dir())),
        "{json:#}"
    );
}
