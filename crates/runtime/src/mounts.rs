//! The container's mount tree: rootfs (overlay or bind), the spec's mounts, masked and read-only paths, and the
//! switch into the new root with `pivot_root`.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};
use rustix::fs::{Mode, OFlags};

use crate::mountopts;
use crate::rootpath;
use crate::Error;

const NONE: Option<&str> = None;

fn io(context: impl Into<String>, e: impl Into<std::io::Error>) -> Error {
    Error::Io {
        context: context.into(),
        source: e.into(),
    }
}

/// Makes every mount we inherited private, so nothing we mount propagates back to the host (and a host mount
/// never shows up inside later).
pub fn make_private(propagation: Option<&str>) -> Result<(), Error> {
    let flag = match propagation {
        Some("shared") => MsFlags::MS_SHARED,
        Some("slave") => MsFlags::MS_SLAVE,
        _ => MsFlags::MS_PRIVATE,
    };
    mount(NONE, "/", NONE, flag | MsFlags::MS_REC, NONE).map_err(|e| io("make / private", e))
}

/// Mounts the rootfs on itself (a bind) or as an overlay, so `pivot_root` has a mount point to switch to.
pub fn mount_rootfs(rootfs: &Path, overlay: Option<&str>) -> Result<(), Error> {
    match overlay {
        Some(data) => mount(
            Some("overlay"),
            rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(data),
        )
        .map_err(|e| io(format!("mount overlay rootfs at {}", rootfs.display()), e)),
        None => mount(
            Some(rootfs),
            rootfs,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .map_err(|e| io(format!("bind rootfs {}", rootfs.display()), e)),
    }
}

/// Opens the rootfs as the anchor for every in-root path lookup.
pub fn open_root(rootfs: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(format!("open rootfs {}", rootfs.display()), e))
}

/// Mounts one entry of `spec.mounts` under the rootfs. Returns true when it put a tmpfs on /dev, which the
/// caller then fills with device nodes.
pub fn mount_entry(root: &OwnedFd, m: &Mount) -> Result<bool, Error> {
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
    let source = m.source().as_deref();
    let is_bind = opts.bind || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest).map(|_| false);
    }
    let is_dir = if is_bind {
        let src =
            source.ok_or_else(|| Error::Spec(format!("bind mount {} has no source", dest.display())))?;
        std::fs::metadata(src)
            .map_err(|e| io(format!("bind source {}", src.display()), e))?
            .is_dir()
    } else {
        true
    };
    let ensure =
        || rootpath::ensure(root, dest, is_dir).map_err(|e| io(format!("mount point {}", dest.display()), e));
    let target_fd = ensure()?;
    let target = rootpath::proc_path(&target_fd);
    let ctx = || format!("mount {} on {}", typ_or_bind(typ, is_bind), dest.display());
    if is_bind {
        let src = source.unwrap();
        let rec = opts.flags & MsFlags::MS_REC;
        mount(Some(src), target.as_str(), NONE, MsFlags::MS_BIND | rec, NONE).map_err(|e| io(ctx(), e))?;
    } else {
        let data = if opts.data.is_empty() {
            None
        } else {
            Some(opts.data.as_str())
        };
        let src = source
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        mount(Some(src.as_str()), target.as_str(), Some(typ), opts.flags, data).map_err(|e| io(ctx(), e))?;
    }
    // The fd still names the covered mount point; later changes must go to the new mount on top of it.
    let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let needs_remount = is_bind && !extra.is_empty();
    if needs_remount || !opts.propagation.is_empty() {
        let top_fd = ensure()?;
        let top = rootpath::proc_path(&top_fd);
        if needs_remount {
            // A bind ignores every flag but MS_REC; ro/nosuid/… take a remount, which must keep the flags the
            // kernel locked on the source mount or it fails with EPERM.
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra | locked_flags(&top);
            mount(NONE, top.as_str(), NONE, flags, NONE).map_err(|e| io(ctx(), e))?;
        }
        if !opts.propagation.is_empty() {
            mount(NONE, top.as_str(), NONE, opts.propagation, NONE).map_err(|e| io(ctx(), e))?;
        }
    }
    Ok(typ == "tmpfs" && dest == Path::new("/dev"))
}

fn typ_or_bind(typ: &str, bind: bool) -> &str {
    if bind {
        "bind"
    } else {
        typ
    }
}

/// On a pure cgroup v2 host the container gets its own cgroup2 view, read-only; on v1/hybrid hosts we leave
/// /sys/fs/cgroup empty rather than exposing the host's hierarchy.
fn mount_cgroup(root: &OwnedFd, dest: &Path) -> Result<(), Error> {
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Ok(());
    }
    let target =
        rootpath::ensure(root, dest, true).map_err(|e| io(format!("mount point {}", dest.display()), e))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("cgroup2"),
        rootpath::proc_path(&target).as_str(),
        Some("cgroup2"),
        flags,
        NONE,
    )
    .map_err(|e| io("mount cgroup2", e))
}

/// Flags the kernel will not let a bind remount clear (they came from the source mount).
fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    out
}

/// Switches the process's root to `rootfs` and detaches the old root, so no path leads back to the host.
pub fn pivot(rootfs: &Path) -> Result<(), Error> {
    nix::unistd::chdir(rootfs).map_err(|e| io("chdir rootfs", e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then removes it without
    // needing a directory for it inside the image.
    nix::unistd::pivot_root(".", ".").map_err(|e| io("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| io("detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| io("chdir /", e))
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory. Missing paths are fine.
pub fn mask(path: &str) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            NONE,
        )
        .map_err(|e| io(format!("mask {path}"), e)),
        Ok(_) => mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE)
            .map_err(|e| io(format!("mask {path}"), e)),
    }
}

/// Makes a path read-only with a bind of itself and a read-only remount. Missing paths are fine.
pub fn readonly(path: &str) -> Result<(), Error> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    mount(Some(path), path, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .map_err(|e| io(format!("read-only {path}"), e))?;
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | locked_flags(path);
    mount(Some(path), path, NONE, flags, NONE).map_err(|e| io(format!("read-only {path}"), e))
}

/// `root.readonly`: the whole rootfs read-only (the spec's own mounts keep their flags).
pub fn readonly_root() -> Result<(), Error> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags("/");
    mount(NONE, "/", NONE, flags, NONE).map_err(|e| io("remount / read-only", e))
}

/// Every mount of the spec, then masked and read-only paths, in the order runc applies them.
pub fn setup_tree(spec: &Spec, rootfs: &Path) -> Result<(OwnedFd, bool), Error> {
    let root = open_root(rootfs)?;
    let mut dev_tmpfs = false;
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        dev_tmpfs |= mount_entry(&root, m)?;
    }
    Ok((root, dev_tmpfs))
}
