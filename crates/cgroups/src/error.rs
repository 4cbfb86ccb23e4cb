//! The one error type of this crate.
//!
//! Every variant names the file or directory involved, because a cgroup error without its path
//! ("invalid argument") gives the user nothing to act on.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a cgroup.
///
/// Messages are lowercase without a final period; the underlying `io::Error`, when there is one,
/// is exposed through [`std::error::Error::source`] rather than repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither a cgroup v2 root nor any cgroup v1 controller mount was found.
    #[error(
        "no usable cgroup filesystem: {v2_marker} does not exist and no cgroup v1 controller is mounted"
    )]
    NoCgroupFs {
        /// The file whose presence marks a pure cgroup v2 host.
        v2_marker: PathBuf,
    },

    /// A cgroup file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A cgroup file could not be written.
    #[error("cannot write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The kernel refused a value with EINVAL or ERANGE (out of range, not a subset of the parent's
    /// cpuset, memory limit above the memory+swap limit, ...).
    #[error("the kernel rejected {value:?} for {path} (invalid or out of range value)")]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// The rejected value.
        value: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A requested limit's file does not exist: the controller is not enabled for this cgroup or
    /// the kernel lacks the feature.
    #[error("cannot write {value:?}: {path} does not exist (controller not enabled or not supported by this kernel)")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// The value that was to be written.
        value: String,
    },

    /// A cgroup directory could not be created.
    #[error("cannot create cgroup directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A cgroup directory could not be removed (usually EBUSY: processes are still inside).
    #[error("cannot remove cgroup directory {path}")]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The relative cgroup path given to [`crate::Hierarchy::create`] is unusable.
    #[error("invalid cgroup path {rel:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        rel: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A field of [`crate::Resources`] is invalid; caught before anything is written.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidResource {
        /// The field name.
        field: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A limit needs a cgroup v1 controller that is not mounted on this host.
    #[error("cgroup v1 controller {controller:?} is not mounted, cannot {action}")]
    ControllerMissing {
        /// The controller, e.g. "memory".
        controller: &'static str,
        /// What could not be done.
        action: &'static str,
    },

    /// A cgroup v2 controller could not be enabled in an ancestor's `cgroup.subtree_control`.
    #[error("cannot enable cgroup v2 controller {controller:?} in {path}")]
    EnableController {
        /// The controller, e.g. "memory".
        controller: String,
        /// The `cgroup.subtree_control` file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A cgroup file held something this crate does not understand.
    #[error("unexpected content in {path}: {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending content.
        content: String,
    },

    /// The cgroup does not exist (it was never created or is already destroyed).
    #[error("cgroup {path} does not exist")]
    NotFound {
        /// The cgroup directory looked for.
        path: PathBuf,
    },

    /// A signal could not be delivered to a process of the cgroup.
    #[error("cannot send signal {signal} to pid {pid}")]
    Signal {
        /// The target process.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Freezing or thawing did not complete in time (a task stuck in uninterruptible sleep can
    /// hold a v1 freeze in FREEZING forever).
    #[error("cgroup {path} did not reach state {state} in time")]
    FreezeTimeout {
        /// The freezer file polled.
        path: PathBuf,
        /// The state waited for.
        state: &'static str,
    },
}
