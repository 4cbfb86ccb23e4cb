//! How berth fails: exit codes, one clear error line, and nothing left behind.

mod common;

use common::Env;

/// Nothing was created: no container row, no container dir.
#[track_caller]
fn nothing_created(env: &Env) {
    assert!(env.all_ids().is_empty(), "a failed command left a container");
    let dirs: Vec<_> = std::fs::read_dir(env.root().join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(dirs.is_empty(), "container dirs left: {dirs:?}");
}

#[test]
fn bad_flag_is_125() {
    let env = Env::new();
    let out = env.berth(&["run", "--bogus", "busybox", "true"]);
    out.code(125).stderr_has("--bogus");
    assert_eq!(out.out(), "");
    env.berth(&["ps", "--bogus"]).code(125).stderr_has("--bogus");
    env.berth(&["rm", "-z", "x"]).code(125);
    env.berth(&["run", "--cpus", "lots", "busybox", "true"])
        .code(125)
        .stderr_has("lots");
    nothing_created(&env);
}

#[test]
fn missing_arguments_fail() {
    let env = Env::new();
    // A usage error, like a bad flag (docker's own code for these varies between 1 and 125).
    for args in [vec!["run"], vec!["run", "--rm"], vec!["exec", "x"], vec!["stop"]] {
        let out = env.berth(&args);
        out.failure();
        assert_eq!(out.out(), "", "{out}");
        assert!(!out.err().is_empty(), "say what is missing:\n{out}");
    }
    nothing_created(&env);
}

#[test]
fn help_and_version_succeed() {
    let env = Env::new();
    let out = env.berth(&["--help"]);
    out.success().stdout_has("run");
    env.berth(&["run", "--help"]).success().stdout_has("--memory");
    env.berth(&["--version"]).success().stdout_has("berth");
    env.berth(&["version"]).success().stdout_has("berth");
}

#[test]
fn unknown_image_is_125() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "nosuchimage", "true"]);
    out.code(125).berth_error("not found");
    out.stderr_has("nosuchimage");
    env.berth(&["create", "nosuchimage:v2", "true"])
        .code(125)
        .berth_error("not found");
    env.berth(&["run", "--rm", "busybox:nosuchtag", "true"])
        .code(125)
        .berth_error("not found");
    nothing_created(&env);
}

#[test]
fn unknown_command_fails() {
    let env = Env::new();
    let out = env.berth(&["frob"]);
    out.failure().stderr_has("frob");
    assert_eq!(out.out(), "");
}

#[test]
fn malformed_volume_is_125() {
    let env = Env::new();
    for spec in [
        "a:b:c:d",
        "/host:relative",
        "/host:/ctr:bogus",
        "bad name!:/x",
        "/host:/",
    ] {
        env.berth(&["run", "--rm", "-v", spec, "busybox", "true"])
            .code(125)
            .berth_error("volume");
    }
    env.berth(&["run", "--rm", "--tmpfs", "relative", "busybox", "true"])
        .code(125)
        .berth_error("tmpfs");
    env.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/nonexistent-berth-src,target=/x",
        "busybox",
        "true",
    ])
    .code(125)
    .berth_error("/nonexistent-berth-src");
    nothing_created(&env);
}

#[test]
fn impossible_limits_are_125() {
    let env = Env::new();
    env.berth(&["run", "--rm", "--cpus", "99", "busybox", "true"])
        .code(125)
        .berth_error("cpus");
    env.berth(&["run", "--rm", "--cpus", "0.001", "busybox", "true"])
        .code(125)
        .berth_error("cpus");
    env.berth(&["run", "--rm", "--cpuset-cpus", "99", "busybox", "true"])
        .code(125)
        .berth_error("99");
    env.berth(&["run", "--rm", "--cpuset-cpus", "x-y", "busybox", "true"])
        .code(125)
        .berth_error("x-y");
    env.berth(&["run", "--rm", "-m", "1m", "busybox", "true"])
        .code(125)
        .berth_error("6MB");
    env.berth(&["run", "--rm", "--memory-swap", "1g", "busybox", "true"])
        .code(125)
        .berth_error("memory");
    env.berth(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-swap",
        "32m",
        "busybox",
        "true",
    ])
    .code(125)
    .berth_error("swap");
    env.berth(&["run", "--rm", "--ulimit", "nofile=10:5", "busybox", "true"])
        .code(125)
        .berth_error("ulimit");
    env.berth(&["run", "--rm", "--ulimit", "bogus=1", "busybox", "true"])
        .code(125)
        .berth_error("bogus");
    nothing_created(&env);
}

#[test]
fn invalid_names_and_networks_are_125() {
    let env = Env::new();
    env.berth(&["run", "--rm", "--name", "bad name", "busybox", "true"])
        .code(125)
        .berth_error("name");
    env.berth(&["run", "--rm", "--name=-dash", "busybox", "true"])
        .code(125)
        .berth_error("-dash");
    env.berth(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"])
        .code(125)
        .berth_error("nosuchnet");
    env.berth(&["run", "--rm", "-w", "relative/dir", "busybox", "true"])
        .code(125)
        .berth_error("relative/dir");
    env.berth(&["run", "--rm", "--env-file", "/nonexistent/env", "busybox", "true"])
        .code(125)
        .berth_error("/nonexistent/env");
    env.berth(&["run", "--rm", "-e", "=oops", "busybox", "true"])
        .code(125)
        .berth_error("oops");
    nothing_created(&env);
}

#[test]
fn unknown_container() {
    let env = Env::new();
    for cmd in [
        vec!["stop", "nosuch"],
        vec!["rm", "nosuch"],
        vec!["rm", "-f", "nosuch"],
        vec!["logs", "nosuch"],
        vec!["kill", "nosuch"],
        vec!["start", "nosuch"],
        vec!["restart", "nosuch"],
        vec!["wait", "nosuch"],
        vec!["exec", "nosuch", "true"],
        vec!["export", "-o", "/dev/null", "nosuch"],
        vec!["commit", "nosuch"],
    ] {
        let out = env.berth(&cmd);
        out.failure().berth_error("no such container");
        out.stderr_has("nosuch");
    }
    let out = env.berth(&["inspect", "nosuch"]);
    out.failure().stderr_has("nosuch");
}

#[test]
fn one_bad_name_does_not_stop_the_others() {
    let env = Env::new();
    env.berth(&["run", "--name", "a", "busybox", "true"]).success();
    env.berth(&["run", "--name", "b", "busybox", "true"]).success();
    let out = env.berth(&["rm", "a", "nosuch", "b"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.lines(), vec!["a", "b"]);
    out.berth_error("nosuch");
    nothing_created(&env);
}

#[test]
fn root_is_created_on_demand_and_kept_separate() {
    let a = Env::new();
    let b = Env::new();
    a.run_d(&["--name", "same", "busybox", "sleep", "60"]);
    // Another root does not see it, and may use the same name.
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    b.run_d(&["--name", "same", "busybox", "sleep", "60"]);
    assert_ne!(a.inspect("same", "{{.Id}}"), b.inspect("same", "{{.Id}}"));
}
