//! `valley sync`: sends runs logged locally to MLflow — whatever the server has not acknowledged
//! (after it was down, or with tracking off).

use std::io::Write;

use super::Outcome;
use crate::cli::SyncArgs;

/// Sends the backlog of `args.experiment` (every experiment's when absent); fails when something
/// did not arrive.
///
/// # Errors
/// When no server is configured, or local files cannot be read.
pub fn run(args: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let all_sent = valley_tracking::sync_command(
        &args.runs_dir,
        args.experiment.as_deref(),
        args.uri.as_deref(),
        out,
    )?;
    Ok(if all_sent {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
