//! A seccomp-BPF filter refusing network sockets: `socket()` with AF_INET, AF_INET6, AF_NETLINK
//! or AF_PACKET fails with EACCES, `io_uring_setup` fails with EPERM (io_uring can open sockets
//! without the `socket` system call), and system calls of a foreign ABI (x32, another
//! architecture) fail too, so the filter cannot be sidestepped by switching ABI.
//!
//! `socket(AF_UNIX)` is refused as well: Landlock (ABI 7) does not govern `connect()` to a
//! pathname Unix socket, so a world-writable socket of a host daemon would otherwise be reachable.
//! `socketpair()` stays allowed (asyncio and multiprocessing use it), as does everything else.
//!
//! Written by hand (a dozen BPF instructions) rather than through libseccomp: no C library, and
//! the program is small enough to read.

use super::{LayerStatus, Property};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
/// x32 system calls on x86_64 carry this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn program() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let deny_socket = SECCOMP_RET_ERRNO | libc::EACCES as u32;
    let deny_call = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    vec![
        /* 0 */ stmt(LD_W_ABS, OFF_ARCH),
        /* 1 */ jump(JEQ, AUDIT_ARCH, 1, 0),
        /* 2 */ stmt(RET, SECCOMP_RET_KILL_PROCESS),
        /* 3 */ stmt(LD_W_ABS, OFF_NR),
        /* 4 */ jump(JGE, X32_SYSCALL_BIT, 11, 0), // -> 16 deny_call
        /* 5 */ jump(JEQ, libc::SYS_io_uring_setup as u32, 10, 0), // -> 16
        /* 6 */ jump(JEQ, libc::SYS_socket as u32, 0, 8), // else -> 15 allow
        /* 7 */ stmt(LD_W_ABS, OFF_ARG0),
        /* 8 */ jump(JEQ, libc::AF_INET as u32, 5, 0), // -> 14 deny_socket
        /* 9 */ jump(JEQ, libc::AF_INET6 as u32, 4, 0),
        /* 10 */ jump(JEQ, libc::AF_NETLINK as u32, 3, 0),
        /* 11 */ jump(JEQ, libc::AF_PACKET as u32, 2, 0),
        /* 12 */ jump(JEQ, libc::AF_UNIX as u32, 1, 0),
        /* 13 */ stmt(RET, SECCOMP_RET_ALLOW),
        /* 14 */ stmt(RET, deny_socket),
        /* 15 */ stmt(RET, SECCOMP_RET_ALLOW),
        /* 16 */ stmt(RET, deny_call),
    ]
}

/// Installs the filter on the calling thread (its children and exec'd programs inherit it).
/// Needs `PR_SET_NO_NEW_PRIVS` or CAP_SYS_ADMIN.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn install() -> LayerStatus {
    let mut filter = program();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at a live, well-formed filter for the duration of the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        )
    };
    status(
        rc == 0,
        if rc == 0 {
            "socket(AF_INET|AF_INET6|AF_NETLINK|AF_PACKET|AF_UNIX) and io_uring refused".into()
        } else {
            std::io::Error::last_os_error().to_string()
        },
    )
}

/// On other architectures the filter is not available.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn install() -> LayerStatus {
    status(false, "no filter for this architecture".into())
}

fn status(enforced: bool, detail: String) -> LayerStatus {
    LayerStatus {
        mechanism: "seccomp socket filter".into(),
        property: Property::Network,
        enforced,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every jump lands inside the program and on a return or the argument load.
    #[test]
    fn jumps_stay_inside_the_program() {
        let p = program();
        for (i, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == libc::BPF_JMP as u16 {
                for off in [ins.jt, ins.jf] {
                    let target = i + 1 + usize::from(off);
                    assert!(target < p.len(), "instruction {i} jumps past the end");
                }
            }
        }
        assert_eq!(p.last().unwrap().k & 0xffff_0000, SECCOMP_RET_ERRNO);
    }
}
