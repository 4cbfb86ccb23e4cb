//! Against the host's real cgroups: needs root, skips (with a message) otherwise.
//!
//! Each run works under "berth-test/<unique>" and removes its own cgroup; the shared
//! "berth-test" parent is only rmdir'ed, which fails harmlessly while another run uses it.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_cgroups::{Cgroup, Error, Hierarchy, Resources, Version};

const MIB: i64 = 1024 * 1024;

fn skip(why: &str) {
    eprintln!("skipping root cgroup test: {why}");
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}/{}-{nanos:08x}", std::process::id())
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Kills and removes the cgroup even when an assertion fails halfway.
struct Guard {
    cg: Cgroup,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.kill_all(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.destroy();
        for p in self.cg.paths() {
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// The cgroup directory holding `file`, if any controller provides it.
fn dir_with(cg: &Cgroup, file: &str) -> Option<PathBuf> {
    cg.paths().into_iter().find(|p| p.join(file).exists())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

#[test]
fn real_cgroup_lifecycle() {
    if !is_root() {
        return skip("not root");
    }
    let h = match Hierarchy::detect() {
        Ok(h) => h,
        Err(e) => return skip(&format!("no cgroup hierarchy: {e}")),
    };
    let res = Resources {
        memory_limit: Some(64 * MIB),
        pids_limit: Some(10),
        ..Default::default()
    };
    let rel = unique("berth-test");
    let cg = match h.create(&rel, &res) {
        Ok(cg) => cg,
        Err(e @ (Error::ControllerMissing { .. } | Error::EnableController { .. })) => {
            return skip(&format!("memory or pids controller unavailable: {e}"))
        }
        Err(e) => panic!("create {rel}: {e:?}"),
    };
    let mut guard = Guard {
        cg: cg.clone(),
        child: None,
    };
    for p in cg.paths() {
        assert!(p.is_dir(), "{p:?} not created");
    }
    assert_eq!(cg.unified_path().is_some(), h.version() == Version::V2);

    let child = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = child.id() as i32;
    guard.child = Some(child);
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);

    let s = cg.stats().unwrap();
    assert_eq!(s.memory_limit, Some(64 * 1024 * 1024));
    assert_eq!(s.pids_limit, Some(10));
    assert_eq!(s.pids_current, 1);
    assert!(!cg.oom_killed());

    // CPU and cpuset values the kernel must accept, including going back to unlimited.
    if dir_with(&cg, "cpu.shares").is_some() || dir_with(&cg, "cpu.max").is_some() {
        for (quota, period) in [(50_000, 100_000), (5_000, 10_000), (-1, 100_000)] {
            cg.update(&Resources {
                cpu_shares: Some(512),
                cpu_quota: Some(quota),
                cpu_period: Some(period),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("cpu {quota}/{period}: {e:?}"));
        }
    }
    if dir_with(&cg, "cpuset.cpus").is_some() {
        cg.update(&Resources {
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            ..Default::default()
        })
        .unwrap();
    }
    if let Some(d) = dir_with(&cg, "devices.list") {
        let rule = |allow, kind, major, minor| berth_cgroups::DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: "rwm".into(),
        };
        cg.update(&Resources {
            devices: vec![rule(false, 'a', None, None), rule(true, 'c', Some(1), Some(3))],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(&d.join("devices.list")), "c 1:3 rwm");
    }

    // The kernel's ordering rule between memory and memory+swap, both directions.
    let swap_file = match h.version() {
        Version::V1 => "memory.memsw.limit_in_bytes",
        Version::V2 => "memory.swap.max",
    };
    if let Some(dir) = dir_with(&cg, swap_file) {
        for (mem, swap) in [(32, 48), (256, 512), (16, 16), (128, -1)] {
            let r = Resources {
                memory_limit: Some(mem * MIB),
                memory_swap: Some(if swap < 0 { -1 } else { swap * MIB }),
                ..Default::default()
            };
            cg.update(&r)
                .unwrap_or_else(|e| panic!("update {mem}/{swap}: {e:?}"));
            assert_eq!(cg.stats().unwrap().memory_limit, Some(mem as u64 * 1024 * 1024));
            if h.version() == Version::V1 && swap > 0 {
                assert_eq!(read(&dir.join(swap_file)), (swap * MIB).to_string());
            }
        }
    } else {
        eprintln!("no {swap_file}: swap accounting disabled, swap ordering not exercised");
    }

    // A syntactically fine cpuset the kernel refuses: the error names file and value.
    if dir_with(&cg, "cpuset.cpus").is_some() {
        let err = cg
            .update(&Resources {
                cpuset_cpus: Some("0-4095".into()),
                ..Default::default()
            })
            .unwrap_err();
        match &err {
            Error::InvalidValue { path, value, .. } => {
                assert!(path.ends_with("cpuset.cpus"), "{path:?}");
                assert_eq!(value, "0-4095");
            }
            other => panic!("expected InvalidValue, got {other:?}"),
        }
        assert!(err.to_string().contains("cpuset.cpus"));
    }

    match cg.freeze() {
        Ok(()) => {
            if let Some(d) = dir_with(&cg, "freezer.state") {
                assert_eq!(read(&d.join("freezer.state")), "FROZEN");
            }
            cg.thaw().unwrap();
        }
        Err(Error::ControllerMissing { .. }) => eprintln!("no freezer, freeze not exercised"),
        Err(e) => panic!("freeze: {e:?}"),
    }

    cg.kill_all(libc::SIGKILL).unwrap();
    let status = guard.child.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    for p in cg.paths() {
        assert!(!p.exists(), "{p:?} left behind");
    }
    cg.destroy().unwrap();
}

/// On a hybrid host the cgroup2 mount holds no useful controller, but its core files
/// (cgroup.procs, cgroup.freeze, cgroup.kill) still exercise the v2 code on a real kernel.
#[test]
fn real_v2_core_on_hybrid_host() {
    if !is_root() {
        return skip("not root");
    }
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !unified.join("cgroup.procs").exists() {
        return skip("no hybrid cgroup2 mount at /sys/fs/cgroup/unified");
    }
    let h = Hierarchy::v2_at(unified);
    let rel = unique("berth-test");
    let cg = h.create(&rel, &Resources::default()).unwrap();
    let mut guard = Guard {
        cg: cg.clone(),
        child: None,
    };
    let child = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = child.id() as i32;
    guard.child = Some(child);
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let stats = cg.stats().unwrap();
    assert_eq!(stats.memory_limit, None);

    if cg.unified_path().unwrap().join("cgroup.freeze").exists() {
        cg.freeze().unwrap();
        let events = read(&cg.unified_path().unwrap().join("cgroup.events"));
        assert!(events.contains("frozen 1"), "{events}");
        cg.thaw().unwrap();
    }

    cg.kill_all(libc::SIGKILL).unwrap();
    let status = guard.child.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    assert!(!cg.unified_path().unwrap().exists());
}
