//! A small synchronous rtnetlink client: links, addresses and routes, no tokio and no `ip`.
//!
//! One [`Netlink`] wraps one `NETLINK_ROUTE` socket, which belongs to the network namespace
//! of the thread that opened it. To act inside another namespace, [`in_netns`] runs a closure
//! on a short-lived thread that has `setns`'d into it; that closure opens its own [`Netlink`].

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use ipnet::Ipv4Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// A failed netlink operation, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel (or the socket) refused `op`.
    #[error("netlink: {op}: {source}")]
    Io {
        /// What was being done, e.g. `create bridge "berth0"`.
        op: String,
        /// The errno the kernel answered with.
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("netlink: {op}: bad reply: {detail}")]
    Decode {
        /// What was being done.
        op: String,
        /// The decoder's complaint.
        detail: String,
    },
    /// No link has this name (in the namespace of the socket).
    #[error("netlink: no network interface named {0:?}")]
    NoSuchLink(String),
    /// A link name that the kernel would refuse (empty, over 15 bytes, `/`, whitespace).
    #[error("netlink: invalid interface name {0:?}")]
    InvalidName(String),
}

impl NetlinkError {
    /// The errno behind this error, if the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the object already existed (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// True when the object was not there (`ENODEV`, `ESRCH`, `EADDRNOTAVAIL`, or by name).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NoSuchLink(_))
            || matches!(
                self.errno(),
                Some(libc::ENODEV) | Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL)
            )
    }
}

type Result<T> = std::result::Result<T, NetlinkError>;

fn io_err(op: impl Into<String>, source: io::Error) -> NetlinkError {
    NetlinkError::Io {
        op: op.into(),
        source,
    }
}

/// A network namespace, named the two ways the engine has one.
#[derive(Debug, Clone, Copy)]
pub enum Netns<'a> {
    /// An open `/proc/PID/ns/net` (or `/run/netns/NAME`) file.
    Fd(BorrowedFd<'a>),
    /// The namespace of a live process.
    Pid(u32),
}

/// One network interface, as listed by [`Netlink::links`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MTU, when the kernel reported one.
    pub mtu: Option<u32>,
    /// `bridge`, `veth`, … (None for devices without an rtnl kind, like `lo` or most NICs).
    pub kind: Option<String>,
    /// Index of the bridge (or other controller) this link is enslaved to.
    pub master: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The interface alias (`ip link set … alias`); berth marks what it creates with it.
    pub alias: Option<String>,
}

/// One IPv4 route of the main table, as read by [`Netlink::ipv4_routes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination; `0.0.0.0/0` for a default route.
    pub destination: Ipv4Net,
    /// Next hop, if the route is not on-link.
    pub gateway: Option<Ipv4Addr>,
    /// Outgoing interface index.
    pub oif: Option<u32>,
}

