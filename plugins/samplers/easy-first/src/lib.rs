//! The `easy-first` sampler: a curriculum that trains on the easiest records first.
//!
//! It fills the `order` stage and returns every input index exactly once, in ascending
//! [`Candidate::difficulty_rank`]. The config has one field, `mode`:
//!
//! - `"shuffle-ties"` (default): sorted by rank; records of equal rank come in a seeded random
//!   order. The pool is shuffled with [`SeedRng::derive`]`(seed, "easy-first")` and then stably
//!   sorted by rank ([`f64::total_cmp`]), so the tie order is the shuffle's.
//! - `"buckets"`: records are grouped by difficulty *label*; the groups are ordered by their
//!   minimum rank (ties by label), and each group is shuffled with the seed. Every label stays
//!   contiguous even when two labels share a rank.
//!
//! The summary is a histogram of labels in output order:
//! `{"mode": "shuffle-ties", "levels": [{"label": "EASY", "count": 3}, ...]}`.

use valley_plugin_api::{
    curriculum::{label_histogram, order_by_difficulty},
    prelude::*,
    serde_json,
};

/// The salt of this sampler's random stream; part of the golden order, never change it.
const SALT: &str = "easy-first";

/// How records of equal difficulty are arranged.
pub use valley_plugin_api::curriculum::TieMode as Mode;

/// The configuration; every field has a default, unknown fields are rejected.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How ties are arranged.
    pub mode: Mode,
}

/// Orders the pool from easy to hard.
#[derive(Debug)]
pub struct EasyFirst {
    mode: Mode,
}

impl SamplerPlugin for EasyFirst {
    type Config = Config;
    const NAME: &'static str = "easy-first";
    const DESCRIPTION: &'static str =
        "Curriculum: easiest records first (ascending difficulty rank), ties in seeded order.";
    const ROLES: &'static [SamplerRole] = &[SamplerRole::Order];

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self { mode: config.mode })
    }

    fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        _host: &Host<'_>,
    ) -> Result<Selection, PluginError> {
        let mut rng = SeedRng::derive(ctx.seed, SALT);
        let positions = order_by_difficulty(pool, &mut rng, self.mode, false);
        let indices: Vec<u64> = positions.iter().map(|&p| pool[p].index).collect();
        let summary = serde_json::json!({
            "mode": self.mode.as_str(),
            "levels": label_histogram(positions.iter().map(|&p| pool[p].difficulty.as_str())),
        });
        Ok(Selection::new(indices).with_summary(summary))
    }
}

valley_plugin_api::export_sampler!(EasyFirst);

#[cfg(test)]
mod tests {
    use super::*;
    use valley_plugin_api::host::RecordingHost;

    use valley_plugin_api::testing::mixed_pool;

    /// The shared test pool (`valley_plugin_api::testing::mixed_pool`): indices are not positions,
    /// difficulties are mixed along the pool.
    fn pool(n: u64) -> Vec<Candidate> {
        mixed_pool(n)
    }

    fn ctx(seed: u64) -> SampleContext {
        SampleContext {
            seed,
            target_size: 0,
            arm: "a".into(),
            stage: "order".into(),
        }
    }

    fn run(mode: Mode, pool: &[Candidate], seed: u64) -> Selection {
        let rec = RecordingHost::default();
        let selection = EasyFirst::new(Config { mode })
            .unwrap()
            .select(pool, &ctx(seed), &rec.host())
            .unwrap();
        selection
    }

    fn order(mode: Mode, pool: &[Candidate], seed: u64) -> Vec<u64> {
        run(mode, pool, seed).indices.into_vec()
    }

