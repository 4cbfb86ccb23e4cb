//! Images: import, images, tag, rmi, commit, export, and imports that try to write outside the store.

mod common;

use std::path::{Path, PathBuf};

use common::{image_tar, is_hex, unique, Env};

/// Image ids as `images -q` prints them.
fn image_ids(env: &Env) -> Vec<String> {
    env.berth(&["images", "-q"])
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Entries of a tar file, without a leading "./" and trailing "/".
fn tar_entries(tar: &Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(tar)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar -tf {}: {}",
        tar.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty() && l != ".")
        .collect()
}

/// Builds a tar with python3's tarfile: `body` gets `t` (the open TarFile), `add(name, data)`,
/// `link(name, target, hard=False)`, `d(name)` for directories, and `args` (the extra arguments).
fn python_tar(out: &Path, body: &str, args: &[&str]) {
    let script = format!(
        r#"import io, sys, tarfile
args = sys.argv[2:]
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data=b"x\n"):
        i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644; t.addfile(i, io.BytesIO(data))
    def d(name):
        i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
    def link(name, target, hard=False):
        i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        i.linkname = target; t.addfile(i)
{}
"#,
        body.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    let res = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(out)
        .args(args)
        .output()
        .expect("python3 is needed to build test tarballs");
    assert!(
        res.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// Every path under `dir` whose file name is `name`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy() == name {
                found.push(p.clone());
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    found
}

#[test]
fn import_a_file_and_list_it() {
    let env = Env::empty();
    assert!(image_ids(&env).is_empty());
    let id = env.ok(&["import", &image_tar().to_string_lossy(), "busybox"]);
    let hex = id
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("import prints sha256:ID, got {id:?}"));
    assert!(is_hex(hex, 64), "{id}");
    assert_eq!(image_ids(&env), vec![hex[..12].to_string()]);
    let out = env.berth(&["images"]);
    out.success();
    let lines = out.lines();
    assert!(
        lines[0].starts_with("REPOSITORY") && lines[0].contains("IMAGE ID"),
        "{out}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], &["busybox", "latest", &hex[..12]], "{out}");
    assert_eq!(env.ok(&["images", "-q", "busybox"]), &hex[..12]);
    assert_eq!(env.ok(&["images", "-q", "nosuchrepo"]), "");
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]), id);
    assert_eq!(env.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]), id);
    env.berth(&["run", "--rm", "busybox", "cat", "/var/www/index.html"])
        .success()
        .stdout_has("hello from berth");
}

#[test]
fn import_from_stdin_with_a_change() {
    let env = Env::new();
    let tar = std::fs::read(image_tar()).unwrap();
    let out = env.berth_stdin(
        &[
            "import",
            "-c",
            r#"CMD ["sh", "-c", "echo from the image cmd"]"#,
            "-c",
            "ENV GREETING=hi",
            "-",
            "mybox:2",
        ],
        &tar,
    );
    out.success();
    assert!(out.out().starts_with("sha256:"), "{out}");
    assert_eq!(
        env.inspect("mybox:2", "{{json .Config.Cmd}}"),
        r#"["sh","-c","echo from the image cmd"]"#
    );
    let out = env.berth(&["run", "--rm", "mybox:2"]);
    out.success();
    assert_eq!(out.out(), "from the image cmd");
    assert_eq!(
        env.ok(&["run", "--rm", "mybox:2", "sh", "-c", "echo $GREETING"]),
        "hi"
    );
}

#[test]
fn image_without_a_command_needs_one() {
    let env = Env::new();
    env.berth(&["run", "--rm", "busybox"])
        .code(125)
        .berth_error("command");
    assert!(env.all_ids().is_empty());
}

#[test]
fn tag_and_untag() {
    let env = Env::new();
    let id = env.ok(&["images", "-q", "busybox"]);
    let out = env.berth(&["tag", "busybox", "mybox:1.0"]);
    out.success();
    assert_eq!(env.ok(&["images", "-q", "mybox:1.0"]), id);
    let rows = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut rows: Vec<&str> = rows.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![format!("busybox:latest {id}"), format!("mybox:1.0 {id}")]
    );
    env.berth(&["run", "--rm", "mybox:1.0", "true"]).success();
    // Removing one of two names only untags.
    let out = env.berth(&["rmi", "mybox:1.0"]);
    out.success();
    assert_eq!(out.lines(), vec!["Untagged: mybox:1.0"], "{out}");
    assert_eq!(image_ids(&env), vec![id]);
    env.berth(&["run", "--rm", "busybox", "true"]).success();
    env.berth(&["tag", "nosuchimage", "x:1"])
        .code(125)
        .berth_error("nosuchimage");
}

