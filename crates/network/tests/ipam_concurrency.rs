//! 20 allocators, each with its own connection to one database file, never share an address.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use berth_network::ipam::{self, NetworkSpec};
use rusqlite::Connection;

fn open(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    // As the engine opens it (crates/engine/src/db.rs).
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

#[test]
fn twenty_concurrent_allocators_get_twenty_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    {
        let conn = open(&path);
        ipam::migrate(&conn).unwrap();
        ipam::create_network(
            &conn,
            &NetworkSpec {
                name: "n".into(),
                id: "1".repeat(64),
                driver: "bridge".into(),
                subnet: Some("10.50.0.0/24".parse().unwrap()),
                bridge: "br-n".into(),
                created: "now".into(),
                ..Default::default()
            },
            &[],
        )
        .unwrap();
    }
    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(20));
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let conn = open(&path);
                    barrier.wait();
                    let t = std::time::Instant::now();
                    let a = ipam::allocate(&conn, "n", &format!("r{round}-c{i}"), None).unwrap();
                    (a, t.elapsed())
                })
            })
            .collect();
        let results: Vec<(Ipv4Addr, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let slowest = results.iter().map(|r| r.1).max().unwrap();
        eprintln!("timing: round {round}: slowest of 20 concurrent allocations {slowest:?}");
        let got: Vec<Ipv4Addr> = results.into_iter().map(|r| r.0).collect();
        let distinct: HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 20, "round {round}: {got:?}");
        // Lowest-free: the 20 addresses are exactly the next 20 after the gateway.
        let conn = open(&path);
        let all = ipam::allocations(&conn, "n").unwrap();
        assert_eq!(all.len(), 20 * (round + 1));
        let want: Vec<Ipv4Addr> = (2..2 + 20 * (round as u32 + 1))
            .map(|h| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 50, 0, 0)) + h))
            .collect();
        assert_eq!(all.iter().map(|a| a.address).collect::<Vec<_>>(), want);
    }

    // Concurrent releases and allocations: still never a duplicate.
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let conn = open(&path);
                barrier.wait();
                if i % 2 == 0 {
                    ipam::release(&conn, "n", &format!("r0-c{i}")).unwrap();
                    None
                } else {
                    Some(ipam::allocate(&conn, "n", &format!("x{i}"), None).unwrap())
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let conn = open(&path);
    let all = ipam::allocations(&conn, "n").unwrap();
    let distinct: HashSet<_> = all.iter().map(|a| a.address).collect();
    assert_eq!(all.len(), 60);
    assert_eq!(distinct.len(), 60);
}
