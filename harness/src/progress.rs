//! Progress of a sweep: bars when stdout is a terminal (cells done of all with an ETA, and a bar
//! per running cell showing its step and loss), plain lines on stderr otherwise (one per tenth of
//! a call's work), so logs of CI runs stay readable.

use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
    time::Duration,
};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use valley_plugin_api::Progress;

use crate::plugins::ProgressSink;

/// The progress display of one sweep.
pub struct SweepProgress {
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl SweepProgress {
    /// A display for `cells` cells: bars on a terminal, nothing drawn otherwise.
    pub fn new(cells: usize) -> Self {
        let bars = std::io::stdout().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let overall = multi.add(ProgressBar::new(cells as u64));
            overall.set_style(
                ProgressStyle::with_template("cells {pos}/{len} [{bar:30}] {elapsed} (ETA {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            overall.enable_steady_tick(Duration::from_millis(500));
            (multi, overall)
        });
        Self { bars }
    }

    /// The progress sink of one call of a cell (`phase`: train, eval).
    pub fn cell_sink(&self, key: &str, phase: &str) -> ProgressSink<'static> {
        let label = format!("{key} {phase}");
        match &self.bars {
            Some((multi, _)) => {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("  {prefix:<40} {pos}/{len} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(label);
                Box::new(move |p: &Progress| {
                    bar.set_length(p.total);
                    bar.set_position(p.done);
                    bar.set_message(p.message.to_string());
                    if p.total > 0 && p.done >= p.total {
                        bar.finish_and_clear();
                    }
                })
            }
            None => log_every_tenth(label),
        }
    }

    /// Counts one cell as done.
    pub fn cell_done(&self) {
        if let Some((_, overall)) = &self.bars {
            overall.inc(1);
        }
    }

    /// Prints a line above the bars (or to `out`).
    pub fn println(&self, line: &str, out: &mut dyn Write) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some((multi, overall)) = &self.bars {
            overall.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

/// A sink that prints `label done/total message` on stderr each time a call passes another tenth
/// of its work (and at its end).
pub fn log_every_tenth(label: String) -> ProgressSink<'static> {
    let last = Mutex::new(None::<u64>);
    Box::new(move |p: &Progress| {
        let tenth = (p.done * 10).checked_div(p.total).unwrap_or(p.done);
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if *last != Some(tenth) {
            *last = Some(tenth);
            eprintln!("  {label}: {}/{} {}", p.done, p.total, p.message);
        }
    })
}
