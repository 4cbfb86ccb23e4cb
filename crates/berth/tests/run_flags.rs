//! `berth run` and its flags, as a docker user would check them from the outside.

mod common;

use std::time::Duration;

use common::{is_hex, Env};

#[test]
fn pid_1_is_the_command() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    out.success();
    let lines = out.lines();
    assert_eq!(lines.first(), Some(&"1"), "{out}");
    assert!(
        lines[1].starts_with("sh -c echo $$"),
        "pid 1 should be the sh we ran:\n{out}"
    );
}

#[test]
fn hostname_is_the_short_id() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--name",
        "h",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    out.success();
    let id = env.inspect("h", "{{.Id}}");
    assert!(is_hex(&id, 64), "Id: {id}");
    assert_eq!(out.lines(), vec![&id[..12], &id[..12]], "{out}");
    assert_eq!(env.inspect("h", "{{.Config.Hostname}}"), &id[..12]);
}

#[test]
fn hostname_flag() {
    let env = Env::new();
    for flag in ["--hostname", "-h"] {
        let out = env.berth(&[
            "run",
            "--rm",
            flag,
            "box1",
            "busybox",
            "sh",
            "-c",
            "hostname; echo $HOSTNAME",
        ]);
        out.success();
        assert_eq!(out.lines(), vec!["box1", "box1"], "{out}");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box1", "the host's hostname must not change");
}

#[test]
fn ps_inside_shows_only_its_own_processes() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "sleep 5 & ps -o pid,comm; true",
    ]);
    out.success();
    let rows: Vec<(u32, String)> = out
        .lines()
        .iter()
        .skip(1)
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(rows.len() <= 3, "only sh, sleep and ps should be visible:\n{out}");
    assert!(rows.iter().any(|(p, c)| *p == 1 && c == "sh"), "{out}");
    assert!(
        rows.iter().all(|(p, _)| *p < 20),
        "pids should be the container's own:\n{out}"
    );
}

#[test]
fn rm_leaves_nothing() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "--name", "gone", "busybox", "echo", "bye"]);
    out.success();
    assert_eq!(out.out(), "bye");
    assert!(env.all_ids().is_empty(), "ps -a should be empty after --rm");
    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Names}}"]), "");
    let left: Vec<_> = std::fs::read_dir(env.root().join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container files left: {left:?}");
    // The name is free again.
    env.berth(&["run", "--rm", "--name", "gone", "busybox", "true"])
        .success();
}

#[test]
fn rm_of_a_failed_start_leaves_nothing() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox", "no-such-command"])
        .code(127);
    assert!(
        env.all_ids().is_empty(),
        "--rm container whose start failed should be gone"
    );
}

#[test]
fn env_flags() {
    let mut env = Env::new();
    env.set_env("BERTH_T_FROM_HOST", "host value");
    let file = env.root().join("vars.env");
    std::fs::write(
        &file,
        "# a comment\nFROM_FILE=file value\n\nOVERRIDDEN=from file\n",
    )
    .unwrap();
    let out = env.berth(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env",
        "B=two words",
        "-e",
        "BERTH_T_FROM_HOST",
        "-e",
        "BERTH_T_NOT_SET_ANYWHERE",
        "--env-file",
        &file.to_string_lossy(),
        "-e",
        "OVERRIDDEN=from flag",
        "busybox",
        "env",
    ]);
    out.success();
    let vars = out.lines();
    for want in [
        "A=1",
        "B=two words",
        "BERTH_T_FROM_HOST=host value",
        "FROM_FILE=file value",
        "OVERRIDDEN=from flag",
        "HOME=/root",
    ] {
        assert!(vars.contains(&want), "missing {want:?}:\n{out}");
    }
    assert!(vars.iter().any(|v| v.starts_with("PATH=/")), "{out}");
    assert!(
        !vars.iter().any(|v| v.starts_with("BERTH_T_NOT_SET_ANYWHERE")),
        "{out}"
    );
    assert!(
        !vars.iter().any(|v| v.starts_with("OVERRIDDEN=from file")),
        "{out}"
    );
}

#[test]
fn env_is_not_leaked_from_the_host() {
    let mut env = Env::new();
    env.set_env("BERTH_T_SECRET", "s3cret");
    let out = env.berth(&["run", "--rm", "busybox", "env"]);
    out.success();
    assert!(
        !out.stdout.contains("s3cret"),
        "host env must not reach the container:\n{out}"
    );
}

