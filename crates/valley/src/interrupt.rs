//! Signals that stop a run so that it can be resumed: SIGINT (Ctrl-C), SIGTERM (`kill`, a
//! scheduler's end of job) and SIGUSR1 (what Slurm sends before a time limit or preemption when
//! asked with `--signal`). The first one sets the shared cancel flag: running trainers save a
//! checkpoint at their next step and return "interrupted, resumable", cells not started stay
//! unstarted, their runs are marked killed, and `valley` exits with
//! [`valley_plugin_api::EXIT_INTERRUPTED`] (75); rerunning the command resumes them. A second
//! Ctrl-C (or SIGTERM) ends the process at once, as the default action does.

use std::sync::{
    atomic::{AtomicBool, AtomicI32, Ordering},
    Arc,
};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic store and re-arming the default action.
    SIGNAL.store(signal, Ordering::SeqCst);
    if signal == libc::SIGINT || signal == libc::SIGTERM {
        // SAFETY: `signal` is async-signal-safe; SIG_DFL makes the next one end the process.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "Ctrl-C",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

/// Installs the handlers and returns the cancel flag they set (a watcher thread copies the
/// signal's flag into it every 100 ms).
pub fn on_stop_signals() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: the handler only touches an atomic and calls `signal`, both async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
    let flag = cancel.clone();
    std::thread::spawn(move || loop {
        let signal = SIGNAL.load(Ordering::SeqCst);
        if signal != 0 {
            if !flag.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\nstopping ({}): running cells save a checkpoint at their next step; rerun \
                     the same command to resume (Ctrl-C again to quit now)",
                    name(signal)
                );
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
    cancel
}
