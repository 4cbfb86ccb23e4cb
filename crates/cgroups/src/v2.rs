//! cgroup v2: one unified directory; controllers are switched on from the root down.

use std::path::{Path, PathBuf};

use crate::fs;
use crate::resources::{shares_to_weight, Limits};
use crate::v1::{FREEZE_PAUSE, FREEZE_POLLS};
use crate::{Error, Stats};

/// The controllers berth enables for its cgroups, whether or not limits are requested now:
/// `update` and `stats` need them later, when enabling them would mean touching every ancestor.
const CONTROLLERS: [&str; 4] = ["cpu", "cpuset", "memory", "pids"];

/// A v2 cgroup.
#[derive(Debug, Clone)]
pub(crate) struct V2Cgroup {
    root: PathBuf,
    rel: PathBuf,
    dir: PathBuf,
}

impl V2Cgroup {
    /// Names the cgroup `rel` below the hierarchy root, without touching the filesystem.
    pub fn new(root: &Path, rel: PathBuf) -> Self {
        V2Cgroup {
            root: root.to_path_buf(),
            dir: root.join(&rel),
            rel,
        }
    }

    /// The relative path, as given to create/open.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The cgroup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory, enables controllers in every ancestor, applies the limits;
    /// removes whatever it created if any step fails.
    pub fn create(&self, limits: &Limits) -> Result<(), Error> {
        let created = fs::mkdir_p(&self.root, &self.rel)?;
        let result = self.enable_controllers(limits).and_then(|_| self.apply(limits));
        if result.is_err() {
            fs::remove_created(&created);
        }
        result
    }

