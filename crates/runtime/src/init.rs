//! The container's init, from the moment `clone3` returns in the child until `execve`. It runs in the new
//! namespaces, reports every failure to the parent over the channel, and never returns.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::process::dup2;
use crate::sync::{Channel, FailKind, Message};
use crate::{devices, mounts, netlo, process, tty, Error, Stdio};

/// What the child needs besides the spec: where things are on the host, decided by the parent.
pub(crate) struct InitContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub overlay: Option<String>,
    pub stdio: &'a Stdio,
    pub new_netns: bool,
}

/// Runs the init sequence and exits; the parent learns the outcome from the channel (EOF means exec'd).
pub(crate) fn child_main(ctx: &InitContext, chan: &Channel) -> ! {
    let failure = match run(ctx, chan) {
        Ok(f) => f,
        Err(e) => process::ExecFailure {
            kind: FailKind::Setup,
            errno: 0,
            message: e.to_string(),
        },
    };
    let _ = chan.send(&Message::Failed {
        kind: failure.kind,
        errno: failure.errno,
        message: failure.message,
    });
    // SAFETY: leave without running the parent's atexit handlers or destructors in this copy of its memory.
    unsafe { libc::_exit(1) }
}

fn wait_for(chan: &Channel, want: Message) -> Result<(), Error> {
    match chan.recv() {
        Ok(r) if r.message.as_ref() == Some(&want) => Ok(()),
        // The parent went away: nothing left to report to.
        Ok(_) => unsafe { libc::_exit(1) },
        Err(e) => Err(Error::Io {
            context: "read from parent".into(),
            source: e,
        }),
    }
}

fn io(context: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Io {
        context: context.to_string(),
        source: e.into(),
    }
}

pub(crate) fn setup_stdio(stdio: &Stdio) -> Result<(), Error> {
    if let Stdio::Fds {
        stdin,
        stdout,
        stderr,
    } = *stdio
    {
        for (from, to) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
            if from != to {
                dup2(from, to).map_err(|e| io("dup2 stdio", e))?;
            }
        }
    }
    Ok(())
}

/// Joins the namespaces the spec names by path (e.g. another container's network).
fn join_namespaces(spec: &Spec) -> Result<(), Error> {
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        if let Some(path) = ns.path() {
            let f = std::fs::File::open(path)
                .map_err(|e| io(&format!("open namespace {}", path.display()), e))?;
            let flags = nix::sched::CloneFlags::from_bits_truncate(ns.typ() as i32);
            nix::sched::setns(&f, flags).map_err(|e| io(&format!("join namespace {}", path.display()), e))?;
        }
    }
    Ok(())
}

fn run(ctx: &InitContext, chan: &Channel) -> Result<process::ExecFailure, Error> {
    let spec = ctx.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    let proc_ = spec
        .process()
        .clone()
        .ok_or_else(|| Error::Spec("spec has no process".into()))?;
    process::reset_signals();
    wait_for(chan, Message::CgroupJoined)?;
    nix::unistd::setsid().map_err(|e| io("setsid", e))?;
    setup_stdio(ctx.stdio)?;
    join_namespaces(spec)?;

    let own_mnt_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount);
    if own_mnt_ns {
        mounts::make_private(linux.rootfs_propagation().as_deref())?;
        mounts::mount_rootfs(&ctx.rootfs, ctx.overlay.as_deref())?;
        let (root, dev_tmpfs) = mounts::setup_tree(spec, &ctx.rootfs)?;
        if dev_tmpfs {
            devices::populate(&root, linux.devices().as_deref().unwrap_or(&[]))?;
        }
        drop(root);
        mounts::pivot(&ctx.rootfs)?;
        // Before the read-only paths: /proc/sys is one of them.
        apply_sysctls(&linux)?;
        for p in linux.masked_paths().iter().flatten() {
            mounts::mask(p)?;
        }
        for p in linux.readonly_paths().iter().flatten() {
            mounts::readonly(p)?;
        }
    } else {
        nix::unistd::chroot(&ctx.rootfs).map_err(|e| io("chroot", e))?;
        nix::unistd::chdir("/").map_err(|e| io("chdir /", e))?;
    }
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| io("sethostname", e))?;
    }
    if ctx.new_netns {
        netlo::loopback_up().map_err(|e| io("bring up loopback", e))?;
    }
    if matches!(ctx.stdio, Stdio::Terminal) {
        tty::setup_console(chan, own_mnt_ns)?;
    }
    if spec
        .root()
        .as_ref()
        .map(|r| r.readonly().unwrap_or(false))
        .unwrap_or(false)
    {
        mounts::readonly_root()?;
    }
    let cwd = proc_.cwd();
    if cwd != Path::new("/") {
        // docker creates a missing working dir (-w /new/dir), following the image's symlinks inside the root.
        let root = mounts::open_root(Path::new("/"))?;
        crate::rootpath::ensure(&root, cwd, true)
            .map_err(|e| io(&format!("create working dir {}", cwd.display()), e))?;
    }
    finish(&proc_, linux.seccomp().as_ref(), chan)
}

fn apply_sysctls(linux: &oci_spec::runtime::Linux) -> Result<(), Error> {
    for (k, v) in linux.sysctl().iter().flatten() {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| io(&format!("sysctl {k}"), e))?;
    }
    Ok(())
}

/// The tail shared with `exec`: working dir, rlimits, user, capabilities, then wait for `Start` and exec.
pub(crate) fn finish(
    proc_: &oci_spec::runtime::Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    chan: &Channel,
) -> Result<process::ExecFailure, Error> {
    // Compiled before any privilege is dropped, so a bad profile fails the setup, not the exec.
    let filter = seccomp.map(crate::seccomp::compile).transpose()?;
    let cwd = proc_.cwd();
    if let Err(e) = nix::unistd::chdir(cwd) {
        return Ok(process::ExecFailure {
            kind: FailKind::CannotInvoke,
            errno: e as i32,
            message: format!(
                "chdir to cwd ({:?}) set in config.json failed: {}",
                cwd.display().to_string(),
                e.desc().to_lowercase()
            ),
        });
    }
    if let Some(adj) = proc_.oom_score_adj() {
        let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
    }
    process::apply_rlimits(proc_)?;
    process::switch_user_and_caps(proc_)?;
    let args = proc_.args().clone().unwrap_or_default();
    let env = proc_.env().clone().unwrap_or_default();
    let exe = match process::resolve_executable(args.first().map(|s| s.as_str()).unwrap_or(""), &env) {
        Ok(p) => p,
        Err(f) => return Ok(f),
    };
    chan.send(&Message::Ready).map_err(|e| io("report ready", e))?;
    wait_for(chan, Message::Start)?;
    if let Some(f) = &filter {
        // Last, so the filter never sees our own setup syscalls; no_new_privs (or privilege) is already set.
        crate::seccomp::install(f).map_err(|e| io("install seccomp filter", e))?;
    }
    process::cloexec_from_3();
    Ok(process::execve(&exe, &args, &env))
}
