//! The Slurm executor: `valley experiment NAME --executor slurm` runs an experiment's cells as
//! jobs of a Slurm cluster, and `valley status NAME` shows where they are.
//!
//! The submitting command plans the experiment as the local executor does, starts the parent
//! run, writes the plan (`RUNS/NAME/slurm/STAMP/plan.json`: the resolved experiment, the cell keys
//! in order, the students, the parent run) so that every job runs the same plan whatever changes
//! in the experiment file later, and submits:
//!
//! - one job per student (`afterok` on the student it starts from);
//! - the cells as one job array, task `i` running cell `i` of the plan, after the students
//!   (`afterok`), at most `max_running` at once (`%K`), `--requeue`, warned before its time limit
//!   with `--signal=B:USR1@S` (the batch shell receives it);
//! - the report as a last job (`afterany` on the array), which also ends the parent run.
//!
//! Every job runs `task.sh` (written beside the plan): `valley experiment PLAN --slurm-task TASK`
//! in the background, with USR1 and TERM forwarded to it. `valley` treats them as it treats Ctrl-C:
//! the trainer saves a checkpoint at its next step and the cell ends "interrupted, resumable"
//! (exit 75); the script then requeues its own task (`scontrol requeue`), and the next start
//! resumes from the checkpoint. Any other failure is recorded in the cell's directory as locally,
//! and a task that ended without leaving a result (killed outright) is recorded as failed by the
//! report job (its directory's `error.txt`, and its child run ended `FAILED`).
//!
//! Tracking: each job logs to the shared run directory and, when a server is configured, to
//! MLflow under the parent run; the local store sends each run one process at a time (a lock per
//! run), so nothing is sent twice.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::{atomic::AtomicBool, Arc},
};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use valley_experiment::{
    build_student, build_students, cell_config, exp_record, utc_stamp, Experiment, Observers,
    Prepared, Session, Sweep, SweepObserver,
};
use valley_plugin_host::{CallServices, PluginSearch};
use valley_tracking::{now_ms, LocalStore, RunId, RunStatus};

use super::{report, Outcome};
use crate::{
    cli::{ExperimentArgs, StatusArgs},
    progress::SweepPrinter,
};

/// What the submitting command wrote for its jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    /// The resolved experiment (`experiment.json`'s shape).
    pub experiment: serde_json::Value,
    /// Cell keys; array task `i` runs `cells[i]`.
    pub cells: Vec<String>,
    /// Students to build, dependencies first.
    pub students: Vec<String>,
    /// The parent run every job logs under.
    pub parent: String,
    /// Redo finished cells (`--force`).
    pub force: bool,
    /// Sample only (`--sample-only`, or no trainer).
    pub sample_only: bool,
    /// The jobs submitted.
    #[serde(default)]
    pub jobs: Jobs,
}

/// Job ids.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Jobs {
    /// Per student.
    pub students: BTreeMap<String, String>,
    /// The cells' array job.
    pub cells: Option<String>,
    /// The report job.
    pub report: Option<String>,
}

/// The job script; `VALLEY` and `PLAN` are replaced by shell-quoted paths.
const TASK_SCRIPT: &str = r#"#!/bin/bash
# Written by `valley experiment --executor slurm`: runs one step of the plan beside this file.
# USR1 (Slurm's warning before the time limit, or `scancel --signal=USR1 --batch`) and TERM are
# forwarded to valley, which saves a checkpoint and exits 75 (interrupted, resumable); this task
# then requeues itself and its next start resumes from the checkpoint.
valley=VALLEY
plan=PLAN
task=$1
if [[ $task == cells ]]; then
    task="cell:${SLURM_ARRAY_TASK_ID:?not an array task}"
fi
echo "valley task $task: job ${SLURM_JOB_ID:-?} start ${SLURM_RESTART_COUNT:-0} on $(hostname)"
"$valley" experiment "$plan" --slurm-task "$task" &
pid=$!
trap 'kill -USR1 "$pid" 2>/dev/null' USR1
trap 'kill -TERM "$pid" 2>/dev/null' TERM
while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || break
done
if [[ $status -eq 75 ]]; then
    job=$SLURM_JOB_ID
    if [[ -n ${SLURM_ARRAY_JOB_ID:-} ]]; then
        job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
    fi
    echo "valley task $task: interrupted, resumable: requeueing $job"
    if scontrol requeue "$job"; then
        exit 0
    fi
