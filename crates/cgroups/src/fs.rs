//! File helpers with cgroupfs semantics.
//!
//! cgroupfs is not a normal filesystem: files are never created by us (the kernel makes them with
//! the directory), a write is one value, EINVAL means "bad value", rmdir works on a directory full
//! of control files and fails with EBUSY while processes remain. These helpers encode that, and
//! also make a plain directory tree behave close enough that the logic can be unit-tested without
//! root.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// Reads a whole cgroup file.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a cgroup file that may legitimately be absent (optional controller or feature).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes one value to an existing cgroup file, returning the raw io error.
///
/// The file is never created: on cgroupfs a missing file means a missing controller, and
/// creating it on a fake tree would hide exactly that. O_TRUNC is ignored by cgroupfs but makes a
/// plain file hold the last value written, as a control file would.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    // One write(2): the kernel parses each write on its own.
    f.write_all(value.as_bytes())
}

/// Writes one value to an existing cgroup file, mapping errno to an error that names the file
/// and the value.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), Error> {
    write_raw(path, value).map_err(|source| write_error(path, value, source))
}

/// Turns the errno of a failed cgroup write into the error a user can act on.
pub(crate) fn write_error(path: &Path, value: &str, source: io::Error) -> Error {
    let path = path.to_path_buf();
    let value = value.to_string();
    match source.raw_os_error() {
        Some(libc::ENOENT) => Error::MissingFile { path, value },
        Some(libc::EINVAL) | Some(libc::ERANGE) => Error::InvalidValue { path, value, source },
        _ => Error::Write { path, value, source },
    }
}

/// Finds `key` in a flat-keyed file ("key value" per line, as memory.events, cpu.stat,
/// memory.oom_control) and returns its numeric value.
pub(crate) fn keyed_u64(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            it.next().and_then(|v| v.parse().ok())
        } else {
            None
        }
    })
}

/// Parses a single-number file; `None` when the file holds "max" (cgroup v2 for unlimited).
pub(crate) fn parse_u64_or_max(path: &Path, content: &str) -> Result<Option<u64>, Error> {
    let t = content.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        content: t.to_string(),
    })
}

/// Parses a cgroup.procs file into pids.
pub(crate) fn parse_pids(path: &Path, content: &str) -> Result<Vec<i32>, Error> {
    content
        .split_whitespace()
        .map(|t| {
            t.parse().map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                content: t.to_string(),
            })
        })
        .collect()
}

