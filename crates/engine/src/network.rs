//! Bridge networks: `network create/ls/inspect/rm/prune`, and a container's endpoint on its network —
//! an address from IPAM, a veth into its namespace (made by the monitor before the command runs), /etc/hosts
//! entries so containers on one network find each other by name, and published ports in berth's nft table.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_network::{ipam, nft, subnet, Endpoint, Netlink, NetworkSpec, PortMapping, Protocol, Ruleset};
use serde_json::{json, Value};

use crate::config::{valid_volume_name, EndpointConfig, RunConfig};
use crate::record::{self, Record};
use crate::{etc, io_err, root_tag, util, Engine, Error};

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

/// Parses a `-p` as typed, where the host port may be missing (`80`, `127.0.0.1::80`): `None` then.
pub fn parse_publish_request(spec: &str) -> Result<(Option<Ipv4Addr>, Option<u16>, u16, Protocol), Error> {
    let (ports, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let parts: Vec<&str> = ports.split(':').collect();
    let missing_host = match parts.as_slice() {
        [_] => true,
        [h, _] | [_, h, _] => h.is_empty(),
        _ => false,
    };
    if !missing_host {
        return parse_publish(spec).map(|(ip, h, c, p)| (ip, Some(h), c, p));
    }
    let filled = match parts.as_slice() {
        [c] => format!("1:{c}/{proto}"),
        [_, c] => format!("1:{c}/{proto}"),
        [ip, _, c] => format!("{ip}:1:{c}/{proto}"),
        _ => unreachable!(),
    };
    parse_publish(&filled)
        .map(|(ip, _, c, p)| (ip, None, c, p))
        .map_err(|_| {
            Error::Invalid(format!(
                "invalid publish spec {spec:?}: expected [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]"
            ))
        })
}

/// The stored form of a publish spec.
fn publish_string(ip: Option<Ipv4Addr>, host: u16, ctr: u16, proto: Protocol) -> String {
    let p = match proto {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    match ip {
        Some(ip) => format!("{ip}:{host}:{ctr}/{p}"),
        None => format!("{host}:{ctr}/{p}"),
    }
}

/// A free host port for `proto`, as the kernel picks ephemeral ports, that no other berth container
/// publishes either.
fn random_host_port(proto: Protocol, taken: &[(u16, Protocol)]) -> Result<u16, Error> {
    for _ in 0..64 {
        let port = match proto {
            Protocol::Tcp => std::net::TcpListener::bind(("0.0.0.0", 0)).and_then(|l| l.local_addr()),
            Protocol::Udp => std::net::UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr()),
        }
        .map_err(io_err("pick a free host port"))?
        .port();
        if !taken.contains(&(port, proto)) {
            return Ok(port);
        }
    }
    Err(Error::Conflict("no free host port to publish on".into()))
}

/// The MTU of the interface the host's default route leaves through (the "parent"), if any.
fn uplink_mtu(nl: &mut Netlink) -> Option<u32> {
    let oif = nl
        .ipv4_routes()
        .ok()?
        .into_iter()
        .find(|r| r.destination.prefix_len() == 0 && r.oif.is_some())?
        .oif?;
    nl.links().ok()?.into_iter().find(|l| l.index == oif)?.mtu
}

/// Whether two host addresses of published ports can collide (`None` is every address).
fn same_host_ip(a: Option<Ipv4Addr>, b: Option<Ipv4Addr>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Name of a container's host-side veth for its `slot`th endpoint (≤ 15 bytes; the slot makes eth0, eth1…).
fn veth_name(id: &str, slot: usize) -> String {
    format!("veth{}{:x}", &id[..10], slot)
}

/// The interface name in the container for `slot`.
fn container_ifname(slot: usize) -> String {
    format!("eth{slot}")
}

/// Holds a lock shared by every berth root on this host while subnets are chosen and bridges made, so
/// two roots never take the same subnet at once (each root has its own database).
fn host_network_lock() -> Result<std::fs::File, Error> {
    let dir = std::path::Path::new("/run/berth");
    std::fs::create_dir_all(dir).map_err(io_err("create /run/berth"))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("network.lock"))
        .map_err(io_err("open /run/berth/network.lock"))?;
    f.lock().map_err(io_err("lock /run/berth/network.lock"))?;
    Ok(f)
}

impl Engine {
    fn table(&self) -> String {
        format!("berth-{}", root_tag(&self.root))
    }

    /// The alias berth puts on the bridges of this root, so a sweep can tell them from anyone else's.
    fn bridge_alias(&self) -> String {
        format!("berth:{}", root_tag(&self.root))
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
        let _lock = host_network_lock()?;
        let mut nl = Netlink::open().map_err(net_err)?;
        let host_routes = nl.ipv4_routes().map_err(net_err)?;
        let routes: Vec<ipnet::Ipv4Net> = host_routes.iter().map(|r| r.destination).collect();
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
            self.bring_up_bridge(&mut nl, &net)?;
            self.apply_firewall(None)
        })();
        if let Err(e) = made {
            let _ = nl.delete_link(&net.bridge);
            let _ = ipam::remove_network(&self.conn, &net.name);
            return Err(e);
        }
        Ok(net)
    }

    /// Creates (or repairs, after a reboot) a network's bridge with its address, berth's alias and the
    /// sysctls forwarding needs.
    fn bring_up_bridge(&self, nl: &mut Netlink, net: &ipam::Network) -> Result<(), Error> {
        let mtu = uplink_mtu(nl);
        berth_network::ensure_bridge(nl, &net.bridge, net.subnet, net.gateway, mtu).map_err(net_err)?;
        nl.set_alias(&net.bridge, &self.bridge_alias()).map_err(net_err)?;
        nft::set_route_localnet(&net.bridge).map_err(net_err)?;
        nft::enable_ip_forward().map_err(net_err)
    }

    /// Makes sure a network's bridge is there and up before a container joins it (after a reboot the
    /// database still has the network, but the bridge and the rules are gone). Returns the bridge's MTU,
    /// which the container's veth takes.
    fn bridge_ready(&self, nl: &mut Netlink, net: &ipam::Network) -> Result<Option<u32>, Error> {
        let mut bridge = nl.link(&net.bridge).map_err(net_err)?;
        if bridge.as_ref().is_none_or(|l| !l.up) {
            let _lock = host_network_lock()?;
            self.bring_up_bridge(nl, net)?;
            self.apply_firewall(None)?;
            bridge = nl.link(&net.bridge).map_err(net_err)?;
        }
        Ok(bridge.and_then(|l| l.mtu))
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

    /// A network for a container to join: the default one is made on first use.
    fn network_for_use(&mut self, key: &str) -> Result<ipam::Network, Error> {
        match self.network(key) {
            Err(Error::NotFound { .. }) if key == DEFAULT_NETWORK => {
                match self.network_create(DEFAULT_NETWORK, None, None, false, BTreeMap::new()) {
                    // Another run made it first.
                    Err(Error::Invalid(m)) if m.contains("already exists") => self.network(key),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// The containers that are on `net` (running or not).
    fn network_users(&self, net: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.config.endpoints.iter().any(|e| e.network == net))
            .map(|c| c.name)
            .collect())
    }

    /// `network rm`: refused while any container (running or not) is on it.
    pub fn network_remove(&mut self, key: &str) -> Result<String, Error> {
        let net = self.network(key)?;
        let users = self.network_users(&net.name)?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} has active endpoints ({})",
                net.name,
                users.join(", ")
            )));
        }
        ipam::remove_network(&self.conn, &net.name).map_err(net_err)?;
        if let Ok(mut nl) = Netlink::open() {
            let _ = berth_network::detach(&mut nl, &net.bridge);
        }
        self.apply_firewall(None)?;
        Ok(net.name)
    }

    /// `network prune`: every network no container uses; first, whatever a crash left behind.
    pub fn network_prune(&mut self) -> Result<Vec<String>, Error> {
        self.network_sweep()?;
        let mut removed = Vec::new();
        for n in self.networks()? {
            if self.network_users(&n.name)?.is_empty() {
                removed.push(self.network_remove(&n.name)?);
            }
        }
        Ok(removed)
    }

    /// Cleans up after crashes and reboots: addresses held by containers that no longer run, bridges of
    /// this root that no network owns any more (the state was wiped), and published ports of dead
    /// containers (the nft table is rewritten from the database).
    pub fn network_sweep(&mut self) -> Result<(), Error> {
        let mut running = std::collections::HashSet::new();
        for mut r in self.containers()? {
            record::reconcile(&self.conn, &mut r)?;
            if r.is_running() {
                running.insert(r.id);
            }
        }
        for n in self.networks()? {
            for a in ipam::allocations(&self.conn, &n.name).map_err(net_err)? {
                if !running.contains(&a.container) {
                    ipam::release(&self.conn, &n.name, &a.container).map_err(net_err)?;
                }
            }
        }
        let owned: Vec<String> = self.networks()?.into_iter().map(|n| n.bridge).collect();
        let mut nl = Netlink::open().map_err(net_err)?;
        let alias = self.bridge_alias();
        for link in nl.links().map_err(net_err)? {
            if link.alias.as_deref() == Some(alias.as_str()) && !owned.contains(&link.name) {
                let _ = berth_network::detach(&mut nl, &link.name);
            }
        }
        self.apply_firewall(None)
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

    /// At create: checks the endpoints against their networks and fills in random host ports (`-p 80`,
    /// `-P` for the image's exposed ports).
    pub(crate) fn check_network_config(
        &mut self,
        cfg: &mut RunConfig,
        exposed: &[String],
    ) -> Result<(), Error> {
        if is_bridge_mode(&cfg.network) {
            if cfg.endpoints.first().is_none_or(|e| e.network != cfg.network) {
                cfg.endpoints.insert(
                    0,
                    EndpointConfig {
                        network: cfg.network.clone(),
                        ..Default::default()
                    },
                );
            }
            for ep in &cfg.endpoints {
                self.check_endpoint(ep)?;
            }
        } else {
            if cfg
                .endpoints
                .iter()
                .any(|e| !e.aliases.is_empty() || e.ip.is_some())
            {
                return Err(Error::Invalid(
                    "--ip and --network-alias need a user-defined bridge network".into(),
                ));
            }
            cfg.endpoints.clear();
            if !cfg.publish.is_empty() && cfg.network != "host" {
                return Err(Error::Invalid(format!(
                    "published ports need a bridge network; --network {} has none",
                    cfg.network
                )));
            }
        }
        let mut requests = Vec::new();
        for p in &cfg.publish {
            requests.push(parse_publish_request(p)?);
        }
        if cfg.publish_all {
            for e in exposed {
                let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                let req = parse_publish_request(&format!("{port}/{proto}"))?;
                if !requests.iter().any(|r| r.2 == req.2 && r.3 == req.3) {
                    requests.push(req);
                }
            }
        }
        if cfg.network == "host" {
            // docker ignores published ports in host mode: the container's own ports are the host's.
            cfg.publish.clear();
            return Ok(());
        }
        let mut taken = self.published_ports()?;
        let mut publish = Vec::new();
        for (ip, host, ctr, proto) in requests {
            let host = match host {
                Some(h) => h,
                None => random_host_port(proto, &taken)?,
            };
            taken.push((host, proto));
            publish.push(publish_string(ip, host, ctr, proto));
        }
        cfg.publish = publish;
        Ok(())
    }

    fn check_endpoint(&self, ep: &EndpointConfig) -> Result<(), Error> {
        if ep.network == DEFAULT_NETWORK {
            if ep.ip.is_some() {
                return Err(Error::Invalid(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            if !ep.aliases.is_empty() {
                return Err(Error::Invalid(
                    "network-scoped alias is supported only for containers in user defined networks".into(),
                ));
            }
            return Ok(());
        }
        let net = self.network(&ep.network)?;
        if let Some(ip) = ep.ip {
            subnet::check_host_addr(net.subnet, ip).map_err(net_err)?;
            if ip == net.gateway {
                return Err(Error::Invalid(format!(
                    "address {ip} is the gateway of network {}",
                    net.name
                )));
            }
        }
        for a in &ep.aliases {
            if !valid_volume_name(a) {
                return Err(Error::Invalid(format!("invalid network alias {a:?}")));
            }
        }
        Ok(())
    }

    /// Host ports published by every container of this root, as (port, protocol).
    fn published_ports(&self) -> Result<Vec<(u16, Protocol)>, Error> {
        let mut out = Vec::new();
        for r in self.containers()? {
            for p in &r.config.publish {
                if let Ok((_, h, _, proto)) = parse_publish(p) {
                    out.push((h, proto));
                }
            }
        }
        Ok(out)
    }

    /// The address a container's published ports lead to: the one on its first network.
    fn primary_address(&self, r: &Record) -> Option<Ipv4Addr> {
        let allocs = ipam::container_allocations(&self.conn, &r.id).unwrap_or_default();
        primary_of(r, &allocs)
    }

    /// Rewrites berth's nft table from the networks and the published ports of running containers (plus
    /// `starting`, whose row does not say running yet).
    pub(crate) fn apply_firewall(&self, starting: Option<(&Record, Ipv4Addr)>) -> Result<(), Error> {
        let nets = self.networks()?;
        let mut ports: Vec<PortMapping> = Vec::new();
        let mut add = |r: &Record, ip: Ipv4Addr| -> Result<(), Error> {
            for p in &r.config.publish {
                let (host_ip, host_port, container_port, protocol) = parse_publish(p)?;
                if let Some(other) = ports.iter().find(|o| {
                    o.host_port == host_port && o.protocol == protocol && same_host_ip(o.host_ip, host_ip)
                }) {
                    let shown = other.host_ip.or(host_ip).unwrap_or(Ipv4Addr::UNSPECIFIED);
                    return Err(Error::Conflict(format!(
                        "Bind for {shown}:{host_port} failed: port is already allocated"
                    )));
                }
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
            if let Some(ip) = self.primary_address(&r) {
                add(&r, ip)?;
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

    /// Before a start: an address on each of the container's networks, their endpoints, and the /etc/hosts
    /// of the container and of its peers (who learn about it). Whatever an earlier crash left allocated
    /// to this container is released first.
    pub(crate) fn prepare_network(&mut self, rec: &Record) -> Result<Vec<Attachment>, Error> {
        let endpoints = &rec.config.endpoints;
        if endpoints.is_empty() {
            return Ok(vec![]);
        }
        ipam::release_container(&self.conn, &rec.id).map_err(net_err)?;
        let mut attachments = Vec::new();
        let made = (|| -> Result<(), Error> {
            let mut nl = None;
            for (slot, ep) in endpoints.iter().enumerate() {
                let net = self.network_for_use(&ep.network)?;
                let nl = match &mut nl {
                    Some(nl) => nl,
                    None => nl.insert(Netlink::open().map_err(net_err)?),
                };
                let mtu = self.bridge_ready(nl, &net)?;
                let ip = ipam::allocate(&self.conn, &net.name, &rec.id, ep.ip).map_err(net_err)?;
                attachments.push(Attachment {
                    bridge: net.bridge,
                    endpoint: Endpoint {
                        host_ifname: veth_name(&rec.id, slot),
                        container_ifname: container_ifname(slot),
                        address: ip,
                        prefix_len: net.subnet.prefix_len(),
                        gateway: (slot == 0).then_some(net.gateway),
                        mtu,
                    },
                });
            }
            if !rec.config.publish.is_empty() {
                let ip = attachments[0].endpoint.address;
                self.apply_firewall(Some((rec, ip)))?;
            }
            self.refresh_hosts(rec, endpoints)
        })();
        if let Err(e) = made {
            let _ = ipam::release_container(&self.conn, &rec.id);
            if !rec.config.publish.is_empty() {
                // Its ports may be in the table already.
                let _ = self.apply_firewall(None);
            }
            return Err(e);
        }
        Ok(attachments)
    }

    /// After a container stopped (or failed to start): its addresses go back to the pool, its peers forget
    /// it and its ports close.
    pub(crate) fn release_network(&self, rec: &Record) {
        let released = ipam::release_container(&self.conn, &rec.id).unwrap_or_default();
        if released.is_empty() {
            return;
        }
        let _ = self.refresh_hosts(rec, &rec.config.endpoints);
        if !rec.config.publish.is_empty() {
            let _ = self.apply_firewall(None);
        }
    }

    /// Rewrites /etc/hosts of `rec` and of every running container that shares a user-defined network
    /// with it, from the allocations: names and aliases resolve on user networks (not on the default
    /// one, as in docker). Under the host-wide network lock, so the last writer wrote the newest view.
    fn refresh_hosts(&self, rec: &Record, endpoints: &[EndpointConfig]) -> Result<(), Error> {
        let user_nets: Vec<&str> = endpoints
            .iter()
            .map(|e| e.network.as_str())
            .filter(|n| *n != DEFAULT_NETWORK)
            .collect();
        let own_only = user_nets.is_empty();
        let _lock = if own_only {
            None
        } else {
            Some(host_network_lock()?)
        };
        let mut targets = vec![rec.id.clone()];
        for n in &user_nets {
            for a in ipam::allocations(&self.conn, n).map_err(net_err)? {
                if !targets.contains(&a.container) {
                    targets.push(a.container);
                }
            }
        }
        for id in targets {
            let Ok(r) = record::find(&self.conn, &id) else {
                continue;
            };
            if r.id != rec.id && !r.is_running() {
                continue;
            }
            let text = self.hosts_text(&r)?;
            rewrite_in_place(&self.container_dir(&r.id).join("hosts"), &text)?;
        }
        Ok(())
    }

    /// /etc/hosts of one container: localhost, `--add-host`, its own address, and everyone it shares a
    /// user-defined network with.
    fn hosts_text(&self, r: &Record) -> Result<String, Error> {
        let mut text = etc::hosts_base(&r.config)?;
        let own = ipam::container_allocations(&self.conn, &r.id).map_err(net_err)?;
        if let Some(ip) = primary_of(r, &own) {
            text.push_str(&format!("{ip}\t{}\n", host_names(r, None).join(" ")));
        }
        let mut seen = std::collections::HashSet::new();
        for mine in &own {
            if mine.network == DEFAULT_NETWORK {
                continue;
            }
            for a in ipam::allocations(&self.conn, &mine.network).map_err(net_err)? {
                if a.container == r.id || !seen.insert((a.container.clone(), a.address)) {
                    continue;
                }
                if let Ok(peer) = record::find(&self.conn, &a.container) {
                    text.push_str(&format!(
                        "{}\t{}\n",
                        a.address,
                        host_names(&peer, Some(&mine.network)).join(" ")
                    ));
                }
            }
        }
        Ok(text)
    }

    /// `network connect`: joins a network; a running container gets its interface at once.
    pub fn network_connect(
        &mut self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
        ip: Option<Ipv4Addr>,
    ) -> Result<(), Error> {
        let mut rec = self.container(container)?;
        if !is_bridge_mode(&rec.config.network) {
            return Err(Error::Conflict(format!(
                "container {} uses --network {}: it cannot be connected to other networks",
                rec.name, rec.config.network
            )));
        }
        let net = self.network_for_use(network)?;
        let mut endpoints = rec.config.endpoints.clone();
        if endpoints.iter().any(|e| e.network == net.name) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        let ep = EndpointConfig {
            network: net.name.clone(),
            aliases,
            ip,
        };
        self.check_endpoint(&ep)?;
        endpoints.push(ep.clone());
        let before = rec.config.clone();
        rec.config.endpoints = endpoints;
        record::set_config(&self.conn, &rec.id, &rec.config)?;
        if !rec.is_running() {
            return Ok(());
        }
        let wired = (|| -> Result<(), Error> {
            let mut nl = Netlink::open().map_err(net_err)?;
            let slot = (0..16)
                .find(|s| matches!(nl.link(&veth_name(&rec.id, *s)), Ok(None)))
                .ok_or_else(|| Error::Conflict(format!("container {} is on too many networks", rec.name)))?;
            let mtu = self.bridge_ready(&mut nl, &net)?;
            let address = ipam::allocate(&self.conn, &net.name, &rec.id, ep.ip).map_err(net_err)?;
            // The first network a container is on carries its default route.
            let only_network = !ipam::container_allocations(&self.conn, &rec.id)
                .map_err(net_err)?
                .iter()
                .any(|a| a.network != net.name);
            let endpoint = Endpoint {
                host_ifname: veth_name(&rec.id, slot),
                container_ifname: container_ifname(slot),
                address,
                prefix_len: net.subnet.prefix_len(),
                gateway: only_network.then_some(net.gateway),
                mtu,
            };
            berth_network::attach(
                &mut nl,
                &net.bridge,
                berth_network::Netns::Pid(rec.pid as u32),
                &endpoint,
            )
            .map_err(net_err)?;
            self.refresh_hosts(&rec, &rec.config.endpoints).inspect_err(|_| {
                let _ = berth_network::detach(&mut nl, &endpoint.host_ifname);
            })
        })();
        if let Err(e) = wired {
            let _ = ipam::release(&self.conn, &net.name, &rec.id);
            let _ = record::set_config(&self.conn, &rec.id, &before);
            return Err(e);
        }
        Ok(())
    }

    /// `network disconnect`: leaves a network; a running container loses that interface.
    pub fn network_disconnect(&mut self, network: &str, container: &str) -> Result<(), Error> {
        let mut rec = self.container(container)?;
        let net = self.network(network)?;
        let mut endpoints = rec.config.endpoints.clone();
        let Some(pos) = endpoints.iter().position(|e| e.network == net.name) else {
            return Err(Error::Conflict(format!(
                "container {} is not connected to network {}",
                rec.name, net.name
            )));
        };
        let gone = endpoints.remove(pos);
        rec.config.endpoints = endpoints;
        if rec.is_running() {
            let mut nl = Netlink::open().map_err(net_err)?;
            let bridge = nl.link(&net.bridge).map_err(net_err)?.map(|l| l.index);
            let prefix = format!("veth{}", &rec.id[..10]);
            for link in nl.links().map_err(net_err)? {
                if link.name.starts_with(&prefix) && link.master.is_some() && link.master == bridge {
                    berth_network::detach(&mut nl, &link.name).map_err(net_err)?;
                }
            }
        }
        record::set_config(&self.conn, &rec.id, &rec.config)?;
        ipam::release(&self.conn, &net.name, &rec.id).map_err(net_err)?;
        // The peers on the network it left forget it; its own file loses them.
        self.refresh_hosts(&rec, std::slice::from_ref(&gone))?;
        if !rec.config.publish.is_empty() && pos == 0 {
            self.apply_firewall(None)?;
        }
        Ok(())
    }
}

/// Of a container's allocations, the address on its first network (published ports lead there).
fn primary_of(r: &Record, allocs: &[ipam::Allocation]) -> Option<Ipv4Addr> {
    let first = r.config.endpoints.first().map(|e| e.network.as_str());
    allocs
        .iter()
        .find(|a| Some(a.network.as_str()) == first)
        .or(allocs.first())
        .map(|a| a.address)
}

/// The names a container answers to: on `network`, its name, its aliases there and its hostname.
fn host_names(r: &Record, network: Option<&str>) -> Vec<String> {
    let hostname = r
        .config
        .hostname
        .clone()
        .unwrap_or_else(|| r.id[..12].to_string());
    let mut names = vec![hostname];
    if !names.contains(&r.name) {
        names.push(r.name.clone());
    }
    if let Some(n) = network {
        for e in r.config.endpoints.iter().filter(|e| e.network == n) {
            for a in &e.aliases {
                if !names.contains(a) {
                    names.push(a.clone());
                }
            }
        }
    }
    names
}

/// Replaces a file's content without replacing the file: a running container's /etc/hosts is a bind mount
/// of this very inode.
fn rewrite_in_place(path: &std::path::Path, text: &str) -> Result<(), Error> {
    use std::io::{Seek, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(format!("open {}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.set_len(text.len() as u64))
        .and_then(|_| f.rewind().map(|_| ()))
        .map_err(io_err(format!("write {}", path.display())))
}

pub(crate) fn mac_string(ip: Ipv4Addr) -> String {
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
