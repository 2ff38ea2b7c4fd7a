//! Landlock rules of the sandboxed program: read and execute everywhere, write only inside the
//! work directory (and `/dev/null`); TCP bind and connect denied (a second network wall; it does
//! not cover UDP, the namespace and seccomp do); signals and abstract Unix sockets scoped to the
//! sandbox, so the program cannot signal the harness even under the same uid.

use std::path::Path;

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::{LayerStatus, Property};

/// Restricts the calling thread (and what it executes) to the rules above. Needs
/// `PR_SET_NO_NEW_PRIVS` when the caller lacks CAP_SYS_ADMIN.
pub fn restrict(work: &Path) -> LayerStatus {
    match try_restrict(work) {
        Ok((RulesetStatus::FullyEnforced, abi)) => status(true, format!("fully enforced ({abi})")),
        Ok((RulesetStatus::PartiallyEnforced, abi)) => status(
            true,
            format!("partially enforced ({abi}): an older kernel lacks some rights"),
        ),
        Ok((RulesetStatus::NotEnforced, _)) => status(false, "not supported by this kernel".into()),
        Err(e) => status(false, e),
    }
}

fn try_restrict(work: &Path) -> Result<(RulesetStatus, String), String> {
    let abi = ABI::V7;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| e.to_string())?
        .handle_access(AccessNet::from_all(abi))
        .map_err(|e| e.to_string())?
        .scope(Scope::from_all(abi))
        .map_err(|e| e.to_string())?
        .create()
        .map_err(|e| e.to_string())?;
    let root = PathFd::new("/").map_err(|e| format!("/: {e}"))?;
    let work_fd = PathFd::new(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut ruleset = ruleset
        .add_rule(PathBeneath::new(root, read))
        .map_err(|e| e.to_string())?
        .add_rule(PathBeneath::new(work_fd, all))
        .map_err(|e| e.to_string())?;
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

fn status(enforced: bool, detail: String) -> LayerStatus {
    LayerStatus {
        mechanism: "landlock".into(),
        property: Property::Filesystem,
        enforced,
        detail,
    }
}
