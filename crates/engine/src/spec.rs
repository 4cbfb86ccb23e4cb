//! `run` flags + image config → the OCI runtime spec (`config.json`) of a container, with docker's defaults:
//! the 14 default capabilities, masked and read-only /proc paths, a device cgroup of default devices only.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::config::RunConfig;
use crate::user::Identity;
use crate::Error;

/// docker's default capability set.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// docker's default seccomp profile in blocklist form: each group is denied (EPERM) unless the container holds
/// the capability that makes those calls legitimate (`--cap-add SYS_ADMIN` allows mount, unshare, …).
const SECCOMP_GROUPS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "add_key",
            "keyctl",
            "request_key",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "vserver",
            "nfsservctl",
            "get_kernel_syms",
            "query_module",
            "create_module",
            "userfaultfd",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ],
    ),
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "fanotify_init",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "perf_event_open",
            "bpf",
            "syslog",
            "swapon",
            "swapoff",
        ],
    ),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_BOOT", &["reboot", "kexec_load", "kexec_file_load"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "clock_settime", "clock_adjtime"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_PTRACE", &["kcmp"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// clone flags that create namespaces: denied without CAP_SYS_ADMIN (a user namespace would hand the
/// container every capability inside it, and with it `mount`).
const NAMESPACE_FLAGS: [u64; 7] = [
    0x20000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The default seccomp section for a container with capability set `caps`.
pub fn seccomp_profile(caps: &[String]) -> Value {
    let mut rules = Vec::new();
    let has = |c: &str| caps.iter().any(|x| x == c);
    for (cap, names) in SECCOMP_GROUPS {
        if cap.is_empty() || !has(cap) {
            rules.push(json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        for f in NAMESPACE_FLAGS {
            rules.push(
                json!({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
                "args": [{"index": 0, "value": f, "valueTwo": f, "op": "SCMP_CMP_MASKED_EQ"}]}),
            );
        }
        // clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone.
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules})
}

/// Every capability name the kernel knows (for `--cap-add ALL` and `--privileged`).
fn all_caps() -> Vec<String> {
    caps::all().into_iter().map(|c| c.to_string()).collect()
}

fn normalize_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after `--cap-add`/`--cap-drop` (docker applies drops, then adds) or `--privileged`.
pub fn capabilities(cfg: &RunConfig) -> Result<Vec<String>, Error> {
    if cfg.privileged {
        return Ok(all_caps());
    }
    let known = all_caps();
    let check = |c: &String| {
        if c == "CAP_ALL" || known.contains(c) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "unknown capability: {:?}",
                c.trim_start_matches("CAP_")
            )))
        }
    };
    let drops: Vec<String> = cfg.cap_drop.iter().map(|c| normalize_cap(c)).collect();
    let adds: Vec<String> = cfg.cap_add.iter().map(|c| normalize_cap(c)).collect();
    drops.iter().chain(&adds).try_for_each(check)?;
    let mut set: Vec<String> = if drops.iter().any(|c| c == "CAP_ALL") {
        vec![]
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    if adds.iter().any(|c| c == "CAP_ALL") {
        set = known;
    } else {
        for a in adds {
            if !set.contains(&a) {
                set.push(a);
            }
        }
    }
    Ok(set)
}

/// Merges env lists by key, later entries winning, keeping first-seen order.
pub fn merge_env(lists: &[&[String]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for e in *list {
            let key = e.split('=').next().unwrap_or("");
            match out.iter_mut().find(|x| x.split('=').next() == Some(key)) {
                Some(slot) => *slot = e.clone(),
                None => out.push(e.clone()),
            }
        }
    }
    out
}

/// The command line: entrypoint + cmd with docker's override rules.
pub fn command(cfg: &RunConfig, image: &ImageConfiguration) -> Vec<String> {
    let ic = image.config().clone().unwrap_or_default();
    let (entry, default_cmd): (Vec<String>, Vec<String>) = match &cfg.entrypoint {
        // An explicit --entrypoint also drops the image's Cmd, as docker does.
        Some(e) if e.is_empty() => (vec![], vec![]),
        Some(e) => (vec![e.clone()], vec![]),
        None => (
            ic.entrypoint().clone().unwrap_or_default(),
            ic.cmd().clone().unwrap_or_default(),
        ),
    };
    let cmd = if cfg.cmd.is_empty() {
        default_cmd
    } else {
        cfg.cmd.clone()
    };
    entry.into_iter().chain(cmd).collect()
}

