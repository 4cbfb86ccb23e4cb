//! The per-container monitor: a fork of the `berth` process that started the container, detached with
//! setsid. It creates the container through the runtime, owns its stdio or pty, writes the log, waits for it,
//! records the exit code (or 128+signal), OOM and finish time, releases the cgroup and — with `--rm` —
//! removes the container. It is single-threaded and never touches the parent's database connection.
//!
//! It talks to the `berth` that forked it over a status pipe: `started <pid>`, `error <code> <message>`,
//! `exit <code>` (one line each). When attached, it also copies the container's output to its inherited
//! stdout/stderr and the terminal's input to the pty.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::logs::{LineSplitter, Stream};
use crate::{db, record, util};

/// Everything the monitor needs, prepared by the parent before the fork.
pub struct Plan {
    /// The berth root.
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// The bundle dir (holds rootfs/).
    pub bundle: PathBuf,
    /// The OCI spec.
    pub spec: Spec,
    /// Log file.
    pub log: PathBuf,
    /// A pty instead of pipes.
    pub tty: bool,
    /// Copy to/from the inherited stdio (an attached `run`).
    pub attach: bool,
    /// Give the container the inherited stdin (`-i`).
    pub interactive: bool,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// Network endpoints to wire before the command runs.
    pub attachments: Vec<crate::network::Attachment>,
}

struct Status(Option<File>);

impl Status {
    fn say(&mut self, line: &str) {
        if let Some(f) = &mut self.0 {
            if writeln!(f, "{line}").is_err() {
                self.0 = None;
            }
        }
    }
}

/// Runs the monitor in the forked child; never returns.
pub fn run(plan: Plan, status_fd: OwnedFd) -> ! {
    // A vanished terminal or CLI must never take the monitor down with it.
    // SAFETY: setting one signal's disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut status = Status(Some(File::from(status_fd)));
    let code = monitor(&plan, &mut status);
    // SAFETY: exit without unwinding through the parent's stack frames copied by fork.
    unsafe { libc::_exit(code) }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn monitor(plan: &Plan, status: &mut Status) -> i32 {
    let conn = match db::open(&plan.root) {
        Ok(c) => c,
        Err(e) => {
            status.say(&format!("error 125 {e}"));
            return 1;
        }
    };
    let fail = |status: &mut Status, code: i32, msg: &str| {
        let _ = record::set_start_failed(&conn, &plan.id, code, msg);
        release_network(plan);
        if plan.auto_remove {
            auto_remove(plan, code);
        }
        status.say(&format!("error {code} {msg}"));
        1
    };
    let mut log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&plan.log)
    {
        Ok(f) => f,
        Err(e) => return fail(status, 125, &format!("open log {}: {e}", plan.log.display())),
    };

    // stdio: a pty, or pipes we read; stdin is the caller's own (attached -i) or /dev/null.
    let devnull = match File::open("/dev/null") {
        Ok(f) => f,
        Err(e) => return fail(status, 125, &format!("open /dev/null: {e}")),
    };
    let mut outs: Vec<(OwnedFd, Stream)> = Vec::new();
    let mut child_ends: Vec<OwnedFd> = Vec::new();
    let stdio = if plan.tty {
        berth_runtime::Stdio::Terminal
    } else {
        let (or, ow) = match pipe() {
            Ok(p) => p,
            Err(e) => return fail(status, 125, &format!("pipe: {e}")),
        };
        let (er, ew) = match pipe() {
            Ok(p) => p,
            Err(e) => return fail(status, 125, &format!("pipe: {e}")),
        };
        let stdin = if plan.attach && plan.interactive {
            0
        } else {
            devnull.as_raw_fd()
        };
        let s = berth_runtime::Stdio::Fds {
            stdin,
            stdout: ow.as_raw_fd(),
            stderr: ew.as_raw_fd(),
        };
        outs.push((or, Stream::Stdout));
        outs.push((er, Stream::Stderr));
        child_ends.push(ow);
        child_ends.push(ew);
        s
    };

    // Block the signals we read through a signalfd before the clone, so none is lost in between.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    let _ = mask.thread_block();
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(e) => return fail(status, 125, &format!("signalfd: {e}")),
    };

    let opts = berth_runtime::CreateOptions {
        bundle: plan.bundle.clone(),
        stdio,
    };
    let mut ctr = match berth_runtime::create(&plan.spec, &opts) {
        Ok(c) => c,
        Err(e) => return fail(status, e.exit_code(), &e.to_string()),
    };
    drop(child_ends);
    if let Err(e) = crate::network::attach_all(ctr.pid(), &plan.attachments) {
        ctr.abort();
        return fail(status, 125, &e);
    }
    let console = ctr.take_console();
    if let Some(m) = &console {
        copy_winsize(m.as_raw_fd());
    }
    if let Err(e) = ctr.start() {
        if let Some(cg) = ctr.cgroup() {
            let _ = cg.destroy();
        }
        return fail(status, e.exit_code(), &e.to_string());
    }
    let pid = ctr.pid();
    let me = std::process::id() as i32;
    let started = record::set_running(
        &conn,
        &plan.id,
        pid,
        util::process_start_time(pid).unwrap_or(0),
        me,
        util::process_start_time(me).unwrap_or(0),
    );
    if let Err(e) = started {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        return fail(status, 125, &e.to_string());
    }
    status.say(&format!("started {pid}"));
    if !plan.attach {
        status.0 = None;
    }
    // The monitor idles for the container's whole life: hold no database connection meanwhile (reopened to
    // record the exit), and give back what the forked CLI left behind.
    drop(conn);
    slim_down();

    if let Some(m) = console {
        outs.push((m, Stream::Stdout));
    }
    let code = pump(plan, pid, &sfd, &mut outs, &mut log);
    let oom = ctr.cgroup().map(|c| c.oom_killed()).unwrap_or(false);
    let code = if oom && code == 137 { 137 } else { code };
    if let Some(cg) = ctr.cgroup() {
        let _ = cg.destroy();
    }
    release_network(plan);
    if let Ok(conn) = db::open(&plan.root) {
        let _ = record::set_exited(&conn, &plan.id, code, oom);
    }
    if plan.auto_remove {
        auto_remove(plan, code);
    }
    status.say(&format!("exit {code}"));
    0
}

