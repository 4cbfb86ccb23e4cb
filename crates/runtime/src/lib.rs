//! berth's container runtime: an OCI runtime-spec bundle in, an isolated process out.
//!
//! The life of a container here, as the engine's monitor drives it:
//! 1. [`create`] makes the cgroup, clones the init into its namespaces (one `clone3`, no re-exec), places it in
//!    the cgroup and lets it build its mount tree, pivot into the rootfs and drop privileges. The init then
//!    waits, with its command already resolved.
//! 2. The caller does whatever must happen before user code runs (record the pid, wire the network).
//! 3. [`Container::start`] lets the init `execve`; an exec failure comes back as [`Error::Init`] with the kind
//!    docker maps to 126/127.
//!
//! [`exec`] runs another process inside a running container's namespaces and cgroup the same way.
//! Nothing here knows about images, names or networks.

mod clone;
mod devices;
mod exec;
mod init;
pub mod mountopts;
mod mounts;
mod netlo;
mod process;
pub mod resources;
pub mod rootpath;
pub mod seccomp;
mod sync;
mod tty;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use exec::{exec, ExecOptions};
pub use process::DEFAULT_PATH;
pub use sync::FailKind;

use clone::{clone_into, Forked};
use sync::{Channel, Message};

/// Annotation naming the overlay mount data for the rootfs ("lowerdir=…,upperdir=…,workdir=…"). The runtime
/// mounts it inside the container's own mount namespace, so the overlay disappears with the container and a
/// crash never leaves it mounted on the host.
pub const ROOTFS_OVERLAY_ANNOTATION: &str = "org.berth.rootfs.overlay";

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec asks for something this runtime cannot do, or is incomplete.
    #[error("invalid runtime spec: {0}")]
    Spec(String),
    /// A system call failed; `context` says what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Creating or using the cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    /// The container's init failed during setup or exec.
    #[error("{message}")]
    Init {
        /// Which kind of failure (drives the exit code).
        kind: FailKind,
        /// What the init reported.
        message: String,
    },
}

impl Error {
    /// docker's exit code for this failure: 127 command not found, 126 cannot invoke, 125 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Init {
                kind: FailKind::NotFound,
                ..
            } => 127,
            Error::Init {
                kind: FailKind::CannotInvoke,
                ..
            } => 126,
            _ => 125,
        }
    }
}

fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Error {
    Error::Io {
        context: context.into(),
        source: source.into(),
    }
}

/// Where the container's stdin/stdout/stderr come from.
#[derive(Debug, Clone, Copy)]
pub enum Stdio {
    /// These fds (owned by the caller) become 0, 1 and 2.
    Fds {
        /// Becomes fd 0.
        stdin: RawFd,
        /// Becomes fd 1.
        stdout: RawFd,
        /// Becomes fd 2.
        stderr: RawFd,
    },
    /// A new pty inside the container; its master comes back through [`Container::take_console`].
    Terminal,
}

/// A created (not yet started) or started container init, or an exec'd process.
pub struct Container {
    pid: i32,
    chan: Option<Channel>,
    console: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
}

impl Container {
    /// The process id on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pty master, when [`Stdio::Terminal`] was asked for.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// The container's cgroup, if the spec asked for one.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// Lets the init exec the command and waits until it has (the channel closes on exec).
    pub fn start(&mut self) -> Result<(), Error> {
        let chan = self
            .chan
            .take()
            .ok_or_else(|| Error::Spec("container already started".into()))?;
        chan.send(&Message::Start).map_err(|e| io("start container", e))?;
        match chan.recv().map_err(|e| io("wait for exec", e))?.message {
            None => Ok(()),
            Some(Message::Failed { kind, message, .. }) => {
                reap(self.pid);
                Err(Error::Init { kind, message })
            }
            Some(other) => Err(Error::Spec(format!("unexpected message from init: {other:?}"))),
        }
    }

    /// Kills a created container that will not be started, and removes its cgroup.
    pub fn abort(mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::SIGKILL);
        reap(self.pid);
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
    }
}

fn reap(pid: i32) {
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}

/// Options of [`create`] beyond the spec.
pub struct CreateOptions {
    /// The bundle dir; a relative `root.path` is taken from here.
    pub bundle: PathBuf,
    /// The init's stdio.
    pub stdio: Stdio,
}