    /// The candidates of `indices`, looked up by `Candidate::index`.
    fn lookup<'a>(pool: &'a [Candidate], indices: &[u64]) -> Vec<&'a Candidate> {
        indices
            .iter()
            .map(|&i| pool.iter().find(|c| c.index == i).unwrap())
            .collect()
    }

    #[test]
    fn same_seed_same_order_and_different_seed_different_order() {
        let pool = pool(60);
        for mode in [Mode::ShuffleTies, Mode::Buckets] {
            assert_eq!(order(mode, &pool, 7), order(mode, &pool, 7), "{mode:?}");
            assert_ne!(order(mode, &pool, 7), order(mode, &pool, 8), "{mode:?}");
        }
    }

    #[test]
    fn output_is_a_permutation_of_the_input() {
        let pool = pool(60);
        let mut input: Vec<u64> = pool.iter().map(|c| c.index).collect();
        input.sort_unstable();
        for mode in [Mode::ShuffleTies, Mode::Buckets] {
            let mut out = order(mode, &pool, 3);
            out.sort_unstable();
            assert_eq!(out, input, "{mode:?}");
        }
    }

    #[test]
    fn ranks_are_non_decreasing_in_both_modes() {
        let pool = pool(60);
        for mode in [Mode::ShuffleTies, Mode::Buckets] {
            let ranks: Vec<f64> = lookup(&pool, &order(mode, &pool, 11))
                .iter()
                .map(|c| c.difficulty_rank)
                .collect();
            assert!(
                ranks.windows(2).all(|w| w[0] <= w[1]),
                "{mode:?}: {ranks:?}"
            );
            assert_eq!(ranks[0], 0.0);
            assert_eq!(ranks[59], 4.0);
        }
    }

    #[test]
    fn ties_are_shuffled_not_left_in_input_order() {
        let pool = pool(60);
        for mode in [Mode::ShuffleTies, Mode::Buckets] {
            let out = order(mode, &pool, 5);
            let easy: Vec<u64> = lookup(&pool, &out)
                .iter()
                .filter(|c| c.difficulty.as_str() == "EASY")
                .map(|c| c.index)
                .collect();
            let mut sorted = easy.clone();
            sorted.sort_unstable();
            assert_eq!(easy.len(), 12);
            assert_ne!(easy, sorted, "{mode:?}: EASY ties kept input order");
        }
    }

    /// Two labels with the same rank: `shuffle-ties` may interleave them, `buckets` must not.
    #[test]
    fn buckets_keep_each_label_contiguous_even_when_labels_share_a_rank() {
        let mut pool = pool(60);
        for c in pool.iter_mut() {
            if c.difficulty.as_str() == "MEDIUM_HARD" {
                c.difficulty_rank = 1.0; // same rank as MEDIUM
            }
        }
        let labels = |mode| -> Vec<String> {
            lookup(&pool, &order(mode, &pool, 9))
                .iter()
                .map(|c| c.difficulty.to_string())
                .collect()
        };
        let contiguous = |labels: &[String]| {
            let mut runs: Vec<&String> = Vec::new();
            for l in labels {
                if runs.last() != Some(&l) {
                    runs.push(l);
                }
            }
            runs.len()
        };
        let buckets = labels(Mode::Buckets);
        assert_eq!(contiguous(&buckets), 5, "{buckets:?}");
        // Equal minimum ranks break by label: MEDIUM < MEDIUM_HARD.
        let first_medium = buckets.iter().position(|l| l == "MEDIUM").unwrap();
        let first_medium_hard = buckets.iter().position(|l| l == "MEDIUM_HARD").unwrap();
        assert!(first_medium < first_medium_hard);
        let ties = labels(Mode::ShuffleTies);
        assert!(
            contiguous(&ties) > 5,
            "shuffle-ties should interleave: {ties:?}"
        );
    }

    #[test]
    fn buckets_order_groups_by_minimum_rank() {
        // One "MIXED" label spanning ranks 0.5 and 9: its minimum puts it second.
        let mut pool = pool(20);
        pool[3].difficulty = "MIXED".into();
        pool[3].difficulty_rank = 9.0;
        pool[4].difficulty = "MIXED".into();
        pool[4].difficulty_rank = 0.5;
        let labels: Vec<String> = lookup(&pool, &order(Mode::Buckets, &pool, 1))
            .iter()
            .map(|c| c.difficulty.to_string())
            .collect();
        let mut runs: Vec<String> = labels.clone();
        runs.dedup();
        assert_eq!(
            runs,
            [
                "EASY",
                "MIXED",
                "MEDIUM",
                "MEDIUM_HARD",
                "HARD",
                "VERY_HARD"
            ],
            "{labels:?}"
        );
    }

    #[test]
    fn summary_is_a_label_histogram_in_output_order() {
        let pool = pool(20);
        let selection = run(Mode::Buckets, &pool, 42);
        let summary: serde_json::Value = serde_json::from_str(&selection.summary_json).unwrap();
        assert_eq!(
            summary,
            serde_json::json!({
                "mode": "buckets",
                "levels": [
                    {"label": "EASY", "count": 4},
                    {"label": "MEDIUM", "count": 4},
                    {"label": "MEDIUM_HARD", "count": 4},
                    {"label": "HARD", "count": 4},
                    {"label": "VERY_HARD", "count": 4},
                ],
            })
        );
    }

    #[test]
    fn config_parses_modes_and_rejects_bad_ones() {
        assert_eq!(EasyFirst::from_json("{}").unwrap().mode, Mode::ShuffleTies);
        assert_eq!(
            EasyFirst::from_json(r#"{"mode": "buckets"}"#).unwrap().mode,
            Mode::Buckets
        );
        let err = EasyFirst::from_json(r#"{"mode": "sorted"}"#).unwrap_err();
        assert!(matches!(err, PluginError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("field `mode`"), "{err}");
        let err = EasyFirst::from_json(r#"{"mdoe": "buckets"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `mdoe`"), "{err}");
    }

    #[test]
    fn golden_order() {
        let pool = pool(20);
        insta::assert_json_snapshot!("golden_order", order(Mode::ShuffleTies, &pool, 42));
        insta::assert_json_snapshot!("golden_order_buckets", order(Mode::Buckets, &pool, 42));
    }
}
