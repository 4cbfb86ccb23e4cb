//! Named and anonymous volumes.

mod common;

use std::path::PathBuf;

use common::Env;

fn volume_names(env: &Env) -> Vec<String> {
    env.berth(&["volume", "ls", "-q"])
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn create_ls_inspect_rm() {
    let env = Env::new();
    assert!(volume_names(&env).is_empty());
    assert_eq!(env.ok(&["volume", "create", "data"]), "data");
    // Creating it again is fine and keeps it.
    assert_eq!(env.ok(&["volume", "create", "data"]), "data");
    assert_eq!(
        env.ok(&["volume", "create", "--label", "team=web", "other"]),
        "other"
    );
    assert_eq!(volume_names(&env), vec!["data", "other"]);
    let table = env.berth(&["volume", "ls"]);
    table.success();
    assert!(
        table.lines()[0].contains("DRIVER") && table.lines()[0].contains("VOLUME NAME"),
        "{table}"
    );
    assert!(table
        .lines()
        .iter()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "data"]));
    assert_eq!(env.ok(&["volume", "ls", "-q", "-f", "label=team=web"]), "other");

    let out = env.ok(&["volume", "inspect", "data"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let v = &v[0];
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    let mp = PathBuf::from(v["Mountpoint"].as_str().unwrap());
    assert!(
        mp.starts_with(env.root()),
        "the data lives under the root: {}",
        mp.display()
    );
    assert!(mp.is_dir());
    assert_eq!(
        env.ok(&["volume", "inspect", "-f", "{{.Labels.team}}", "other"]),
        "web"
    );

    let out = env.berth(&["volume", "rm", "data", "other"]);
    out.success();
    assert_eq!(out.lines(), vec!["data", "other"]);
    assert!(volume_names(&env).is_empty());
    assert!(!mp.exists(), "the data dir should go with the volume");
    env.berth(&["volume", "inspect", "data"])
        .failure()
        .berth_error("no such volume");
    env.berth(&["volume", "rm", "data"])
        .failure()
        .berth_error("no such volume");
    env.berth(&["volume", "rm", "-f", "data"]).success();
}

#[test]
fn invalid_volume_name_is_refused() {
    let env = Env::new();
    env.berth(&["volume", "create", "bad/name"])
        .code(125)
        .berth_error("bad/name");
    assert!(volume_names(&env).is_empty());
}

#[test]
fn named_volume_persists_across_containers() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--rm",
        "-v",
        "cache:/cache",
        "busybox",
        "sh",
        "-c",
        "echo kept > /cache/f",
    ])
    .success();
    assert_eq!(
        volume_names(&env),
        vec!["cache"],
        "-v name:/path creates the volume"
    );
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "cache:/other/place",
        "busybox",
        "cat",
        "/other/place/f",
    ]);
    out.success();
    assert_eq!(out.out(), "kept");
    let mp = env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "cache"]);
    assert_eq!(
        std::fs::read_to_string(PathBuf::from(mp).join("f")).unwrap(),
        "kept\n"
    );
}

#[test]
fn read_only_volume() {
    let env = Env::new();
    env.ok(&["volume", "create", "ro"]);
    let out = env.berth(&["run", "--rm", "-v", "ro:/ro:ro", "busybox", "touch", "/ro/x"]);
    out.failure();
    out.stderr_has("read-only file system");
}

#[test]
fn volume_in_use_is_not_removed() {
    let env = Env::new();
    env.run_d(&["--name", "user", "-v", "data:/data", "busybox", "sleep", "60"]);
    env.berth(&["volume", "rm", "data"])
        .failure()
        .berth_error("in use");
    assert_eq!(volume_names(&env), vec!["data"]);
    // Stopped containers still use it.
    env.berth(&["stop", "-t", "0", "user"]).success();
    env.berth(&["volume", "rm", "data"])
        .failure()
        .berth_error("in use");
    env.berth(&["rm", "user"]).success();
    env.berth(&["volume", "rm", "data"]).success();
    assert!(volume_names(&env).is_empty());
}

#[test]
fn anonymous_volume_goes_with_rm_v() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo x > /anon/f",
    ])
    .success();
    let vols = volume_names(&env);
    assert_eq!(vols.len(), 1, "{vols:?}");
    let mp = env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vols[0]]);
    assert_eq!(
        std::fs::read_to_string(PathBuf::from(&mp).join("f")).unwrap(),
        "x\n"
    );
    env.berth(&["rm", "-v", "anon"]).success();
    assert!(
        volume_names(&env).is_empty(),
        "rm -v removes the container's anonymous volumes"
    );
    assert!(!PathBuf::from(mp).exists());
}

#[test]
fn anonymous_volume_stays_without_rm_v() {
    let env = Env::new();
    env.ok(&["volume", "create", "named"]);
    env.berth(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/anon",
        "-v",
        "named:/named",
        "busybox",
        "true",
    ])
    .success();
    assert_eq!(volume_names(&env).len(), 2);
    env.berth(&["rm", "anon"]).success();
    assert_eq!(volume_names(&env).len(), 2, "plain rm keeps volumes");
    // Named volumes survive rm -v too.
    env.berth(&["run", "--name", "anon2", "-v", "named:/named", "busybox", "true"])
        .success();
    env.berth(&["rm", "-v", "anon2"]).success();
    assert!(volume_names(&env).contains(&"named".to_string()));
}

