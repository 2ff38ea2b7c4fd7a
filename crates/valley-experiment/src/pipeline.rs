//! Sampler pipelines: filters, then the subset of the cell's size, then the order.
//!
//! The host checks every stage's answer against its role, so a buggy sampler cannot corrupt a
//! training file quietly: indices must come from the stage's input and appear once; a filter's
//! survivors keep the pool's order; a subset has exactly the cell's size; an order is a
//! permutation of its input. Each stage reports what it kept and dropped.

use std::collections::HashSet;

use serde::Serialize;
use valley_plugin_api::{Candidate, SampleContext, Selection};

use valley_plugin_host::{CallServices, LoadedSampler};

use crate::{
    error::{Error, Result},
    experiment::{Cell, StageSpec},
};

/// Something that can fill a pipeline stage: a loaded sampler plugin, or a closure in tests.
pub trait Stage {
    /// The plugin's name, for errors and summaries.
    fn plugin_name(&self) -> &str;
    /// The library path, when the stage is a plugin.
    fn library(&self) -> Option<String>;
    /// Chooses and orders indices out of `pool`.
    ///
    /// # Errors
    /// Whatever the sampler returns.
    fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        services: &CallServices,
    ) -> Result<Selection>;
}

impl Stage for LoadedSampler {
    fn plugin_name(&self) -> &str {
        self.library.name()
    }

    fn library(&self) -> Option<String> {
        Some(self.library.path.display().to_string())
    }

    fn select(
        &self,
        pool: &[Candidate],
        ctx: &SampleContext,
        services: &CallServices,
    ) -> Result<Selection> {
        Ok(LoadedSampler::select(self, pool, ctx, services)?)
    }
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    /// The experiment-file key of the stage.
    pub slot: String,
    /// `filter`, `subset` or `order`.
    pub role: String,
    /// The plugin's name.
    pub plugin: String,
    /// The plugin's library.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    /// Its configuration.
    pub config: serde_json::Value,
    /// Records in.
    pub input: usize,
    /// Records out.
    pub kept: usize,
    /// Records dropped.
    pub dropped: usize,
    /// The sampler's own summary (a JSON object).
    pub summary: serde_json::Value,
}

/// The outcome of a pipeline: the chosen candidates' indices in training order, and one report
/// per stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineOutcome {
    /// Indices into the full pool, in training order.
    pub order: Vec<u64>,
    /// What each stage did.
    pub stages: Vec<StageReport>,
}

/// Runs `stages` (in order) over `pool` for a cell.
///
/// # Errors
/// [`Error::Plugin`] when a sampler fails, [`Error::BadSelection`] when its answer breaks its
/// role's contract.
pub fn run_pipeline(
    stages: &[(&StageSpec, &dyn Stage)],
    pool: &[Candidate],
    cell: &Cell,
    services: &CallServices,
) -> Result<PipelineOutcome> {
    let mut current: Vec<Candidate> = pool.to_vec();
    let mut reports = Vec::new();
    for (spec, stage) in stages {
        let ctx = SampleContext {
            seed: cell.seed,
            target_size: cell.size,
            arm: cell.arm.as_str().into(),
            stage: spec.role.as_str().into(),
        };
        let selection = stage.select(&current, &ctx, services)?;
        let summary = parse_summary(spec, *stage, &selection)?;
        let next = check_selection(spec, *stage, &current, &selection, cell.size)?;
        reports.push(StageReport {
            slot: spec.slot.clone(),
            role: spec.role.clone(),
            plugin: stage.plugin_name().to_string(),
            library: stage.library(),
            config: spec.spec.config.clone(),
            input: current.len(),
            kept: next.len(),
            dropped: current.len() - next.len(),
            summary,
        });
        current = next;
    }
    Ok(PipelineOutcome {
        order: current.iter().map(|c| c.index).collect(),
        stages: reports,
    })
}

fn bad(spec: &StageSpec, stage: &dyn Stage, problem: String) -> Error {
    Error::BadSelection {
        slot: spec.slot.clone(),
        plugin: stage.plugin_name().to_string(),
        problem,
    }
}

fn parse_summary(
    spec: &StageSpec,
    stage: &dyn Stage,
    selection: &Selection,
) -> Result<serde_json::Value> {
    let summary: serde_json::Value = serde_json::from_str(&selection.summary_json)
        .map_err(|e| bad(spec, stage, format!("its summary is not JSON: {e}")))?;
    if !summary.is_object() {
        return Err(bad(
            spec,
            stage,
            format!("its summary is not a JSON object: {summary}"),
        ));
    }
    Ok(summary)
}

