//! Networking beyond two containers on one bridge: the default network, UDP publishing, random and
//! image-exposed ports, outbound NAT seen from an "outside" namespace the test creates, `--internal`,
//! `network connect/disconnect` with aliases and fixed addresses, host mode, and the crash sweep.
//! Traffic only goes to loopback, to containers these tests start, and to the namespace made here.

mod common;

use common::{http_get, unique, wait_until, Env};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

fn sh_ok(cmd: &str) {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sh -c` inside a container that fails after 3 s instead of hanging (wget must not be PID 1, which
/// ignores timeout's SIGTERM).
fn within_3s(cmd: &str) -> String {
    format!("timeout 3 {cmd}; exit $?")
}

#[test]
fn default_network_gives_an_address_and_twenty_concurrent_runs_never_share_one() {
    let env = Env::new();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let cmd = env.command(&["run", "-d", "--name", &format!("c{i}"), "busybox", "sleep", "60"]);
            std::thread::spawn(move || common::run_cmd(cmd, None, Duration::from_secs(90)))
        })
        .collect();
    for h in handles {
        h.join().unwrap().success();
    }
    let mut ips: Vec<String> = (0..20)
        .map(|i| env.inspect(&format!("c{i}"), "{{.NetworkSettings.Networks.bridge.IPAddress}}"))
        .collect();
    assert!(ips.iter().all(|ip| !ip.is_empty()), "{ips:?}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    assert_eq!(
        env.ok(&["ps", "--filter", "name=c0", "--format", "{{.Networks}}"]),
        "bridge"
    );
    // The container's own address and the gateway route.
    let ip = env.inspect("c0", "{{.NetworkSettings.IPAddress}}");
    let gw = env.inspect("c0", "{{.NetworkSettings.Gateway}}");
    let route = env.ok(&["exec", "c0", "ip", "route"]);
    assert!(route.contains(&format!("default via {gw}")), "{route}");
    let hosts = env.ok(&["exec", "c0", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t")), "{hosts}");
    // The veth has the MTU of the host's uplink (the interface of its default route), when there is one.
    let default = String::from_utf8_lossy(&sh("ip -4 route show default").stdout).into_owned();
    if let Some(dev) = default.split_whitespace().skip_while(|w| *w != "dev").nth(1) {
        let host_mtu = std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu")).unwrap();
        assert_eq!(
            env.ok(&["exec", "c0", "cat", "/sys/class/net/eth0/mtu"]),
            host_mtu.trim()
        );
    }
    // A peer on the default network is reachable by address.
    let other = env.inspect("c1", "{{.NetworkSettings.IPAddress}}");
    env.ok(&["exec", "c0", "ping", "-c", "1", "-W", "2", &other]);
    // Stopping releases the address; the next container may have it.
    env.ok(&["stop", "-t", "0", "c1"]);
    assert_eq!(env.inspect("c1", "{{.NetworkSettings.IPAddress}}"), "");
    let json = env.ok(&["network", "inspect", "-f", "{{json .Containers}}", "bridge"]);
    assert!(
        !json.contains(&format!("\"{other}/")),
        "{other} still allocated: {json}"
    );
}

#[test]
fn udp_ports_are_published() {
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: no /usr/bin/python3 to serve UDP from");
        return;
    }
    let env = Env::new();
    let port = 30000 + (std::process::id() % 20000) as u16;
    // busybox has no UDP server: borrow the host's python (read-only) as an echo service.
    env.run_d(&[
        "--name",
        "echo",
        "-p",
        &format!("127.0.0.1:{port}:5353/udp"),
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "busybox",
        "/usr/bin/python3",
        "-c",
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',5353))\n\
         while True:\n  d,a=s.recvfrom(100)\n  s.sendto(b'echo '+d,a)",
    ]);
    assert_eq!(env.ok(&["port", "echo"]), format!("5353/udp -> 127.0.0.1:{port}"));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut got = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let _ = sock.send_to(b"ping", ("127.0.0.1", port));
            let mut buf = [0u8; 64];
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    got = String::from_utf8_lossy(&buf[..n]).into_owned();
                    true
                }
                Err(_) => false,
            }
        }),
        "no UDP answer through the published port"
    );
    assert_eq!(got, "echo ping");
}

#[test]
fn random_host_ports_and_publish_all() {
    let env = Env::new();
    // An image that exposes 80, as a Dockerfile's EXPOSE would.
    env.ok(&["create", "--name", "base", "busybox", "true"]);
    env.ok(&["commit", "--change", "EXPOSE 80/tcp", "base", "webimg"]);
    env.run_d(&[
        "--name", "all", "-P", "webimg", "httpd", "-f", "-p", "80", "-h", "/var/www",
    ]);
    let mapping = env.ok(&["port", "all", "80"]);
    let port: u16 = mapping
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .unwrap_or_else(|| panic!("{mapping}"))
        .parse()
        .unwrap();
    let url = format!("127.0.0.1:{port}");
    let mut body = None;
    assert!(wait_until(Duration::from_secs(5), || {
        body = http_get(&url);
        body.is_some()
    }));
    assert_eq!(body.unwrap(), "hello from berth");
    // `-p 80` picks a free host port too, a different one.
    env.run_d(&["--name", "one", "-p", "80", "busybox", "sleep", "60"]);
    let other = env.ok(&["port", "one"]);
    assert!(other.starts_with("80/tcp -> 0.0.0.0:"), "{other}");
    assert_ne!(other, mapping);
    // A host port someone else publishes is refused, and the container stays created.
    env.berth(&[
        "run",
        "-d",
        "--name",
        "dup",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ])
    .code(125)
    .stderr_has("port is already allocated");
    assert_eq!(env.status("dup"), "created");
    env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "80:80",
        "busybox",
        "true",
    ])
    .code(125)
    .stderr_has("bridge network");
    env.berth(&["run", "--rm", "-p", "99999:80", "busybox", "true"])
        .code(125)
        .stderr_has("invalid publish spec");
}

/// An "outside world" for NAT tests: a network namespace behind a veth, whose end on the host is
/// 10.231.99.1/30 and whose own address, 10.231.99.2, runs an HTTP server whose CGI answers with the
/// client address it sees. Removed on drop.
struct Outside {
    ns: String,
    host_if: String,
    server: Option<std::process::Child>,
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        let id = std::process::id() % 100000;
        let ns = format!("berth-out-{id}");
        let host_if = format!("bo{id}");
        let dir = tempfile::tempdir().unwrap();
        let mut out = Outside {
            ns: ns.clone(),
            host_if: host_if.clone(),
            server: None,
            dir,
        };
        sh_ok(&format!("ip netns add {ns}"));
        sh_ok(&format!(
            "ip link add {host_if} type veth peer name eth0 netns {ns} && \
             ip addr add 10.231.99.1/30 dev {host_if} && ip link set {host_if} up && \
             ip -n {ns} addr add 10.231.99.2/30 dev eth0 && ip -n {ns} link set eth0 up && \
             ip -n {ns} link set lo up"
        ));
        let cgi = out.dir.path().join("cgi-bin");
        std::fs::create_dir_all(&cgi).unwrap();
        std::fs::write(
            cgi.join("ip"),
            "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n",
        )
        .unwrap();
        sh_ok(&format!("chmod 755 {}", cgi.join("ip").display()));
        out.server = Some(
            Command::new("ip")
                .args(["netns", "exec", &ns, "busybox", "httpd", "-f", "-p", "8000", "-h"])
                .arg(out.dir.path())
                .spawn()
                .unwrap(),
        );
        assert!(wait_until(Duration::from_secs(5), || sh(&format!(
            "ip netns exec {ns} busybox wget -qO- http://10.231.99.2:8000/cgi-bin/ip"
        ))
        .status
        .success()));
        out
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = sh(&format!("ip link del {}", self.host_if));
        let _ = sh(&format!("ip netns del {}", self.ns));
    }
}

#[test]
fn outbound_traffic_is_masqueraded_and_internal_networks_stay_inside() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipped: the outside server needs the host's busybox");
        return;
    }
    let env = Env::new();
    let outside = Outside::new();
    let url = "http://10.231.99.2:8000/cgi-bin/ip";
    let net = unique("n");
    env.ok(&["network", "create", "--subnet", "10.231.12.0/24", &net]);
    for network in [net.as_str(), "bridge"] {
        let seen = env.ok(&[
            "run",
            "--rm",
            "--network",
            network,
            "busybox",
            "sh",
            "-c",
            &within_3s(&format!("wget -qO- {url}")),
        ]);
        assert_eq!(
            seen.trim_start_matches("[::ffff:").trim_end_matches(']'),
            "10.231.99.1",
            "{network}: the outside must see the host's address, not the container's"
        );
    }
    let internal = unique("i");
    env.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.231.13.0/24",
        &internal,
    ]);
    env.berth(&[
        "run",
        "--rm",
        "--network",
        &internal,
        "busybox",
        "sh",
        "-c",
        &within_3s(&format!("wget -qO- {url}")),
    ])
    .failure();
    // Containers of an internal network still talk to each other.
    env.run_d(&[
        "--name",
        "inner",
        "--network",
        &internal,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    let got = env.ok(&[
        "run",
        "--rm",
        "--network",
        &internal,
        "busybox",
        "sh",
        "-c",
        &within_3s("wget -qO- http://inner/"),
    ]);
    assert_eq!(got, "hello from berth");
    drop(outside);
}

#[test]
fn connect_disconnect_aliases_and_fixed_addresses() {
    let env = Env::new();
    let (front, back) = (unique("f"), unique("b"));
    env.ok(&["network", "create", "--subnet", "10.231.14.0/24", &front]);
    env.ok(&["network", "create", "--subnet", "10.231.15.0/24", &back]);
    env.run_d(&[
        "--name",
        "db",
        "--network",
        &back,
        "--network-alias",
        "database",
        "--ip",
        "10.231.15.77",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    assert_eq!(
        env.inspect("db", "{{.NetworkSettings.IPAddress}}"),
        "10.231.15.77"
    );
    let by_alias = env.ok(&[
        "run",
        "--rm",
        "--network",
        &back,
        "busybox",
        "sh",
        "-c",
        &within_3s("wget -qO- http://database/"),
    ]);
    assert_eq!(by_alias, "hello from berth");
    // The fixed address is taken: another container cannot have it.
    env.berth(&[
        "run",
        "--rm",
        "--network",
        &back,
        "--ip",
        "10.231.15.77",
        "busybox",
        "true",
    ])
    .code(125)
    .stderr_has("in use");
    env.berth(&["run", "--rm", "--ip", "10.231.15.78", "busybox", "true"])
        .code(125)
        .stderr_has("user defined networks");
    env.berth(&[
        "run",
        "--rm",
        "--network",
        &back,
        "--ip",
        "10.9.0.5",
        "busybox",
        "true",
    ])
    .code(125);

    // app lives on front; connected to back at run time it gets a second interface and finds db.
    env.run_d(&["--name", "app", "--network", &front, "busybox", "sleep", "60"]);
    env.berth(&["exec", "app", "sh", "-c", &within_3s("wget -qO- http://db/")])
        .failure();
    env.ok(&["network", "connect", "--alias", "api", &back, "app"]);
    let ifaces = env.ok(&["exec", "app", "ls", "/sys/class/net"]);
    assert_eq!(
        ifaces.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "eth1", "lo"],
        "{ifaces}"
    );
    assert_eq!(
        env.ok(&["exec", "app", "sh", "-c", &within_3s("wget -qO- http://db/")]),
        "hello from berth"
    );
    // ... and db, which started earlier, knows app by name and alias.
    env.ok(&["exec", "db", "ping", "-c", "1", "-W", "2", "api"]);
    env.ok(&["exec", "db", "ping", "-c", "1", "-W", "2", "app"]);
    let nets = env.inspect("app", "{{json .NetworkSettings.Networks}}");
    assert!(
        nets.contains(&front) && nets.contains(&back) && nets.contains("\"api\""),
        "{nets}"
    );
    env.berth(&["network", "connect", &back, "app"])
        .failure()
        .stderr_has("already exists");

    env.ok(&["network", "disconnect", &back, "app"]);
    let ifaces = env.ok(&["exec", "app", "ls", "/sys/class/net"]);
    assert_eq!(
        ifaces.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"],
        "{ifaces}"
    );
    env.berth(&["exec", "db", "ping", "-c", "1", "-W", "1", "app"])
        .failure();
    env.berth(&["network", "disconnect", &back, "app"])
        .failure()
        .stderr_has("not connected");
    // A stopped container connects now and gets the interface when it starts.
    env.ok(&[
        "create",
        "--name",
        "later",
        "--network",
        &front,
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    env.ok(&["network", "connect", &back, "later"]);
    env.ok(&["start", "later"]);
    env.ok(&["wait", "later"]);
    assert_eq!(
        env.ok(&["logs", "later"]).split_whitespace().collect::<Vec<_>>(),
        ["eth0", "eth1", "lo"]
    );
    env.berth(&[
        "network",
        "connect",
        &back,
        &env.run_d(&["--network", "none", "busybox", "sleep", "60"]),
    ])
    .failure();
}

#[test]
fn host_network_shares_the_host_stack() {
    let env = Env::new();
    let host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let seen = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let some_nic = host_ifaces.iter().find(|i| *i != "lo").unwrap();
    assert!(
        seen.split_whitespace().any(|i| i == some_nic),
        "{seen} vs {host_ifaces:?}"
    );
    assert!(
        env.ok(&["network", "ls", "-q"]).is_empty(),
        "host mode needs no bridge"
    );
}

#[test]
fn crash_leftovers_are_swept() {
    let env = Env::new();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let id = env.run_d(&[
        "--name",
        "victim",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    let pid: i32 = env.inspect("victim", "{{.State.Pid}}").parse().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let monitor: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // berth's own processes die without a word: the monitor first, then the container.
    unsafe {
        libc::kill(monitor, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    assert!(wait_until(Duration::from_secs(5), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
    let table = format!("berth-{}", common::root_tag(env.root()));
    let rules = || String::from_utf8_lossy(&sh(&format!("nft list table ip {table}")).stdout).into_owned();
    assert!(
        rules().contains("dnat to"),
        "the published port is still in the table before the sweep"
    );
    env.ok(&["network", "prune"]);
    assert!(!rules().contains("dnat to"), "{}", rules());
    let containers = env.ok(&["network", "inspect", "-f", "{{json .Containers}}", "bridge"]);
    assert!(!containers.contains(&id), "{containers}");
    // The container starts again on a fresh address (the stale one was released).
    env.ok(&["start", "victim"]);
    assert!(!env.inspect("victim", "{{.NetworkSettings.IPAddress}}").is_empty());
    env.ok(&["rm", "-f", "victim"]);

    // Wiped state (as after a reboot that lost the root, or an `rm -rf` of it): the next prune in that
    // root removes the bridges and the table it no longer knows.
    let wiped = tempfile::tempdir().unwrap();
    let root = wiped.path().join("root");
    let berth = |args: &[&str]| {
        let out = Command::new(common::bin())
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    berth(&["import", common::image_tar().to_str().unwrap(), "busybox"]);
    let net_id = berth(&["network", "create", "--subnet", "10.231.16.0/24", &unique("w")]);
    berth(&[
        "run",
        "--rm",
        "-p",
        &format!("{}:80", port + 1),
        "busybox",
        "true",
    ]);
    let bridge = format!("br-{}", &net_id[..12]);
    assert!(Path::new(&format!("/sys/class/net/{bridge}")).exists());
    std::fs::remove_dir_all(&root).unwrap();
    berth(&["network", "prune"]);
    assert!(
        !Path::new(&format!("/sys/class/net/{bridge}")).exists(),
        "bridge {bridge} survived the sweep"
    );
    let tag = common::root_tag(&root);
    let default_bridge = format!("berth{}", &tag[..8]);
    assert!(
        !Path::new(&format!("/sys/class/net/{default_bridge}")).exists(),
        "{default_bridge} survived"
    );
    for d in common::cgroup_dirs(&format!("berth/{tag}")) {
        let _ = std::fs::remove_dir(d);
    }
    let wiped_table = format!("berth-{tag}");
    assert!(
        !sh(&format!("nft list table ip {wiped_table}")).status.success(),
        "table {wiped_table} survived"
    );
}

#[test]
fn a_restart_replaces_the_stale_host_veth_of_the_previous_run() {
    let env = Env::new();
    let id = env.ok(&["create", "--name", "again", "busybox", "sh", "-c", "exit 3"]);
    // Right after a container exits, the kernel may still be tearing its namespace down and the old
    // host end of the veth still holds the name; a leftover link with that name plays it here.
    let stale = format!("veth{}0", &id[..10]);
    sh_ok(&format!("ip link add {stale} type bridge"));
    env.ok(&["start", "again"]);
    assert_eq!(env.ok(&["wait", "again"]), "3");
    env.ok(&["restart", "again"]);
    assert_eq!(env.ok(&["wait", "again"]), "3");
}