#[test]
fn workdir_is_created() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "-w",
        "/a/b/c",
        "busybox",
        "sh",
        "-c",
        "pwd; ls -d /a/b/c",
    ]);
    out.success();
    assert_eq!(out.lines(), vec!["/a/b/c", "/a/b/c"], "{out}");
    let out = env.berth(&[
        "run",
        "--rm",
        "--workdir",
        "/var/www",
        "busybox",
        "cat",
        "index.html",
    ]);
    out.success();
    assert_eq!(out.out(), "hello from berth");
}

#[test]
fn user_by_name() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "-u",
        "app",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $HOME",
    ]);
    out.success();
    let l = out.lines();
    assert_eq!(l[0], "1000", "{out}");
    assert_eq!(l[1], "1000", "{out}");
    assert!(
        l[2].split_whitespace().any(|g| g == "100"),
        "app is in group users (100):\n{out}"
    );
    assert_eq!(l[3], "/home/app", "{out}");
}

#[test]
fn user_numeric_uid_and_gid() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "-u",
        "1234:5",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    out.success();
    assert_eq!(out.lines(), vec!["1234", "5"], "{out}");
    let out = env.berth(&[
        "run",
        "--rm",
        "--user",
        "app:users",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    out.success();
    assert_eq!(out.lines(), vec!["1000", "100"], "{out}");
}

#[test]
fn unknown_user_is_125() {
    let env = Env::new();
    env.berth(&["run", "--rm", "-u", "nosuchuser", "busybox", "true"])
        .code(125)
        .berth_error("nosuchuser");
    env.berth(&["run", "--rm", "-u", "app:nosuchgroup", "busybox", "true"])
        .code(125)
        .berth_error("nosuchgroup");
    assert!(
        env.all_ids().is_empty(),
        "a failed run must not leave a container"
    );
}

#[test]
fn entrypoint_override() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "--entrypoint", "echo", "busybox", "hello", "world"]);
    out.success();
    assert_eq!(out.out(), "hello world");
    env.berth(&["run", "--name", "ep", "--entrypoint", "/bin/echo", "busybox", "x"])
        .success();
    assert_eq!(
        env.inspect("ep", "{{json .Config.Entrypoint}}"),
        r#"["/bin/echo"]"#
    );
}

#[test]
fn bind_mount_read_write() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    let spec = format!("{}:/data", host.path().display());
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo from ctr > /data/out.txt",
    ]);
    out.success();
    assert_eq!(out.out(), "from host");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "from ctr\n"
    );
}

#[test]
fn bind_mount_read_only() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    let spec = format!("{}:/data:ro", host.path().display());
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; touch /data/new",
    ]);
    assert_eq!(out.code, 1, "the write should fail:\n{out}");
    assert_eq!(out.out(), "from host");
    out.stderr_has("read-only file system");
    assert!(!host.path().join("new").exists());
    let out = env.berth(&["run", "--rm", "-v", &spec, "busybox", "rm", "/data/in.txt"]);
    out.failure();
    assert!(host.path().join("in.txt").exists());
}

#[test]
fn bind_mount_creates_missing_host_dir() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let missing = host.path().join("made/by/berth");
    let spec = format!("{}:/data", missing.display());
    env.berth(&["run", "--rm", "-v", &spec, "busybox", "touch", "/data/f"])
        .success();
    assert!(missing.join("f").is_file());
}

#[test]
fn tmpfs_mount() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--name",
        "t",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts; echo hi > /scratch/f && cat /scratch/f",
    ]);
    out.success();
    let l = out.lines();
    assert!(l[0].starts_with("tmpfs /scratch tmpfs rw"), "{out}");
    assert_eq!(l[1], "hi");
    // Nothing written to the tmpfs lands in the container's own layer.
    let upper = env
        .root()
        .join("containers")
        .join(env.inspect("t", "{{.Id}}"))
        .join("upper");
    assert!(!upper.join("scratch/f").exists());
}

