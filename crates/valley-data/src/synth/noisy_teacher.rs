//! The noisy teacher: with a probability that rises with difficulty, the teacher believes a
//! slightly wrong pipeline — two steps swapped, an off-by-one, `>` for `>=`, or a forgotten
//! empty case — and its plan, worked example and code all follow that belief.
//!
//! Whether the belief is actually wrong on the hidden tests is not decided here: a swap of two
//! steps that commute, or a strictness flip on a threshold no test reaches, is harmless. The
//! `correct` label comes from running the code.

use valley_plugin_api::SeedRng;

use super::{
    family::PipelineSpec,
    ops::{Op, Reducer},
};

/// The probability of a bug at each level, EASY … VERY_HARD.
pub const BUG_PROBABILITY: [f64; 5] = [0.25, 0.4, 0.55, 0.7, 0.8];

/// A kind of bug the teacher makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Two adjacent steps in the wrong order.
    WrongOrder,
    /// A count, bound or range off by one.
    OffByOne,
    /// `>` for `>=` (or the reverse).
    Strictness,
    /// The empty-list output forgotten.
    ForgottenEmptyCase,
}

impl Bug {
    /// The name recorded in `meta.bug`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::WrongOrder => "wrong-order",
            Bug::OffByOne => "off-by-one",
            Bug::Strictness => "strictness",
            Bug::ForgottenEmptyCase => "forgotten-empty-case",
        }
    }
}

/// What the teacher believes the problem asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Belief {
    /// The steps the teacher's plan and code perform.
    pub ops: Vec<Op>,
    /// The reducer.
    pub reducer: Reducer,
    /// Whether the code leaves out the empty-list output.
    pub forgets_empty: bool,
    /// The bug injected, if any.
    pub bug: Option<Bug>,
}

impl Belief {
    /// A teacher that gets it right.
    pub fn faithful(spec: &PipelineSpec) -> Self {
        Self {
            ops: spec.ops.clone(),
            reducer: spec.reducer,
            forgets_empty: false,
            bug: None,
        }
    }

    /// The intermediate lists of the believed steps on `input` (the input first).
    pub fn trace(&self, input: &[i64]) -> Vec<Vec<i64>> {
        let mut lists = vec![input.to_vec()];
        for op in &self.ops {
            let next = op.apply(lists.last().cloned().unwrap_or_default());
            lists.push(next);
        }
        lists
    }
}

fn off_by_one(op: &Op, up: bool) -> Option<Op> {
    let d = if up { 1 } else { -1 };
    Some(match *op {
        Op::Take(k) => Op::Take((k as i64 + d).max(0) as usize),
        Op::Drop(k) => Op::Drop((k as i64 + d).max(0) as usize),
        Op::PrefixSums => Op::PrefixSumsExclusive,
        Op::Differences => Op::DifferencesShort,
        Op::FilterCmp(cmp, k) => Op::FilterCmp(cmp, k + d),
        _ => return None,
    })
}

/// The teacher's belief for a problem: faithful, or with one bug drawn among those the problem
/// allows, with [`BUG_PROBABILITY`] of its level.
pub fn believe(spec: &PipelineSpec, rng: &mut SeedRng) -> Belief {
    let mut belief = Belief::faithful(spec);
    if rng.next_f64() >= BUG_PROBABILITY[spec.level] {
        return belief;
    }
    let mut options = Vec::new();
    if spec.ops.windows(2).any(|w| w[0] != w[1]) {
        options.push(Bug::WrongOrder);
    }
    if spec.ops.iter().any(|o| off_by_one(o, true).is_some()) {
        options.push(Bug::OffByOne);
    }
    if spec
        .ops
        .iter()
        .any(|o| matches!(o, Op::FilterCmp(c, _) if c.flipped_strictness().is_some()))
    {
        options.push(Bug::Strictness);
    }
    if spec.reducer.has_empty_case() {
        options.push(Bug::ForgottenEmptyCase);
    }
    if options.is_empty() {
        return belief;
    }
    let bug = options[rng.below(options.len() as u64) as usize];
    let candidates = |f: &dyn Fn(&Op) -> bool| -> Vec<usize> {
        spec.ops
            .iter()
            .enumerate()
            .filter(|(_, o)| f(o))
            .map(|(i, _)| i)
            .collect()
    };
    match bug {
        Bug::WrongOrder => {
            let pairs: Vec<usize> = (0..spec.ops.len() - 1)
                .filter(|&i| spec.ops[i] != spec.ops[i + 1])
                .collect();
            let i = pairs[rng.below(pairs.len() as u64) as usize];
            belief.ops.swap(i, i + 1);
        }
        Bug::OffByOne => {
            let at = candidates(&|o| off_by_one(o, true).is_some());
            let i = at[rng.below(at.len() as u64) as usize];
            let up = rng.below(2) == 0;
            belief.ops[i] = off_by_one(&spec.ops[i], up).expect("a candidate");
        }
        Bug::Strictness => {
            let at = candidates(
                &|o| matches!(o, Op::FilterCmp(c, _) if c.flipped_strictness().is_some()),
            );
            let i = at[rng.below(at.len() as u64) as usize];
            if let Op::FilterCmp(c, k) = spec.ops[i] {
                belief.ops[i] = Op::FilterCmp(c.flipped_strictness().expect("a candidate"), k);
            }
        }
        Bug::ForgottenEmptyCase => belief.forgets_empty = true,
    }
    belief.bug = Some(bug);
    belief
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{family::random_spec, ops::Cmp};

    #[test]
    fn bugs_get_likelier_with_difficulty_and_change_the_belief() {
        let mut rng = SeedRng::new(11);
        let mut rates = Vec::new();
        for level in 0..5 {
            let mut bugs = 0;
            for _ in 0..600 {
                let spec = random_spec(&mut rng, level);
                let belief = believe(&spec, &mut rng);
                if belief.bug.is_some() {
                    bugs += 1;
                    assert!(
                        belief.ops != spec.ops || belief.forgets_empty,
                        "a bug changes the belief: {spec:?} {belief:?}"
                    );
                } else {
                    assert_eq!(belief, Belief::faithful(&spec));
                }
            }
            rates.push(bugs as f64 / 600.0);
        }
        assert!(rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");
    }

    #[test]
    fn strictness_flip_is_the_textbook_one() {
        assert_eq!(Cmp::Gt.flipped_strictness(), Some(Cmp::Ge));
        assert_eq!(Cmp::Le.flipped_strictness(), Some(Cmp::Lt));
        assert_eq!(Cmp::Ne.flipped_strictness(), None);
    }
}
