//! The parent/child channel: a `SOCK_SEQPACKET` socketpair carrying small typed messages, and the pty master
//! as an `SCM_RIGHTS` attachment. Seqpacket keeps message boundaries, so no framing code is needed.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};

/// One message between the runtime's parent side and the container's init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Parent → child: the child is in its cgroup; go on with the setup.
    CgroupJoined,
    /// Child → parent: setup done, the command is resolved; waiting for `Start`.
    Ready,
    /// Parent → child: exec the command now.
    Start,
    /// Child → parent: the pty master follows as an attached fd.
    Console,
    /// Child → parent: setup or exec failed.
    Failed {
        kind: FailKind,
        errno: i32,
        message: String,
    },
}

/// Why the container's init failed; the engine maps these to docker's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The command was not found (exit 127).
    NotFound = 1,
    /// The command exists but cannot be invoked (exit 126).
    CannotInvoke = 2,
    /// Anything else in the setup (exit 125).
    Setup = 3,
}

impl FailKind {
    fn from_u8(v: u8) -> FailKind {
        match v {
            1 => FailKind::NotFound,
            2 => FailKind::CannotInvoke,
            _ => FailKind::Setup,
        }
    }
}

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::CgroupJoined => vec![b'C'],
            Message::Ready => vec![b'R'],
            Message::Start => vec![b'S'],
            Message::Console => vec![b'T'],
            Message::Failed { kind, errno, message } => {
                let mut v = vec![b'F', *kind as u8];
                v.extend_from_slice(&errno.to_le_bytes());
                v.extend_from_slice(message.as_bytes());
                v
            }
        }
    }

    fn decode(b: &[u8]) -> Option<Message> {
        Some(match *b.first()? {
            b'C' => Message::CgroupJoined,
            b'R' => Message::Ready,
            b'S' => Message::Start,
            b'T' => Message::Console,
            b'F' if b.len() >= 6 => Message::Failed {
                kind: FailKind::from_u8(b[1]),
                errno: i32::from_le_bytes([b[2], b[3], b[4], b[5]]),
                message: String::from_utf8_lossy(&b[6..]).into_owned(),
            },
            _ => return None,
        })
    }
}

/// One end of the channel.
pub(crate) struct Channel {
    fd: OwnedFd,
}

/// A received message, with the fd that came attached to it, if any.
pub(crate) struct Received {
    pub message: Option<Message>,
    pub fd: Option<OwnedFd>,
}

impl Channel {
    /// A connected pair; both ends are close-on-exec, so a successful `execve` in the child reads as EOF here.
    pub fn pair() -> std::io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Message) -> std::io::Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Message, fd: Option<RawFd>) -> std::io::Result<()> {
        let data = msg.encode();
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsg: Vec<ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Blocks for the next message; `message` is `None` on EOF (the peer exec'd or died).
    pub fn recv(&self) -> std::io::Result<Received> {
        let mut buf = [0u8; 4096];
        let mut cspace = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cspace),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            match r {
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            if let Some(&f) = fds.first() {
                                // SAFETY: the kernel just installed this fd for us; we own it.
                                fd = Some(unsafe { OwnedFd::from_raw_fd(f) });
                            }
                        }
                    }
                    let n = msg.bytes;
                    if n == 0 {
                        return Ok(Received { message: None, fd });
                    }
                    return Ok(Received {
                        message: Message::decode(&buf[..n]),
                        fd,
                    });
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = Channel::pair().unwrap();
        for m in [
            Message::CgroupJoined,
            Message::Ready,
            Message::Start,
            Message::Failed {
                kind: FailKind::NotFound,
                errno: 2,
                message: "no such file".into(),
            },
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap().message, Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap().message, None);
    }

    #[test]
    fn fd_travels_with_message() {
        let (a, b) = Channel::pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_with_fd(&Message::Console, Some(f.as_raw_fd())).unwrap();
        let r = b.recv().unwrap();
        assert_eq!(r.message, Some(Message::Console));
        assert!(r.fd.is_some());
    }
}