#[test]
fn read_only_rootfs() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_eq!(out.code, 1, "{out}");
    out.stderr_has("read-only file system");
    // Volumes and tmpfs stay writable, as do the engine's /dev files.
    let out = env.berth(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok && echo ok > /dev/null && echo fine",
    ]);
    out.success();
    assert_eq!(out.out(), "fine");
    assert_eq!(
        env.berth(&["run", "--name", "ro", "--read-only", "busybox", "true"])
            .code,
        0
    );
    assert_eq!(env.inspect("ro", "{{.HostConfig.ReadonlyRootfs}}"), "true");
}

fn read_trim(p: &std::path::Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn memory_limit_in_cgroup() {
    let env = Env::new();
    let id = env.run_d(&["-m", "64m", "busybox", "sleep", "60"]);
    let f = env.cgroup_file(&id, "memory", "memory.limit_in_bytes");
    let f2 = env.cgroup_file(&id, "memory", "memory.max");
    let v = if f.exists() { read_trim(&f) } else { read_trim(&f2) };
    assert_eq!(v, "67108864");
    assert_eq!(env.inspect(&id, "{{.HostConfig.Memory}}"), "67108864");
}

#[test]
fn cpus_set_the_cfs_quota() {
    let env = Env::new();
    let id = env.run_d(&["--cpus", "0.5", "busybox", "sleep", "60"]);
    let q = env.cgroup_file(&id, "cpu", "cpu.cfs_quota_us");
    if q.exists() {
        assert_eq!(read_trim(&q), "50000");
        assert_eq!(
            read_trim(&env.cgroup_file(&id, "cpu", "cpu.cfs_period_us")),
            "100000"
        );
    } else {
        assert_eq!(read_trim(&env.cgroup_file(&id, "cpu", "cpu.max")), "50000 100000");
    }
    assert_eq!(env.inspect(&id, "{{.HostConfig.NanoCpus}}"), "500000000");
}

#[test]
fn cpu_shares() {
    let env = Env::new();
    let id = env.run_d(&["--cpu-shares", "512", "busybox", "sleep", "60"]);
    let f = env.cgroup_file(&id, "cpu", "cpu.shares");
    if f.exists() {
        assert_eq!(read_trim(&f), "512");
    } else {
        assert!(env.cgroup_file(&id, "cpu", "cpu.weight").exists());
    }
    assert_eq!(env.inspect(&id, "{{.HostConfig.CpuShares}}"), "512");
}

#[test]
fn cpuset_cpus() {
    let env = Env::new();
    let id = env.run_d(&["--cpuset-cpus", "0", "busybox", "sleep", "60"]);
    let f = env.cgroup_file(&id, "cpuset", "cpuset.cpus");
    assert_eq!(read_trim(&f), "0");
    let out = env.berth(&["exec", &id, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    out.success();
    assert!(out.out().ends_with("\t0"), "{out}");
}

#[test]
fn pids_limit_bounds_a_fork_bomb() {
    let env = Env::new();
    let id = env.run_d(&["--pids-limit", "10", "busybox", "sleep", "60"]);
    assert_eq!(read_trim(&env.cgroup_file(&id, "pids", "pids.max")), "10");
    // 20 background sleeps; count what runs with shell builtins only (a fork may be refused by now).
    let out = env.berth(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "(for i in $(seq 20); do sleep 3 & done) 2>/dev/null; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n",
    ]);
    out.success();
    let n: u32 = out.out().parse().unwrap_or_else(|_| panic!("{out}"));
    assert!(
        (2..=10).contains(&n),
        "at most 10 processes may exist, saw {n}:\n{out}"
    );
}

#[test]
fn memory_below_6mb_is_125() {
    let env = Env::new();
    env.berth(&["run", "--rm", "-m", "4m", "busybox", "true"])
        .code(125)
        .berth_error("6MB");
    env.berth(&["run", "--rm", "-m", "lots", "busybox", "true"])
        .code(125)
        .berth_error("lots");
    assert!(env.all_ids().is_empty());
}

#[test]
fn oom_kill_is_137_and_recorded() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--name",
        "oom",
        "-m",
        "10m",
        "--memory-swap",
        "10m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    out.code(137);
    assert!(!out.stdout.contains("survived"), "{out}");
    assert_eq!(
        env.inspect("oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    // An ordinary run of the same container is not an OOM.
    let id = env.run_d(&["-m", "10m", "busybox", "sh", "-c", "exit 0"]);
    env.wait_status(&id, "exited");
    assert_eq!(env.inspect(&id, "{{.State.OOMKilled}}"), "false");
}

#[test]
fn privileged_can_mount() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mkdir /tmp/m && mount -t tmpfs none /tmp/m && echo mounted",
    ]);
    out.success();
    assert_eq!(out.out(), "mounted");
}

