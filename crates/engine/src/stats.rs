//! `stats`: cgroup counters of running containers, with CPU % from two samples.

use std::time::{Duration, Instant};

use crate::{Engine, Error};

/// One container's usage.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Container id.
    pub id: String,
    /// Name.
    pub name: String,
    /// CPU % of one CPU (docker's convention: 200% = two CPUs busy).
    pub cpu_percent: f64,
    /// Bytes in use.
    pub memory_usage: u64,
    /// Limit (host memory when unlimited).
    pub memory_limit: u64,
    /// Processes.
    pub pids: u64,
}

fn host_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0)
}

impl Engine {
    /// Samples the given containers (all running ones when empty) over `interval`.
    pub fn stats(&self, keys: &[String], interval: Duration) -> Result<Vec<Usage>, Error> {
        let recs = if keys.is_empty() {
            self.containers()?
                .into_iter()
                .filter(|r| r.is_running())
                .collect::<Vec<_>>()
        } else {
            keys.iter()
                .map(|k| self.container(k))
                .collect::<Result<Vec<_>, _>>()?
        };
        let h = berth_cgroups::Hierarchy::detect()?;
        let groups: Vec<_> = recs.iter().map(|r| h.open(&self.cgroup_rel(&r.id))).collect();
        let first: Vec<_> = groups.iter().map(|g| g.stats().ok()).collect();
        let t0 = Instant::now();
        std::thread::sleep(interval);
        let dt = t0.elapsed().as_nanos().max(1) as f64;
        let host = host_memory();
        let mut out = Vec::new();
        for ((r, g), a) in recs.iter().zip(&groups).zip(first) {
            let b = g.stats().ok();
            let (cpu, mem, lim, pids) = match (a, b) {
                (Some(a), Some(b)) => (
                    (b.cpu_usage_ns.saturating_sub(a.cpu_usage_ns)) as f64 / dt * 100.0,
                    b.memory_usage,
                    b.memory_limit.filter(|&l| l < host).unwrap_or(host),
                    b.pids_current,
                ),
                _ => (0.0, 0, host, 0),
            };
            out.push(Usage {
                id: r.id.clone(),
                name: r.name.clone(),
                cpu_percent: cpu,
                memory_usage: mem,
                memory_limit: lim,
                pids,
            });
        }
        Ok(out)
    }
}
