//! Linux namespaces of a run, set up by the supervisor before it forks the namespace's init:
//!
//! - network: a new, empty network namespace (not even loopback is up), so no packet leaves;
//! - PID: the first child becomes PID 1 of a new namespace; when it exits, the kernel kills every
//!   other process in it, `setsid` and double-forked daemons included, and the supervisor's
//!   `waitpid` on it returns only once they are all gone;
//! - IPC and UTS: no shared System V objects with the host;
//! - mount: a private mount table holding a size-limited tmpfs on the work directory (the disk
//!   quota) and a fresh `/proc` that shows only the sandbox's own processes.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use super::{LayerStatus, Property};

fn layer(mechanism: &str, property: Property, result: Result<String, String>) -> LayerStatus {
    let (enforced, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    LayerStatus {
        mechanism: mechanism.into(),
        property,
        enforced,
        detail,
    }
}

fn unshare(flags: libc::c_int) -> Result<(), String> {
    // SAFETY: plain system call.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(format!("unshare: {}", std::io::Error::last_os_error()))
    }
}

/// Moves the caller into a new, empty network namespace.
pub fn network() -> LayerStatus {
    layer(
        "network namespace",
        Property::Network,
        unshare(libc::CLONE_NEWNET).map(|()| "new empty namespace".into()),
    )
}

/// Makes the caller's next child PID 1 of a new PID namespace (and unshares IPC and UTS,
/// best effort).
pub fn pid() -> LayerStatus {
    let _ = unshare(libc::CLONE_NEWIPC | libc::CLONE_NEWUTS);
    layer(
        "pid namespace",
        Property::ProcessTree,
        unshare(libc::CLONE_NEWPID).map(|()| "killing its init kills the whole tree".into()),
    )
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))
}

fn mount(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let src_c = CString::new(src).expect("static source");
    let fstype_c = CString::new(fstype).expect("static fstype");
    let target_c = cstr(target)?;
    let data_c = data.map(|d| CString::new(d).expect("mount options"));
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let rc = unsafe {
        libc::mount(
            src_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ptr(),
            flags,
            data_c
                .as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "mount {fstype} on {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        ))
    }
}

/// The name of the work tmpfs mechanism.
pub const WORK_TMPFS: &str = "work tmpfs (mount namespace)";

/// Moves the caller into a private mount namespace and mounts a tmpfs of `size` bytes, owned by
/// `uid`, on `work`. Without it the work directory stays a plain directory (no quota).
pub fn work_tmpfs(work: &Path, size: u64, uid: u32) -> LayerStatus {
    let result = (|| {
        unshare(libc::CLONE_NEWNS)?;
        // Nothing mounted here may propagate back to the host.
        mount(
            "none",
            Path::new("/"),
            "none",
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?;
        let opts = format!("size={size},mode=0700,uid={uid},gid={uid},nr_inodes=4096");
        mount(
            "valley-sandbox",
            work,
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&opts),
        )?;
        Ok(format!("tmpfs of {} KiB, 4096 inodes", size >> 10))
    })();
    layer(WORK_TMPFS, Property::DiskQuota, result)
}

/// Mounts a fresh `/proc` for the caller's PID namespace (call from its init, inside a private
/// mount namespace), so the program sees only its own processes.
pub fn fresh_proc() -> Result<(), String> {
    mount(
        "proc",
        Path::new("/proc"),
        "proc",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
}
