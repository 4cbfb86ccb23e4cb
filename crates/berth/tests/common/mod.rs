//! Shared harness of the black-box tests: every test gets its own berth root (a temp dir) with the busybox
//! test image imported as `busybox`, runs the real `berth` binary against it, and on drop removes every
//! container of that root and checks that nothing is left behind: no mount under the root, no cgroup of its
//! containers, no berth process working on it.
//!
//! Binary: `$BERTH_BIN`, else the one cargo built. Image: `$BERTH_TEST_IMAGE`, else `scripts/mkimage.sh`
//! builds it once into cargo's per-target temp dir (the script is reproducible and replaces atomically, so
//! concurrent test processes may share it).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

/// How long any single berth command may take before the test fails (and the command is killed).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(40);

/// The berth binary under test.
pub fn bin() -> PathBuf {
    match std::env::var_os("BERTH_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_berth")),
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The busybox test image tarball.
pub fn image_tar() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_TEST_IMAGE").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "BERTH_TEST_IMAGE={} is not a file", p.display());
            return p;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkimage.sh");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("berth-test-busybox.tar");
        // Reuse a tarball newer than the script and the busybox binary (nextest runs each test in its own
        // process: building per process would cost half a second each).
        let fresh = match (mtime(&out), mtime(&script), mtime(Path::new("/bin/busybox"))) {
            (Some(o), Some(s), Some(b)) => o >= s && o >= b,
            (Some(o), Some(s), None) => o >= s,
            _ => false,
        };
        if !fresh {
            let res = Command::new("bash")
                .arg(&script)
                .arg(&out)
                .stdin(Stdio::null())
                .output()
                .expect("run scripts/mkimage.sh");
            assert!(
                res.status.success(),
                "scripts/mkimage.sh failed: {}",
                String::from_utf8_lossy(&res.stderr)
            );
        }
        out
    })
}

/// What a finished command left: exit code and output.
#[derive(Debug, Clone)]
pub struct Out {
    /// The command line, for messages.
    pub cmd: String,
    /// Exit code (128+signal when killed by one).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it took.
    pub took: Duration,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.cmd, self.code, self.took, self.stdout, self.stderr
        )
    }
}

impl Out {
    /// Trimmed stdout.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// Trimmed stderr.
    pub fn err(&self) -> &str {
        self.stderr.trim()
    }

    /// Non-empty stdout lines, trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    /// Asserts this exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit code {code}:\n{self}");
        self
    }

    /// Asserts a non-zero exit code.
    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert_ne!(self.code, 0, "expected failure:\n{self}");
        self
    }

    /// Asserts a berth error as the user should see it: exactly one non-empty stderr line, starting with
    /// "berth: error:" and mentioning `needle` (case-insensitive).
    #[track_caller]
    pub fn berth_error(&self, needle: &str) -> &Self {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected exactly one stderr line:\n{self}");
        assert!(
            lines[0].starts_with("berth: error: "),
            "stderr should start with \"berth: error: \":\n{self}"
        );
        assert!(
            lines[0].to_lowercase().contains(&needle.to_lowercase()),
            "stderr should mention {needle:?}:\n{self}"
        );
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout should contain {needle:?}:\n{self}"
        );
        self
    }

    /// Asserts stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr should contain {needle:?}:\n{self}"
        );
        self
    }
}

fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

/// Runs `cmd` to completion with `stdin` (None: /dev/null), failing the test after `timeout`.
pub fn run_cmd(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Out {
    let desc = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| {
                let a = a.to_string_lossy();
                if a.is_empty() || a.contains([' ', '"', '$', ';', '&', '|', '>', '<', '*']) {
                    format!("'{a}'")
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child: Child = cmd.spawn().unwrap_or_else(|e| panic!("spawn `{desc}`: {e}"));
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let out_rx = reader(child.stdout.take().unwrap());
    let err_rx = reader(child.stderr.take().unwrap());
    let deadline = start + timeout;
    let status = loop {
        match child.try_wait().expect("wait for command") {
            Some(s) => break s,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{desc}` did not finish within {timeout:?}");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let left = || deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2);
    let stdout = out_rx
        .recv_timeout(left())
        .unwrap_or_else(|_| panic!("`{desc}` exited but its stdout stayed open (a process kept it)"));
    let stderr = err_rx
        .recv_timeout(left())
        .unwrap_or_else(|_| panic!("`{desc}` exited but its stderr stayed open (a process kept it)"));
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Out {
        cmd: desc,
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// Polls `f` every 50 ms until it returns true; false after `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `s` is exactly `len` lowercase hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A name no other test (or earlier run) uses, for files outside the test's own temp dirs.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// "8 hex of sha256(canonical root)", as berth names a root's cgroup parent.
pub fn root_tag(root: &Path) -> String {
    let h = Sha256::digest(root.as_os_str().as_encoded_bytes());
    h[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The directories a cgroup path relative to the hierarchy roots has on this host (v1: one per controller;
/// v2: one), existing or not.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.join(rel)];
    }
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.flatten() {
            let p = e.path();
            // Skip the symlinks (cpu -> cpu,cpuacct) and the named/unified hierarchies without berth dirs.
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(p.join(rel));
            }
        }
    }
    out
}

/// Lines of /proc/self/mountinfo that mention `path`.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| mp.starts_with(p.as_str())))
        .map(String::from)
        .collect()
}

/// Pids of processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if c.contains(needle) {
                    out.push((pid, c));
                }
            }
        }
    }
    out
}

