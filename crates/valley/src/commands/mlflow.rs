//! `valley mlflow start|stop|status`: the local MLflow server (`just mlflow`, `just mlflow-stop`).

use std::io::Write;

use valley_tracking::server::{self, ServerPaths};

use super::Outcome;
use crate::cli::MlflowCommand;

/// Starts, stops or describes the local server.
///
/// # Errors
/// When the server cannot be started (its venv cannot be made, the port is taken) or stopped.
pub fn run(command: &MlflowCommand, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let paths = ServerPaths::from_env();
    match command {
        MlflowCommand::Start { port, no_install } => {
            server::start(&paths, *port, !no_install, out)?;
        }
        MlflowCommand::Stop => {
            server::stop(&paths, out)?;
        }
        MlflowCommand::Status => writeln!(out, "{}", server::describe(&paths))?,
    }
    Ok(Outcome::Passed)
}
