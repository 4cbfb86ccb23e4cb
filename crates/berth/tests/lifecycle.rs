//! Container lifecycle: ps, create/start/stop/kill/restart/wait/rm, inspect, and how containers are named.

mod common;

use std::time::{Duration, SystemTime};

use common::{is_hex, is_rfc3339, rfc3339_secs, Env};

const TRAP_TERM: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// A running container (`-d --name up`) and an exited one (`--name down`, exit 0).
fn up_and_down(env: &Env) -> (String, String) {
    let up = env.run_d(&["--name", "up", "busybox", "sleep", "60"]);
    env.berth(&["run", "--name", "down", "busybox", "true"]).success();
    let down = env.inspect("down", "{{.Id}}");
    (up, down)
}

#[test]
fn ps_shows_running_and_ps_a_all() {
    let env = Env::new();
    let (up, down) = up_and_down(&env);
    let out = env.berth(&["ps"]);
    out.success();
    let lines = out.lines();
    assert!(lines[0].starts_with("CONTAINER ID"), "{out}");
    for h in ["IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"] {
        assert!(lines[0].contains(h), "header {h} missing:\n{out}");
    }
    assert_eq!(lines.len(), 2, "only the running container:\n{out}");
    assert!(
        lines[1].starts_with(&up[..12]) && lines[1].ends_with("up"),
        "{out}"
    );
    assert!(lines[1].contains("Up "), "{out}");

    let out = env.berth(&["ps", "-a"]);
    out.success();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{out}");
    let row = lines
        .iter()
        .find(|l| l.starts_with(&down[..12]))
        .expect("exited container listed");
    assert!(row.contains("Exited (0)"), "{out}");
    assert!(row.ends_with("down"), "{out}");
}

#[test]
fn ps_quiet() {
    let env = Env::new();
    let (up, down) = up_and_down(&env);
    assert_eq!(env.ok(&["ps", "-q"]), &up[..12]);
    let mut all = env
        .berth(&["ps", "-aq"])
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    all.sort();
    let mut want = vec![up[..12].to_string(), down[..12].to_string()];
    want.sort();
    assert_eq!(all, want);
    assert_eq!(env.ok(&["ps", "-q", "--no-trunc"]), up);
}

#[test]
fn ps_format_json() {
    let env = Env::new();
    up_and_down(&env);
    let out = env.berth(&["ps", "-a", "--format", "json"]);
    out.success();
    let mut seen = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        seen.push((
            v["Names"].as_str().unwrap().to_string(),
            v["State"].as_str().unwrap().to_string(),
        ));
        assert!(is_hex(v["ID"].as_str().unwrap(), 12), "{line}");
        assert_eq!(v["Image"], "busybox");
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("down".to_string(), "exited".to_string()),
            ("up".to_string(), "running".to_string())
        ]
    );
}

#[test]
fn ps_format_template() {
    let env = Env::new();
    up_and_down(&env);
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]), "up");
    let mut names = env
        .berth(&["ps", "-a", "--format", "{{.Names}}:{{.State}}"])
        .lines()
        .join(" ");
    names = names.trim().to_string();
    assert!(
        names == "up:running down:exited" || names == "down:exited up:running",
        "{names}"
    );
}

#[test]
fn ps_filters() {
    let env = Env::new();
    let (up, down) = up_and_down(&env);
    assert_eq!(env.ok(&["ps", "-q", "-f", "status=exited"]), &down[..12]);
    assert_eq!(env.ok(&["ps", "-aq", "-f", "name=up"]), &up[..12]);
    assert_eq!(env.ok(&["ps", "-aq", "-f", "exited=0"]), &down[..12]);
}

