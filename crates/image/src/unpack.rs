//! Unpacking one layer tar into its own directory, overlay-ready. This is a security boundary: layer
//! tars come from registries and users, and nothing in one may create or change a file outside the
//! layer directory.
//!
//! The archive is streamed entry by entry (never `tar::Archive::unpack`). Every entry's parent is
//! opened through the `confine` module from a directory fd, and the entry is created with `*at` calls
//! relative to that fd with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so no host path resolution ever
//! follows a symlink the archive made. OCI/AUFS whiteouts become overlay whiteouts: `.wh.NAME` a char
//! device 0/0 at `NAME`, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::confine::{clean_components, open_dir_beneath, ResolveError};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{proc_fd_path, remove_all_at, remove_path};

/// The AUFS/OCI whiteout prefix: `.wh.NAME` deletes `NAME` from lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that makes its directory opaque (hides all lower-layer content of it).
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks a layer tar (plain or gzip, detected by magic) into `dest`, returning the bytes of
/// regular-file content written (docker's layer size).
///
/// `dest` is created if missing; if this call created it, a failure removes it again, so a refused
/// layer leaves nothing behind. An existing `dest` is unpacked into (entries replace what is there,
/// directories merge) and left as is on failure — its owner cleans up.
///
/// Refused with [`Error::UnsafeEntry`]: paths climbing out with `..`, writes through a symlink that
/// is absolute or climbs out, hard links to such places. Malformed input gives [`Error::BadTar`].
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<u64> {
    let created = match std::fs::create_dir(dest) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            return Err(Error::Io {
                context: format!("creating {}", dest.display()),
                error: e,
            })
        }
    };
    let result = crate::compression::decompress(reader).and_then(|tar| unpack_tar(tar, dest));
    if result.is_err() && created {
        let _ = remove_path(dest);
    }
    result
}

