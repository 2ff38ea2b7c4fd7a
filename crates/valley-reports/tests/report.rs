//! Report snapshots on fixed run records (`tests/fixtures/*.json`): the Markdown as rendered and a
//! normalized form of each SVG. Review a change with `cargo insta review`; CI sets
//! `INSTA_UPDATE=no` so a changed or missing snapshot fails.
//!
//! Nothing needs redacting: a report prints no timestamps, run ids or durations (the records do not
//! carry them), and metrics are rounded to 3 decimals by the renderer.

use std::path::{Path, PathBuf};

use valley_reports::{
    read_records, render, write_report, CellRecord, Direction, ExperimentRecord, Metric, RunRecords,
};

fn fixture(name: &str) -> RunRecords {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    read_records(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// An SVG reduced to what a reader sees, robust to sub-pixel layout noise: one element per line,
/// every number inside an attribute value rounded to an integer, text content kept verbatim.
fn normalize_svg(svg: &str) -> String {
    let mut out = String::new();
    for piece in svg.split('<').filter(|p| !p.trim().is_empty()) {
        let (tag, text) = piece.split_once('>').unwrap_or((piece, ""));
        out.push('<');
        out.push_str(&round_attribute_numbers(tag));
        out.push('>');
        out.push_str(text.trim());
        out.push('\n');
    }
    out
}

/// Attributes that hold coordinates or lengths (plotters' SVG uses no others for geometry).
#[rustfmt::skip]
const GEOMETRY: &[&str] = &[
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "width", "height", "points",
    "d", "transform", "dx", "dy", "font-size", "stroke-width",
];

/// Rounds every number inside the values of [`GEOMETRY`] attributes; other attributes (colours,
/// the namespace URL) are kept verbatim.
fn round_attribute_numbers(tag: &str) -> String {
    let mut out = String::new();
    let mut name = "";
    for (i, part) in tag.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        if i % 2 == 0 {
            // Outside quotes: `... name=`; remember the name for the value that follows.
            name = part
                .trim_end()
                .trim_end_matches('=')
                .rsplit(char::is_whitespace)
                .next()
                .unwrap_or("");
            out.push_str(part);
        } else if GEOMETRY.contains(&name) {
            out.push_str(&round_numbers(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Rounds each number in a coordinate list (`1.4,2.6 3,4`, `rotate(270, 12.5, 210)`).
fn round_numbers(value: &str) -> String {
    let mut out = String::new();
    let mut num = String::new();
    let flush = |num: &mut String, out: &mut String| {
        if !num.is_empty() {
            match num.parse::<f64>() {
                Ok(v) => out.push_str(&format!("{}", v.round() as i64)),
                Err(_) => out.push_str(num),
            }
            num.clear();
        }
    };
    for c in value.chars() {
        if c.is_ascii_digit() || c == '.' || (c == '-' && num.is_empty()) {
            num.push(c);
        } else {
            flush(&mut num, &mut out);
            out.push(c);
        }
    }
    flush(&mut num, &mut out);
    out
}

#[test]
fn normalizing_rounds_coordinates_and_keeps_text() {
    assert_eq!(
        normalize_svg(r#"<svg width="10"><text x="3.6" y="-1.2">0.125</text></svg>"#),
        "<svg width=\"10\">\n<text x=\"4\" y=\"-1\">0.125\n</text>\n</svg>\n"
    );
    assert_eq!(
        round_attribute_numbers(r##"polyline points="1.4,2.6 3,4" fill="#005AB5" dy="1em""##),
        r##"polyline points="1,3 3,4" fill="#005AB5" dy="1em""##
    );
    assert_eq!(
        round_attribute_numbers(
            r#"svg xmlns="http://www.w3.org/2000/svg" transform="rotate(270, 12.5, 209.6)""#
        ),
        r#"svg xmlns="http://www.w3.org/2000/svg" transform="rotate(270, 13, 210)""#
    );
}

fn snapshot_report(fixture_name: &str) {
    let records = fixture(fixture_name);
    let report = render(&records.experiment, &records.cells);
    let stem = fixture_name.trim_end_matches(".json");
    insta::assert_snapshot!(format!("{stem}.md"), report.markdown);
    assert!(!report.plots.is_empty());
    for (name, svg) in &report.plots {
        insta::assert_snapshot!(format!("{stem}__{name}"), normalize_svg(svg));
    }
}

#[test]
fn valley_mirrored_report() {
    snapshot_report("valley-mirrored.json");
}

#[test]
fn order_without_base_report() {
    snapshot_report("order-no-base.json");
}

/// Specific lines of the mirrored report, exactly: the verdicts, a per-size row with its hand-
/// checked interval, the paper beside ours, the failed cell. Numbers: random at 1K has seeds
/// 0.049, 0.056, 0.060 (fixture noise −0.006, +0.001, +0.005 on 0.055): mean 0.055, s = 0.005568,
/// half-width 4.3027 × 0.005568/√3 = 0.013832 → [0.041, 0.069].
#[test]
fn mirrored_report_has_these_lines() {
    let records = fixture("valley-mirrored.json");
    let md = render(&records.experiment, &records.cells).markdown;
    let lines: Vec<&str> = md.lines().collect();
    for expected in [
        "| random | **present** | dips to 0.055 at size 1000 (base 0.127), climbs to 0.188 at size 10000 |",
        "| 1000 | 3 | 0.055 | 0.049–0.060 | [0.041, 0.069] |",
        "| 0 (base) | 3 | 0.127 | 0.127–0.127 | [0.127, 0.127] |",
        "| 1000 | 0.055 | 0.055 | [0.041, 0.069] | 3 |",
        "| 30000 | 0.264 | 0.264 | [0.250, 0.278] | 3 |",
        "| `easy-first-n10000-s3` | easy-first | 10000 | 3 | trainer `candle-sft` failed: out of memory \\| step 412 ⏎ retry with a smaller batch |",
        // tokens 10000 × 4100 + 37 × seed for seeds 1, 2; steps ⌈(10000 × 5) / 128⌉ = 391.
        "| easy-first | 10000 | 2 | 41000056 (41000037–41000074) | 391 (391–391) |",
    ] {
        assert!(
            lines.contains(&expected),
            "missing line {expected:?} in\n{md}"
        );
    }
}

/// A changed metric value changes exactly the rows that depend on it, and the change shows.
#[test]
fn a_changed_metric_value_changes_its_rows() {
    let records = fixture("valley-mirrored.json");
    let before = render(&records.experiment, &records.cells).markdown;
    let mut cells = records.cells.clone();
    let cell = cells
        .iter_mut()
        .find(|c| c.arm == "random" && c.size == 1000 && c.seed == 1)
        .unwrap();
    cell.metrics.get_mut("pass@1").unwrap().value = 0.079; // was 0.049
    let after = render(&records.experiment, &cells).markdown;
    assert_ne!(before, after);
    // mean (0.079 + 0.056 + 0.060)/3 = 0.065; s = 0.012288, half-width 4.3027 × 0.012288/√3
    // = 0.030526 → [0.034, 0.096].
    let row = "| 1000 | 3 | 0.065 | 0.056–0.079 | [0.034, 0.096] |";
    assert!(after.lines().any(|l| l == row), "{after}");
    assert!(!before.lines().any(|l| l == row));
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(b, a)| b != a)
        .collect();
    // The per-size row, the paper-beside-ours row, the verdict's dip, the pass@1 table row
    // (overall only: by-difficulty values did not change), and the paired row at 1000.
    assert_eq!(changed.len(), 5, "{changed:#?}");
}

/// A changed table row (a cell turned failed) moves it from the tables to the failed list.
#[test]
fn a_failed_cell_is_listed_not_dropped() {
    let records = fixture("valley-mirrored.json");
    let mut cells = records.cells.clone();
    let idx = cells
        .iter()
        .position(|c| c.arm == "random" && c.size == 30000 && c.seed == 2)
        .unwrap();
    cells[idx] = CellRecord::failed("random", 30000, 2, "evaluator timed out");
    let md = render(&records.experiment, &cells).markdown;
    assert!(md.contains("| `random-n30000-s2` | random | 30000 | 2 | evaluator timed out |"));
    assert!(md.contains("Cells: 22 finished, 2 failed."), "{md}");
    // 30000 now has seeds 1 and 3 only: 0.258 and 0.269.
    assert!(
        md.lines()
            .any(|l| l.starts_with("| 30000 | 2 | 0.264 | 0.258–0.269 |")),
        "{md}"
    );
}

/// The direction comes from the metric record, never the name: the same report with pass@1
/// marked lower-is-better reads the 1K dip as an improvement, so the valley is not present.
#[test]
fn the_verdict_reads_the_direction_from_the_records() {
    let records = fixture("valley-mirrored.json");
    let mut cells = records.cells.clone();
    for c in &mut cells {
        if let Some(m) = c.metrics.get_mut("pass@1") {
            m.direction = Direction::LowerIsBetter;
        }
    }
    let md = render(&records.experiment, &cells).markdown;
    assert!(!md.contains("| random | **present** |"), "{md}");
    assert!(md.contains("Primary metric: **pass@1** (lower is better"));

    // And a loss as the primary metric: eval/loss = 1.5 − pass@1 mirrors the valley upside down.
    let mut exp = records.experiment.clone();
    exp.primary_metric = "eval/loss".into();
    exp.mirrors = None;
    let md = render(&exp, &records.cells).markdown;
    assert!(
        md.contains("| random | **present** | dips to 1.445 at size 1000 (base 1.373)"),
        "{md}"
    );
}

#[test]
fn records_json_errors_name_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        "{\"experiment\": {\"name\": \"x\"},\n \"cells\": [{\"arm\": \"a\", \"size\": \"ten\", \"seed\": 1, \"status\": \"finished\"}]}",
    )
    .unwrap();
    let err = read_records(&path).unwrap_err().to_string();
    assert!(err.contains("bad.json: line 2"), "{err}");
    assert!(err.contains("cells[0].size"), "{err}");
}

#[test]
fn writer_saves_markdown_and_plots_beside_it() {
    let exp = ExperimentRecord::new("tiny", "");
    let cells: Vec<CellRecord> = [(0, 1, 0.1), (0, 2, 0.1), (10, 1, 0.2), (10, 2, 0.25)]
        .into_iter()
        .map(|(size, seed, v)| {
            CellRecord::finished("random", size, seed).with_metric(
                "pass@1",
                Metric::new(v, "fraction", Direction::HigherIsBetter),
            )
        })
        .collect();
    let report = render(&exp, &cells);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let written = write_report(&report, "tiny", &out).unwrap();
    let names: Vec<PathBuf> = written
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [PathBuf::from("tiny.md"), PathBuf::from("tiny-random.svg")]
    );
    let md = std::fs::read_to_string(out.join("tiny.md")).unwrap();
    assert_eq!(md, report.markdown);
    assert!(md.contains("![random](tiny-random.svg)"));
    assert!(std::fs::read_to_string(out.join("tiny-random.svg"))
        .unwrap()
        .starts_with("<svg"));
}

/// A changed metric value moves its point in the plot, and the normalized SVG shows it.
#[test]
fn a_changed_metric_value_changes_the_plot() {
    let records = fixture("valley-mirrored.json");
    let plot = |cells: &[CellRecord]| {
        let report = render(&records.experiment, cells);
        let (_, svg) = report
            .plots
            .iter()
            .find(|(name, _)| name == "valley-random.svg")
            .cloned()
            .unwrap();
        normalize_svg(&svg)
    };
    let before = plot(&records.cells);
    let mut cells = records.cells.clone();
    for c in cells
        .iter_mut()
        .filter(|c| c.arm == "random" && c.size == 30000)
    {
        c.metrics.get_mut("pass@1").unwrap().value -= 0.05;
    }
    let after = plot(&cells);
    assert_ne!(before, after);
    // The mirrored arm's plot carries the paper's series and both base lines in its legend.
    for label in [
        ">paper: Qwen2.5-7B-Instruct",
        ">paper: starting model 0.127",
        ">base model (size 0): 0.127",
        ">ours: seed mean, 95 % t-interval",
    ] {
        assert!(before.contains(label), "{label} missing");
    }
    // Three paper points (1K, 10K, 30K) as triangles; size 0 is a line, not a point.
    assert_eq!(before.matches("<polygon").count(), 3);
}

/// An arm with only base-model cells still gets a plot: the base line over a 1–10 axis.
#[test]
fn a_base_only_arm_is_a_line_on_a_default_axis() {
    let exp = ExperimentRecord::new("base-only", "");
    let cells: Vec<CellRecord> = (1..=2)
        .map(|seed| {
            CellRecord::finished("random", 0, seed).with_metric(
                "pass@1",
                Metric::new(0.1, "fraction", Direction::HigherIsBetter),
            )
        })
        .collect();
    let report = render(&exp, &cells);
    let svg = normalize_svg(&report.plots[0].1);
    assert!(svg.contains(">base model (size 0): 0.100"), "{svg}");
    assert!(!svg.contains("<circle"), "no trained point to draw: {svg}");
    assert!(report
        .markdown
        .contains("| random | **inconclusive** | no trained size finished |"));
}
