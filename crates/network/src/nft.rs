//! The berth-owned nftables table: outbound NAT, forwarding policy and published ports.
//!
//! The whole table is a pure function of the networks and published ports ([`Ruleset`] →
//! [`render`]), and [`apply`] replaces it in one nft transaction (libnftables in-process, see
//! `libnft`; the `nft` tool when the library is missing) (create if missing,
//! delete, recreate): either the new table is in place or the old one still is. Nothing
//! outside the table is touched, so [`delete_table`] removes exactly what berth added.
//!
//! How the rules work:
//! - `postrouting`: traffic from a non-internal network's subnet leaving through any other
//!   interface is masqueraded. Published-port traffic that was DNAT'd back onto a bridge from
//!   a container of that bridge (hairpin) or from 127.0.0.0/8 is masqueraded too, so the
//!   reply comes back through the host to be un-NAT'd.
//! - `forward`: internal networks exchange nothing with any other interface; a normal
//!   network may send anywhere and receive replies, DNAT'd (published) traffic and traffic
//!   from its own bridge; any other new connection into a bridge is dropped.
//! - `prerouting`/`output`: packets to a local address (`fib daddr type local`) jump to
//!   `publish`, which holds one DNAT rule per published port. 127.0.0.1 works because the
//!   engine sets `route_localnet` on the bridge ([`set_route_localnet`]).

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

