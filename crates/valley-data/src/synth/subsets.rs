//! The paper's seven subsets, scaled to the size asked for: `train_1k ⊂ train_10k ⊂ train_30k`
//! as prefixes of one seeded permutation of the training problems, and from a separate pool
//! `correct_6k`, `incorrect_6k` (by the label that running the code gave), `easy_4k` (EASY,
//! MEDIUM) and `hard_4k` (MEDIUM_HARD, HARD, VERY_HARD), each a seeded random draw.
//!
//! Sizes scale with `--train`: a subset the paper calls `k` holds `round(k · train / 30000)`
//! records (at least one), so `--train 30000` gives the paper's sizes and the names keep the
//! paper's labels; the manifest records the actual counts.

use valley_plugin_api::SeedRng;

/// The size of the paper's largest training subset; `--train` is measured against it.
pub const PAPER_TRAIN: usize = 30_000;
/// The size of the paper's separate TACO pool.
pub const PAPER_POOL: usize = 13_583;

/// A subset: its file name, the paper's size and what it draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubsetDef {
    /// The name (the file is `<name>.jsonl`).
    pub name: &'static str,
    /// The size in the paper.
    pub paper_size: usize,
    /// Which records qualify.
    pub draw: Draw,
}

/// Where a subset's records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// A prefix of the training permutation.
    TrainPrefix,
    /// Pool records whose code passed every test.
    Correct,
    /// Pool records whose code failed a test.
    Incorrect,
    /// Pool records labelled EASY or MEDIUM.
    Easy,
    /// Pool records labelled MEDIUM_HARD, HARD or VERY_HARD.
    Hard,
}

/// The seven subsets in the paper's order.
pub const SUBSETS: [SubsetDef; 7] = [
    SubsetDef {
        name: "train_1k",
        paper_size: 1_000,
        draw: Draw::TrainPrefix,
    },
    SubsetDef {
        name: "train_10k",
        paper_size: 10_000,
        draw: Draw::TrainPrefix,
    },
    SubsetDef {
        name: "train_30k",
        paper_size: 30_000,
        draw: Draw::TrainPrefix,
    },
    SubsetDef {
        name: "correct_6k",
        paper_size: 6_000,
        draw: Draw::Correct,
    },
    SubsetDef {
        name: "incorrect_6k",
        paper_size: 6_000,
        draw: Draw::Incorrect,
    },
    SubsetDef {
        name: "easy_4k",
        paper_size: 4_000,
        draw: Draw::Easy,
    },
    SubsetDef {
        name: "hard_4k",
        paper_size: 4_000,
        draw: Draw::Hard,
    },
];

/// The size of a paper-sized set when the training set holds `train` problems.
pub fn scaled(paper_size: usize, train: usize) -> usize {
    if train == 0 {
        return 0;
    }
    ((paper_size as f64 * train as f64 / PAPER_TRAIN as f64).round() as usize).max(1)
}

/// Whether a pool record qualifies for a draw.
pub fn qualifies(draw: Draw, correct: bool, level: usize) -> bool {
    match draw {
        Draw::TrainPrefix => false,
        Draw::Correct => correct,
        Draw::Incorrect => !correct,
        Draw::Easy => level <= 1,
        Draw::Hard => level >= 2,
    }
}

/// A seeded random draw of `k` of the `eligible` indices, in drawn order.
pub fn draw(eligible: &[usize], k: usize, seed: u64, name: &str) -> Vec<usize> {
    let mut order = eligible.to_vec();
    SeedRng::derive(seed, &format!("synth/subset/{name}")).shuffle(&mut order);
    order.truncate(k);
    order
}

/// The nested permutation of the training problems: `train_1k`, `train_10k` and `train_30k` are
/// its prefixes.
pub fn training_permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SeedRng::derive(seed, "synth/subset/train").shuffle(&mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_scale_from_the_paper() {
        assert_eq!(scaled(1_000, 30_000), 1_000);
        assert_eq!(scaled(10_000, 300), 100);
        assert_eq!(scaled(1_000, 300), 10);
        assert_eq!(scaled(1_000, 20), 1, "never empty");
        assert_eq!(scaled(PAPER_POOL, 300), 136);
        assert_eq!(scaled(6_000, 0), 0);
    }
}
