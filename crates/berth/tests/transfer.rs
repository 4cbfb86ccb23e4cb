//! pull, push, save, load, login against real peers on loopback: Debian's `docker-registry` (started
//! here on a free 127.0.0.1 port, killed at the end), `skopeo` to publish and read images independently
//! of berth, `podman` to load what berth saves. Missing peers are installed with apt-get; a test whose
//! peer cannot be had says so and passes without checking.
//!
//! Only loopback is ever contacted.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    match std::env::var_os("BERTH_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_berth")),
    }
}

/// The busybox test image tarball (`$BERTH_TEST_IMAGE`, else built once by scripts/mkimage.sh).
fn image_tar() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_TEST_IMAGE").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkimage.sh");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("berth-transfer-busybox.tar");
        if !out.is_file() {
            let res = Command::new("bash")
                .arg(&script)
                .arg(&out)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                res.status.success(),
                "mkimage.sh: {}",
                String::from_utf8_lossy(&res.stderr)
            );
        }
        out
    })
}

#[derive(Debug)]
struct Out {
    code: i32,
    raw: Vec<u8>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "failed: {self:?}");
        self
    }
}

fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>) -> Out {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(data).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        raw: out.stdout.clone(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A berth state root of its own, with the test image imported as `busybox`.
struct Berth {
    dir: tempfile::TempDir,
}

impl Berth {
    fn new() -> Berth {
        let b = Berth::empty();
        b.ok(&["import", image_tar().to_str().unwrap(), "busybox"]);
        b
    }

    fn empty() -> Berth {
        Berth {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(self.root()).args(args);
        c.env("BERTH_CONFIG", self.dir.path().join("config"));
        c.env("BERTH_REGISTRY_TIMEOUT", "20");
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        run_cmd(&mut self.cmd(args), None)
    }

    fn ok(&self, args: &[&str]) -> Out {
        self.run(args).ok()
    }

    fn id(&self, image: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", image])
            .stdout
            .trim()
            .to_string()
    }

    fn image_ids(&self) -> String {
        self.ok(&["images", "-q", "--no-trunc"]).stdout
    }

    /// No half-made content: no `.tmp-*` under the image store.
    fn assert_no_leftovers(&self) {
        for dir in ["image/layers", "image/blobs/sha256"] {
            let dir = self.root().join(dir);
            for entry in std::fs::read_dir(&dir).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with(".tmp-"), "leftover {name} in {}", dir.display());
            }
        }
    }
}

/// Installs a Debian package providing `binary` if it is missing; false if that fails.
fn have(binary: &str, package: &str) -> bool {
    let found = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if found(binary) {
        return true;
    }
    static APT_UPDATED: OnceLock<bool> = OnceLock::new();
    APT_UPDATED.get_or_init(|| {
        Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    if found(binary) {
        return true;
    }
    eprintln!("SKIP: {binary} (Debian package {package}) is not installed and could not be installed");
    false
}

fn is_root() -> bool {
    // SAFETY-free way: the uid of /proc/self.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Debian's docker-registry on 127.0.0.1:<free port> with a temp storage dir; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Registry> {
        if !have("docker-registry", "docker-registry") || !have("skopeo", "skopeo") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(registry);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{port}");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Publishes an archive with skopeo (gzip layers unless told otherwise).
    fn skopeo_push(&self, source: &str, name: &str, extra: &[&str]) {
        let dest = format!("docker://{}/{name}", self.host());
        let out = run_cmd(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .args(extra)
                .args([source, &dest]),
            None,
        );
        assert_eq!(out.code, 0, "skopeo copy {source} {dest}: {}", out.stderr);
    }

    fn skopeo_inspect(&self, name: &str, raw: bool) -> serde_json::Value {
        let image = format!("docker://{}/{name}", self.host());
        let mut args = vec!["inspect", "--tls-verify=false"];
        if raw {
            args.push("--raw");
        }
        args.push(&image);
        let out = run_cmd(Command::new("skopeo").args(&args), None);
        assert_eq!(out.code, 0, "skopeo inspect {image}: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// The file holding a blob in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The busybox image saved by berth as a docker-archive, for skopeo to publish.
fn busybox_archive(b: &Berth) -> (PathBuf, String) {
    let path = b.dir.path().join("busybox.tar");
    b.ok(&["save", "-o", path.to_str().unwrap(), "busybox"]);
    (path, b.id("busybox"))
}

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