fi
exit "$status"
"#;

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `sbatch ARGS` and returns the job id.
fn sbatch(args: &[String]) -> anyhow::Result<String> {
    let out = Command::new("sbatch")
        .args(args)
        .output()
        .context("running sbatch (is Slurm's client installed and SLURM_CONF set?)")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {text:?}");
    }
    Ok(id)
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn read_plan(path: &Path) -> anyhow::Result<PlanFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a plan file", path.display()))
}

/// Submits the experiment's students, cells and report as Slurm jobs; prints the job ids.
///
/// # Errors
/// Planning errors (as the local executor's), a run directory that cannot be written, `sbatch`
/// missing or refusing a job (the jobs already submitted are cancelled).
pub fn submit(
    args: &ExperimentArgs,
    exp: Experiment,
    search: &PluginSearch,
    cancel: Arc<AtomicBool>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Outcome> {
    let prepared = Prepared::new(exp, search)?;
    let plan = prepared.plan(&CallServices::new("plan", cancel))?;
    let exp = &prepared.experiment;
    let ex = &exp.spec.executor;
    let runs = std::path::absolute(exp.runs_dir())?;
    let stamp = utc_stamp(now_ms()).replace(':', "");
    let dir = runs.join("slurm").join(&stamp);
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    // As the local executor: without a trainer (or with --sample-only) cells only sample, and
    // no student is built.
    let sample_only = args.sample_only || exp.spec.trainer.is_none();
    // Students the arms start from, each after the student it starts from.
    let mut students: Vec<String> = Vec::new();
    fn add(exp: &Experiment, name: &str, into: &mut Vec<String>) {
        if into.iter().any(|n| n == name) {
            return;
        }
        if let Some(from) = exp
            .spec
            .students
            .get(name)
            .and_then(|s| s.from.as_deref())
            .filter(|f| exp.spec.students.contains_key(*f))
        {
            add(exp, from, into);
        }
        into.push(name.to_string());
    }
    if !sample_only {
        for arm in &exp.arms {
            if let Some(name) = &arm.student {
                add(exp, name, &mut students);
            }
        }
    }
    let session = Session::open(exp, out)?;
    let plan_path = dir.join("plan.json");
    let mut file = PlanFile {
        experiment: exp_record(exp),
        cells: plan.cells.iter().map(|c| c.key.clone()).collect(),
        students: students.clone(),
        parent: session.parent().0.clone(),
        force: args.force,
        sample_only,
        jobs: Jobs::default(),
    };
    write_json(&plan_path, &file)?;
    let valley = std::env::current_exe().context("locating the valley executable")?;
    let script = dir.join("task.sh");
    std::fs::write(
        &script,
        TASK_SCRIPT
            .replace("VALLEY", &shell_quote(&valley.to_string_lossy()))
            .replace("PLAN", &shell_quote(&plan_path.to_string_lossy())),
    )
    .with_context(|| format!("writing {}", script.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    let cwd = std::env::current_dir()?;
    let common = |name: String, log: PathBuf| -> Vec<String> {
        let mut a = vec![
            "--parsable".to_string(),
            format!("--job-name={name}"),
            format!("--chdir={}", cwd.display()),
            format!("--output={}", log.display()),
            "--open-mode=append".to_string(),
        ];
        if let Some(p) = &ex.partition {
            a.push(format!("--partition={p}"));
        }
        if let Some(n) = ex.cpus_per_cell {
            a.push(format!("--cpus-per-task={n}"));
        }
        if let Some(n) = ex.gpus_per_cell {
            a.push(format!("--gpus={n}"));
        }
        if let Some(m) = &ex.mem {
            a.push(format!("--mem={m}"));
        }
        if let Some(t) = &ex.time {
            a.push(format!("--time={t}"));
        }
        a.extend(ex.sbatch_args.iter().cloned());
        a
    };
    let mut submitted: Vec<String> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for name in &students {
            let mut a = common(
                format!("valley-{}-student-{name}", exp.name),
                dir.join("logs").join(format!("student-{name}.out")),
            );
            if let Some(dep) = exp
                .spec
                .students
                .get(name)
                .and_then(|s| s.from.as_deref())
                .and_then(|f| file.jobs.students.get(f))
            {
                a.push(format!("--dependency=afterok:{dep}"));
            }
            a.push(script.display().to_string());
            a.push(format!("student:{name}"));
            let id = sbatch(&a)?;
            submitted.push(id.clone());
            file.jobs.students.insert(name.clone(), id);
        }
        let n = file.cells.len();
        let throttle = ex.max_running.map(|k| format!("%{k}")).unwrap_or_default();
        let mut a = common(
            format!("valley-{}-cells", exp.name),
            dir.join("logs").join("cell-%a.out"),
        );
        a.push(format!("--array=0-{}{throttle}", n.saturating_sub(1)));
        a.push("--requeue".into());
        a.push(format!(
            "--signal=B:USR1@{}",
            ex.signal_seconds.unwrap_or(300)
        ));
        if !file.jobs.students.is_empty() {
            let ids: Vec<&str> = file.jobs.students.values().map(String::as_str).collect();
            a.push(format!("--dependency=afterok:{}", ids.join(":")));
        }
        a.push(script.display().to_string());
        a.push("cells".into());
        let cells = sbatch(&a)?;
        submitted.push(cells.clone());
        file.jobs.cells = Some(cells.clone());
        let mut a = common(
            format!("valley-{}-report", exp.name),
            dir.join("logs").join("report.out"),
        );
        a.push(format!("--dependency=afterany:{cells}"));
        a.push(script.display().to_string());
        a.push("report".into());
        let report = sbatch(&a)?;
        submitted.push(report.clone());
        file.jobs.report = Some(report);
        Ok(())
    })();
    if let Err(e) = result {
        if !submitted.is_empty() {
            let _ = Command::new("scancel").args(&submitted).status();
        }
        session.close(RunStatus::Failed, out)?;
        return Err(e.context(format!(
            "submitting {} (cancelled the {} jobs already submitted)",
            exp.name,
            submitted.len()
        )));
    }
    write_json(&plan_path, &file)?;
    std::fs::write(runs.join("slurm").join("latest"), format!("{stamp}\n"))?;
    session.release(out)?;
    for (name, id) in &file.jobs.students {
        writeln!(out, "submitted student {name}: job {id}")?;
    }
    writeln!(
        out,
        "submitted {} cells: array job {} (task i runs cell i of {}){}",
        file.cells.len(),
        file.jobs.cells.as_deref().unwrap_or("?"),
        plan_path.display(),
        ex.max_running
            .map(|k| format!(", at most {k} at once"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "submitted the report: job {}",
        file.jobs.report.as_deref().unwrap_or("?")
    )?;
    writeln!(
        out,
        "logs under {}; `valley status {}` shows each cell",
        dir.join("logs").display(),
        exp.name
    )?;
    Ok(Outcome::Passed)
}

/// Runs one step of a plan written by [`submit`]: `student:NAME`, `cell:INDEX` or `report`.
///
/// # Errors
/// A plan file that cannot be read, an unknown task, planning errors; a failed cell is
/// [`Outcome::Failed`] (its error recorded as locally), a stopped one [`Outcome::Interrupted`].
pub fn task(
    args: &ExperimentArgs,
    task: &str,
    search: &PluginSearch,
    cancel: Arc<AtomicBool>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Outcome> {
    let plan_path = PathBuf::from(&args.name);
    let file = read_plan(&plan_path)?;
    let exp = Experiment::from_record(&file.experiment, &plan_path)?;
    let prepared = Prepared::new(exp, search)?;
    let exp = &prepared.experiment;
    let parent = RunId(file.parent.clone());
    let stopped = || cancel.load(std::sync::atomic::Ordering::SeqCst);
    if task == "report" {
        return report_task(&prepared, &file, parent, out);
    }
    if let Some(name) = task.strip_prefix("student:") {
        let session = Session::attach(exp, parent, out)?;
        let printer = SweepPrinter::new(out);
        let observers = [&session as &dyn SweepObserver, &printer];
        let built = build_student(
            &prepared,
            &prepared.registry,
            &cancel,
            name,
            &Observers(&observers),
        );
        drop(printer);
        session.release(out)?;
        return match built {
            Ok(_) => Ok(Outcome::Passed),
            Err(e) if stopped() => {
                writeln!(out, "stopped: {e}")?;
                Ok(Outcome::Interrupted)
            }
            Err(e) => Err(e.into()),
        };
    }
    let Some(index) = task.strip_prefix("cell:") else {
        bail!("unknown Slurm task `{task}`: expected student:NAME, cell:INDEX or report");
    };
    let index: usize = index
        .parse()
        .map_err(|_| anyhow!("`{task}`: the cell index is not a number"))?;
    let key = file.cells.get(index).ok_or_else(|| {
        anyhow!(
            "`{task}`: the plan {} has {} cells",
            plan_path.display(),
            file.cells.len()
        )
    })?;
    let mut plan = prepared.plan(&CallServices::new("plan", cancel.clone()))?;
    plan.cells.retain(|c| &c.key == key);
    if plan.cells.is_empty() {
        bail!(
            "cell {key} of {} is not in the experiment's plan any more",
            plan_path.display()
        );
    }
    let session = Session::attach(exp, parent, out)?;
    let printer = SweepPrinter::new(out);
    let observers = [&session as &dyn SweepObserver, &printer];
    let observer = Observers(&observers);
    let registry = &prepared.registry;
    let students = match build_students(&prepared, registry, &cancel, file.sample_only, &observer) {
        Ok(s) => s,
        Err(e) => {
            drop(printer);
            session.release(out)?;
            return if stopped() {
                writeln!(out, "stopped: {e}")?;
                Ok(Outcome::Interrupted)
            } else {
                Err(e.into())
            };
        }
    };
    let sweep = Sweep {
        prepared: &prepared,
        plan: &plan,
        observer: &observer,
        registry,
        students: &students,
        cancel: cancel.clone(),
        force: file.force,
        jobs: 1,
        sample_only: file.sample_only,
        base_evals: Default::default(),
    };
    let result = sweep.run();
    drop(printer);
    session.release(out)?;
    let summary = result?;
    Ok(if !summary.failed.is_empty() {
        Outcome::Failed
    } else if stopped() || !summary.killed.is_empty() {
        Outcome::Interrupted
    } else {
        Outcome::Passed
    })
}

/// The scheduler's state of each task of the cells' array job (`squeue -r`), by index.
fn array_states(job: &str) -> BTreeMap<usize, (String, String)> {
    let mut states = BTreeMap::new();
    let Ok(out) = Command::new("squeue")
        .args(["-h", "-r", "-j", job, "-o", "%i|%T|%r"])
        .output()
    else {
        return states;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split('|');
        let (Some(id), Some(state), reason) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if let Some(i) = id
            .rsplit_once('_')
            .and_then(|(_, i)| i.parse::<usize>().ok())
        {
            states.insert(i, (state.to_string(), reason.unwrap_or("").to_string()));
        }
    }
    states
}

/// A cell's state from its run directory.
enum DirState {
    Finished,
    Failed(String),
    Interrupted(String),
    Started,
    None,
}

fn dir_state(dir: &Path) -> DirState {
    if dir.join("result.json").is_file() {
        return DirState::Finished;
    }
    if let Ok(e) = std::fs::read_to_string(dir.join("error.txt")) {
        return DirState::Failed(e.trim().chars().take(200).collect());
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("interrupted.json")) {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        return DirState::Interrupted(format!(
            "at step {}",
            v["step"].as_u64().map_or("?".into(), |s| s.to_string())
        ));
    }
    if dir.join("config.json").is_file() {
        DirState::Started
    } else {
        DirState::None
    }
}

/// The report job: records the cells that ended without a result as failed (with the
/// scheduler's word), writes the report, and ends the parent run.
fn report_task(
    prepared: &Prepared,
    file: &PlanFile,
    parent: RunId,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Outcome> {
    let exp = &prepared.experiment;
    let session = Session::attach(exp, parent.clone(), out)?;
    let store = LocalStore::new(exp.runs_dir().join("tracking"));
    let plan = prepared.plan(&CallServices::new("plan", Arc::new(AtomicBool::new(false))))?;
    let runs = exp.runs_dir();
    let mut all_finished = true;
    for planned in plan.cells.iter().filter(|c| file.cells.contains(&c.key)) {
        let dir = runs.join(&planned.key);
        match dir_state(&dir) {
            DirState::Finished => {}
            DirState::Failed(_) => all_finished = false,
            DirState::Interrupted(_) | DirState::Started | DirState::None => {
                all_finished = false;
                std::fs::create_dir_all(&dir)?;
                if !dir.join("config.json").is_file() {
                    write_json(&dir.join("config.json"), &cell_config(prepared, planned))?;
                }
                let why = "the Slurm task ended without a result (killed, or never started: \
                           its dependency failed or it was cancelled); see the task's log";
                std::fs::write(dir.join("error.txt"), format!("{why}\n"))?;
                // Its child run, if the task got to start one, ends FAILED rather than running on.
                for run in store.runs().unwrap_or_default() {
                    let Ok(summary) = store.summary(&run) else {
                        continue;
                    };
                    if summary.status.is_none()
                        && summary.spec.parent.as_ref() == Some(&parent)
                        && summary.tags.get("valley.cell_key") == Some(&planned.key)
                    {
                        session.end_cell(&run, RunStatus::Failed, Some(why))?;
                    }
                }
                writeln!(
                    out,
                    "{}: failed: the Slurm task ended without a result",
                    planned.key
                )?;
            }
        }
    }
    if let Err(e) =
        report::write_experiment_report(exp, Some(&session), Path::new(report::REPORTS_DIR), out)
    {
        writeln!(out, "report: {e}")?;
    }
    let status = if all_finished {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    session.close(status, out)?;
    Ok(if all_finished {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// `valley status NAME`: each cell of the latest Slurm submission, from its run directory and
/// the scheduler.
///
/// # Errors
/// An experiment that cannot be loaded, or one never submitted to Slurm.
pub fn status(args: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let exp = Experiment::load(&args.name, &args.overrides)?;
    let root = exp.runs_dir().join("slurm");
    let stamp = std::fs::read_to_string(root.join("latest")).map_err(|_| {
        anyhow!(
            "{} was never submitted to Slurm (no {}): `valley experiment {} --executor slurm`",
            exp.name,
            root.join("latest").display(),
            exp.name
        )
    })?;
    let plan_path = root.join(stamp.trim()).join("plan.json");
    let file = read_plan(&plan_path)?;
    let states = file
        .jobs
        .cells
        .as_deref()
        .map(array_states)
        .unwrap_or_default();
    writeln!(
        out,
        "{} submitted {} (plan {}); cells: array job {}",
        exp.name,
        stamp.trim(),
        plan_path.display(),
        file.jobs.cells.as_deref().unwrap_or("?")
    )?;
    writeln!(out, "{:<32} {:<12} DETAIL", "CELL", "STATE")?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, key) in file.cells.iter().enumerate() {
        let queued = states.get(&i);
        let (state, detail) = match (dir_state(&exp.runs_dir().join(key)), queued) {
            (DirState::Finished, _) => ("finished", String::new()),
            (DirState::Failed(e), _) => ("failed", e),
            (_, Some((s, _))) if s == "RUNNING" || s == "COMPLETING" => ("running", String::new()),
            (DirState::Interrupted(at), Some((s, r))) => {
                ("pending", format!("requeued, resumes {at} ({s}: {r})"))
            }
            (_, Some((s, r))) => ("pending", format!("{s}: {r}")),
            (DirState::Interrupted(at), None) => ("interrupted", at),
            (DirState::Started, None) => ("failed", "ended without a result".into()),
            (DirState::None, None) => ("not run", String::new()),
        };
        *counts.entry(state).or_default() += 1;
        writeln!(out, "{key:<32} {state:<12} {detail}")?;
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(out, "{}", summary.join(", "))?;
    Ok(Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_its_paths_and_has_its_placeholders() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert!(TASK_SCRIPT.contains("valley=VALLEY") && TASK_SCRIPT.contains("plan=PLAN"));
    }
}
