//! Measures what network setup costs per container (run as root, nothing else running):
//! `cargo run --release -p berth-network --example setup_timing [N]`.
//!
//! Makes a bridge, N namespaces (with `ip netns add`, not timed) and attaches each through
//! [`berth_network::attach`], applies an nft table, then removes everything it made.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Instant;

use berth_network::netlink::{Netlink, Netns};
use berth_network::nft::{self, NetworkRules, Ruleset};
use berth_network::{attach, ensure_bridge, Endpoint};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let tag = std::process::id();
    let bridge = format!("btbench{tag}");
    let bridge = &bridge[..bridge.len().min(15)];
    let subnet: ipnet::Ipv4Net = "10.254.0.0/24".parse().unwrap();
    let gateway = "10.254.0.1".parse().unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("btbench{tag}-{i}")).collect();
    for name in &names {
        assert!(Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap()
            .success());
    }
    let mut nl = Netlink::open().unwrap();
    let t = Instant::now();
    let result = (|| {
        ensure_bridge(&mut nl, bridge, subnet, gateway, Some(1500))?;
        let bridge_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut attach_ms = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let ns = File::open(format!("/run/netns/{name}")).unwrap();
            let ep = Endpoint {
                host_ifname: format!("btbv{tag:x}{i}").chars().take(15).collect(),
                container_ifname: "eth0".into(),
                address: std::net::Ipv4Addr::from(u32::from(gateway) + 1 + i as u32),
                prefix_len: 24,
                gateway: Some(gateway),
                mtu: Some(1500),
            };
            let t = Instant::now();
            attach(&mut nl, bridge, Netns::Fd(ns.as_fd()), &ep)?;
            attach_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok::<_, berth_network::NetlinkError>((bridge_ms, attach_ms))
    })();
    let table = format!("berth-bench{tag}");
    let t = Instant::now();
    let nft_result = nft::apply(&Ruleset {
        table: table.clone(),
        networks: vec![NetworkRules {
            bridge: bridge.to_owned(),
            subnet,
            internal: false,
        }],
        ports: vec![],
    });
    let nft_ms = t.elapsed().as_secs_f64() * 1e3;

    let _ = nft::delete_table(&table);
    for i in 0..n {
        let host: String = format!("btbv{tag:x}{i}").chars().take(15).collect();
        let _ = berth_network::detach(&mut nl, &host);
    }
    let _ = nl.delete_link(bridge);
    for name in &names {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
    let (bridge_ms, mut attach_ms) = result.unwrap();
    nft_result.unwrap();
    attach_ms.sort_by(f64::total_cmp);
    println!("bridge create+address+up: {bridge_ms:.2} ms");
    println!(
        "attach x{n}: min {:.2} ms, median {:.2} ms, max {:.2} ms",
        attach_ms[0],
        attach_ms[n / 2],
        attach_ms[n - 1]
    );
    println!("nft apply (one network): {nft_ms:.2} ms");
}
