//! Writing a directory tree as a tar stream: the shared engine of `diff` (an overlay upper dir →
//! layer tar) and `export` (a merged rootfs → plain tar).
//!
//! The tree belongs to a container, so it is walked with directory fds and `O_NOFOLLOW`: a symlink
//! swapped in mid-walk can never make berth read a host file into the archive. Entries are sorted, so
//! the same tree always gives the same bytes (and so the same diff_id).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use tar::{EntryType, Header};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::read_dir_names;
use crate::unpack::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// What the walk is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeKind {
    /// An overlay upper dir: whiteout devices become `.wh.NAME`, opaque dirs get `.wh..wh..opq`.
    OverlayDiff,
    /// A plain (merged) tree: whiteout devices, if any show through, are skipped.
    Plain,
}

/// The only xattr copied into archives, as docker does: file capabilities are part of what a binary
/// does; labels like `security.selinux` belong to the host.
const CAPABILITY_XATTR: &str = "security.capability";
/// userxattr-mode overlay (rootless) marks opaque dirs with this instead.
const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";
/// Overlay features that make an upper dir an incomplete diff.
const UNSUPPORTED_OVERLAY_XATTRS: [&str; 4] = [
    "trusted.overlay.redirect",
    "trusted.overlay.metacopy",
    "user.overlay.redirect",
    "user.overlay.metacopy",
];

/// Writes the tree under `dir` (not including `dir` itself) as a tar stream to `out`.
pub(crate) fn write_tree(dir: &Path, out: impl Write, kind: TreeKind) -> Result<()> {
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .io_context(|| format!("opening {}", dir.display()))?;
    let root_dev = rustix::fs::fstat(&root)
        .io_context(|| format!("reading {}", dir.display()))?
        .st_dev;
    let mut writer = TreeWriter {
        builder: tar::Builder::new(out),
        kind,
        root_dev,
        links: HashMap::new(),
    };
    writer.walk(&root, b"")?;
    let mut out = writer.builder.into_inner().io_context(|| "writing the archive")?;
    out.flush().io_context(|| "writing the archive")
}

