//! The judge in the host: the core (verdicts, LiveCodeBench's comparisons, code extraction,
//! pass@k, the forking driver) lives in the `valley-judge` crate so that evaluator plugins judge
//! with the same code through `Host::run_sandboxed`; it is re-exported here. This module adds
//! what only the host does: running the judge on the host's [`Sandbox`] (a [`Runner`]), reading
//! `valley judge`'s inputs ([`input`]) and judging many samples in parallel ([`batch`]).

pub mod batch;
pub mod input;

pub use valley_judge::{
    compare, extract, forking_driver, pass_at_k, HumanEvalProblem, JudgeConfig, Judged, Problem,
    Runner, Verdict,
};

use valley_plugin_api::{SandboxRequest, SandboxResult};

use crate::sandbox::{service, Sandbox, SandboxError};

impl Runner for Sandbox {
    type Error = SandboxError;

    fn run(&self, request: &SandboxRequest) -> Result<SandboxResult, SandboxError> {
        Sandbox::run(self, &service::request_of(request)).map(service::result_of)
    }
}

/// Judges one candidate program (already extracted from the response) in the host's sandbox.
///
/// # Errors
/// Only when the sandbox cannot run at all (a set-up error, missing isolation); a bad program is
/// a verdict.
pub fn judge(
    sandbox: &Sandbox,
    config: &JudgeConfig,
    problem: &Problem,
    code: &str,
) -> Result<Judged, SandboxError> {
    valley_judge::judge(sandbox, config, problem, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The judge sizes limits from the host's defaults; the two spellings must agree.
    #[test]
    fn the_judge_knows_the_host_default_limits() {
        assert_eq!(
            service::limits_of(&valley_judge::DEFAULT_LIMITS),
            crate::sandbox::Limits::default()
        );
    }
}
