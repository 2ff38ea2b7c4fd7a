//! The evaluator's metrics from its per-sample rows, a pure function: pass@k (unbiased, Chen et
//! al. 2021) overall and pass@1 per difficulty label, and the paper's auxiliary metrics —
//! completion rate (finished before the token cap), `<think>` rate (the response starts with
//! `<think>`), code-block rate and mean response length in tokens.

use std::collections::BTreeMap;

use valley_judge::pass_at_k;
use valley_plugin_api::{Direction, MetricValue};

/// What the metrics need of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFacts {
    /// Index of the problem (samples of one problem share it).
    pub problem: usize,
    /// The problem's difficulty label.
    pub difficulty: String,
    /// Every test passed.
    pub passed: bool,
    /// Stopped at end of turn before the token cap.
    pub finished: bool,
    /// Starts with `<think>`.
    pub thinks: bool,
    /// Holds a fenced code block.
    pub code_block: bool,
    /// Tokens generated.
    pub response_tokens: usize,
}

fn metric(name: String, value: f64, unit: &str, direction: Direction) -> MetricValue {
    MetricValue {
        name: name.into(),
        value,
        unit: unit.into(),
        direction,
    }
}

/// Mean pass@k over the problems with at least `k` samples (`None` when there are none).
fn mean_pass(per_problem: &[(usize, usize)], k: usize) -> Option<f64> {
    let vals: Vec<f64> = per_problem
        .iter()
        .filter_map(|&(n, c)| pass_at_k(n, c, k))
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
}

/// The final metrics: `pass@k` for each `k` (skipped where no problem has `k` samples),
/// `pass@1/<DIFFICULTY>`, `completion_rate`, `think_rate`, `code_block_rate`,
/// `mean_response_tokens` and `samples`.
pub fn compute(samples: &[SampleFacts], ks: &[usize]) -> Vec<MetricValue> {
    // (n, c) and difficulty per problem, in first-seen order.
    let mut per: BTreeMap<usize, (usize, usize, String)> = BTreeMap::new();
    for s in samples {
        let e = per.entry(s.problem).or_insert((0, 0, s.difficulty.clone()));
        e.0 += 1;
        e.1 += usize::from(s.passed);
    }
    let mut out = Vec::new();
    let all: Vec<(usize, usize)> = per.values().map(|&(n, c, _)| (n, c)).collect();
    for &k in ks {
        if let Some(v) = mean_pass(&all, k) {
            out.push(metric(
                format!("pass@{k}"),
                v,
                "fraction",
                Direction::HigherIsBetter,
            ));
        }
    }
    let mut by_difficulty: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (n, c, d) in per.values() {
        by_difficulty.entry(d).or_default().push((*n, *c));
    }
    for (d, counts) in by_difficulty {
        if let Some(v) = mean_pass(&counts, 1) {
            out.push(metric(
                format!("pass@1/{d}"),
                v,
                "fraction",
                Direction::HigherIsBetter,
            ));
        }
    }
    let n = samples.len().max(1) as f64;
    let rate = |f: fn(&SampleFacts) -> bool| samples.iter().filter(|s| f(s)).count() as f64 / n;
    out.push(metric(
        "completion_rate".into(),
        rate(|s| s.finished),
        "fraction",
        Direction::HigherIsBetter,
    ));
    out.push(metric(
        "think_rate".into(),
        rate(|s| s.thinks),
        "fraction",
        Direction::Neutral,
    ));
    out.push(metric(
        "code_block_rate".into(),
        rate(|s| s.code_block),
        "fraction",
        Direction::HigherIsBetter,
    ));
    out.push(metric(
        "mean_response_tokens".into(),
        samples
            .iter()
            .map(|s| s.response_tokens as f64)
            .sum::<f64>()
            / n,
        "tokens",
        Direction::Neutral,
    ));
    out.push(metric(
        "samples".into(),
        samples.len() as f64,
        "count",
        Direction::Neutral,
    ));
    out
}

