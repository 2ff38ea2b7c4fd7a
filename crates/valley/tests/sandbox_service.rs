//! The sandbox as a host service, across the real plugin boundary: the fixture evaluator
//! `tests/fixtures/plugins/sandboxed-evaluator` (a dynamically loaded library) runs programs
//! through `Host::run_sandboxed`, served by the harness's `CallServices`. Build the workspace
//! first (`cargo build --workspace`): the fixture library must sit beside the test's profile.

use std::{
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
};

use valley_plugin_api::{host::host_ref, EvalJob};
use valley_plugin_host::{CallServices, PluginLibrary};

fn fixture() -> PathBuf {
    // target/<profile>/deps/<test exe> -> target/<profile>/
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let lib = dir.join(format!(
        "{}valley_fixture_sandboxed_evaluator{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        lib.display()
    );
    lib
}

#[test]
fn a_plugin_runs_programs_through_the_host_sandbox() {
    // The supervisor is the valley binary, not this test executable.
    std::env::set_var("VALLEY_SANDBOX_INIT", env!("CARGO_BIN_EXE_valley"));
    let lib = PluginLibrary::load(&fixture()).unwrap();
    let evaluator = lib.evaluator("evaluator", &serde_json::json!({})).unwrap();
    let services = CallServices::new("fixture", Arc::new(AtomicBool::new(false)));
    let job = EvalJob {
        config_json: "{}".into(),
        checkpoint_dir: "".into(),
        eval_set: "".into(),
        output_dir: "".into(),
    };
    let outcome = evaluator
        .evaluate(&job, host_ref(&services))
        .into_result()
        .unwrap();
    let get = |name: &str| {
        outcome
            .metrics
            .iter()
            .find(|m| m.name.as_str() == name)
            .unwrap_or_else(|| panic!("no metric {name}"))
            .value
    };
    assert_eq!(get("honest_correct"), 1.0);
    assert_eq!(get("sleeper_timed_out"), 1.0);
    assert_eq!(get("network_refused"), 1.0);
    // Namespaces (network, pid), private /proc, work tmpfs, rlimits, setuid, Landlock, seccomp.
    assert_eq!(get("layers"), 8.0, "eight mechanisms reported");
}
