//! `exec`: a new process in a running container, with the container's env, working dir, user and
//! capabilities unless overridden. The caller's own stdio is handed straight to the process (no copying),
//! except with `-t`, where we relay between our terminal and the container's pty.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use oci_spec::runtime::{Process, Spec};

use crate::spec::merge_env;
use crate::{io_err, user, Engine, Error};

/// `exec` flags.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    /// The command.
    pub cmd: Vec<String>,
    /// Extra env ("K=V").
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-d`.
    pub detach: bool,
    /// `--privileged`.
    pub privileged: bool,
}

impl Engine {
    /// Runs a process in a running container; returns its exit code (0 right away with `detach`).
    pub fn exec(&mut self, key: &str, cfg: &ExecConfig) -> Result<i32, Error> {
        let rec = self.container(key)?;
        if !rec.is_running() {
            return Err(Error::Conflict(format!("container {} is not running", rec.id)));
        }
        if cfg.cmd.is_empty() {
            return Err(Error::Invalid("no command specified".into()));
        }
        let dir = self.container_dir(&rec.id);
        let spec: Spec = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(io_err("read container config"))?,
        )
        .map_err(|e| Error::Invalid(format!("container config: {e}")))?;
        let mut p: Process = spec.process().clone().unwrap_or_default();
        p.set_args(Some(cfg.cmd.clone()));
        p.set_terminal(Some(cfg.tty));
        let base = p.env().clone().unwrap_or_default();
        p.set_env(Some(merge_env(&[&base, &cfg.env])));
        if let Some(w) = &cfg.workdir {
            p.set_cwd(PathBuf::from(w));
        }
        if let Some(u) = &cfg.user {
            let mut layers = vec![dir.join("upper")];
            if let Ok(img) = self.images.resolve(&self.conn, &rec.image_id) {
                layers.extend(img.lower_dirs(&self.images));
            }
            let id = user::resolve(Some(u), &layers).map_err(Error::Invalid)?;
            let mut ou = p.user().clone();
            ou.set_uid(id.uid);
            ou.set_gid(id.gid);
            ou.set_additional_gids(Some(id.additional_gids));
            p.set_user(ou);
        }
        if cfg.privileged {
            let all: oci_spec::runtime::Capabilities = caps::all()
                .iter()
                .filter_map(|c| c.to_string().trim_start_matches("CAP_").parse().ok())
                .collect();
            let mut c = p.capabilities().clone().unwrap_or_default();
            c.set_bounding(Some(all.clone()));
            c.set_effective(Some(all.clone()));
            c.set_permitted(Some(all));
            p.set_capabilities(Some(c));
        }
        let cgroup = berth_cgroups::Hierarchy::detect()
            .ok()
            .map(|h| h.open(&self.cgroup_rel(&rec.id)));
        let devnull = std::fs::File::open("/dev/null").map_err(io_err("open /dev/null"))?;
        let stdio = if cfg.tty {
            berth_runtime::Stdio::Terminal
        } else {
            let stdin = if cfg.interactive && !cfg.detach {
                0
            } else {
                devnull.as_raw_fd()
            };
            let (o, e) = if cfg.detach {
                (devnull.as_raw_fd(), devnull.as_raw_fd())
            } else {
                (1, 2)
            };
            berth_runtime::Stdio::Fds {
                stdin,
                stdout: o,
                stderr: e,
            }
        };
        let seccomp = if cfg.privileged {
            None
        } else {
            spec.linux().as_ref().and_then(|l| l.seccomp().clone())
        };
        let mut child = berth_runtime::exec(berth_runtime::ExecOptions {
            pid: rec.pid,
            process: &p,
            cgroup,
            stdio,
            seccomp: seccomp.as_ref(),
        })?;
        let console = child.take_console();
        child.start()?;
        if cfg.detach {
            return Ok(0);
        }
        if let Some(m) = console {
            relay(m.as_raw_fd(), cfg.interactive);
        }
        Ok(crate::monitor::blocking_reap(child.pid()))
    }
}

/// Copies our stdin to the pty and the pty to our stdout until the pty closes.
pub(crate) fn relay(master: RawFd, interactive: bool) {
    crate::monitor::copy_winsize(master);
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    let _ = mask.thread_block();
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok();
    let mut buf = [0u8; 16 * 1024];
    let mut stdin_open = interactive;
    loop {
        let m = unsafe { BorrowedFd::borrow_raw(master) };
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let mut fds = vec![PollFd::new(m, PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let ev: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !ev[0].is_empty() {
            let n = unsafe { libc::read(master, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            crate::monitor::write_all_fd(1, &buf[..n as usize]);
        }
        let mut i = 1;
        if stdin_open {
            if !ev[i].is_empty() {
                let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    stdin_open = false;
                } else {
                    unsafe { libc::write(master, buf.as_ptr().cast(), n as usize) };
                }
            }
            i += 1;
        }
        if let Some(s) = &sfd {
            if ev.get(i).is_some_and(|e| !e.is_empty()) {
                while let Ok(Some(_)) = s.read_signal() {}
                crate::monitor::copy_winsize(master);
            }
        }
    }
}