/// Files the engine bind-mounts over the image's own.
pub struct EtcFiles<'a> {
    /// /etc/hosts.
    pub hosts: &'a Path,
    /// /etc/hostname.
    pub hostname: &'a Path,
    /// /etc/resolv.conf.
    pub resolv: &'a Path,
}

/// A volume already resolved to a host directory.
pub struct ResolvedMount {
    /// Host source (empty for tmpfs).
    pub source: String,
    /// Container path.
    pub destination: String,
    /// "bind", "tmpfs", or a filesystem type (a volume with driver options).
    pub kind: String,
    /// Read-only.
    pub read_only: bool,
    /// tmpfs options.
    pub options: String,
}

/// Everything the spec needs besides the run config and the image.
pub struct SpecInput<'a> {
    /// Container id.
    pub id: &'a str,
    /// The run flags.
    pub cfg: &'a RunConfig,
    /// The image config.
    pub image: &'a ImageConfiguration,
    /// The user to run as.
    pub identity: &'a Identity,
    /// Overlay mount data for the rootfs.
    pub overlay: String,
    /// /etc files.
    pub etc: EtcFiles<'a>,
    /// Volumes and tmpfs mounts.
    pub mounts: &'a [ResolvedMount],
    /// cgroup path relative to the hierarchy root.
    pub cgroup_path: &'a str,
    /// Network namespace to join (`--network container:x`), if any.
    pub join_netns: Option<String>,
    /// Hostname.
    pub hostname: &'a str,
}

