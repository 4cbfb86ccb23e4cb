//! The /etc files berth writes per container: hostname, hosts, resolv.conf.

use std::path::Path;

use crate::config::RunConfig;
use crate::{io_err, Error};

/// Writes the three files into the container dir.
pub fn write(dir: &Path, cfg: &RunConfig, hostname: &str) -> Result<(), Error> {
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(io_err(format!("write {name}")))
    };
    write("hostname", format!("{hostname}\n"))?;
    let hosts = hosts_base(cfg)?;
    write("hosts", hosts)?;
    write("resolv.conf", resolv_conf(cfg))
}

/// /etc/hosts without the network entries: localhost (or the host's file with `--network host`) and
/// `--add-host`s.
pub fn hosts_base(cfg: &RunConfig) -> Result<String, Error> {
    let mut hosts = if cfg.network == "host" {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            .to_string()
    };
    for h in &cfg.extra_hosts {
        let (name, ip) = h
            .split_once(':')
            .ok_or_else(|| Error::Invalid(format!("invalid --add-host {h:?}: expected name:ip")))?;
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    Ok(hosts)
}

/// The host's resolver settings without loopback nameservers (they would point at the container itself),
/// or the `--dns` servers.
fn resolv_conf(cfg: &RunConfig) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if cfg.network == "host" && cfg.dns.is_empty() {
        return host;
    }
    let is_loopback = |ns: &str| ns.starts_with("127.") || ns == "::1";
    let nameservers = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(|ns| ns.trim().to_string())
            .filter(|ns| !is_loopback(ns))
            .collect()
    };
    let mut servers = cfg.dns.clone();
    if servers.is_empty() {
        servers = nameservers(&host);
    }
    if servers.is_empty() {
        // systemd-resolved's stub (127.0.0.53) is unreachable from the container: use its upstreams.
        let upstream = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or_default();
        servers = nameservers(&upstream);
    }
    let mut out = String::new();
    for line in host.lines() {
        if !line.trim().starts_with("nameserver") {
            out.push_str(line);
            out.push('\n');
        }
    }
    for d in &servers {
        out.push_str(&format!("nameserver {d}\n"));
    }
    out
}
