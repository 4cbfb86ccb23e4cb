//! cgroup v2 logic over a fake directory tree: runs without root.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;

use berth_cgroups::{DeviceRule, Error, Hierarchy, Resources, Stats, Version};

const MIB: i64 = 1024 * 1024;

/// Files of a fresh non-root v2 cgroup with cpu, cpuset, memory and pids enabled.
const LEAF_FILES: [(&str, &str); 15] = [
    ("cgroup.procs", ""),
    ("cgroup.controllers", "cpuset cpu memory pids\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.freeze", "0"),
    ("memory.max", "max"),
    ("memory.swap.max", "max"),
    ("memory.low", "0"),
    ("memory.current", "0"),
    ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
    ("cpu.weight", "100"),
    ("cpu.max", "max 100000"),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("pids.max", "max"),
    ("pids.current", "0"),
];

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    /// A v2 root offering `controllers`.
    fn new(controllers: &str) -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::write(root.join("cgroup.controllers"), controllers).unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::write(root.join("cgroup.procs"), "1\n").unwrap();
        Tree { _tmp: tmp, root }
    }

    fn precreate(&self, rel: &str) {
        let mut dir = self.root.clone();
        for part in rel.split('/') {
            dir.push(part);
            if dir.exists() {
                continue;
            }
            fs::create_dir(&dir).unwrap();
            for (f, v) in LEAF_FILES {
                fs::write(dir.join(f), v).unwrap();
            }
        }
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";
const LEAF: &str = "berth/3f2a9c1d/c1";

fn leaf(file: &str) -> String {
    format!("{LEAF}/{file}")
}

#[test]
fn create_enables_controllers_and_writes_limits() {
    let t = Tree::new(ALL);
    t.precreate(LEAF);
    let res = Resources {
        memory_limit: Some(64 * MIB),
        memory_swap: Some(128 * MIB),
        memory_reservation: Some(32 * MIB),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpuset_cpus: Some("0-1".into()),
        cpuset_mems: Some("0".into()),
        pids_limit: Some(10),
        // Needs eBPF on v2: ignored, not an error.
        devices: vec![DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }],
    };
    let h = Hierarchy::v2_at(&t.root);
    assert_eq!(h.version(), Version::V2);
    let cg = h.create(LEAF, &res).unwrap();

    // Every ancestor from the root to the leaf's parent, never the leaf itself.
    let enable = "+cpu +cpuset +memory +pids";
    assert_eq!(t.read("cgroup.subtree_control"), enable);
    assert_eq!(t.read("berth/cgroup.subtree_control"), enable);
    assert_eq!(t.read("berth/3f2a9c1d/cgroup.subtree_control"), enable);
    assert_eq!(t.read(&leaf("cgroup.subtree_control")), "");

    assert_eq!(t.read(&leaf("memory.max")), "67108864");
    assert_eq!(t.read(&leaf("memory.swap.max")), "67108864");
    assert_eq!(t.read(&leaf("memory.low")), "33554432");
    assert_eq!(t.read(&leaf("cpu.weight")), "20");
    assert_eq!(t.read(&leaf("cpu.max")), "50000 100000");
    assert_eq!(t.read(&leaf("cpuset.cpus")), "0-1");
    assert_eq!(t.read(&leaf("cpuset.mems")), "0");
    assert_eq!(t.read(&leaf("pids.max")), "10");
    assert_eq!(cg.unified_path(), Some(t.path(LEAF).as_path()));
    assert_eq!(cg.paths(), vec![t.path(LEAF)]);
}

#[test]
fn shares_become_weight() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    for (shares, weight) in [(2, "1"), (1024, "39"), (262_144, "10000"), (1, "1")] {
        cg.update(&Resources {
            cpu_shares: Some(shares),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.read("c1/cpu.weight"), weight, "shares {shares}");
    }
}

#[test]
fn unlimited_values() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    let res = Resources {
        memory_limit: Some(-1),
        memory_swap: Some(-1),
        memory_reservation: Some(-1),
        cpu_quota: Some(-1),
        cpu_period: Some(100_000),
        pids_limit: Some(-1),
        ..Default::default()
    };
    Hierarchy::v2_at(&t.root).create("c1", &res).unwrap();
    assert_eq!(t.read("c1/memory.max"), "max");
    assert_eq!(t.read("c1/memory.swap.max"), "max");
    // memory.low is a protection: no reservation is 0, not "max".
    assert_eq!(t.read("c1/memory.low"), "0");
    assert_eq!(t.read("c1/cpu.max"), "max 100000");
    assert_eq!(t.read("c1/pids.max"), "max");
}