#[test]
fn stop_kills_a_pid_1_that_ignores_term() {
    let env = Env::new();
    env.run_d(&["--name", "sleeper", "busybox", "sleep", "60"]);
    let out = env.berth(&["stop", "-t", "1", "sleeper"]);
    out.success();
    assert_eq!(out.out(), "sleeper");
    assert!(
        out.took >= Duration::from_millis(900),
        "stop should wait the timeout first:\n{out}"
    );
    assert!(out.took < Duration::from_secs(6), "{out}");
    assert_eq!(
        env.inspect("sleeper", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    assert_eq!(env.ok(&["ps", "-q"]), "");
}

#[test]
fn stop_with_a_term_handler_exits_0() {
    let env = Env::new();
    env.run_d(&["--name", "polite", "busybox", "sh", "-c", TRAP_TERM]);
    let out = env.berth(&["stop", "-t", "5", "polite"]);
    out.success();
    assert!(
        out.took < Duration::from_secs(3),
        "TERM should end it before the timeout:\n{out}"
    );
    assert_eq!(
        env.inspect("polite", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    // Stopping a stopped container is fine, as in docker.
    env.berth(&["stop", "polite"]).success();
}

#[test]
fn kill_with_a_signal() {
    let env = Env::new();
    env.run_d(&[
        "--name",
        "k",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    let out = env.berth(&["kill", "-s", "TERM", "k"]);
    out.success();
    assert_eq!(out.out(), "k");
    assert_eq!(env.ok(&["wait", "k"]), "7");
}

#[test]
fn kill_defaults_to_sigkill() {
    let env = Env::new();
    env.run_d(&["--name", "k", "busybox", "sleep", "60"]);
    env.berth(&["kill", "k"]).success();
    assert_eq!(env.ok(&["wait", "k"]), "137");
    assert_eq!(env.status("k"), "exited");
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let env = Env::new();
    env.berth(&["run", "--name", "done", "busybox", "true"]).success();
    env.berth(&["kill", "done"]).failure().berth_error("not running");
    env.berth(&["create", "--name", "fresh", "busybox", "true"])
        .success();
    env.berth(&["kill", "fresh"]).failure().berth_error("not running");
}

#[test]
fn kill_with_a_bad_signal_fails() {
    let env = Env::new();
    env.run_d(&["--name", "k", "busybox", "sleep", "60"]);
    env.berth(&["kill", "-s", "NOPE", "k"])
        .failure()
        .berth_error("NOPE");
    assert_eq!(env.status("k"), "running");
}

#[test]
fn start_runs_an_exited_container_again() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "again",
        "busybox",
        "sh",
        "-c",
        "echo ran >> /count; wc -l < /count",
    ])
    .success();
    let first_start = env.inspect("again", "{{.State.StartedAt}}");
    let out = env.berth(&["start", "again"]);
    out.success();
    assert_eq!(out.out(), "again");
    assert_eq!(env.ok(&["wait", "again"]), "0");
    // Same container, same filesystem: the file from the first run is still there.
    assert_eq!(env.ok(&["logs", "again"]), "1\n2");
    assert_ne!(env.inspect("again", "{{.State.StartedAt}}"), first_start);
}

#[test]
fn start_attached() {
    let env = Env::new();
    env.berth(&[
        "create",
        "--name",
        "att",
        "busybox",
        "sh",
        "-c",
        "echo attached; exit 6",
    ])
    .success();
    let out = env.berth(&["start", "-a", "att"]);
    out.code(6);
    assert_eq!(out.out(), "attached");
}

#[test]
fn create_then_start() {
    let env = Env::new();
    let id = env.ok(&["create", "--name", "c", "busybox", "sleep", "60"]);
    assert!(is_hex(&id, 64), "{id}");
    assert_eq!(env.status("c"), "created");
    assert_eq!(env.inspect("c", "{{.State.Pid}}"), "0");
    assert_eq!(env.ok(&["ps", "-q"]), "");
    assert!(env.ok(&["ps", "-a"]).contains("Created"));
    env.berth(&["start", "c"]).success();
    assert_eq!(env.status("c"), "running");
}

#[test]
fn restart_a_running_container() {
    let env = Env::new();
    env.run_d(&["--name", "r", "busybox", "sh", "-c", TRAP_TERM]);
    let pid1: i32 = env.inspect("r", "{{.State.Pid}}").parse().unwrap();
    let out = env.berth(&["restart", "-t", "5", "r"]);
    out.success();
    assert_eq!(out.out(), "r");
    assert_eq!(env.status("r"), "running");
    let pid2: i32 = env.inspect("r", "{{.State.Pid}}").parse().unwrap();
    assert_ne!(pid1, pid2, "restart should run a new process");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid1}")).exists() || {
            // pid reuse is possible but then it is not our sh any more
            std::fs::read_to_string(format!("/proc/{pid1}/cmdline"))
                .map(|c| !c.contains("trap"))
                .unwrap_or(true)
        }
    );
    assert_eq!(env.inspect("r", "{{.RestartCount}}"), "1");
}

