//! `clone3` with the namespace flags, fork-style (no new stack): the child returns 0 and continues with a copy
//! of the parent's memory. Neither nix nor rustix wraps clone3, hence the raw syscall.

use std::os::fd::RawFd;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of the clone we are on.
pub(crate) enum Forked {
    Child,
    Parent { pid: i32 },
}

/// Clones the calling (single-threaded) process into new namespaces. With `cgroup_fd`, the child is born inside
/// that cgroup v2 directory (`CLONE_INTO_CGROUP`), so it never runs a cycle outside its limits.
pub(crate) fn clone_into(ns_flags: i32, cgroup_fd: Option<RawFd>) -> std::io::Result<Forked> {
    let mut args = CloneArgs {
        flags: ns_flags as u32 as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= 0x200000000; // CLONE_INTO_CGROUP
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without a stack behaves like fork; the caller is single-threaded (the monitor), so the child
    // may keep using the heap.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { pid: pid as i32 }),
    }
}
