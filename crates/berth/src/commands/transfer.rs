//! Moving images in and out: save, load, history (and pull, push, login, logout).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use berth_engine::{util, Engine};
use berth_image::manifest::Platform;
use berth_image::registry::{auth, LayerState, NoProgress, Progress, PullOptions};
use berth_image::ArchiveFormat;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{HistoryArgs, LoadArgs, LoginArgs, LogoutArgs, PullArgs, PushArgs, SaveArgs, SaveFormat};
use crate::output;

/// `berth pull NAME[:TAG|@DIGEST]`, printing what docker prints.
pub fn pull(engine: &mut Engine, a: &PullArgs) -> Result<i32> {
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    let progress: Arc<dyn Progress> = if a.quiet {
        Arc::new(NoProgress)
    } else {
        Arc::new(Printer::new("Pull complete"))
    };
    let parsed = berth_image::reference::parse(&a.image)?;
    if !a.quiet {
        let last = a.image.rsplit('/').next().unwrap_or(&a.image);
        if !last.contains([':', '@']) {
            println!("Using default tag: latest");
        }
        let what = parsed.tag.clone().or(parsed.digest.clone()).unwrap_or_default();
        println!("{what}: Pulling from {}", parsed.path);
    }
    let options = PullOptions {
        platform,
        progress: Arc::clone(&progress),
    };
    let (store, conn) = engine.images_and_conn();
    let pulled = store.pull(conn, &a.image, &options)?;
    drop(options);
    drop(progress);
    if a.quiet {
        println!("{}", full_name(&parsed));
        return Ok(0);
    }
    println!("Digest: {}", pulled.digest);
    if pulled.up_to_date {
        println!("Status: Image is up to date for {}", pulled.reference);
    } else {
        println!("Status: Downloaded newer image for {}", pulled.reference);
    }
    println!("{}", full_name(&parsed));
    Ok(0)
}

