//! Random problems of the list-pipeline family at five TACO-style difficulty levels.
//!
//! Difficulty comes from three knobs that grow together with the level: the number of steps
//! (EASY 1–2 … VERY_HARD 5–7), the share of rarer operations (modulo filters, take/drop, dedupe,
//! prefix sums, differences) and edge traps (reducers with a special empty-list output after
//! filters that can remove everything).

use valley_plugin_api::SeedRng;

use super::ops::{Cmp, Op, Reducer};
use crate::records::TACO_LEVELS;

/// A problem: the steps in order, then the reducer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineSpec {
    /// Difficulty rank, 0 (EASY) … 4 (VERY_HARD).
    pub level: usize,
    /// The steps in order.
    pub ops: Vec<Op>,
    /// What is printed.
    pub reducer: Reducer,
}

impl PipelineSpec {
    /// The TACO label of the level.
    pub fn label(&self) -> &'static str {
        TACO_LEVELS[self.level]
    }

    /// Runs the steps on `input` and returns the intermediate lists (one per step, the input
    /// first).
    pub fn trace(&self, input: &[i64]) -> Vec<Vec<i64>> {
        let mut lists = vec![input.to_vec()];
        for op in &self.ops {
            let next = op.apply(lists.last().cloned().unwrap_or_default());
            lists.push(next);
        }
        lists
    }

    /// The reference output for an input list.
    pub fn output(&self, input: &[i64]) -> String {
        let lists = self.trace(input);
        self.reducer
            .output(lists.last().map_or(&[][..], Vec::as_slice))
    }

    /// A canonical string that identifies the problem: two specs with the same signature ask the
    /// same question (used to keep the evaluation set disjoint from training).
    pub fn signature(&self) -> String {
        format!("{:?}|{:?}", self.ops, self.reducer)
    }
}

const STEPS: [(usize, usize); 5] = [(1, 2), (2, 3), (3, 4), (4, 5), (5, 7)];
const RARE_SHARE: [f64; 5] = [0.0, 0.15, 0.35, 0.5, 0.6];
const PRIMES: [i64; 4] = [1_000_000_007, 998_244_353, 1009, 97];

fn range(rng: &mut SeedRng, lo: i64, hi: i64) -> i64 {
    lo + rng.below((hi - lo + 1) as u64) as i64
}

fn pick<T: Copy>(rng: &mut SeedRng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

fn common_op(rng: &mut SeedRng) -> Op {
    match rng.below(10) {
        0..=3 => {
            let cmp = pick(
                rng,
                &[
                    Cmp::Gt,
                    Cmp::Ge,
                    Cmp::Lt,
                    Cmp::Le,
                    Cmp::Gt,
                    Cmp::Ge,
                    Cmp::Ne,
                ],
            );
            Op::FilterCmp(cmp, range(rng, -20, 20))
        }
        4..=5 => loop {
            let a = pick(rng, &[-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]);
            let b = range(rng, -20, 20);
            if (a, b) != (1, 0) {
                break Op::Affine { a, b };
            }
        },
        6 => Op::Abs,
        7..=8 => Op::Sort {
            desc: rng.below(3) == 0,
        },
        _ => Op::Reverse,
    }
}

fn rare_op(rng: &mut SeedRng) -> Op {
    match rng.below(8) {
        0 => {
            let m = range(rng, 2, 5);
            Op::FilterMod {
                m,
                r: range(rng, 0, m - 1),
                keep: rng.below(2) == 0,
            }
        }
        1 => Op::Modulo(range(rng, 2, 9)),
        2 => Op::Take(range(rng, 1, 6) as usize),
        3 => Op::Drop(range(rng, 1, 4) as usize),
        4 => Op::Dedupe,
        5 => Op::PrefixSums,
        6 => Op::Differences,
        _ => Op::Dedupe,
    }
}

/// Whether `next` may follow `ops`: no two sorts or reversals in a row (they would cancel or
/// repeat), at most two affine maps and one prefix sum (values stay far inside `i64`).
fn allowed(ops: &[Op], next: &Op) -> bool {
    let count = |f: fn(&Op) -> bool| ops.iter().filter(|o| f(o)).count();
    match (ops.last(), next) {
        (Some(Op::Sort { .. } | Op::Reverse), Op::Sort { .. } | Op::Reverse) => return false,
        (Some(Op::Abs), Op::Abs) | (Some(Op::Dedupe), Op::Dedupe) => return false,
        _ => {}
    }
    match next {
        Op::Affine { .. } => count(|o| matches!(o, Op::Affine { .. })) < 2,
        Op::PrefixSums => count(|o| matches!(o, Op::PrefixSums)) == 0,
        Op::Differences => count(|o| matches!(o, Op::Differences)) == 0,
        _ => true,
    }
}

/// A random problem of the given level (0 … 4).
pub fn random_spec(rng: &mut SeedRng, level: usize) -> PipelineSpec {
    let (lo, hi) = STEPS[level];
    let steps = lo + rng.below((hi - lo + 1) as u64) as usize;
    let mut ops = Vec::with_capacity(steps);
    while ops.len() < steps {
        let op = if rng.next_f64() < RARE_SHARE[level] {
            rare_op(rng)
        } else {
            common_op(rng)
        };
        if allowed(&ops, &op) {
            ops.push(op);
        }
    }
    let has_filter = ops
        .iter()
        .any(|o| matches!(o, Op::FilterCmp(..) | Op::FilterMod { .. }));
    let reducer = match level {
        0 => pick(rng, &[Reducer::Sum, Reducer::Count, Reducer::Max]),
        1 => pick(
            rng,
            &[
                Reducer::Sum,
                Reducer::Count,
                Reducer::Max,
                Reducer::Min,
                Reducer::PrintList,
            ],
        ),
        // Edge traps: at the top levels a filter is usually followed by a reducer whose empty
        // case must be handled.
        _ if level >= 3 && has_filter && rng.next_f64() < 0.6 => {
            pick(rng, &[Reducer::Max, Reducer::Min, Reducer::PrintList])
        }
        _ => match rng.below(6) {
            0 => Reducer::Sum,
            1 => Reducer::Max,
            2 => Reducer::Min,
            3 => Reducer::Count,
            4 => Reducer::ProductMod(pick(rng, &PRIMES)),
            _ => Reducer::PrintList,
        },
    };
    PipelineSpec {
        level,
        ops,
        reducer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_counts_and_rare_ops_grow_with_the_level() {
        let mut rng = SeedRng::new(7);
        let mut mean_steps = Vec::new();
        let mut rare = Vec::new();
        for (level, &(lo, hi)) in STEPS.iter().enumerate() {
            let specs: Vec<_> = (0..400).map(|_| random_spec(&mut rng, level)).collect();
            for s in &specs {
                assert!((lo..=hi).contains(&s.ops.len()), "{s:?}");
            }
            let steps: usize = specs.iter().map(|s| s.ops.len()).sum();
            mean_steps.push(steps as f64 / 400.0);
            let r = specs
                .iter()
                .flat_map(|s| &s.ops)
                .filter(|o| o.is_rare())
                .count();
            rare.push(r as f64 / steps as f64);
        }
        assert!(mean_steps.windows(2).all(|w| w[0] < w[1]), "{mean_steps:?}");
        assert!(rare.windows(2).all(|w| w[0] < w[1]), "{rare:?}");
        assert_eq!(rare[0], 0.0);
    }
}
