//! The sandbox offered to plugins: [`HostServices::run_sandboxed`] converts the FFI request into a
//! [`Request`], runs it in one process-wide [`Sandbox`] and converts the outcome back.
//!
//! The supervisor is `VALLEY_SANDBOX_INIT` when set, else the running executable (the `valley`
//! binary, which handles `__sandbox-init`).
//!
//! [`HostServices::run_sandboxed`]: valley_plugin_api::HostServices::run_sandboxed

use std::{sync::OnceLock, time::Duration};

use valley_plugin_api::{
    abi_stable::std_types::{RErr, ROk, ROption, RResult, RString, RVec},
    SandboxRequest, SandboxResult,
};

use super::{Limits, Outcome, Request, Sandbox, SandboxConfig};

/// The process-wide sandbox, made on first use.
pub fn shared() -> Result<&'static Sandbox, String> {
    static SHARED: OnceLock<Result<Sandbox, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let config = match std::env::var_os("VALLEY_SANDBOX_INIT") {
                Some(p) => SandboxConfig::new(p.into()),
                None => SandboxConfig::from_current_exe().map_err(|e| e.to_string())?,
            };
            Sandbox::new(config).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Declares `path` and its directory off limits to every program the shared sandbox runs (see
/// [`Sandbox::hide`]): the host calls it with an evaluation set before an evaluator plugin,
/// which holds the expected outputs, judges anything.
///
/// # Errors
/// When the sandbox cannot be made or the path cannot be resolved.
pub fn hide(path: &std::path::Path) -> Result<(), String> {
    let sandbox = shared()?;
    sandbox.hide(path).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        sandbox.hide(dir).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Limits of a plugin request: zeros take the defaults.
pub fn limits_of(l: &valley_plugin_api::SandboxLimits) -> Limits {
    let d = Limits::default();
    let or = |v: u64, default: u64| if v == 0 { default } else { v };
    Limits {
        wall: if l.wall_ms == 0 {
            d.wall
        } else {
            Duration::from_millis(l.wall_ms)
        },
        cpu_seconds: or(l.cpu_seconds, d.cpu_seconds),
        address_space_bytes: or(l.address_space_bytes, d.address_space_bytes),
        file_size_bytes: or(l.file_size_bytes, d.file_size_bytes),
        open_files: or(l.open_files, d.open_files),
        processes: or(l.processes, d.processes),
        disk_bytes: or(l.disk_bytes, d.disk_bytes),
        output_bytes: or(l.output_bytes, d.output_bytes as u64) as usize,
    }
}

/// The host's request for a plugin's (or the judge's) FFI request.
pub fn request_of(request: &SandboxRequest) -> Request {
    Request {
        argv: request.argv.iter().map(|a| a.to_string()).collect(),
        stdin: request.stdin.to_vec(),
        files: request
            .files
            .iter()
            .map(|f| (f.name.to_string(), f.contents.to_vec()))
            .collect(),
        env: Vec::new(),
        limits: limits_of(&request.limits),
    }
}

/// The FFI result of a run's outcome.
pub fn result_of(out: Outcome) -> SandboxResult {
    SandboxResult {
        exit_code: out.exit_code.into(),
        signal: ROption::from(out.signal),
        timed_out: out.timed_out,
        cpu_limit_exceeded: out.cpu_limit_exceeded,
        output_limit_exceeded: out.output_limit_exceeded,
        stdout_truncated: out.stdout_truncated,
        stderr_truncated: out.stderr_truncated,
        wall_ms: out.wall.as_millis() as u64,
        cpu_ms: out.cpu.as_millis() as u64,
        layers: out
            .layers
            .iter()
            .map(|l| {
                SandboxResult::layer_line(
                    &l.mechanism,
                    &l.property.to_string(),
                    l.enforced,
                    &l.detail,
                )
            })
            .collect::<RVec<_>>(),
        stdout: out.stdout.into(),
        stderr: out.stderr.into(),
    }
}

/// Runs a plugin's request; an error is the text the plugin sees.
pub fn serve(request: &SandboxRequest) -> RResult<SandboxResult, RString> {
    let sandbox = match shared() {
        Ok(s) => s,
        Err(e) => return RErr(e.into()),
    };
    match sandbox.run(&request_of(request)) {
        Err(e) => RErr(e.to_string().into()),
        Ok(out) => ROk(result_of(out)),
    }
}
