//! Shared harness of the registry tests (transfer, registry_auth, image_content, pull_failures): a
//! berth root of each test's own, Debian's `docker-registry` on a free 127.0.0.1 port (optionally with
//! token auth), a token server, a scriptable fake registry, OCI layouts and tars written byte by byte,
//! and a small tmpfs. Everything started here is stopped on drop, so a failing test leaves nothing.
//!
//! Only loopback is ever contacted. Missing peers are installed with apt-get; a test whose peer cannot
//! be had says so and passes without checking.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub fn bin() -> PathBuf {
    match std::env::var_os("BERTH_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_berth")),
    }
}

/// The busybox test image tarball (`$BERTH_TEST_IMAGE`, else built once by scripts/mkimage.sh).
pub fn image_tar() -> &'static Path {
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
pub struct Out {
    pub code: i32,
    pub raw: Vec<u8>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "failed: {self:?}");
        self
    }
}

pub fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>) -> Out {
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
pub struct Berth {
    pub dir: tempfile::TempDir,
    root: PathBuf,
}

impl Berth {
    pub fn new() -> Berth {
        let b = Berth::empty();
        b.ok(&["import", image_tar().to_str().unwrap(), "busybox"]);
        b
    }

    pub fn empty() -> Berth {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        Berth { dir, root }
    }

    /// A berth whose root is `root` (on a tmpfs, say); the config and scratch files stay in a temp dir.
    pub fn at(root: &Path) -> Berth {
        Berth {
            dir: tempfile::tempdir().unwrap(),
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.root.clone()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(self.root()).args(args);
        c.env("BERTH_CONFIG", self.dir.path().join("config"));
        c.env("BERTH_REGISTRY_TIMEOUT", "20");
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        run_cmd(&mut self.cmd(args), None)
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        self.run(args).ok()
    }

    /// Runs `login -u USER --password-stdin REGISTRY`.
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Out {
        let mut cmd = self.cmd(&["login", "-u", user, "--password-stdin", registry]);
        run_cmd(&mut cmd, Some(format!("{password}\n").as_bytes()))
    }

    pub fn id(&self, image: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", image])
            .stdout
            .trim()
            .to_string()
    }

    pub fn image_ids(&self) -> String {
        self.ok(&["images", "-q", "--no-trunc"]).stdout
    }

    /// Removes what a test left running in this root and the networks `run` made (the default bridge
    /// and its nft table are host-wide state that outlives the temp dir). A root that is gone already
    /// (a tmpfs unmounted first) is swept by the same prune: berth finds its bridges by their alias.
    fn clean_up(&self) {
        if self.root.exists() {
            let ids = self.run(&["ps", "-aq"]).stdout;
            let mut args = vec!["rm", "-f"];
            args.extend(ids.split_whitespace());
            if args.len() > 2 {
                let _ = self.run(&args);
            }
        }
        if self.root.parent().is_some_and(|p| p.exists()) {
            let _ = self.run(&["network", "prune"]);
        }
        remove_cgroup_parents(&self.root);
    }

    /// No half-made content: no `.tmp-*` under the image store.
    pub fn assert_no_leftovers(&self) {
        assert!(self.leftovers().is_empty(), "leftovers: {:?}", self.leftovers());
    }

    /// The `.tmp-*` entries under the image store.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for dir in ["image/layers", "image/blobs/sha256"] {
            let Ok(entries) = std::fs::read_dir(self.root().join(dir)) else {
                continue;
            };
            for entry in entries {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    found.push(format!("{dir}/{name}"));
                }
            }
        }
        found
    }

    /// Every entry under the store's layers and blobs directories.
    pub fn store_entries(&self) -> Vec<String> {
        let mut found = Vec::new();
        for dir in ["image/layers", "image/blobs/sha256"] {
            let Ok(entries) = std::fs::read_dir(self.root().join(dir)) else {
                continue;
            };
            for entry in entries {
                found.push(format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy()));
            }
        }
        found
    }
}

/// A child killed (SIGKILL) and reaped on drop, so a failing test leaves no process behind.
pub struct KillOnDrop(pub Child);