/// The monitor is a fork of the CLI: give back the heap the CLI freed before it idles for the container's life.
fn slim_down() {
    // SAFETY: malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

/// `--rm`: the container, its files and its anonymous volumes go; its exit code stays readable for `wait`.
fn auto_remove(plan: &Plan, code: i32) {
    if let Ok(conn) = db::open(&plan.root) {
        let _ = record::remember_exit(&conn, &plan.id, code);
    }
    if let Ok(mut engine) = crate::Engine::open(&plan.root) {
        let _ = engine.remove(&plan.id, true, true);
    }
}

/// Gives the container's addresses back and closes its published ports.
fn release_network(plan: &Plan) {
    if plan.attachments.is_empty() {
        return;
    }
    if let Ok(engine) = crate::Engine::open(&plan.root) {
        if let Ok(rec) = engine.container(&plan.id) {
            engine.release_network(&rec);
        }
    }
}

/// Sets the pty's size to the attached terminal's (our inherited stdin), if there is one.
pub(crate) fn copy_winsize(master: RawFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a properly sized winsize struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

pub(crate) fn write_all_fd(fd: RawFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: writing from a valid buffer to an fd we may or may not still own; errors are returned.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        data = &data[n as usize..];
    }
    true
}

/// Copies output to the log (and the attached terminal) until the container exits and its output is drained.
fn pump(plan: &Plan, pid: i32, sfd: &SignalFd, outs: &mut Vec<(OwnedFd, Stream)>, log: &mut File) -> i32 {
    let mut splitters = [LineSplitter::default(), LineSplitter::default()];
    let mut exit: Option<i32> = None;
    let mut attached_out = plan.attach;
    let mut stdin_open = plan.attach && plan.tty && plan.interactive;
    let mut buf = vec![0u8; 32 * 1024];
    let mut drain_deadline: Option<std::time::Instant> = None;
    // With a tty the only output is the pty master, which also takes the terminal's input.
    let master = if plan.tty {
        outs.first().map(|(f, _)| f.as_raw_fd())
    } else {
        None
    };
    loop {
        if exit.is_some() && outs.is_empty() {
            break;
        }
        if let Some(d) = drain_deadline {
            if std::time::Instant::now() > d {
                break;
            }
        }
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let mut fds: Vec<PollFd> = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for (fd, _) in outs.iter() {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        let stdin_idx = if stdin_open && exit.is_none() {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
            Some(fds.len() - 1)
        } else {
            None
        };
        let timeout = if exit.is_some() {
            PollTimeout::from(200u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) if exit.is_some() => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !revents[0].is_empty() {
            while let Ok(Some(si)) = sfd.read_signal() {
                if si.ssi_signo == Signal::SIGWINCH as u32 {
                    if let Some(m) = master {
                        copy_winsize(m);
                    }
                }
            }
            if exit.is_none() {
                if let Some(c) = reap(pid) {
                    exit = Some(c);
                    drain_deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(2));
                }
            }
        }
        let mut closed = Vec::new();
        for (i, (fd, stream)) in outs.iter().enumerate() {
            let ev = revents[i + 1];
            if ev.is_empty() {
                continue;
            }
            // SAFETY: reading into our own buffer from an fd we own.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                // EOF, or EIO from a pty whose last slave closed: this stream is done.
                if n == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    closed.push(i);
                }
                continue;
            }
            let chunk = &buf[..n as usize];
            let idx = if *stream == Stream::Stdout { 0 } else { 1 };
            let _ = splitters[idx].feed(log, *stream, chunk);
            if attached_out {
                let target = if *stream == Stream::Stdout { 1 } else { 2 };
                if !write_all_fd(target, chunk) {
                    attached_out = false; // the attached client went away; keep logging
                }
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream) = outs.remove(i);
            let idx = if stream == Stream::Stdout { 0 } else { 1 };
            let _ = splitters[idx].finish(log, stream);
        }
        if let Some(si) = stdin_idx {
            if !revents[si].is_empty() {
                let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    stdin_open = false;
                } else if let Some(m) = master.filter(|_| !outs.is_empty()) {
                    write_all_fd(m, &buf[..n as usize]);
                }
            }
        }
    }
    let _ = splitters[0].finish(log, Stream::Stdout);
    let _ = splitters[1].finish(log, Stream::Stderr);
    match exit {
        Some(c) => c,
        None => blocking_reap(pid),
    }
}

fn decode(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(st) => return decode(st),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Some(255),
        }
    }
}

pub(crate) fn blocking_reap(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(st) => {
                if let Some(c) = decode(st) {
                    return c;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}