fn check_selection(
    spec: &StageSpec,
    stage: &dyn Stage,
    input: &[Candidate],
    selection: &Selection,
    size: u64,
) -> Result<Vec<Candidate>> {
    let position: std::collections::HashMap<u64, usize> = input
        .iter()
        .enumerate()
        .map(|(i, c)| (c.index, i))
        .collect();
    let mut seen = HashSet::new();
    let mut picked = Vec::with_capacity(selection.indices.len());
    for &index in selection.indices.iter() {
        let Some(&pos) = position.get(&index) else {
            return Err(bad(
                spec,
                stage,
                format!("returned index {index}, which is not in its input"),
            ));
        };
        if !seen.insert(index) {
            return Err(bad(spec, stage, format!("returned index {index} twice")));
        }
        picked.push(pos);
    }
    match spec.role.as_str() {
        // A filter decides membership only; the pool keeps its order.
        "filter" => picked.sort_unstable(),
        "subset" if picked.len() as u64 != size => {
            return Err(bad(
                spec,
                stage,
                format!(
                    "returned {} records for a cell of size {size}",
                    picked.len()
                ),
            ));
        }
        "order" if picked.len() != input.len() => {
            return Err(bad(
                spec,
                stage,
                format!(
                    "an order stage must return all {} records it was given, it returned {}",
                    input.len(),
                    picked.len()
                ),
            ));
        }
        _ => {}
    }
    Ok(picked.into_iter().map(|pos| input[pos].clone()).collect())
}

#[cfg(test)]
mod tests {
    use valley_plugin_api::{abi_stable::std_types::ROption, PluginError};

    use super::*;
    use crate::experiment::PluginSpec;

    struct FnStage<F>(&'static str, F);

    impl<F: Fn(&[Candidate], &SampleContext) -> Vec<u64>> Stage for FnStage<F> {
        fn plugin_name(&self) -> &str {
            self.0
        }
        fn library(&self) -> Option<String> {
            None
        }
        fn select(
            &self,
            pool: &[Candidate],
            ctx: &SampleContext,
            _: &CallServices,
        ) -> Result<Selection> {
            if self.0 == "failing" {
                return Err(valley_plugin_host::HostError::Plugin {
                    plugin: "failing".into(),
                    path: "x".into(),
                    during: "failed during select".into(),
                    error: PluginError::failed("no"),
                }
                .into());
            }
            Ok(Selection::new((self.1)(pool, ctx)))
        }
    }

    fn pool(n: u64) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                index: i,
                id: format!("r{i}").into(),
                difficulty: "EASY".into(),
                difficulty_rank: (i % 3) as f64,
                correct: ROption::RSome(i % 2 == 0),
                token_count: 10,
                source: "t".into(),
                tags: Default::default(),
            })
            .collect()
    }

    fn spec(role: &str) -> StageSpec {
        StageSpec {
            slot: format!("arms.a.{role}"),
            role: role.into(),
            spec: PluginSpec {
                plugin: "p".into(),
                config: serde_json::json!({}),
                path: None,
            },
        }
    }

    fn cell(size: u64) -> Cell {
        Cell {
            arm: "a".into(),
            size,
            seed: 1,
        }
    }

    fn run(stages: &[(&StageSpec, &dyn Stage)], size: u64) -> Result<PipelineOutcome> {
        run_pipeline(stages, &pool(10), &cell(size), &CallServices::default())
    }

    #[test]
    fn filter_subset_order_chain_and_report_counts() {
        let (f, s, o) = (spec("filter"), spec("subset"), spec("order"));
        // The filter returns its survivors reversed; the host keeps pool order anyway.
        let even = FnStage("even", |p: &[Candidate], _: &SampleContext| {
            p.iter()
                .rev()
                .filter(|c| c.index % 2 == 0)
                .map(|c| c.index)
                .collect()
        });
        let first = FnStage("first", |p: &[Candidate], ctx: &SampleContext| {
            p.iter()
                .take(ctx.target_size as usize)
                .map(|c| c.index)
                .collect()
        });
        let rev = FnStage("rev", |p: &[Candidate], _: &SampleContext| {
            p.iter().rev().map(|c| c.index).collect()
        });
        let out = run(&[(&f, &even), (&s, &first), (&o, &rev)], 3).unwrap();
        assert_eq!(out.order, vec![4, 2, 0]);
        let counts: Vec<_> = out
            .stages
            .iter()
            .map(|r| (r.input, r.kept, r.dropped))
            .collect();
        assert_eq!(counts, vec![(10, 5, 5), (5, 3, 2), (3, 3, 0)]);
    }

    #[test]
    fn contract_violations_are_errors_naming_the_slot() {
        let (s, o) = (spec("subset"), spec("order"));
        let unknown = FnStage("unknown", |_: &[Candidate], _: &SampleContext| vec![99u64]);
        let twice = FnStage("twice", |_: &[Candidate], _: &SampleContext| vec![1u64, 1]);
        let short = FnStage("short", |_: &[Candidate], _: &SampleContext| vec![1u64]);
        for (stage, spec, want) in [
            (&unknown as &dyn Stage, &o, "not in its input"),
            (&twice, &o, "twice"),
            (&short, &s, "returned 1 records for a cell of size 3"),
            (&short, &o, "must return all 10 records"),
        ] {
            let err = run(&[(spec, stage)], 3).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains(&spec.slot), "{err}");
        }
        let failing = FnStage("failing", |_: &[Candidate], _: &SampleContext| {
            Vec::<u64>::new()
        });
        assert!(matches!(
            run(&[(&o, &failing)], 3),
            Err(Error::Plugin(valley_plugin_host::HostError::Plugin { .. }))
        ));
    }
}