/// Creates the container described by `spec`: namespaces, cgroup, mounts, user; the init waits for
/// [`Container::start`]. The caller must be single-threaded (the init is a fork-style clone of it).
pub fn create(spec: &Spec, opts: &CreateOptions) -> Result<Container, Error> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Spec("spec has no root".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        opts.bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(Error::Spec(format!(
            "rootfs {} is not a directory",
            rootfs.display()
        )));
    }
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .is_none_or(|a| a.is_empty())
    {
        return Err(Error::Spec("process.args is empty".into()));
    }
    let linux = spec.linux().clone().unwrap_or_default();
    let mut flags = 0i32;
    let mut new_netns = false;
    for ns in linux.namespaces().iter().flatten() {
        if ns.path().is_some() {
            if ns.typ() == LinuxNamespaceType::Pid || ns.typ() == LinuxNamespaceType::User {
                return Err(Error::Spec(
                    "joining an existing pid or user namespace is not supported".into(),
                ));
            }
            continue;
        }
        if ns.typ() == LinuxNamespaceType::User {
            return Err(Error::Spec("user namespaces are not supported yet".into()));
        }
        new_netns |= ns.typ() == LinuxNamespaceType::Network;
        flags |= ns.typ() as i32;
    }
    let overlay = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ROOTFS_OVERLAY_ANNOTATION))
        .cloned();

    let cgroup = match linux.cgroups_path() {
        Some(rel) => {
            let res = linux
                .resources()
                .as_ref()
                .map(resources::from_spec)
                .unwrap_or_default();
            let h = Hierarchy::detect()?;
            Some(h.create(rel.to_string_lossy().trim_start_matches('/'), &res)?)
        }
        None => None,
    };
    let ctx = init::InitContext {
        spec,
        rootfs,
        overlay,
        stdio: &opts.stdio,
        new_netns,
    };
    spawn(flags, cgroup, |chan| init::child_main(&ctx, chan))
}

/// Clones a child that runs `child` with its end of the channel, puts it in `cgroup`, and waits for it to be
/// ready (or to fail). Shared by [`create`] and [`exec`].
pub(crate) fn spawn(
    flags: i32,
    cgroup: Option<Cgroup>,
    child: impl FnOnce(&Channel),
) -> Result<Container, Error> {
    let fail = |cgroup: Option<Cgroup>, e: Error| {
        if let Some(cg) = cgroup {
            let _ = cg.destroy();
        }
        Err(e)
    };
    let (parent_end, child_end) = match Channel::pair() {
        Ok(p) => p,
        Err(e) => return fail(cgroup, io("socketpair", e)),
    };
    // On cgroup v2 the child is born in its cgroup (CLONE_INTO_CGROUP); on v1 we move it before it goes on.
    let v2_dir = match cgroup
        .as_ref()
        .and_then(|c| c.unified_path().map(Path::to_path_buf))
    {
        Some(p) => match std::fs::File::open(&p) {
            Ok(f) => Some(f),
            Err(e) => return fail(cgroup, io(format!("open cgroup {}", p.display()), e)),
        },
        _ => None,
    };
    let forked = match clone_into(flags, v2_dir.as_ref().map(|f| f.as_raw_fd())) {
        Ok(f) => f,
        Err(e) => return fail(cgroup, io("clone", e)),
    };
    let pid = match forked {
        Forked::Child => {
            // The parent's end must not stay open here, or the child would never see EOF if the parent died.
            drop(parent_end);
            child(&child_end);
            // SAFETY: the child closures never return; this only satisfies the type.
            unsafe { libc::_exit(1) }
        }
        Forked::Parent { pid } => pid,
    };
    drop(child_end);
    let mut c = Container {
        pid,
        chan: Some(parent_end),
        console: None,
        cgroup,
    };
    if v2_dir.is_none() {
        if let Some(cg) = &c.cgroup {
            if let Err(e) = cg.add_pid(pid) {
                c.abort();
                return Err(e.into());
            }
        }
    }
    let chan = c.chan.as_ref().unwrap();
    if let Err(e) = chan.send(&Message::CgroupJoined) {
        c.abort();
        return Err(io("signal init", e));
    }
    loop {
        let r = match chan.recv() {
            Ok(r) => r,
            Err(e) => {
                c.abort();
                return Err(io("read from init", e));
            }
        };
        match r.message {
            Some(Message::Console) => c.console = r.fd,
            Some(Message::Ready) => return Ok(c),
            Some(Message::Failed { kind, message, .. }) => {
                c.abort();
                return Err(Error::Init { kind, message });
            }
            None => {
                c.abort();
                return Err(Error::Init {
                    kind: FailKind::Setup,
                    message: "container init exited during setup".into(),
                });
            }
            Some(other) => {
                c.abort();
                return Err(Error::Spec(format!("unexpected message from init: {other:?}")));
            }
        }
    }
}
