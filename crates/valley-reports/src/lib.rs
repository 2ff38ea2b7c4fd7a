//! Reports from experiment runs: a pure function from run records (an [`ExperimentRecord`] and its
//! [`CellRecord`]s) to Markdown plus one SVG plot per arm.
//!
//! A report holds: the valley verdict per arm (the rule in [`verdict`]), the primary metric
//! (default `pass@1`) by size per arm with n, mean, min–max and a 95 % t-interval over seeds
//! ([`stats`]), the paper's numbers beside ours when the experiment mirrors one of its tables
//! ([`paper`]), pass@1 overall and by difficulty, completion and `<think>` rates, training tokens
//! and steps, paired comparisons between arms over shared seeds, the failed cells, and every
//! problem found in the records. Numbers are rounded to 3 decimals and nothing time- or
//! machine-dependent is printed, so the same records give the same bytes.
//!
//! ```
//! use valley_reports::{render, CellRecord, Direction, ExperimentRecord, Metric};
//!
//! let exp = ExperimentRecord::new("valley", "Is there a valley?");
//! let cell = |size, seed, v| {
//!     CellRecord::finished("random", size, seed)
//!         .with_metric("pass@1", Metric::new(v, "fraction", Direction::HigherIsBetter))
//! };
//! let mut cells = Vec::new();
//! for seed in 1..=3 {
//!     let noise = seed as f64 * 0.005;
//!     cells.extend([cell(0, seed, 0.12 + noise), cell(100, seed, 0.05 + noise),
//!                   cell(1000, seed, 0.30 + noise)]);
//! }
//! let report = render(&exp, &cells);
//! assert!(report.markdown.contains("| random | **present** |"));
//! assert_eq!(report.plots[0].0, "valley-random.svg");
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod error;
pub mod format;
pub mod markdown;
pub mod paper;
pub mod plot;
pub mod record;
pub mod stats;
pub mod verdict;
pub mod write;

pub use error::{Error, Result};
pub use paper::PaperTable;
pub use record::{
    CellRecord, CellStatus, DifficultyScore, Direction, ExperimentRecord, Metric, PaperMirror,
    RunRecords, DEFAULT_PRIMARY_METRIC,
};
pub use verdict::Verdict;
pub use write::{read_records, render_json_file, write_report};

/// A rendered report: the Markdown and its plots as (file name, SVG text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The report; plots are linked by file name, relative to the Markdown file.
    pub markdown: String,
    /// One plot per arm with values: (`<experiment>-<arm>.svg`, SVG).
    pub plots: Vec<(String, String)>,
}

/// Renders the report of an experiment from its cells. Pure: no files, no clock, no network.
/// Never fails: problems in the records (duplicates, non-finite values, unknown paper series)
/// are listed in the report's last section.
pub fn render(experiment: &ExperimentRecord, cells: &[CellRecord]) -> Report {
    let analysis = analysis::Analysis::new(experiment, cells);
    let mut plots = Vec::new();
    let mut links = Vec::new();
    let mut extra_problems = Vec::new();
    for arm in &analysis.arms {
        match plot::plot_arm(&analysis, arm) {
            Ok(Some(svg)) => {
                let name = format!(
                    "{}-{}.svg",
                    file_stem(&experiment.name),
                    file_stem(&arm.name)
                );
                links.push((arm.name.clone(), name.clone()));
                plots.push((name, svg));
            }
            Ok(None) => {}
            Err(e) => extra_problems.push(format!("plot of arm `{}`: {e}", arm.name)),
        }
    }
    let mut analysis = analysis;
    analysis.problems.extend(extra_problems);
    Report {
        markdown: markdown::markdown(&analysis, &links),
        plots,
    }
}

/// A name made safe as a file name stem: ASCII letters, digits, `.`, `_` and `-` kept, anything
/// else becomes `_`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cells_is_a_report_that_says_so() {
        let report = render(&ExperimentRecord::new("empty", ""), &[]);
        assert!(report.plots.is_empty());
        assert!(report.markdown.contains("Cells: 0 finished, 0 failed."));
        assert!(report.markdown.contains("## Failed cells\n\nNone."));
    }

    /// Cells judged under both rule sets get a section with pass@1 under each and the samples
    /// they disagree on, summed over the seeds.
    #[test]
    fn pass_at_1_under_both_rule_sets_is_reported_with_the_samples_that_differ() {
        let frac = |v| Metric::new(v, "fraction", Direction::HigherIsBetter);
        let cell = |seed, lcb, strict, differ| {
            CellRecord::finished("random", 10, seed)
                .with_metric("pass@1", frac(lcb))
                .with_metric("rules/livecodebench@28fef95/pass@1", frac(lcb))
                .with_metric("rules/strict/pass@1", frac(strict))
                .with_metric(
                    "rules/samples_differ",
                    Metric::new(differ, "count", Direction::Neutral),
                )
        };
        let md = render(
            &ExperimentRecord::new("x", ""),
            &[cell(1, 0.25, 0.5, 3.0), cell(2, 0.75, 0.5, 1.0)],
        )
        .markdown;
        assert!(
            md.contains(
                "| arm | size | n | pass@1 `livecodebench@28fef95` | pass@1 `strict` | samples that differ |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| random | 10 | 2 | 0.500 | 0.500 | 4 |"),
            "{md}"
        );
        let one = render(
            &ExperimentRecord::new("x", ""),
            &[CellRecord::finished("random", 10, 1).with_metric("pass@1", frac(0.5))],
        )
        .markdown;
        assert!(!one.contains("## Judge rules"), "{one}");
    }

    /// Non-finite values outside the primary metric are listed too, never dropped silently.
    #[test]
    fn non_finite_rates_are_problems() {
        let mut cell = CellRecord::finished("random", 10, 1).with_metric(
            "pass@1",
            Metric::new(0.2, "fraction", Direction::HigherIsBetter),
        );
        cell.completion_rate = Some(f64::NAN);
        cell.pass_at_1_by_difficulty = vec![DifficultyScore {
            difficulty: "hard".into(),
            pass_at_1: f64::INFINITY,
        }];
        let md = render(&ExperimentRecord::new("x", ""), &[cell]).markdown;
        assert!(
            md.contains("- `random-n10-s1`: pass@1 on hard is inf, left out of its mean"),
            "{md}"
        );
        assert!(
            md.contains("- `random-n10-s1`: completion rate is NaN, left out of its mean"),
            "{md}"
        );
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("easy-first"), "easy-first");
        assert_eq!(file_stem("a/b c"), "a_b_c");
    }
}