#[test]
fn rmi_deletes_the_last_name_and_keeps_shared_layers() {
    let env = Env::new();
    let other = env.ok(&[
        "import",
        "-c",
        "CMD [\"true\"]",
        &image_tar().to_string_lossy(),
        "other",
    ]);
    assert_eq!(image_ids(&env).len(), 2);
    let out = env.berth(&["rmi", "other"]);
    out.success();
    assert!(out.stdout.contains("Untagged: other:latest"), "{out}");
    assert!(out.stdout.contains(&format!("Deleted: {other}")), "{out}");
    assert_eq!(image_ids(&env).len(), 1);
    // busybox shares the layer and still runs.
    env.berth(&["run", "--rm", "busybox", "cat", "/var/www/index.html"])
        .success();
    env.berth(&["rmi", "other"]).failure().berth_error("other");
}

#[test]
fn rmi_of_an_image_in_use_is_refused() {
    let env = Env::new();
    env.run_d(&["--name", "user", "busybox", "sleep", "60"]);
    let out = env.berth(&["rmi", "busybox"]);
    out.failure().berth_error("being used");
    out.stderr_has("user");
    assert_eq!(image_ids(&env).len(), 1);
    // A stopped container still holds its image (docker too).
    env.berth(&["rm", "-f", "user"]).success();
    env.berth(&["run", "--name", "stopped", "busybox", "true"])
        .success();
    env.berth(&["rmi", "busybox"]).failure().berth_error("stopped");
    assert_eq!(image_ids(&env).len(), 1);
    env.berth(&["rm", "stopped"]).success();
    env.berth(&["rmi", "busybox"]).success();
    assert!(image_ids(&env).is_empty());
}

#[test]
fn commit_keeps_changes_and_deletions() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; rm /var/www/index.html; rm -r /home/app; echo changed > /etc/motd",
    ])
    .success();
    let out = env.berth(&["commit", "-c", "CMD [\"cat\", \"/newfile\"]", "c1", "snap:1"]);
    out.success();
    let id = out.out().to_string();
    assert!(id.starts_with("sha256:"), "{out}");
    assert_eq!(env.ok(&["images", "-q", "--no-trunc", "snap:1"]), id);
    assert_eq!(env.ok(&["run", "--rm", "snap:1"]), "new");
    let out = env.berth(&[
        "run",
        "--rm",
        "snap:1",
        "sh",
        "-c",
        "ls -A /var/www; test -e /home/app && echo app-still-there; cat /etc/motd; ls /bin/busybox",
    ]);
    out.success();
    assert_eq!(
        out.lines(),
        vec!["changed", "/bin/busybox"],
        "deleted files must stay deleted:\n{out}"
    );
    // The original image is unchanged.
    assert_eq!(
        env.ok(&["run", "--rm", "busybox", "cat", "/var/www/index.html"]),
        "hello from berth"
    );
    // Two layers now: busybox's and the commit's.
    let layers: serde_json::Value =
        serde_json::from_str(&env.inspect("snap:1", "{{json .RootFS.Layers}}")).unwrap();
    assert_eq!(layers.as_array().map(Vec::len), Some(2), "{layers}");
}

#[test]
fn commit_of_a_running_container() {
    let env = Env::new();
    let id = env.run_d(&["busybox", "sh", "-c", "echo live > /live; sleep 60"]);
    assert!(common::wait_until(std::time::Duration::from_secs(5), || {
        env.berth(&["exec", &id, "cat", "/live"]).out() == "live"
    }));
    env.berth(&["commit", &id, "live:1"]).success();
    assert_eq!(env.status(&id), "running", "commit must not stop the container");
    assert_eq!(env.ok(&["run", "--rm", "live:1", "cat", "/live"]), "live");
}

