//! What the sandbox suites share: the check that a run left nothing behind.

use valley_sandbox::Sandbox;

/// No process of the sandbox's uids is left and no run directory remains in its work root.
pub fn assert_nothing_left(sandbox: &Sandbox) {
    let uids = sandbox.uids();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if uid.is_some_and(|u| uids.contains(&u)) {
            left.push(entry.file_name());
        }
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let runs: Vec<_> = std::fs::read_dir(sandbox.work_root()).unwrap().collect();
    assert!(runs.is_empty(), "run directories left behind: {runs:?}");
}
