//! cgroup v1 and v2 resource control for berth containers.
//!
//! [`Hierarchy`] describes how the host mounts cgroups (pure v2, or v1 controllers with or
//! without a hybrid cgroup2 mount); [`Hierarchy::create`] makes a container's cgroup, applies
//! [`Resources`] and returns a [`Cgroup`] that moves processes in, reports [`Stats`], freezes,
//! kills and finally removes itself. [`Hierarchy::open`] reattaches to a cgroup from another
//! process (exec, stats, stop), so nothing here needs to stay alive between berth commands.
//!
//! On a hybrid host (v1 controllers plus a cgroup2 mount holding no useful controller) berth
//! works in v1 mode: limits live in the v1 controllers, and the cgroup2 mount is left alone.

#![warn(missing_docs)]

mod error;
mod fs;
mod mountinfo;
mod resources;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

pub use error::Error;
pub use resources::{DeviceRule, Resources};

use v1::V1Cgroup;
use v2::V2Cgroup;

/// Which cgroup interface the host uses for resource control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Legacy: one mount per controller (or per group of co-mounted controllers).
    V1,
    /// Unified: a single hierarchy with all controllers.
    V2,
}

/// Usage and limits of one cgroup, as `docker stats` needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Current memory usage in bytes, page cache included (as the kernel counts it).
    pub memory_usage: u64,
    /// Memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Total CPU time consumed, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks currently in the cgroup.
    pub pids_current: u64,
    /// Task limit; `None` when unlimited.
    pub pids_limit: Option<u64>,
}

/// The host's cgroup layout.
///
/// [`Hierarchy::detect`] reads the real system; [`Hierarchy::v1_at`] and [`Hierarchy::v2_at`]
/// point at any directory tree, which is how the logic is tested without root.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    inner: HierarchyKind,
}

#[derive(Debug, Clone)]
enum HierarchyKind {
    V1 { mounts: Vec<(String, PathBuf)> },
    V2 { root: PathBuf },
}

/// Where cgroups are mounted on every modern distribution.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Hierarchy {
    /// Reads the host's layout: pure v2 when /sys/fs/cgroup/cgroup.controllers exists, otherwise
    /// v1 with controller mounts taken from /proc/self/mountinfo (never guessed from directory
    /// names, which differ between distributions).
    pub fn detect() -> Result<Hierarchy, Error> {
        let root = Path::new(CGROUP_ROOT);
        let marker = root.join("cgroup.controllers");
        if marker.exists() {
            return Ok(Hierarchy::v2_at(root));
        }
        let mountinfo = fs::read(Path::new("/proc/self/mountinfo"))?;
        let mounts = mountinfo::v1_mounts(&mountinfo);
        if mounts.is_empty() {
            return Err(Error::NoCgroupFs { v2_marker: marker });
        }
        Ok(Hierarchy {
            inner: HierarchyKind::V1 { mounts },
        })
    }

    /// A cgroup v2 hierarchy rooted at `root` (a real cgroup2 mount or a fake tree for tests).
    pub fn v2_at(root: &Path) -> Hierarchy {
        Hierarchy {
            inner: HierarchyKind::V2 {
                root: root.to_path_buf(),
            },
        }
    }

    /// A cgroup v1 hierarchy from (controller, mount point) pairs. Co-mounted controllers are
    /// given once each with the same path. Names that are not controllers berth uses (such as
    /// "name=systemd") are dropped.
    pub fn v1_at(mounts: Vec<(String, PathBuf)>) -> Hierarchy {
        let mut mounts: Vec<_> = mounts
            .into_iter()
            .filter(|(c, _)| mountinfo::V1_CONTROLLERS.contains(&c.as_str()))
            .collect();
        mounts.sort_by_key(|(c, _)| mountinfo::V1_CONTROLLERS.iter().position(|k| k == c));
        mounts.dedup_by(|a, b| a.0 == b.0);
        Hierarchy {
            inner: HierarchyKind::V1 { mounts },
        }
    }

    /// Which interface this hierarchy uses.
    pub fn version(&self) -> Version {
        match self.inner {
            HierarchyKind::V1 { .. } => Version::V1,
            HierarchyKind::V2 { .. } => Version::V2,
        }
    }

    /// Creates the cgroup at `rel` (e.g. `"berth/3f2a9c1d/<container id>"`, relative to the
    /// hierarchy root, parents created as needed) in every controller, applies `res` and
    /// returns it. An existing cgroup is reused. On error, the directories this call created
    /// are removed again, so a failed start leaves nothing behind.
    pub fn create(&self, rel: &str, res: &Resources) -> Result<Cgroup, Error> {
        let rel_path = fs::validate_rel(rel)?;
        let limits = res.limits()?;
        let cg = self.cgroup(rel_path);
        match &cg.inner {
            CgroupKind::V1(c) => c.create(&limits)?,
            CgroupKind::V2(c) => c.create(&limits)?,
        }
        Ok(cg)
    }

    /// Names an existing cgroup without touching the filesystem, for commands that run in
    /// another process than the one that created it. `rel` is confined lexically below the
    /// root ("..", "." and leading "/" are dropped) because this cannot fail.
    pub fn open(&self, rel: &str) -> Cgroup {
        self.cgroup(fs::confine_rel(rel))
    }

    fn cgroup(&self, rel: PathBuf) -> Cgroup {
        let inner = match &self.inner {
            HierarchyKind::V1 { mounts } => CgroupKind::V1(V1Cgroup::new(mounts, rel)),
            HierarchyKind::V2 { root } => CgroupKind::V2(V2Cgroup::new(root, rel)),
        };
        Cgroup { inner }
    }
}

