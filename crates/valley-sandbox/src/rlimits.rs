//! Resource limits of the sandboxed program (setrlimit in the program's process, before the uid
//! drop). RLIMIT_NPROC counts every process and thread of the uid, which is why each concurrent
//! slot has its own uid, and why it does nothing for root.

use super::{LayerStatus, Limits, Property};

/// Sets CPU, address space, file size, open files, process and core-dump limits on the calling
/// process. Returns the layer status; an error names the limit that failed.
pub fn apply(limits: &Limits) -> LayerStatus {
    // CPU: SIGXCPU at the soft limit, SIGKILL one second later at the hard one.
    let cpu = limits.cpu_seconds.max(1);
    let table: [(&str, libc::__rlimit_resource_t, u64, u64); 6] = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU, cpu, cpu + 1),
        (
            "RLIMIT_AS",
            libc::RLIMIT_AS,
            limits.address_space_bytes,
            limits.address_space_bytes,
        ),
        (
            "RLIMIT_FSIZE",
            libc::RLIMIT_FSIZE,
            limits.file_size_bytes,
            limits.file_size_bytes,
        ),
        (
            "RLIMIT_NOFILE",
            libc::RLIMIT_NOFILE,
            limits.open_files,
            limits.open_files,
        ),
        (
            "RLIMIT_NPROC",
            libc::RLIMIT_NPROC,
            limits.processes,
            limits.processes,
        ),
        ("RLIMIT_CORE", libc::RLIMIT_CORE, 0, 0),
    ];
    for (name, resource, soft, hard) in table {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: plain system call with a valid pointer.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return LayerStatus {
                mechanism: "rlimits".into(),
                property: Property::ResourceLimits,
                enforced: false,
                detail: format!("{name}: {}", std::io::Error::last_os_error()),
            };
        }
    }
    LayerStatus {
        mechanism: "rlimits".into(),
        property: Property::ResourceLimits,
        enforced: true,
        detail: format!(
            "cpu {cpu}s, as {} MiB, fsize {} MiB, nofile {}, nproc {}",
            limits.address_space_bytes >> 20,
            limits.file_size_bytes >> 20,
            limits.open_files,
            limits.processes
        ),
    }
}