#[test]
fn restart_an_exited_container() {
    let env = Env::new();
    env.berth(&["run", "--name", "r", "busybox", "sh", "-c", "exit 2"])
        .code(2);
    env.berth(&["restart", "r"]).success();
    assert_eq!(env.ok(&["wait", "r"]), "2");
}

#[test]
fn wait_prints_the_exit_code() {
    let env = Env::new();
    env.run_d(&["--name", "w", "busybox", "sh", "-c", "sleep 0.3; exit 5"]);
    let out = env.berth(&["wait", "w"]);
    out.success();
    assert_eq!(out.out(), "5");
    // On an exited container it returns at once.
    let out = env.berth(&["wait", "w"]);
    assert_eq!(out.out(), "5");
    assert!(out.took < Duration::from_secs(2));
}

#[test]
fn rm_of_a_running_container_needs_force() {
    let env = Env::new();
    let id = env.run_d(&["--name", "busy", "busybox", "sleep", "60"]);
    let out = env.berth(&["rm", "busy"]);
    out.failure().berth_error("running");
    assert_eq!(env.status("busy"), "running");
    let out = env.berth(&["rm", "-f", "busy"]);
    out.success();
    assert_eq!(out.out(), "busy");
    assert!(env.all_ids().is_empty());
    assert!(!env.root().join("containers").join(&id).exists());
    env.berth(&["inspect", "busy"]).failure();
}

#[test]
fn rm_of_stopped_containers() {
    let env = Env::new();
    env.berth(&["run", "--name", "a", "busybox", "true"]).success();
    env.berth(&["create", "--name", "b", "busybox", "true"]).success();
    let out = env.berth(&["rm", "a", "b"]);
    out.success();
    assert_eq!(out.lines(), vec!["a", "b"]);
    assert!(env.all_ids().is_empty());
}

#[test]
fn inspect_fields() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data:ro", host.path().display());
    let before = SystemTime::now();
    let id = env.run_d(&[
        "--name", "insp", "-e", "FOO=bar", "-v", &bind, "-m", "32m", "busybox", "sleep", "60",
    ]);
    let v = env.inspect_json("insp");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/insp");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], serde_json::json!(["60"]));
    let st = &v["State"];
    assert_eq!(st["Status"], "running");
    assert_eq!(st["Running"], true);
    assert_eq!(st["ExitCode"], 0);
    let pid = st["Pid"].as_i64().unwrap();
    assert!(pid > 1, "Pid: {pid}");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, "sleep\u{0}60\u{0}",
        "State.Pid is the container's init on the host"
    );
    let started = st["StartedAt"].as_str().unwrap();
    assert!(is_rfc3339(started), "{started}");
    let t0 = before
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        rfc3339_secs(started) >= t0 - 1.0,
        "StartedAt {started} is before the run"
    );
    assert!(
        st["FinishedAt"].as_str().unwrap().starts_with("0001-01-01"),
        "{st}"
    );
    let env_list: Vec<&str> = v["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env_list.contains(&"FOO=bar"), "{env_list:?}");
    assert_eq!(v["Config"]["Image"], "busybox");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sleep", "60"]));
    let mounts = v["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Type"], "bind");
    assert_eq!(mounts[0]["Source"], host.path().to_string_lossy().as_ref());
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["RW"], false);
    assert_eq!(v["HostConfig"]["Memory"], 32 << 20);
    assert!(
        v["Image"].as_str().unwrap().starts_with("sha256:"),
        "{}",
        v["Image"]
    );

    env.berth(&["kill", "insp"]).success();
    env.berth(&["wait", "insp"]).success();
    let v = env.inspect_json("insp");
    let st = &v["State"];
    assert_eq!(st["Status"], "exited");
    assert_eq!(st["Running"], false);
    assert_eq!(st["Pid"], 0);
    assert_eq!(st["ExitCode"], 137);
    let finished = st["FinishedAt"].as_str().unwrap();
    assert!(
        rfc3339_secs(finished) >= rfc3339_secs(st["StartedAt"].as_str().unwrap()),
        "{st}"
    );
}

