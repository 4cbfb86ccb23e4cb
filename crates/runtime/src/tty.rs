//! The container's terminal: a pty from the container's own devpts instance, so `tty` inside names a device
//! that exists there. The master goes back to the parent; the slave becomes stdio and the controlling tty.

use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use crate::sync::{Channel, Message};
use crate::Error;

fn io(context: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Io {
        context: context.to_string(),
        source: e.into(),
    }
}

/// Opens a pty pair through `/dev/ptmx` (after pivot_root: the container's devpts), makes the slave the
/// controlling terminal and stdio, binds it on /dev/console when asked, and sends the master to the parent.
pub fn setup_console(chan: &Channel, bind_console: bool) -> Result<(), Error> {
    let master = rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
        .map_err(|e| io("open /dev/ptmx", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| io("unlockpt", e))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(|e| io("ptsname", e))?;
    let name = name.to_string_lossy().into_owned();
    let slave: OwnedFd = rustix::fs::open(
        name.as_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open pty slave", e))?;
    if bind_console {
        let console = "/dev/console";
        if std::fs::symlink_metadata(console).is_err() {
            std::fs::File::create(console).map_err(|e| io("create /dev/console", e))?;
        }
        nix::mount::mount(
            Some(name.as_str()),
            console,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io("bind /dev/console", e))?;
    }
    // SAFETY: TIOCSCTTY on a tty we own, after setsid made us a session leader without a terminal.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY as _, 0) } != 0 {
        return Err(io("set controlling terminal", std::io::Error::last_os_error()));
    }
    for fd in 0..3 {
        crate::process::dup2(slave.as_raw_fd(), fd).map_err(|e| io("dup2 pty", e))?;
    }
    chan.send_with_fd(&Message::Console, Some(master.as_raw_fd()))
        .map_err(|e| io("send pty master", e))
}
