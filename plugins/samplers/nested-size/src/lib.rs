//! The `nested-size` sampler: takes the cell's data size out of the pool so that smaller sizes
//! are subsets of larger ones (the paper's 1K ⊂ 10K ⊂ 30K).
//!
//! It fills the `subset` stage. For a seed it builds ONE permutation of the pool and returns its
//! first `target_size` records, in permutation order. The permutation depends only on the seed
//! and the *set* of records, not on their input order nor on the size asked for: the pool is
//! sorted by [`Candidate::index`] first, then shuffled with
//! [`SeedRng::derive`]`(seed, "nested-size")`. Hence, for one seed, the size-n selection is a
//! prefix of the size-m selection whenever n < m, so a scaling curve over sizes measures more
//! data, not different data.
//!
//! A size larger than the pool is an error (nothing is padded or repeated), and so is a pool with
//! a repeated index, which would break the set semantics. It takes no configuration (`{}`).
//! The summary is `{"taken": n, "pool": m}`.

use valley_plugin_api::{prelude::*, serde_json};

/// The salt of this sampler's random stream; part of the golden order, never change it.
const SALT: &str = "nested-size";

/// The configuration: none. Unknown fields are rejected so that a typo is not ignored.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// Takes nested subsets: each size is a prefix of one seeded permutation of the pool.
#[derive(Debug)]
pub struct NestedSize;

impl SamplerPlugin for NestedSize {
    type Config = Config;
    const NAME: &'static str = "nested-size";
    const DESCRIPTION: &'static str =
        "Takes the cell's size as a prefix of one seeded permutation: smaller sizes nest.";
    const ROLES: &'static [SamplerRole] = &[SamplerRole::Subset];

    fn new(_config: Config) -> Result<Self, PluginError> {
        Ok(NestedSize)
    }

    fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        _host: &Host<'_>,
    ) -> Result<Selection, PluginError> {
        if ctx.target_size > pool.len() as u64 {
            return Err(PluginError::invalid_input(format!(
                "size {} exceeds the pool of {} records after filters",
                ctx.target_size,
                pool.len()
            )));
        }
        // Canonical order first, so that the input order cannot change the permutation.
        let mut indices: Vec<u64> = pool.iter().map(|c| c.index).collect();
        indices.sort_unstable();
        if let Some(w) = indices.windows(2).find(|w| w[0] == w[1]) {
            return Err(PluginError::invalid_input(format!(
                "index {} appears more than once in the pool",
                w[0]
            )));
        }
        // The whole pool is shuffled whatever the size, so every size reads the same permutation.
        SeedRng::derive(ctx.seed, SALT).shuffle(&mut indices);
        // Fits in usize: it is at most pool.len().
        indices.truncate(ctx.target_size as usize);
        let summary = serde_json::json!({"taken": indices.len(), "pool": pool.len()});
        Ok(Selection::new(indices).with_summary(summary))
    }
}

valley_plugin_api::export_sampler!(NestedSize);

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

    fn ctx(seed: u64, target_size: u64) -> SampleContext {
        SampleContext {
            seed,
            target_size,
            arm: "a".into(),
            stage: "subset".into(),
        }
    }

    fn try_take(pool: &[Candidate], seed: u64, size: u64) -> Result<Vec<u64>, PluginError> {
        let rec = RecordingHost::default();
        let selection =
            NestedSize::new(Config::default())?.select(pool, &ctx(seed, size), &rec.host());
        Ok(selection?.indices.into_vec())
    }

    fn take(pool: &[Candidate], seed: u64, size: u64) -> Vec<u64> {
        try_take(pool, seed, size).unwrap()
    }

    #[test]
    fn same_seed_same_subset_and_different_seed_different_subset() {
        let pool = pool(60);
        assert_eq!(take(&pool, 7, 30), take(&pool, 7, 30));
        assert_ne!(take(&pool, 7, 30), take(&pool, 8, 30));
        // Different as sets too, not only in order.
        let mut a = take(&pool, 7, 30);
        let mut b = take(&pool, 8, 30);
        a.sort_unstable();
        b.sort_unstable();
        assert_ne!(a, b);
    }

    #[test]
    fn takes_exactly_the_size_without_repeats_from_the_pool() {
        let pool = pool(60);
        let out = take(&pool, 3, 25);
        assert_eq!(out.len(), 25);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 25);
        assert!(sorted.iter().all(|i| (100..160).contains(i)));
        // The whole pool is a permutation of it.
        let mut all = take(&pool, 3, 60);
        all.sort_unstable();
        assert_eq!(all, (100..160).collect::<Vec<_>>());
    }

    #[test]
    fn every_smaller_size_is_a_prefix_of_every_larger_size() {
        let pool = pool(40);
        for seed in [0, 42] {
            let outs: Vec<Vec<u64>> = (0..=40).map(|n| take(&pool, seed, n)).collect();
            for (n, small) in outs.iter().enumerate() {
                assert_eq!(small.len(), n);
                for large in &outs[n + 1..] {
                    assert_eq!(&large[..n], small.as_slice(), "seed {seed}, size {n}");
                }
            }
        }
    }

    #[test]
    fn input_order_does_not_matter() {
        let pool = pool(40);
        let mut reversed = pool.clone();
        reversed.reverse();
        let mut scrambled = pool.clone();
        SeedRng::new(99).shuffle(&mut scrambled);
        for size in [0, 1, 17, 40] {
            let expected = take(&pool, 5, size);
            assert_eq!(take(&reversed, 5, size), expected, "size {size}");
            assert_eq!(take(&scrambled, 5, size), expected, "size {size}");
        }
    }

    #[test]
    fn size_larger_than_the_pool_is_an_error() {
        let pool = pool(40);
        let err = try_take(&pool, 1, 41).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("size 41 exceeds the pool of 40 records after filters"),
            "{err}"
        );
        assert!(try_take(&[], 1, 1).is_err());
        assert_eq!(try_take(&[], 1, 0), Ok(vec![]));
    }

    #[test]
    fn repeated_index_is_an_error() {
        let mut pool = pool(10);
        pool[7].index = pool[2].index;
        let err = try_take(&pool, 1, 5).unwrap_err();
        assert!(
            err.to_string().contains("index 102 appears more than once"),
            "{err}"
        );
    }

    #[test]
    fn config_rejects_unknown_fields() {
        assert!(NestedSize::from_json("{}").is_ok());
        let err = NestedSize::from_json(r#"{"size": 10}"#).unwrap_err();
        assert!(matches!(err, PluginError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("unknown field `size`"), "{err}");
    }

    #[test]
    fn golden_order() {
        let pool = pool(20);
        insta::assert_json_snapshot!("golden_order", take(&pool, 42, 10));
        insta::assert_json_snapshot!("golden_order_full", take(&pool, 42, 20));
    }
}