#[test]
fn cap_add_all() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--cap-add",
        "ALL",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    out.success();
    // Every capability berth itself holds.
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = mine.lines().find(|l| l.starts_with("CapBnd")).unwrap();
    assert_eq!(
        out.out().split_whitespace().last(),
        mine.split_whitespace().last()
    );
}

#[test]
fn default_cannot_mount() {
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
}

#[test]
fn cap_drop_chown() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox", "chown", "app", "/tmp"])
        .success();
    let out = env.berth(&[
        "run",
        "--rm",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "chown",
        "app",
        "/tmp",
    ]);
    out.failure();
    out.stderr_has("operation not permitted");
    let out = env.berth(&[
        "run",
        "--rm",
        "--cap-drop",
        "chown",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    out.success();
    assert!(
        out.out().ends_with("00000000a80425fa"),
        "only CAP_CHOWN (bit 0) dropped:\n{out}"
    );
}

#[test]
fn cap_add_sys_admin_allows_mount() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "sh",
        "-c",
        "mkdir /tmp/m && mount -t tmpfs none /tmp/m && grep -c ' /tmp/m ' /proc/mounts",
    ]);
    out.success();
    assert_eq!(out.out(), "1");
}

#[test]
fn unknown_capability_is_125() {
    let env = Env::new();
    env.berth(&["run", "--rm", "--cap-add", "FROBNICATE", "busybox", "true"])
        .code(125)
        .berth_error("FROBNICATE");
}

#[test]
fn stop_signal() {
    let env = Env::new();
    let id = env.run_d(&[
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ]);
    assert!(env.inspect(&id, "{{.Config.StopSignal}}").contains("USR1"));
    let out = env.berth(&["stop", "-t", "5", &id]);
    out.success();
    assert!(
        out.took < Duration::from_secs(4),
        "USR1 should end it at once:\n{out}"
    );
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "42");
}

#[test]
fn labels_in_inspect() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "l",
        "--label",
        "team=web",
        "-l",
        "tier=two words",
        "busybox",
        "true",
    ])
    .success();
    let labels: serde_json::Value =
        serde_json::from_str(&env.inspect("l", "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels, serde_json::json!({"team": "web", "tier": "two words"}));
    assert_eq!(env.ok(&["ps", "-aq", "--filter", "label=team=web"]).len(), 12);
    assert_eq!(env.ok(&["ps", "-aq", "--filter", "label=team=db"]), "");
}

#[test]
fn name_twice_is_125() {
    let env = Env::new();
    let first = env.run_d(&["--name", "web", "busybox", "sleep", "60"]);
    env.berth(&["run", "-d", "--name", "web", "busybox", "sleep", "60"])
        .code(125)
        .berth_error("already in use");
    env.berth(&["create", "--name", "web", "busybox", "true"])
        .code(125)
        .berth_error("already in use");
    assert_eq!(env.all_ids(), vec![first]);
}

#[test]
fn concurrent_runs_with_one_name_make_one_container() {
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut c = env.command(&["run", "-d", "--name", "race", "busybox", "sleep", "60"]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one run should win: {outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert_eq!(o.status.code(), Some(125), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("already in use"),
            "{o:?}"
        );
    }
    let ids = env.all_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(env.status("race"), "running");
}

#[test]
fn exit_code_is_the_containers_own() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox", "true"]).code(0);
    let out = env.berth(&["run", "--rm", "busybox", "sh", "-c", "echo partial; exit 3"]);
    out.code(3);
    assert_eq!(out.out(), "partial");
    assert_eq!(out.err(), "", "a container's own failure is not a berth error");
}

#[test]
fn not_executable_is_126() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox", "/etc/passwd"])
        .code(126)
        .berth_error("/etc/passwd");
    env.berth(&["run", "--rm", "busybox", "/etc"])
        .code(126)
        .berth_error("/etc");
}

#[test]
fn not_found_is_127() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox", "no-such-command"])
        .code(127)
        .berth_error("no-such-command");
    env.berth(&["run", "--rm", "busybox", "/bin/nope"])
        .code(127)
        .berth_error("/bin/nope");
}

