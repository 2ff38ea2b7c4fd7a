//! The `difficulty-band` sampler: keeps only records inside a band of difficulty.
//!
//! It fills the `filter` stage and keeps the input order. The config has three optional criteria,
//! and a record is kept only if it passes every criterion given:
//!
//! - `labels`: a list of difficulty labels; the record's label must be one of them (exact,
//!   case-sensitive match, so `"easy"` does not match TACO's `EASY`);
//! - `min_rank`, `max_rank`: inclusive bounds on [`Candidate::difficulty_rank`].
//!
//! A config that sets none of them, an empty `labels` list, or `min_rank > max_rank` is rejected
//! when the sampler is built: each would otherwise silently keep everything or nothing. The seed
//! is not used; the same pool always gives the same output.
//!
//! The summary counts what was dropped and why:
//! `{"kept": 30, "dropped": 20, "dropped_by_label": {"HARD": 10, "VERY_HARD": 10}}`.

use std::collections::BTreeMap;

use valley_plugin_api::{prelude::*, serde_json};

/// The configuration; at least one field must be set.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Labels to keep (exact, case-sensitive); `None` means any label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Lowest rank kept (inclusive); `None` means no lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rank: Option<f64>,
    /// Highest rank kept (inclusive); `None` means no upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rank: Option<f64>,
}

/// Keeps records whose label and rank fall inside the configured band.
#[derive(Debug)]
pub struct DifficultyBand {
    labels: Option<Vec<String>>,
    min_rank: Option<f64>,
    max_rank: Option<f64>,
}

impl DifficultyBand {
    fn keeps(&self, c: &Candidate) -> bool {
        let rank = c.difficulty_rank;
        // A NaN rank fails both comparisons, so a bounded band never keeps it.
        self.labels
            .as_ref()
            .is_none_or(|labels| labels.iter().any(|l| l == c.difficulty.as_str()))
            && self.min_rank.is_none_or(|min| rank >= min)
            && self.max_rank.is_none_or(|max| rank <= max)
    }
}

impl SamplerPlugin for DifficultyBand {
    type Config = Config;
    const NAME: &'static str = "difficulty-band";
    const DESCRIPTION: &'static str =
        "Keeps records whose difficulty label and rank fall inside a band; keeps input order.";
    const ROLES: &'static [SamplerRole] = &[SamplerRole::Filter];

    fn new(config: Config) -> Result<Self, PluginError> {
        let Config {
            labels,
            min_rank,
            max_rank,
        } = config;
        if labels.is_none() && min_rank.is_none() && max_rank.is_none() {
            return Err(PluginError::invalid_config(
                "difficulty-band needs `labels`, `min_rank` or `max_rank`",
            ));
        }
        if labels.as_ref().is_some_and(Vec::is_empty) {
            return Err(PluginError::invalid_config(
                "difficulty-band: `labels` is empty, so it would keep nothing; \
                 list at least one label or leave `labels` out",
            ));
        }
        for (name, bound) in [("min_rank", min_rank), ("max_rank", max_rank)] {
            if bound.is_some_and(f64::is_nan) {
                return Err(PluginError::invalid_config(format!(
                    "difficulty-band: `{name}` is NaN"
                )));
            }
        }
        if let (Some(min), Some(max)) = (min_rank, max_rank) {
            if min > max {
                return Err(PluginError::invalid_config(format!(
                    "difficulty-band: `min_rank` ({min}) is greater than `max_rank` ({max}), \
                     so it would keep nothing"
                )));
            }
        }
        Ok(Self {
            labels,
            min_rank,
            max_rank,
        })
    }

    fn select(
        &self,
        pool: &[Candidate],
        _ctx: &SampleContext,
        _host: &Host<'_>,
    ) -> Result<Selection, PluginError> {
        let mut indices = Vec::with_capacity(pool.len());
        let mut dropped_by_label: BTreeMap<&str, u64> = BTreeMap::new();
        for c in pool {
            if self.keeps(c) {
                indices.push(c.index);
            } else {
                *dropped_by_label.entry(c.difficulty.as_str()).or_default() += 1;
            }
        }
        let summary = serde_json::json!({
            "kept": indices.len(),
            "dropped": pool.len() - indices.len(),
            "dropped_by_label": dropped_by_label,
        });
        Ok(Selection::new(indices).with_summary(summary))
    }

    fn example_config() -> Config {
        Config {
            labels: Some(vec!["EASY".into(), "MEDIUM".into()]),
            min_rank: None,
            max_rank: None,
        }
    }
}

valley_plugin_api::export_sampler!(DifficultyBand);

#[cfg(test)]
mod tests {
    use super::*;
    use valley_plugin_api::host::RecordingHost;

