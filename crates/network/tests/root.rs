//! Root tests against the real kernel: bridges, veth pairs into namespaces the test makes,
//! addresses from IPAM, the berth nft table, masquerade proven against an "outside"
//! namespace, published ports (TCP and UDP, 127.0.0.1, from outside, hairpin) and
//! `--internal`. Skipped (with a note) when not root.
//!
//! Traffic only ever goes to addresses these tests create, or to loopback. Every link,
//! namespace and nft table is owned by a guard that removes it on drop, pass or fail.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_network::ipam::{self, NetworkSpec};
use berth_network::netlink::{in_netns, Netlink, NetlinkError, Netns, VethSpec};
use berth_network::nft::{self, NetworkRules, PortMapping, Protocol, Ruleset};
use berth_network::{attach, detach, ensure_bridge, Endpoint};
use ipnet::Ipv4Net;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    u32::from_le_bytes(b)
}

/// `prefix` + random hex, at most 15 bytes (the kernel's limit for interface names).
fn unique(prefix: &str) -> String {
    let s = format!("{prefix}{:08x}", rand_u32());
    s[..s.len().min(15)].to_owned()
}

fn io_to_nl(op: &str) -> impl Fn(io::Error) -> NetlinkError + '_ {
    move |source| NetlinkError::Io {
        op: op.to_owned(),
        source,
    }
}

// ---------------------------------------------------------------- guards

/// A network namespace made with `ip netns add` (test setup only), deleted on drop.
struct NetnsGuard {
    name: String,
    file: File,
}

impl NetnsGuard {
    fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        let st = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(st.success(), "ip netns add {name}");
        let file = File::open(format!("/run/netns/{name}")).unwrap();
        NetnsGuard { name, file }
    }

    fn ns(&self) -> Netns<'_> {
        Netns::Fd(self.file.as_fd())
    }

    /// Runs `f` inside the namespace on a helper thread, in the background.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, NetlinkError> + Send + 'static,
    ) -> JoinHandle<Result<T, NetlinkError>> {
        let file = self.file.try_clone().unwrap();
        std::thread::spawn(move || in_netns(Netns::Fd(file.as_fd()), f))
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A host link deleted on drop (a veth takes its peer with it).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Ok(mut nl) = Netlink::open() {
            let _ = detach(&mut nl, &self.0);
        }
    }
}

/// The berth nft table of one test, deleted on drop.
struct TableGuard(String);

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = nft::delete_table(&self.0);
    }
}

/// `net.ipv4.ip_forward=1` while any test holds one; the old value comes back after the last.
struct ForwardGuard;

static FORWARD: Mutex<(usize, Option<String>)> = Mutex::new((0, None));
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

impl ForwardGuard {
    fn new() -> Self {
        let mut st = FORWARD.lock().unwrap();
        if st.0 == 0 {
            st.1 = Some(std::fs::read_to_string(IP_FORWARD).unwrap());
            nft::enable_ip_forward().unwrap();
        }
        st.0 += 1;
        ForwardGuard
    }
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        let mut st = FORWARD.lock().unwrap_or_else(|p| p.into_inner());
        st.0 -= 1;
        if st.0 == 0 {
            if let Some(old) = st.1.take() {
                let _ = std::fs::write(IP_FORWARD, old.trim());
            }
        }
    }
}

// ---------------------------------------------------------------- helpers

/// A random /24 in 10.200.0.0/13 that collides with no host route (read over netlink).
fn free_subnet(nl: &mut Netlink, avoid: &[Ipv4Net]) -> Ipv4Net {
    let routes: Vec<Ipv4Net> = nl
        .ipv4_routes()
        .unwrap()
        .into_iter()
        .map(|r| r.destination)
        .collect();
    loop {
        let r = rand_u32();
        let net = Ipv4Net::new(Ipv4Addr::new(10, 200 + (r % 8) as u8, (r >> 8) as u8, 0), 24).unwrap();
        if berth_network::subnet::colliding_route(net, &routes).is_none()
            && !avoid.iter().any(|a| berth_network::subnet::overlaps(*a, net))
        {
            return net;
        }
    }
}

