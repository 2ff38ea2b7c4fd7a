//! From cell records to what a report shows: cells grouped by arm and size, the primary metric's
//! seed summaries, the base model's group for each arm, the verdicts, the paired comparisons, the
//! failed cells and every problem found on the way (duplicates, non-finite values, missing
//! metrics, disagreeing directions). Nothing is dropped without a line in [`Analysis::problems`].

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::{
    format::round3,
    paper::{self, PaperSeries},
    record::{CellRecord, CellStatus, Direction, ExperimentRecord},
    stats::Summary,
    verdict::{valley_verdict, SizePoint, Verdict},
};

/// Everything the Markdown and the plots are drawn from.
#[derive(Debug, Clone)]
pub struct Analysis<'a> {
    /// The experiment.
    pub experiment: &'a ExperimentRecord,
    /// The primary metric's direction, if the cells agree on one.
    pub direction: Option<Direction>,
    /// The primary metric's unit (the first cell's).
    pub unit: String,
    /// The arms in report order.
    pub arms: Vec<ArmAnalysis<'a>>,
    /// Failed cells, in input order.
    pub failed: Vec<&'a CellRecord>,
    /// Finished and failed cell counts.
    pub counts: (usize, usize),
    /// Lines for the report's "Problems" section.
    pub problems: Vec<String>,
}

/// One arm.
#[derive(Debug, Clone)]
pub struct ArmAnalysis<'a> {
    /// Its name.
    pub name: String,
    /// Finished cells by size, ascending; seeds ascending inside.
    pub sizes: BTreeMap<u64, Vec<&'a CellRecord>>,
    /// Primary metric summaries by size (only sizes with a finite value).
    pub primary: BTreeMap<u64, Summary>,
    /// The base model's summary: the arm's own size-0 group, else every arm's size-0 cells pooled.
    pub base: Option<Summary>,
    /// True when `base` is pooled from all arms.
    pub base_pooled: bool,
    /// The valley verdict.
    pub verdict: Verdict,
    /// The paper series this arm mirrors.
    pub paper: Option<&'static PaperSeries>,
}

/// The paired comparison of two arms at one size, over the seeds both finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// Training size.
    pub size: u64,
    /// Summary of the per-seed differences (first arm minus second).
    pub diff: Summary,
}

