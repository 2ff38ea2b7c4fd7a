//! The `correctness` sampler: keeps records by whether the teacher's answer passed its tests.
//!
//! It fills the `filter` stage and keeps the input order. The config has two fields:
//!
//! - `keep` (required): `"correct"`, `"incorrect"` or `"all"` — which labeled records to keep.
//!   There is no default, because which one an arm trains on is the point of the experiment.
//! - `unlabeled`: what to do with records whose [`Candidate::correct`] is `None`: `"error"`
//!   (default) fails the call, naming the first unlabeled record and how many there are;
//!   `"drop"` drops them; `"keep"` keeps them. `"error"` applies with `keep = "all"` too, so an
//!   arm never trains on records it did not know were unlabeled.
//!
//! Nothing is dropped silently; the summary counts every outcome:
//! `{"kept": 40, "dropped_correct": 0, "dropped_incorrect": 10, "dropped_unlabeled": 0,
//! "kept_unlabeled": 0}`. The seed is not used.

use valley_plugin_api::{prelude::*, serde_json};

/// Which labeled records to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// Records whose answer passed its tests.
    Correct,
    /// Records whose answer failed its tests.
    Incorrect,
    /// Every labeled record.
    All,
}

/// What to do with records that have no correctness label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlabeled {
    /// Fail the call; the safe default.
    #[default]
    Error,
    /// Drop them (counted in the summary).
    Drop,
    /// Keep them (counted in the summary).
    Keep,
}

/// The configuration. `keep` has no serde default on purpose: a missing `keep` is an error.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which labeled records to keep.
    pub keep: Keep,
    /// What to do with unlabeled records.
    #[serde(default)]
    pub unlabeled: Unlabeled,
}

/// Only for the trait bound and [`SamplerPlugin::example_config`]; parsing never uses it.
impl Default for Config {
    fn default() -> Self {
        Self {
            keep: Keep::Correct,
            unlabeled: Unlabeled::Error,
        }
    }
}

/// Keeps records by their correctness label.
#[derive(Debug)]
pub struct Correctness {
    config: Config,
}

impl SamplerPlugin for Correctness {
    type Config = Config;
    const NAME: &'static str = "correctness";
    const DESCRIPTION: &'static str =
        "Keeps records whose teacher answer is correct, incorrect, or either; keeps input order.";
    const ROLES: &'static [SamplerRole] = &[SamplerRole::Filter];

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self { config })
    }

    fn select(
        &self,
        pool: &[Candidate],
        _ctx: &SampleContext,
        _host: &Host<'_>,
    ) -> Result<Selection, PluginError> {
        let Config { keep, unlabeled } = self.config;
        if unlabeled == Unlabeled::Error {
            let mut missing = pool.iter().filter(|c| c.correct().is_none());
            if let Some(first) = missing.next() {
                let count = 1 + missing.count();
                return Err(PluginError::invalid_input(format!(
                    "{count} of {} records have no correctness label, the first is `{}` \
                     (index {}); set `unlabeled = \"drop\"` or `unlabeled = \"keep\"` in the \
                     correctness sampler's config",
                    pool.len(),
                    first.id,
                    first.index,
                )));
            }
        }

        let mut indices = Vec::with_capacity(pool.len());
        let (mut dropped_correct, mut dropped_incorrect) = (0u64, 0u64);
        let (mut dropped_unlabeled, mut kept_unlabeled) = (0u64, 0u64);
        for c in pool {
            let kept = match (c.correct(), keep, unlabeled) {
                (Some(true), Keep::Correct | Keep::All, _)
                | (Some(false), Keep::Incorrect | Keep::All, _) => true,
                (Some(true), Keep::Incorrect, _) => {
                    dropped_correct += 1;
                    false
                }
                (Some(false), Keep::Correct, _) => {
                    dropped_incorrect += 1;
                    false
                }
                (None, _, Unlabeled::Keep) => {
                    kept_unlabeled += 1;
                    true
                }
                // `Error` was handled above; counting keeps it honest if that ever changes.
                (None, _, Unlabeled::Drop | Unlabeled::Error) => {
                    dropped_unlabeled += 1;
                    false
                }
            };
            if kept {
                indices.push(c.index);
            }
        }
        let summary = serde_json::json!({
            "kept": indices.len(),
            "dropped_correct": dropped_correct,
            "dropped_incorrect": dropped_incorrect,
            "dropped_unlabeled": dropped_unlabeled,
            "kept_unlabeled": kept_unlabeled,
        });
        Ok(Selection::new(indices).with_summary(summary))
    }

    fn example_config() -> Config {
        Config {
            keep: Keep::Correct,
            unlabeled: Unlabeled::Error,
        }
    }
}

