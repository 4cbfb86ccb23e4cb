//! cgroup v1: one directory per controller, each under its own mount.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fs;
use crate::resources::Limits;
use crate::{Error, Stats};

/// v1 reports "no limit" as the largest page-aligned i64 (9223372036854771712 with 4K pages);
/// anything this large is unlimited for all practical purposes.
const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// How long a freeze or thaw may take: tasks freeze lazily, at their next return to user space.
pub(crate) const FREEZE_POLLS: u32 = 100;
pub(crate) const FREEZE_PAUSE: Duration = Duration::from_millis(10);

/// A v1 cgroup: the same relative path under each controller's mount.
#[derive(Debug, Clone)]
pub(crate) struct V1Cgroup {
    rel: PathBuf,
    /// (controller, mount point, cgroup directory). Co-mounted controllers share a directory.
    dirs: Vec<(String, PathBuf, PathBuf)>,
}

impl V1Cgroup {
    /// Names the cgroup `rel` in every mounted controller, without touching the filesystem.
    pub fn new(mounts: &[(String, PathBuf)], rel: PathBuf) -> Self {
        let dirs = mounts
            .iter()
            .map(|(c, m)| (c.clone(), m.clone(), m.join(&rel)))
            .collect();
        V1Cgroup { rel, dirs }
    }