impl<'a> Analysis<'a> {
    /// Groups and summarizes the cells.
    pub fn new(experiment: &'a ExperimentRecord, cells: &'a [CellRecord]) -> Self {
        let metric = experiment.primary_metric.as_str();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        let mut finished: Vec<&CellRecord> = Vec::new();
        let mut failed = Vec::new();
        for cell in cells {
            if !seen.insert((cell.arm.as_str(), cell.size, cell.seed)) {
                problems.push(format!(
                    "duplicate cell `{}`: the first record is used, this one is ignored",
                    cell.key()
                ));
                continue;
            }
            match cell.status {
                CellStatus::Finished => finished.push(cell),
                CellStatus::Failed => failed.push(cell),
            }
        }
        let counts = (finished.len(), failed.len());
        for cell in &finished {
            let mut fields: Vec<(String, f64)> = cell
                .pass_at_1_by_difficulty
                .iter()
                .map(|d| (format!("pass@1 on {}", d.difficulty), d.pass_at_1))
                .collect();
            fields.extend(
                cell.completion_rate
                    .map(|v| ("completion rate".to_owned(), v)),
            );
            fields.extend(cell.think_rate.map(|v| ("`<think>` rate".to_owned(), v)));
            for (field, v) in fields.into_iter().filter(|(_, v)| !v.is_finite()) {
                problems.push(format!(
                    "`{}`: {field} is {}, left out of its mean",
                    cell.key(),
                    round3(v)
                ));
            }
        }

        // Direction and unit of the primary metric, from the cells that report it.
        let mut directions = BTreeSet::new();
        let mut units = BTreeSet::new();
        for cell in &finished {
            match cell.metrics.get(metric) {
                Some(m) => {
                    directions.insert(format!("{:?}", m.direction));
                    units.insert(m.unit.clone());
                    if !m.value.is_finite() {
                        problems.push(format!(
                            "`{}`: {metric} is {}, left out of every mean",
                            cell.key(),
                            round3(m.value)
                        ));
                    }
                }
                None => problems.push(format!(
                    "`{}` finished without the metric {metric}",
                    cell.key()
                )),
            }
        }
        let direction = match directions.len() {
            1 => finished
                .iter()
                .find_map(|c| c.metrics.get(metric))
                .map(|m| m.direction),
            0 => None,
            _ => {
                problems.push(format!(
                    "cells disagree on the direction of {metric} ({}): no verdict",
                    directions.into_iter().collect::<Vec<_>>().join(", ")
                ));
                None
            }
        };
        if units.len() > 1 {
            problems.push(format!(
                "cells disagree on the unit of {metric} ({})",
                units
                    .iter()
                    .map(|u| format!("{u:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let unit = finished
            .iter()
            .find_map(|c| c.metrics.get(metric))
            .map(|m| m.unit.clone())
            .unwrap_or_default();

        // Arm order: declared first (when they have cells), then the rest alphabetically.
        let present: BTreeSet<&str> = cells.iter().map(|c| c.arm.as_str()).collect();
        let mut order: Vec<String> = Vec::new();
        for arm in &experiment.arms {
            if present.contains(arm.as_str()) {
                if !order.contains(arm) {
                    order.push(arm.clone());
                }
            } else {
                problems.push(format!("arm `{arm}` is declared but has no cells"));
            }
        }
        for arm in &present {
            if !order.iter().any(|a| a == arm) {
                order.push((*arm).to_owned());
            }
        }

        let pooled_base = Summary::of(
            &finished
                .iter()
                .filter(|c| c.size == 0)
                .filter_map(|c| finite(c, metric))
                .collect::<Vec<_>>(),
        );

        let mut mirrors = BTreeMap::new();
        if let Some(m) = &experiment.mirrors {
            for (arm, id) in &m.arms {
                match paper::series(m.table, id) {
                    Some(s) => {
                        mirrors.insert(arm.as_str(), s);
                    }
                    None => problems.push(format!(
                        "arm `{arm}` mirrors `{id}`, which is not a series of the table \
                         `{:?}` (known: {})",
                        m.table,
                        paper::ids(m.table).join(", ")
                    )),
                }
                if !present.contains(arm.as_str()) {
                    problems.push(format!("mirrored arm `{arm}` has no cells"));
                }
            }
        }

        let arms = order
            .into_iter()
            .map(|name| {
                let mut sizes: BTreeMap<u64, Vec<&CellRecord>> = BTreeMap::new();
                for cell in finished.iter().filter(|c| c.arm == name) {
                    sizes.entry(cell.size).or_default().push(cell);
                }
                for group in sizes.values_mut() {
                    group.sort_by_key(|c| c.seed);
                }
                let primary: BTreeMap<u64, Summary> = sizes
                    .iter()
                    .filter_map(|(&size, group)| {
                        let values: Vec<f64> =
                            group.iter().filter_map(|c| finite(c, metric)).collect();
                        Summary::of(&values).map(|s| (size, s))
                    })
                    .collect();
                let (base, base_pooled) = match primary.get(&0) {
                    Some(s) => (Some(*s), false),
                    None => (pooled_base, pooled_base.is_some()),
                };
                let trained: Vec<SizePoint> = primary
                    .iter()
                    .filter(|(&size, _)| size > 0)
                    .map(|(&size, &summary)| SizePoint { size, summary })
                    .collect();
                let verdict = valley_verdict(direction, base, &trained);
                let paper = mirrors.get(name.as_str()).copied();
                ArmAnalysis {
                    name,
                    sizes,
                    primary,
                    base,
                    base_pooled,
                    verdict,
                    paper,
                }
            })
            .collect();

        Analysis {
            experiment,
            direction,
            unit,
            arms,
            failed,
            counts,
            problems,
        }
    }

    /// Paired comparisons of arm `a` against arm `b` (a − b) at every trained size where both
    /// finished at least one common seed with a finite primary metric.
    pub fn paired(&self, a: &ArmAnalysis<'_>, b: &ArmAnalysis<'_>) -> Vec<Paired> {
        let metric = self.experiment.primary_metric.as_str();
        a.sizes
            .iter()
            .filter(|(&size, _)| size > 0)
            .filter_map(|(size, cells_a)| {
                let cells_b = b.sizes.get(size)?;
                let diffs: Vec<f64> = cells_a
                    .iter()
                    .filter_map(|ca| {
                        let cb = cells_b.iter().find(|cb| cb.seed == ca.seed)?;
                        Some(finite(ca, metric)? - finite(cb, metric)?)
                    })
                    .collect();
                Summary::of(&diffs).map(|diff| Paired { size: *size, diff })
            })
            .collect()
    }
}

/// The cell's finite value of `metric`.
pub fn finite(cell: &CellRecord, metric: &str) -> Option<f64> {
    cell.metrics
        .get(metric)
        .map(|m| m.value)
        .filter(|v| v.is_finite())
}
