//! The Markdown text of a report, section by section, from an [`Analysis`]. Every number is
//! rounded by [`crate::format`]; nothing time- or machine-dependent is printed, so the same
//! records always give the same bytes.

use std::fmt::Write as _;

use crate::{
    analysis::{finite, Analysis, ArmAnalysis},
    format::{cell_text, integer, round3, signed3, size_label},
    paper::{self, PaperTable},
    record::{CellRecord, Direction},
    stats::Summary,
    verdict::RULE,
};

/// How the interval columns are described, once per report.
const INTERVAL_NOTE: &str = "Intervals are two-sided 95 % Student t-intervals of the mean over \
seeds, mean ± t₀.₉₇₅,ₙ₋₁ · s/√n (s the sample standard deviation, n the finished seeds); none \
when n < 2.";

/// Renders the whole report. `plots` are (arm, file name) of the plots drawn.
pub fn markdown(a: &Analysis<'_>, plots: &[(String, String)]) -> String {
    let mut out = String::new();
    let exp = a.experiment;
    let metric = &exp.primary_metric;
    let _ = writeln!(out, "# Report: {}\n", exp.name);
    if !exp.description.trim().is_empty() {
        let _ = writeln!(out, "{}\n", exp.description.trim());
    }
    let direction = a.direction.map_or("direction unknown", Direction::describe);
    let unit = if a.unit.is_empty() {
        String::new()
    } else {
        format!(", unit {}", a.unit)
    };
    let _ = writeln!(
        out,
        "Primary metric: **{metric}** ({direction}{unit}). Cells: {} finished, {} failed. {INTERVAL_NOTE}\n",
        a.counts.0, a.counts.1
    );

    verdicts(&mut out, a);
    primary_tables(&mut out, a);
    paper_tables(&mut out, a);
    pass_at_1_table(&mut out, a);
    rules_table(&mut out, a);
    rates_table(&mut out, a);
    training_table(&mut out, a);
    paired_tables(&mut out, a);
    plots_section(&mut out, plots);
    failed_cells(&mut out, &a.failed);
    problems(&mut out, &a.problems);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn verdicts(out: &mut String, a: &Analysis<'_>) {
    let _ = writeln!(out, "## Valley verdict\n");
    let _ = writeln!(out, "| arm | verdict | why |\n|---|---|---|");
    for arm in &a.arms {
        let _ = writeln!(
            out,
            "| {} | **{}** | {} |",
            arm.name,
            arm.verdict.label(),
            cell_text(&arm.verdict.to_string())
        );
    }
    let _ = writeln!(out, "\nRule: {RULE}\n");
}

fn interval(s: &Summary) -> String {
    match s.interval() {
        Some((lo, hi)) => format!("[{}, {}]", round3(lo), round3(hi)),
        None => "— (n < 2)".into(),
    }
}

fn primary_tables(out: &mut String, a: &Analysis<'_>) {
    let metric = &a.experiment.primary_metric;
    let _ = writeln!(out, "## {metric} by size\n");
    for arm in &a.arms {
        let _ = writeln!(out, "### {}\n", arm.name);
        let _ = writeln!(
            out,
            "| size | n | mean | min–max | 95 % CI |\n|---:|---:|---:|---|---|"
        );
        if arm.base_pooled {
            if let Some(base) = &arm.base {
                let _ = writeln!(out, "{}", summary_row("0 (base, all arms)", base));
            }
        }
        for (size, s) in &arm.primary {
            let _ = writeln!(out, "{}", summary_row(&size_label(*size), s));
        }
        if arm.primary.is_empty() {
            let _ = writeln!(out, "| — | 0 | — | — | — |");
        }
        out.push('\n');
    }
}

fn summary_row(label: &str, s: &Summary) -> String {
    format!(
        "| {label} | {} | {} | {}–{} | {} |",
        s.n,
        round3(s.mean),
        round3(s.min),
        round3(s.max),
        interval(s)
    )
}

fn paper_tables(out: &mut String, a: &Analysis<'_>) {
    let Some(mirror) = &a.experiment.mirrors else {
        return;
    };
    let _ = writeln!(out, "## Beside the paper\n");
    let _ = writeln!(
        out,
        "This experiment mirrors the paper's table *{}* ({}). The paper reports one run per point \
         (no seeds); its size 0 is the starting model{}.\n",
        mirror.table.title(),
        paper::CITATION,
        if mirror.table == PaperTable::AddedData {
            " (the instruct model or the 30K checkpoint)"
        } else {
            ""
        }
    );
    let mut any = false;
    for arm in a.arms.iter().filter(|arm| arm.paper.is_some()) {
        let Some(series) = arm.paper else { continue };
        any = true;
        let _ = writeln!(out, "### {} beside {}\n", arm.name, series.label);
        let _ = writeln!(
            out,
            "| size | paper | ours: mean | ours: 95 % CI | n |\n|---:|---:|---:|---|---:|"
        );
        let mut sizes: Vec<u64> = series.points.iter().map(|p| p.0).collect();
        sizes.extend(arm.primary.keys().copied());
        if arm.base_pooled {
            sizes.push(0);
        }
        sizes.sort_unstable();
        sizes.dedup();
        for size in sizes {
            let paper = series
                .points
                .iter()
                .find(|p| p.0 == size)
                .map_or("—".into(), |p| round3(p.1));
            let ours = arm
                .primary
                .get(&size)
                .or(if size == 0 { arm.base.as_ref() } else { None });
            let (mean, ci, n) = match ours {
                Some(s) => (round3(s.mean), interval(s), s.n.to_string()),
                None => ("—".into(), "—".into(), "0".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {paper} | {mean} | {ci} | {n} |",
                size_label(size)
            );
        }
        out.push('\n');
    }
    if !any {
        let _ = writeln!(out, "No arm names a paper series (`mirrors.arms`).\n");
    }
}

/// Mean of `f` over a group's cells that have it, with "(k of n)" when some lack it.
fn group_mean(cells: &[&CellRecord], f: impl Fn(&CellRecord) -> Option<f64>) -> String {
    let values: Vec<f64> = cells
        .iter()
        .filter_map(|c| f(c))
        .filter(|v| v.is_finite())
        .collect();
    match Summary::of(&values) {
        None => "—".into(),
        Some(s) if s.n == cells.len() => round3(s.mean),
        Some(s) => format!("{} ({} of {})", round3(s.mean), s.n, cells.len()),
    }
}

/// Mean and min–max of `f`, formatted by `fmt`, with "(k of n)" when some cells lack it.
fn group_spread(
    cells: &[&CellRecord],
    f: impl Fn(&CellRecord) -> Option<f64>,
    fmt: fn(f64) -> String,
) -> String {
    let values: Vec<f64> = cells
        .iter()
        .filter_map(|c| f(c))
        .filter(|v| v.is_finite())
        .collect();
    match Summary::of(&values) {
        None => "—".into(),
        Some(s) => {
            let partial = if s.n == cells.len() {
                String::new()
            } else {
                format!(", {} of {}", s.n, cells.len())
            };
            if s.n == 1 {
                format!("{}{partial}", fmt(s.mean))
            } else {
                format!("{} ({}–{}{partial})", fmt(s.mean), fmt(s.min), fmt(s.max))
            }
        }
    }
}

fn all_groups<'b, 'a>(
    a: &'b Analysis<'a>,
) -> impl Iterator<Item = (&'b ArmAnalysis<'a>, u64, &'b Vec<&'a CellRecord>)> {
    a.arms.iter().flat_map(|arm| {
        arm.sizes
            .iter()
            .map(move |(size, cells)| (arm, *size, cells))
    })
}

fn pass_at_1_table(out: &mut String, a: &Analysis<'_>) {
    let mut levels: Vec<&str> = Vec::new();
    for (_, _, cells) in all_groups(a) {
        for cell in cells {
            for d in &cell.pass_at_1_by_difficulty {
                if !levels.contains(&d.difficulty.as_str()) {
                    levels.push(&d.difficulty);
                }
            }
        }
    }
    let has_overall = all_groups(a).any(|(_, _, cells)| {
        cells
            .iter()
            .any(|c| c.metrics.contains_key(crate::DEFAULT_PRIMARY_METRIC))
    });
    let _ = writeln!(out, "## pass@1 overall and by difficulty\n");
    if levels.is_empty() && !has_overall {
        let _ = writeln!(
            out,
            "No cell reports pass@1 or a per-difficulty breakdown.\n"
        );
        return;
    }
    let _ = writeln!(out, "Means over the finished seeds.\n");
    let mut header = String::from("| arm | size | n | pass@1 |");
    let mut rule = String::from("|---|---:|---:|---:|");
    for level in &levels {
        let _ = write!(header, " {} |", cell_text(level));
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (arm, size, cells) in all_groups(a) {
        let mut row = format!(
            "| {} | {} | {} | {} |",
            arm.name,
            size_label(size),
            cells.len(),
            group_mean(cells, |c| finite(c, crate::DEFAULT_PRIMARY_METRIC))
        );
        for level in &levels {
            let m = group_mean(cells, |c| {
                c.pass_at_1_by_difficulty
                    .iter()
                    .find(|d| d.difficulty == *level)
                    .map(|d| d.pass_at_1)
            });
            let _ = write!(row, " {m} |");
        }
        let _ = writeln!(out, "{row}");
    }
    out.push('\n');
}

/// pass@1 under each judge rule set the evaluator judged with (`rules/<RULES>/pass@1`) and the
/// samples solved under one and not the other (`rules/samples_differ`); no section for cells
/// judged under one rule set only.
fn rules_table(out: &mut String, a: &Analysis<'_>) {
    let mut names: Vec<&str> = Vec::new();
    for (_, _, cells) in all_groups(a) {
        for cell in cells {
            for key in cell.metrics.keys() {
                if let Some(name) = key
                    .strip_prefix("rules/")
                    .and_then(|k| k.strip_suffix("/pass@1"))
                {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
    }
    if names.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Judge rules
"
    );
    let _ = writeln!(
        out,
        "Every sample was judged under each rule set: `livecodebench@28fef95` is LiveCodeBench's \
         harness at that commit, quirks included (what published pass@1 numbers are), `strict` is \
         valley's own semantics (a fresh process per test, exit status respected, no wrapping). \
         The primary metric is under the evaluator's `rules` (default `livecodebench@28fef95`). \
         pass@1: means over the finished seeds; samples that differ (solved under one rule set \
         and not the other): summed over them.\n"
    );
    let mut header = String::from("| arm | size | n |");
    let mut rule = String::from("|---|---:|---:|");
    for name in &names {
        let _ = write!(header, " pass@1 `{}` |", cell_text(name));
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header} samples that differ |\n{rule}---:|");
    for (arm, size, cells) in all_groups(a) {
        let mut row = format!("| {} | {} | {} |", arm.name, size_label(size), cells.len());
        for name in &names {
            let m = group_mean(cells, |c| finite(c, &format!("rules/{name}/pass@1")));
            let _ = write!(row, " {m} |");
        }
        let differ: Vec<f64> = cells
            .iter()
            .filter_map(|c| finite(c, "rules/samples_differ"))
            .collect();
        let differ = if differ.is_empty() {
            "—".to_string()
        } else {
            format!("{}", differ.iter().sum::<f64>())
        };
        let _ = writeln!(out, "{row} {differ} |");
    }
    out.push('\n');
}

fn rates_table(out: &mut String, a: &Analysis<'_>) {
    let _ = writeln!(out, "## Completion and `<think>` rates\n");
    let any = all_groups(a).any(|(_, _, cells)| {
        cells
            .iter()
            .any(|c| c.completion_rate.is_some() || c.think_rate.is_some())
    });
    if !any {
        let _ = writeln!(out, "No cell reports a completion or `<think>` rate.\n");
        return;
    }
    let _ = writeln!(
        out,
        "Completion: answers finished within the generation cap; `<think>`: responses that start \
         with `<think>`. Mean (min–max) over the finished seeds.\n"
    );
    let _ = writeln!(
        out,
        "| arm | size | n | completion rate | `<think>` rate |\n|---|---:|---:|---|---|"
    );
    for (arm, size, cells) in all_groups(a) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            arm.name,
            size_label(size),
            cells.len(),
            group_spread(cells, |c| c.completion_rate, round3),
            group_spread(cells, |c| c.think_rate, round3)
        );
    }
    out.push('\n');
}

fn training_table(out: &mut String, a: &Analysis<'_>) {
    let _ = writeln!(out, "## Training tokens and steps\n");
    let any = all_groups(a).any(|(_, size, cells)| {
        size > 0
            && cells
                .iter()
                .any(|c| c.training_tokens.is_some() || c.training_steps.is_some())
    });
    if !any {
        let _ = writeln!(out, "No trained cell reports its tokens or steps.\n");
        return;
    }
    let _ = writeln!(
        out,
        "Mean (min–max) over the finished seeds; the base model is not trained.\n"
    );
    let _ = writeln!(
        out,
        "| arm | size | n | tokens | steps |\n|---|---:|---:|---|---|"
    );
    for (arm, size, cells) in all_groups(a).filter(|g| g.1 > 0) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            arm.name,
            size,
            cells.len(),
            group_spread(cells, |c| c.training_tokens.map(|t| t as f64), integer),
            group_spread(cells, |c| c.training_steps.map(|t| t as f64), integer)
        );
    }
    out.push('\n');
}

fn paired_tables(out: &mut String, a: &Analysis<'_>) {
    let metric = &a.experiment.primary_metric;
    let _ = writeln!(out, "## Paired comparisons\n");
    let mut any = false;
    for (i, first) in a.arms.iter().enumerate() {
        for second in &a.arms[i + 1..] {
            let rows = a.paired(first, second);
            if rows.is_empty() {
                continue;
            }
            if !any {
                let _ = writeln!(
                    out,
                    "Per seed, {metric} of one arm minus the other's at the same size and seed, \
                     so the variation the seed brings to both arms cancels (with the default \
                     `nested-size` subset the same seed draws the same permutation); mean \
                     difference and its 95 % t-interval over the shared seeds. An arm is called \
                     better only when the interval excludes 0.\n"
                );
            }
            any = true;
            let _ = writeln!(out, "### {} − {}\n", first.name, second.name);
            let _ = writeln!(
                out,
                "| size | pairs | mean difference | 95 % CI | reading |\n|---:|---:|---:|---|---|"
            );
            for row in rows {
                let d = &row.diff;
                let ci = match d.interval() {
                    Some((lo, hi)) => format!("[{}, {}]", signed3(lo), signed3(hi)),
                    None => "— (n < 2)".into(),
                };
                let reading = reading(a.direction, d, &first.name, &second.name);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {ci} | {reading} |",
                    row.size,
                    d.n,
                    signed3(d.mean)
                );
            }
            out.push('\n');
        }
    }
    if !any {
        let _ = writeln!(out, "No two arms share a seed at the same trained size.\n");
    }
}