#[test]
fn run_rm_removes_anonymous_volumes() {
    let env = Env::new();
    env.berth(&["run", "--rm", "-v", "/anon", "busybox", "touch", "/anon/f"])
        .success();
    assert!(
        volume_names(&env).is_empty(),
        "docker run --rm removes anonymous volumes"
    );
}

#[test]
fn anonymous_volume_in_inspect_mounts() {
    let env = Env::new();
    env.berth(&["run", "--name", "anon", "-v", "/anon", "busybox", "true"])
        .success();
    let vols = volume_names(&env);
    assert_eq!(vols.len(), 1);
    let mp = env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vols[0]]);
    let v = env.inspect_json("anon");
    let m = &v["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], vols[0].as_str());
    assert_eq!(m["Source"], mp.as_str());
    assert_eq!(m["Destination"], "/anon");
}

#[test]
fn volume_prune_removes_unused_anonymous_volumes() {
    let env = Env::new();
    env.ok(&["volume", "create", "keep"]);
    env.berth(&["run", "--name", "a", "-v", "/anon", "busybox", "true"])
        .success();
    env.berth(&[
        "run", "-d", "--name", "b", "-v", "/busy", "busybox", "sleep", "60",
    ])
    .success();
    assert_eq!(volume_names(&env).len(), 3);
    env.berth(&["rm", "a"]).success();
    env.berth(&["volume", "prune", "-f"]).success();
    let left = volume_names(&env);
    assert_eq!(left.len(), 2, "only a's anonymous volume is unused: {left:?}");
    assert!(left.contains(&"keep".to_string()));
}

#[test]
fn volume_contents_are_shared_between_running_containers() {
    let env = Env::new();
    let a = env.run_d(&["-v", "shared:/s", "busybox", "sleep", "60"]);
    let b = env.run_d(&["-v", "shared:/s", "busybox", "sleep", "60"]);
    env.berth(&["exec", &a, "sh", "-c", "echo from-a > /s/msg"])
        .success();
    assert_eq!(env.ok(&["exec", &b, "cat", "/s/msg"]), "from-a");
}

#[test]
fn new_volume_gets_the_images_content() {
    let env = Env::new();
    // Named: the image's /var/www is copied into the fresh volume, as docker does.
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "www:/var/www",
        "busybox",
        "cat",
        "/var/www/index.html",
    ]);
    out.success();
    assert_eq!(out.out(), "hello from berth");
    // Anonymous too.
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "/var/www",
        "busybox",
        "cat",
        "/var/www/index.html",
    ]);
    out.success();
    assert_eq!(out.out(), "hello from berth");
    // A volume that already has content keeps it.
    env.berth(&[
        "run",
        "--rm",
        "-v",
        "www:/var/www",
        "busybox",
        "sh",
        "-c",
        "echo mine > /var/www/index.html",
    ])
    .success();
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "www:/var/www",
        "busybox",
        "cat",
        "/var/www/index.html",
    ]);
    assert_eq!(out.out(), "mine");
}

#[test]
fn volume_ls_dangling_filter() {
    let env = Env::new();
    env.ok(&["volume", "create", "free"]);
    env.run_d(&["-v", "used:/u", "busybox", "sleep", "60"]);
    assert_eq!(env.ok(&["volume", "ls", "-q", "-f", "dangling=true"]), "free");
    assert_eq!(env.ok(&["volume", "ls", "-q", "-f", "dangling=false"]), "used");
}

#[test]
fn tmpfs_volume() {
    let env = Env::new();
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "scratch",
    ]);
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "scratch:/s",
        "busybox",
        "grep",
        " /s ",
        "/proc/mounts",
    ]);
    out.success();
    assert!(out.out().starts_with("tmpfs /s tmpfs"), "{out}");
    assert!(out.out().contains("size=1024k"), "{out}");
}

#[test]
fn bind_volume_with_driver_options_and_bad_options() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from-host"), "yes").unwrap();
    let device = format!("device={}", host.path().display());
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "hostdir",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "hostdir:/h",
        "busybox",
        "sh",
        "-c",
        "cat /h/from-host; touch /h/from-ctr",
    ]);
    assert_eq!(out, "yes");
    assert!(
        host.path().join("from-ctr").exists(),
        "the container wrote through to the device"
    );
    for bad in [
        vec!["-o", "colour=blue"],
        vec!["-o", "o=size=1m"],
        vec!["-o", "type=none", "-o", "device=/tmp"],
        vec!["-o", "type=ext4"],
    ] {
        let mut args = vec!["volume", "create"];
        args.extend(bad.iter().copied());
        args.push("broken");
        env.berth(&args).code(125);
    }
    assert!(!env.ok(&["volume", "ls", "-q"]).contains("broken"));
}
