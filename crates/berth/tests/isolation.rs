//! What a default container must not be able to do (or see).

mod common;

use std::path::Path;

use common::{unique, Env};

/// docker's 14 default capabilities as a capability mask.
const DEFAULT_CAPS: &str = "00000000a80425fb";

#[test]
fn cannot_mount() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mkdir /tmp/m && mount -t tmpfs none /tmp/m",
    ]);
    out.failure();
    out.stderr_has("permission denied");
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mkdir /tmp/m && mount --bind /bin /tmp/m",
    ]);
    out.failure();
}

#[test]
fn cannot_see_host_processes() {
    let env = Env::new();
    // A host process with a marker only it has.
    let marker = format!("{}.{}", 700 + std::process::id() % 100, std::process::id() % 1000);
    let mut host = std::process::Command::new("sleep").arg(&marker).spawn().unwrap();
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n; cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
    ]);
    let _ = host.kill();
    let _ = host.wait();
    out.success();
    let n: u32 = out.lines()[0].parse().unwrap();
    assert!(n <= 3, "only the container's own processes: {n}\n{out}");
    assert!(!out.stdout.contains(&marker), "a host process is visible:\n{out}");
}

#[test]
fn cannot_write_host_files() {
    let env = Env::new();
    let name = unique("berth-escape");
    let script = format!("echo x > /{name} && echo x > /etc/{name} && echo x > /tmp/{name} && echo written");
    let out = env.berth(&["run", "--rm", "busybox", "sh", "-c", &script]);
    out.success();
    assert_eq!(out.out(), "written");
    for dir in ["/", "/etc", "/tmp"] {
        assert!(
            !Path::new(dir).join(&name).exists(),
            "container wrote {dir}/{name} on the host"
        );
    }
}

#[test]
fn root_filesystem_changes_stay_in_the_container() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "a",
        "busybox",
        "sh",
        "-c",
        "echo changed > /var/www/index.html",
    ])
    .success();
    assert_eq!(
        env.ok(&["run", "--rm", "busybox", "cat", "/var/www/index.html"]),
        "hello from berth"
    );
}

#[test]
fn kcore_and_friends_are_masked() {
    let env = Env::new();
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/sys/firmware",
    ] {
        let script = format!("cat {path} 2>/dev/null | wc -c; ls {path} 2>/dev/null | wc -l");
        let out = env.berth(&["run", "--rm", "busybox", "sh", "-c", &script]);
        out.success();
        let l = out.lines();
        assert_eq!(l[0], "0", "{path} must read as empty:\n{out}");
        if path == "/sys/firmware" {
            assert_eq!(l[1], "0", "{path} must look empty:\n{out}");
        }
    }
}

#[test]
fn proc_sys_is_read_only() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hacked > /proc/sys/kernel/hostname",
    ]);
    out.failure();
    out.stderr_has("read-only file system");
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo b > /proc/sysrq-trigger",
    ]);
    out.failure();
    let out = env.berth(&["run", "--rm", "busybox", "sh", "-c", "touch /sys/kernel/x"]);
    out.failure();
    // Still readable.
    let out = env.berth(&["run", "--rm", "busybox", "cat", "/proc/sys/kernel/ostype"]);
    out.success();
    assert_eq!(out.out(), "Linux");
}

/// "MAJ MIN" of a real block device of the host (the first disk in /sys/block), else 8 0.
fn host_disk() -> (String, String) {
    let mut best = None;
    if let Ok(rd) = std::fs::read_dir("/sys/block") {
        let mut names: Vec<_> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if n.starts_with("loop") || n.starts_with("ram") || n.starts_with("zram") {
                continue;
            }
            if let Ok(dev) = std::fs::read_to_string(format!("/sys/block/{n}/dev")) {
                if let Some((a, b)) = dev.trim().split_once(':') {
                    best = Some((a.to_string(), b.to_string()));
                    break;
                }
            }
        }
    }
    best.unwrap_or(("8".into(), "0".into()))
}

#[test]
fn disk_devices_cannot_be_read() {
    let env = Env::new();
    let (maj, min) = host_disk();
    let script = format!("mknod /tmp/disk b {maj} {min} || exit 9; head -c 512 /tmp/disk | wc -c");
    let out = env.berth(&["run", "--rm", "busybox", "sh", "-c", &script]);
    out.success();
    assert_eq!(
        out.out(),
        "0",
        "reading the disk {maj}:{min} must be denied:\n{out}"
    );
    out.stderr_has("operation not permitted");
    // Nor written.
    let script = format!("mknod /tmp/disk b {maj} {min}; echo x > /tmp/disk");
    env.berth(&["run", "--rm", "busybox", "sh", "-c", &script])
        .failure();
}

#[test]
fn dev_has_only_the_default_devices() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "busybox", "ls", "/dev"]);
    out.success();
    for d in out.lines() {
        assert!(
            [
                "console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
                "stdin", "stdout", "tty", "urandom", "zero"
            ]
            .contains(&d),
            "unexpected /dev entry {d:?}:\n{out}"
        );
    }
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c",
    ]);
    out.success();
    assert_eq!(out.out(), "4");
}

#[test]
fn default_capabilities() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "busybox", "grep", "^Cap", "/proc/self/status"]);
    out.success();
    let get = |k: &str| {
        out.lines()
            .iter()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("{k} missing:\n{out}"))
            .to_string()
    };
    assert_eq!(get("CapEff:"), DEFAULT_CAPS);
    assert_eq!(get("CapPrm:"), DEFAULT_CAPS);
    assert_eq!(get("CapBnd:"), DEFAULT_CAPS);
    assert_eq!(get("CapInh:"), "0000000000000000");
    assert_eq!(get("CapAmb:"), "0000000000000000");
}

