//! Small file system helpers: temporary names that clean up after themselves, moving content into its
//! final content-addressed name, and removing trees without following symlinks.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// A name in `dir` that no other process or thread picks at the same time: `<prefix><pid>-<n>-<nanos>`.
///
/// Uniqueness, not secrecy, is what matters: the store is root-owned, and callers still create the
/// entry exclusively (mkdir / O_EXCL), so a collision fails loudly instead of sharing a file.
pub(crate) fn unique_name(dir: &Path, prefix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!("{prefix}{}-{n}-{nanos:08x}", std::process::id()))
}

/// A temporary file or directory that is removed when dropped, unless [`TempPath::keep`] was called.
///
/// Every error path of import and commit drops these, so a failed operation leaves nothing behind.
#[derive(Debug)]
pub(crate) struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    /// Creates a fresh, empty directory `<dir>/<prefix>…` (mode 0700 until the content is in place).
    pub(crate) fn new_dir(dir: &Path, prefix: &str) -> io::Result<TempPath> {
        loop {
            let path = unique_name(dir, prefix);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempPath { path, armed: true }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates a fresh, empty file `<dir>/<prefix>…` opened for writing.
    pub(crate) fn new_file(dir: &Path, prefix: &str) -> io::Result<(TempPath, fs::File)> {
        loop {
            let path = unique_name(dir, prefix);
            match fs::OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok((TempPath { path, armed: true }, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The current path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the guard from removing the path.
    pub(crate) fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a leftover `.tmp-*` is garbage, never content under a final name.
            let _ = remove_path(&self.path);
        }
    }
}

/// Removes a file, symlink or whole directory tree; a missing path is not an error.
/// `std::fs::remove_dir_all` never follows symlinks, so a hostile layer cannot redirect the removal.
pub(crate) fn remove_path(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Moves `tmp` to `dest` unless `dest` already exists; returns whether it moved.
///
/// Content under `dest` is addressed by its digest, so an existing `dest` holds the same content
/// (another import got there first) and `tmp` is simply dropped.
pub(crate) fn place(tmp: TempPath, dest: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(dest).is_ok() {
        return Ok(false);
    }
    match fs::rename(tmp.path(), dest) {
        Ok(()) => {
            tmp.keep();
            Ok(true)
        }
        // A directory that appeared meanwhile makes rename fail with ENOTEMPTY/EEXIST: same content.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Flushes the file system holding `path` to disk, so a renamed directory survives a power loss with
/// its content (rename alone orders nothing). One `syncfs` is far cheaper than fsyncing every file.
pub(crate) fn sync_filesystem(path: &Path) -> io::Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::syncfs(&fd)?;
    Ok(())
}

/// Removes `name` in `dir` — file, symlink or directory tree — without following any symlink.
pub(crate) fn remove_all_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let dir = dir.as_fd();
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let sub: OwnedFd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in read_dir_names(&sub)? {
        remove_all_at(&sub, &child)?;
    }
    drop(sub);
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// The names in a directory (without `.` and `..`), sorted bytewise so output built from them is
/// reproducible.
pub(crate) fn read_dir_names(dir: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// A `/proc/self/fd/<dir>/<name>` path, for the few calls that have no `*at` form without following
/// the final symlink (xattrs on symlinks and device nodes): the kernel resolves `<dir>` through the
/// fd, and `l*` calls do not follow `name`.
pub(crate) fn proc_fd_path(dir: impl AsFd, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    path.push(name);
    path
}