#[test]
fn export_has_new_files_and_not_deleted_ones() {
    let env = Env::new();
    env.berth(&[
        "run",
        "--name",
        "e",
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; rm /var/www/index.html",
    ])
    .success();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("e.tar");
    env.berth(&["export", "-o", &tar.to_string_lossy(), "e"])
        .success();
    let entries = tar_entries(&tar);
    assert!(entries.iter().any(|e| e == "newfile"), "{entries:?}");
    assert!(entries.iter().any(|e| e == "bin/busybox"), "{entries:?}");
    assert!(entries.iter().any(|e| e == "var/www"), "{entries:?}");
    assert!(
        !entries.iter().any(|e| e == "var/www/index.html"),
        "deleted file exported: {entries:?}"
    );
    assert!(
        !entries.iter().any(|e| e.contains(".wh.")),
        "whiteouts must not leak: {entries:?}"
    );
    // The export is a rootfs tar berth can import again.
    env.ok(&["import", &tar.to_string_lossy(), "roundtrip"]);
    assert_eq!(env.ok(&["run", "--rm", "roundtrip", "cat", "/newfile"]), "new");
    // To stdout as well.
    let tar2 = dir.path().join("e2.tar");
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(format!(
        "{} > '{}'",
        env.shell_line(&["export", "e"]),
        tar2.display()
    ));
    env.run_command(sh, None).success();
    assert_eq!(tar_entries(&tar2), entries);
    assert!(mounts_clean(&env));
}

fn mounts_clean(env: &Env) -> bool {
    common::mounts_under(env.root()).is_empty()
}

#[test]
fn import_of_a_non_tar_fails_cleanly() {
    let env = Env::new();
    let before = image_ids(&env);
    let junk = env.root().join("junk.tar");
    let mut data = Vec::new();
    for i in 0..4096u32 {
        data.push((i * 7 % 251) as u8);
    }
    std::fs::write(&junk, &data).unwrap();
    env.berth(&["import", &junk.to_string_lossy(), "junk"])
        .code(125)
        .berth_error("tar");
    let short = env.root().join("short.tar");
    std::fs::write(&short, "this is not a tarball\n").unwrap();
    env.berth(&["import", &short.to_string_lossy(), "short"])
        .code(125)
        .berth_error("tar");
    env.berth(&["import", "/nonexistent/file.tar", "x"])
        .code(125)
        .berth_error("/nonexistent/file.tar");
    assert_eq!(image_ids(&env), before);
    assert_eq!(env.ok(&["images", "-q", "junk"]), "");
    let leftovers: Vec<_> = std::fs::read_dir(env.root().join("image/layers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temporary layer dirs left: {leftovers:?}");
}

#[test]
fn import_refuses_dotdot_entries() {
    let env = Env::new();
    let before = image_ids(&env);
    let name = unique("berth-evil");
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("evil.tar");
    python_tar(
        &tar,
        "add('ok.txt')\nadd('../' + args[0])\nadd('../../../../../../../../../../../tmp/' + args[0])",
        &[&name],
    );
    env.berth(&["import", &tar.to_string_lossy(), "evil"])
        .failure()
        .berth_error("");
    assert_eq!(image_ids(&env), before, "nothing may be added");
    assert!(!Path::new("/tmp").join(&name).exists(), "wrote /tmp/{name}");
    assert!(
        find_named(env.root(), &name).is_empty(),
        "wrote {name} into the store"
    );
    assert!(find_named(dir.path(), &name).is_empty());
}

#[test]
fn import_refuses_writing_through_an_escaping_symlink() {
    let env = Env::new();
    let before = image_ids(&env);
    let outside = tempfile::tempdir().unwrap();
    let tar = outside.path().join("symlink.tar");
    let target = outside.path().join("target");
    std::fs::create_dir(&target).unwrap();
    python_tar(
        &tar,
        "link('abs', args[0])\nadd('abs/pwned')",
        &[&target.to_string_lossy()],
    );
    env.berth(&["import", &tar.to_string_lossy(), "evil1"])
        .failure()
        .berth_error("");
    let rel = "../".repeat(20) + target.to_string_lossy().trim_start_matches('/');
    let tar2 = outside.path().join("symlink2.tar");
    python_tar(&tar2, "link('rel', args[0])\nadd('rel/pwned')", &[&rel]);
    env.berth(&["import", &tar2.to_string_lossy(), "evil2"])
        .failure()
        .berth_error("");
    let written: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        written.is_empty(),
        "written outside through a symlink: {written:?}"
    );
    assert_eq!(image_ids(&env), before);
}

#[test]
fn import_refuses_hard_links_to_outside_files() {
    let env = Env::new();
    let before = image_ids(&env);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    let tar = outside.path().join("hard.tar");
    let rel = "../".repeat(20) + secret.to_string_lossy().trim_start_matches('/');
    python_tar(
        &tar,
        "link('grab', args[0], hard=True)\nlink('grab2', args[1], hard=True)",
        &[&rel, &secret.to_string_lossy()],
    );
    let out = env.berth(&["import", &tar.to_string_lossy(), "evil"]);
    out.failure().berth_error("");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&secret).unwrap().nlink(),
        1,
        "the host file got linked into the store"
    );
    assert_eq!(image_ids(&env), before);
}

