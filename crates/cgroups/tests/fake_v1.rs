//! cgroup v1 logic over a fake directory tree: runs without root.
//!
//! The fake tree holds the control files the kernel would create; tests pre-create the cgroup
//! directories they expect `create` to fill, since a plain mkdir makes no control files.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use berth_cgroups::{DeviceRule, Error, Hierarchy, Resources, Stats, Version};

const UNLIMITED: &str = "9223372036854771712";
const MIB: i64 = 1024 * 1024;

/// Files each controller's directory holds, with the value a fresh cgroup shows.
fn controller_files(controller: &str) -> &'static [(&'static str, &'static str)] {
    match controller {
        "memory" => &[
            ("memory.limit_in_bytes", UNLIMITED),
            ("memory.memsw.limit_in_bytes", UNLIMITED),
            ("memory.soft_limit_in_bytes", UNLIMITED),
            ("memory.usage_in_bytes", "0"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
            ("memory.failcnt", "0"),
        ],
        "cpu" => &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
        ],
        "cpuacct" => &[("cpuacct.usage", "0")],
        // A new cpuset cgroup is empty: processes cannot join until it is initialized.
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "pids" => &[("pids.max", "max"), ("pids.current", "0")],
        "devices" => &[("devices.allow", ""), ("devices.deny", "")],
        "freezer" => &[("freezer.state", "THAWED")],
        _ => &[],
    }
}

struct Tree {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    mounts: Vec<(String, PathBuf)>,
}

impl Tree {
    /// One mount per controller, like this host; the cpuset root holds real values.
    fn new(controllers: &[&str]) -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let mut mounts = Vec::new();
        for c in controllers {
            let m = base.join(c);
            fs::create_dir(&m).unwrap();
            fs::write(m.join("cgroup.procs"), "").unwrap();
            mounts.push((c.to_string(), m));
        }
        if controllers.contains(&"cpuset") {
            fs::write(base.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
            fs::write(base.join("cpuset/cpuset.mems"), "0\n").unwrap();
        }
        Tree {
            _tmp: tmp,
            base,
            mounts,
        }
    }

    /// Makes `rel` exist in every controller, each level with fresh control files, as the
    /// kernel would on mkdir.
    fn precreate(&self, rel: &str) {
        for (c, m) in &self.mounts {
            let mut dir = m.clone();
            for part in rel.split('/') {
                dir.push(part);
                if dir.exists() {
                    continue;
                }
                fs::create_dir(&dir).unwrap();
                fs::write(dir.join("cgroup.procs"), "").unwrap();
                for (f, v) in controller_files(c) {
                    fs::write(dir.join(f), v).unwrap();
                }
            }
        }
    }

    fn hierarchy(&self) -> Hierarchy {
        Hierarchy::v1_at(self.mounts.clone())
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.base.join(rel)).unwrap()
    }
}

const ALL: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio",
];
const LEAF: &str = "berth/3f2a9c1d/c1";

#[test]
fn create_writes_every_limit() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let res = Resources {
        memory_limit: Some(64 * MIB),
        memory_swap: Some(128 * MIB),
        memory_reservation: Some(32 * MIB),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpuset_cpus: Some("0-1,3".into()),
        cpuset_mems: Some("0".into()),
        pids_limit: Some(10),
        devices: vec![DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }],
    };
    let h = t.hierarchy();
    assert_eq!(h.version(), Version::V1);
    let cg = h.create(LEAF, &res).unwrap();
    let f = |c: &str, file: &str| t.read(&format!("{c}/{LEAF}/{file}"));
    assert_eq!(f("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(f("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(f("cpu", "cpu.shares"), "512");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(f("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(f("cpuset", "cpuset.cpus"), "0-1,3");
    assert_eq!(f("cpuset", "cpuset.mems"), "0");
    assert_eq!(f("pids", "pids.max"), "10");
    assert_eq!(f("devices", "devices.deny"), "a *:* rwm");
    assert_eq!(cg.unified_path(), None);
    assert_eq!(cg.paths().len(), 8);
}

#[test]
fn cpuset_is_inherited_at_every_created_level() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    t.hierarchy().create(LEAF, &Resources::default()).unwrap();
    for level in ["berth", "berth/3f2a9c1d", LEAF] {
        assert_eq!(t.read(&format!("cpuset/{level}/cpuset.cpus")), "0-3");
        assert_eq!(t.read(&format!("cpuset/{level}/cpuset.mems")), "0");
    }
}

#[test]
fn unlimited_values() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let res = Resources {
        memory_limit: Some(-1),
        memory_swap: Some(-1),
        cpu_quota: Some(-1),
        pids_limit: Some(0),
        ..Default::default()
    };
    t.hierarchy().create(LEAF, &res).unwrap();
    assert_eq!(t.read(&format!("memory/{LEAF}/memory.limit_in_bytes")), "-1");
    assert_eq!(
        t.read(&format!("memory/{LEAF}/memory.memsw.limit_in_bytes")),
        "-1"
    );
    assert_eq!(t.read(&format!("cpu/{LEAF}/cpu.cfs_quota_us")), "-1");
    assert_eq!(t.read(&format!("pids/{LEAF}/pids.max")), "max");
}

#[test]
fn missing_memsw_means_no_swap_accounting() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    fs::remove_file(t.base.join(format!("memory/{LEAF}/memory.memsw.limit_in_bytes"))).unwrap();
    let res = Resources {
        memory_limit: Some(64 * MIB),
        memory_swap: Some(128 * MIB),
        ..Default::default()
    };
    t.hierarchy().create(LEAF, &res).unwrap();
    assert_eq!(
        t.read(&format!("memory/{LEAF}/memory.limit_in_bytes")),
        "67108864"
    );
}

