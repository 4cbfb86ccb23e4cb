//! run, create, start: flags → RunConfig, then create/start through the engine; attached runs relay
//! signals and the window size and end with the container's exit code.

use std::os::fd::AsFd;

use anyhow::{anyhow, bail, Context, Result};
use berth_engine::{config, util, Engine, RunConfig, StartMode};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::cli::{CreateArgs, RunArgs, StartArgs};
use crate::terminal::RawMode;

fn size(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) if s == "-1" => Ok(Some(-1)),
        Some(s) => util::parse_size(s).map(Some).ok_or_else(|| {
            anyhow!("invalid size {s:?} for {flag}: use a number with an optional unit (b, k, m, g)")
        }),
    }
}

fn key_value(flag: &str, s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow!("invalid {flag} {s:?}: expected KEY=VALUE"))
}

/// `-e K=V`, `-e K` (taken from our environment when set) and `--env-file`.
pub fn env_list(env: &[String], files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |e: &str| {
        if e.contains('=') {
            out.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    };
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("read env file {}", f.display()))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            push(line);
        }
    }
    for e in env {
        if e.is_empty() || e.starts_with('=') {
            bail!("invalid environment variable {e:?}");
        }
        push(e);
    }
    Ok(out)
}

fn ulimit(s: &str) -> Result<(String, u64, u64)> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit {s:?}: expected NAME=SOFT[:HARD]"))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |x: &str| -> Result<u64> {
        if x == "-1" || x == "unlimited" {
            Ok(u64::MAX)
        } else {
            x.parse()
                .map_err(|_| anyhow!("invalid ulimit {s:?}: {x:?} is not a number"))
        }
    };
    let known = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !known.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok((name.to_string(), soft, hard))
}

/// Turns `create`/`run` flags into the engine's RunConfig.
pub fn run_config(a: &CreateArgs) -> Result<RunConfig> {
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(config::parse_volume(v).map_err(|e| anyhow!(e))?);
    }
    for m in &a.mount {
        mounts.push(parse_mount_flag(m)?);
    }
    for t in &a.tmpfs {
        mounts.push(config::parse_tmpfs(t).map_err(|e| anyhow!(e))?);
    }
    let mut labels = Vec::new();
    for f in &a.label_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("read label file {}", f.display()))?;
        for l in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            labels.push(
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .unwrap_or((l.to_string(), String::new())),
            );
        }
    }
    for l in &a.label {
        labels.push(
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unwrap_or((l.clone(), String::new())),
        );
    }
    if a.network == "host" && (!a.publish.is_empty() || a.publish_all) {
        eprintln!("berth: warning: published ports are discarded when using host network mode");
    }
    if a.restart != "no" {
        eprintln!(
            "berth: warning: --restart {} is not supported yet; the container will not be restarted",
            a.restart
        );
    }
    Ok(RunConfig {
        image: a.image().to_string(),
        cmd: a.command().to_vec(),
        entrypoint: a.entrypoint.clone(),
        env: env_list(&a.env, &a.env_file)?,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        tty: a.tty,
        interactive: a.interactive,
        auto_remove: a.rm,
        mounts,
        memory: size("--memory", &a.memory)?,
        memory_swap: size("--memory-swap", &a.memory_swap)?,
        memory_reservation: size("--memory-reservation", &a.memory_reservation)?,
        nano_cpus: a.cpus.map(|c| (c * 1e9).round() as i64),
        cpu_shares: a.cpu_shares,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
        read_only: a.read_only,
        network: a.network.clone(),
        endpoints: vec![config::EndpointConfig {
            network: a.network.clone(),
            aliases: a.network_alias.clone(),
            ip: a.ip,
        }],
        publish_all: a.publish_all,
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout.map(i64::from),
        labels,
        ulimits: a.ulimit.iter().map(|u| ulimit(u)).collect::<Result<_>>()?,
        sysctls: a
            .sysctl
            .iter()
            .map(|s| key_value("--sysctl", s))
            .collect::<Result<_>>()?,
        shm_size: size("--shm-size", &a.shm_size)?,
        extra_hosts: a.add_host.clone(),
        dns: a.dns.clone(),
        publish: a.publish.clone(),
        name: a.name.clone(),
    })
}