#[test]
fn image_prune_removes_dangling() {
    let env = Env::new();
    env.ok(&["import", "-c", "CMD [\"true\"]", &image_tar().to_string_lossy()]);
    assert_eq!(image_ids(&env).len(), 2, "an untagged import is listed");
    assert!(env.ok(&["images"]).contains("<none>"));
    env.berth(&["image", "prune", "-f"]).success();
    assert_eq!(image_ids(&env).len(), 1);
    assert_eq!(env.ok(&["images", "--format", "{{.Repository}}"]), "busybox");
}

#[test]
fn image_config_defaults_apply() {
    let env = Env::new();
    env.ok(&[
        "import",
        "-c",
        r#"ENTRYPOINT ["echo", "ep"]"#,
        "-c",
        r#"CMD ["default"]"#,
        "-c",
        "WORKDIR /var/www",
        "-c",
        "ENV MODE=prod",
        &image_tar().to_string_lossy(),
        "epbox",
    ]);
    assert_eq!(env.ok(&["run", "--rm", "epbox"]), "ep default");
    assert_eq!(env.ok(&["run", "--rm", "epbox", "a", "b"]), "ep a b");
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "", "epbox", "echo", "direct"]),
        "direct"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "pwd", "epbox"]),
        "/var/www"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "sh", "epbox", "-c", "echo $MODE"]),
        "prod"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "-e",
            "MODE=dev",
            "--entrypoint",
            "sh",
            "epbox",
            "-c",
            "echo $MODE"
        ]),
        "dev"
    );
    env.berth(&["run", "--name", "c", "epbox"]).success();
    assert_eq!(
        env.inspect("c", "{{.Path}} {{json .Args}}"),
        r#"echo ["ep","default"]"#
    );
}

#[test]
fn image_user_is_the_default_user() {
    let env = Env::new();
    env.ok(&[
        "import",
        "-c",
        "USER app",
        &image_tar().to_string_lossy(),
        "appbox",
    ]);
    let out = env.berth(&["run", "--name", "u", "appbox", "id", "-u"]);
    out.success();
    assert_eq!(env.inspect("u", "{{.Config.User}}"), "app");
    assert_eq!(out.out(), "1000", "an image with USER app must not run as root");
    assert_eq!(env.ok(&["run", "--rm", "-u", "root", "appbox", "id", "-u"]), "0");
    // The same through commit: a container run with -u app commits an image whose user is app.
    env.berth(&["run", "--name", "c", "-u", "app", "busybox", "true"])
        .success();
    env.ok(&["commit", "c", "committed"]);
    assert_eq!(env.ok(&["run", "--rm", "committed", "id", "-u"]), "1000");
}

#[test]
fn image_stop_signal_is_used_by_stop() {
    let env = Env::new();
    env.ok(&[
        "import",
        "-c",
        "STOPSIGNAL SIGUSR1",
        &image_tar().to_string_lossy(),
        "sigbox",
    ]);
    env.run_d(&[
        "--name",
        "s",
        "sigbox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ]);
    let out = env.berth(&["stop", "-t", "5", "s"]);
    out.success();
    assert!(out.took < std::time::Duration::from_secs(3), "{out}");
    assert_eq!(env.inspect("s", "{{.State.ExitCode}}"), "42");
}

#[test]
fn import_of_a_gzipped_tarball() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("bb.tar.gz");
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(format!(
        "gzip -c '{}' > '{}'",
        image_tar().display(),
        gz.display()
    ));
    common::run_cmd(sh, None, std::time::Duration::from_secs(30)).success();
    env.ok(&["import", &gz.to_string_lossy(), "gz"]);
    assert_eq!(
        env.ok(&["run", "--rm", "gz", "cat", "/var/www/index.html"]),
        "hello from berth"
    );
}

#[test]
fn images_filters() {
    let env = Env::new();
    let untagged = env.ok(&["import", "-c", "CMD [\"true\"]", &image_tar().to_string_lossy()]);
    let short = &untagged["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        env.ok(&["images", "-q", "-f", "dangling=true"]),
        short,
        "only the untagged image"
    );
    let tagged = env.ok(&["images", "-q", "busybox"]);
    assert_eq!(env.ok(&["images", "-q", "-f", "dangling=false"]), tagged);
    assert_eq!(env.ok(&["images", "-q", "-f", "reference=busybox"]), tagged);
    env.berth(&["images", "-f", "bogus=1"])
        .failure()
        .berth_error("bogus");
}
