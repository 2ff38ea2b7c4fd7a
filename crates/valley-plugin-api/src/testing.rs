//! Helpers for plugin authors' unit tests: a deterministic candidate pool and a one-call way to
//! run a sampler in-process with a recording host.

use abi_stable::std_types::{ROption, RString, RVec};

use crate::{host::RecordingHost, Candidate, PluginError, SampleContext, SamplerPlugin, Selection};

/// TACO's difficulty labels; label `TACO_LABELS[r]` has rank `r` in [`mixed_pool`].
pub const TACO_LABELS: [&str; 5] = ["EASY", "MEDIUM", "MEDIUM_HARD", "HARD", "VERY_HARD"];

/// `n` unlabeled candidates whose indices are not their positions (`100 + i`) and whose
/// difficulties are mixed along the pool (level `(3i + i/5) mod 5`). The shipped samplers' golden
/// orders are snapshots over this pool: changing it changes them.
pub fn mixed_pool(n: u64) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let level = ((i * 3 + i / 5) % 5) as usize;
            Candidate {
                index: 100 + i,
                id: RString::from(format!("rec-{i}")),
                difficulty: TACO_LABELS[level].into(),
                difficulty_rank: level as f64,
                correct: ROption::RNone,
                token_count: 50 + i,
                source: "test".into(),
                tags: RVec::new(),
            }
        })
        .collect()
}

/// Runs `plugin` on `pool` with a fresh [`RecordingHost`].
///
/// # Errors
/// Whatever the sampler returns.
pub fn select_with<P: SamplerPlugin>(
    plugin: &P,
    pool: &[Candidate],
    ctx: &SampleContext,
) -> Result<Selection, PluginError> {
    let rec = RecordingHost::default();
    let result = plugin.select(pool, ctx, &rec.host());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Host, SamplerRole};

    struct Reverse;

    impl SamplerPlugin for Reverse {
        type Config = ();
        const NAME: &'static str = "reverse";
        const DESCRIPTION: &'static str = "test";
        const ROLES: &'static [SamplerRole] = &[SamplerRole::Order];
        fn new((): ()) -> Result<Self, PluginError> {
            Ok(Reverse)
        }
        fn select(
            &self,
            pool: &[Candidate],
            _: &SampleContext,
            _: &Host<'_>,
        ) -> Result<Selection, PluginError> {
            Ok(Selection::new(pool.iter().rev().map(|c| c.index).collect()))
        }
    }

    #[test]
    fn mixed_pool_mixes_levels_and_select_with_runs_a_sampler() {
        let pool = mixed_pool(10);
        let ranks: Vec<f64> = pool.iter().map(|c| c.difficulty_rank).collect();
        assert_eq!(ranks, [0.0, 3.0, 1.0, 4.0, 2.0, 1.0, 4.0, 2.0, 0.0, 3.0]);
        assert_eq!(pool[3].difficulty.as_str(), "VERY_HARD");
        let ctx = SampleContext {
            seed: 1,
            target_size: 10,
            arm: "a".into(),
            stage: "order".into(),
        };
        let out = select_with(&Reverse, &pool, &ctx).unwrap();
        assert_eq!(out.indices.first(), Some(&109));
    }
}
