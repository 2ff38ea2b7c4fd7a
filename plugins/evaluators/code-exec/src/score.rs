//! The judging half of the evaluator: the last fenced code block of each response is judged
//! against its problem by [`valley_judge::judge`] on parallel worker threads, through any
//! [`Runner`] (the host's sandbox via [`HostRunner`] in the plugin; the harness's sandbox in
//! tests). Kept apart from generation so that it is tested with known responses.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex,
};

use valley_judge::{extract_code, judge_compared, JudgeConfig, Judged, Problem, Runner};
use valley_plugin_api::{Host, PluginError, SandboxRequest, SandboxResult};

/// [`Runner`] over the host's sandbox service.
pub struct HostRunner<'a, 'h>(pub &'a Host<'h>);

impl Runner for HostRunner<'_, '_> {
    type Error = PluginError;

    fn run(&self, request: &SandboxRequest) -> Result<SandboxResult, PluginError> {
        self.0.run_sandboxed(request)
    }
}

/// Whether a response holds a fenced code block (two fence lines at least), the paper's
/// code-block rate.
pub fn has_code_block(response: &str) -> bool {
    response.lines().filter(|l| l.contains("```")).count() >= 2
}

/// Judges `(problem, response)` pairs on `workers` threads; verdicts come back in input order,
/// each with the verdict under the other rule set when `config.compare_rules` is set.
///
/// # Errors
/// The first error of the runner (the machinery failed, not a program); the remaining work is
/// not started.
pub fn score<R>(
    runner: &R,
    config: &JudgeConfig,
    samples: &[(&Problem, &str)],
    workers: usize,
) -> Result<Vec<(Judged, Option<Judged>)>, R::Error>
where
    R: Runner + Sync,
    R::Error: Send,
{
    let next = AtomicUsize::new(0);
    type Slot<E> = Option<Result<(Judged, Option<Judged>), E>>;
    let results: Mutex<Vec<Slot<R::Error>>> =
        Mutex::new((0..samples.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, samples.len().max(1)) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(problem, response)) = samples.get(j) else {
                    break;
                };
                let r = judge_compared(runner, config, problem, extract_code(response));
                let failed = r.is_err();
                results.lock().unwrap_or_else(|e| e.into_inner())[j] = Some(r);
                if failed {
                    next.store(samples.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(samples.len());
    for r in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match r {
            Some(r) => out.push(r?),
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_block_needs_two_fences() {
        assert!(has_code_block("x\n```python\nprint(1)\n```"));
        assert!(!has_code_block("```python\nprint(1)"));
        assert!(!has_code_block("print(1)"));
    }
}
