//! `berth logs` and `berth exec`.

mod common;

use std::time::Duration;

use common::{is_rfc3339, rfc3339_secs, Env};

fn has_script() -> bool {
    ["/usr/bin/script", "/bin/script"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

#[test]
fn logs_keep_stdout_and_stderr_after_exit() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--name",
        "l",
        "busybox",
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2",
    ]);
    out.success();
    // An attached run shows each stream on its own side too.
    assert_eq!(out.lines(), vec!["out1", "out2"]);
    assert_eq!(out.err(), "err1");
    let logs = env.berth(&["logs", "l"]);
    logs.success();
    assert_eq!(
        logs.lines(),
        vec!["out1", "out2"],
        "stdout lines on stdout:\n{logs}"
    );
    assert_eq!(logs.err(), "err1", "stderr lines on stderr:\n{logs}");
}

#[test]
fn logs_of_a_detached_container() {
    let env = Env::new();
    let id = env.run_d(&["busybox", "sh", "-c", "echo bg-line; printf 'no newline'"]);
    env.berth(&["wait", &id]).success();
    assert_eq!(env.ok(&["logs", &id]), "bg-line\nno newline");
}

#[test]
fn logs_tail() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "t",
        "busybox",
        "sh",
        "-c",
        "echo a; echo b; echo c",
    ])
    .success();
    assert_eq!(env.ok(&["logs", "--tail", "1", "t"]), "c");
    assert_eq!(env.ok(&["logs", "-n", "2", "t"]), "b\nc");
    assert_eq!(env.ok(&["logs", "--tail", "10", "t"]), "a\nb\nc");
    assert_eq!(env.ok(&["logs", "--tail", "all", "t"]), "a\nb\nc");
    assert_eq!(env.ok(&["logs", "--tail", "0", "t"]), "");
}

#[test]
fn logs_timestamps() {
    let env = Env::new();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    env.berth(&[
        "run",
        "--name",
        "ts",
        "busybox",
        "sh",
        "-c",
        "echo first; echo 'second line'",
    ])
    .success();
    let out = env.berth(&["logs", "-t", "ts"]);
    out.success();
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, text) in lines.iter().zip(["first", "second line"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(is_rfc3339(ts), "not an RFC 3339 timestamp: {ts:?}");
        assert_eq!(rest, text);
        let t = rfc3339_secs(ts);
        assert!(t >= before - 1.0 && t <= before + 60.0, "{ts} is not around now");
    }
}

#[test]
fn logs_follow_returns_when_the_container_exits() {
    let env = Env::new();
    let id = env.run_d(&[
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done; echo done >&2",
    ]);
    let out = env.berth(&["logs", "-f", &id]);
    out.success();
    assert_eq!(
        out.lines(),
        vec!["line1", "line2", "line3", "line4", "line5"],
        "{out}"
    );
    assert_eq!(out.err(), "done");
    assert!(out.took < Duration::from_secs(5), "{out}");
    assert_eq!(env.status(&id), "exited");
}

#[test]
fn logs_follow_of_an_exited_container_returns_at_once() {
    let env = Env::new();
    env.berth(&["run", "--name", "f", "busybox", "echo", "x"])
        .success();
    let out = env.berth(&["logs", "-f", "f"]);
    out.success();
    assert_eq!(out.out(), "x");
    assert!(out.took < Duration::from_secs(2), "{out}");
}

#[test]
fn logs_with_a_tty_run() {
    if !has_script() {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    }
    let env = Env::new();
    let line = env.shell_line(&["run", "--name", "tt", "-t", "busybox", "echo", "via-tty"]);
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    env.run_command(c, Some(b"")).success();
    // No carriage returns in the log.
    assert_eq!(env.berth(&["logs", "tt"]).stdout, "via-tty\n");
}

fn sleeper(env: &Env, extra: &[&str]) -> String {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["busybox", "sleep", "60"]);
    env.run_d(&args)
}

#[test]
fn exec_sees_the_containers_env_cwd_and_hostname() {
    let env = Env::new();
    let id = sleeper(&env, &["-e", "FOO=bar", "-w", "/srv", "--hostname", "box"]);
    let out = env.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; hostname; echo $HOSTNAME",
    ]);
    out.success();
    assert_eq!(out.lines(), vec!["bar", "/srv", "box", "box"], "{out}");
}

#[test]
fn exec_shares_the_pid_namespace() {
    let env = Env::new();
    let id = sleeper(&env, &[]);
    let out = env.berth(&["exec", &id, "cat", "/proc/1/cmdline"]);
    out.success();
    assert_eq!(
        out.stdout, "sleep\u{0}60\u{0}",
        "pid 1 is the container's command"
    );
    let out = env.berth(&["exec", &id, "ps", "-o", "pid,comm"]);
    out.success();
    let comms: Vec<&str> = out
        .lines()
        .iter()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(comms, vec!["sleep", "ps"], "{out}");
}

