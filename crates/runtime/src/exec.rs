//! Running another process in a running container: join its namespaces and cgroup, then the same
//! user/capability/exec tail as the init.

use std::fs::File;
use std::os::unix::fs::MetadataExt;

use berth_cgroups::Cgroup;
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::Process;

use crate::sync::{Channel, FailKind};
use crate::{init, io, process, spawn, tty, Container, Error, Stdio};

/// What to run where.
pub struct ExecOptions<'a> {
    /// The container's init pid on the host.
    pub pid: i32,
    /// The process to run (args, env, cwd, user, capabilities).
    pub process: &'a Process,
    /// The container's cgroup, to join.
    pub cgroup: Option<Cgroup>,
    /// stdio of the new process.
    pub stdio: Stdio,
    /// The container's seccomp profile, applied to the new process too.
    pub seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
}

const NAMESPACES: [(&str, CloneFlags); 4] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Starts `opts.process` inside the container of `opts.pid`; the returned process waits for
/// [`Container::start`]. The caller must be single-threaded; its pid namespace for children is changed.
pub fn exec(opts: ExecOptions) -> Result<Container, Error> {
    let ns = |name: &str| -> Result<Option<File>, Error> {
        let theirs = format!("/proc/{}/ns/{name}", opts.pid);
        let f = File::open(&theirs).map_err(|e| io(format!("open {theirs}"), e))?;
        let same = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .map(|m| m.ino())
            .ok()
            == f.metadata().map(|m| m.ino()).ok();
        Ok(if same { None } else { Some(f) })
    };
    // Joining a pid namespace only affects children, so the caller joins it and the clone lands inside.
    if let Some(pidns) = ns("pid")? {
        setns(&pidns, CloneFlags::CLONE_NEWPID).map_err(|e| io("join pid namespace", e))?;
    }
    let mut joins = Vec::new();
    for (name, flag) in NAMESPACES {
        if let Some(f) = ns(name)? {
            joins.push((f, flag));
        }
    }
    let stdio = opts.stdio;
    let process = opts.process;
    let seccomp = opts.seccomp;
    spawn(0, opts.cgroup, move |chan| {
        child(chan, &joins, stdio, process, seccomp)
    })
}

fn child(
    chan: &Channel,
    joins: &[(File, CloneFlags)],
    stdio: Stdio,
    p: &Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
) -> ! {
    let r = (|| -> Result<process::ExecFailure, Error> {
        process::reset_signals();
        match chan.recv() {
            Ok(r) if r.message.is_some() => {}
            _ => unsafe { libc::_exit(1) },
        }
        nix::unistd::setsid().map_err(|e| io("setsid", e))?;
        init::setup_stdio(&stdio)?;
        for (f, flag) in joins {
            setns(f, *flag).map_err(|e| io(format!("join namespace {flag:?}"), e))?;
        }
        nix::unistd::chdir("/").map_err(|e| io("chdir /", e))?;
        if matches!(stdio, Stdio::Terminal) {
            tty::setup_console(chan, false)?;
        }
        init::finish(p, seccomp, chan)
    })();
    let f = match r {
        Ok(f) => f,
        Err(e) => process::ExecFailure {
            kind: FailKind::Setup,
            errno: 0,
            message: e.to_string(),
        },
    };
    let _ = chan.send(&crate::sync::Message::Failed {
        kind: f.kind,
        errno: f.errno,
        message: f.message,
    });
    unsafe { libc::_exit(1) }
}