/// `--mount type=bind,source=/a,target=/b[,readonly]`.
fn parse_mount_flag(s: &str) -> Result<config::MountSpec> {
    let mut kind = "volume".to_string();
    let (mut src, mut dst, mut ro, mut opts) = (String::new(), String::new(), false, Vec::new());
    for part in s.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, "true"));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => ro = v != "false" && v != "0",
            "tmpfs-size" => opts.push(format!("size={v}")),
            "tmpfs-mode" => opts.push(format!("mode={v}")),
            _ => bail!("invalid --mount {s:?}: unknown field {k:?}"),
        }
    }
    if !dst.starts_with('/') {
        bail!("invalid --mount {s:?}: target must be an absolute path");
    }
    match kind.as_str() {
        "bind" if !src.starts_with('/') => {
            bail!("invalid --mount {s:?}: bind source must be an absolute path")
        }
        "bind" if !std::path::Path::new(&src).exists() => {
            bail!("invalid mount config for type \"bind\": bind source path does not exist: {src}")
        }
        "bind" | "volume" | "tmpfs" => {}
        other => bail!("invalid --mount {s:?}: unknown type {other:?}"),
    }
    Ok(config::MountSpec {
        kind,
        source: src,
        destination: dst,
        read_only: ro,
        options: opts.join(","),
        anonymous: false,
    })
}

/// `berth create`: prints the new id.
pub fn create(engine: &mut Engine, a: &CreateArgs) -> Result<i32> {
    let rec = engine.create(run_config(a)?)?;
    println!("{}", rec.id);
    Ok(0)
}

/// `berth run`.
pub fn run(engine: &mut Engine, a: &RunArgs) -> Result<i32> {
    let cfg = run_config(&a.create)?;
    let (tty, interactive) = (cfg.tty, cfg.interactive);
    let rec = engine.create(cfg)?;
    if a.detach {
        engine.start(&rec.id, StartMode::Detached)?;
        println!("{}", rec.id);
        return Ok(0);
    }
    attach_and_wait(engine, &rec.id, tty, interactive)
}

/// Starts attached, relays signals and window size, returns the exit code.
fn attach_and_wait(engine: &mut Engine, id: &str, tty: bool, interactive: bool) -> Result<i32> {
    // Raw mode before the monitor forks: the terminal's settings are shared, and keystrokes go to the pty.
    let raw = if tty && interactive {
        RawMode::enable()
    } else {
        None
    };
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        mask.add(s);
    }
    let _ = mask.thread_block();
    let started = engine.start(id, StartMode::Attached);
    let mut att = match started {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(0),
        Err(e) => {
            drop(raw);
            return Err(e.into());
        }
    };
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    loop {
        let mut fds = [
            PollFd::new(att.fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("poll: {e}"),
            Ok(_) => {}
        }
        let status_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let sig_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if sig_ready {
            if let Ok(Some(si)) = sfd.read_signal() {
                let sig = Signal::try_from(si.ssi_signo as i32).unwrap_or(Signal::SIGTERM);
                let target = if sig == Signal::SIGWINCH {
                    att.monitor_pid
                } else {
                    att.pid
                };
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), sig);
            }
        }
        if status_ready {
            let code = att.wait();
            drop(raw);
            return Ok(code);
        }
    }
}

/// `berth start`.
pub fn start(engine: &mut Engine, a: &StartArgs) -> Result<i32> {
    if a.attach {
        if a.containers.len() != 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let rec = engine.container(&a.containers[0])?;
        return attach_and_wait(
            engine,
            &rec.id,
            rec.config.tty,
            a.interactive && rec.config.interactive,
        );
    }
    let mut failed = false;
    for c in &a.containers {
        match engine.start(c, StartMode::Detached) {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        assert_eq!(ulimit("nofile=1024:2048").unwrap(), ("nofile".into(), 1024, 2048));
        assert_eq!(ulimit("nproc=50").unwrap(), ("nproc".into(), 50, 50));
        assert!(ulimit("bogus=1").is_err());
        assert!(ulimit("nofile=10:5").is_err());
    }

    #[test]
    fn env_from_host() {
        std::env::set_var("BERTH_TEST_ENV_X", "y");
        let e = env_list(
            &["A=1".into(), "BERTH_TEST_ENV_X".into(), "UNSET_BERTH_VAR".into()],
            &[],
        )
        .unwrap();
        assert_eq!(e, vec!["A=1", "BERTH_TEST_ENV_X=y"]);
    }
}