    /// A controller's files appear in a cgroup only when its parent lists it in
    /// cgroup.subtree_control, so every ancestor from the root down to the leaf's parent must
    /// enable it, each limited to what its own parent made available (cgroup.controllers).
    fn enable_controllers(&self, limits: &Limits) -> Result<(), Error> {
        let mut dir = self.root.clone();
        enable_in(&dir, limits)?;
        let comps: Vec<_> = self.rel.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            dir.push(c);
            enable_in(&dir, limits)?;
        }
        Ok(())
    }

    /// Writes every requested limit. Device rules are ignored: v2 device control is an eBPF
    /// program attached to the cgroup, not a file.
    pub fn apply(&self, l: &Limits) -> Result<(), Error> {
        let d = &self.dir;
        if let Some(m) = l.memory {
            fs::write(&d.join("memory.max"), &max_or(m))?;
        }
        if let Some(s) = l.swap {
            // v2 limits swap alone, Docker's value is memory+swap.
            let v = match (s, l.memory) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(m)) if m > 0 => (s - m).to_string(),
                // Validation guarantees a positive memory limit with a positive swap one.
                _ => "max".to_string(),
            };
            match fs::write(&d.join("memory.swap.max"), &v) {
                // Without swap accounting, "no swap limit" and "no swap" need no file.
                Err(Error::MissingFile { .. }) if v == "max" || v == "0" => {}
                r => r?,
            }
        }
        if let Some(r) = l.reservation {
            // memory.low is a protection, not a limit: "no reservation" is 0, not "max".
            let v = if r < 0 { "0".to_string() } else { r.to_string() };
            fs::write(&d.join("memory.low"), &v)?;
        }
        if let Some(s) = l.shares {
            fs::write(&d.join("cpu.weight"), &shares_to_weight(s).to_string())?;
        }
        if let Some(v) = self.cpu_max(l)? {
            fs::write(&d.join("cpu.max"), &v)?;
        }
        if let Some(cpus) = l.cpus {
            fs::write(&d.join("cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = l.mems {
            fs::write(&d.join("cpuset.mems"), mems)?;
        }
        if let Some(p) = l.pids {
            fs::write(&d.join("pids.max"), &max_or(p))?;
        }
        Ok(())
    }

    /// The cpu.max line for the requested quota/period. A period alone keeps the current quota,
    /// since "max PERIOD" would silently lift an existing limit.
    fn cpu_max(&self, l: &Limits) -> Result<Option<String>, Error> {
        Ok(match (l.quota, l.period) {
            (Some(q), Some(p)) => Some(format!("{} {p}", max_or(q))),
            (Some(q), None) => Some(max_or(q)),
            (None, Some(p)) => {
                let f = self.dir.join("cpu.max");
                let current = fs::read_opt(&f)?.unwrap_or_default();
                let quota = current.split_whitespace().next().unwrap_or("max").to_string();
                Some(format!("{quota} {p}"))
            }
            (None, None) => None,
        })
    }

    /// Moves `pid` into the cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        fs::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    /// The member processes; none when the cgroup is gone.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let f = self.dir.join("cgroup.procs");
        match fs::read_opt(&f)? {
            Some(c) => fs::parse_pids(&f, &c),
            None => Ok(Vec::new()),
        }
    }

    /// Whether the OOM killer killed a task here (memory.events counts this cgroup and its
    /// descendants, which is what a container's OOM status means).
    pub fn oom_killed(&self) -> bool {
        fs::read_opt(&self.dir.join("memory.events"))
            .ok()
            .flatten()
            .and_then(|c| fs::keyed_u64(&c, "oom_kill"))
            .is_some_and(|n| n > 0)
    }

    /// Usage and limits; files of controllers not enabled read as zero / unlimited.
    pub fn stats(&self) -> Result<Stats, Error> {
        if !self.dir.is_dir() {
            return Err(Error::NotFound {
                path: self.dir.clone(),
            });
        }
        let num = |name: &str| -> Result<Option<u64>, Error> {
            let f = self.dir.join(name);
            match fs::read_opt(&f)? {
                Some(c) => fs::parse_u64_or_max(&f, &c),
                None => Ok(None),
            }
        };
        let cpu_usec = fs::read_opt(&self.dir.join("cpu.stat"))?
            .and_then(|c| fs::keyed_u64(&c, "usage_usec"))
            .unwrap_or(0);
        Ok(Stats {
            memory_usage: num("memory.current")?.unwrap_or(0),
            memory_limit: num("memory.max")?,
            cpu_usage_ns: cpu_usec.saturating_mul(1000),
            pids_current: num("pids.current")?.unwrap_or(0),
            pids_limit: num("pids.max")?,
        })
    }

    /// Whether freeze/thaw can work here (cgroup.freeze exists since Linux 5.2).
    pub fn has_freezer(&self) -> bool {
        self.dir.join("cgroup.freeze").exists()
    }

    /// Freezes (or thaws) and waits for cgroup.events to confirm.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let want = if frozen { "1" } else { "0" };
        fs::write(&self.dir.join("cgroup.freeze"), want)?;
        let events = self.dir.join("cgroup.events");
        for _ in 0..FREEZE_POLLS {
            match fs::read_opt(&events)? {
                // Without cgroup.events (not a real cgroup) there is nothing to wait for.
                None => return Ok(()),
                Some(c) if fs::keyed_u64(&c, "frozen") == Some(u64::from(frozen)) => return Ok(()),
                Some(_) => std::thread::sleep(FREEZE_PAUSE),
            }
        }
        Err(Error::FreezeTimeout {
            path: events,
            state: if frozen { "frozen" } else { "thawed" },
        })
    }

    /// Kills every process with one write when the kernel has cgroup.kill (Linux 5.14); returns
    /// false when it does not, so the caller falls back to signalling pids.
    pub fn kill_via_file(&self) -> Result<bool, Error> {
        let f = self.dir.join("cgroup.kill");
        if !f.exists() {
            return Ok(false);
        }
        fs::write(&f, "1").map(|_| true)
    }

    /// Removes the cgroup directory (and child cgroups), retrying while processes leave.
    pub fn destroy(&self) -> Result<(), Error> {
        fs::remove_tree(&self.dir)
    }
}

/// Enables berth's controllers in one ancestor's cgroup.subtree_control.
fn enable_in(dir: &Path, limits: &Limits) -> Result<(), Error> {
    let available = fs::read(&dir.join("cgroup.controllers"))?;
    let ctl = dir.join("cgroup.subtree_control");
    let enabled = fs::read_opt(&ctl)?.unwrap_or_default();
    let has = |list: &str, c: &str| list.split_whitespace().any(|x| x == c);
    let missing: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| has(&available, c) && !has(&enabled, c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fs::write_raw(&ctl, &all.join(" ")).is_ok() {
        return Ok(());
    }
    // One controller can fail alone (cpu refuses while realtime tasks sit outside the root
    // group); enable the others and fail only for one the requested limits need.
    for c in missing {
        if let Err(source) = fs::write_raw(&ctl, &format!("+{c}")) {
            if needed(c, limits) {
                return Err(Error::EnableController {
                    controller: c.to_string(),
                    path: ctl,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn needed(controller: &str, l: &Limits) -> bool {
    match controller {
        "memory" => l.wants_memory(),
        "cpu" => l.wants_cpu(),
        "cpuset" => l.wants_cpuset(),
        "pids" => l.pids.is_some(),
        _ => false,
    }
}

/// v2 spells "unlimited" as "max".
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}
