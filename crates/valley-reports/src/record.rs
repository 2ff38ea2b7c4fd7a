//! The input of a report: one [`ExperimentRecord`] and the [`CellRecord`]s of its cells (arm × size ×
//! seed), as the tracking code reads them from MLflow or the local run directory, or as a JSON file
//! holds them (`{"experiment": {...}, "cells": [...]}`, see [`RunRecords`]).
//!
//! Everything a report says comes from these types; nothing here knows about files or servers.
//! Metric values that are not finite (NaN, ±infinity) travel in JSON as the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"`, as MLflow writes them, because JSON numbers cannot hold them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metric a report is about unless the experiment names another.
pub const DEFAULT_PRIMARY_METRIC: &str = "pass@1";

/// Which way a metric is better. The same three cases as `valley_plugin_api::Direction`, mirrored
/// here with serde so records can be read from JSON without the ABI-stable interface crate (a test
/// maps every variant of the interface's enum onto this one, so a new variant there fails to
/// compile here). Reports and the valley verdict read the direction from here, never from a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Larger is better (accuracy, pass@1).
    HigherIsBetter,
    /// Smaller is better (loss).
    LowerIsBetter,
    /// Neither (learning rate, tokens seen).
    Neutral,
}

impl Direction {
    /// `+1` when higher is better, `-1` when lower is better, `None` for a neutral metric: the
    /// factor that turns a value into "larger is better".
    pub fn sign(self) -> Option<f64> {
        match self {
            Direction::HigherIsBetter => Some(1.0),
            Direction::LowerIsBetter => Some(-1.0),
            Direction::Neutral => None,
        }
    }

    /// How a report prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher is better",
            Direction::LowerIsBetter => "lower is better",
            Direction::Neutral => "no better direction",
        }
    }
}

/// The whole input of one report, as a JSON file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecords {
    /// What the experiment is.
    pub experiment: ExperimentRecord,
    /// Every cell, finished or failed.
    pub cells: Vec<CellRecord>,
}

/// What the experiment is: its name, its question, and whether it mirrors the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentRecord {
    /// The experiment's name (`experiments/NAME.toml`); also the stem of the plot file names.
    pub name: String,
    /// The question the experiment asks.
    #[serde(default)]
    pub description: String,
    /// The arms in the order the report lists them; arms of the cells not named here follow in
    /// alphabetical order.
    #[serde(default)]
    pub arms: Vec<String>,
    /// The metric the per-arm tables, the plots and the verdict are about.
    #[serde(default = "default_primary_metric")]
    pub primary_metric: String,
    /// Set when the experiment mirrors one of the paper's tables.
    #[serde(default)]
    pub mirrors: Option<PaperMirror>,
}

fn default_primary_metric() -> String {
    DEFAULT_PRIMARY_METRIC.to_owned()
}

impl ExperimentRecord {
    /// An experiment that mirrors nothing, with the default primary metric.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            arms: Vec::new(),
            primary_metric: default_primary_metric(),
            mirrors: None,
        }
    }
}

/// Which of the paper's tables an experiment mirrors, and which paper series each arm sits beside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperMirror {
    /// The table.
    pub table: crate::paper::PaperTable,
    /// Arm name → paper series id (see [`crate::paper::series`] for the ids, e.g.
    /// `qwen2.5-7b-instruct` or `easy-4k/from-instruct`). Arms not named have no paper points.
    #[serde(default)]
    pub arms: BTreeMap<String, String>,
}

/// Whether a cell ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Trained and evaluated; its metrics count.
    Finished,
    /// Stopped by an error; listed in the report, never counted.
    Failed,
}

/// One metric value with its unit and direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// The value; may be non-finite (then listed as a problem and left out of every mean).
    #[serde(with = "finite_or_string")]
    pub value: f64,
    /// Unit, e.g. `fraction` or `tokens`; empty when there is none.
    #[serde(default)]
    pub unit: String,
    /// Which way is better.
    pub direction: Direction,
}

impl Metric {
    /// A metric value.
    pub fn new(value: f64, unit: impl Into<String>, direction: Direction) -> Self {
        Self {
            value,
            unit: unit.into(),
            direction,
        }
    }
}

/// pass@1 on the problems of one difficulty level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DifficultyScore {
    /// The level as the evaluation set spells it (e.g. `easy`, `MEDIUM_HARD`).
    pub difficulty: String,
    /// pass@1 on that level's problems.
    #[serde(with = "finite_or_string")]
    pub pass_at_1: f64,
}

