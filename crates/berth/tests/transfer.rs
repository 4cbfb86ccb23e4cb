//! pull, push, save, load, login against real peers on loopback: Debian's `docker-registry` (started
//! here on a free 127.0.0.1 port, killed at the end), `skopeo` to publish and read images independently
//! of berth, `podman` to load what berth saves. Missing peers are installed with apt-get; a test whose
//! peer cannot be had says so and passes without checking.
//!
//! Only loopback is ever contacted.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "common/registry.rs"]
mod registry;
use registry::*;

#[test]
fn save_and_load_round_trip_keeps_the_id() {
    if !is_root() {
        eprintln!("SKIP: needs root (layers keep owners and whiteout devices)");
        return;
    }
    let b = Berth::new();
    let id = b.id("busybox");
    for format in ["docker-archive", "oci-archive"] {
        let path = b.dir.path().join(format!("{format}.tar"));
        b.ok(&[
            "save",
            "--format",
            format,
            "-o",
            path.to_str().unwrap(),
            "busybox",
        ]);
        let other = Berth::empty();
        let out = other.ok(&["load", "-i", path.to_str().unwrap()]);
        assert_eq!(out.stdout, "Loaded image: busybox:latest\n", "{format}");
        assert_eq!(
            other.id("busybox"),
            id,
            "{format}: the image ID survives save and load"
        );
        // From stdin, gzip-compressed as a whole, too.
        let gz = run_cmd(Command::new("gzip").args(["-c", "-1"]).arg(&path), None).ok();
        let third = Berth::empty();
        let mut cmd = third.cmd(&["load"]);
        let out = run_cmd(&mut cmd, Some(&gz.raw)).ok();
        assert!(out.stdout.contains("Loaded image: busybox:latest"), "{out:?}");
    }
    // save of an unknown image writes nothing and says why.
    let missing = b.dir.path().join("missing.tar");
    let out = b.run(&["save", "-o", missing.to_str().unwrap(), "busybox", "nope"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("image \"nope\" not found"), "{out:?}");
    assert!(!missing.exists());
}

#[test]
fn podman_loads_what_berth_saves_and_back() {
    if !is_root() || !have("podman", "podman") {
        return;
    }
    let b = Berth::new();
    let id = b.id("busybox");
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(tmp.path().join("root"))
            .arg("--runroot")
            .arg(tmp.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        run_cmd(&mut c, None)
    };
    for format in ["docker-archive", "oci-archive"] {
        let path = b.dir.path().join(format!("{format}.tar"));
        b.ok(&[
            "save",
            "--format",
            format,
            "-o",
            path.to_str().unwrap(),
            "busybox",
        ]);
        let out = podman(&["load", "-i", path.to_str().unwrap()]);
        assert_eq!(out.code, 0, "podman load {format}: {out:?}");
    }
    let out = podman(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        out.stdout.contains(id.trim_start_matches("sha256:")),
        "podman sees another ID: {out:?}"
    );
    // And what podman saves, berth loads.
    let back = tmp.path().join("back.tar");
    let out = podman(&["save", "-o", back.to_str().unwrap(), "localhost/busybox:latest"]);
    assert_eq!(out.code, 0, "podman save: {out:?}");
    let other = Berth::empty();
    other.ok(&["load", "-i", back.to_str().unwrap()]);
    assert_eq!(other.id(&id), id);
}

#[test]
fn pulls_what_skopeo_pushed() {
    if !is_root() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let b = Berth::new();
    let (archive, id) = busybox_archive(&b);
    let source = format!("docker-archive:{}", archive.display());
    reg.skopeo_push(&source, "lib/gz:1", &[]);
    reg.skopeo_push(&source, "lib/zst:1", &["--dest-compress-format", "zstd"]);
    reg.skopeo_push(&source, "lib/oci:1", &["--format", "oci"]);

    let other = Berth::empty();
    for name in ["lib/gz:1", "lib/zst:1", "lib/oci:1"] {
        let reference = format!("{}/{name}", reg.host());
        let out = other.ok(&["pull", &reference]);
        assert!(
            out.stdout
                .contains(&format!("Status: Downloaded newer image for {reference}"))
                || out.stdout.contains("Status: Image is up to date"),
            "{out:?}"
        );
        // skopeo rewrites the config when it converts to OCI: the ID is always the config's digest.
        let config = reg.skopeo_inspect(name, true)["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            other.id(&reference),
            config,
            "{name}: the image ID is the config digest"
        );
        if name != "lib/oci:1" {
            assert_eq!(config, id, "{name}: same image ID as the original");
        }
    }
    // By digest: the manifest digest skopeo reports.
    let digest = reg.skopeo_inspect("lib/gz:1", false)["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let by_digest = format!("{}/lib/gz@{digest}", reg.host());
    let fresh = Berth::empty();
    let out = fresh.ok(&["pull", &by_digest]);
    assert!(out.stdout.contains(&format!("Digest: {digest}")), "{out:?}");
    assert_eq!(fresh.id(&by_digest), id);
    let layer_dir = fresh.root().join("image/layers");
    assert_eq!(std::fs::read_dir(&layer_dir).unwrap().count(), 1);
    fresh.assert_no_leftovers();

    // Pulling again fetches nothing.
    let out = other.ok(&["pull", &format!("{}/lib/gz:1", reg.host())]);
    assert!(out.stdout.contains("Image is up to date"), "{out:?}");
}

#[test]
fn push_rmi_pull_run_round_trip() {
    if !is_root() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let b = Berth::new();
    let id = b.id("busybox");
    let target = format!("{}/me/busybox:dev", reg.host());
    let out = b.ok(&["push", "busybox", &target]);
    assert!(out.stdout.contains("dev: digest: sha256:"), "{out:?}");
    // Again: every blob is there already.
    let out = b.ok(&["push", "busybox", &target]);
    assert!(out.stdout.contains("Layer already exists"), "{out:?}");

    // skopeo reads what berth pushed, and the config is berth's byte for byte.
    let inspect = reg.skopeo_inspect("me/busybox:dev", false);
    let raw = reg.skopeo_inspect("me/busybox:dev", true);
    assert_eq!(raw["config"]["digest"].as_str().unwrap(), id);
    assert_eq!(inspect["Architecture"], "amd64");
    let dir = b.dir.path().join("skopeo-dir");
    let out = run_cmd(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{target}"))
            .arg(format!("dir:{}", dir.display())),
        None,
    );
    assert_eq!(out.code, 0, "skopeo copy from berth's push: {out:?}");

    b.ok(&["tag", "busybox", &target]);
    b.ok(&["rmi", "-f", &id]);
    assert!(b.image_ids().trim().is_empty(), "image still there");
    let out = b.ok(&["pull", &target]);
    assert!(out.stdout.contains("Pull complete"), "{out:?}");
    assert_eq!(b.id(&target), id);
    let out = b.run(&["run", "--rm", &target, "cat", "/etc/hostname"]);
    assert_eq!(out.code, 0, "run of the pulled image: {out:?}");
}

#[test]
fn bad_registry_answers_store_nothing() {
    if !is_root() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let b = Berth::new();
    let (archive, _) = busybox_archive(&b);
    let source = format!("docker-archive:{}", archive.display());
    let host = reg.host();
    let empty = Berth::empty();
    let expect_error = |reference: &str, want: &str| {
        let out = empty.run(&["pull", reference]);
        assert_eq!(out.code, 125, "{reference}: {out:?}");
        let line = out.stderr.trim();
        assert!(line.contains(want), "{reference}: want {want:?} in {line:?}");
        assert_eq!(line.lines().count(), 1, "one line: {line:?}");
        assert!(
            empty.image_ids().trim().is_empty(),
            "{reference}: something was stored"
        );
        empty.assert_no_leftovers();
    };

    expect_error(&format!("{host}/nope/nope:1"), "manifest unknown");
    let out = b.run(&["push", "nope:1", &format!("{host}/x/y:1")]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("image \"nope:1\" not found"), "{out:?}");

    // A layer whose bytes do not match its digest (same length).
    reg.skopeo_push(&source, "bad/digest:1", &[]);
    let layer = reg.skopeo_inspect("bad/digest:1", true)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = reg.blob_file(&layer);
    let mut data = std::fs::read(&file).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&file, &data).unwrap();
    expect_error(&format!("{host}/bad/digest:1"), "digest mismatch");

    // A truncated layer.
    reg.skopeo_push(&source, "bad/short:1", &["--dest-compress-level", "1"]);
    let layer = reg.skopeo_inspect("bad/short:1", true)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = reg.blob_file(&layer);
    let data = std::fs::read(&file).unwrap();
    std::fs::write(&file, &data[..data.len() / 2]).unwrap();
    let out = empty.run(&["pull", &format!("{host}/bad/short:1")]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(empty.image_ids().trim().is_empty());
    empty.assert_no_leftovers();

    // A stored manifest that is damaged: the registry itself fails (500), berth says so.
    reg.skopeo_push(&source, "bad/manifest:1", &[]);
    let digest = reg.skopeo_inspect("bad/manifest:1", false)["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(reg.blob_file(&digest), b"<html>not a manifest</html>").unwrap();
    expect_error(&format!("{host}/bad/manifest:1"), "HTTP 500");

    // A registry that answers a manifest request with something that is not JSON.
    let port = fake_registry(Some(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 27\r\nConnection: close\r\n\r\n<html>not a manifest</html>",
    ));
    expect_error(&format!("127.0.0.1:{port}/x/y:1"), "not valid JSON");
}

/// A fake registry on loopback answering every request with `answer` (or never, if `None`).
fn fake_registry(answer: Option<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
            match answer {
                Some(a) => {
                    let _ = stream.write_all(a.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    port
}

#[test]
fn server_errors_and_hangs_are_clear_errors() {
    let b = Berth::empty();
    let port = fake_registry(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ));
    let out = b.run(&["pull", &format!("127.0.0.1:{port}/x/y:1")]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("HTTP 500"), "{out:?}");

    let port = fake_registry(None);
    let mut cmd = b.cmd(&["pull", &format!("127.0.0.1:{port}/x/y:1")]);
    cmd.env("BERTH_REGISTRY_TIMEOUT", "1");
    let start = Instant::now();
    let out = run_cmd(&mut cmd, None);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("no answer in time"), "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(15));

    // Nothing listening at all.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = b.run(&["pull", &format!("127.0.0.1:{port}/x/y:1")]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.to_lowercase().contains("refused"), "{out:?}");
}

#[test]
fn login_and_logout_keep_docker_compatible_credentials() {
    let Some(reg) = Registry::start() else { return };
    let b = Berth::empty();
    let mut cmd = b.cmd(&["login", "-u", "me", "--password-stdin", &reg.host()]);
    let out = run_cmd(&mut cmd, Some(b"secret\n")).ok();
    assert!(out.stdout.contains("Login Succeeded"), "{out:?}");
    let file = b.dir.path().join("config/auth.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // base64("me:secret")
    assert_eq!(json["auths"][reg.host()]["auth"], "bWU6c2VjcmV0");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = b.ok(&["logout", &reg.host()]);
    assert!(out.stdout.contains("Removing login credentials"), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(json["auths"].as_object().unwrap().is_empty());
}

#[test]
fn progress_shows_bars_on_a_terminal_and_lines_off_it() {
    if !is_root() || !have("script", "bsdutils") {
        return;
    }
    let base = std::fs::read(image_tar()).unwrap();
    let (manifest, config) = plain_image(&[&base]);
    let fake = FakeRegistry::start("p/app", "1", &manifest, vec![config, base.clone()]);
    let reference = format!("{}/p/app:1", fake.host());
    // Under `script`, berth's stdout is a terminal; `script` copies what it shows to its own stdout.
    let on_terminal = |b: &Berth, args: &str| {
        let line = format!("{} --root {} {args}", bin().display(), b.root().display());
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &line, "/dev/null"])
            .env("BERTH_CONFIG", b.dir.path().join("config"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        KillOnDrop(cmd.spawn().unwrap())
    };

    // The layer stalls for a moment, so the bar is drawn mid-transfer with bytes and rate.
    fake.stall(&sha256(&base), 256 << 10);
    let b = Berth::empty();
    let mut child = on_terminal(&b, &format!("pull {reference}"));
    wait_for("the first bytes", || fake.stalled());
    std::thread::sleep(Duration::from_millis(400));
    fake.release();
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.0.wait().unwrap().success(), "{stdout}");
    assert!(stdout.contains("Downloading ["), "no bar: {stdout:?}");
    let total = format!(" KiB/{:.2} MiB", base.len() as f64 / (1 << 20) as f64);
    assert!(stdout.contains(&total), "no bytes: {stdout:?}");
    assert!(stdout.contains("iB/s"), "no rate: {stdout:?}");
    assert!(stdout.contains("Pull complete"), "{stdout:?}");

    // Off a terminal: one plain line per layer.
    let plain = Berth::empty();
    let out = plain.ok(&["pull", &reference]);
    assert!(!out.stdout.contains(['\x1b', '\r']), "{out:?}");
    assert_eq!(out.stdout.matches("Pull complete").count(), 1, "{out:?}");

    // Quiet, even on a terminal: the reference and nothing else.
    let quiet = Berth::empty();
    let mut child = on_terminal(&quiet, &format!("pull -q {reference}"));
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.0.wait().unwrap().success(), "{stdout}");
    assert_eq!(stdout.replace('\r', ""), format!("{reference}\n"));
}