#[test]
fn interactive_stdin_is_piped_through() {
    let env = Env::new();
    let out = env.berth_stdin(
        &[
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ],
        b"hello\nworld\n",
    );
    out.success();
    assert_eq!(out.lines(), vec!["HELLO", "WORLD", "done"], "{out}");
    // Without -i the container's stdin is empty.
    let out = env.berth_stdin(
        &["run", "--rm", "busybox", "sh", "-c", "cat; echo end"],
        b"hello\n",
    );
    out.success();
    assert_eq!(out.out(), "end");
}

#[test]
fn detach_prints_the_full_id() {
    let env = Env::new();
    let out = env.berth(&["run", "-d", "busybox", "sleep", "60"]);
    out.success();
    assert!(is_hex(out.out(), 64), "{out}");
    assert_eq!(out.lines().len(), 1);
    assert_eq!(env.status(out.out()), "running");
    assert!(
        out.took < Duration::from_secs(5),
        "-d must not wait for the container:\n{out}"
    );
}

#[test]
fn everything_after_the_image_is_the_command() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "busybox", "echo", "--rm", "-d", "-e", "X=1"]);
    out.success();
    assert_eq!(out.out(), "--rm -d -e X=1");
}

#[test]
fn tty_run() {
    if !std::path::Path::new("/usr/bin/script").exists() && !std::path::Path::new("/bin/script").exists() {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    }
    let env = Env::new();
    let line = env.shell_line(&[
        "run",
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "tty; echo $TERM; exit 4",
    ]);
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    let out = env.run_command(c, Some(b""));
    out.code(4);
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("xterm"), "{out}");
}

#[test]
fn sysctl_in_the_containers_own_network_namespace() {
    let env = Env::new();
    // Ask for the opposite of the host's value, so the test proves something whatever the host has.
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host.trim() == "1" { "0" } else { "1" };
    let out = env.berth(&[
        "run",
        "--rm",
        "--sysctl",
        &format!("net.ipv4.ip_forward={want}"),
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    out.success();
    assert_eq!(out.out(), want);
    // (Not compared with the host afterwards: network tests running in parallel may turn forwarding on.)
}

#[test]
fn ulimit_flag() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    out.success();
    assert_eq!(out.lines(), vec!["100", "200"]);
}

#[test]
fn shm_size_flag() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--shm-size",
        "1m",
        "busybox",
        "df",
        "-k",
        "/dev/shm",
    ]);
    out.success();
    let row: Vec<&str> = out.lines()[1].split_whitespace().collect();
    assert_eq!(row[1], "1024", "{out}");
    let out = env.berth(&["run", "--rm", "busybox", "df", "-k", "/dev/shm"]);
    let row: Vec<&str> = out.lines()[1].split_whitespace().collect();
    assert_eq!(row[1], "65536", "default is 64m:\n{out}");
}

#[test]
fn tmpfs_size_is_enforced() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--tmpfs",
        "/run:size=1m",
        "busybox",
        "sh",
        "-c",
        "head -c 2000000 /dev/zero > /run/big; echo $?; wc -c < /run/big",
    ]);
    out.success();
    let l = out.lines();
    assert_ne!(l[0], "0", "writing 2 MB to a 1 MB tmpfs must fail:\n{out}");
    let size: u64 = l[1].parse().unwrap();
    assert!(size <= 1 << 20, "{out}");
}

#[test]
fn dns_and_add_host() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "db.internal:192.0.2.10",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts",
    ]);
    out.success();
    let (resolv, hosts) = out.stdout.split_once("---\n").unwrap();
    let ns: Vec<&str> = resolv.lines().filter(|l| l.starts_with("nameserver")).collect();
    assert_eq!(ns, vec!["nameserver 192.0.2.53"], "{out}");
    assert!(hosts.contains("192.0.2.10\tdb.internal"), "{out}");
    // Without --network host, a loopback resolver of the host is useless inside: never copied.
    let out = env.berth(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!out.stdout.contains("nameserver 127."), "{out}");
}