/// pass@1 under each judge rule set, over samples judged under both: `rules/<RULES>/pass@1`
/// for the evaluator's rules and the other one, and `rules/samples_differ`, the samples solved
/// under one and not the other. `samples` holds (problem, solved under `rules`, solved under
/// `other`).
pub fn rules_metrics(
    rules: &str,
    other: &str,
    samples: &[(usize, bool, bool)],
) -> Vec<MetricValue> {
    if samples.is_empty() {
        return Vec::new();
    }
    let mut per: BTreeMap<usize, (usize, usize, usize)> = BTreeMap::new();
    for &(p, a, b) in samples {
        let e = per.entry(p).or_default();
        e.0 += 1;
        e.1 += usize::from(a);
        e.2 += usize::from(b);
    }
    let first: Vec<(usize, usize)> = per.values().map(|t| (t.0, t.1)).collect();
    let second: Vec<(usize, usize)> = per.values().map(|t| (t.0, t.2)).collect();
    let mut out = Vec::new();
    for (name, counts) in [(rules, first), (other, second)] {
        if let Some(v) = mean_pass(&counts, 1) {
            out.push(metric(
                format!("rules/{name}/pass@1"),
                v,
                "fraction",
                Direction::HigherIsBetter,
            ));
        }
    }
    out.push(metric(
        "rules/samples_differ".into(),
        samples.iter().filter(|s| s.1 != s.2).count() as f64,
        "count",
        Direction::Neutral,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(problem: usize, difficulty: &str, passed: bool) -> SampleFacts {
        SampleFacts {
            problem,
            difficulty: difficulty.into(),
            passed,
            finished: passed,
            thinks: problem == 0,
            code_block: true,
            response_tokens: 10 * (problem + 1),
        }
    }

    #[test]
    fn pass_at_k_by_difficulty_and_rates() {
        // Problem 0 (EASY): 2 of 4 pass; problem 1 (HARD): 0 of 4.
        let mut s = Vec::new();
        for i in 0..4 {
            s.push(fact(0, "EASY", i < 2));
            s.push(fact(1, "HARD", false));
        }
        let m = compute(&s, &[1, 2, 5]);
        let get = |name: &str| m.iter().find(|x| x.name.as_str() == name).map(|x| x.value);
        // pass@1 = mean(2/4, 0/4); pass@2 for problem 0 = 1 - C(2,2)/C(4,2) = 5/6.
        assert_eq!(get("pass@1"), Some(0.25));
        assert!((get("pass@2").unwrap() - 5.0 / 12.0).abs() < 1e-12);
        assert_eq!(get("pass@5"), None, "k > n is undefined and left out");
        assert_eq!(get("pass@1/EASY"), Some(0.5));
        assert_eq!(get("pass@1/HARD"), Some(0.0));
        assert_eq!(get("completion_rate"), Some(0.25));
        assert_eq!(get("think_rate"), Some(0.5));
        assert_eq!(get("code_block_rate"), Some(1.0));
        assert_eq!(get("mean_response_tokens"), Some(15.0));
        let p = m.iter().find(|x| x.name.as_str() == "pass@1").unwrap();
        // Problem 0: 1 of 2 under `a`, 2 of 2 under `b`; problem 1: 0 and 0.
        let r = rules_metrics(
            "a",
            "b",
            &[(0, true, true), (0, false, true), (1, false, false)],
        );
        let get = |name: &str| r.iter().find(|x| x.name.as_str() == name).map(|x| x.value);
        assert_eq!(get("rules/a/pass@1"), Some(0.25));
        assert_eq!(get("rules/b/pass@1"), Some(0.5));
        assert_eq!(get("rules/samples_differ"), Some(1.0));
        assert!(rules_metrics("a", "b", &[]).is_empty());
        assert_eq!(p.direction, Direction::HigherIsBetter);
        assert_eq!(p.unit.as_str(), "fraction");
    }
}
