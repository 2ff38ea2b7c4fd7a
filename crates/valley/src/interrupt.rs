//! Ctrl-C: the first SIGINT sets the shared cancel flag (running cells stop at their next step,
//! their runs are marked killed and their checkpoints kept); a second one ends the process at
//! once, as the default handler does.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe work here: an atomic store and re-arming the default action.
    INTERRUPTED.store(true, Ordering::SeqCst);
    // SAFETY: `signal` is async-signal-safe; SIG_DFL makes the next Ctrl-C end the process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Installs the handler and returns the cancel flag it sets (a watcher thread copies the
/// signal's flag into it every 100 ms).
pub fn on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    // SAFETY: the handler only touches an atomic and calls `signal`, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let flag = cancel.clone();
    std::thread::spawn(move || loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            if !flag.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\nstopping: running cells end at their next step (Ctrl-C again to quit now)"
                );
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
    cancel
}
