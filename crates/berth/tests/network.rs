//! Bridge networks: create/ls/inspect/rm, containers reaching each other by address and by name, published
//! ports from the host's loopback and from another container, and nothing left behind. Traffic only goes to
//! loopback and to containers these tests start.

mod common;

use common::{http_get, unique, wait_until, Env};
use std::time::Duration;

fn web(env: &Env, name: &str, net: &str, extra: &[&str]) -> String {
    let mut args = vec!["--name", name, "--network", net];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"]);
    env.run_d(&args)
}

#[test]
fn network_create_ls_inspect_rm() {
    let env = Env::new();
    let name = unique("n");
    let id = env.ok(&[
        "network",
        "create",
        "--subnet",
        "10.231.7.0/24",
        "--gateway",
        "10.231.7.1",
        &name,
    ]);
    assert_eq!(id.len(), 64, "{id}");
    assert!(env.ok(&["network", "ls"]).contains(&name));
    let subnet = env.ok(&["network", "inspect", "-f", "{{index .IPAM.Config 0}}", &name]);
    assert!(
        subnet.contains("10.231.7.0/24") && subnet.contains("10.231.7.1"),
        "{subnet}"
    );
    env.berth(&["network", "create", "--subnet", "10.231.7.0/25", &unique("o")])
        .failure()
        .stderr_has("overlaps");
    env.berth(&["network", "create", &name]).failure();
    env.berth(&["network", "create", "--subnet", "nonsense", &unique("b")])
        .failure();
    assert_eq!(env.ok(&["network", "rm", &name]), name);
    assert!(!env.ok(&["network", "ls", "-q"]).contains(&name));
    env.berth(&["network", "rm", &name])
        .failure()
        .stderr_has("no such network");
}

#[test]
fn containers_reach_each_other_by_address_and_name() {
    let env = Env::new();
    let net = unique("n");
    env.ok(&["network", "create", "--subnet", "10.231.8.0/24", &net]);
    web(&env, "db", &net, &[]);
    let ip = env.inspect("db", "{{.NetworkSettings.IPAddress}}");
    assert_eq!(
        ip, "10.231.8.2",
        "the first container gets the lowest free address"
    );
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{ip}/"),
    ]);
    assert_eq!(out, "hello from berth");
    // By name, and a container started later is known to the earlier one.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        "http://db/",
    ]);
    assert_eq!(out, "hello from berth");
    web(&env, "late", &net, &[]);
    let out = env.ok(&["exec", "db", "wget", "-qO-", "http://late/"]);
    assert_eq!(out, "hello from berth");
    // A container without a network reaches nobody; one on another network (the default) neither.
    for other in ["none", "bridge"] {
        env.berth(&[
            "run",
            "--rm",
            "--network",
            other,
            "busybox",
            "sh",
            "-c",
            // wget must not end up as PID 1 (which ignores timeout's SIGTERM): `sh -c` would exec a
            // lone command, and `timeout` execs the command in its own process.
            &format!("timeout 3 wget -qO- http://{ip}/; exit $?"),
        ])
        .failure();
    }
    env.berth(&["network", "rm", &net])
        .failure()
        .stderr_has("active endpoints");
}

#[test]
fn published_port_answers_on_loopback_and_from_another_container() {
    let env = Env::new();
    let net = unique("n");
    env.ok(&["network", "create", "--subnet", "10.231.9.0/24", &net]);
    let port = 20000 + (std::process::id() % 20000) as u16;
    let any = port + 1;
    web(
        &env,
        "pub",
        &net,
        &["-p", &format!("127.0.0.1:{port}:80"), "-p", &format!("{any}:80")],
    );
    assert_eq!(
        env.ok(&["port", "pub"]),
        format!("80/tcp -> 127.0.0.1:{port}\n80/tcp -> 0.0.0.0:{any}")
    );
    assert!(env.ok(&["ps"]).contains(&format!("127.0.0.1:{port}->80/tcp")));
    let url = format!("127.0.0.1:{port}");
    let mut got = None;
    assert!(wait_until(Duration::from_secs(5), || {
        got = http_get(&url);
        got.is_some()
    }));
    assert_eq!(got.unwrap(), "hello from berth");
    // Another container reaches the port published on every address through the gateway (hairpin).
    let via_gw = env.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        &format!("http://10.231.9.1:{any}/"),
    ]);
    assert_eq!(via_gw, "hello from berth");
    // The published port disappears with the container.
    env.ok(&["rm", "-f", "pub"]);
    assert!(http_get(&url).is_none(), "port still answers after rm");
}