fn test_db() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("berth.db")).unwrap();
    ipam::migrate(&conn).unwrap();
    (dir, conn)
}

fn spec(name: &str, subnet: Ipv4Net, bridge: &str, internal: bool) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        id: format!("{:0>64}", name),
        driver: "bridge".into(),
        subnet: Some(subnet),
        internal,
        bridge: bridge.into(),
        created: "2026-01-01T00:00:00Z".into(),
        ..Default::default()
    }
}

fn ping(from: &NetnsGuard, to: Ipv4Addr) -> bool {
    ping_wait(from, to, 2)
}

fn ping_wait(from: &NetnsGuard, to: Ipv4Addr, secs: u32) -> bool {
    let out = from.exec(&[
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        &secs.to_string(),
        &to.to_string(),
    ]);
    out.status.success()
}

/// A one-shot UDP receiver inside `ns`: returns the source address of the first datagram,
/// or `None` after `wait`.
fn udp_receiver(
    ns: &NetnsGuard,
    bind: SocketAddrV4,
    wait: Duration,
) -> JoinHandle<Result<Option<SocketAddr>, NetlinkError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = ns.spawn(move || {
        let sock = UdpSocket::bind(bind).map_err(io_to_nl("bind udp"))?;
        sock.set_read_timeout(Some(wait)).map_err(io_to_nl("timeout"))?;
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        match sock.recv_from(&mut buf) {
            Ok((_, from)) => Ok(Some(from)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(io_to_nl("recv udp")(e)),
        }
    });
    rx.recv().unwrap();
    h
}

/// Sends one UDP datagram from inside `ns` (or from the host when `ns` is None), a few times
/// (the first may race ARP), to `to`.
fn udp_send(ns: Option<&NetnsGuard>, to: SocketAddrV4) {
    let send = move || -> Result<(), NetlinkError> {
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(io_to_nl("bind"))?;
        for _ in 0..3 {
            sock.send_to(b"hi", to).map_err(io_to_nl("send"))?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    };
    match ns {
        Some(ns) => ns.spawn(send).join().unwrap().unwrap(),
        None => send().unwrap(),
    }
}

/// A TCP server in `ns` that answers each of `n` connections with the peer address it saw.
fn tcp_server(ns: &NetnsGuard, bind: SocketAddrV4, n: usize) -> JoinHandle<Result<(), NetlinkError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = ns.spawn(move || {
        let l = TcpListener::bind(bind).map_err(io_to_nl("bind tcp"))?;
        tx.send(()).unwrap();
        for _ in 0..n {
            let (mut s, peer) = l.accept().map_err(io_to_nl("accept"))?;
            let _ = s.write_all(peer.ip().to_string().as_bytes());
        }
        Ok(())
    });
    rx.recv().unwrap();
    h
}

/// Connects to `to` (from `ns`, or the host) and returns what the server said: the address
/// it saw us as.
fn tcp_peer_seen(ns: Option<&NetnsGuard>, to: SocketAddrV4) -> String {
    let get = move || -> Result<String, NetlinkError> {
        let mut s =
            TcpStream::connect_timeout(&to.into(), Duration::from_secs(3)).map_err(io_to_nl("connect"))?;
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(io_to_nl("read"))?;
        Ok(out)
    };
    match ns {
        Some(ns) => ns.spawn(get).join().unwrap().unwrap(),
        None => get().unwrap(),
    }
}

/// One bridge network with its containers (namespaces), made through the library.
struct TestNet {
    name: String,
    bridge: String,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    internal: bool,
    containers: Vec<(NetnsGuard, Ipv4Addr)>,
    _links: Vec<LinkGuard>,
}