/// berth keeps an empty cgroup parent per root (`berth/<8 hex of sha256(root)>` in every hierarchy); the
/// root is going away, so its parents go too (rmdir: only if empty).
fn remove_cgroup_parents(root: &Path) {
    let h = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let tag: String = h[..4].iter().map(|b| format!("{b:02x}")).collect();
    let base = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![base.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(base) {
        hierarchies.extend(rd.flatten().map(|e| e.path()));
    }
    for h in hierarchies {
        let _ = std::fs::remove_dir(h.join("berth").join(&tag));
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.clean_up();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `done` every 20 ms for up to 15 s.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Installs a Debian package providing `binary` if it is missing; false if that fails.
pub fn have(binary: &str, package: &str) -> bool {
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

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on 127.0.0.1:<free port> with a temp storage dir; killed on drop. Its
/// access log goes to `access.log` in that dir.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Option<Registry> {
        Registry::start_with("")
    }

    /// With `extra` appended to the config (an `auth:` section, say).
    pub fn start_with(extra: &str) -> Option<Registry> {
        if !have("docker-registry", "docker-registry") || !have("skopeo", "skopeo") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
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

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's access log so far (one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Publishes an image with skopeo (gzip layers unless told otherwise).
    pub fn skopeo_push(&self, source: &str, name: &str, extra: &[&str]) {
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

    pub fn skopeo_inspect(&self, name: &str, raw: bool) -> serde_json::Value {
        self.skopeo_inspect_as(name, raw, None)
    }

    /// [`Registry::skopeo_inspect`] with `user:password` credentials.
    pub fn skopeo_inspect_as(&self, name: &str, raw: bool, creds: Option<&str>) -> serde_json::Value {
        let image = format!("docker://{}/{name}", self.host());
        let mut args = vec!["inspect", "--tls-verify=false"];
        if raw {
            args.push("--raw");
        }
        if let Some(creds) = creds {
            args.extend(["--creds", creds]);
        }
        args.push(&image);
        let out = run_cmd(Command::new("skopeo").args(&args), None);
        assert_eq!(out.code, 0, "skopeo inspect {image}: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
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
pub fn busybox_archive(b: &Berth) -> (PathBuf, String) {
    let path = b.dir.path().join("busybox.tar");
    b.ok(&["save", "-o", path.to_str().unwrap(), "busybox"]);
    (path, b.id("busybox"))
}

pub fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Base64 (standard alphabet with padding, or URL-safe without, as JWTs want).
pub fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// Pseudo-random bytes (xorshift): incompressible enough that gzip cannot shrink a big layer.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One entry of a layer tar written by [`tar`].
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
}

/// A ustar archive of `entries`, root-owned, mtime 0, written here so the bytes (and whiteout names)
/// are exactly what the test says.
pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (name, mode, kind, data): (&str, u32, u8, &[u8]) = match entry {
            Entry::Dir(name) => (name, 0o755, b'5', &[]),
            Entry::File(name, data) => (name, 0o644, b'0', data),
        };
        let mut header = [0u8; 512];
        let name = if kind == b'5' {
            format!("{}/", name.trim_end_matches('/'))
        } else {
            name.to_string()
        };
        assert!(name.len() < 100, "name too long for this writer: {name}");
        header[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8], at: usize, width: usize, value: u64| {
            let text = format!("{value:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(text.as_bytes());
        };
        octal(&mut header, 100, 8, mode as u64);
        octal(&mut header, 108, 8, 0);
        octal(&mut header, 116, 8, 0);
        octal(&mut header, 124, 12, data.len() as u64);
        octal(&mut header, 136, 12, 0);
        header[156] = kind;
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| *b as u32).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A descriptor of a blob in an [`OciLayout`].
#[derive(Clone, Debug)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Desc {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// An OCI image layout directory, written blob by blob (what skopeo copies from `oci:DIR:TAG`).
pub struct OciLayout {
    pub dir: PathBuf,
}

impl OciLayout {
    pub fn new(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        OciLayout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Desc {
        let digest = sha256(bytes);
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::write(self.dir.join("blobs/sha256").join(hex), bytes).unwrap();
        Desc {
            media_type: media_type.to_string(),
            digest,
            size: bytes.len(),
        }
    }

    /// An uncompressed layer: its digest is its diff_id.
    pub fn layer(&self, tar: &[u8]) -> Desc {
        self.blob(OCI_LAYER, tar)
    }

    /// Config and manifest of a linux/`arch` image made of `layers` (uncompressed, bottom first).
    pub fn image(&self, arch: &str, layers: &[&Desc]) -> Desc {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
        });
        let config = self.blob(OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.json(),
            "layers": layers.iter().map(|l| l.json()).collect::<Vec<_>>(),
        });
        self.blob(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
    }

    /// An image index with one entry per `(manifest, architecture)`.
    pub fn index(&self, images: &[(&Desc, &str)]) -> Desc {
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|(desc, arch)| {
                let mut v = desc.json();
                v["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
                v
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.blob(OCI_INDEX, &serde_json::to_vec(&index).unwrap())
    }

    /// Names `top` (a manifest or an index) `tag` in the layout's `index.json`.
    pub fn tag(&self, top: &Desc, tag: &str) {
        let mut entry = top.json();
        entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    /// `oci:DIR:TAG`, what skopeo copies from.
    pub fn source(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

/// The busybox rootfs as an uncompressed layer (the test image tarball is a plain tar).
pub fn busybox_layer(layout: &OciLayout) -> Desc {
    layout.layer(&std::fs::read(image_tar()).unwrap())
}

/// A bounded accept loop on a loopback listener, in a thread; each connection is served by
/// `handle` in a thread of its own. Stops (and joins) on drop.
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(handle: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = Arc::new(handle);
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            // Bounded in time too: no test runs this long.
            let deadline = Instant::now() + Duration::from_secs(300);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        let handle = Arc::clone(&handle);
                        let flag = Arc::clone(&flag);
                        workers.push(std::thread::spawn(move || handle(stream, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            flag.store(true, Ordering::Relaxed);
            for w in workers {
                let _ = w.join();
            }
        });
        Server {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP request as the test servers see it.
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HashMap<String, String>,
}

/// Reads one request head; `None` for anything that is not HTTP (a TLS hello from a scheme probe).
pub fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || buf.len() > 64 << 10 {
            return None;
        }
        // A TLS handshake starts with 0x16: close at once, so the client falls back to HTTP.
        if buf.is_empty() && byte[0] == 0x16 {
            return None;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// The issuer and service names the token server and the registry agree on.
pub const TOKEN_ISSUER: &str = "berth-test-issuer";
pub const TOKEN_SERVICE: &str = "berth-test-registry";

/// A token server on loopback (docker's token auth): checks basic credentials against one user and
/// answers with an RS256 JWT, signed by `openssl`, whose `x5c` header carries a self-signed cert that
/// the registry trusts. Anonymous requests get a token granting nothing, as private registries do;
/// wrong credentials get 401.
pub struct TokenServer {
    server: Server,
    pub cert: PathBuf,
    /// Every request's scopes, in order (`-` for none), to check what berth asked for.
    pub scopes: Arc<Mutex<Vec<String>>>,
    /// Repositories on which nobody gets any access from now on.
    denied: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(user: &str, password: &str) -> Option<TokenServer> {
        if !have("openssl", "openssl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run_cmd(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"])
                .args(["-subj", "/CN=berth-test-token"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            None,
        )
        .ok();
        let der = run_cmd(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert),
            None,
        )
        .ok()
        .raw;
        let x5c = base64(&der, false);
        let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes(), false));
        let user = user.to_string();
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&scopes);
        let denied = Arc::new(Mutex::new(Vec::<String>::new()));
        let deny = Arc::clone(&denied);
        let jti = Arc::new(AtomicU64::new(0));
        let server = Server::start(move |mut stream, _| {
            let Some(req) = read_request(&mut stream) else {
                return;
            };
            let asked: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.clone())
                .collect();
            seen.lock().unwrap().push(if asked.is_empty() {
                "-".to_string()
            } else {
                asked.join(" ")
            });
            let subject = match req.headers.get("authorization") {
                None => String::new(),
                Some(h) if *h == expected => user.clone(),
                Some(_) => {
                    let body = br#"{"details":"incorrect username or password"}"#;
                    return respond(&mut stream, "401 Unauthorized", "application/json", body);
                }
            };
            // The authenticated user gets what it asks for on any repository; anonymous nothing.
            let access: Vec<serde_json::Value> = if subject.is_empty() {
                Vec::new()
            } else {
                asked
                    .iter()
                    .filter_map(|s| {
                        let mut parts = s.splitn(3, ':');
                        let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                        if deny.lock().unwrap().iter().any(|d| d == name) {
                            return None;
                        }
                        Some(serde_json::json!({"type": kind, "name": name,
                            "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect()
            };
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
                "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": format!("berth-test-{}", jti.fetch_add(1, Ordering::Relaxed)),
                "access": access,
            });
            let input = format!(
                "{}.{}",
                base64(header.to_string().as_bytes(), true),
                base64(claims.to_string().as_bytes(), true)
            );
            let signature = run_cmd(
                Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key),
                Some(input.as_bytes()),
            )
            .ok()
            .raw;
            let token = format!("{input}.{}", base64(&signature, true));
            let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
            respond(
                &mut stream,
                "200 OK",
                "application/json",
                body.to_string().as_bytes(),
            );
        });
        Some(TokenServer {
            server,
            cert,
            scopes,
            denied,
            _dir: dir,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port)
    }

    /// The registry config section that makes docker-registry trust this server.
    pub fn registry_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    \
             rootcertbundle: {}\n",
            self.realm(),
            self.cert.display()
        )
    }

    /// From now on, tokens grant nothing on `repository`.
    pub fn deny(&self, repository: &str) {
        self.denied.lock().unwrap().push(repository.to_string());
    }

    pub fn scopes(&self) -> Vec<String> {
        self.scopes.lock().unwrap().clone()
    }
}

/// A read-only fake registry serving fixed manifests and blobs. One blob can be made to stall: its
/// first `after` bytes go out, then the rest waits until [`FakeRegistry::release`], as a registry
/// that hangs mid-transfer.
pub struct FakeRegistry {
    server: Server,
    stall: Arc<Mutex<Option<(String, usize)>>>,
    stalled: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl FakeRegistry {
    /// `repo` serves `manifest` under `tag`, and `blobs` by digest.
    pub fn start(repo: &str, tag: &str, manifest: &[u8], blobs: Vec<Vec<u8>>) -> FakeRegistry {
        let mut routes: HashMap<String, (String, Vec<u8>)> = HashMap::new();
        let manifest_route = (OCI_MANIFEST.to_string(), manifest.to_vec());
        routes.insert(format!("/v2/{repo}/manifests/{tag}"), manifest_route.clone());
        routes.insert(
            format!("/v2/{repo}/manifests/{}", sha256(manifest)),
            manifest_route,
        );
        for blob in blobs {
            let path = format!("/v2/{repo}/blobs/{}", sha256(&blob));
            routes.insert(path, ("application/octet-stream".into(), blob));
        }
        let stall: Arc<Mutex<Option<(String, usize)>>> = Arc::new(Mutex::new(None));
        let stalled = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, d, r) = (Arc::clone(&stall), Arc::clone(&stalled), Arc::clone(&release));
        let server = Server::start(move |mut stream, stop| {
            let Some(req) = read_request(&mut stream) else {
                return;
            };
            if req.path == "/v2/" {
                return respond(&mut stream, "200 OK", "application/json", b"{}");
            }
            let Some((content_type, body)) = routes.get(&req.path) else {
                let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
                return respond(&mut stream, "404 Not Found", "application/json", body);
            };
            let stall_here = s
                .lock()
                .unwrap()
                .as_ref()
                .filter(|(digest, _)| req.path.ends_with(digest.as_str()))
                .map(|(_, after)| *after);
            let Some(after) = stall_here else {
                return respond(&mut stream, "200 OK", content_type, body);
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..after.min(body.len())]);
            let _ = stream.flush();
            d.store(true, Ordering::Relaxed);
            while !r.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            // Released: the rest follows (to a client that is still there).
            let _ = stream.write_all(&body[after.min(body.len())..]);
        });
        FakeRegistry {
            server,
            stall,
            stalled,
            release,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    /// Makes the blob `digest` stall after `after` bytes.
    pub fn stall(&self, digest: &str, after: usize) {
        *self.stall.lock().unwrap() = Some((digest.to_string(), after));
    }

    /// Whether a stalled transfer has started (its first bytes are out).
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Lets held transfers finish and serves everything whole from now on.
    pub fn release(&self) {
        *self.stall.lock().unwrap() = None;
        self.release.store(true, Ordering::Relaxed);
    }
}

/// The manifest of an image made of uncompressed `layers` (as [`OciLayout::image`] writes it), plus
/// the config: what a [`FakeRegistry`] serves.
pub fn plain_image(layers: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({"mediaType": OCI_LAYER,
            "digest": sha256(l), "size": l.len()})).collect::<Vec<_>>(),
    });
    (serde_json::to_vec(&manifest).unwrap(), config)
}

/// A tmpfs of `size` (`8m`) mounted on a temp dir; unmounted on drop, lazily if still busy.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run_cmd(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
                .arg(dir.path()),
            None,
        )
        .ok();
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut c = Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            c.arg(self.dir.path())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !umount(false) {
            umount(true);
        }
    }
}
