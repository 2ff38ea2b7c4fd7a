//! Landlock rules of the sandboxed program: read (and execute) only the read allowlist (see
//! [`crate::readable`]), read and write only the work directory (and `/dev/null`); TCP bind and
//! connect denied (a second network wall; it does not cover UDP, the namespace and seccomp do);
//! signals and abstract Unix sockets scoped to the sandbox, so the program cannot signal the
//! harness even under the same uid.
//!
//! Only a fully enforced ruleset counts: a kernel whose Landlock ABI lacks some of the rights
//! asked for (`PartiallyEnforced`) leaves holes, so the layer is reported off and the run is
//! refused unless weaker isolation is allowed.

use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::{LayerStatus, Property};

/// The Landlock ABI whose rights the sandbox asks for.
const WANTED: ABI = ABI::V7;

/// Restricts the calling thread (and what it executes) to the rules above. Needs
/// `PR_SET_NO_NEW_PRIVS` when the caller lacks CAP_SYS_ADMIN. `work` is opened as given (the
/// caller's current directory works: `"."`).
pub fn restrict(work: &Path, readable: &[PathBuf]) -> LayerStatus {
    let result = try_restrict(work, readable);
    let (enforced, detail) = judge_status(result, readable.len());
    LayerStatus {
        mechanism: "landlock".into(),
        property: Property::Filesystem,
        enforced,
        detail,
    }
}

/// Whether a ruleset's status counts as enforced, with the detail to report.
fn judge_status(result: Result<(RulesetStatus, String), String>, paths: usize) -> (bool, String) {
    match result {
        Ok((RulesetStatus::FullyEnforced, abi)) => (
            true,
            format!("fully enforced ({abi}); reads limited to {paths} allowlisted paths"),
        ),
        Ok((RulesetStatus::PartiallyEnforced, abi)) => (
            false,
            format!(
                "only partially enforced ({abi}): this kernel lacks some of {WANTED:?}'s rights"
            ),
        ),
        Ok((RulesetStatus::NotEnforced, _)) => (false, "not supported by this kernel".into()),
        Err(e) => (false, e),
    }
}

fn try_restrict(work: &Path, readable: &[PathBuf]) -> Result<(RulesetStatus, String), String> {
    let read = AccessFs::from_read(WANTED);
    let all = AccessFs::from_all(WANTED);
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| e.to_string())?
        .handle_access(AccessNet::from_all(WANTED))
        .map_err(|e| e.to_string())?
        .scope(Scope::from_all(WANTED))
        .map_err(|e| e.to_string())?
        .create()
        .map_err(|e| e.to_string())?;
    let work_fd = PathFd::new(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut ruleset = ruleset
        .add_rule(PathBeneath::new(work_fd, all))
        .map_err(|e| e.to_string())?;
    for path in readable {
        // A path this uid cannot open is one it could not read anyway: no rule needed.
        let Ok(fd) = PathFd::new(path) else {
            continue;
        };
        // Directory rights on a file are invalid: a file gets the file rights only.
        let access = if path.is_dir() {
            read
        } else {
            read & AccessFs::from_file(WANTED)
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Ok(null) = PathFd::new("/dev/null") {
        ruleset = ruleset
            .add_rule(PathBeneath::new(
                null,
                AccessFs::ReadFile | AccessFs::WriteFile,
            ))
            .map_err(|e| e.to_string())?;
    }
    let st = ruleset.restrict_self().map_err(|e| e.to_string())?;
    Ok((st.ruleset, format!("{:?}", st.landlock)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that enforces only part of the rights leaves holes: that is weaker isolation.
    #[test]
    fn a_partially_enforced_ruleset_counts_as_off() {
        let (on, detail) = judge_status(Ok((RulesetStatus::PartiallyEnforced, "V3".into())), 7);
        assert!(!on, "{detail}");
        assert!(judge_status(Ok((RulesetStatus::FullyEnforced, "V7".into())), 7).0);
        assert!(!judge_status(Ok((RulesetStatus::NotEnforced, String::new())), 7).0);
    }
}