/// Unpacks an uncompressed tar stream into the existing directory `dest`; see [`unpack_layer`].
/// Reading stops at the archive's end marker; the caller drains the rest if it hashes the stream.
pub(crate) fn unpack_tar(reader: impl Read, dest: &Path) -> Result<u64> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .io_context(|| format!("opening {}", dest.display()))?;
    let mut unpacker = Unpacker {
        root,
        dirs: Vec::new(),
        size: 0,
        buf: vec![0; 128 * 1024],
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(bad_tar)?;
    for entry in entries {
        let mut entry = entry.map_err(bad_tar)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish();
    Ok(unpacker.size)
}

fn bad_tar(e: io::Error) -> Error {
    Error::BadTar {
        message: e.to_string(),
    }
}

/// The per-layer state while unpacking.
struct Unpacker {
    /// The layer directory; every entry is resolved below it.
    root: OwnedFd,
    /// Directories and their times, applied last because creating children changes them.
    dirs: Vec<(Vec<OsString>, Timestamps)>,
    /// Regular-file bytes written.
    size: u64,
    /// Copy buffer, reused across entries.
    buf: Vec<u8>,
}

/// The attributes of an entry that are applied after it is created.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    times: Timestamps,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let mut kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        // Pre-POSIX (v7) archives mark directories only by a trailing slash.
        if kind == tar::EntryType::Regular && raw_path.ends_with(b"/") {
            kind = tar::EntryType::Directory;
        }

        let comps = clean_components(&raw_path).map_err(|e| resolve_error(&name, e))?;
        // The layer root itself ("./"): its attributes are berth's, not the archive's.
        let Some((leaf, parents)) = comps.split_last() else {
            return Ok(());
        };
        let parent = self.open(parents, true, &name)?;

        let leaf_bytes = leaf.as_bytes();
        if let Some(hidden) = leaf_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return if leaf_bytes == WHITEOUT_OPAQUE.as_bytes() {
                rustix::fs::fsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .io_context(|| format!("marking the directory of {name} opaque"))
            } else if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other `.wh..wh.*` names are AUFS bookkeeping (hard link dirs); they carry no content.
                Ok(())
            } else if hidden.is_empty() {
                Err(Error::BadTar {
                    message: format!("entry \"{name}\" is a whiteout without a name"),
                })
            } else {
                whiteout(&parent, OsStr::from_bytes(hidden))
                    .io_context(|| format!("creating whiteout {name}"))
            };
        }

        let meta = read_meta(entry, &name)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(&parent, leaf, entry, &meta, &name)
            }
            tar::EntryType::Directory => {
                self.dir(&parent, leaf, &meta)
                    .io_context(|| format!("creating directory {name}"))?;
                self.dirs.push((comps.clone(), meta.times));
                Ok(())
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| Error::BadTar {
                    message: format!("symlink \"{name}\" has no target"),
                })?;
                symlink(&parent, leaf, &target, &meta).io_context(|| format!("creating symlink {name}"))
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::BadTar {
                        message: format!("hard link \"{name}\" has no target"),
                    })?
                    .into_owned();
                self.hardlink(&parent, leaf, &comps, &target, &name)
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                node(&parent, leaf, file_type, dev, &meta).io_context(|| format!("creating device {name}"))
            }
            other => Err(Error::BadTar {
                message: format!(
                    "entry \"{name}\" has unsupported type {:?}",
                    other.as_byte() as char
                ),
            }),
        }
    }

    /// Opens the directory `comps` below the root, mapping an escape to [`Error::UnsafeEntry`].
    fn open(&self, comps: &[OsString], create: bool, name: &str) -> Result<OwnedFd> {
        open_dir_beneath(&self.root, comps, create).map_err(|e| resolve_error(name, e))
    }

    fn file<R: Read>(
        &mut self,
        parent: &OwnedFd,
        leaf: &OsStr,
        entry: &mut tar::Entry<R>,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        let context = || format!("unpacking layer entry {name}");
        replace_existing(parent, leaf, false).io_context(context)?;
        let fd = rustix::fs::openat(
            parent,
            leaf,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .io_context(context)?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let mut copied = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad_tar(e)),
            };
            file.write_all(&self.buf[..n]).io_context(context)?;
            copied += n as u64;
        }
        // The tar reader returns a short entry at end of input instead of failing.
        if copied != expected {
            return Err(Error::BadTar {
                message: format!("unexpected end of archive in \"{name}\" ({copied} of {expected} bytes)"),
            });
        }
        // Owner before mode (chown clears setuid), xattrs after chown (it clears capabilities), times
        // last (writing changed them).
        rustix::fs::fchown(&file, Some(uid(meta.uid)), Some(gid(meta.gid))).io_context(context)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode)).io_context(context)?;
        for (key, value) in &meta.xattrs {
            let _ = rustix::fs::fsetxattr(&file, key, value, XattrFlags::empty());
        }
        rustix::fs::futimens(&file, &meta.times).io_context(context)?;
        self.size += copied;
        Ok(())
    }

    fn dir(&mut self, parent: &OwnedFd, leaf: &OsStr, meta: &Meta) -> io::Result<()> {
        // A directory over a directory merges; over anything else it replaces.
        if !replace_existing(parent, leaf, true)? {
            rustix::fs::mkdirat(parent, leaf, Mode::from_raw_mode(0o700))?;
        }
        let fd = rustix::fs::openat(
            parent,
            leaf,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::fs::fchown(&fd, Some(uid(meta.uid)), Some(gid(meta.gid)))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))?;
        for (key, value) in &meta.xattrs {
            let _ = rustix::fs::fsetxattr(&fd, key, value, XattrFlags::empty());
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: &OwnedFd,
        leaf: &OsStr,
        comps: &[OsString],
        target: &[u8],
        name: &str,
    ) -> Result<()> {
        let target_name = String::from_utf8_lossy(target).into_owned();
        let tcomps = clean_components(target).map_err(|e| resolve_error(name, e))?;
        let Some((tleaf, tparents)) = tcomps.split_last() else {
            return Err(Error::UnsafeEntry {
                entry: name.into(),
                reason: "hard link to the layer root".into(),
            });
        };
        if tcomps == comps {
            return Ok(());
        }
        let not_found = || Error::BadTar {
            message: format!("hard link \"{name}\" points to \"{target_name}\", which is not in the layer"),
        };
        let tparent = match open_dir_beneath(&self.root, tparents, false) {
            Ok(fd) => fd,
            Err(ResolveError::Io(_)) => return Err(not_found()),
            Err(e) => return Err(resolve_error(name, e)),
        };
        match rustix::fs::statat(&tparent, tleaf, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(Error::BadTar {
                    message: format!("hard link \"{name}\" points to a directory"),
                });
            }
            Ok(_) => {}
            Err(_) => return Err(not_found()),
        }
        let context = || format!("creating hard link {name}");
        replace_existing(parent, leaf, false).io_context(context)?;
        // No AT_SYMLINK_FOLLOW: linking to a symlink links the symlink itself, never its target.
        rustix::fs::linkat(&tparent, tleaf, parent, leaf, AtFlags::empty()).io_context(context)
    }

    /// Applies directory times now that no more children will be created.
    fn finish(&mut self) {
        for (comps, times) in std::mem::take(&mut self.dirs).iter().rev() {
            let Some((leaf, parents)) = comps.split_last() else {
                continue;
            };
            // Best effort: a later entry may have replaced the directory.
            if let Ok(parent) = open_dir_beneath(&self.root, parents, false) {
                let _ = rustix::fs::utimensat(&parent, leaf, times, AtFlags::SYMLINK_NOFOLLOW);
            }
        }
    }
}