/// Which arm the paired interval favours, read through the metric's direction.
fn reading(direction: Option<Direction>, d: &Summary, first: &str, second: &str) -> String {
    let Some((lo, hi)) = d.interval() else {
        return "too few pairs".into();
    };
    let Some(sign) = direction.and_then(Direction::sign) else {
        return "no direction".into();
    };
    let (lo, hi) = (sign * lo, sign * hi);
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    if lo > 0.0 {
        format!("{first} better")
    } else if hi < 0.0 {
        format!("{second} better")
    } else {
        "no clear difference".into()
    }
}

fn plots_section(out: &mut String, plots: &[(String, String)]) {
    if plots.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Plots\n");
    for (arm, file) in plots {
        let _ = writeln!(out, "![{arm}]({file})\n");
    }
}

fn failed_cells(out: &mut String, failed: &[&CellRecord]) {
    let _ = writeln!(out, "## Failed cells\n");
    if failed.is_empty() {
        let _ = writeln!(out, "None.\n");
        return;
    }
    let _ = writeln!(
        out,
        "Not counted in any mean above.\n\n| cell | arm | size | seed | error |\n|---|---|---:|---:|---|"
    );
    for cell in failed {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            cell.key(),
            cell.arm,
            size_label(cell.size),
            cell.seed,
            cell_text(cell.error.as_deref().unwrap_or("(no error recorded)"))
        );
    }
    out.push('\n');
}

fn problems(out: &mut String, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Problems in the records\n");
    for p in problems {
        let _ = writeln!(out, "- {p}");
    }
    out.push('\n');
}