#[test]
fn inspect_format_and_several_objects() {
    let env = Env::new();
    env.berth(&["run", "--name", "one", "busybox", "true"]).success();
    env.berth(&["run", "--name", "two", "busybox", "sh", "-c", "exit 1"])
        .code(1);
    let out = env.berth(&["inspect", "-f", "{{.Name}} {{.State.ExitCode}}", "one", "two"]);
    out.success();
    assert_eq!(out.lines(), vec!["/one 0", "/two 1"]);
    let out = env.berth(&["inspect", "one", "nope"]);
    assert_ne!(out.code, 0, "{out}");
    out.stderr_has("nope");
    let v: serde_json::Value = serde_json::from_str(out.out()).expect("the found ones still print as JSON");
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn names_and_unique_id_prefixes_are_accepted() {
    let env = Env::new();
    let id = env.run_d(&["--name", "named", "busybox", "sleep", "60"]);
    for key in ["named", "/named", &id, &id[..12], &id[..6]] {
        assert_eq!(env.inspect(key, "{{.Id}}"), id, "lookup by {key:?}");
    }
    // Commands other than inspect take them too.
    assert_eq!(env.ok(&["exec", &id[..8], "hostname"]), &id[..12]);
    env.berth(&["stop", "-t", "0", &id[..10]]).success();
    env.berth(&["rm", &id[..7]]).success();
    assert!(env.all_ids().is_empty());
}

#[test]
fn generated_names_are_unique() {
    let env = Env::new();
    for _ in 0..3 {
        env.berth(&["create", "busybox", "true"]).success();
    }
    let names = env.berth(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut n: Vec<&str> = names.lines();
    assert_eq!(n.len(), 3);
    for name in &n {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "{name}"
        );
    }
    n.sort();
    n.dedup();
    assert_eq!(n.len(), 3, "{names}");
}

#[test]
fn container_subcommands() {
    let env = Env::new();
    env.berth(&["container", "run", "--name", "sub", "busybox", "true"])
        .success();
    assert_eq!(
        env.ok(&["container", "ls", "-a", "--format", "{{.Names}}"]),
        "sub"
    );
    assert_eq!(
        env.ok(&["container", "inspect", "-f", "{{.State.Status}}", "sub"]),
        "exited"
    );
    env.berth(&["container", "rm", "sub"]).success();
    assert!(env.all_ids().is_empty());
}

#[test]
fn container_prune_removes_only_stopped() {
    let env = Env::new();
    let (up, down) = up_and_down(&env);
    let out = env.berth(&["container", "prune", "-f"]);
    out.success();
    assert!(out.stdout.contains(&down), "{out}");
    assert_eq!(env.all_ids(), vec![up]);
}

#[test]
fn wait_on_an_auto_removed_container() {
    let env = Env::new();
    let id = env.run_d(&["--rm", "busybox", "sh", "-c", "sleep 0.5; exit 3"]);
    let out = env.berth(&["wait", &id]);
    out.success();
    assert_eq!(
        out.out(),
        "3",
        "docker wait reports the exit code even though --rm removes it"
    );
}
