//! `valley report --from-json FILE --out DIR` through the built binary: the report and its plots
//! land in DIR, and a bad records file is an error (exit 2) naming the file, line and field.

use valley_e2e::{assert_code, show, stderr, stdout, valley, workspace_root};

#[test]
fn report_from_json_writes_markdown_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let records =
        workspace_root().join("crates/valley-reports/tests/fixtures/valley-mirrored.json");
    let out_dir = dir.path().join("out");
    let out = valley(
        ["report", "--from-json"]
            .map(Into::into)
            .into_iter()
            .chain([
                records.into_os_string(),
                "--out".into(),
                out_dir.clone().into_os_string(),
            ]),
        dir.path(),
        &[],
    );
    assert_code(&out, 0);
    let printed = stdout(&out);
    for file in ["valley.md", "valley-random.svg", "valley-easy-first.svg"] {
        let path = out_dir.join(file);
        assert!(path.is_file(), "{} missing\n{}", path.display(), show(&out));
        assert!(
            printed.contains(&format!("wrote {}", path.display())),
            "{printed}"
        );
    }
    let md = std::fs::read_to_string(out_dir.join("valley.md")).unwrap();
    // The same line the crate's snapshot holds (crates/valley-reports/tests/snapshots/).
    assert!(
        md.lines().any(|l| l
            == "| random | **present** | dips to 0.055 at size 1000 (base 0.127), climbs to 0.188 at size 10000 |"),
        "{md}"
    );
}

#[test]
fn a_bad_records_file_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("records.json");
    std::fs::write(
        &bad,
        "{\"experiment\": {\"name\": \"x\"},\n \"cells\": [{\"arm\": \"a\", \"size\": 1, \"seed\": 1, \"status\": \"done\"}]}",
    )
    .unwrap();
    let out = valley(
        ["report", "--from-json", "records.json", "--out", "out"],
        dir.path(),
        &[],
    );
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("records.json: line 2"), "{err}");
    assert!(err.contains("cells[0].status"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing written on error");
}