valley_plugin_api::export_sampler!(Correctness);

#[cfg(test)]
mod tests {
    use super::*;
    use valley_plugin_api::abi_stable::std_types::ROption;
    use valley_plugin_api::host::RecordingHost;

    use valley_plugin_api::testing::mixed_pool;

    /// `n` candidates with mixed difficulties; `correct` cycles unlabeled, false, true when
    /// `unlabeled` is set, else true, false.
    fn pool(n: u64, unlabeled: bool) -> Vec<Candidate> {
        let mut pool = mixed_pool(n);
        for (i, c) in (0u64..).zip(pool.iter_mut()) {
            c.correct = match (unlabeled, i % 3, i % 2) {
                (true, 0, _) => ROption::RNone,
                (true, 1, _) | (false, _, 1) => ROption::RSome(false),
                _ => ROption::RSome(true),
            };
        }
        pool
    }

    fn ctx(seed: u64) -> SampleContext {
        SampleContext {
            seed,
            target_size: 0,
            arm: "a".into(),
            stage: "filter".into(),
        }
    }

    fn try_run(json: &str, pool: &[Candidate], seed: u64) -> Result<Selection, PluginError> {
        let rec = RecordingHost::default();
        let result = Correctness::from_json(json)?.select(pool, &ctx(seed), &rec.host());
        result
    }

    fn run(json: &str, pool: &[Candidate]) -> Selection {
        try_run(json, pool, 1).unwrap()
    }

    fn summary(selection: &Selection) -> serde_json::Value {
        serde_json::from_str(&selection.summary_json).unwrap()
    }

    /// The `correct` values of the selected candidates.
    fn kept_labels(selection: &Selection, pool: &[Candidate]) -> Vec<Option<bool>> {
        selection
            .indices
            .iter()
            .map(|&i| pool.iter().find(|c| c.index == i).unwrap().correct())
            .collect()
    }

    /// Whether `out` is a subsequence of the pool's indices (a subset in input order).
    fn is_ordered_subset(out: &[u64], pool: &[Candidate]) -> bool {
        let mut rest = pool.iter().map(|c| c.index);
        out.iter().all(|i| rest.any(|j| j == *i))
    }

    #[test]
    fn output_does_not_depend_on_the_seed() {
        // A filter is a pure function of the pool: same seed or not, same output.
        let pool = pool(60, true);
        let cfg = r#"{"keep": "correct", "unlabeled": "keep"}"#;
        assert_eq!(try_run(cfg, &pool, 7), try_run(cfg, &pool, 7));
        assert_eq!(try_run(cfg, &pool, 7), try_run(cfg, &pool, 8));
    }