/// Makes room for a new entry at `leaf`: returns true when an existing directory stays (and `is_dir`
/// says the new entry is one too); anything else there is removed without following symlinks.
fn replace_existing(parent: &OwnedFd, leaf: &OsStr, is_dir: bool) -> io::Result<bool> {
    match rustix::fs::statat(parent, leaf, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
        Ok(st) if is_dir && FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(true),
        Ok(_) => {
            remove_all_at(parent, leaf)?;
            Ok(false)
        }
    }
}

/// An overlay whiteout (char device 0/0) at `hidden`.
///
/// If the layer itself already has `hidden`, it is kept: the OCI spec says a whiteout only hides
/// lower layers' content, never the same layer's, and this layer's own entry hides the lower ones anyway.
fn whiteout(parent: &OwnedFd, hidden: &OsStr) -> io::Result<()> {
    match rustix::fs::statat(parent, hidden, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(()),
        Err(Errno::NOENT) => {
            rustix::fs::mknodat(
                parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn symlink(parent: &OwnedFd, leaf: &OsStr, target: &[u8], meta: &Meta) -> io::Result<()> {
    replace_existing(parent, leaf, false)?;
    // Any target is fine, absolute ones included: it is only ever followed inside the container.
    rustix::fs::symlinkat(OsStr::from_bytes(target), parent, leaf)?;
    rustix::fs::chownat(
        parent,
        leaf,
        Some(uid(meta.uid)),
        Some(gid(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    set_xattrs_nofollow(parent, leaf, meta);
    rustix::fs::utimensat(parent, leaf, &meta.times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn node(
    parent: &OwnedFd,
    leaf: &OsStr,
    file_type: FileType,
    dev: rustix::fs::Dev,
    meta: &Meta,
) -> io::Result<()> {
    replace_existing(parent, leaf, false)?;
    rustix::fs::mknodat(parent, leaf, file_type, Mode::from_raw_mode(0o600), dev)?;
    // `leaf` was just made by us as a node in a directory we hold open, so these cannot be redirected.
    rustix::fs::chownat(
        parent,
        leaf,
        Some(uid(meta.uid)),
        Some(gid(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    rustix::fs::chmodat(parent, leaf, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
    set_xattrs_nofollow(parent, leaf, meta);
    rustix::fs::utimensat(parent, leaf, &meta.times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Xattrs on entries that cannot be opened for writing (symlinks, devices, fifos), best effort.
fn set_xattrs_nofollow(parent: &OwnedFd, leaf: &OsStr, meta: &Meta) {
    if meta.xattrs.is_empty() {
        return;
    }
    let path = proc_fd_path(parent, leaf);
    for (key, value) in &meta.xattrs {
        let _ = rustix::fs::lsetxattr(&path, key, value, XattrFlags::empty());
    }
}

/// Mode, owner, times and xattrs of an entry, PAX records taking precedence over the header.
fn read_meta<R: Read>(entry: &mut tar::Entry<R>, name: &str) -> Result<Meta> {
    let header = entry.header();
    let old = header.as_old();
    // Some writers leave numeric fields blank; Go's and GNU tar read that as 0, and so does berth.
    let field = |what: &str, raw: &[u8], r: io::Result<u64>| -> Result<u64> {
        match r {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(e) => Err(Error::BadTar {
                message: format!("entry \"{name}\" has an invalid {what}: {e}"),
            }),
        }
    };
    let mode = field("mode", &old.mode, header.mode().map(u64::from))? as u32 & 0o7777;
    let too_big = |what: &str| Error::BadTar {
        message: format!("entry \"{name}\" has an out of range {what}"),
    };
    // u32::MAX is chown's "leave unchanged", not an id.
    let id = |v: u64| u32::try_from(v).ok().filter(|&v| v != u32::MAX);
    let uid = id(field("uid", &old.uid, header.uid())?).ok_or_else(|| too_big("uid"))?;
    let gid = id(field("gid", &old.gid, header.gid())?).ok_or_else(|| too_big("gid"))?;
    let mut mtime = Timespec {
        tv_sec: field("mtime", &old.mtime, header.mtime())? as i64,
        tv_nsec: 0,
    };

    let mut xattrs = Vec::new();
    if let Some(records) = entry.pax_extensions().map_err(bad_tar)? {
        for record in records {
            let record = record.map_err(bad_tar)?;
            let key = record.key_bytes();
            if key == b"mtime" {
                if let Some(t) = record.value().ok().and_then(parse_pax_time) {
                    mtime = t;
                }
            } else if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
                // Overlay's own xattrs (opaque, redirect, origin...) must come only from whiteouts:
                // accepting them from an archive would let a layer steer overlay lookups.
                if !xattr.starts_with(b"trusted.overlay.") && !xattr.starts_with(b"user.overlay.") {
                    xattrs.push((
                        OsStr::from_bytes(xattr).to_os_string(),
                        record.value_bytes().to_vec(),
                    ));
                }
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        times: Timestamps {
            last_access: mtime,
            last_modification: mtime,
        },
        xattrs,
    })
}

/// A PAX time: decimal seconds with an optional fraction (`1700000000.123456789`).
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut tv_nsec: i64 = digits.parse().ok()?;
    if tv_sec < 0 && tv_nsec > 0 {
        // "-1.5" means 1.5 s before the epoch.
        tv_nsec = 1_000_000_000 - tv_nsec;
        return Some(Timespec {
            tv_sec: tv_sec - 1,
            tv_nsec: tv_nsec as _,
        });
    }
    Some(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

fn resolve_error(name: &str, e: ResolveError) -> Error {
    match e {
        ResolveError::Escape(reason) => Error::UnsafeEntry {
            entry: name.to_string(),
            reason,
        },
        ResolveError::Io(error) => Error::Io {
            context: format!("resolving the parent of {name}"),
            error,
        },
    }
}

fn uid(id: u32) -> Uid {
    Uid::from_raw(id)
}

fn gid(id: u32) -> Gid {
    Gid::from_raw(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time("12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        assert!(parse_pax_time("x").is_none());
    }
}
