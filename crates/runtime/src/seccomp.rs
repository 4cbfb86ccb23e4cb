//! OCI `linux.seccomp` → a classic BPF filter, installed just before `execve`. We compile the subset berth's
//! profiles use (a default action plus per-syscall actions, with EQ/NE/MASKED_EQ conditions on the low 32 bits
//! of an argument) ourselves rather than link libseccomp: the program is a straight list of checks.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use crate::Error;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// BPF opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

// struct seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

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

/// x86_64 syscall numbers of the names seccomp profiles commonly list.
fn syscall_nr(name: &str) -> Option<u32> {
    Some(match name {
        "ptrace" => 101,
        "syslog" => 103,
        "personality" => 135,
        "uselib" => 134,
        "ustat" => 136,
        "sysfs" => 139,
        "_sysctl" => 156,
        "adjtimex" => 159,
        "chroot" => 161,
        "acct" => 163,
        "settimeofday" => 164,
        "mount" => 165,
        "umount2" => 166,
        "swapon" => 167,
        "swapoff" => 168,
        "reboot" => 169,
        "sethostname" => 170,
        "setdomainname" => 171,
        "iopl" => 172,
        "ioperm" => 173,
        "create_module" => 174,
        "init_module" => 175,
        "delete_module" => 176,
        "get_kernel_syms" => 177,
        "query_module" => 178,
        "quotactl" => 179,
        "nfsservctl" => 180,
        "lookup_dcookie" => 212,
        "clock_settime" => 227,
        "vserver" => 236,
        "mbind" => 237,
        "set_mempolicy" => 238,
        "get_mempolicy" => 239,
        "kexec_load" => 246,
        "add_key" => 248,
        "request_key" => 249,
        "keyctl" => 250,
        "migrate_pages" => 256,
        "unshare" => 272,
        "move_pages" => 279,
        "perf_event_open" => 298,
        "fanotify_init" => 300,
        "name_to_handle_at" => 303,
        "open_by_handle_at" => 304,
        "clock_adjtime" => 305,
        "setns" => 308,
        "process_vm_readv" => 310,
        "process_vm_writev" => 311,
        "kcmp" => 312,
        "finit_module" => 313,
        "bpf" => 321,
        "kexec_file_load" => 320,
        "userfaultfd" => 323,
        "pivot_root" => 155,
        "clone" => 56,
        "clone3" => 435,
        "io_uring_setup" => 425,
        "io_uring_enter" => 426,
        "io_uring_register" => 427,
        "open_tree" => 428,
        "move_mount" => 429,
        "fsopen" => 430,
        "fsconfig" => 431,
        "fsmount" => 432,
        "fspick" => 433,
        "pidfd_getfd" => 438,
        "mount_setattr" => 442,
        "quotactl_fd" => 443,
        "fanotify_mark" => 301,
        _ => return None,
    })
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, Error> {
    match a {
        LinuxSeccompAction::ScmpActNotify | LinuxSeccompAction::ScmpActTrace => {
            Err(Error::Spec(format!("seccomp action {a:?} is not supported")))
        }
        other => Ok(other.as_u32(errno)),
    }
}

/// Compiles the profile. Syscalls of other ABIs (i386, x32) get ENOSYS: a list of x86_64 numbers says
/// nothing about them, so letting them through would bypass every rule.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>, Error> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    let mut p = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, enosys),
        stmt(LD_W_ABS, OFF_NR),
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, enosys),
    ];
    for rule in s.syscalls().iter().flatten() {
        let ret = action(rule.action(), rule.errno_ret())?;
        let args = rule.args().clone().unwrap_or_default();
        if args.len() > 1 {
            return Err(Error::Spec(
                "seccomp rules with more than one argument condition are not supported".into(),
            ));
        }
        for name in rule.names() {
            let Some(nr) = syscall_nr(name) else {
                return Err(Error::Spec(format!("seccomp: unknown syscall {name:?}")));
            };
            p.push(stmt(LD_W_ABS, OFF_NR));
            match args.first() {
                None => {
                    p.push(jump(JEQ_K, nr, 0, 1));
                    p.push(stmt(RET_K, ret));
                }
                Some(a) => {
                    // Low 32 bits of the argument (flags fit there; x86_64 is little-endian).
                    let off = OFF_ARGS + 8 * a.index() as u32;
                    let (mask, want, ret_if_equal) = match a.op() {
                        LinuxSeccompOperator::ScmpCmpMaskedEq => {
                            (a.value() as u32, a.value_two().unwrap_or(0) as u32, true)
                        }
                        LinuxSeccompOperator::ScmpCmpEq => (u32::MAX, a.value() as u32, true),
                        LinuxSeccompOperator::ScmpCmpNe => (u32::MAX, a.value() as u32, false),
                        op => return Err(Error::Spec(format!("seccomp operator {op:?} is not supported"))),
                    };
                    p.push(jump(JEQ_K, nr, 0, if ret_if_equal { 4 } else { 5 }));
                    p.push(stmt(LD_W_ABS, off));
                    p.push(stmt(AND_K, mask));
                    if ret_if_equal {
                        p.push(jump(JEQ_K, want, 0, 1));
                    } else {
                        p.push(jump(JEQ_K, want, 1, 0));
                        p.push(stmt(LD_W_ABS, OFF_NR)); // keeps the jump distances of both shapes aligned
                    }
                    p.push(stmt(RET_K, ret));
                }
            }
        }
    }
    p.push(stmt(RET_K, default));
    Ok(p)
}

/// Installs a compiled filter on the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
pub fn install(prog: &[libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the program outlives the call; the kernel copies it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const _ as libc::c_ulong,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_names_and_conditions() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mount", "unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 0x10000000u64, "valueTwo": 0x10000000u64, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }));
        let prog = compile(&p).unwrap();
        // header (6) + 2 × 3 for the plain names + 6 for the conditional rule + default return
        assert_eq!(prog.len(), 6 + 6 + 6 + 1);
        assert_eq!(prog.last().unwrap().k, 0x7fff0000);
    }

    #[test]
    fn unknown_syscall_is_an_error() {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["frobnicate"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        assert!(compile(&p).is_err());
    }

    #[test]
    fn filter_really_blocks_in_a_child() {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
        );
        let prog = compile(&p).unwrap();
        // SAFETY: fork in a test; the child only makes raw syscalls and exits.
        match unsafe { libc::fork() } {
            0 => unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let ok = install(&prog).is_ok();
                let r = libc::unshare(0);
                let e = *libc::__errno_location();
                libc::_exit(if ok && r == -1 && e == libc::EPERM { 0 } else { 1 });
            },
            pid => {
                let mut st = 0;
                unsafe { libc::waitpid(pid, &mut st, 0) };
                assert_eq!(libc::WEXITSTATUS(st), 0);
            }
        }
    }
}