/// Checks a name against the kernel's rules for interface names (`dev_valid_name`).
pub fn validate_ifname(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if bad {
        return Err(NetlinkError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// A docker-style locally administered MAC derived from an IPv4 address: `02:42:a.b.c.d`.
pub fn mac_for_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A synchronous `NETLINK_ROUTE` socket in the network namespace of the thread that opened it.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("fd", &self.socket.as_raw_fd())
            .finish()
    }
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        let op = "open NETLINK_ROUTE socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_err(op, e))?;
        socket.bind_auto().map_err(|e| io_err(op, e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| io_err(op, e))?;
        // Extended acks give the kernel's text for EINVAL and friends; best effort.
        let _ = socket.set_ext_ack(true);
        Ok(Self {
            socket,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends one request and collects the answers until the ACK (or the end of a dump).
    fn request(
        &mut self,
        op: &dyn Fn() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut out = vec![0; req.header.length as usize];
        req.serialize(&mut out);
        self.socket.send(&out, 0).map_err(|e| io_err(op(), e))?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let n = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .map_err(|e| io_err(op(), e))?;
            let mut offset = 0;
            while offset < n {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&self.buf[offset..n]).map_err(|e| NetlinkError::Decode {
                        op: op(),
                        detail: e.to_string(),
                    })?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue; // a stale answer to an earlier, abandoned request
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies),
                        Some(code) => return Err(io_err(op(), io::Error::from_raw_os_error(-code.get()))),
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn ack(&mut self, op: &dyn Fn() -> String, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
        self.request(op, msg, NLM_F_ACK | flags).map(drop)
    }

    /// Every link of this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.request(
            &|| "list links".into(),
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(&l)),
                _ => None,
            })
            .collect())
    }

    /// The links whose name starts with `prefix` (for sweeping what a crash left).
    pub fn links_with_prefix(&mut self, prefix: &str) -> Result<Vec<Link>> {
        let mut links = self.links()?;
        links.retain(|l| l.name.starts_with(prefix));
        Ok(links)
    }

    /// The link named `name`, or `None`.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(
            &|| format!("get link {name:?}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(&l)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of the link named `name`.
    pub fn index(&mut self, name: &str) -> Result<u32> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| NetlinkError::NoSuchLink(name.to_owned()))
    }

    /// Creates a bridge, down, with the given MTU (the kernel default when `None`).
    /// Returns its index. Fails with [`NetlinkError::is_exists`] when the name is taken.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.ack(
            &|| format!("create bridge {name:?}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.index(name)
    }

    /// Creates a veth pair in one message. The host end `host` is made in this namespace,
    /// enslaved to `master` (a bridge index) when given, and brought up when `up`; the peer
    /// end `peer` is made directly inside `peer_netns` when given (so it never appears on the
    /// host), with `peer_mac` as its address. The peer always starts down: the kernel
    /// configures it before the pair is linked, so asking for it up fails with `ENOTCONN`;
    /// bring it up from its own namespace.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        validate_ifname(spec.host)?;
        validate_ifname(spec.peer)?;
        let ns_attr = spec.peer_netns.map(|ns| match ns {
            Netns::Fd(fd) => LinkAttribute::NetNsFd(fd.as_raw_fd()),
            Netns::Pid(pid) => LinkAttribute::NetNsPid(pid),
        });
        let mut peer = LinkMessage::default();
        peer.attributes.push(LinkAttribute::IfName(spec.peer.to_owned()));
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(ns) = ns_attr {
            peer.attributes.push(ns);
        }
        let mut host = LinkMessage::default();
        if spec.up {
            host.header.flags = LinkFlags::Up;
            host.header.change_mask = LinkFlags::Up;
        }
        host.attributes.push(LinkAttribute::IfName(spec.host.to_owned()));
        if let Some(mtu) = spec.mtu {
            host.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = spec.master {
            host.attributes.push(LinkAttribute::Controller(master));
        }
        host.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(
            &|| format!("create veth pair {:?}/{:?}", spec.host, spec.peer),
            RouteNetlinkMessage::NewLink(host),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    fn set_link(&mut self, op: &dyn Fn() -> String, name: &str, msg: LinkMessage) -> Result<()> {
        let index = self.index(name)?;
        let mut msg = msg;
        msg.header.index = index;
        self.ack(op, RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Brings a link up or down.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        let state = if up { "up" } else { "down" };
        self.set_link(&|| format!("set {name:?} {state}"), name, msg)
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(&|| format!("set mtu of {name:?} to {mtu}"), name, msg)
    }

    /// Sets a link's alias, a free-form label the kernel keeps with it.
    pub fn set_alias(&mut self, name: &str, alias: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfAlias(alias.to_owned()));
        self.set_link(&|| format!("set alias of {name:?}"), name, msg)
    }

    /// Renames a link (it must be down).
    pub fn rename(&mut self, name: &str, new_name: &str) -> Result<()> {
        validate_ifname(new_name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(new_name.to_owned()));
        self.set_link(&|| format!("rename {name:?} to {new_name:?}"), name, msg)
    }

    /// Enslaves a link to a bridge (by the bridge's name).
    pub fn set_master(&mut self, name: &str, bridge: &str) -> Result<()> {
        let master = self.index(bridge)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link(&|| format!("attach {name:?} to bridge {bridge:?}"), name, msg)
    }

    /// Moves a link into another network namespace (it leaves this one).
    pub fn move_to_netns(&mut self, name: &str, netns: Netns<'_>) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(match netns {
            Netns::Fd(fd) => LinkAttribute::NetNsFd(fd.as_raw_fd()),
            Netns::Pid(pid) => LinkAttribute::NetNsPid(pid),
        });
        self.set_link(&|| format!("move {name:?} to another netns"), name, msg)
    }

    /// Deletes a link (for a veth, both ends go).
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let index = self.index(name)?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.ack(
            &|| format!("delete link {name:?}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        )
    }

    fn address_message(&mut self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<AddressMessage> {
        let index = self.index(name)?;
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.scope = AddressScope::Universe;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
        msg.attributes.push(AddressAttribute::Address(IpAddr::V4(addr)));
        if prefix_len < 31 {
            let net = Ipv4Net::new(addr, prefix_len).expect("prefix length checked by caller");
            msg.attributes.push(AddressAttribute::Broadcast(net.broadcast()));
        }
        Ok(msg)
    }

    /// Adds `addr/prefix_len` to a link (with its broadcast address, like `ip addr add … brd +`).
    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        check_prefix(prefix_len)?;
        let msg = self.address_message(name, addr, prefix_len)?;
        self.ack(
            &|| format!("add address {addr}/{prefix_len} to {name:?}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Removes `addr/prefix_len` from a link.
    pub fn del_address(&mut self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        check_prefix(prefix_len)?;
        let msg = self.address_message(name, addr, prefix_len)?;
        self.ack(
            &|| format!("remove address {addr}/{prefix_len} from {name:?}"),
            RouteNetlinkMessage::DelAddress(msg),
            0,
        )
    }

    /// The IPv4 addresses of a link, with their prefix lengths.
    pub fn addresses(&mut self, name: &str) -> Result<Vec<Ipv4Net>> {
        let index = self.index(name)?;
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(
            &|| format!("list addresses of {name:?}"),
            RouteNetlinkMessage::GetAddress(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            for attr in &a.attributes {
                if let AddressAttribute::Local(IpAddr::V4(ip)) = attr {
                    if let Ok(net) = Ipv4Net::new(*ip, a.header.prefix_len) {
                        out.push(net);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds a default route via `gateway` in the main table (`ip route add default via …`).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = 0;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.ack(
            &|| format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// The IPv4 unicast routes of the main table (to refuse subnets that collide with them).
    pub fn ipv4_routes(&mut self) -> Result<Vec<Route>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self.request(
            &|| "list routes".into(),
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            if r.header.address_family != AddressFamily::Inet || r.header.kind != RouteType::Unicast {
                continue;
            }
            let mut table = u32::from(r.header.table);
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut gateway = None;
            let mut oif = None;
            for attr in &r.attributes {
                match attr {
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
                    RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some(*a),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Table(t) => table = *t,
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            if let Ok(destination) = Ipv4Net::new(dst, r.header.destination_prefix_length) {
                out.push(Route {
                    destination,
                    gateway,
                    oif,
                });
            }
        }
        Ok(out)
    }
}

fn check_prefix(prefix_len: u8) -> Result<()> {
    if prefix_len > 32 {
        return Err(io_err(
            format!("prefix length /{prefix_len}"),
            io::Error::from_raw_os_error(libc::EINVAL),
        ));
    }
    Ok(())
}

fn link_from_message(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        mtu: None,
        kind: None,
        master: None,
        up: l.header.flags.contains(LinkFlags::Up),
        alias: None,
    };
    for attr in &l.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(m) => link.mtu = Some(*m),
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// What [`Netlink::create_veth`] makes.
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    /// Name of the end that stays in this namespace.
    pub host: &'a str,
    /// Name of the other end (e.g. `eth0` when it is made straight into a container).
    pub peer: &'a str,
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// Bridge index the host end is enslaved to.
    pub master: Option<u32>,
    /// Namespace the peer end is created in (this one when `None`).
    pub peer_netns: Option<Netns<'a>>,
    /// MAC address of the peer end (random when `None`).
    pub peer_mac: Option<[u8; 6]>,
    /// Bring the host end up at creation (the peer always starts down).
    pub up: bool,
}

/// Runs `f` on a short-lived thread that has joined the network namespace `netns`, and
/// returns what it returned. The calling thread's namespace is never touched; the helper
/// thread exits right after, so its namespace cannot leak into other work. `f` opens its own
/// [`Netlink`] if it needs one (a socket lives in the namespace it was opened in).
pub fn in_netns<T, F>(netns: Netns<'_>, f: F) -> std::result::Result<T, NetlinkError>
where
    F: FnOnce() -> std::result::Result<T, NetlinkError> + Send,
    T: Send,
{
    let owned;
    let fd: BorrowedFd<'_> = match netns {
        Netns::Fd(fd) => fd,
        Netns::Pid(pid) => {
            let path = format!("/proc/{pid}/ns/net");
            owned = File::open(&path).map_err(|e| io_err(format!("open {path}"), e))?;
            owned.as_fd()
        }
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io_err("enter network namespace", io::Error::from(e)))?;
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