#[test]
fn network_host_shares_the_hosts_network() {
    let env = Env::new();
    // Other tests add and remove veths all the time: compare one interface that stays put, the host's
    // uplink (its ifindex differs from any eth0 in a container's own namespace), by name and index.
    let dev = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo" && !n.starts_with("veth") && !n.starts_with("br-") && !n.starts_with("berth"))
        .min()
        .unwrap_or_else(|| "lo".into());
    // ifindex alone is not proof (each namespace counts from 1); with the MAC address it is.
    let read = |f: &str| std::fs::read_to_string(format!("/sys/class/net/{dev}/{f}")).unwrap();
    let (index, mac) = (read("ifindex"), read("address"));
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        &format!("hostname; cat /sys/class/net/{dev}/ifindex /sys/class/net/{dev}/address"),
    ]);
    out.success();
    assert_eq!(
        out.lines(),
        vec![
            host_name.trim().to_string(),
            index.trim().to_string(),
            mac.trim().to_string()
        ],
        "{out}"
    );
}

#[test]
fn network_container_joins_anothers_namespace() {
    let env = Env::new();
    let id = env.run_d(&["--name", "netowner", "busybox", "sleep", "60"]);
    let theirs = env.ok(&["exec", &id, "readlink", "/proc/self/ns/net"]);
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "container:netowner",
        "busybox",
        "readlink",
        "/proc/self/ns/net",
    ]);
    out.success();
    assert_eq!(out.out(), theirs);
    let other = env.ok(&["run", "--rm", "busybox", "readlink", "/proc/self/ns/net"]);
    assert_ne!(
        other, theirs,
        "a default container has a network namespace of its own"
    );
    env.berth(&["stop", "-t", "0", "netowner"]).success();
    env.berth(&[
        "run",
        "--rm",
        "--network",
        "container:netowner",
        "busybox",
        "true",
    ])
    .code(125)
    .berth_error("running");
}

#[test]
fn stop_timeout_flag() {
    let env = Env::new();
    env.run_d(&["--name", "st", "--stop-timeout", "1", "busybox", "sleep", "60"]);
    assert_eq!(env.inspect("st", "{{.Config.StopTimeout}}"), "1");
    let out = env.berth(&["stop", "st"]);
    out.success();
    assert!(
        out.took < Duration::from_secs(4),
        "the container's stop timeout applies:\n{out}"
    );
    assert_eq!(env.inspect("st", "{{.State.ExitCode}}"), "137");
}

#[test]
fn signals_to_an_attached_run_reach_the_container() {
    let env = Env::new();
    let mut cmd = env.command(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 9' TERM; while true; do sleep 0.1; done",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(common::wait_until(Duration::from_secs(10), || {
        env.berth(&["inspect", "-f", "{{.State.Status}}", "fg"]).out() == "running"
    }));
    // SIGTERM to berth itself (a process this test started), as a terminal's ^C or a supervisor would.
    // SAFETY: kill(2) on the pid of our own child.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "got-term");
}

#[test]
fn killing_the_client_leaves_the_container_running() {
    let env = Env::new();
    let mut cmd = env.command(&["run", "--name", "fg", "busybox", "sleep", "60"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    assert!(common::wait_until(Duration::from_secs(10), || {
        env.berth(&["inspect", "-f", "{{.State.Status}}", "fg"]).out() == "running"
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.status("fg"), "running");
    env.berth(&["kill", "fg"]).success();
    assert_eq!(env.ok(&["wait", "fg"]), "137");
}

#[test]
fn detached_rm_removes_after_exit() {
    let env = Env::new();
    let id = env.run_d(&["--rm", "busybox", "sh", "-c", "sleep 0.2"]);
    assert!(
        common::wait_until(Duration::from_secs(5), || env.all_ids().is_empty()),
        "{id} should be removed once it exits"
    );
}

#[test]
fn single_file_bind_mount() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("app.conf");
    std::fs::write(&f, "setting=1\n").unwrap();
    let spec = format!("{}:/etc/app.conf:ro", f.display());
    let out = env.berth(&["run", "--rm", "-v", &spec, "busybox", "cat", "/etc/app.conf"]);
    out.success();
    assert_eq!(out.out(), "setting=1");
}

#[test]
fn read_only_rootfs_keeps_volumes_writable() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        "rw:/data",
        "busybox",
        "sh",
        "-c",
        "touch /data/f && echo ok",
    ]);
    out.success();
    assert_eq!(out.out(), "ok");
}