/// One test's berth root with the busybox image imported.
pub struct Env {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    ids: Mutex<BTreeSet<String>>,
    /// Extra environment for every berth command.
    envs: Vec<(String, String)>,
}

impl Env {
    /// A fresh root with `busybox` imported.
    pub fn new() -> Env {
        let env = Env::empty();
        env.ok(&["import", &image_tar().to_string_lossy(), "busybox"]);
        env
    }

    /// A fresh root with no image.
    pub fn empty() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("create temp root");
        let root = dir.path().canonicalize().expect("canonical temp root");
        Env {
            dir: Some(dir),
            root,
            ids: Mutex::new(BTreeSet::new()),
            envs: Vec::new(),
        }
    }

    /// The root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `berth --root ROOT ARGS...`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(&self.root).args(args);
        c.env_remove("BERTH_ROOT");
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c
    }

    /// The same command line as a shell string (for `script -c`).
    pub fn shell_line(&self, args: &[&str]) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut parts = vec![
            q(&bin().to_string_lossy()),
            "--root".into(),
            q(&self.root.to_string_lossy()),
        ];
        parts.extend(args.iter().map(|a| q(a)));
        parts.join(" ")
    }

    fn note_ids(&self, out: &Out) {
        let mut ids = self.ids.lock().unwrap();
        for tok in out.stdout.split_whitespace() {
            if is_hex(tok, 64) {
                ids.insert(tok.to_string());
            }
        }
    }

    /// Runs berth with `args`, stdin /dev/null.
    pub fn berth(&self, args: &[&str]) -> Out {
        self.run_command(self.command(args), None)
    }

    /// Runs berth with `args` and `input` on stdin.
    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        self.run_command(self.command(args), Some(input))
    }

    /// Runs a prepared command (from [`Env::command`]).
    pub fn run_command(&self, cmd: Command, stdin: Option<&[u8]>) -> Out {
        let out = run_cmd(cmd, stdin, CMD_TIMEOUT);
        self.note_ids(&out);
        out
    }

    /// Runs berth, asserts success, returns trimmed stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        out.success();
        out.out().to_string()
    }

    /// `run -d ARGS...`: asserts success and returns the full id.
    #[track_caller]
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let id = self.ok(&a);
        assert!(is_hex(&id, 64), "run -d should print a 64-hex id, got {id:?}");
        id
    }

    /// `inspect -f FORMAT CONTAINER`, trimmed.
    #[track_caller]
    pub fn inspect(&self, container: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, container])
    }

    /// `inspect CONTAINER` as JSON (the first element).
    #[track_caller]
    pub fn inspect_json(&self, container: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", container]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect is not JSON ({e}):\n{out}"));
        v.get(0)
            .cloned()
            .unwrap_or_else(|| panic!("inspect printed no object:\n{out}"))
    }

    /// The container's State.Status.
    #[track_caller]
    pub fn status(&self, container: &str) -> String {
        self.inspect(container, "{{.State.Status}}")
    }

    /// Waits (up to 10 s) for the container's status to become `want`.
    #[track_caller]
    pub fn wait_status(&self, container: &str, want: &str) {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(10), || {
            last = self.status(container);
            last == want
        });
        assert!(ok, "container {container} should become {want:?}, is {last:?}");
    }

    /// Full ids of every container of this root.
    pub fn all_ids(&self) -> Vec<String> {
        let out = self.berth(&["ps", "-aq", "--no-trunc"]);
        out.lines().iter().map(|s| s.to_string()).collect()
    }

    /// The host cgroup dir of a container for one v1 controller (or the v2 dir when `controller` is "").
    pub fn cgroup_file(&self, id: &str, controller: &str, file: &str) -> PathBuf {
        let rel = format!("berth/{}/{id}", root_tag(&self.root));
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            base.join(rel).join(file)
        } else {
            base.join(controller).join(rel).join(file)
        }
    }

    /// Sets an environment variable for every later berth command.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.envs.push((k.into(), v.into()));
    }

    fn cleanup_and_check(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let listed = self.all_ids();
        {
            let mut ids = self.ids.lock().unwrap();
            ids.extend(listed.iter().cloned());
        }
        if !listed.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(listed.iter().map(String::as_str));
            let out = self.berth(&args);
            if out.code != 0 {
                problems.push(format!("cleanup rm -f failed:\n{out}"));
            }
        }
        let left = self.all_ids();
        if !left.is_empty() {
            problems.push(format!("containers left after rm -f: {left:?}"));
        }
        // Networks a test made: removing them must take their bridge and the root's nft table along.
        let nets = self.berth(&["network", "ls", "-q"]);
        if nets.code == 0 && !nets.out().is_empty() {
            let bridges: Vec<String> = nets
                .out()
                .lines()
                .filter_map(|n| {
                    let b = self.berth(&[
                        "network",
                        "inspect",
                        "-f",
                        "{{index .Options \"com.docker.network.bridge.name\"}}",
                        n,
                    ]);
                    (b.code == 0).then(|| b.out().to_string())
                })
                .collect();
            let out = self.berth(&["network", "prune", "-f"]);
            if out.code != 0 {
                problems.push(format!("cleanup network prune failed:\n{out}"));
            }
            for b in bridges {
                if std::path::Path::new("/sys/class/net").join(&b).exists() {
                    problems.push(format!("bridge {b} left after network prune"));
                }
            }
            let table = format!("berth-{}", root_tag(&self.root));
            let listed = Command::new("nft").args(["list", "table", "ip", &table]).output();
            if listed.is_ok_and(|o| o.status.success()) {
                problems.push(format!("nft table {table} left after network prune"));
            }
        }
        // Monitors of this root go away once their container is gone.
        let root_s = self.root.to_string_lossy().into_owned();
        let mut procs = Vec::new();
        if !wait_until(Duration::from_secs(10), || {
            procs = processes_mentioning(&root_s);
            procs.is_empty()
        }) {
            problems.push(format!("berth processes still working on the root: {procs:?}"));
        }
        let m = mounts_under(&self.root);
        if !m.is_empty() {
            problems.push(format!(
                "mounts left under {}:\n{}",
                self.root.display(),
                m.join("\n")
            ));
        }
        let tag = root_tag(&self.root);
        let ids = self.ids.lock().unwrap().clone();
        for id in &ids {
            for d in cgroup_dirs(&format!("berth/{tag}/{id}")) {
                if d.exists() {
                    problems.push(format!("cgroup left behind: {}", d.display()));
                }
            }
        }
        for d in cgroup_dirs(&format!("berth/{tag}")) {
            let children: Vec<PathBuf> = std::fs::read_dir(&d)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default();
            if !children.is_empty() {
                problems.push(format!("cgroups left behind: {children:?}"));
            } else {
                // berth keeps the (empty) per-root parent; this root is gone, so take it away.
                let _ = std::fs::remove_dir(&d);
            }
        }
        problems
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let problems = if panicking {
            // Best effort only: the test already failed.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.cleanup_and_check()))
                .unwrap_or_default()
        } else {
            self.cleanup_and_check()
        };
        let dir = self.dir.take();
        if problems.is_empty() || panicking {
            drop(dir);
        } else {
            // Keep the root for a post-mortem when something leaked.
            let path = dir.map(|d| d.keep());
            panic!("leaked state of berth root {:?}:\n{}", path, problems.join("\n"));
        }
    }
}

/// Whether `s` is an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z'] => true,
        [s, h1, h2, b':', m1, m2] if (*s == b'+' || *s == b'-') => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// Parses an RFC 3339 UTC timestamp ("...Z") into seconds since the epoch (fraction included).
pub fn rfc3339_secs(s: &str) -> f64 {
    assert!(
        is_rfc3339(s) && s.ends_with('Z'),
        "not an RFC 3339 UTC time: {s:?}"
    );
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, mo, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    let frac = s[19..s.len() - 1]
        .strip_prefix('.')
        .map(|f| format!("0.{f}").parse::<f64>().unwrap())
        .unwrap_or(0.0);
    secs as f64 + frac
}

/// A minimal HTTP GET over std (no client on the host to depend on): the body, or `None` when nothing
/// answers within 3 s.
pub fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.trim().to_string())
}