#[test]
fn non_root_user_has_no_effective_capabilities() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "-u",
        "app",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    out.success();
    assert!(out.out().ends_with("0000000000000000"), "{out}");
}

#[test]
fn no_new_privileges() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    out.success();
    assert_eq!(out.out().split_whitespace().last(), Some("1"), "{out}");
}

#[test]
fn exec_is_confined_like_the_container() {
    let env = Env::new();
    let id = env.run_d(&["busybox", "sleep", "60"]);
    let out = env.berth(&[
        "exec",
        &id,
        "grep",
        "-E",
        "CapEff|NoNewPrivs",
        "/proc/self/status",
    ]);
    out.success();
    let l = out.lines();
    assert!(l[0].ends_with(DEFAULT_CAPS), "{out}");
    assert!(l[1].ends_with('1'), "{out}");
    let out = env.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
    ]);
    out.failure();
}

#[test]
fn network_none_has_only_loopback() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; echo ---; ip -o link show up",
    ]);
    out.success();
    let (ifaces, up) = out.stdout.split_once("---\n").unwrap();
    assert_eq!(ifaces.split_whitespace().collect::<Vec<_>>(), vec!["lo"], "{out}");
    let up: Vec<&str> = up.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(up.len(), 1, "{out}");
    assert!(up[0].contains(" lo: "), "{out}");
    // Loopback works (to ourselves only).
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        "127.0.0.1",
    ]);
    out.success();
    env.berth(&["run", "--name", "net", "--network", "none", "busybox", "true"])
        .success();
    assert_eq!(env.inspect("net", "{{.HostConfig.NetworkMode}}"), "none");
    env.berth(&["run", "--name", "dflt", "busybox", "true"]).success();
    assert_eq!(env.inspect("dflt", "{{.HostConfig.NetworkMode}}"), "bridge");
}

#[test]
fn hostname_change_needs_privileges() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox", "hostname", "evil"])
        .failure();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "evil");
}

#[test]
fn cannot_load_modules_or_change_the_clock() {
    let env = Env::new();
    // busybox date reports the failure but exits 0: look at what it says, and at the host's clock.
    env.berth(&["run", "--rm", "busybox", "date", "-s", "2000-01-01"])
        .stderr_has("not permitted");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs > 1_600_000_000, "the host clock was changed");
    env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/vm/drop_caches",
    ])
    .failure();
}

#[test]
fn etc_files_are_the_containers_own() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--name",
        "etc",
        "--add-host",
        "db:10.0.0.5",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    out.success();
    assert!(out.stdout.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.stdout.contains("10.0.0.5\tdb"), "{out}");
    // The container cannot alter the host's copies.
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 6.6.6.6 evil >> /etc/hosts",
    ])
    .success();
    assert_eq!(std::fs::read_to_string("/etc/hosts").unwrap(), host_hosts);
}

/// Imports busybox plus two symlinks pointing at `host_dir` (absolute, and climbing with "../") as
/// image "trap".
fn import_symlink_image(env: &Env, host_dir: &Path) {
    let tar = env.root().join("trap.tar");
    let script = r#"import sys, tarfile
src = tarfile.open(sys.argv[1])
with tarfile.open(sys.argv[2], "w", format=tarfile.GNU_FORMAT) as t:
    for m in src.getmembers():
        t.addfile(m, src.extractfile(m) if m.isfile() else None)
    for name, target in (("abs", sys.argv[3]), ("rel", "../../../../../../.." + sys.argv[3])):
        i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
"#;
    let res = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(common::image_tar())
        .arg(&tar)
        .arg(host_dir)
        .output()
        .expect("python3 is needed to build test tarballs");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    env.ok(&["import", &tar.to_string_lossy(), "trap"]);
}

#[test]
fn image_symlinks_cannot_redirect_mounts_to_the_host() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    import_symlink_image(&env, host.path());
    let etc = "/etc:/abs/etc-bind:ro".to_string();
    for args in [
        vec!["--tmpfs", "/abs/tmpfs"],
        vec!["--tmpfs", "/rel/tmpfs"],
        vec!["-v", "vol:/abs/vol"],
        vec!["-v", "/rel/anon"],
        vec!["-v", etc.as_str()],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["trap", "sh", "-c", "echo x > /abs/file-through-link; true"]);
        let out = env.berth(&a);
        assert!(out.code == 0 || out.code == 125, "{out}");
        let created: Vec<_> = std::fs::read_dir(host.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(created.is_empty(), "{args:?} created {created:?} on the host");
    }
}

#[test]
fn workdir_through_an_image_symlink() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    import_symlink_image(&env, host.path());
    let out = env.berth(&[
        "run",
        "--rm",
        "-w",
        "/abs/wd",
        "trap",
        "sh",
        "-c",
        "touch here; pwd",
    ]);
    out.success();
    // getcwd reports the physical path: the symlink's target, resolved inside the rootfs.
    assert!(out.out().ends_with("/wd"), "{out}");
    let created: Vec<_> = std::fs::read_dir(host.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(created.is_empty(), "created {created:?} on the host");
}

#[test]
fn cap_drop_all_then_add_one() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    out.success();
    assert!(out.out().ends_with("0000000000000400"), "{out}");
    let out = env.berth(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "chown",
        "app",
        "/tmp",
    ]);
    out.failure();
}
