//! start, stop, kill, restart and wait. `start` forks the monitor (no exec: the fork already has everything
//! it needs) and waits only for its "started" line; an attached caller keeps reading until "exit".

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

use crate::monitor::{self, Plan};
use crate::record::{self, Record};
use crate::{io_err, util, Engine, Error};

/// How the caller of `start` stays connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Return once the container runs (`run -d`, `start`).
    Detached,
    /// Stream the container's output to our stdout/stderr (and stdin with `-i`) until it exits.
    Attached,
}

/// An attached container: read its exit code when it ends.
pub struct Attached {
    /// The container's init pid (for signal forwarding).
    pub pid: i32,
    /// The monitor's pid (for window-size forwarding).
    pub monitor_pid: i32,
    lines: BufReader<std::fs::File>,
}

impl Attached {
    /// The status pipe, to poll together with signals.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lines.get_ref().as_fd()
    }

    /// Blocks until the monitor reports the exit code.
    pub fn wait(&mut self) -> i32 {
        let mut line = String::new();
        loop {
            line.clear();
            match self.lines.read_line(&mut line) {
                Ok(0) | Err(_) => return 255,
                Ok(_) => {
                    if let Some(c) = line.trim().strip_prefix("exit ") {
                        return c.parse().unwrap_or(255);
                    }
                }
            }
        }
    }
}

