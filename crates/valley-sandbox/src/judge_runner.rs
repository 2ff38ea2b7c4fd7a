//! The judge's [`Runner`] over this sandbox: `valley judge`, `valley bench judge` and the host's
//! `Host::run_sandboxed` judge with the same code (`valley_judge::judge`) that evaluator plugins
//! call through the plugin interface.

use valley_judge::Runner;
use valley_plugin_api::{SandboxRequest, SandboxResult};

use crate::{service, Sandbox, SandboxError};

impl Runner for Sandbox {
    type Error = SandboxError;

    fn run(&self, request: &SandboxRequest) -> Result<SandboxResult, SandboxError> {
        Sandbox::run(self, &service::request_of(request)).map(service::result_of)
    }
}

#[cfg(test)]
mod tests {
    use crate::{service, Limits};

    /// The judge sizes limits from the host's defaults; the two spellings must agree.
    #[test]
    fn the_judge_knows_the_host_default_limits() {
        assert_eq!(
            service::limits_of(&valley_judge::DEFAULT_LIMITS),
            Limits::default()
        );
    }
}
