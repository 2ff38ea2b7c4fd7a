//! The `valley` command line: parses arguments and calls the library. Exit status: 0 ok,
//! 1 a check or a cell failed, 2 an error stopped the command.

use std::{
    io::Write,
    path::PathBuf,
    process::ExitCode,
    sync::{atomic::AtomicBool, Arc},
};

use clap::{Parser, Subcommand, ValueEnum};
use valley_harness::{
    commands::{self, Outcome},
    plugins::PluginSearch,
    scaffold,
};
use valley_plugin_api::PluginKind;

#[derive(Parser)]
#[command(
    name = "valley",
    version,
    about = "Scaling studies of knowledge distillation into small language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, check and scaffold plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Plan (--dry-run) or run an experiment from experiments/NAME.toml (or a path).
    Experiment {
        /// Experiment name (experiments/NAME.toml) or path to a .toml file.
        name: String,
        /// Print the plan (every cell, its pipeline and pool) and stop.
        #[arg(long)]
        dry_run: bool,
        /// Override a key of the experiment file, e.g. --set sweep.seeds=[1,2]. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin found: VALLEY_PLUGIN_PATH, then target/<profile>/ of the workspace.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load, construct and smoke-test plugin libraries (all found ones when no path is given).
    Check {
        /// Library files to check.
        paths: Vec<PathBuf>,
        /// Fail a library that is not of this kind.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
    },
    /// Create a new plugin crate that builds and loads as generated.
    New {
        /// Plugin name (lowercase letters, digits and `-`), also the crate name.
        name: String,
        /// The plugin kind.
        #[arg(long, value_enum, default_value = "sampler")]
        kind: Kind,
        /// Parent directory of the new crate (default: plugins/ in the workspace, else `.`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Sampler,
    Trainer,
    Evaluator,
}

impl From<Kind> for PluginKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Sampler => PluginKind::Sampler,
            Kind::Trainer => PluginKind::Trainer,
            Kind::Evaluator => PluginKind::Evaluator,
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        // The reader went away (`valley … | head`): not an error worth reporting.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let search = PluginSearch::from_env();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let outcome = match cli.command {
        Command::Plugins {
            command: PluginsCommand::List { json },
        } => commands::plugins_list(&search, json, &mut out, &mut err)?,
        Command::Plugins {
            command: PluginsCommand::Check { paths, kind },
        } => commands::plugins_check(&search, &paths, kind.map(Into::into), &mut out)?,
        Command::Plugins {
            command: PluginsCommand::New { name, kind, dir },
        } => {
            let dir = scaffold::scaffold(&name, kind.into(), dir.as_deref())?;
            writeln!(out, "created {}", dir.display())?;
            writeln!(out, "{}", scaffold::next_steps(&name, kind.into(), &dir))?;
            Outcome::Passed
        }
        Command::Experiment {
            name,
            dry_run,
            overrides,
        } => {
            let cancel = Arc::new(AtomicBool::new(false));
            commands::experiment(&name, &overrides, dry_run, &search, cancel, &mut out)?
        }
    };
    Ok(outcome)
}