/// Builds the OCI spec for one container.
pub fn build(input: &SpecInput) -> Result<Spec, Error> {
    let cfg = input.cfg;
    let ic = input.image.config().clone().unwrap_or_default();
    let args = command(cfg, input.image);
    if args.is_empty() {
        return Err(Error::Invalid("no command specified".into()));
    }
    let mut base_env = vec![
        format!("PATH={}", berth_runtime::DEFAULT_PATH),
        format!("HOSTNAME={}", input.hostname),
    ];
    if cfg.tty {
        base_env.push("TERM=xterm".into());
    }
    let image_env = ic.env().clone().unwrap_or_default();
    let mut env = merge_env(&[&base_env, &image_env, &cfg.env]);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", input.identity.home));
    }
    let cwd = cfg
        .workdir
        .clone()
        .or_else(|| ic.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::Invalid(format!(
            "the working directory {cwd:?} is invalid, it needs to be an absolute path"
        )));
    }
    let caps = capabilities(cfg)?;
    let rlimits: Vec<Value> = cfg
        .ulimits
        .iter()
        .map(|(n, s, h)| json!({"type": format!("RLIMIT_{}", n.to_ascii_uppercase()), "soft": s, "hard": h}))
        .collect();

    let shm = cfg.shm_size.unwrap_or(64 << 20);
    let sys_opts = if cfg.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    for (dest, src) in [
        ("/etc/resolv.conf", input.etc.resolv),
        ("/etc/hostname", input.etc.hostname),
        ("/etc/hosts", input.etc.hosts),
    ] {
        if !cfg.mounts.iter().any(|m| m.destination == dest) {
            mounts.push(
                json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}),
            );
        }
    }
    for m in input.mounts {
        if m.kind == "tmpfs" {
            let mut opts = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
            opts.extend(m.options.split(',').filter(|o| !o.is_empty()).map(String::from));
            mounts.push(
                json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}),
            );
        } else if m.kind != "bind" {
            // A volume with its own filesystem (`volume create -o type=… -o device=…`).
            let mut opts: Vec<String> = m
                .options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect();
            if m.read_only {
                opts.push("ro".into());
            }
            mounts.push(
                json!({"destination": m.destination, "type": m.kind, "source": m.source, "options": opts}),
            );
        } else {
            let mut opts = vec!["rbind", "rprivate"];
            if m.read_only {
                opts.push("ro");
            }
            mounts.push(
                json!({"destination": m.destination, "type": "bind", "source": m.source, "options": opts}),
            );
        }
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match (&input.join_netns, cfg.network.as_str()) {
        (Some(path), _) => namespaces.push(json!({"type": "network", "path": path})),
        (None, "host") => {}
        _ => namespaces.push(json!({"type": "network"})),
    }

    let mut resources = json!({});
    let devices = if cfg.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
        ])
    };
    resources["devices"] = devices;
    let mut memory = json!({});
    if let Some(m) = cfg.memory {
        memory["limit"] = json!(m);
    }
    if let Some(s) = cfg.memory_swap {
        memory["swap"] = json!(s);
    }
    if let Some(r) = cfg.memory_reservation {
        memory["reservation"] = json!(r);
    }
    resources["memory"] = memory;
    let mut cpu = json!({});
    if let Some(n) = cfg.nano_cpus {
        let period = 100_000u64;
        cpu["period"] = json!(period);
        cpu["quota"] = json!(n * period as i64 / 1_000_000_000);
    }
    if let Some(p) = cfg.cpu_period {
        cpu["period"] = json!(p);
    }
    if let Some(q) = cfg.cpu_quota {
        cpu["quota"] = json!(q);
    }
    if let Some(s) = cfg.cpu_shares {
        cpu["shares"] = json!(s);
    }
    if let Some(c) = &cfg.cpuset_cpus {
        cpu["cpus"] = json!(c);
    }
    if let Some(m) = &cfg.cpuset_mems {
        cpu["mems"] = json!(m);
    }
    resources["cpu"] = cpu;
    if let Some(p) = cfg.pids_limit {
        resources["pids"] = json!({"limit": p});
    }

    let sysctl: serde_json::Map<String, Value> =
        cfg.sysctls.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroup_path,
        "resources": resources,
        "sysctl": sysctl,
    });
    if !cfg.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        if cfg!(target_arch = "x86_64") {
            linux["seccomp"] = seccomp_profile(&caps);
        }
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": cfg.tty,
            "user": {"uid": input.identity.uid, "gid": input.identity.gid, "additionalGids": input.identity.additional_gids},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []},
            "rlimits": rlimits,
            "noNewPrivileges": !cfg.privileged,
        },
        "root": {"path": "rootfs", "readonly": cfg.read_only},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {berth_runtime::ROOTFS_OVERLAY_ANNOTATION: input.overlay, "org.berth.container.id": input.id},
    });
    serde_json::from_value(spec).map_err(|e| Error::Invalid(format!("building runtime spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_default_add_drop() {
        let mut cfg = RunConfig::default();
        assert_eq!(capabilities(&cfg).unwrap().len(), 14);
        cfg.cap_drop = vec!["net_raw".into()];
        cfg.cap_add = vec!["NET_ADMIN".into()];
        let c = capabilities(&cfg).unwrap();
        assert!(!c.contains(&"CAP_NET_RAW".to_string()));
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        cfg.cap_add = vec!["BOGUS".into()];
        assert!(capabilities(&cfg).is_err());
        cfg.cap_add = vec![];
        cfg.cap_drop = vec!["ALL".into()];
        assert!(capabilities(&cfg).unwrap().is_empty());
    }

    #[test]
    fn env_merges_by_key() {
        let a = vec!["PATH=/a".to_string(), "X=1".to_string()];
        let b = vec!["X=2".to_string(), "Y=3".to_string()];
        assert_eq!(merge_env(&[&a, &b]), vec!["PATH=/a", "X=2", "Y=3"]);
    }

    #[test]
    fn entrypoint_rules() {
        let img: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Entrypoint": ["/entry"], "Cmd": ["default"]}
        }))
        .unwrap();
        let mut cfg = RunConfig::default();
        assert_eq!(command(&cfg, &img), vec!["/entry", "default"]);
        cfg.cmd = vec!["x".into()];
        assert_eq!(command(&cfg, &img), vec!["/entry", "x"]);
        cfg.entrypoint = Some("sh".into());
        assert_eq!(command(&cfg, &img), vec!["sh", "x"]);
        cfg.entrypoint = Some(String::new());
        assert_eq!(command(&cfg, &img), vec!["x"]);
    }
}