/// `docker.io/library/busybox:latest`, as docker prints after a pull.
fn full_name(r: &berth_image::reference::Reference) -> String {
    let mut s = r.full_name();
    if let Some(tag) = &r.tag {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(digest) = &r.digest {
        s.push('@');
        s.push_str(digest);
    }
    s
}

/// `berth push IMAGE [TARGET]`.
pub fn push(engine: &mut Engine, a: &PushArgs) -> Result<i32> {
    let progress: Arc<dyn Progress> = if a.quiet {
        Arc::new(NoProgress)
    } else {
        let target = berth_image::reference::parse(a.target.as_deref().unwrap_or(&a.image));
        if let Ok(t) = target {
            println!("The push refers to repository [{}]", t.full_name());
        }
        Arc::new(Printer::new("Pushed"))
    };
    let (store, conn) = engine.images_and_conn();
    let pushed = store.push(conn, &a.image, a.target.as_deref(), progress)?;
    if a.quiet {
        println!("{}", pushed.digest);
    } else {
        println!("{}: digest: {} size: {}", pushed.tag, pushed.digest, pushed.size);
    }
    Ok(0)
}

/// `berth login [-u USER] [-p PASS | --password-stdin] [REGISTRY]`: checks the credentials with the
/// registry before storing them.
pub fn login(a: &LoginArgs) -> Result<i32> {
    let registry = auth::normalize_registry(a.registry.as_deref().unwrap_or("docker.io"));
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let username = match &a.username {
        Some(u) => u.clone(),
        None if interactive && !a.password_stdin => prompt("Username: ", true)?,
        None => bail!("a user name is needed: use -u USER"),
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if interactive {
        prompt("Password: ", false)?
    } else {
        bail!("a password is needed: use --password-stdin");
    };
    if username.is_empty() || password.is_empty() {
        bail!("user name and password must not be empty");
    }
    let credentials = auth::Credentials { username, password };
    let path = auth::login(&registry, &credentials)?;
    eprintln!("Credentials saved in {}", path.display());
    println!("Login Succeeded");
    Ok(0)
}

/// `berth logout [REGISTRY]`.
pub fn logout(a: &LogoutArgs) -> Result<i32> {
    let registry = auth::normalize_registry(a.registry.as_deref().unwrap_or("docker.io"));
    if auth::logout(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

/// Reads one line from the terminal, without echo for passwords.
fn prompt(label: &str, echo: bool) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = if echo { None } else { tcgetattr(&stdin).ok() };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        eprintln!();
    }
    read.context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Progress for pull and push. On a terminal each layer gets a bar with bytes and rate that turns
/// into docker's status word when done; off a terminal (logs, CI) one line per layer as it finishes,
/// nothing redrawn.
struct Printer {
    done_word: &'static str,
    /// Present on a terminal only.
    bars: Option<MultiProgress>,
    layers: Mutex<HashMap<String, ProgressBar>>,
}

impl Printer {
    fn new(done_word: &'static str) -> Printer {
        let bars = std::io::stdout()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Printer {
            done_word,
            bars,
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// A finished layer: a final line, replacing its bar if it had one.
    fn done(&self, digest: &str, text: String) {
        let short = short_digest(digest);
        let bar = self.layers.lock().ok().and_then(|mut l| l.remove(digest));
        match (&self.bars, bar) {
            (Some(_), Some(bar)) => {
                bar.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.finish_with_message(text);
            }
            (Some(bars), None) => {
                let _ = bars.println(format!("{short}: {text}"));
            }
            (None, _) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{short}: {text}");
                let _ = out.flush();
            }
        }
    }
}

fn short_digest(digest: &str) -> &str {
    let short = digest.strip_prefix("sha256:").unwrap_or(digest);
    &short[..short.len().min(12)]
}

impl Progress for Printer {
    fn layer(&self, digest: &str, size: u64, state: LayerState) {
        match state {
            LayerState::AlreadyExists => {
                let word = if self.done_word == "Pushed" {
                    "Layer already exists"
                } else {
                    "Already exists"
                };
                self.done(digest, word.to_string());
            }
            LayerState::Started => {
                let Some(bars) = &self.bars else { return };
                let verb = if self.done_word == "Pushed" {
                    "Pushing"
                } else {
                    "Downloading"
                };
                let style = ProgressStyle::with_template(
                    "{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                let bar = bars.add(ProgressBar::new(size));
                bar.set_style(style);
                bar.set_prefix(short_digest(digest).to_string());
                bar.set_message(verb);
                if let Ok(mut layers) = self.layers.lock() {
                    layers.insert(digest.to_string(), bar);
                }
            }
            LayerState::PullComplete | LayerState::Pushed => {
                self.done(digest, format!("{} ({})", self.done_word, util::human_size(size)));
            }
        }
    }

    fn mounted(&self, digest: &str, _size: u64, from: &str) {
        self.done(digest, format!("Mounted from {from}"));
    }

    fn bytes(&self, digest: &str, n: u64) {
        if self.bars.is_none() {
            return;
        }
        if let Some(bar) = self.layers.lock().ok().and_then(|l| l.get(digest).cloned()) {
            bar.inc(n);
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        // Bars of layers that never finished (a failed transfer) go, so the error stands alone.
        if let Ok(mut layers) = self.layers.lock() {
            for (_, bar) in layers.drain() {
                bar.finish_and_clear();
            }
        }
    }
}

/// `berth save [-o FILE] [--format F] IMAGE...`: the archive goes to a temporary name next to FILE
/// and is renamed into place only when complete.
pub fn save(engine: &mut Engine, a: &SaveArgs) -> Result<i32> {
    let format = match a.format {
        SaveFormat::DockerArchive => ArchiveFormat::DockerArchive,
        SaveFormat::OciArchive => ArchiveFormat::OciArchive,
    };
    let (store, conn) = engine.images_and_conn();
    match &a.output {
        Some(path) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
            let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let result = store
                .save(conn, &a.images, format, &mut w)
                .map_err(anyhow::Error::from)
                .and_then(|()| w.flush().map_err(Into::into))
                .and_then(|()| {
                    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
                });
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(anyhow!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                ));
            }
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            store.save(conn, &a.images, format, &mut w)?;
            w.flush()?;
        }
    }
    Ok(0)
}

/// `berth load [-i FILE]`: prints `Loaded image: NAME` per tag, `Loaded image ID: ID` for an untagged
/// image, as docker does.
pub fn load(engine: &mut Engine, a: &LoadArgs) -> Result<i32> {
    let (store, conn) = engine.images_and_conn();
    let loaded = match &a.input {
        Some(path) => store.load_file(conn, path)?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(anyhow!(
                    "requested load from stdin, but stdin is empty; use -i FILE or redirect a tar archive"
                ));
            }
            store.load_stream(conn, stdin.lock())?
        }
    };
    if !a.quiet {
        for image in loaded {
            if image.tags.is_empty() {
                println!("Loaded image ID: {}", image.id);
            }
            for tag in image.tags {
                println!("Loaded image: {tag}");
            }
        }
    }
    Ok(0)
}

/// `berth history IMAGE`: one row per history entry, newest first; the rows that made a layer show
/// its size, the top one shows the image ID (docker prints `<missing>` for the others).
pub fn history(engine: &mut Engine, a: &HistoryArgs) -> Result<i32> {
    let image = engine.image(&a.image)?;
    let (store, conn) = engine.images_and_conn();
    let history = image.config.history().clone().unwrap_or_default();
    let mut layers = image.diff_ids.iter();
    let mut rows = Vec::new();
    for entry in &history {
        let size = if entry.empty_layer().unwrap_or(false) {
            0
        } else {
            match layers.next() {
                Some(diff_id) => store.layer_size(conn, diff_id)?.unwrap_or(0),
                None => 0,
            }
        };
        rows.push((entry, size));
    }
    rows.reverse();
    let mut items = Vec::new();
    let mut table = Vec::new();
    for (i, (entry, size)) in rows.iter().enumerate() {
        let id = match (i, a.no_trunc) {
            (0, true) => image.id.clone(),
            (0, false) => image.short_id().to_string(),
            _ => "<missing>".to_string(),
        };
        let created_at = entry.created().clone().unwrap_or_default();
        let created = if a.human {
            util::parse_time(&created_at).map(util::ago).unwrap_or_default()
        } else {
            created_at.clone()
        };
        let mut created_by = entry.created_by().clone().unwrap_or_default();
        if !a.no_trunc && created_by.chars().count() > 45 {
            created_by = created_by.chars().take(44).collect::<String>() + "…";
        }
        let size_text = if a.human {
            util::human_size(*size)
        } else {
            size.to_string()
        };
        let comment = entry.comment().clone().unwrap_or_default();
        items.push(json!({"ID": id, "CreatedSince": created, "CreatedAt": created_at,
            "CreatedBy": created_by, "Size": size_text, "Comment": comment}));
        table.push(vec![id, created, created_by, size_text, comment]);
    }
    if a.quiet {
        println!(
            "{}",
            if a.no_trunc {
                image.id.as_str()
            } else {
                image.short_id()
            }
        );
        return Ok(0);
    }
    if let Some(f) = &a.format {
        if output::formatted(f, &items) {
            return Ok(0);
        }
    }
    output::table(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], &table);
    Ok(0)
}
