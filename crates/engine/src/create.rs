//! `create` (and the first half of `run`): validate flags, reserve the name, make the container's dirs, the
//! /etc files and the OCI bundle. Any failure removes everything made so far.

use std::path::{Path, PathBuf};

use crate::config::RunConfig;
use crate::record::{self, Record};
use crate::spec::{self, EtcFiles, ResolvedMount, SpecInput};
use crate::{etc, io_err, user, util, volumes, Engine, Error};

/// docker refuses memory limits below 6 MB: no process starts with less.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn validate(cfg: &RunConfig) -> Result<(), Error> {
    let bad = |m: String| Err(Error::Invalid(m));
    if let Some(m) = cfg.memory {
        if m < MIN_MEMORY {
            return bad("minimum memory limit allowed is 6MB".into());
        }
    }
    if let (Some(s), m) = (cfg.memory_swap, cfg.memory) {
        if s != -1 && s > 0 {
            match m {
                None => {
                    return bad(
                        "you should always set the memory limit when using the memory swap limit".into(),
                    )
                }
                Some(m) if s < m => {
                    return bad(
                        "minimum memoryswap limit should be larger than memory limit, see usage".into(),
                    )
                }
                _ => {}
            }
        }
    }
    if let Some(n) = cfg.nano_cpus {
        let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as i64;
        if n < 10_000_000 || n > ncpu * 1_000_000_000 {
            return bad(format!(
                "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ));
        }
        if cfg.cpu_quota.is_some() || cfg.cpu_period.is_some() {
            return bad("conflicting options: --cpus and --cpu-period/--cpu-quota".into());
        }
    }
    if let Some(c) = &cfg.cpuset_cpus {
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
        let max = parse_cpu_list(online.trim())
            .and_then(|v| v.into_iter().max())
            .unwrap_or(0);
        match parse_cpu_list(c) {
            None => return bad(format!("invalid value {c:?} for cpuset cpus")),
            Some(v) if v.iter().any(|&x| x > max) => {
                return bad(format!(
                    "requested CPUs are not available - requested {c}, available: {}",
                    online.trim()
                ))
            }
            _ => {}
        }
    }
    if let Some(name) = &cfg.name {
        if !crate::config::valid_volume_name(name) {
            return bad(format!(
                "invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ));
        }
    }
    Ok(())
}

/// Parses "0-2,4" into cpu numbers.
fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

impl Engine {
    /// Creates a container (state "created") and returns its record.
    pub fn create(&mut self, mut cfg: RunConfig) -> Result<Record, Error> {
        if cfg.network.is_empty() {
            cfg.network = crate::network::DEFAULT_NETWORK.into();
        }
        // docker: -m without --memory-swap allows as much swap again (memory+swap = 2 × memory).
        if let (Some(m), None) = (cfg.memory, cfg.memory_swap) {
            cfg.memory_swap = Some(2 * m);
        }
        validate(&cfg)?;
        // Anonymous volumes get their name now, so inspect, rm -v and --rm can find them.
        for m in cfg
            .mounts
            .iter_mut()
            .filter(|m| m.kind == "volume" && m.source.is_empty())
        {
            m.source = util::random_id();
            m.anonymous = true;
        }
        let image = self.images.resolve(&self.conn, &cfg.image)?;
        let exposed: Vec<String> = image
            .config
            .config()
            .as_ref()
            .and_then(|c| c.exposed_ports().clone())
            .unwrap_or_default();
        self.check_network_config(&mut cfg, &exposed)?;
        let id = util::random_id();
        let mut rec = Record {
            id: id.clone(),
            name: String::new(),
            image_id: image.id.clone(),
            image_ref: cfg.image.clone(),
            config: cfg.clone(),
            created: util::now(),
            status: "created".into(),
            pid: 0,
            pid_start: 0,
            monitor_pid: 0,
            monitor_start: 0,
            exit_code: 0,
            oom_killed: false,
            started_at: String::new(),
            finished_at: String::new(),
            error: String::new(),
            restart_count: 0,
        };
        // The row goes in first: the UNIQUE name constraint settles concurrent `run --name x` right here.
        match &cfg.name {
            Some(n) => {
                rec.name = n.clone();
                record::insert(&self.conn, &rec)?;
            }
            None => {
                let mut attempt = 0;
                loop {
                    rec.name = util::random_name(&id, attempt);
                    match record::insert(&self.conn, &rec) {
                        Err(Error::Conflict(_)) if attempt < 50 => attempt += 1,
                        other => break other?,
                    }
                }
            }
        }
        match self.prepare(&rec, &image) {
            Ok(()) => Ok(rec),
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.container_dir(&id));
                let _ = record::delete(&self.conn, &id);
                volumes::remove_anonymous(self, &id);
                Err(e)
            }
        }
    }

    /// Dirs, /etc files, volumes and config.json of a new container.
    fn prepare(&mut self, rec: &Record, image: &berth_image::Image) -> Result<(), Error> {
        let cfg = &rec.config;
        let dir = self.container_dir(&rec.id);
        for d in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(dir.join(d))
                .map_err(io_err(format!("create {}", dir.join(d).display())))?;
        }
        let lowers = image.lower_dirs(&self.images);
        let mut layers: Vec<PathBuf> = vec![dir.join("upper")];
        layers.extend(lowers.iter().cloned());
        // -u wins; otherwise the image's USER, as docker does (never silently root).
        let image_user = image
            .config
            .config()
            .as_ref()
            .and_then(|c| c.user().clone())
            .filter(|u| !u.is_empty());
        let identity =
            user::resolve(cfg.user.as_deref().or(image_user.as_deref()), &layers).map_err(Error::Invalid)?;
        let hostname = if cfg.network == "host" {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            cfg.hostname.clone().unwrap_or_else(|| rec.id[..12].to_string())
        };
        etc::write(&dir, cfg, &hostname)?;
        let mut mounts = Vec::new();
        for m in &cfg.mounts {
            mounts.push(self.resolve_mount(m, &rec.id, &lowers)?);
        }
        let join_netns = match cfg.network.strip_prefix("container:") {
            Some(other) => {
                let o = self.container(other)?;
                if !o.is_running() {
                    return Err(Error::Conflict(format!(
                        "cannot join network of a non running container: {}",
                        o.name
                    )));
                }
                Some(format!("/proc/{}/ns/net", o.pid))
            }
            None => None,
        };
        let overlay = overlay_data(&lowers, &dir);
        let hosts = dir.join("hosts");
        let hostname_file = dir.join("hostname");
        let resolv = dir.join("resolv.conf");
        let cgroup = self.cgroup_rel(&rec.id);
        let spec = spec::build(&SpecInput {
            id: &rec.id,
            cfg,
            image: &image.config,
            identity: &identity,
            overlay,
            etc: EtcFiles {
                hosts: &hosts,
                hostname: &hostname_file,
                resolv: &resolv,
            },
            mounts: &mounts,
            cgroup_path: &cgroup,
            join_netns,
            hostname: &hostname,
        })?;
        write_atomic(
            &dir.join("config.json"),
            &serde_json::to_vec_pretty(&spec).unwrap_or_default(),
        )
    }

    fn resolve_mount(
        &mut self,
        m: &crate::config::MountSpec,
        owner: &str,
        lowers: &[PathBuf],
    ) -> Result<ResolvedMount, Error> {
        let source = match m.kind.as_str() {
            "tmpfs" => String::new(),
            "bind" => {
                let p = Path::new(&m.source);
                if !p.exists() {
                    // docker -v creates a missing host directory.
                    std::fs::create_dir_all(p)
                        .map_err(io_err(format!("create bind source {}", p.display())))?;
                }
                m.source.clone()
            }
            _ => {
                let (dir, created) = volumes::ensure(self, &m.source, owner, m.anonymous)?;
                // A volume made with driver options (`-o type=tmpfs`…) is that mount, not its directory.
                if let Some((kind, source, options)) = volumes::driver_mount(self, &m.source)? {
                    return Ok(ResolvedMount {
                        source,
                        destination: m.destination.clone(),
                        kind,
                        read_only: m.read_only,
                        options,
                    });
                }
                if created {
                    volumes::populate(&dir, lowers, &m.destination)?;
                }
                dir.to_string_lossy().into_owned()
            }
        };
        Ok(ResolvedMount {
            source,
            destination: m.destination.clone(),
            kind: if m.kind == "tmpfs" {
                "tmpfs".into()
            } else {
                "bind".into()
            },
            read_only: m.read_only,
            options: m.options.clone(),
        })
    }
}

/// overlayfs mount data: the image's layers (top first) under the container's own upper dir.
pub(crate) fn overlay_data(lowers: &[PathBuf], dir: &Path) -> String {
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        dir.join("upper").display(),
        dir.join("work").display()
    )
}

/// Writes a file so readers see the old or the new content, never half of it.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io_err(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("rename {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn memory_floor() {
        let cfg = RunConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(validate(&cfg).unwrap_err().to_string().contains("6MB"));
        let cfg = RunConfig {
            memory_swap: Some(1 << 30),
            ..Default::default()
        };
        assert!(validate(&cfg).is_err());
    }
}