    /// The relative path, as given to create/open.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// Every distinct cgroup directory (co-mounted controllers appear once).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for (_, _, d) in &self.dirs {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _, _)| c == controller)
            .map(|(_, _, d)| d.as_path())
    }

    fn require(&self, controller: &'static str, action: &'static str) -> Result<&Path, Error> {
        self.dir(controller)
            .ok_or(Error::ControllerMissing { controller, action })
    }

    /// Creates the directories, makes cpuset usable, applies the limits; removes whatever it
    /// created if any step fails.
    pub fn create(&self, limits: &Limits) -> Result<(), Error> {
        let mut created = Vec::new();
        let mut mounts: Vec<&Path> = Vec::new();
        for (_, m, _) in &self.dirs {
            if !mounts.contains(&m.as_path()) {
                mounts.push(m);
            }
        }
        let result = (|| {
            for m in &mounts {
                created.extend(fs::mkdir_p(m, &self.rel)?);
            }
            if let Some((_, m, _)) = self.dirs.iter().find(|(c, _, _)| c == "cpuset") {
                init_cpuset(m, &self.rel)?;
            }
            self.apply(limits)
        })();
        if result.is_err() {
            fs::remove_created(&created);
        }
        result
    }

    /// Writes every requested limit.
    pub fn apply(&self, l: &Limits) -> Result<(), Error> {
        if l.wants_memory() {
            apply_memory(self.require("memory", "set memory limits")?, l)?;
        }
        if l.wants_cpu() {
            apply_cpu(self.require("cpu", "set cpu limits")?, l)?;
        }
        if l.wants_cpuset() {
            let dir = self.require("cpuset", "set cpuset")?;
            if let Some(cpus) = l.cpus {
                fs::write(&dir.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = l.mems {
                fs::write(&dir.join("cpuset.mems"), mems)?;
            }
        }
        if let Some(p) = l.pids {
            let dir = self.require("pids", "set the pids limit")?;
            let v = if p < 0 { "max".to_string() } else { p.to_string() };
            fs::write(&dir.join("pids.max"), &v)?;
        }
        if !l.devices.is_empty() {
            let dir = self.require("devices", "set device rules")?;
            for rule in l.devices {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                fs::write(&dir.join(file), &rule.v1_line())?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup of every controller.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        let v = pid.to_string();
        for d in self.paths() {
            fs::write(&d.join("cgroup.procs"), &v)?;
        }
        Ok(())
    }

    /// The union of all controllers' members (they normally agree, but a process may have been
    /// moved in only some of them).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut all = Vec::new();
        for d in self.paths() {
            let f = d.join("cgroup.procs");
            if let Some(c) = fs::read_opt(&f)? {
                all.extend(fs::parse_pids(&f, &c)?);
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Whether the kernel OOM killer killed a task here.
    ///
    /// Only `oom_kill` counts: memory.failcnt also grows when reclaim merely succeeded at the
    /// limit, which is no kill.
    pub fn oom_killed(&self) -> bool {
        self.dir("memory")
            .and_then(|d| fs::read_opt(&d.join("memory.oom_control")).ok().flatten())
            .and_then(|c| fs::keyed_u64(&c, "oom_kill"))
            .is_some_and(|n| n > 0)
    }

    /// Usage and limits; files of absent controllers read as zero / unlimited.
    pub fn stats(&self) -> Result<Stats, Error> {
        let paths = self.paths();
        if !paths.iter().any(|p| p.is_dir()) {
            return Err(Error::NotFound {
                path: paths.into_iter().next().unwrap_or_else(|| self.rel.clone()),
            });
        }
        let mut s = Stats::default();
        if let Some(d) = self.dir("memory") {
            s.memory_usage = read_u64(&d.join("memory.usage_in_bytes"))?.unwrap_or(0);
            s.memory_limit = read_u64(&d.join("memory.limit_in_bytes"))?.filter(|v| *v < UNLIMITED_THRESHOLD);
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage"))?.unwrap_or(0);
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = read_u64(&d.join("pids.current"))?.unwrap_or(0);
            let f = d.join("pids.max");
            if let Some(c) = fs::read_opt(&f)? {
                s.pids_limit = fs::parse_u64_or_max(&f, &c)?;
            }
        }
        Ok(s)
    }

    /// Whether freeze/thaw can work here.
    pub fn has_freezer(&self) -> bool {
        self.dir("freezer")
            .is_some_and(|d| d.join("freezer.state").exists())
    }

    /// Freezes (or thaws) and waits until the kernel reports the state reached.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let dir = self.require("freezer", "freeze or thaw")?;
        let file = dir.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..FREEZE_POLLS {
            // Re-writing is how v1 retries: tasks that forked while FREEZING are caught on the
            // next write.
            fs::write(&file, want)?;
            if fs::read(&file)?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(FREEZE_PAUSE);
        }
        Err(Error::FreezeTimeout {
            path: file,
            state: want,
        })
    }

    /// Removes the leaf directory in every controller; shared parents are left alone because
    /// other containers live in them.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut first_err = None;
        for d in self.paths() {
            if let Err(e) = fs::remove_tree(&d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Reads a single-number file; `None` when it does not exist.
fn read_u64(path: &Path) -> Result<Option<u64>, Error> {
    match fs::read_opt(path)? {
        None => Ok(None),
        Some(c) => fs::parse_u64_or_max(path, &c),
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and the kernel refuses to admit
/// processes (ENOSPC) until both are set. Copy them from the parent at every level, top down,
/// including intermediate directories that an earlier or concurrent create left empty.
fn init_cpuset(mount: &Path, rel: &Path) -> Result<(), Error> {
    let mut dir = mount.to_path_buf();
    for c in rel.components() {
        let parent = dir.clone();
        dir.push(c);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = dir.join(file);
            if fs::read(&own)?.trim().is_empty() {
                let inherited = fs::read(&parent.join(file))?;
                fs::write(&own, inherited.trim())?;
            }
        }
    }
    Ok(())
}

/// Whether memory.memsw.limit_in_bytes must be written before memory.limit_in_bytes.
///
/// The kernel keeps memory <= memory+swap at every instant: raising the pair must raise memsw
/// first, lowering it must lower memory first. Given the new pair is consistent (validated),
/// comparing the new memsw with the current one decides.
pub(crate) fn memsw_first(current_memsw: i64, new_memsw: i64) -> bool {
    let new = if new_memsw < 0 { i64::MAX } else { new_memsw };
    new >= current_memsw
}

fn apply_memory(dir: &Path, l: &Limits) -> Result<(), Error> {
    let mem_file = dir.join("memory.limit_in_bytes");
    let memsw_file = dir.join("memory.memsw.limit_in_bytes");
    // No memsw file means the kernel runs without swap accounting: there is no swap limit to
    // set, and failing would make every container with --memory-swap unstartable there.
    let swap = match l.swap {
        Some(s) => fs::read_opt(&memsw_file)?
            .map(|cur| {
                cur.trim()
                    .parse::<i64>()
                    .map(|cur| (s, cur))
                    .map_err(|_| Error::Parse {
                        path: memsw_file.clone(),
                        content: cur.trim().to_string(),
                    })
            })
            .transpose()?,
        None => None,
    };
    match (l.memory, swap) {
        (Some(m), Some((s, cur))) => {
            if memsw_first(cur, s) {
                fs::write(&memsw_file, &s.to_string())?;
                fs::write(&mem_file, &m.to_string())?;
            } else {
                fs::write(&mem_file, &m.to_string())?;
                fs::write(&memsw_file, &s.to_string())?;
            }
        }
        (Some(m), None) => fs::write(&mem_file, &m.to_string())?,
        (None, Some((s, _))) => fs::write(&memsw_file, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = l.reservation {
        fs::write(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
    }
    Ok(())
}

fn apply_cpu(dir: &Path, l: &Limits) -> Result<(), Error> {
    if let Some(s) = l.shares {
        fs::write(&dir.join("cpu.shares"), &s.to_string())?;
    }
    let period_file = dir.join("cpu.cfs_period_us");
    let quota_file = dir.join("cpu.cfs_quota_us");
    match (l.period, l.quota) {
        (Some(p), Some(q)) => {
            // The kernel checks quota/period against the parent's bandwidth after each write, so
            // a shorter period with the old quota can be refused where the final pair is fine;
            // then the quota must go first.
            match fs::write(&period_file, &p.to_string()) {
                Ok(()) => fs::write(&quota_file, &q.to_string())?,
                Err(Error::InvalidValue { .. }) => {
                    fs::write(&quota_file, &q.to_string())?;
                    fs::write(&period_file, &p.to_string())?;
                }
                Err(e) => return Err(e),
            }
        }
        (Some(p), None) => fs::write(&period_file, &p.to_string())?,
        (None, Some(q)) => fs::write(&quota_file, &q.to_string())?,
        (None, None) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memsw_order() {
        let unlimited = 9_223_372_036_854_771_712;
        // First limit on a fresh cgroup: memsw is unlimited, lower memory first.
        assert!(!memsw_first(unlimited, 200));
        // Back to unlimited swap: raise memsw first.
        assert!(memsw_first(200, -1));
        assert!(memsw_first(unlimited, -1));
        // Raising the pair.
        assert!(memsw_first(200, 400));
        // Lowering the pair.
        assert!(!memsw_first(400, 200));
        assert!(memsw_first(200, 200));
    }
}
