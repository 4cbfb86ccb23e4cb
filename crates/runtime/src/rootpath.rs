//! Paths inside the container's rootfs, resolved by the kernel with `RESOLVE_IN_ROOT`, so an image's symlink
//! (`/etc/hosts -> /etc/shadow`, `/data -> ../../..`) can never send a mount or a mkdir onto the host.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens `path` (relative to the rootfs fd `root`) as an `O_PATH` fd, creating it when missing: directories
/// for every component, and the last one as a directory or an empty file as `last_is_dir` says. Every prefix
/// is resolved from the root fd, so symlinks met on the way are followed but clamped to the rootfs; a dangling
/// symlink (Debian's `/etc/resolv.conf -> /run/...`) has its target created inside the rootfs.
pub fn ensure(root: &OwnedFd, path: &Path, last_is_dir: bool) -> std::io::Result<OwnedFd> {
    ensure_depth(root, path, last_is_dir, 0)
}

fn ensure_depth(root: &OwnedFd, path: &Path, last_is_dir: bool, depth: usize) -> std::io::Result<OwnedFd> {
    if depth > 40 {
        return Err(Errno::LOOP.into());
    }
    let comps: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect();
    let mut prefix = PathBuf::new();
    let mut cur = rustix::io::dup(root)?;
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let parent = prefix.clone();
        prefix.push(comp);
        match open_in_root(root, &prefix) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT) => {
                // A dangling symlink: continue from its target, still inside the root.
                let st = rustix::fs::statat(&cur, *comp, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
                if st.is_ok_and(|s| {
                    rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Symlink
                }) {
                    let target = rustix::fs::readlinkat(&cur, *comp, Vec::new())?;
                    let target = PathBuf::from(std::ffi::OsString::from_vec(target.into_bytes()));
                    let mut next = if target.is_absolute() {
                        target
                    } else {
                        parent.join(target)
                    };
                    for rest in &comps[i + 1..] {
                        next.push(rest);
                    }
                    return ensure_depth(root, &next, last_is_dir, depth + 1);
                }
                // `cur` is the resolved parent; create the missing name in it, never following a symlink.
                if last && !last_is_dir {
                    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                    drop(rustix::fs::openat(
                        &cur,
                        *comp,
                        flags,
                        Mode::from_raw_mode(0o644),
                    )?);
                } else {
                    match rustix::fs::mkdirat(&cur, *comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                cur = open_in_root(root, &prefix)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(cur)
}

fn open_in_root(root: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    openat2(
        root.as_fd(),
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )
}

/// The `/proc/self/fd/N` path of an fd, for mount(2) which takes paths, not fds.
pub fn proc_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_root(p: &Path) -> OwnedFd {
        rustix::fs::open(
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn creates_missing_dirs_and_file() {
        let t = tempfile::tempdir().unwrap();
        let root = open_root(t.path());
        ensure(&root, Path::new("/a/b/c"), true).unwrap();
        assert!(t.path().join("a/b/c").is_dir());
        ensure(&root, Path::new("/etc/hosts"), false).unwrap();
        assert!(t.path().join("etc/hosts").is_file());
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("evil")).unwrap();
        let root = open_root(t.path());
        let fd = ensure(&root, Path::new("/evil/x"), true).unwrap();
        assert!(!outside.path().join("x").exists(), "escaped to the host");
        let p = std::fs::read_link(proc_path(&fd)).unwrap();
        assert!(p.starts_with(t.path()), "{p:?} not inside the root");
    }

    #[test]
    fn dotdot_symlink_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::os::unix::fs::symlink("../../../../..", t.path().join("d/up")).unwrap();
        let root = open_root(t.path());
        let fd = ensure(&root, Path::new("/d/up/y"), true).unwrap();
        let p = std::fs::read_link(proc_path(&fd)).unwrap();
        assert_eq!(p, t.path().join("y"));
    }
}
