//! `berth logs [-f] [--tail N] [-t] [--since T] [--until T]`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Result};
use berth_engine::logs::{Entry, Parser, Stream};
use berth_engine::{util, Engine};

use crate::cli::LogsArgs;

/// "2h", "10m", "30s" (relative), RFC3339, or unix seconds.
fn parse_when(s: &str) -> Result<SystemTime> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(SystemTime::now() - d);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| anyhow!("invalid time {s:?}: use a duration (10m), RFC3339 or unix seconds"))
}

struct Printer {
    timestamps: bool,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl Printer {
    fn print(&self, e: &Entry) {
        let t = util::parse_time(&e.time);
        if let (Some(s), Some(t)) = (self.since, t) {
            if t < s {
                return;
            }
        }
        if let (Some(u), Some(t)) = (self.until, t) {
            if t > u {
                return;
            }
        }
        let mut line = Vec::with_capacity(e.text.len() + 40);
        if self.timestamps {
            line.extend_from_slice(e.time.as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&e.text);
        line.push(b'\n');
        let _ = match e.stream {
            Stream::Stdout => std::io::stdout().write_all(&line),
            Stream::Stderr => std::io::stderr().write_all(&line),
        };
    }
}

/// `berth logs`.
pub fn logs(engine: &mut Engine, a: &LogsArgs) -> Result<i32> {
    let rec = engine.container(&a.container)?;
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow!("invalid --tail {n:?}: a number or \"all\""))?,
        ),
    };
    let p = Printer {
        timestamps: a.timestamps,
        since: a.since.as_deref().map(parse_when).transpose()?,
        until: a.until.as_deref().map(parse_when).transpose()?,
    };
    let path = engine.log_path(&rec.id);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow!("read log of {}: {e}", rec.name)),
    };
    let mut parser = Parser::default();
    let mut offset = 0u64;
    if let Some(f) = &mut file {
        let mut data = Vec::new();
        f.read_to_end(&mut data)?;
        let (entries, used) = parser.push(&data);
        offset = used as u64;
        let skip = tail.map(|n| entries.len().saturating_sub(n)).unwrap_or(0);
        for e in &entries[skip..] {
            p.print(e);
        }
    }
    let _ = std::io::stdout().flush();
    if !a.follow {
        return Ok(0);
    }
    // Follow until the container stops and its monitor has written its last line.
    loop {
        let running = engine
            .container(&rec.id)
            .map(|r| r.is_running() || r.monitor_alive())
            .unwrap_or(false);
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
        if let Some(f) = &mut file {
            f.seek(SeekFrom::Start(offset))?;
            let mut data = Vec::new();
            f.read_to_end(&mut data)?;
            let (entries, used) = parser.push(&data);
            offset += used as u64;
            for e in &entries {
                p.print(e);
            }
            let _ = std::io::stdout().flush();
        }
        if !running {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