fn make_net(
    nl: &mut Netlink,
    conn: &rusqlite::Connection,
    subnet: Ipv4Net,
    internal: bool,
    n: usize,
) -> TestNet {
    let bridge = unique("bt");
    let name = bridge.clone();
    // The guard comes first: whatever fails below, the bridge goes.
    let mut links = vec![LinkGuard(bridge.clone())];
    let net = ipam::create_network(conn, &spec(&name, subnet, &bridge, internal), &[]).unwrap();
    let t = Instant::now();
    ensure_bridge(nl, &bridge, net.subnet, net.gateway, Some(1500)).unwrap();
    let bridge_ms = t.elapsed().as_secs_f64() * 1e3;
    nft::set_route_localnet(&bridge).unwrap();
    let mut containers = Vec::new();
    for i in 0..n {
        let ns = NetnsGuard::new("btns");
        let id = format!("{name}-c{i}");
        let addr = ipam::allocate(conn, &name, &id, None).unwrap();
        let host_if = unique("btv");
        links.push(LinkGuard(host_if.clone()));
        let ep = Endpoint {
            host_ifname: host_if,
            container_ifname: "eth0".into(),
            address: addr,
            prefix_len: net.subnet.prefix_len(),
            gateway: Some(net.gateway),
            mtu: Some(1500),
        };
        let t = Instant::now();
        attach(nl, &bridge, ns.ns(), &ep).unwrap();
        eprintln!(
            "timing: bridge {bridge_ms:.2} ms, attach (veth into netns + addr + route) {:.2} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        containers.push((ns, addr));
    }
    TestNet {
        name,
        bridge,
        subnet: net.subnet,
        gateway: net.gateway,
        internal,
        containers,
        _links: links,
    }
}

/// An "outside" namespace linked to the host by a veth /30: it plays the internet. It has
/// no route back to any container subnet, so it can only answer the host-side address.
struct Outside {
    ns: NetnsGuard,
    host_addr: Ipv4Addr,
    addr: Ipv4Addr,
    _link: LinkGuard,
}

fn make_outside(nl: &mut Netlink, net: Ipv4Net) -> Outside {
    let ns = NetnsGuard::new("btout");
    let host_if = unique("bto");
    let link = LinkGuard(host_if.clone());
    let base = u32::from(net.network());
    let (host_addr, addr) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
    nl.create_veth(&VethSpec {
        host: &host_if,
        peer: "eth0",
        mtu: None,
        master: None,
        peer_netns: Some(ns.ns()),
        peer_mac: None,
        up: true,
    })
    .unwrap();
    nl.add_address(&host_if, host_addr, 30).unwrap();
    in_netns(ns.ns(), || {
        let mut inner = Netlink::open()?;
        inner.set_up("lo", true)?;
        inner.add_address("eth0", addr, 30)?;
        inner.set_up("eth0", true)
    })
    .unwrap();
    Outside {
        ns,
        host_addr,
        addr,
        _link: link,
    }
}

fn rules(table: &str, nets: &[&TestNet], ports: Vec<PortMapping>) -> Ruleset {
    Ruleset {
        table: table.into(),
        networks: nets
            .iter()
            .map(|n| NetworkRules {
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                internal: n.internal,
            })
            .collect(),
        ports,
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn netlink_basics_rename_mtu_updown_addresses_and_listing() {
    if !is_root() {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let a = unique("bta");
    let b = unique("btb");
    let _ga = LinkGuard(a.clone());
    let _gb = LinkGuard(b.clone());
    nl.create_veth(&VethSpec {
        host: &a,
        peer: &b,
        mtu: Some(1400),
        master: None,
        peer_netns: None,
        peer_mac: None,
        up: false,
    })
    .unwrap();
    let la = nl.link(&a).unwrap().unwrap();
    assert_eq!(la.mtu, Some(1400));
    assert_eq!(la.kind.as_deref(), Some("veth"));
    assert!(!la.up);
    nl.set_mtu(&a, 1300).unwrap();
    nl.set_up(&a, true).unwrap();
    let la = nl.link(&a).unwrap().unwrap();
    assert_eq!((la.mtu, la.up), (Some(1300), true));
    nl.set_up(&a, false).unwrap();
    assert!(!nl.link(&a).unwrap().unwrap().up);

    // rename (down) keeps the index
    let renamed = unique("btr");
    let _gr = LinkGuard(renamed.clone());
    nl.rename(&b, &renamed).unwrap();
    assert!(nl.link(&b).unwrap().is_none());
    let lr = nl.link(&renamed).unwrap().unwrap();

    let ip: Ipv4Addr = "10.255.254.1".parse().unwrap();
    nl.add_address(&a, ip, 30).unwrap();
    assert!(nl.add_address(&a, ip, 30).unwrap_err().is_exists());
    assert_eq!(nl.addresses(&a).unwrap(), vec![Ipv4Net::new(ip, 30).unwrap()]);
    nl.del_address(&a, ip, 30).unwrap();
    assert!(nl.addresses(&a).unwrap().is_empty());

    let listed = nl.links_with_prefix("bt").unwrap();
    assert!(listed.iter().any(|l| l.name == a));
    assert!(listed.iter().any(|l| l.name == renamed && l.index == lr.index));
    assert!(listed.iter().all(|l| l.name.starts_with("bt")));

    // routes are readable; the default route, if any, has prefix 0
    let routes = nl.ipv4_routes().unwrap();
    assert!(routes.iter().all(|r| r.destination.prefix_len() <= 32));

    // bridge with MTU, enslave, move into a netns, delete
    let br = unique("btbr");
    let _gbr = LinkGuard(br.clone());
    let idx = nl.create_bridge(&br, Some(1450)).unwrap();
    assert!(nl.create_bridge(&br, None).unwrap_err().is_exists());
    let lb = nl.link(&br).unwrap().unwrap();
    assert_eq!(
        (lb.index, lb.mtu, lb.kind.as_deref()),
        (idx, Some(1450), Some("bridge"))
    );
    nl.set_master(&a, &br).unwrap();
    assert_eq!(nl.link(&a).unwrap().unwrap().master, Some(idx));

    let ns = NetnsGuard::new("btns");
    nl.move_to_netns(&renamed, ns.ns()).unwrap();
    assert!(nl.link(&renamed).unwrap().is_none());
    let inside = in_netns(ns.ns(), {
        let renamed = renamed.clone();
        move || Netlink::open()?.link(&renamed)
    })
    .unwrap();
    assert!(inside.is_some(), "moved link is inside the namespace");

    nl.delete_link(&br).unwrap();
    assert!(nl.link(&br).unwrap().is_none());
    assert!(nl.delete_link(&br).unwrap_err().is_not_found());
    nl.delete_link(&a).unwrap();
    assert!(nl.link(&a).unwrap().is_none());
    assert!(nl.set_up("bt-nonexistent", true).unwrap_err().is_not_found());
    assert!(nl.create_bridge("this-name-is-too-long", None).is_err());
}

#[test]
fn move_by_pid_and_netns_of_a_process() {
    if !is_root() {
        return;
    }
    // A child in its own network namespace, as the engine's container init will be.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(
        Command::new("unshare")
            .args(["--net", "sleep", "30"])
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    // Wait until unshare has exec'd sleep in the new namespace.
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_ref() == Some(&host_ns) {
        assert!(Instant::now() < deadline, "child never unshared");
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut nl = Netlink::open().unwrap();
    let a = unique("btp");
    let b = unique("btq");
    let _ga = LinkGuard(a.clone());
    nl.create_veth(&VethSpec {
        host: &a,
        peer: &b,
        mtu: None,
        master: None,
        peer_netns: None,
        peer_mac: None,
        up: false,
    })
    .unwrap();
    nl.move_to_netns(&b, Netns::Pid(pid)).unwrap();
    assert!(nl.link(&b).unwrap().is_none());
    let b2 = b.clone();
    let inside = in_netns(Netns::Pid(pid), move || {
        let mut inner = Netlink::open()?;
        inner.rename(&b2, "eth0")?;
        inner.set_up("eth0", true)?;
        inner.link("eth0")
    })
    .unwrap()
    .unwrap();
    assert!(inside.up);
}

#[test]
fn containers_on_a_bridge_talk_and_go_out_masqueraded() {
    if !is_root() {
        return;
    }
    let _fwd = ForwardGuard::new();
    let mut nl = Netlink::open().unwrap();
    let (_dir, conn) = test_db();
    let sub = free_subnet(&mut nl, &[]);
    let isub = free_subnet(&mut nl, &[sub]);
    let osub = Ipv4Net::new(free_subnet(&mut nl, &[sub, isub]).network(), 30).unwrap();

    let table = unique("berth-t");
    let _tg = TableGuard(table.clone());
    let net = make_net(&mut nl, &conn, sub, false, 2);
    let inet = make_net(&mut nl, &conn, isub, true, 1);
    let out = make_outside(&mut nl, osub);
    let t = Instant::now();
    nft::apply(&rules(&table, &[&net, &inet], vec![])).unwrap();
    eprintln!("timing: nft apply {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    assert!(nft::table_exists(&table).unwrap());

    let (c1, a1) = (&net.containers[0].0, net.containers[0].1);
    let (c2, a2) = (&net.containers[1].0, net.containers[1].1);
    assert_eq!(
        a1,
        Ipv4Addr::from(u32::from(sub.network()) + 2),
        "lowest free after gateway"
    );
    assert_eq!(a2, Ipv4Addr::from(u32::from(sub.network()) + 3));

    // container ↔ container over the bridge, and container → gateway
    assert!(ping(c1, a2), "c1 → c2");
    assert!(ping(c2, a1), "c2 → c1");
    assert!(ping(c1, net.gateway), "c1 → gateway");
    let eth0 = c1.exec(&["busybox", "ip", "-4", "addr", "show", "eth0"]);
    let text = String::from_utf8_lossy(&eth0.stdout);
    assert!(text.contains(&format!("{a1}/24")), "{text}");
    let o = a1.octets();
    let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    let link = c1.exec(&["busybox", "ip", "link", "show", "eth0"]);
    assert!(String::from_utf8_lossy(&link.stdout).contains(&mac));

    // outbound: the outside sees the host side of its link, not the container
    let rx = udp_receiver(&out.ns, SocketAddrV4::new(out.addr, 9999), Duration::from_secs(3));
    udp_send(Some(c1), SocketAddrV4::new(out.addr, 9999));
    let seen = rx
        .join()
        .unwrap()
        .unwrap()
        .expect("outside received the datagram");
    assert_eq!(
        seen.ip(),
        std::net::IpAddr::V4(out.host_addr),
        "masqueraded to the host side"
    );

    // internal network: nothing leaves
    let (ci, _) = &inet.containers[0];
    let rx = udp_receiver(
        &out.ns,
        SocketAddrV4::new(out.addr, 9998),
        Duration::from_millis(800),
    );
    udp_send(Some(ci), SocketAddrV4::new(out.addr, 9998));
    assert_eq!(
        rx.join().unwrap().unwrap(),
        None,
        "internal network reached the outside"
    );
    assert!(
        ping(ci, inet.gateway),
        "internal containers still reach their gateway"
    );
    // and networks are isolated from each other
    assert!(!ping_wait(ci, a1, 1), "internal → other network");

    // cleanup through the library leaves nothing
    nft::delete_table(&table).unwrap();
    assert!(!nft::table_exists(&table).unwrap());
    for n in [&net, &inet] {
        for (i, _) in n.containers.iter().enumerate() {
            ipam::release(&conn, &n.name, &format!("{}-c{i}", n.name)).unwrap();
        }
        ipam::remove_network(&conn, &n.name).unwrap();
    }
    let (links, namespaces) = owned_names(&[&net, &inet], Some(&out));
    drop(net);
    drop(inet);
    drop(out);
    assert_all_gone(&mut nl, &links, &namespaces);
}

/// The links and namespaces these networks (and outside) own, to check they are gone later.
fn owned_names(nets: &[&TestNet], out: Option<&Outside>) -> (Vec<String>, Vec<String>) {
    let mut links = Vec::new();
    let mut namespaces = Vec::new();
    for n in nets {
        links.extend(n._links.iter().map(|l| l.0.clone()));
        namespaces.extend(n.containers.iter().map(|c| c.0.name.clone()));
    }
    if let Some(o) = out {
        links.push(o._link.0.clone());
        namespaces.push(o.ns.name.clone());
    }
    (links, namespaces)
}

fn assert_all_gone(nl: &mut Netlink, links: &[String], namespaces: &[String]) {
    assert!(!links.is_empty() && !namespaces.is_empty());
    for l in links {
        assert!(nl.link(l).unwrap().is_none(), "link {l} survived");
    }
    for ns in namespaces {
        assert!(
            !std::path::Path::new(&format!("/run/netns/{ns}")).exists(),
            "netns {ns} survived"
        );
    }
}

#[test]
fn guards_clean_up_when_a_test_fails() {
    if !is_root() {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let sub = free_subnet(&mut nl, &[]);
    let table = unique("berth-f");
    let made = std::sync::Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let made2 = made.clone();
    let table2 = table.clone();
    let result = std::panic::catch_unwind(move || {
        let _tg = TableGuard(table2.clone());
        let mut nl = Netlink::open().unwrap();
        let (_dir, conn) = test_db();
        let net = make_net(&mut nl, &conn, sub, false, 2);
        nft::apply(&rules(&table2, &[&net], vec![])).unwrap();
        *made2.lock().unwrap() = owned_names(&[&net], None);
        panic!("deliberate failure with everything set up");
    });
    assert!(result.is_err());
    let (links, namespaces) = made.lock().unwrap().clone();
    assert_eq!(links.len(), 3, "bridge and two veths");
    assert_all_gone(&mut nl, &links, &namespaces);
    assert!(!nft::table_exists(&table).unwrap());
}

#[test]
fn published_ports_answer_on_loopback_from_outside_and_hairpin() {
    if !is_root() {
        return;
    }
    let _fwd = ForwardGuard::new();
    let mut nl = Netlink::open().unwrap();
    let (_dir, conn) = test_db();
    let sub = free_subnet(&mut nl, &[]);
    let osub = Ipv4Net::new(free_subnet(&mut nl, &[sub]).network(), 30).unwrap();
    let table = unique("berth-p");
    let _tg = TableGuard(table.clone());
    let net = make_net(&mut nl, &conn, sub, false, 2);
    let out = make_outside(&mut nl, osub);
    let (c1, _a1) = (&net.containers[0].0, net.containers[0].1);
    let (c2, a2) = (&net.containers[1].0, net.containers[1].1);

    let tport = 20000 + (rand_u32() % 20000) as u16;
    let lport = tport + 1;
    let uport = tport + 2;
    let ports = vec![
        PortMapping {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port: tport,
            container_ip: a2,
            container_port: 80,
        },
        PortMapping {
            protocol: Protocol::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: lport,
            container_ip: a2,
            container_port: 80,
        },
        PortMapping {
            protocol: Protocol::Udp,
            host_ip: None,
            host_port: uport,
            container_ip: a2,
            container_port: 53,
        },
    ];
    nft::apply(&rules(&table, &[&net], ports)).unwrap();
    let listed = nft::list_table(&table).unwrap();
    assert!(
        listed.contains(&format!("tcp dport {tport} dnat to {a2}:80")),
        "{listed}"
    );

    let server = tcp_server(c2, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), 5);
    // From the host, on 127.0.0.1, through both the any-address and the 127.0.0.1 mapping:
    // route_localnet + masquerade make the container see the gateway.
    let gw = net.gateway.to_string();
    assert_eq!(
        tcp_peer_seen(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, tport)),
        gw
    );
    assert_eq!(
        tcp_peer_seen(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, lport)),
        gw
    );
    // From the host on another of its addresses: the source was picked before DNAT (that
    // address itself), and the container can answer it through its gateway, so no masquerade.
    assert_eq!(
        tcp_peer_seen(None, SocketAddrV4::new(out.host_addr, tport)),
        out.host_addr.to_string()
    );
    // From the outside: DNAT only, the container sees the real client.
    assert_eq!(
        tcp_peer_seen(Some(&out.ns), SocketAddrV4::new(out.host_addr, tport)),
        out.addr.to_string()
    );
    // Hairpin: another container of the network, through a host address.
    assert_eq!(
        tcp_peer_seen(Some(c1), SocketAddrV4::new(out.host_addr, tport)),
        gw
    );
    server.join().unwrap().unwrap();
    // The 127.0.0.1-only mapping does not answer on other addresses.
    let refused = out.ns.spawn(move || {
        Ok(TcpStream::connect_timeout(
            &SocketAddrV4::new(out.host_addr, lport).into(),
            Duration::from_millis(500),
        )
        .is_err())
    });
    assert!(refused.join().unwrap().unwrap());

    // UDP, from the outside and from 127.0.0.1.
    let rx = udp_receiver(
        c2,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53),
        Duration::from_secs(3),
    );
    udp_send(Some(&out.ns), SocketAddrV4::new(out.host_addr, uport));
    let seen = rx.join().unwrap().unwrap().expect("udp via published port");
    assert_eq!(seen.ip(), std::net::IpAddr::V4(out.addr));
    let rx = udp_receiver(
        c2,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53),
        Duration::from_secs(3),
    );
    udp_send(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, uport));
    let seen = rx.join().unwrap().unwrap().expect("udp via 127.0.0.1");
    assert_eq!(seen.ip(), std::net::IpAddr::V4(net.gateway));

    // Re-applying without the ports removes them atomically.
    nft::apply(&rules(&table, &[&net], vec![])).unwrap();
    assert!(!nft::list_table(&table).unwrap().contains("dnat to"));
}

#[test]
fn attach_failure_leaves_no_veth_and_detach_is_idempotent() {
    if !is_root() {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let br = unique("btbr");
    let _g = LinkGuard(br.clone());
    let sub: Ipv4Net = "10.255.253.0/24".parse().unwrap();
    ensure_bridge(&mut nl, &br, sub, "10.255.253.1".parse().unwrap(), None).unwrap();
    // idempotent
    ensure_bridge(&mut nl, &br, sub, "10.255.253.1".parse().unwrap(), None).unwrap();
    assert_eq!(nl.addresses(&br).unwrap().len(), 1);
    let ns = NetnsGuard::new("btns");
    let host_if = unique("btv");
    let _gv = LinkGuard(host_if.clone());
    let ep = Endpoint {
        host_ifname: host_if.clone(),
        container_ifname: "eth0".into(),
        address: "10.255.253.2".parse().unwrap(),
        prefix_len: 24,
        // A gateway outside the subnet: the route add fails inside the namespace.
        gateway: Some("10.9.9.9".parse().unwrap()),
        mtu: None,
    };
    let err = attach(&mut nl, &br, ns.ns(), &ep).unwrap_err();
    assert!(err.to_string().contains("default route"), "{err}");
    assert!(
        nl.link(&host_if).unwrap().is_none(),
        "failed attach left its veth"
    );
    detach(&mut nl, &host_if).unwrap();
    let gone = ns.exec(&["busybox", "ip", "link", "show", "eth0"]);
    assert!(!gone.status.success(), "peer went with the host end");
}

/// Applying rules in-process leaves no nf_tables socket open here and no child behind (the final
/// close is handed to a short-lived grandchild).
#[test]
fn applying_rules_leaves_no_socket_or_child_behind() {
    if !is_root() {
        return;
    }
    let table = unique("berth-s");
    let _tg = TableGuard(table.clone());
    nft::apply(&rules(&table, &[], vec![])).unwrap();
    assert!(nft::table_exists(&table).unwrap());
    let sockets_before = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count();
    // Other tests of this binary may hold rtnetlink sockets; none may be ours after apply: compare with
    // the socket count around one more apply.
    nft::apply(&rules(&table, &[], vec![])).unwrap();
    let after = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count();
    assert!(
        after <= sockets_before,
        "apply leaked a socket ({sockets_before} → {after})"
    );
    // Children of every thread (the test runs on one of libtest's).
    let children: String = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("children")).ok())
        .collect();
    assert!(children.trim().is_empty(), "children left: {children}");
    nft::delete_table(&table).unwrap();
    assert!(!nft::table_exists(&table).unwrap());
}
