//! Bridge networks: `network create/ls/inspect/rm/prune`, and a container's endpoint on its network —
//! an address from IPAM, a veth into its namespace (made by the monitor before the command runs), /etc/hosts
//! entries so containers on one network find each other by name, and published ports in berth's nft table.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_network::{ipam, nft, subnet, Endpoint, Netlink, NetworkSpec, PortMapping, Protocol, Ruleset};
use serde_json::{json, Value};

use crate::config::valid_volume_name;
use crate::record::{self, Record};
use crate::{io_err, root_tag, util, Engine, Error};

/// The network `--network bridge` means; created on first use.
pub const DEFAULT_NETWORK: &str = "bridge";

fn net_err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(e.to_string())
}

/// Whether `--network` names a bridge network (not none, host or container:X).
pub fn is_bridge_mode(mode: &str) -> bool {
    !matches!(mode, "" | "none" | "host") && !mode.starts_with("container:")
}

/// A container's endpoint, decided by the engine and wired by the monitor.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The network's bridge.
    pub bridge: String,
    /// The veth and address.
    pub endpoint: Endpoint,
}

/// Parses `-p [ip:]host:container[/proto]`.
pub fn parse_publish(spec: &str) -> Result<(Option<Ipv4Addr>, u16, u16, Protocol), Error> {
    let bad = || {
        Error::Invalid(format!(
            "invalid publish spec {spec:?}: expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]"
        ))
    };
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((p, "tcp")) => (p, Protocol::Tcp),
        Some((p, "udp")) => (p, Protocol::Udp),
        Some(_) => return Err(bad()),
        None => (spec, Protocol::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    match parts.as_slice() {
        [h, c] => Ok((None, port(h)?, port(c)?, proto)),
        [ip, h, c] => {
            let ip = if ip.is_empty() || *ip == "0.0.0.0" {
                None
            } else {
                Some(ip.parse().map_err(|_| bad())?)
            };
            Ok((ip, port(h)?, port(c)?, proto))
        }
        _ => Err(bad()),
    }
}

impl Engine {
    fn table(&self) -> String {
        format!("berth-{}", root_tag(&self.root))
    }

    /// `network create`.
    pub fn network_create(
        &mut self,
        name: &str,
        subnet_s: Option<&str>,
        gateway_s: Option<&str>,
        internal: bool,
        labels: BTreeMap<String, String>,
    ) -> Result<ipam::Network, Error> {
        if !valid_volume_name(name) || matches!(name, "none" | "host") {
            return Err(Error::Invalid(format!("invalid network name {name:?}")));
        }
        let subnet = subnet_s.map(subnet::parse_subnet).transpose().map_err(net_err)?;
        let gateway = gateway_s.map(subnet::parse_addr).transpose().map_err(net_err)?;
        let mut nl = Netlink::open().map_err(net_err)?;
        let routes: Vec<ipnet::Ipv4Net> = nl
            .ipv4_routes()
            .map_err(net_err)?
            .into_iter()
            .map(|r| r.destination)
            .collect();
        let id = util::random_id();
        // The default network's bridge is named after the root, user networks after their id (≤ 15 bytes).
        let bridge = if name == DEFAULT_NETWORK {
            format!("berth{}", &root_tag(&self.root)[..8])
        } else {
            format!("br-{}", &id[..12])
        };
        let spec = NetworkSpec {
            name: name.into(),
            id,
            driver: "bridge".into(),
            subnet,
            gateway,
            internal,
            bridge,
            created: util::now(),
            labels,
        };
        let net = ipam::create_network(&self.conn, &spec, &routes).map_err(net_err)?;
        let made = (|| -> Result<(), Error> {
            berth_network::ensure_bridge(&mut nl, &net.bridge, net.subnet, net.gateway, None)
                .map_err(net_err)?;
            nft::set_route_localnet(&net.bridge).map_err(net_err)?;
            nft::enable_ip_forward().map_err(net_err)?;
            self.apply_firewall(None)
        })();
        if let Err(e) = made {
            let _ = nl.delete_link(&net.bridge);
            let _ = ipam::remove_network(&self.conn, &net.name);
            return Err(e);
        }
        Ok(net)
    }

    /// All networks.
    pub fn networks(&self) -> Result<Vec<ipam::Network>, Error> {
        ipam::list_networks(&self.conn).map_err(net_err)
    }

    /// One network by name, id or id prefix.
    pub fn network(&self, key: &str) -> Result<ipam::Network, Error> {
        let all = self.networks()?;
        all.iter()
            .find(|n| n.name == key || n.id == key)
            .or_else(|| all.iter().find(|n| !key.is_empty() && n.id.starts_with(key)))
            .cloned()
            .ok_or_else(|| Error::NotFound {
                kind: "network",
                name: key.into(),
            })
    }

    /// `network rm`: refused while any container (running or not) is on it.
    pub fn network_remove(&mut self, key: &str) -> Result<String, Error> {
        let net = self.network(key)?;
        let users: Vec<String> = self
            .containers()?
            .into_iter()
            .filter(|c| c.config.network == net.name)
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} has active endpoints ({})",
                net.name,
                users.join(", ")
            )));
        }
        ipam::remove_network(&self.conn, &net.name).map_err(net_err)?;
        if let Ok(mut nl) = Netlink::open() {
            let _ = nl.delete_link(&net.bridge);
        }
        self.apply_firewall(None)?;
        Ok(net.name)
    }

    /// `network prune`: every network no container uses.
    pub fn network_prune(&mut self) -> Result<Vec<String>, Error> {
        let used: Vec<String> = self.containers()?.into_iter().map(|c| c.config.network).collect();
        let mut removed = Vec::new();
        for n in self.networks()? {
            if !used.contains(&n.name) {
                removed.push(self.network_remove(&n.name)?);
            }
        }
        Ok(removed)
    }

    /// docker-shaped `network inspect` JSON.
    pub fn network_json(&self, n: &ipam::Network) -> Value {
        let mut containers = serde_json::Map::new();
        for a in ipam::allocations(&self.conn, &n.name).unwrap_or_default() {
            let name = record::find(&self.conn, &a.container)
                .map(|r| r.name)
                .unwrap_or_default();
            containers.insert(
                a.container.clone(),
                json!({
                    "Name": name,
                    "IPv4Address": format!("{}/{}", a.address, n.subnet.prefix_len()),
                    "MacAddress": mac_string(a.address),
                }),
            );
        }
        json!({
            "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
            "EnableIPv6": false, "Internal": n.internal, "Attachable": false,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
            "Containers": containers, "Options": {"com.docker.network.bridge.name": n.bridge}, "Labels": n.labels,
        })
    }

    /// Rewrites berth's nft table from the networks and the published ports of running containers (plus
    /// `starting`, whose row does not say running yet).
    pub(crate) fn apply_firewall(&self, starting: Option<(&Record, Ipv4Addr)>) -> Result<(), Error> {
        let nets = self.networks()?;
        let mut ports = Vec::new();
        let mut add = |r: &Record, ip: Ipv4Addr| -> Result<(), Error> {
            for p in &r.config.publish {
                let (host_ip, host_port, container_port, protocol) = parse_publish(p)?;
                ports.push(PortMapping {
                    protocol,
                    host_ip,
                    host_port,
                    container_ip: ip,
                    container_port,
                });
            }
            Ok(())
        };
        for r in self.containers()? {
            if r.config.publish.is_empty() || !r.is_running() || starting.is_some_and(|(s, _)| s.id == r.id) {
                continue;
            }
            if let Some(a) = ipam::container_allocations(&self.conn, &r.id)
                .unwrap_or_default()
                .first()
            {
                add(&r, a.address)?;
            }
        }
        if let Some((r, ip)) = starting {
            add(r, ip)?;
        }
        if nets.is_empty() && ports.is_empty() {
            return match nft::table_exists(&self.table()) {
                Ok(true) => nft::delete_table(&self.table()).map_err(net_err),
                _ => Ok(()),
            };
        }
        let rules = Ruleset {
            table: self.table(),
            networks: nets
                .iter()
                .map(|n| nft::NetworkRules {
                    bridge: n.bridge.clone(),
                    subnet: n.subnet,
                    internal: n.internal,
                })
                .collect(),
            ports,
        };
        nft::apply(&rules).map_err(net_err)
    }

    /// Before a start: the address and endpoint on the container's network, and /etc/hosts entries for it
    /// and for the other containers on the network (whose own hosts files learn about this one).
    pub(crate) fn prepare_network(&mut self, rec: &Record) -> Result<Vec<Attachment>, Error> {
        let mode = rec.config.network.as_str();
        if !is_bridge_mode(mode) {
            return Ok(vec![]);
        }
        let net = match self.network(mode) {
            Ok(n) => n,
            Err(Error::NotFound { .. }) if mode == DEFAULT_NETWORK => {
                self.network_create(DEFAULT_NETWORK, None, None, false, BTreeMap::new())?
            }
            Err(e) => return Err(e),
        };
        let ip = ipam::allocate(&self.conn, &net.name, &rec.id, None).map_err(net_err)?;
        let hostname = rec
            .config
            .hostname
            .clone()
            .unwrap_or_else(|| rec.id[..12].to_string());
        let mut peers = Vec::new();
        for a in ipam::allocations(&self.conn, &net.name).map_err(net_err)? {
            if a.container == rec.id {
                continue;
            }
            if let Ok(other) = record::find(&self.conn, &a.container) {
                // The running peer learns about us too (in place: its /etc/hosts is a bind of this very file).
                let line = format!("{ip}\t{} {}\n", rec.name, hostname);
                append_host(&self.container_dir(&other.id).join("hosts"), &line);
                peers.push(format!(
                    "{}\t{} {}\n",
                    a.address,
                    other.name,
                    other
                        .config
                        .hostname
                        .clone()
                        .unwrap_or_else(|| other.id[..12].to_string())
                ));
            }
        }
        let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for h in &rec.config.extra_hosts {
            if let Some((name, addr)) = h.split_once(':') {
                hosts.push_str(&format!("{addr}\t{name}\n"));
            }
        }
        hosts.push_str(&format!("{ip}\t{hostname} {}\n", rec.name));
        hosts.extend(peers);
        std::fs::write(self.container_dir(&rec.id).join("hosts"), hosts).map_err(io_err("write hosts"))?;
        let endpoint = Endpoint {
            host_ifname: format!("veth{}", &rec.id[..11]),
            container_ifname: "eth0".into(),
            address: ip,
            prefix_len: net.subnet.prefix_len(),
            gateway: Some(net.gateway),
            mtu: None,
        };
        if !rec.config.publish.is_empty() {
            self.apply_firewall(Some((rec, ip)))?;
        }
        Ok(vec![Attachment {
            bridge: net.bridge,
            endpoint,
        }])
    }

    /// After a container stopped (or failed to start): its addresses go back to the pool and its ports close.
    pub(crate) fn release_network(&self, rec: &Record) {
        let released = ipam::release_container(&self.conn, &rec.id).unwrap_or_default();
        if !released.is_empty() && !rec.config.publish.is_empty() {
            let _ = self.apply_firewall(None);
        }
    }
}

fn append_host(path: &std::path::Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

fn mac_string(ip: Ipv4Addr) -> String {
    berth_network::netlink::mac_for_ip(ip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Wires a container's endpoints once its namespace exists (called by the monitor before the command runs).
pub(crate) fn attach_all(pid: i32, attachments: &[Attachment]) -> Result<(), String> {
    if attachments.is_empty() {
        return Ok(());
    }
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    for a in attachments {
        berth_network::attach(
            &mut nl,
            &a.bridge,
            berth_network::Netns::Pid(pid as u32),
            &a.endpoint,
        )
        .map_err(|e| format!("connect to network: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        assert_eq!(parse_publish("8080:80").unwrap(), (None, 8080, 80, Protocol::Tcp));
        assert_eq!(
            parse_publish("127.0.0.1:8443:443/tcp").unwrap(),
            (Some(Ipv4Addr::LOCALHOST), 8443, 443, Protocol::Tcp)
        );
        assert_eq!(
            parse_publish("5353:53/udp").unwrap(),
            (None, 5353, 53, Protocol::Udp)
        );
        assert!(parse_publish("80").is_err());
        assert!(parse_publish("a:b").is_err());
        assert!(parse_publish("1:2/sctp").is_err());
    }
}
