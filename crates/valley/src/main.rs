//! The `valley` command line: parses arguments and hands each subcommand's arguments to its
//! command. Exit status: 0 ok, 1 a check or a cell failed, 2 an error stopped the command.

mod cli;
mod commands;
mod interrupt;
mod progress;
mod tensor_process;

use std::{io::Write, process::ExitCode};

use clap::Parser;
use cli::{BenchCommand, Cli, Command, DataCommand, PluginsCommand};
use commands::Outcome;
use valley_plugin_host::PluginSearch;

fn main() -> ExitCode {
    // The sandbox supervisor (`valley __sandbox-init SPEC`) dispatches before anything else, while
    // the process is still single-threaded.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == valley_sandbox::init::SUBCOMMAND)
    {
        valley_sandbox::init::main(&args[2..]);
    }
    let cli = Cli::parse();
    // Parallel cells share the cores: each gets its share of threads (one per cell by default).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match &cli.command {
        // A Slurm task uses the CPUs Slurm gave it (one unless `--cpus-per-cell`).
        Command::Experiment(args) if args.slurm_task.is_some() => {
            std::env::var("SLURM_CPUS_PER_TASK")
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1)
        }
        Command::Experiment(args) => (cores / args.jobs(cores)).max(1),
        _ => cores,
    };
    tensor_process::configure(threads);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli, cores) {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(valley_plugin_api::EXIT_INTERRUPTED),
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

fn run(cli: Cli, cores: usize) -> anyhow::Result<Outcome> {
    let search = PluginSearch::from_env();
    // Not locked: a sweep's worker threads print cell lines as the cells end.
    let out = &mut std::io::stdout();
    let outcome = match cli.command {
        Command::Experiment(args) => commands::experiment::run(&args, cores, &search, out)?,
        Command::Report(args) => commands::report::run(&args, out)?,
        Command::Status(args) => commands::slurm::status(&args, out)?,
        Command::Sync(args) => commands::sync::run(&args, out)?,
        Command::Mlflow { command } => commands::mlflow::run(&command, out)?,
        Command::Judge(args) => commands::judge::run(&args, out)?,
        Command::Eval(args) => commands::eval::run(&args, &search, out)?,
        Command::Data { command } => match command {
            DataCommand::Synth(args) => commands::data::synth::run(&args, out)?,
            DataCommand::Inspect(args) => commands::data::inspect::run(&args, out)?,
            DataCommand::Stats(args) => commands::data::stats::run(&args, out)?,
        },
        Command::Plugins { command } => match command {
            PluginsCommand::List(args) => {
                commands::plugins::list::run(&args, &search, out, &mut std::io::stderr())?
            }
            PluginsCommand::Check(args) => commands::plugins::check::run(&args, &search, out)?,
            PluginsCommand::New(args) => commands::plugins::new::run(&args, out)?,
        },
        Command::Bench { command } => match command {
            BenchCommand::Judge(args) => commands::bench::judge::run(&args, out)?,
            BenchCommand::Train(args) => commands::bench::train::run(&args, &search, out)?,
        },
    };
    Ok(outcome)
}