#[test]
fn empty_env_value() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "-e",
        "EMPTY=",
        "busybox",
        "sh",
        "-c",
        "env | grep ^EMPTY",
    ]);
    out.success();
    assert_eq!(out.out(), "EMPTY=");
}

#[test]
fn memory_swap_defaults_to_twice_the_memory() {
    let env = Env::new();
    let id = env.run_d(&["-m", "32m", "busybox", "sleep", "60"]);
    let memsw = env.cgroup_file(&id, "memory", "memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(read_trim(&memsw), (64u64 << 20).to_string());
    } else if env.cgroup_file(&id, "memory", "memory.swap.max").exists() {
        assert_eq!(
            read_trim(&env.cgroup_file(&id, "memory", "memory.swap.max")),
            (32u64 << 20).to_string()
        );
    }
    assert_eq!(
        env.inspect(&id, "{{.HostConfig.MemorySwap}}"),
        (64u64 << 20).to_string()
    );
}

#[test]
fn memory_swap_reservation_and_cfs_flags() {
    let env = Env::new();
    let id = env.run_d(&[
        "-m",
        "32m",
        "--memory-swap",
        "64m",
        "--memory-reservation",
        "16m",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--cpuset-mems",
        "0",
        "busybox",
        "sleep",
        "60",
    ]);
    let v1 = env.cgroup_file(&id, "memory", "memory.limit_in_bytes").exists();
    if v1 {
        let memsw = env.cgroup_file(&id, "memory", "memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read_trim(&memsw), (64u64 << 20).to_string());
        }
        assert_eq!(
            read_trim(&env.cgroup_file(&id, "memory", "memory.soft_limit_in_bytes")),
            (16u64 << 20).to_string()
        );
        assert_eq!(
            read_trim(&env.cgroup_file(&id, "cpu", "cpu.cfs_period_us")),
            "50000"
        );
        assert_eq!(
            read_trim(&env.cgroup_file(&id, "cpu", "cpu.cfs_quota_us")),
            "25000"
        );
        assert_eq!(read_trim(&env.cgroup_file(&id, "cpuset", "cpuset.mems")), "0");
    }
    let hc = env.inspect_json(&id)["HostConfig"].clone();
    assert_eq!(hc["MemorySwap"], 64 << 20);
    assert_eq!(hc["MemoryReservation"], 16 << 20);
    assert_eq!(hc["CpuPeriod"], 50000);
    assert_eq!(hc["CpuQuota"], 25000);
}

#[test]
fn mount_flag_long_form() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/x,tmpfs-size=1048576",
        "busybox",
        "grep",
        " /x ",
        "/proc/mounts",
    ]);
    out.success();
    assert!(
        out.out().starts_with("tmpfs /x tmpfs") && out.out().contains("size=1024k"),
        "{out}"
    );
    let out = env.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=mv,target=/v,readonly",
        "busybox",
        "touch",
        "/v/a",
    ]);
    out.failure().stderr_has("read-only file system");
    let host = tempfile::tempdir().unwrap();
    let spec = format!("type=bind,source={},target=/h", host.path().display());
    env.berth(&["run", "--rm", "--mount", &spec, "busybox", "touch", "/h/ok"])
        .success();
    assert!(host.path().join("ok").exists());
}

#[test]
fn interactive_tty_run() {
    if !std::path::Path::new("/usr/bin/script").exists() && !std::path::Path::new("/bin/script").exists() {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    }
    let env = Env::new();
    let line = env.shell_line(&["run", "--rm", "-ti", "busybox", "sh"]);
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    let out = env.run_command(c, Some(b"echo hi-from-$((6*7))\nexit 5\n"));
    out.code(5);
    assert!(out.stdout.contains("hi-from-42"), "{out}");
}

#[test]
fn concurrent_runs_in_one_root() {
    let env = Env::new();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let name = format!("par{i}");
            let mut c = env.command(&["run", "-d", "--name", &name, "busybox", "sleep", "60"]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{o:?}");
        assert!(is_hex(String::from_utf8_lossy(&o.stdout).trim(), 64), "{o:?}");
    }
    assert_eq!(env.berth(&["ps", "-q"]).lines().len(), 8);
    // And all removed at once, from two clients racing each other.
    let ids = env.all_ids();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let mut c = env.command(&args);
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    for mut r in racers {
        r.wait().unwrap();
    }
    assert!(env.all_ids().is_empty());
}