/// One cell: an arm trained on `size` records drawn with `seed` (size 0: the base model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellRecord {
    /// The arm (sampler pipeline).
    pub arm: String,
    /// Training records; 0 is the base model.
    pub size: u64,
    /// The seed of the cell.
    pub seed: u64,
    /// Finished or failed.
    pub status: CellStatus,
    /// Why a failed cell failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Final metrics by name.
    #[serde(default)]
    pub metrics: BTreeMap<String, Metric>,
    /// Tokens the trainer consumed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_tokens: Option<u64>,
    /// Optimizer steps, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_steps: Option<u64>,
    /// pass@1 per difficulty level, in the evaluation set's order, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_at_1_by_difficulty: Vec<DifficultyScore>,
    /// Fraction of answers finished within the generation cap, when known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "option_finite_or_string"
    )]
    pub completion_rate: Option<f64>,
    /// Fraction of responses that start with `<think>`, when known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "option_finite_or_string"
    )]
    pub think_rate: Option<f64>,
}

impl CellRecord {
    /// A finished cell with no metrics yet.
    pub fn finished(arm: impl Into<String>, size: u64, seed: u64) -> Self {
        Self {
            arm: arm.into(),
            size,
            seed,
            status: CellStatus::Finished,
            error: None,
            metrics: BTreeMap::new(),
            training_tokens: None,
            training_steps: None,
            pass_at_1_by_difficulty: Vec::new(),
            completion_rate: None,
            think_rate: None,
        }
    }

    /// A failed cell.
    pub fn failed(arm: impl Into<String>, size: u64, seed: u64, error: impl Into<String>) -> Self {
        Self {
            status: CellStatus::Failed,
            error: Some(error.into()),
            ..Self::finished(arm, size, seed)
        }
    }

    /// Adds a metric (builder style).
    pub fn with_metric(mut self, name: impl Into<String>, metric: Metric) -> Self {
        self.metrics.insert(name.into(), metric);
        self
    }

    /// The cell's key as the harness names its run directory: `<arm>-n<size>-s<seed>`.
    pub fn key(&self) -> String {
        format!("{}-n{}-s{}", self.arm, self.size, self.seed)
    }
}

/// Serde for an `f64` that may be non-finite: finite values as JSON numbers, the others as the
/// strings MLflow uses.
mod finite_or_string {
    use serde::{de, Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum Raw {
        Number(f64),
        Text(String),
    }

    pub(super) fn to_f64<E: de::Error>(raw: Raw) -> Result<f64, E> {
        match raw {
            Raw::Number(v) => Ok(v),
            Raw::Text(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!(
                    "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", found {other:?}"
                ))),
            },
        }
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        to_f64(Raw::deserialize(d)?)
    }
}

/// [`finite_or_string`] for an optional value (`null` or absent is `None`).
mod option_finite_or_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::finite_or_string;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => finite_or_string::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<finite_or_string::Raw>::deserialize(d)?
            .map(finite_or_string::to_f64)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of the plugin interface's `Direction` has a counterpart here: a variant added
    /// there makes this match non-exhaustive and the test crate fails to compile.
    #[test]
    fn direction_mirrors_the_plugin_interface() {
        use valley_plugin_api::Direction as Api;
        let mirror = |d: Api| match d {
            Api::HigherIsBetter => Direction::HigherIsBetter,
            Api::LowerIsBetter => Direction::LowerIsBetter,
            Api::Neutral => Direction::Neutral,
        };
        assert_eq!(mirror(Api::HigherIsBetter), Direction::HigherIsBetter);
        assert_eq!(mirror(Api::LowerIsBetter), Direction::LowerIsBetter);
        assert_eq!(mirror(Api::Neutral), Direction::Neutral);
    }

    #[test]
    fn non_finite_values_round_trip_as_strings() {
        let cell = CellRecord::finished("random", 10, 1)
            .with_metric("loss", Metric::new(f64::NAN, "", Direction::LowerIsBetter))
            .with_metric(
                "grad",
                Metric::new(f64::NEG_INFINITY, "", Direction::Neutral),
            );
        let json = serde_json::to_string(&cell).unwrap();
        assert!(json.contains(r#""value":"NaN""#), "{json}");
        assert!(json.contains(r#""value":"-Infinity""#), "{json}");
        let back: CellRecord = serde_json::from_str(&json).unwrap();
        assert!(back.metrics["loss"].value.is_nan());
        assert_eq!(back.metrics["grad"].value, f64::NEG_INFINITY);
    }

    #[test]
    fn a_bad_value_string_is_an_error_naming_it() {
        let err = serde_json::from_str::<Metric>(r#"{"value":"lots","direction":"Neutral"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"lots\""), "{err}");
    }

    #[test]
    fn defaults_fill_a_minimal_record() {
        let exp: ExperimentRecord = serde_json::from_str(r#"{"name":"valley"}"#).unwrap();
        assert_eq!(exp.primary_metric, "pass@1");
        assert!(exp.mirrors.is_none());
        let cell: CellRecord =
            serde_json::from_str(r#"{"arm":"random","size":0,"seed":1,"status":"finished"}"#)
                .unwrap();
        assert_eq!(cell.completion_rate, None);
        assert_eq!(cell.key(), "random-n0-s1");
    }
}
