//! /dev for a container: the default device nodes, the spec's extra devices, and the usual symlinks.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::Error;

/// (name, major, minor) of the nodes every container gets, as the OCI spec requires.
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const SYMLINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

/// Fills the fresh /dev tmpfs under `root` (the rootfs fd, before pivot_root).
pub fn populate(root: &OwnedFd, extra: &[LinuxDevice]) -> Result<(), Error> {
    let dev = rustix::fs::openat(
        root,
        "dev",
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::Io {
        context: "open /dev".into(),
        source: e.into(),
    })?;
    let old = nix::sys::stat::umask(Mode::empty());
    let result = (|| {
        for (name, major, minor) in DEFAULT_DEVICES {
            node(&dev, name, SFlag::S_IFCHR, 0o666, major, minor, 0, 0)?;
        }
        for d in extra {
            let path = d.path().strip_prefix("/dev/").unwrap_or(d.path());
            if path.components().count() != 1 || path.to_str().map(|p| p.contains("..")).unwrap_or(true) {
                continue; // nested device paths are rare; keep /dev flat and safe
            }
            let kind = match d.typ() {
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                _ => SFlag::S_IFCHR,
            };
            let _ = rustix::fs::unlinkat(&dev, path, rustix::fs::AtFlags::empty());
            node(
                &dev,
                &path.to_string_lossy(),
                kind,
                d.file_mode().unwrap_or(0o666),
                d.major() as u64,
                d.minor() as u64,
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        for (target, name) in SYMLINKS {
            rustix::fs::symlinkat(target, &dev, name).map_err(|e| Error::Io {
                context: format!("symlink /dev/{name}"),
                source: e.into(),
            })?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    result
}

#[allow(clippy::too_many_arguments)]
fn node(
    dev: &OwnedFd,
    name: &str,
    kind: SFlag,
    mode: u32,
    major: u64,
    minor: u64,
    uid: u32,
    gid: u32,
) -> Result<(), Error> {
    let ctx = || format!("create /dev/{name}");
    mknodat(
        dev,
        Path::new(name),
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .map_err(|e| Error::Io {
        context: ctx(),
        source: e.into(),
    })?;
    if uid != 0 || gid != 0 {
        rustix::fs::chownat(
            dev,
            name,
            Some(rustix::process::Uid::from_raw(uid)),
            Some(rustix::process::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::Io {
            context: ctx(),
            source: e.into(),
        })?;
    }
    Ok(())
}
