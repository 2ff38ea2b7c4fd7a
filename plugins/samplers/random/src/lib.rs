//! The `random` sampler: trains on its whole input in a seeded random order.
//!
//! It fills the `order` stage and is the baseline every curriculum is compared against. The order
//! is a Fisher–Yates shuffle driven by [`SeedRng::derive`]`(seed, "random")`, so a cell's seed
//! fixes it forever and another sampler given the same seed draws a different stream. Every input
//! index comes back exactly once. It takes no configuration (`{}`); unknown fields are an error.

use valley_plugin_api::prelude::*;

/// The configuration: none. Unknown fields are rejected so that a typo is not ignored.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// Shuffles the pool with the cell's seed.
#[derive(Debug)]
pub struct Random;

impl SamplerPlugin for Random {
    type Config = Config;
    const NAME: &'static str = "random";
    const DESCRIPTION: &'static str = "Trains on the whole pool in a seeded random order.";
    const ROLES: &'static [SamplerRole] = &[SamplerRole::Order];

    fn new(_config: Config) -> Result<Self, PluginError> {
        Ok(Random)
    }

    fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        _host: &Host<'_>,
    ) -> Result<Selection, PluginError> {
        let mut indices: Vec<u64> = pool.iter().map(|c| c.index).collect();
        SeedRng::derive(ctx.seed, "random").shuffle(&mut indices);
        Ok(Selection::new(indices))
    }
}

valley_plugin_api::export_sampler!(Random);

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

    fn order(pool: &[Candidate], seed: u64) -> Vec<u64> {
        let rec = RecordingHost::default();
        let selection = Random::new(Config::default())
            .unwrap()
            .select(pool, &ctx(seed), &rec.host())
            .unwrap();
        selection.indices.into_vec()
    }

    #[test]
    fn same_seed_same_order_and_different_seed_different_order() {
        let pool = pool(60);
        assert_eq!(order(&pool, 7), order(&pool, 7));
        assert_ne!(order(&pool, 7), order(&pool, 8));
    }

    #[test]
    fn output_is_a_permutation_of_the_input_and_not_the_identity() {
        let pool = pool(60);
        let out = order(&pool, 3);
        let input: Vec<u64> = pool.iter().map(|c| c.index).collect();
        assert_ne!(
            out, input,
            "a shuffle of 60 records left them in input order"
        );
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, input);
    }

    #[test]
    fn empty_pool_gives_empty_order() {
        assert!(order(&[], 1).is_empty());
    }

    #[test]
    fn config_rejects_unknown_fields() {
        assert!(Random::from_json("{}").is_ok());
        assert!(Random::from_json("").is_ok());
        let err = Random::from_json(r#"{"seed": 3}"#).unwrap_err();
        assert!(matches!(err, PluginError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("unknown field `seed`"), "{err}");
    }

    #[test]
    fn golden_order() {
        insta::assert_json_snapshot!("golden_order", order(&pool(20), 42));
    }
}