/// An `nft` run that failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be run at all.
    #[error("nftables: cannot run nft (is the nftables package installed?): {0}")]
    Spawn(#[source] io::Error),
    /// `nft` refused the ruleset or command.
    #[error("nftables: {op}: {stderr}")]
    Failed {
        /// What was being done.
        op: String,
        /// What nft said.
        stderr: String,
    },
    /// A name that cannot be put into the ruleset safely.
    #[error("nftables: invalid name {0:?}")]
    InvalidName(String),
    /// Writing a sysctl failed.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        /// The /proc/sys path.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// One network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// Bridge interface name.
    pub bridge: String,
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic to or from other interfaces.
    pub internal: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `-p [host_ip:]host_port:container_port[/proto]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Only this local address (`None`: every local address, docker's 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// Port on the host.
    pub host_port: u16,
    /// The container's address on the network that carries the traffic.
    pub container_ip: Ipv4Addr,
    /// Port in the container.
    pub container_port: u16,
}

/// Everything the berth table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Table name (`berth-<root tag>`): two berth roots never share a table.
    pub table: String,
    /// The networks with a bridge on this host.
    pub networks: Vec<NetworkRules>,
    /// Published ports of running containers.
    pub ports: Vec<PortMapping>,
}

/// The table family: berth is IPv4-only for now.
pub const FAMILY: &str = "ip";

fn check_name(name: &str) -> Result<(), NftError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NftError::InvalidName(name.to_owned()))
    }
}

/// Renders the ruleset as `nft -f` text: a complete definition of the table (no flush or
/// delete; [`apply`] adds those). Networks and ports are emitted in the order given.
pub fn render(rs: &Ruleset) -> Result<String, NftError> {
    check_name(&rs.table)?;
    for n in &rs.networks {
        check_name(&n.bridge)?;
    }
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "table {FAMILY} {} {{", rs.table);

    let _ = writeln!(w, "\tchain publish {{");
    for p in &rs.ports {
        let proto = p.protocol.as_str();
        let daddr = p.host_ip.map(|ip| format!("ip daddr {ip} ")).unwrap_or_default();
        let _ = writeln!(
            w,
            "\t\t{daddr}{proto} dport {} dnat to {}:{}",
            p.host_port, p.container_ip, p.container_port
        );
    }
    let _ = writeln!(w, "\t}}");

    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        let _ = writeln!(w, "\tchain {chain} {{");
        // -100 is `dstnat`; nft 1.0.6 accepts that name on prerouting only, not on output.
        let _ = writeln!(w, "\t\ttype nat hook {hook} priority -100; policy accept;");
        let _ = writeln!(w, "\t\tfib daddr type local jump publish");
        let _ = writeln!(w, "\t}}");
    }

    let _ = writeln!(w, "\tchain postrouting {{");
    let _ = writeln!(w, "\t\ttype nat hook postrouting priority srcnat; policy accept;");
    for n in &rs.networks {
        let (br, net) = (&n.bridge, n.subnet);
        let _ = writeln!(w, "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        let _ = writeln!(w, "\t\toifname \"{br}\" ip saddr {net} ct status dnat masquerade");
        if !n.internal {
            let _ = writeln!(w, "\t\tip saddr {net} oifname != \"{br}\" masquerade");
        }
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(w, "\tchain forward {{");
    let _ = writeln!(w, "\t\ttype filter hook forward priority filter; policy accept;");
    // Every rule about traffic *into* a bridge comes before any `iifname … accept`: otherwise a
    // container of one network could open connections into another network.
    for n in rs.networks.iter().filter(|n| !n.internal) {
        let br = &n.bridge;
        let _ = writeln!(w, "\t\toifname \"{br}\" ct state established,related accept");
        let _ = writeln!(w, "\t\toifname \"{br}\" ct status dnat accept");
    }
    for n in &rs.networks {
        let br = &n.bridge;
        let _ = writeln!(w, "\t\toifname \"{br}\" iifname \"{br}\" accept");
        let _ = writeln!(w, "\t\toifname \"{br}\" drop");
        if n.internal {
            let _ = writeln!(w, "\t\tiifname \"{br}\" drop");
        }
    }
    for n in rs.networks.iter().filter(|n| !n.internal) {
        let _ = writeln!(w, "\t\tiifname \"{}\" accept", n.bridge);
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "}}");
    Ok(s)
}

/// The script [`apply`] feeds to `nft -f -`: make sure the table exists, delete it, and
/// define it anew — one transaction, so there is never a moment without rules.
pub fn apply_script(rs: &Ruleset) -> Result<String, NftError> {
    let body = render(rs)?;
    Ok(format!(
        "table {FAMILY} {t}\ndelete table {FAMILY} {t}\n{body}",
        t = rs.table
    ))
}

/// Runs nft `commands` (one transaction): in-process through libnftables when it is installed (the
/// `nftables` package brings it), else through the `nft` tool. Returns what nft printed.
fn run_nft(op: &str, commands: &str, changes_rules: bool) -> Result<String, NftError> {
    if let Some(out) = crate::libnft::run(commands, changes_rules) {
        if out.status != 0 {
            return Err(NftError::Failed {
                op: op.to_owned(),
                stderr: out.error.trim().to_owned(),
            });
        }
        return Ok(out.output);
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // A write error shows up as nft's failure below.
    let _ = pipe.write_all(commands.as_bytes());
    drop(pipe);
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if !out.status.success() {
        return Err(NftError::Failed {
            op: op.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces the berth table with `rs`, atomically.
pub fn apply(rs: &Ruleset) -> Result<(), NftError> {
    let script = apply_script(rs)?;
    run_nft(&format!("apply table {}", rs.table), &script, true).map(drop)
}

/// Deletes the berth table if it exists (cleanup, `network prune` of the last network).
pub fn delete_table(table: &str) -> Result<(), NftError> {
    check_name(table)?;
    // Creating it first makes the delete succeed whether or not it existed, in one transaction.
    let script = format!("table {FAMILY} {table}\ndelete table {FAMILY} {table}\n");
    run_nft(&format!("delete table {table}"), &script, true).map(drop)
}

/// True when the berth table exists.
pub fn table_exists(table: &str) -> Result<bool, NftError> {
    check_name(table)?;
    match run_nft("list table", &format!("list table {FAMILY} {table}"), false) {
        Ok(_) => Ok(true),
        Err(NftError::Failed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The live table as nft prints it (for tests and `inspect`-style debugging).
pub fn list_table(table: &str) -> Result<String, NftError> {
    check_name(table)?;
    run_nft("list table", &format!("list table {FAMILY} {table}"), false)
}

fn write_sysctl(path: String, value: &str) -> Result<(), NftError> {
    std::fs::write(&path, value).map_err(|source| NftError::Sysctl { path, source })
}

/// `net.ipv4.conf.<bridge>.route_localnet=1`: lets DNAT'd 127.0.0.1 traffic leave through the
/// bridge (the masquerade rule then gives it the bridge's source address). Per interface, so
/// it goes away with the bridge.
pub fn set_route_localnet(bridge: &str) -> Result<(), NftError> {
    check_name(bridge)?;
    write_sysctl(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"), "1")
}

/// `net.ipv4.ip_forward=1`, without which nothing leaves a bridge network. Writes only when
/// it is off, so a host that already forwards sees no write at all.
pub fn enable_ip_forward() -> Result<(), NftError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    let now = std::fs::read_to_string(path).map_err(|source| NftError::Sysctl {
        path: path.into(),
        source,
    })?;
    if now.trim() == "1" {
        return Ok(());
    }
    write_sysctl(path.into(), "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ruleset {
        Ruleset {
            table: "berth-0123abcd".into(),
            networks: vec![
                NetworkRules {
                    bridge: "berth0".into(),
                    subnet: "172.17.0.0/16".parse().unwrap(),
                    internal: false,
                },
                NetworkRules {
                    bridge: "br-1a2b3c4d5e6f".into(),
                    subnet: "192.168.10.0/24".parse().unwrap(),
                    internal: true,
                },
            ],
            ports: vec![
                PortMapping {
                    protocol: Protocol::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: "172.17.0.2".parse().unwrap(),
                    container_port: 80,
                },
                PortMapping {
                    protocol: Protocol::Tcp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 8443,
                    container_ip: "172.17.0.2".parse().unwrap(),
                    container_port: 443,
                },
                PortMapping {
                    protocol: Protocol::Udp,
                    host_ip: None,
                    host_port: 5353,
                    container_ip: "172.17.0.3".parse().unwrap(),
                    container_port: 53,
                },
            ],
        }
    }

    #[test]
    fn golden_ruleset() {
        let expected = "\
table ip berth-0123abcd {
\tchain publish {
\t\ttcp dport 8080 dnat to 172.17.0.2:80
\t\tip daddr 127.0.0.1 tcp dport 8443 dnat to 172.17.0.2:443
\t\tudp dport 5353 dnat to 172.17.0.3:53
\t}
\tchain prerouting {
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tfib daddr type local jump publish
\t}
\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tfib daddr type local jump publish
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname \"berth0\" ip saddr 127.0.0.0/8 masquerade
\t\toifname \"berth0\" ip saddr 172.17.0.0/16 ct status dnat masquerade
\t\tip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade
\t\toifname \"br-1a2b3c4d5e6f\" ip saddr 127.0.0.0/8 masquerade
\t\toifname \"br-1a2b3c4d5e6f\" ip saddr 192.168.10.0/24 ct status dnat masquerade
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\toifname \"berth0\" ct state established,related accept
\t\toifname \"berth0\" ct status dnat accept
\t\toifname \"berth0\" iifname \"berth0\" accept
\t\toifname \"berth0\" drop
\t\toifname \"br-1a2b3c4d5e6f\" iifname \"br-1a2b3c4d5e6f\" accept
\t\toifname \"br-1a2b3c4d5e6f\" drop
\t\tiifname \"br-1a2b3c4d5e6f\" drop
\t\tiifname \"berth0\" accept
\t}
}
";
        assert_eq!(render(&sample()).unwrap(), expected);
    }

    #[test]
    fn empty_ruleset_still_defines_the_chains() {
        let rs = Ruleset {
            table: "berth-x".into(),
            ..Default::default()
        };
        let text = render(&rs).unwrap();
        assert!(text.starts_with("table ip berth-x {\n\tchain publish {\n\t}\n"));
        assert!(text.contains("hook forward"));
    }

    #[test]
    fn apply_script_replaces_the_table_in_one_go() {
        let script = apply_script(&sample()).unwrap();
        assert!(script.starts_with(
            "table ip berth-0123abcd\ndelete table ip berth-0123abcd\ntable ip berth-0123abcd {\n"
        ));
    }

    #[test]
    fn names_that_could_inject_rules_are_refused() {
        let mut rs = sample();
        rs.networks[0].bridge = "x\" accept; #".into();
        assert!(matches!(render(&rs), Err(NftError::InvalidName(_))));
        rs = sample();
        rs.table = "berth x".into();
        assert!(matches!(render(&rs), Err(NftError::InvalidName(_))));
        assert!(delete_table("a;b").is_err());
    }
}
