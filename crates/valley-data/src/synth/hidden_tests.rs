//! Test inputs of a problem: one or two public examples (readable, non-trivial) and 10–20 hidden
//! tests from a random generator that always includes the edge cases — an empty list (n = 0),
//! a single element, duplicates, negatives only, values on every filter's boundary, a list the
//! first filter empties, and a long list.

use valley_plugin_api::SeedRng;

use super::{
    family::PipelineSpec,
    ops::{Cmp, Op},
};

/// One stdin/stdout test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoTest {
    /// The input list.
    pub list: Vec<i64>,
    /// The text on stdin: `n`, then the list on one line.
    pub input: String,
    /// The expected stdout, without the final newline.
    pub output: String,
}

impl IoTest {
    /// The test of `list` for `spec`, its output from the reference interpreter.
    pub fn new(spec: &PipelineSpec, list: Vec<i64>) -> Self {
        let numbers: Vec<String> = list.iter().map(ToString::to_string).collect();
        let input = format!("{}\n{}\n", list.len(), numbers.join(" "));
        let output = spec.output(&list);
        Self {
            list,
            input,
            output,
        }
    }
}

/// The largest `n` the statement allows.
pub const MAX_N: usize = 30;
/// The largest `|a_i|` the statement allows.
pub const MAX_ABS: i64 = 1000;

fn random_list(rng: &mut SeedRng, n: usize, lo: i64, hi: i64) -> Vec<i64> {
    (0..n)
        .map(|_| lo + rng.below((hi - lo + 1) as u64) as i64)
        .collect()
}

/// One or two public examples: 4–8 small values whose answer is not the empty case when that
/// can be found in a few tries (an example should show the computation).
pub fn public_examples(spec: &PipelineSpec, rng: &mut SeedRng) -> Vec<IoTest> {
    let count = 1 + rng.below(2) as usize;
    let mut examples = Vec::with_capacity(count);
    for _ in 0..count {
        let mut best = None;
        for _ in 0..8 {
            let n = 4 + rng.below(5) as usize;
            let list = random_list(rng, n, -9, 20);
            let survives = !spec.trace(&list).last().is_some_and(Vec::is_empty);
            best = Some(list);
            if survives {
                break;
            }
        }
        examples.push(IoTest::new(spec, best.unwrap_or_default()));
    }
    examples
}

/// Input values `x` that reach a threshold filter exactly (`x`, and `x ± 1`), inverting the
/// element-wise maps before it where that is exact; filters behind order-changing or
/// aggregating steps get their threshold as it is.
fn boundary_values(spec: &PipelineSpec) -> Vec<i64> {
    let mut values = Vec::new();
    for (i, op) in spec.ops.iter().enumerate() {
        let Op::FilterCmp(cmp, k) = *op else { continue };
        if cmp == Cmp::Ne {
            values.push(k);
            continue;
        }
        // Invert the affine maps before the filter, back to front.
        let mut target = Some(k);
        for prior in spec.ops[..i].iter().rev() {
            target = match (prior, target) {
                (&Op::Affine { a, b }, Some(t)) if (t - b) % a == 0 => Some((t - b) / a),
                (&Op::Affine { .. }, _) => None,
                (&(Op::Abs | Op::Modulo(_) | Op::PrefixSums | Op::Differences), _) => None,
                (_, t) => t,
            };
        }
        let t = target.unwrap_or(k);
        values.extend([t - 1, t, t + 1]);
    }
    values.retain(|v| v.abs() <= MAX_ABS);
    values
}

/// 10–20 hidden tests with the edge cases first.
pub fn hidden_tests(spec: &PipelineSpec, rng: &mut SeedRng) -> Vec<IoTest> {
    let total = 10 + rng.below(11) as usize;
    let mut lists: Vec<Vec<i64>> = vec![
        Vec::new(),
        random_list(rng, 1, -30, 30),
        {
            // Duplicates: a few values, each repeated.
            let base = random_list(rng, 3, -10, 10);
            let n = 6 + rng.below(5) as usize;
            (0..n).map(|_| base[rng.below(3) as usize]).collect()
        },
        {
            let n = 5 + rng.below(4) as usize;
            random_list(rng, n, -30, -1)
        },
    ];
    let boundary = boundary_values(spec);
    if !boundary.is_empty() {
        let mut list = boundary.clone();
        list.extend(random_list(rng, 3, -30, 30));
        rng.shuffle(&mut list);
        list.truncate(MAX_N);
        lists.push(list);
    }
    // A list the first filter removes entirely (values drawn until enough fail it).
    // A value "fails" when the steps up to and including the first filter remove it alone.
    if let Some(first) = spec
        .ops
        .iter()
        .position(|o| matches!(o, Op::FilterCmp(..) | Op::FilterMod { .. }))
    {
        let prefix = PipelineSpec {
            ops: spec.ops[..=first].to_vec(),
            ..spec.clone()
        };
        let want = 3 + rng.below(4) as usize;
        let mut list = Vec::new();
        for _ in 0..200 {
            let x = random_list(rng, 1, -30, 30)[0];
            if prefix.trace(&[x]).last().is_some_and(Vec::is_empty) {
                list.push(x);
                if list.len() == want {
                    break;
                }
            }
        }
        lists.push(list);
    }
    let long = 20 + rng.below(11) as usize;
    lists.push(random_list(rng, long, -50, 50));
    while lists.len() < total {
        let n = rng.below(16) as usize;
        let list = if rng.below(3) == 0 {
            random_list(rng, n, -5, 5)
        } else {
            random_list(rng, n, -30, 30)
        };
        lists.push(list);
    }
    lists.truncate(total);
    lists.into_iter().map(|l| IoTest::new(spec, l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{family::random_spec, ops::Reducer};

    #[test]
    fn hidden_tests_hold_the_edge_cases() {
        let spec = PipelineSpec {
            level: 1,
            ops: vec![Op::Affine { a: 2, b: 1 }, Op::FilterCmp(Cmp::Ge, 7)],
            reducer: Reducer::Max,
        };
        let tests = hidden_tests(&spec, &mut SeedRng::new(3));
        assert!((10..=20).contains(&tests.len()));
        assert_eq!(tests[0].input, "0\n\n");
        assert_eq!(tests[0].output, "NONE");
        assert_eq!(tests[1].list.len(), 1);
        // 2x + 1 >= 7 has its boundary at x = 3: 2, 3 and 4 are in the boundary test.
        assert!(tests
            .iter()
            .any(|t| [2, 3, 4].iter().all(|v| t.list.contains(v))));
        // The first filter empties one list: its answer is the empty case.
        assert!(tests
            .iter()
            .any(|t| !t.list.is_empty() && t.output == "NONE"));
        for t in &tests {
            assert!(t.list.len() <= MAX_N && t.list.iter().all(|v| v.abs() <= MAX_ABS));
        }
    }

    #[test]
    fn tests_are_deterministic_for_a_stream() {
        let spec = random_spec(&mut SeedRng::new(1), 3);
        let a = hidden_tests(&spec, &mut SeedRng::new(9));
        let b = hidden_tests(&spec, &mut SeedRng::new(9));
        assert_eq!(a, b);
    }
}
