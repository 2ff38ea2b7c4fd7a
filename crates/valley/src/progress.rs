//! The command line's view of a sweep, a [`SweepObserver`]: one line per cell as it ends and per
//! student; bars when stdout is a terminal (cells done of all with an ETA, and a bar per running
//! call showing its step and loss), plain lines on stderr otherwise (one per tenth of a call's
//! work), so logs of CI runs stay readable.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Write},
    sync::Mutex,
    time::Duration,
};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use valley_experiment::{CellEnd, Phase, StudentState, SweepEvent, SweepObserver};
use valley_plugin_api::Progress;

/// Prints a sweep's events to `out` (the bars, when drawn, to the terminal).
pub struct SweepPrinter<'w> {
    out: Mutex<&'w mut (dyn Write + Send)>,
    bars: Option<(MultiProgress, ProgressBar)>,
    /// The bar (terminal) or the last tenth printed (log) of each running call.
    calls: Mutex<BTreeMap<(String, &'static str), Call>>,
}

enum Call {
    Bar(ProgressBar),
    Tenth(Option<u64>),
}

impl<'w> SweepPrinter<'w> {
    /// A printer to `out`; bars only when stdout is a terminal.
    pub fn new(out: &'w mut (dyn Write + Send)) -> Self {
        let bars = std::io::stdout().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template("cells {pos}/{len} [{bar:30}] {elapsed} (ETA {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            (multi, overall)
        });
        Self {
            out: Mutex::new(out),
            bars,
            calls: Mutex::default(),
        }
    }

    /// Prints a line above the bars (or to `out`).
    fn println(&self, line: &str) -> std::io::Result<()> {
        match &self.bars {
            Some((multi, _)) => multi.println(line),
            None => writeln!(self.out.lock().unwrap_or_else(|e| e.into_inner()), "{line}"),
        }
    }

    fn progress(&self, key: &str, phase: Phase, p: &Progress) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let id = (key.to_string(), phase.as_str());
        let call = calls.entry(id).or_insert_with(|| match &self.bars {
            Some((multi, _)) => {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("  {prefix:<40} {pos}/{len} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(format!("{key} {}", phase.as_str()));
                Call::Bar(bar)
            }
            None => Call::Tenth(None),
        });
        match call {
            Call::Bar(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done);
                bar.set_message(p.message.to_string());
                if p.total > 0 && p.done >= p.total {
                    bar.finish_and_clear();
                }
            }
            Call::Tenth(last) => {
                // A line each time a call passes another tenth of its work (and at its end).
                let tenth = (p.done * 10).checked_div(p.total).unwrap_or(p.done);
                if *last != Some(tenth) {
                    *last = Some(tenth);
                    eprintln!(
                        "  {key} {}: {}/{} {}",
                        phase.as_str(),
                        p.done,
                        p.total,
                        p.message
                    );
                }
            }
        }
    }
}

impl Drop for SweepPrinter<'_> {
    /// Removes the bars.
    fn drop(&mut self) {
        if let Some((multi, overall)) = &self.bars {
            overall.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

impl SweepObserver for SweepPrinter<'_> {
    fn on_sweep_event(&self, event: &SweepEvent<'_>) -> valley_experiment::Result<()> {
        let line = match event {
            SweepEvent::Started { cells } => {
                if let Some((_, overall)) = &self.bars {
                    overall.set_length(*cells as u64);
                    overall.enable_steady_tick(Duration::from_millis(500));
                }
                return Ok(());
            }
            SweepEvent::Student { name, state } => match state {
                StudentState::Cached(checkpoint) => {
                    format!("student {name}: cached at {}", checkpoint.display())
                }
                StudentState::Training {
                    trainer,
                    dir,
                    resume_from,
                } => format!(
                    "student {name}: training ({trainer}) into {}{}",
                    dir.display(),
                    resume_from
                        .as_ref()
                        .map(|r| format!(", resuming from {}", r.display()))
                        .unwrap_or_default()
                ),
                StudentState::Built(checkpoint) => {
                    format!("student {name}: done, {}", checkpoint.display())
                }
            },
            SweepEvent::Progress {
                key,
                phase,
                progress,
            } => {
                self.progress(key, *phase, progress);
                return Ok(());
            }
            SweepEvent::TrainingResumes {
                key,
                step,
                checkpoint,
            } => match step {
                Some(step) => format!(
                    "{key:<32} resumes training at step {step} ({})",
                    checkpoint.display()
                ),
                None => format!("{key:<32} resumes training from {}", checkpoint.display()),
            },
            SweepEvent::CellEnded { key, end } => {
                if let Some((_, overall)) = &self.bars {
                    overall.inc(1);
                }
                match end {
                    CellEnd::Finished(what) => format!("{key:<32} {what}"),
                    CellEnd::Base => format!("{key:<32} base model (size 0): nothing to sample"),
                    CellEnd::Skipped(why) => format!("{key:<32} skipped ({why})"),
                    CellEnd::Failed(e) => format!("{key:<32} FAILED: {e}"),
                    CellEnd::Killed(why) => format!("{key:<32} stopped: {why}"),
                }
            }
            SweepEvent::CellStarted { .. }
            | SweepEvent::CellSampled { .. }
            | SweepEvent::Metrics { .. }
            | SweepEvent::Artifact { .. }
            | SweepEvent::Finished => return Ok(()),
        };
        self.println(&line)
            .map_err(|e| valley_experiment::Error::io("<stdout>", e))
    }
}