#[test]
fn exec_joins_the_containers_cgroup() {
    let env = Env::new();
    let id = sleeper(&env, &[]);
    let out = env.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup",
    ]);
    out.success();
    let (mine, init) = out.stdout.split_once("---\n").unwrap();
    assert_eq!(mine.trim(), init.trim(), "exec'd process and pid 1 share cgroups");
    assert!(mine.contains(&id), "{out}");
    // And from the host's side: a detached exec'd process is listed in the container's cgroup.
    env.berth(&["exec", "-d", &id, "sleep", "7.25"]).success();
    let procs = env.cgroup_file(&id, "pids", "cgroup.procs");
    let found = common::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&procs)
            .unwrap_or_default()
            .lines()
            .any(|p| std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default() == b"sleep\x007.25\0")
    });
    assert!(found, "exec'd process not in {}", procs.display());
}

#[test]
fn exec_with_env_workdir_and_user() {
    let mut env = Env::new();
    env.set_env("BERTH_T_EXEC_HOST", "from host");
    let id = sleeper(&env, &["-e", "KEEP=1"]);
    let out = env.berth(&[
        "exec",
        "-e",
        "X=1",
        "-e",
        "BERTH_T_EXEC_HOST",
        "-w",
        "/etc",
        "-u",
        "app",
        &id,
        "sh",
        "-c",
        "echo $X $KEEP; echo $BERTH_T_EXEC_HOST; pwd; id -u; id -g",
    ]);
    out.success();
    assert_eq!(
        out.lines(),
        vec!["1 1", "from host", "/etc", "1000", "1000"],
        "{out}"
    );
    assert_eq!(env.ok(&["exec", "-u", "1234:5", &id, "id", "-u"]), "1234");
    env.berth(&["exec", "-u", "nosuchuser", &id, "true"])
        .code(125)
        .berth_error("nosuchuser");
}

#[test]
fn exec_exit_codes() {
    let env = Env::new();
    let id = sleeper(&env, &[]);
    env.berth(&["exec", &id, "true"]).code(0);
    env.berth(&["exec", &id, "sh", "-c", "exit 5"]).code(5);
    env.berth(&["exec", &id, "no-such-command"])
        .code(127)
        .berth_error("no-such-command");
    env.berth(&["exec", &id, "/etc/passwd"])
        .code(126)
        .berth_error("/etc/passwd");
    // The container is unaffected.
    assert_eq!(env.status(&id), "running");
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let env = Env::new();
    env.berth(&["run", "--name", "gone", "busybox", "true"]).success();
    env.berth(&["exec", "gone", "true"])
        .code(125)
        .berth_error("not running");
    env.berth(&["create", "--name", "new", "busybox", "true"])
        .success();
    env.berth(&["exec", "new", "true"])
        .code(125)
        .berth_error("not running");
}

#[test]
fn exec_with_piped_stdin() {
    let env = Env::new();
    let id = sleeper(&env, &[]);
    let out = env.berth_stdin(&["exec", "-i", &id, "tr", "a-z", "A-Z"], b"shout\n");
    out.success();
    assert_eq!(out.out(), "SHOUT");
    // Without -i, stdin is empty.
    let out = env.berth_stdin(&["exec", &id, "cat"], b"ignored\n");
    out.success();
    assert_eq!(out.out(), "");
}

#[test]
fn exec_detached() {
    let env = Env::new();
    let id = sleeper(&env, &[]);
    let out = env.berth(&[
        "exec",
        "-d",
        &id,
        "sh",
        "-c",
        "sleep 0.2; echo later > /tmp/marker",
    ]);
    out.success();
    assert!(out.took < Duration::from_secs(2));
    let ok = common::wait_until(Duration::from_secs(5), || {
        env.berth(&["exec", &id, "cat", "/tmp/marker"]).out() == "later"
    });
    assert!(ok, "the detached exec should have written its marker");
}

#[test]
fn exec_tty() {
    if !has_script() {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    }
    let env = Env::new();
    let id = sleeper(&env, &[]);
    let line = env.shell_line(&["exec", "-ti", &id, "sh", "-c", "tty; echo $TERM; exit 3"]);
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    let out = env.run_command(c, Some(b""));
    out.code(3);
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
}

#[test]
fn exec_workdir_must_exist() {
    let env = Env::new();
    let id = sleeper(&env, &[]);
    let out = env.berth(&["exec", "-w", "/nonexistent", &id, "pwd"]);
    out.code(126);
    out.berth_error("/nonexistent");
    env.berth(&["exec", &id, "test", "-e", "/nonexistent"]).code(1);
}

#[test]
fn logs_keep_long_lines_and_lots_of_output() {
    let env = Env::new();
    let out = env.berth(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 40000 /dev/zero | tr '\\0' x; echo; seq 1 20000",
    ]);
    out.success();
    assert_eq!(out.stdout.len(), 40001 + 108894, "attached output is complete");
    let logs = env.berth(&["logs", "big"]);
    logs.success();
    assert_eq!(
        logs.stdout, out.stdout,
        "the log keeps every byte, long lines joined"
    );
    let first = logs.stdout.lines().next().unwrap();
    assert_eq!(first.len(), 40000);
    assert_eq!(env.ok(&["logs", "--tail", "1", "big"]), "20000");
}

#[test]
fn logs_since() {
    let env = Env::new();
    let id = env.run_d(&["busybox", "sh", "-c", "echo early; sleep 1.5; echo late"]);
    env.berth(&["wait", &id]).success();
    assert_eq!(env.ok(&["logs", "--since", "1s", &id]), "late");
    assert_eq!(env.ok(&["logs", "--since", "1m", &id]), "early\nlate");
}