    #[test]
    fn keep_correct_and_keep_incorrect_never_keep_the_other_value() {
        let pool = pool(60, false);
        let correct = run(r#"{"keep": "correct"}"#, &pool);
        assert_eq!(kept_labels(&correct, &pool), vec![Some(true); 30]);
        assert!(is_ordered_subset(&correct.indices, &pool));
        assert_eq!(summary(&correct)["dropped_incorrect"], 30);
        assert_eq!(summary(&correct)["dropped_correct"], 0);

        let incorrect = run(r#"{"keep": "incorrect"}"#, &pool);
        assert_eq!(kept_labels(&incorrect, &pool), vec![Some(false); 30]);
        assert!(is_ordered_subset(&incorrect.indices, &pool));
        assert_eq!(summary(&incorrect)["dropped_correct"], 30);

        let all = run(r#"{"keep": "all"}"#, &pool);
        let every: Vec<u64> = pool.iter().map(|c| c.index).collect();
        assert_eq!(all.indices.as_slice(), every.as_slice());
    }

    #[test]
    fn unlabeled_error_names_the_first_unlabeled_record_and_the_count() {
        let mut mixed = pool(60, true);
        mixed.rotate_left(1); // the first unlabeled record is now rec-3, rec-0 went last
        for keep in ["correct", "incorrect", "all"] {
            let json = format!(r#"{{"keep": "{keep}"}}"#);
            let err = try_run(&json, &mixed, 1).unwrap_err();
            assert!(matches!(err, PluginError::InvalidInput { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains("`rec-3`"), "{msg}");
            assert!(msg.contains("20 of 60 records"), "{msg}");
            assert!(msg.contains(r#"unlabeled = "drop""#), "{msg}");
            assert!(msg.contains(r#"unlabeled = "keep""#), "{msg}");
        }
        // A fully labeled pool passes with the default.
        assert!(try_run(r#"{"keep": "all"}"#, &pool(60, false), 1).is_ok());
    }

    #[test]
    fn unlabeled_drop_drops_and_counts_them() {
        let pool = pool(60, true);
        let sel = run(r#"{"keep": "correct", "unlabeled": "drop"}"#, &pool);
        assert_eq!(kept_labels(&sel, &pool), vec![Some(true); 20]);
        assert_eq!(
            summary(&sel),
            serde_json::json!({
                "kept": 20,
                "dropped_correct": 0,
                "dropped_incorrect": 20,
                "dropped_unlabeled": 20,
                "kept_unlabeled": 0,
            })
        );
    }

    #[test]
    fn unlabeled_keep_keeps_and_counts_them_in_input_order() {
        let pool = pool(60, true);
        let sel = run(r#"{"keep": "incorrect", "unlabeled": "keep"}"#, &pool);
        let labels = kept_labels(&sel, &pool);
        assert_eq!(labels.len(), 40);
        assert!(labels.iter().all(|c| *c != Some(true)));
        assert_eq!(labels.iter().filter(|c| c.is_none()).count(), 20);
        assert!(is_ordered_subset(&sel.indices, &pool));
        assert_eq!(
            summary(&sel),
            serde_json::json!({
                "kept": 40,
                "dropped_correct": 20,
                "dropped_incorrect": 0,
                "dropped_unlabeled": 0,
                "kept_unlabeled": 20,
            })
        );
    }

    #[test]
    fn config_errors() {
        let config_err = |json: &str| match Correctness::from_json(json) {
            Err(e @ PluginError::InvalidConfig { .. }) => e.to_string(),
            other => panic!("{json}: expected InvalidConfig, got {other:?}"),
        };
        assert!(config_err("{}").contains("missing field `keep`"));
        assert!(config_err(r#"{"keep": "right"}"#).contains("field `keep`"));
        assert!(config_err(r#"{"keep": "Correct"}"#).contains("field `keep`"));
        assert!(
            config_err(r#"{"keep": "all", "unlabeled": "ignore"}"#).contains("field `unlabeled`")
        );
        let err = config_err(r#"{"keep": "all", "labels": true}"#);
        assert!(err.contains("unknown field `labels`"), "{err}");
    }

    #[test]
    fn example_config_is_valid_and_explicit() {
        let json = serde_json::to_string(&Correctness::example_config()).unwrap();
        assert_eq!(json, r#"{"keep":"correct","unlabeled":"error"}"#);
        assert!(Correctness::from_json(&json).is_ok());
    }

    #[test]
    fn golden_order() {
        let pool = pool(20, true);
        let sel = run(r#"{"keep": "correct", "unlabeled": "keep"}"#, &pool);
        insta::assert_json_snapshot!("golden_order", sel.indices.into_vec());
    }
}