#[test]
fn cpu_max_keeps_the_other_half() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    fs::write(t.path("c1/cpu.max"), "20000 100000\n").unwrap();
    cg.update(&Resources {
        cpu_period: Some(50_000),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(t.read("c1/cpu.max"), "20000 50000");
    // A quota alone is one token; the kernel keeps the period.
    cg.update(&Resources {
        cpu_quota: Some(30_000),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(t.read("c1/cpu.max"), "30000");
}

#[test]
fn only_available_and_missing_controllers_are_enabled() {
    let t = Tree::new("memory pids\n");
    t.precreate("berth/c1");
    fs::write(t.path("berth/cgroup.controllers"), "memory pids\n").unwrap();
    fs::write(t.path("berth/cgroup.subtree_control"), "memory pids\n").unwrap();
    Hierarchy::v2_at(&t.root)
        .create("berth/c1", &Resources::default())
        .unwrap();
    assert_eq!(t.read("cgroup.subtree_control"), "+memory +pids");
    // Already enabled: left untouched.
    assert_eq!(t.read("berth/cgroup.subtree_control"), "memory pids\n");
}

#[test]
fn swap_file_missing() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    fs::remove_file(t.path("c1/memory.swap.max")).unwrap();
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    // No swap asked for (swap == memory) or no swap limit: nothing to write.
    for swap in [64 * MIB, -1] {
        cg.update(&Resources {
            memory_limit: Some(64 * MIB),
            memory_swap: Some(swap),
            ..Default::default()
        })
        .unwrap();
    }
    // A real swap limit that cannot be set is an error naming the file.
    let err = cg
        .update(&Resources {
            memory_limit: Some(64 * MIB),
            memory_swap: Some(128 * MIB),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("memory.swap.max"), "{err}");
}

#[test]
fn failed_create_removes_only_what_it_created() {
    let t = Tree::new(ALL);
    t.precreate("berth");
    let err = Hierarchy::v2_at(&t.root)
        .create(
            "berth/x/c1",
            &Resources {
                memory_limit: Some(64 * MIB),
                ..Default::default()
            },
        )
        .unwrap_err();
    // The fresh fake "x" has no cgroup.controllers to read.
    assert!(
        matches!(err, Error::Read { .. } | Error::MissingFile { .. }),
        "{err:?}"
    );
    assert!(t.path("berth").is_dir());
    assert!(!t.path("berth/x").exists());

    // Now with the parents in place but the leaf fresh: memory.max is missing.
    t.precreate("berth/x");
    let err = Hierarchy::v2_at(&t.root)
        .create(
            "berth/x/c1",
            &Resources {
                memory_limit: Some(64 * MIB),
                ..Default::default()
            },
        )
        .unwrap_err();
    match err {
        Error::MissingFile { path, .. } => assert_eq!(path, t.path("berth/x/c1/memory.max")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(t.path("berth/x").is_dir());
    assert!(!t.path("berth/x/c1").exists());
}

#[test]
fn destroy_is_idempotent() {
    let t = Tree::new(ALL);
    t.precreate(LEAF);
    let h = Hierarchy::v2_at(&t.root);
    let cg = h.create(LEAF, &Resources::default()).unwrap();
    cg.destroy().unwrap();
    assert!(!t.path(LEAF).exists());
    assert!(t.path("berth/3f2a9c1d").is_dir());
    cg.destroy().unwrap();
    h.open(LEAF).destroy().unwrap();
}

#[test]
fn oom_and_stats() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    assert!(!cg.oom_killed());
    fs::write(
        t.path("c1/memory.events"),
        "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    assert!(cg.oom_killed());

    fs::write(t.path("c1/memory.current"), "4096\n").unwrap();
    fs::write(
        t.path("c1/cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    )
    .unwrap();
    fs::write(t.path("c1/pids.current"), "2\n").unwrap();
    fs::write(t.path("c1/pids.max"), "10\n").unwrap();
    assert_eq!(
        cg.stats().unwrap(),
        Stats {
            memory_usage: 4096,
            memory_limit: None,
            cpu_usage_ns: 1_500_000,
            pids_current: 2,
            pids_limit: Some(10),
        }
    );
    let gone = Hierarchy::v2_at(&t.root).open("gone");
    assert!(matches!(gone.stats(), Err(Error::NotFound { .. })));
    assert!(gone.pids().unwrap().is_empty());
}

#[test]
fn freeze_writes_cgroup_freeze() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    cg.freeze().unwrap();
    assert_eq!(t.read("c1/cgroup.freeze"), "1");
    cg.thaw().unwrap();
    assert_eq!(t.read("c1/cgroup.freeze"), "0");
}

#[test]
fn sigkill_uses_cgroup_kill_when_present() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    fs::write(t.path("c1/cgroup.kill"), "").unwrap();
    // A pid that must not be signalled: cgroup.kill takes over.
    fs::write(t.path("c1/cgroup.procs"), "1\n").unwrap();
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(t.read("c1/cgroup.kill"), "1");
}

#[test]
fn kill_without_cgroup_kill_signals_pids() {
    let t = Tree::new(ALL);
    t.precreate("c1");
    let cg = Hierarchy::v2_at(&t.root).open("c1");
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    cg.kill_all(libc::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(t.read("c1/cgroup.freeze"), "0");
}
