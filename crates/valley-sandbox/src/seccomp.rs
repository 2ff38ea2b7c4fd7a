//! A seccomp-BPF filter, the second wall around the network and the wall between the processes
//! of one run:
//!
//! - `socket()` fails with EACCES whatever the family: nothing the judge runs needs a socket, so
//!   the families are an allowlist, and it is empty (a denylist missed AF_VSOCK, AF_ALG, …);
//!   `socketpair()` is allowed for AF_UNIX only (asyncio and multiprocessing use it), and cannot
//!   reach anything outside the pair;
//! - `ptrace`, `process_vm_readv`, `process_vm_writev`, `pidfd_getfd` and `kcmp` fail with EPERM,
//!   so a test's process can neither stop, read nor write its driver (nor take its file
//!   descriptors), although both run under the same uid; `/proc`, the other way in, is outside
//!   the read allowlist;
//! - `io_uring_setup` fails with EPERM (io_uring can open sockets without the `socket` system
//!   call);
//! - system calls of a foreign ABI (x32, another architecture) kill the process, so the filter
//!   cannot be sidestepped by switching ABI.
//!
//! Written by hand (two dozen BPF instructions, jumps resolved from labels) rather than through
//! libseccomp: no C library, and the program is small enough to read.

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

/// System calls refused with EPERM.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const DENIED_CALLS: [(&str, libc::c_long); 6] = [
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("kcmp", libc::SYS_kcmp),
];

/// Where a jump goes: the next instruction plus an offset, or a named return.
#[derive(Clone, Copy)]
enum To {
    Next,
    Allow,
    DenySocket,
    DenyCall,
    Kill,
}

enum Ins {
    Load(u32),
    Jeq(u32, To, To),
    Jge(u32, To, To),
}

/// The filter program.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn program() -> Vec<libc::sock_filter> {
    use To::*;
    let mut body = vec![
        Ins::Load(OFF_ARCH),
        Ins::Jeq(AUDIT_ARCH, Next, Kill),
        Ins::Load(OFF_NR),
        Ins::Jge(X32_SYSCALL_BIT, DenyCall, Next),
    ];
    for (_, nr) in DENIED_CALLS {
        body.push(Ins::Jeq(nr as u32, DenyCall, Next));
    }
    body.push(Ins::Jeq(libc::SYS_socket as u32, DenySocket, Next));
    // socketpair: anything but AF_UNIX is refused.
    body.push(Ins::Jeq(libc::SYS_socketpair as u32, Next, Allow));
    body.push(Ins::Load(OFF_ARG0));
    body.push(Ins::Jeq(libc::AF_UNIX as u32, Allow, DenySocket));
    assemble(&body)
}

/// Resolves the labels: the returns follow the body in the order Allow, DenySocket, DenyCall,
/// Kill.
fn assemble(body: &[Ins]) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let n = body.len();
    let ret_at = |to: To| match to {
        To::Allow => n,
        To::DenySocket => n + 1,
        To::DenyCall => n + 2,
        To::Kill => n + 3,
        To::Next => unreachable!("Next is not a return"),
    };
    let offset = |i: usize, to: To| -> u8 {
        match to {
            To::Next => 0,
            _ => u8::try_from(ret_at(to) - i - 1).expect("the filter is short"),
        }
    };
    let mut out: Vec<libc::sock_filter> = body
        .iter()
        .enumerate()
        .map(|(i, ins)| match *ins {
            Ins::Load(off) => libc::sock_filter {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: off,
            },
            Ins::Jeq(k, t, f) => libc::sock_filter {
                code: JEQ,
                jt: offset(i, t),
                jf: offset(i, f),
                k,
            },
            Ins::Jge(k, t, f) => libc::sock_filter {
                code: JGE,
                jt: offset(i, t),
                jf: offset(i, f),
                k,
            },
        })
        .collect();
    for to in [To::Allow, To::DenySocket, To::DenyCall, To::Kill] {
        out.push(libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: ret_value(to),
        });
    }
    out
}

fn ret_value(to: To) -> u32 {
    match to {
        To::Allow | To::Next => SECCOMP_RET_ALLOW,
        To::DenySocket => SECCOMP_RET_ERRNO | libc::EACCES as u32,
        To::DenyCall => SECCOMP_RET_ERRNO | libc::EPERM as u32,
        To::Kill => SECCOMP_RET_KILL_PROCESS,
    }
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
            format!(
                "socket() refused for every family, socketpair() AF_UNIX only; {} refused",
                DENIED_CALLS.map(|(name, _)| name).join(", ")
            )
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

    /// Runs the filter on one system call the way the kernel does.
    fn verdict(nr: libc::c_long, arg0: u32, arch: u32) -> u32 {
        let p = program();
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = p[pc];
            match ins.code {
                c if c == (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16 => {
                    acc = match ins.k {
                        OFF_NR => nr as u32,
                        OFF_ARCH => arch,
                        OFF_ARG0 => arg0,
                        k => panic!("load of offset {k}"),
                    };
                    pc += 1;
                }
                c if c == (libc::BPF_RET | libc::BPF_K) as u16 => return ins.k,
                c => {
                    let taken = if c == (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16 {
                        acc == ins.k
                    } else {
                        acc >= ins.k
                    };
                    pc += 1 + usize::from(if taken { ins.jt } else { ins.jf });
                }
            }
        }
    }

    #[test]
    fn the_filter_allows_denies_and_kills_what_it_says() {
        let errno = |e: i32| SECCOMP_RET_ERRNO | e as u32;
        let native = AUDIT_ARCH;
        assert_eq!(verdict(libc::SYS_read, 0, native), SECCOMP_RET_ALLOW);
        for family in [
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_UNIX,
            libc::AF_VSOCK,
            libc::AF_ALG,
            libc::AF_NETLINK,
            libc::AF_PACKET,
        ] {
            assert_eq!(
                verdict(libc::SYS_socket, family as u32, native),
                errno(libc::EACCES),
                "socket({family})"
            );
        }
        assert_eq!(
            verdict(libc::SYS_socketpair, libc::AF_UNIX as u32, native),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            verdict(libc::SYS_socketpair, libc::AF_INET as u32, native),
            errno(libc::EACCES)
        );
        for (name, nr) in DENIED_CALLS {
            assert_eq!(verdict(nr, 0, native), errno(libc::EPERM), "{name}");
        }
        assert_eq!(
            verdict(libc::SYS_read, 0, 0x4000_0003),
            SECCOMP_RET_KILL_PROCESS
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            verdict(libc::SYS_read | X32_SYSCALL_BIT as libc::c_long, 0, native),
            errno(libc::EPERM)
        );
    }
}