#[test]
fn update_lowers_and_raises_memory_pair() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let h = t.hierarchy();
    let cg = h
        .create(
            LEAF,
            &Resources {
                memory_limit: Some(64 * MIB),
                memory_swap: Some(128 * MIB),
                ..Default::default()
            },
        )
        .unwrap();
    for (mem, swap) in [(32, 48), (256, 512), (256, -1)] {
        cg.update(&Resources {
            memory_limit: Some(mem * MIB),
            memory_swap: Some(if swap < 0 { -1 } else { swap * MIB }),
            ..Default::default()
        })
        .unwrap();
        let memsw = if swap < 0 {
            "-1".to_string()
        } else {
            (swap * MIB).to_string()
        };
        assert_eq!(
            t.read(&format!("memory/{LEAF}/memory.memsw.limit_in_bytes")),
            memsw
        );
        assert_eq!(
            t.read(&format!("memory/{LEAF}/memory.limit_in_bytes")),
            (mem * MIB).to_string()
        );
    }
}

#[test]
fn failed_create_removes_only_what_it_created() {
    let t = Tree::new(&["memory", "pids"]);
    t.precreate("berth");
    // mkdir makes no control files in a fake tree, so pids.max is missing: the requested
    // limit cannot be set.
    let err = t
        .hierarchy()
        .create(
            "berth/x/c1",
            &Resources {
                pids_limit: Some(10),
                ..Default::default()
            },
        )
        .unwrap_err();
    match &err {
        Error::MissingFile { path, value } => {
            assert!(path.ends_with("berth/x/c1/pids.max"), "{path:?}");
            assert_eq!(value, "10");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("pids.max"));
    for c in ["memory", "pids"] {
        assert!(t.base.join(c).join("berth").is_dir(), "shared parent removed");
        assert!(!t.base.join(c).join("berth/x").exists(), "{c}: leftovers");
    }
}

#[test]
fn invalid_request_writes_nothing() {
    let t = Tree::new(&ALL);
    let err = t
        .hierarchy()
        .create(
            "berth/c1",
            &Resources {
                cpuset_cpus: Some("0-1,x".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidResource { .. }), "{err:?}");
    assert!(!t.base.join("memory/berth").exists());
}

#[test]
fn rejects_escaping_paths() {
    let t = Tree::new(&ALL);
    for rel in ["../x", "/abs", "", "a/../b", "./a"] {
        let err = t.hierarchy().create(rel, &Resources::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{rel:?}: {err:?}");
    }
    assert!(t.hierarchy().open("").destroy().is_err());
}

#[test]
fn destroy_is_idempotent_and_keeps_parents() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let cg = t.hierarchy().create(LEAF, &Resources::default()).unwrap();
    cg.destroy().unwrap();
    for p in cg.paths() {
        assert!(!p.exists(), "{p:?} still there");
        assert!(p.parent().unwrap().is_dir());
    }
    cg.destroy().unwrap();
    t.hierarchy().open(LEAF).destroy().unwrap();
}

#[test]
fn comounted_controllers_share_a_directory() {
    let t = Tree::new(&["cpu,cpuacct", "memory"]);
    let both = t.base.join("cpu,cpuacct");
    let h = Hierarchy::v1_at(vec![
        ("cpu".into(), both.clone()),
        ("cpuacct".into(), both.clone()),
        ("memory".into(), t.base.join("memory")),
        ("name=systemd".into(), t.base.join("systemd")),
    ]);
    let cg = h
        .create(
            "berth/c1",
            &Resources {
                memory_limit: Some(-1),
                ..Default::default()
            },
        )
        .unwrap_err();
    // memory.limit_in_bytes is missing in the fresh fake dir; what matters here is cleanup.
    assert!(matches!(cg, Error::MissingFile { .. }));
    assert!(!both.join("berth").exists());

    let cg = h.create("berth/c1", &Resources::default()).unwrap();
    assert_eq!(
        cg.paths(),
        vec![both.join("berth/c1"), t.base.join("memory/berth/c1")]
    );
    fs::write(both.join("berth/c1/cgroup.procs"), "").unwrap();
    fs::write(t.base.join("memory/berth/c1/cgroup.procs"), "").unwrap();
    cg.add_pid(4242).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![4242]);
    cg.destroy().unwrap();
    assert!(!both.join("berth/c1").exists());
}

#[test]
fn missing_controller_is_a_clear_error() {
    let t = Tree::new(&["memory"]);
    t.precreate("c1");
    let err = t
        .hierarchy()
        .create(
            "c1",
            &Resources {
                cpu_shares: Some(512),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("\"cpu\" is not mounted"), "{err}");
}

#[test]
fn oom_kill_counter_not_failcnt() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let cg = t.hierarchy().open(LEAF);
    fs::write(t.base.join(format!("memory/{LEAF}/memory.failcnt")), "17").unwrap();
    assert!(!cg.oom_killed());
    fs::write(
        t.base.join(format!("memory/{LEAF}/memory.oom_control")),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .unwrap();
    assert!(cg.oom_killed());
    assert!(!t.hierarchy().open("nope").oom_killed());
}

#[test]
fn stats_read_counters() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let d = |c: &str| t.base.join(c).join(LEAF);
    fs::write(d("memory").join("memory.usage_in_bytes"), "123456\n").unwrap();
    fs::write(d("cpuacct").join("cpuacct.usage"), "987654321\n").unwrap();
    fs::write(d("pids").join("pids.current"), "3\n").unwrap();
    let cg = t.hierarchy().open(LEAF);
    assert_eq!(
        cg.stats().unwrap(),
        Stats {
            memory_usage: 123456,
            memory_limit: None,
            cpu_usage_ns: 987654321,
            pids_current: 3,
            pids_limit: None,
        }
    );
    cg.update(&Resources {
        memory_limit: Some(64 * MIB),
        pids_limit: Some(10),
        ..Default::default()
    })
    .unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(s.memory_limit, Some(64 * 1024 * 1024));
    assert_eq!(s.pids_limit, Some(10));

    let gone = t.hierarchy().open("berth/gone");
    assert!(matches!(gone.stats(), Err(Error::NotFound { .. })));
    assert!(gone.pids().unwrap().is_empty());
}

#[test]
fn freeze_and_thaw() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let cg = t.hierarchy().open(LEAF);
    cg.freeze().unwrap();
    assert_eq!(t.read(&format!("freezer/{LEAF}/freezer.state")), "FROZEN");
    cg.thaw().unwrap();
    assert_eq!(t.read(&format!("freezer/{LEAF}/freezer.state")), "THAWED");
}

#[test]
fn kill_all_signals_listed_processes() {
    let t = Tree::new(&ALL);
    t.precreate(LEAF);
    let cg = t.hierarchy().open(LEAF);
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.id() as i32]);
    cg.kill_all(libc::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Freezing around the kill left the cgroup thawed.
    assert_eq!(t.read(&format!("freezer/{LEAF}/freezer.state")), "THAWED");
    // The process is gone now: signalling it again is not an error.
    cg.kill_all(libc::SIGTERM).unwrap();
}

#[test]
fn device_rules_in_order() {
    let t = Tree::new(&["devices"]);
    t.precreate("c1");
    let cg = t.hierarchy().open("c1");
    cg.update(&Resources {
        devices: vec![DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(1),
            minor: Some(3),
            access: "rwm".into(),
        }],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(t.read("devices/c1/devices.allow"), "c 1:3 rwm");
}
