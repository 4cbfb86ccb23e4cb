//! What a user asked for when creating a container: `run`/`create` flags, already parsed into engine terms.
//! Stored as JSON with the container, so `start`, `inspect` and `commit` see exactly what `run` saw.

use serde::{Deserialize, Serialize};

/// A volume or bind mount from `-v`/`--tmpfs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountSpec {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// Host path (bind) or volume name (volume); empty for tmpfs.
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Extra options (tmpfs: "size=64m,mode=1777").
    #[serde(default)]
    pub options: String,
    /// An anonymous volume (`-v /path`): its generated name is in `source`; `rm -v` and `--rm` remove it.
    #[serde(default)]
    pub anonymous: bool,
}

/// One bridge network a container is on: what `--network`/`network connect` asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointConfig {
    /// Network name.
    pub network: String,
    /// `--network-alias`/`--alias`: more names the other containers of the network know it by.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`: a fixed address instead of the next free one.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
}

/// The container's configuration, as given on the command line (image defaults are applied later, when the
/// OCI spec is built, so `inspect` shows what the user typed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    /// The image reference as typed.
    pub image: String,
    /// Command (replaces the image's Cmd when non-empty).
    pub cmd: Vec<String>,
    /// `--entrypoint`: Some("") clears the image's entrypoint.
    pub entrypoint: Option<String>,
    /// `-e`/`--env-file`, "K=V" each, in order (later wins).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-v` and `--tmpfs`.
    pub mounts: Vec<MountSpec>,
    /// `-m` in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap` in bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: Option<i64>,
    /// `--cpus` × 1e9.
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpu-period` (µs).
    pub cpu_period: Option<u64>,
    /// `--cpu-quota` (µs).
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--network`: "none", "host", "container:X", or a bridge network's name ("bridge" is the default).
    pub network: String,
    /// The bridge networks the container is on, `--network`'s first; `network connect` adds more.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add` ("NET_ADMIN" or "CAP_NET_ADMIN", "ALL").
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds.
    pub stop_timeout: Option<i64>,
    /// `--label` "k=v".
    pub labels: Vec<(String, String)>,
    /// `--ulimit` as (name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    /// `--sysctl` "k=v".
    pub sysctls: Vec<(String, String)>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<i64>,
    /// `--add-host` "name:ip" (kept for /etc/hosts).
    pub extra_hosts: Vec<String>,
    /// `--dns` servers.
    pub dns: Vec<String>,
    /// `-p`, with random host ports (`-p 80`, `-P`) already chosen at create.
    pub publish: Vec<String>,
    /// `-P`: publish every port the image exposes (resolved into `publish` at create).
    #[serde(default)]
    pub publish_all: bool,
    /// `--name` (None: a random name).
    pub name: Option<String>,
}

/// Parses one `-v` spec: "host:ctr[:opts]", "name:ctr[:opts]" or an anonymous "ctr".
pub fn parse_volume(spec: &str) -> Result<MountSpec, String> {
    let bad = |why: &str| format!("invalid volume specification {spec:?}: {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad("too many colons")),
    };
    if dest.is_empty() || !dest.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    if dest == "/" {
        return Err(bad("the container path cannot be /"));
    }
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "nocopy" | "consistent" | "cached"
            | "delegated" => {}
            other => return Err(bad(&format!("unknown option {other:?}"))),
        }
    }
    let kind = if source.is_empty() || !source.starts_with('/') && !source.starts_with('.') {
        "volume"
    } else {
        "bind"
    };
    if kind == "volume" && !source.is_empty() && !valid_volume_name(source) {
        return Err(bad("volume names may only contain [a-zA-Z0-9][a-zA-Z0-9_.-]"));
    }
    if kind == "bind" && !source.starts_with('/') {
        return Err(bad("the host path must be absolute"));
    }
    Ok(MountSpec {
        kind: kind.into(),
        source: source.into(),
        destination: dest.into(),
        read_only,
        options: String::new(),
        anonymous: false,
    })
}

/// Docker's rule for volume (and container) names.
pub fn valid_volume_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

/// Parses one `--tmpfs` spec: "/path[:opts]".
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec, String> {
    let (dest, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dest.starts_with('/') || dest == "/" {
        return Err(format!(
            "invalid tmpfs specification {spec:?}: the path must be absolute and not /"
        ));
    }
    Ok(MountSpec {
        kind: "tmpfs".into(),
        source: String::new(),
        destination: dest.into(),
        read_only: opts.split(',').any(|o| o == "ro"),
        options: opts.into(),
        anonymous: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let m = parse_volume("/srv/data:/data:ro").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.destination.as_str(),
                m.read_only
            ),
            ("bind", "/srv/data", "/data", true)
        );
        let m = parse_volume("cache:/var/cache").unwrap();
        assert_eq!(m.kind, "volume");
        let m = parse_volume("/anon").unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str()), ("volume", ""));
        assert!(parse_volume("/a:relative").is_err());
        assert!(parse_volume("/a:/b:bogus").is_err());
        assert!(parse_volume("a:b:c:d").is_err());
        assert!(parse_volume("/a:/").is_err());
        assert!(parse_volume("bad name!:/x").is_err());
        assert!(parse_volume("").is_err());
    }

    #[test]
    fn tmpfs_specs() {
        let m = parse_tmpfs("/run:size=1m").unwrap();
        assert_eq!(m.options, "size=1m");
        assert!(parse_tmpfs("run").is_err());
    }
}
