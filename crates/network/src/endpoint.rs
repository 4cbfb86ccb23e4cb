//! The per-network and per-container steps: a bridge with its gateway address, and a veth
//! pair whose container end is made straight inside the container's network namespace.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::netlink::{in_netns, mac_for_ip, Netlink, NetlinkError, Netns, VethSpec};

/// Makes sure the bridge `name` exists, carries `gateway` (with the subnet's prefix length)
/// and is up; creates it with `mtu` when missing. Idempotent, so a crash between steps is
/// repaired by the next call. Returns the bridge's index.
pub fn ensure_bridge(
    nl: &mut Netlink,
    name: &str,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    mtu: Option<u32>,
) -> Result<u32, NetlinkError> {
    let index = match nl.link(name)? {
        Some(link) => link.index,
        None => match nl.create_bridge(name, mtu) {
            Ok(index) => index,
            // Another berth made it between our look and our create.
            Err(e) if e.is_exists() => nl.index(name)?,
            Err(e) => return Err(e),
        },
    };
    let want = Ipv4Net::new(gateway, subnet.prefix_len()).expect("prefix of a valid subnet");
    if !nl.addresses(name)?.contains(&want) {
        match nl.add_address(name, gateway, subnet.prefix_len()) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
    }
    nl.set_up(name, true)?;
    Ok(index)
}

/// One container's interface on one network.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host end of the veth (e.g. `veth` + 8 hex of the container id + network); ≤ 15 bytes.
    pub host_ifname: String,
    /// Name inside the container (`eth0`, `eth1`, …).
    pub container_ifname: String,
    /// The container's address (from [`crate::ipam::allocate`]).
    pub address: Ipv4Addr,
    /// The network's prefix length.
    pub prefix_len: u8,
    /// Default route via this gateway (`None`: no default route, e.g. a second network).
    pub gateway: Option<Ipv4Addr>,
    /// MTU of both ends (the bridge's, normally).
    pub mtu: Option<u32>,
}

impl Endpoint {
    /// The MAC the container end gets (docker's scheme, derived from the address).
    pub fn mac(&self) -> [u8; 6] {
        mac_for_ip(self.address)
    }
}

/// Connects the container whose network namespace is `netns` to `bridge`: one netlink
/// message makes the veth pair with the container end already inside the namespace and the
/// host end enslaved and up; then, on a helper thread inside the namespace: loopback up, the
/// address, the container end up, and the default route. On failure the pair is deleted again.
pub fn attach(nl: &mut Netlink, bridge: &str, netns: Netns<'_>, ep: &Endpoint) -> Result<(), NetlinkError> {
    let master = nl.index(bridge)?;
    let spec = VethSpec {
        host: &ep.host_ifname,
        peer: &ep.container_ifname,
        mtu: ep.mtu,
        master: Some(master),
        peer_netns: Some(netns),
        peer_mac: Some(ep.mac()),
        up: true,
    };
    match nl.create_veth(&spec) {
        // The same container restarted right away: its old namespace is torn down asynchronously by the
        // kernel, and until then the old host end still holds the name. It is ours and dead: replace it.
        Err(e) if e.is_exists() => {
            detach(nl, &ep.host_ifname)?;
            nl.create_veth(&spec)?;
        }
        other => other?,
    }
    let inside = in_netns(netns, || {
        let mut inner = Netlink::open()?;
        inner.set_up("lo", true)?;
        inner.add_address(&ep.container_ifname, ep.address, ep.prefix_len)?;
        inner.set_up(&ep.container_ifname, true)?;
        if let Some(gw) = ep.gateway {
            inner.add_default_route(gw)?;
        }
        Ok(())
    });
    if let Err(e) = inside {
        let _ = nl.delete_link(&ep.host_ifname);
        return Err(e);
    }
    Ok(())
}

/// Removes a container's endpoint by deleting the host end (the kernel deletes the peer).
/// A missing link is not an error: the namespace may already be gone, taking the pair.
pub fn detach(nl: &mut Netlink, host_ifname: &str) -> Result<(), NetlinkError> {
    match nl.delete_link(host_ifname) {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}