/// One container's cgroup (a directory per controller on v1, one directory on v2).
///
/// It is only a set of paths: dropping it does nothing, [`Cgroup::destroy`] removes it.
#[derive(Debug, Clone)]
pub struct Cgroup {
    inner: CgroupKind,
}

#[derive(Debug, Clone)]
enum CgroupKind {
    V1(V1Cgroup),
    V2(V2Cgroup),
}

impl Cgroup {
    /// Moves process `pid` (all its threads) into the cgroup: every controller directory on
    /// v1, the unified directory on v2.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        match &self.inner {
            CgroupKind::V1(c) => c.add_pid(pid),
            CgroupKind::V2(c) => c.add_pid(pid),
        }
    }

    /// Changes limits of a live cgroup (`docker update`). Only the fields that are set change.
    pub fn update(&self, res: &Resources) -> Result<(), Error> {
        let limits = res.limits()?;
        match &self.inner {
            CgroupKind::V1(c) => c.apply(&limits),
            CgroupKind::V2(c) => c.apply(&limits),
        }
    }

    /// All processes in the cgroup, sorted; empty when the cgroup does not exist.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        match &self.inner {
            CgroupKind::V1(c) => c.pids(),
            CgroupKind::V2(c) => c.pids(),
        }
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup (for `docker inspect`'s
    /// OOMKilled). False when it cannot be known.
    pub fn oom_killed(&self) -> bool {
        match &self.inner {
            CgroupKind::V1(c) => c.oom_killed(),
            CgroupKind::V2(c) => c.oom_killed(),
        }
    }

    /// Current usage and limits. Fails with [`Error::NotFound`] when the cgroup does not exist;
    /// counters of absent controllers read as zero / unlimited.
    pub fn stats(&self) -> Result<Stats, Error> {
        match &self.inner {
            CgroupKind::V1(c) => c.stats(),
            CgroupKind::V2(c) => c.stats(),
        }
    }

    /// Freezes every process (`docker pause`) and waits until the kernel confirms.
    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    /// Thaws the cgroup (`docker unpause`) and waits until the kernel confirms.
    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        match &self.inner {
            CgroupKind::V1(c) => c.set_frozen(frozen),
            CgroupKind::V2(c) => c.set_frozen(frozen),
        }
    }

    fn has_freezer(&self) -> bool {
        match &self.inner {
            CgroupKind::V1(c) => c.has_freezer(),
            CgroupKind::V2(c) => c.has_freezer(),
        }
    }

    /// Sends `signal` to every process of the cgroup. Processes that exit meanwhile are not an
    /// error.
    ///
    /// For SIGKILL, v2's cgroup.kill is used when present (atomic, catches forks). Otherwise the
    /// cgroup is frozen around the signalling, so that a process forking in a loop cannot
    /// create children between the read of cgroup.procs and the kill.
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        if signal == libc::SIGKILL {
            if let CgroupKind::V2(c) = &self.inner {
                if c.kill_via_file()? {
                    return Ok(());
                }
            }
        }
        let freeze = signal == libc::SIGKILL && self.has_freezer();
        if freeze {
            // Best effort: a task stuck in uninterruptible sleep can keep the freeze from
            // completing; signalling must still happen, and the thaw below undoes a partial
            // freeze either way.
            let _ = self.freeze();
        }
        let result = self
            .pids()
            .and_then(|pids| pids.into_iter().try_for_each(|pid| signal_pid(pid, signal)));
        if freeze {
            // Frozen tasks act on SIGKILL only once thawed.
            let thawed = self.thaw();
            result?;
            return thawed;
        }
        result
    }

    /// Removes the cgroup's directories (and any child cgroups inside them), retrying for about
    /// 100ms while killed processes finish leaving. Missing directories are fine, so this is
    /// idempotent. Shared parent directories are kept.
    pub fn destroy(&self) -> Result<(), Error> {
        // An `open("")` names the hierarchy root; removing "it" would walk every cgroup on
        // the host.
        let rel = match &self.inner {
            CgroupKind::V1(c) => c.rel(),
            CgroupKind::V2(c) => c.rel(),
        };
        if rel.as_os_str().is_empty() {
            return Err(Error::InvalidPath {
                rel: String::new(),
                reason: "refusing to remove the hierarchy root",
            });
        }
        match &self.inner {
            CgroupKind::V1(c) => c.destroy(),
            CgroupKind::V2(c) => c.destroy(),
        }
    }

    /// The v2 cgroup directory, e.g. for clone3's CLONE_INTO_CGROUP; `None` on v1, where a
    /// process must be moved with [`Cgroup::add_pid`] in each controller.
    pub fn unified_path(&self) -> Option<&Path> {
        match &self.inner {
            CgroupKind::V1(_) => None,
            CgroupKind::V2(c) => Some(c.dir()),
        }
    }

    /// Every directory of this cgroup (one per distinct v1 mount, or the single v2 directory).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.inner {
            CgroupKind::V1(c) => c.paths(),
            CgroupKind::V2(c) => vec![c.dir().to_path_buf()],
        }
    }
}

/// Sends a signal to one process, ignoring ones that already exited.
fn signal_pid(pid: i32, signal: i32) -> Result<(), Error> {
    // kill(0) or kill(-n) would signal whole process groups, ours included.
    if pid <= 0 {
        return Ok(());
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(());
    }
    let source = std::io::Error::last_os_error();
    if source.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(Error::Signal { pid, signal, source })
}