    use valley_plugin_api::testing::{mixed_pool, TACO_LABELS as LABELS};

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
            stage: "filter".into(),
        }
    }

    fn run(json: &str, pool: &[Candidate], seed: u64) -> Selection {
        let rec = RecordingHost::default();
        let selection = DifficultyBand::from_json(json)
            .unwrap()
            .select(pool, &ctx(seed), &rec.host())
            .unwrap();
        selection
    }

    fn kept(json: &str, pool: &[Candidate]) -> Vec<&'static str> {
        let out = run(json, pool, 1).indices.into_vec();
        out.iter()
            .map(|&i| {
                let c = pool.iter().find(|c| c.index == i).unwrap();
                LABELS[c.difficulty_rank as usize]
            })
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
        let pool = pool(60);
        let cfg = r#"{"labels": ["EASY", "HARD"], "max_rank": 2}"#;
        assert_eq!(run(cfg, &pool, 7), run(cfg, &pool, 7));
        assert_eq!(run(cfg, &pool, 7), run(cfg, &pool, 8));
    }

    #[test]
    fn keeps_only_listed_labels_in_input_order() {
        let pool = pool(60);
        let selection = run(r#"{"labels": ["EASY", "MEDIUM"]}"#, &pool, 1);
        let out = selection.indices.as_slice();
        assert_eq!(out.len(), 24);
        assert!(is_ordered_subset(out, &pool));
        let labels = kept(r#"{"labels": ["EASY", "MEDIUM"]}"#, &pool);
        assert!(labels.iter().all(|l| *l == "EASY" || *l == "MEDIUM"));
        // Every record of a kept label is kept, so nothing else was lost.
        let expected: Vec<u64> = pool
            .iter()
            .filter(|c| c.difficulty_rank <= 1.0)
            .map(|c| c.index)
            .collect();
        assert_eq!(out, expected.as_slice());
    }

    #[test]
    fn label_match_is_exact_and_case_sensitive() {
        let pool = pool(20);
        assert!(kept(r#"{"labels": ["easy", "HARD "]}"#, &pool).is_empty());
        // MEDIUM does not match MEDIUM_HARD by prefix.
        let labels = kept(r#"{"labels": ["MEDIUM"]}"#, &pool);
        assert_eq!(labels, vec!["MEDIUM"; 4]);
    }

    #[test]
    fn rank_bounds_are_inclusive() {
        let pool = pool(60);
        let labels = kept(r#"{"min_rank": 1, "max_rank": 3}"#, &pool);
        assert_eq!(labels.len(), 36);
        assert!(labels
            .iter()
            .all(|l| ["MEDIUM", "MEDIUM_HARD", "HARD"].contains(l)));
        assert_eq!(kept(r#"{"min_rank": 4}"#, &pool), vec!["VERY_HARD"; 12]);
        assert_eq!(kept(r#"{"max_rank": 0}"#, &pool), vec!["EASY"; 12]);
    }

    #[test]
    fn every_given_criterion_must_pass() {
        let pool = pool(60);
        // Labels allow EASY and HARD, the rank bound allows only up to MEDIUM_HARD.
        let labels = kept(r#"{"labels": ["EASY", "HARD"], "max_rank": 2}"#, &pool);
        assert_eq!(labels, vec!["EASY"; 12]);
    }

    #[test]
    fn nan_rank_is_dropped_by_any_rank_bound() {
        let mut pool = pool(10);
        pool[0].difficulty_rank = f64::NAN;
        let out = run(r#"{"min_rank": -1000}"#, &pool, 1).indices.into_vec();
        assert!(!out.contains(&100));
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn summary_counts_kept_and_dropped_by_label() {
        let pool = pool(20);
        let selection = run(
            r#"{"labels": ["EASY", "MEDIUM", "HARD"], "min_rank": 1}"#,
            &pool,
            1,
        );
        let summary: serde_json::Value = serde_json::from_str(&selection.summary_json).unwrap();
        assert_eq!(
            summary,
            serde_json::json!({
                "kept": 8,
                "dropped": 12,
                "dropped_by_label": {"EASY": 4, "MEDIUM_HARD": 4, "VERY_HARD": 4},
            })
        );
    }

    #[test]
    fn config_errors() {
        let config_err = |json: &str| match DifficultyBand::from_json(json) {
            Err(e @ PluginError::InvalidConfig { .. }) => e.to_string(),
            other => panic!("{json}: expected InvalidConfig, got {other:?}"),
        };
        assert!(config_err("{}").contains("needs `labels`, `min_rank` or `max_rank`"));
        assert!(config_err(r#"{"labels": []}"#).contains("`labels` is empty"));
        assert!(config_err(r#"{"min_rank": 3, "max_rank": 1}"#).contains("greater than"));
        assert!(config_err(r#"{"label": ["EASY"]}"#).contains("unknown field `label`"));
        assert!(config_err(r#"{"labels": "EASY"}"#).contains("field `labels`"));
        assert!(config_err(r#"{"min_rank": "low"}"#).contains("field `min_rank`"));
        // Equal bounds are a valid one-rank band.
        assert!(DifficultyBand::from_json(r#"{"min_rank": 2, "max_rank": 2}"#).is_ok());
    }

    #[test]
    fn example_config_is_valid() {
        let json = serde_json::to_string(&DifficultyBand::example_config()).unwrap();
        assert!(DifficultyBand::from_json(&json).is_ok(), "{json}");
    }

    #[test]
    fn golden_order() {
        let pool = pool(20);
        let out = run(
            r#"{"labels": ["EASY", "HARD", "VERY_HARD"], "min_rank": 3}"#,
            &pool,
            42,
        );
        insta::assert_json_snapshot!("golden_order", out.indices.into_vec());
    }
}