/// Parses a signal as docker accepts it: "KILL", "SIGKILL", "9".
pub fn parse_signal(s: &str) -> Result<Signal, Error> {
    let t = s.trim().to_ascii_uppercase();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Invalid(format!("invalid signal: {s}")));
    }
    let name = if t.starts_with("SIG") {
        t
    } else {
        format!("SIG{t}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::Invalid(format!("invalid signal: {s}")))
}

impl Engine {
    /// Starts a created or exited container. `Attached` also streams its stdio.
    pub fn start(&mut self, key: &str, mode: StartMode) -> Result<Option<Attached>, Error> {
        let rec = self.container(key)?;
        if rec.is_running() {
            return match mode {
                StartMode::Detached => Ok(None),
                StartMode::Attached => Err(Error::Conflict(format!(
                    "container {} is already running",
                    rec.name
                ))),
            };
        }
        if rec.status == "removing" {
            return Err(Error::Conflict(format!(
                "container {} is marked for removal and cannot be started",
                rec.name
            )));
        }
        let dir = self.container_dir(&rec.id);
        let spec_bytes =
            std::fs::read(dir.join("config.json")).map_err(io_err(format!("read config of {}", rec.name)))?;
        let spec = serde_json::from_slice(&spec_bytes)
            .map_err(|e| Error::Invalid(format!("config of container {} is damaged: {e}", rec.name)))?;
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("pipe")(e.into()))?;
        // The address is taken last, once nothing else before the fork can fail.
        let plan = Plan {
            root: self.root.clone(),
            id: rec.id.clone(),
            bundle: dir.clone(),
            spec,
            log: dir.join("container.log"),
            tty: rec.config.tty,
            attach: mode == StartMode::Attached,
            interactive: rec.config.interactive,
            auto_remove: rec.config.auto_remove,
            attachments: self.prepare_network(&rec)?,
        };
        // SQLite must not see its own state copied by fork (locks it believes it holds would be the parent's):
        // close our connection first; the monitor opens its own, and we reopen after.
        self.close_db_for_fork()?;
        // SAFETY: the CLI is single-threaded, so the child may run arbitrary code after fork.
        let forked = unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork monitor")(e.into()));
        if !matches!(forked, Ok(ForkResult::Child)) {
            self.reopen_db()?;
        }
        if forked.is_err() {
            self.release_network(&rec);
        }
        match forked? {
            ForkResult::Child => {
                drop(r);
                let _ = nix::unistd::setsid();
                if mode == StartMode::Detached {
                    detach_stdio();
                }
                monitor::run(plan, w)
            }
            ForkResult::Parent { child } => {
                drop(w);
                let mut lines = BufReader::new(std::fs::File::from(r));
                let mut line = String::new();
                let _ = lines.read_line(&mut line);
                let line = line.trim_end();
                if let Some(pid) = line.strip_prefix("started ") {
                    let pid = pid.parse().unwrap_or(0);
                    return Ok(match mode {
                        StartMode::Detached => None,
                        StartMode::Attached => Some(Attached {
                            pid,
                            monitor_pid: child.as_raw(),
                            lines,
                        }),
                    });
                }
                if let Some(rest) = line.strip_prefix("error ") {
                    let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                    // Reap a monitor that gave up (it exits right after reporting).
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(Error::Start {
                        code: code.parse().unwrap_or(125),
                        message: msg.to_string(),
                    });
                }
                let _ = nix::sys::wait::waitpid(child, None);
                self.release_network(&rec);
                Err(Error::Start {
                    code: 125,
                    message: "the container monitor exited without starting the container".into(),
                })
            }
        }
    }

    /// Sends `signal` to a running container's init.
    pub fn kill(&mut self, key: &str, signal: &str) -> Result<Record, Error> {
        let sig = parse_signal(signal)?;
        let rec = self.container(key)?;
        if !rec.is_running() {
            return Err(Error::Conflict(format!(
                "cannot kill container: {}: container {} is not running",
                key, rec.id
            )));
        }
        nix::sys::signal::kill(Pid::from_raw(rec.pid), sig)
            .map_err(|e| io_err(format!("signal {}", rec.name))(e.into()))?;
        Ok(rec)
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout` seconds (default: the container's
    /// `--stop-timeout`, else 10). Stopping a stopped container is not an error.
    pub fn stop(&mut self, key: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<Record, Error> {
        let rec = self.container(key)?;
        if !rec.is_running() {
            return Ok(rec);
        }
        let sig_name = signal
            .map(String::from)
            .or_else(|| rec.config.stop_signal.clone())
            .or_else(|| self.image_stop_signal(&rec))
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let _ = nix::sys::signal::kill(Pid::from_raw(rec.pid), sig);
        if timeout < 0 || !wait_until_stopped(&rec, Some(Duration::from_secs(timeout as u64))) {
            if timeout >= 0 {
                let _ = nix::sys::signal::kill(Pid::from_raw(rec.pid), Signal::SIGKILL);
            }
            wait_until_stopped(&rec, Some(Duration::from_secs(30)));
        }
        self.container(&rec.id).or(Ok(rec))
    }

    fn image_stop_signal(&self, rec: &Record) -> Option<String> {
        let img = self.images.resolve(&self.conn, &rec.image_id).ok()?;
        img.config.config().as_ref()?.stop_signal().clone()
    }

    /// Stops (if running) and starts again.
    pub fn restart(&mut self, key: &str, timeout: Option<i64>) -> Result<Record, Error> {
        let rec = self.stop(key, timeout, None)?;
        self.conn
            .execute(
                "UPDATE containers SET restart_count = restart_count + 1 WHERE id = ?1",
                [&rec.id],
            )
            .map_err(|e| Error::Db {
                context: "count restart".into(),
                error: e,
            })?;
        self.start(&rec.id, StartMode::Detached)?;
        self.container(&rec.id)
    }

    /// Blocks until the container is not running, and returns its exit code.
    pub fn wait(&mut self, key: &str) -> Result<i32, Error> {
        let rec = self.container(key)?;
        wait_until_stopped(&rec, None);
        match self.container(&rec.id) {
            Ok(r) => Ok(r.exit_code),
            // Removed meanwhile (--rm): its monitor kept the exit code aside.
            Err(Error::NotFound { .. }) => Ok(record::removed_exit(&self.conn, &rec.id).unwrap_or(0)),
            Err(e) => Err(e),
        }
    }
}

/// Sends our stdio to /dev/null so a detached monitor holds no terminal.
fn detach_stdio() {
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard fds.
            unsafe { libc::dup2(f.as_raw_fd(), fd) };
        }
    }
}

/// Waits for the monitor (which outlives the container until the exit is recorded), or for the init itself
/// when the monitor is gone. Returns false on timeout.
pub(crate) fn wait_until_stopped(rec: &Record, timeout: Option<Duration>) -> bool {
    let (pid, start) = if rec.monitor_alive() {
        (rec.monitor_pid, rec.monitor_start)
    } else {
        (rec.pid, rec.pid_start)
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let pidfd = match rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT),
        rustix::process::PidfdFlags::empty(),
    ) {
        Ok(fd) => fd,
        Err(_) => return true,
    };
    // The pidfd may have been opened on a recycled pid: check the start time now that we hold it.
    if !util::alive(pid, start) {
        return true;
    }
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(l) => l,
                None => return false,
            },
            None => Duration::from_secs(3600),
        };
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = left.as_millis().min(u16::MAX as u128) as u16;
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return !util::alive(pid, start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("1").unwrap(), Signal::SIGHUP);
        assert!(parse_signal("NOPE").is_err());
    }
}
