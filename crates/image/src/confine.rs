//! Keeping layer entries inside the layer directory.
//!
//! Two checks, both needed: entry names are cleaned lexically (a `..` that climbs above the root is
//! refused outright), and the parent directory is then opened component by component from a
//! directory fd with `O_NOFOLLOW`, so the host's path resolution never sees an attacker's symlink.
//! Symlinks met on the way (created by earlier entries) are expanded by hand: a relative one that stays
//! inside (`lib -> usr/lib`) is followed, an absolute one or one climbing above the root is refused.
//! This is `openat2(RESOLVE_BENEATH)` semantics, written out so it also works on kernels without it
//! and so the error can say which component escaped.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// How many symlinks one lookup may expand, as the kernel's own limit (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// Why a path could not be resolved inside the root.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// It would leave the root; the string says how.
    Escape(String),
    /// An OS error, e.g. a component is missing or not a directory.
    Io(std::io::Error),
}

impl From<Errno> for ResolveError {
    fn from(e: Errno) -> Self {
        ResolveError::Io(e.into())
    }
}

/// Splits an archive path into normal components: a leading `/` and `.` components are dropped (as tar
/// does), `..` cancels the previous component. Returns an error if a `..` would climb above the root.
pub(crate) fn clean_components(path: &[u8]) -> Result<Vec<OsString>, ResolveError> {
    let mut out: Vec<OsString> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(ResolveError::Escape("path climbs out of the layer root".into()));
                }
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

/// Opens the directory `components` names below `root`, following only symlinks that stay inside.
///
/// With `create`, missing directories are made (mode 0755, as tar and docker do for parents that the
/// archive does not list before their children).
pub(crate) fn open_dir_beneath(
    root: &OwnedFd,
    components: &[OsString],
    create: bool,
) -> Result<OwnedFd, ResolveError> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    // The directories entered so far; popping one is how `..` from a symlink target goes up.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut queue: VecDeque<OsString> = components.iter().cloned().collect();
    let mut links = 0;
    // Where the walk is, and the last symlink expanded, for error messages.
    let mut walked: Vec<OsString> = Vec::new();
    let mut via = String::new();

    while let Some(comp) = queue.pop_front() {
        match comp.as_bytes() {
            b"" | b"." => continue,
            // Entry names are already clean, so `..` only ever comes from a symlink target.
            b".." => {
                if stack.pop().is_none() {
                    return Err(ResolveError::Escape(format!(
                        "symlink \"{via}\" points outside the layer root"
                    )));
                }
                walked.pop();
                continue;
            }
            _ => {}
        }
        let cur = stack.last().unwrap_or(root);
        walked.push(comp.clone());
        match rustix::fs::openat(cur, &comp, dir_flags, Mode::empty()) {
            Ok(fd) => stack.push(fd),
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(cur, &comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                stack.push(rustix::fs::openat(cur, &comp, dir_flags, Mode::empty())?);
            }
            Err(err @ (Errno::LOOP | Errno::NOTDIR | Errno::MLINK)) => {
                let stat = rustix::fs::statat(cur, &comp, AtFlags::SYMLINK_NOFOLLOW)?;
                if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
                    return Err(ResolveError::Io(std::io::Error::new(
                        std::io::Error::from(err).kind(),
                        format!("\"{}\" is not a directory", display(&walked)),
                    )));
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ResolveError::Io(Errno::LOOP.into()));
                }
                via = display(&walked);
                walked.pop();
                let target = rustix::fs::readlinkat(cur, &comp, Vec::new())?;
                let target = target.as_bytes();
                if target.first() == Some(&b'/') {
                    return Err(ResolveError::Escape(format!(
                        "symlink \"{via}\" points to an absolute path"
                    )));
                }
                // Expand in place: the target's components come before the rest of the path.
                for (i, c) in target.split(|&b| b == b'/').enumerate() {
                    queue.insert(i, OsStr::from_bytes(c).to_os_string());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => Ok(rustix::fs::openat(root, ".", dir_flags, Mode::empty())?),
    }
}

fn display(components: &[OsString]) -> String {
    let joined: Vec<_> = components
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    joined.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<String> {
        clean_components(p.as_bytes())
            .unwrap()
            .into_iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn cleans_like_tar() {
        assert_eq!(names("/etc/passwd"), ["etc", "passwd"]);
        assert_eq!(names("./a//b/./c/"), ["a", "b", "c"]);
        assert_eq!(names("a/../b"), ["b"]);
        assert!(names("./").is_empty());
        assert!(matches!(clean_components(b"../x"), Err(ResolveError::Escape(_))));
        assert!(matches!(
            clean_components(b"a/../../x"),
            Err(ResolveError::Escape(_))
        ));
    }
}