/// Checks that `rel` is a plain relative path that stays below the hierarchy root.
///
/// Refusing "..", "." and absolute paths matters because `Path::join` with an absolute path
/// would silently point at another directory, and destroy() would then remove the wrong cgroup.
pub(crate) fn validate_rel(rel: &str) -> Result<PathBuf, Error> {
    let invalid = |reason| Error::InvalidPath {
        rel: rel.to_string(),
        reason,
    };
    if rel.is_empty() {
        return Err(invalid("it is empty"));
    }
    if rel.starts_with('/') {
        return Err(invalid("it must be relative to the hierarchy root"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(n) => out.push(n),
            _ => return Err(invalid("it must not contain \".\" or \"..\"")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(invalid("it is empty"));
    }
    Ok(out)
}

/// Lexically confines `rel` below the root: keeps only its normal components.
///
/// Used by `open`, which cannot fail; an empty result can only name the root itself, which
/// nothing then tries to remove (see [`remove_tree`] callers).
pub(crate) fn confine_rel(rel: &str) -> PathBuf {
    Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// `mkdir -p base/rel`, returning the directories it created, shallowest first, so that a
/// failed create can remove exactly those and nothing another container shares.
pub(crate) fn mkdir_p(base: &Path, rel: &Path) -> Result<Vec<PathBuf>, Error> {
    // A concurrent cleanup may rmdir a shared parent between our mkdirs (ENOENT); starting over
    // a couple of times makes that race harmless.
    let mut attempt = 0;
    'retry: loop {
        let mut created = Vec::new();
        let mut dir = base.to_path_buf();
        for c in rel.components() {
            dir.push(c);
            match fs::create_dir(&dir) {
                Ok(()) => created.push(dir.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 2 => {
                    attempt += 1;
                    continue 'retry;
                }
                Err(source) => {
                    remove_created(&created);
                    return Err(Error::CreateDir { path: dir, source });
                }
            }
        }
        return Ok(created);
    }
}

/// Best-effort removal of directories created by [`mkdir_p`], deepest first.
///
/// Errors are ignored: this runs on an error path, and a shared parent that another container
/// populated meanwhile must stay (it then fails with EBUSY, which is what we want).
pub(crate) fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = rmdir(dir, 1);
    }
}

/// How often and how long [`remove_tree`] retries an EBUSY rmdir: ~100ms in total, enough for
/// killed processes to finish exiting.
const RMDIR_ATTEMPTS: u32 = 10;
const RMDIR_PAUSE: Duration = Duration::from_millis(10);

/// Removes a cgroup directory and any child cgroups below it (a container may have created
/// its own), retrying while processes are still leaving. A missing directory is success.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), Error> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::RemoveDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    rmdir(dir, RMDIR_ATTEMPTS)
}

/// rmdir with retries on EBUSY. On a plain (non-cgroupfs) directory, ENOTEMPTY caused by fake
/// control files is resolved by deleting those files, mimicking the kernel, which removes its
/// control files together with the directory.
fn rmdir(dir: &Path, attempts: u32) -> Result<(), Error> {
    let mut last = None;
    let mut cleared_fake_files = false;
    let mut i = 0;
    while i < attempts {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                i += 1;
                if i < attempts {
                    std::thread::sleep(RMDIR_PAUSE);
                }
            }
            Err(e)
                if e.raw_os_error() == Some(libc::ENOTEMPTY) && !cleared_fake_files && !is_cgroupfs(dir) =>
            {
                cleared_fake_files = true;
                remove_plain_files(dir);
            }
            Err(source) => {
                return Err(Error::RemoveDir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(Error::RemoveDir {
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
    })
}

/// Deletes the regular files of a fake cgroup directory (never called on cgroupfs).
fn remove_plain_files(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// Whether `path` lives on cgroupfs (v1 or v2).
pub(crate) fn is_cgroupfs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a properly sized out-buffer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    // f_type's integer type differs between libcs and architectures.
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u64;
    magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values() {
        let c = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_u64(c, "oom_kill"), Some(3));
        assert_eq!(keyed_u64(c, "oom"), None);
        assert_eq!(keyed_u64(c, "missing"), None);
    }

    #[test]
    fn max_and_numbers() {
        let p = Path::new("x");
        assert_eq!(parse_u64_or_max(p, "max\n").unwrap(), None);
        assert_eq!(parse_u64_or_max(p, "42\n").unwrap(), Some(42));
        assert!(parse_u64_or_max(p, "nope").is_err());
    }

    #[test]
    fn rel_paths() {
        assert_eq!(validate_rel("berth/a/b").unwrap(), PathBuf::from("berth/a/b"));
        assert_eq!(validate_rel("berth//a/").unwrap(), PathBuf::from("berth/a"));
        for bad in ["", "/abs", "a/../b", "./a", "..", "/"] {
            assert!(validate_rel(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(confine_rel("/a/../b/./c"), PathBuf::from("a/b/c"));
    }

    #[test]
    fn mkdir_p_reports_only_new_dirs() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("berth")).unwrap();
        let created = mkdir_p(t.path(), Path::new("berth/x/y")).unwrap();
        assert_eq!(
            created,
            vec![t.path().join("berth/x"), t.path().join("berth/x/y")]
        );
        assert!(mkdir_p(t.path(), Path::new("berth/x/y")).unwrap().is_empty());
    }

    #[test]
    fn remove_tree_handles_fake_control_files_and_children() {
        let t = tempfile::tempdir().unwrap();
        let leaf = t.path().join("a");
        fs::create_dir_all(leaf.join("child")).unwrap();
        fs::write(leaf.join("cgroup.procs"), "").unwrap();
        fs::write(leaf.join("child/cgroup.procs"), "").unwrap();
        remove_tree(&leaf).unwrap();
        assert!(!leaf.exists());
        // Idempotent: gone is fine.
        remove_tree(&leaf).unwrap();
    }

    #[test]
    fn write_never_creates_files() {
        let t = tempfile::tempdir().unwrap();
        let err = write(&t.path().join("memory.max"), "1").unwrap_err();
        assert!(matches!(err, Error::MissingFile { .. }), "{err:?}");
        assert!(!t.path().join("memory.max").exists());
    }
}