struct TreeWriter<W: Write> {
    builder: tar::Builder<W>,
    kind: TreeKind,
    /// Directories on another file system (mount points) are archived empty, like `tar
    /// --one-file-system`: a container's /proc or a volume must never end up in an image.
    root_dev: u64,
    /// First archive path of each multiply-linked inode, so later names become hard links.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TreeWriter<W> {
    fn walk(&mut self, dir: &OwnedFd, prefix: &[u8]) -> Result<()> {
        let names = read_dir_names(dir).io_context(|| format!("reading directory /{}", lossy(prefix)))?;
        for name in names {
            let mut rel = prefix.to_vec();
            rel.extend_from_slice(name.as_bytes());
            let context = || format!("archiving /{}", lossy(&rel));
            let st = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Gone since the directory was read (a running container): nothing to archive.
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e).io_context(context),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => self.dir(dir, &name, &rel, &st)?,
                FileType::RegularFile => self.file(dir, &name, &rel, &st)?,
                FileType::Symlink => {
                    let target = match rustix::fs::readlinkat(dir, &name, Vec::new()) {
                        Ok(t) => t,
                        Err(Errno::NOENT) => continue,
                        Err(e) => return Err(e).io_context(context),
                    };
                    let mut header = base_header(&st, EntryType::Symlink);
                    self.builder
                        .append_link(&mut header, path(&rel), path(target.as_bytes()))
                        .io_context(context)?;
                }
                // A whiteout showing through a merged tree means nothing outside overlay.
                FileType::CharacterDevice if st.st_rdev == 0 && self.kind == TreeKind::Plain => {}
                FileType::CharacterDevice if st.st_rdev == 0 => {
                    // An overlay whiteout: the name was deleted in this layer.
                    let mut whiteout = prefix.to_vec();
                    whiteout.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                    whiteout.extend_from_slice(name.as_bytes());
                    let mut header = base_header(&st, EntryType::Regular);
                    header.set_mode(0o600);
                    self.append(&mut header, &whiteout, io::empty())
                        .io_context(context)?;
                }
                t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                    let entry_type = match t {
                        FileType::CharacterDevice => EntryType::Char,
                        FileType::BlockDevice => EntryType::Block,
                        _ => EntryType::Fifo,
                    };
                    let mut header = base_header(&st, entry_type);
                    if t != FileType::Fifo {
                        let dev = st.st_rdev;
                        header
                            .set_device_major(rustix::fs::major(dev))
                            .io_context(context)?;
                        header
                            .set_device_minor(rustix::fs::minor(dev))
                            .io_context(context)?;
                    }
                    self.append(&mut header, &rel, io::empty()).io_context(context)?;
                }
                // Sockets only mean something to a live process; tar and docker skip them too.
                _ => {}
            }
        }
        Ok(())
    }

    fn dir(&mut self, parent: &OwnedFd, name: &OsStr, rel: &[u8], st: &Stat) -> Result<()> {
        let context = || format!("archiving /{}", lossy(rel));
        let fd = match rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).io_context(context),
        };
        let mut opaque = false;
        if self.kind == TreeKind::OverlayDiff {
            reject_incomplete_overlay_entry(&fd, rel)?;
            opaque = [OVERLAY_OPAQUE_XATTR, USER_OPAQUE_XATTR]
                .iter()
                .any(|key| matches!(get_xattr(&fd, key), Ok(Some(v)) if v == b"y"));
        }
        let mut header = base_header(st, EntryType::Directory);
        self.append_xattrs(&fd, rel)?;
        self.append(&mut header, rel, io::empty()).io_context(context)?;
        let mut child_prefix = rel.to_vec();
        child_prefix.push(b'/');
        if opaque {
            let mut marker = child_prefix.clone();
            marker.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
            let mut header = base_header(st, EntryType::Regular);
            header.set_mode(st.st_mode & 0o777);
            self.append(&mut header, &marker, io::empty())
                .io_context(context)?;
        }
        if st.st_dev != self.root_dev {
            return Ok(());
        }
        self.walk(&fd, &child_prefix)
    }

    fn file(&mut self, parent: &OwnedFd, name: &OsStr, rel: &[u8], st: &Stat) -> Result<()> {
        let context = || format!("archiving /{}", lossy(rel));
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key).cloned() {
                let mut header = base_header(st, EntryType::Link);
                return self
                    .builder
                    .append_link(&mut header, path(rel), path(&first))
                    .io_context(context);
            }
        }
        // O_NONBLOCK: if a fifo was swapped in since the stat, opening must not hang.
        let fd = match rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).io_context(context),
        };
        let st = rustix::fs::fstat(&fd).io_context(context)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(());
        }
        if self.kind == TreeKind::OverlayDiff {
            reject_incomplete_overlay_entry(&fd, rel)?;
        }
        // Only a name actually archived may be the target of later hard links.
        if st.st_nlink > 1 {
            self.links.insert(key, rel.to_vec());
        }
        self.append_xattrs(&fd, rel)?;
        let size = st.st_size as u64;
        let mut header = base_header(&st, EntryType::Regular);
        header.set_size(size);
        // A file that changes while it is read still yields exactly `size` bytes, so the archive
        // stays well-formed (truncated content is zero-padded, growth is cut).
        let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
        self.append(&mut header, rel, data).io_context(context)
    }

    /// A PAX header carrying `security.capability`, if the entry has one.
    fn append_xattrs(&mut self, fd: &OwnedFd, rel: &[u8]) -> Result<()> {
        let Ok(Some(value)) = get_xattr(fd, CAPABILITY_XATTR) else {
            return Ok(());
        };
        let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
        let body = pax_record(key.as_bytes(), &value);
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header
            .set_path("PaxHeaders.0/xattrs")
            .io_context(|| "writing the archive")?;
        header.set_mode(0o644);
        header.set_size(body.len() as u64);
        header.set_cksum();
        self.builder
            .append(&header, &body[..])
            .io_context(|| format!("archiving /{}", lossy(rel)))
    }

    fn append(&mut self, header: &mut Header, rel: &[u8], data: impl Read) -> io::Result<()> {
        self.builder.append_data(header, path(rel), data)
    }
}

/// A tar header with the metadata every entry type shares.
fn base_header(st: &Stat, entry_type: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(u64::from(st.st_uid));
    header.set_gid(u64::from(st.st_gid));
    header.set_mtime(st.st_mtime.max(0) as u64);
    header.set_size(0);
    header
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including itself.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} ").into_bytes();
    record.extend_from_slice(key);
    record.push(b'=');
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// An xattr's value, `None` when absent or unsupported by the file system.
fn get_xattr(fd: &OwnedFd, key: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::fgetxattr(fd, key, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) if buf.len() < 64 * 1024 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Overlay's redirect_dir and metacopy leave content in lower layers that the upper dir only points
/// to; such an upper dir is not a complete diff, and writing it as one would lose files silently.
fn reject_incomplete_overlay_entry(fd: &OwnedFd, rel: &[u8]) -> Result<()> {
    for key in UNSUPPORTED_OVERLAY_XATTRS {
        if let Ok(Some(_)) = get_xattr(fd, key) {
            return Err(Error::Io {
                context: format!("cannot turn /{} into a layer", lossy(rel)),
                error: io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("it carries {key}; mount overlay with redirect_dir=off,metacopy=off"),
                ),
            });
        }
    }
    Ok(())
}

fn path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_record(b"a", b"b");
        assert_eq!(r, b"6 a=b\n");
        let long = vec![b'x'; 95];
        let r = pax_record(b"k", &long);
        let text = String::from_utf8(r.clone()).unwrap();
        let len: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, r.len());
    }
}
