//! Ordering by difficulty, shared by curriculum samplers (`easy-first`, `hard-first`, and any
//! author's variant), so that the tie rules live in one place and a golden order means the same
//! thing in every plugin that uses them.

use std::collections::BTreeMap;

use crate::{Candidate, SeedRng};

/// How records of equal difficulty are arranged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TieMode {
    /// Sort by rank; equal ranks in seeded random order (shuffle, then a stable sort).
    #[default]
    ShuffleTies,
    /// Group by difficulty label; groups ordered by their easiest (ascending) or hardest
    /// (descending) member's rank, ties by label; seeded random order inside each group. Every
    /// label stays contiguous even when two labels share a rank.
    Buckets,
}

impl TieMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ShuffleTies => "shuffle-ties",
            Self::Buckets => "buckets",
        }
    }
}

/// Positions into `pool` ordered by [`Candidate::difficulty_rank`], ascending (easy first) or
/// descending (hard first), ties arranged by `mode` with draws from `rng`.
pub fn order_by_difficulty(
    pool: &[Candidate],
    rng: &mut SeedRng,
    mode: TieMode,
    descending: bool,
) -> Vec<usize> {
    let cmp = |a: f64, b: f64| {
        if descending {
            b.total_cmp(&a)
        } else {
            a.total_cmp(&b)
        }
    };
    match mode {
        TieMode::ShuffleTies => {
            let mut positions: Vec<usize> = (0..pool.len()).collect();
            rng.shuffle(&mut positions);
            // Stable, so records of equal rank keep the shuffled order.
            positions.sort_by(|&a, &b| cmp(pool[a].difficulty_rank, pool[b].difficulty_rank));
            positions
        }
        TieMode::Buckets => {
            // One group per label, members in input order. A BTreeMap, not a HashMap, so the
            // label tie-break (and hence the order groups draw from the rng) is fixed. The group's
            // key is its first member in the requested order: the minimum rank ascending, the
            // maximum descending.
            let mut groups: BTreeMap<&str, (f64, Vec<usize>)> = BTreeMap::new();
            for (pos, c) in pool.iter().enumerate() {
                let group = groups
                    .entry(c.difficulty.as_str())
                    .or_insert((c.difficulty_rank, Vec::new()));
                if cmp(c.difficulty_rank, group.0).is_lt() {
                    group.0 = c.difficulty_rank;
                }
                group.1.push(pos);
            }
            let mut groups: Vec<(f64, Vec<usize>)> = groups.into_values().collect();
            // Stable over the label-sorted map, so equal keys order by label.
            groups.sort_by(|a, b| cmp(a.0, b.0));
            let mut positions = Vec::with_capacity(pool.len());
            for (_, mut members) in groups {
                rng.shuffle(&mut members);
                positions.extend(members);
            }
            positions
        }
    }
}

/// Counts labels, listed in the order they first appear: `[{"label": "EASY", "count": 3}, …]`.
pub fn label_histogram<'a>(labels: impl Iterator<Item = &'a str>) -> serde_json::Value {
    let mut levels: Vec<(&str, u64)> = Vec::new();
    for label in labels {
        match levels.iter_mut().find(|(l, _)| *l == label) {
            Some((_, count)) => *count += 1,
            None => levels.push((label, 1)),
        }
    }
    levels
        .into_iter()
        .map(|(label, count)| serde_json::json!({"label": label, "count": count}))
        .collect()
}
