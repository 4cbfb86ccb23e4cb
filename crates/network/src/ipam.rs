//! Networks and address allocations as SQLite rows.
//!
//! Every change runs in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the
//! free address (or a free subnet) is chosen, so concurrent `berth run`s, each with its own
//! connection, serialize on the database and never get one address twice. The primary key
//! `(network, address)` backs that up. Rows survive restarts and crashes; a crashed
//! container's address stays taken until the engine releases it when it notices the exit.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::subnet::{self, SubnetError};

/// Why an IPAM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The database refused.
    #[error("network database: {op}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row could not be read back (hand-edited or from a newer berth).
    #[error("network database: corrupt row for network {network:?}: {detail}")]
    Corrupt {
        /// The network.
        network: String,
        /// What was wrong.
        detail: String,
    },
    /// `network create` with a name already taken.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// A bridge interface name already used by another network.
    #[error("bridge name {bridge} is already used by network {network}")]
    BridgeInUse {
        /// The bridge name.
        bridge: String,
        /// The network that owns it.
        network: String,
    },
    /// No network with this name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// The subnet overlaps another berth network.
    #[error("invalid pool request: pool {subnet} overlaps with other one on this address space (network {network}, {other})")]
    Overlap {
        /// The subnet asked for.
        subnet: Ipv4Net,
        /// The network it overlaps.
        network: String,
        /// That network's subnet.
        other: Ipv4Net,
    },
    /// The subnet overlaps a route of the host.
    #[error("subnet {subnet} overlaps the host route {route}")]
    RouteCollision {
        /// The subnet asked for.
        subnet: Ipv4Net,
        /// The host route.
        route: Ipv4Net,
    },
    /// Every default subnet is taken or collides with the host's routes.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreeSubnet,
    /// Every host address of the network is allocated.
    #[error("no available IPv4 addresses on network {network} ({subnet})")]
    Exhausted {
        /// The network.
        network: String,
        /// Its subnet.
        subnet: Ipv4Net,
    },
    /// `--ip` asked for an address someone has.
    #[error("address {address} is already in use on network {network}")]
    AddressInUse {
        /// The address.
        address: Ipv4Addr,
        /// The network.
        network: String,
    },
    /// The container already has another address on this network.
    #[error("container {container} already has address {address} on network {network}")]
    AlreadyAttached {
        /// The container id.
        container: String,
        /// Its current address.
        address: Ipv4Addr,
        /// The network.
        network: String,
    },
    /// `network rm` of a network that containers still use.
    #[error("error while removing network: network {network} has active endpoints ({})", containers.join(", "))]
    InUse {
        /// The network.
        network: String,
        /// The containers holding addresses on it.
        containers: Vec<String>,
    },
    /// A bad subnet, gateway or address.
    #[error(transparent)]
    Subnet(#[from] SubnetError),
}

type Result<T> = std::result::Result<T, IpamError>;

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> IpamError {
    move |source| IpamError::Sqlite { op, source }
}

/// Creates the `net_` tables if missing. Idempotent; call once per connection or at startup.
pub fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS net_networks (
             name     TEXT PRIMARY KEY,
             id       TEXT NOT NULL UNIQUE,
             driver   TEXT NOT NULL,
             subnet   TEXT NOT NULL,
             gateway  TEXT NOT NULL,
             internal INTEGER NOT NULL DEFAULT 0,
             bridge   TEXT NOT NULL UNIQUE,
             created  TEXT NOT NULL,
             labels   TEXT NOT NULL DEFAULT '{}'
         );
         CREATE TABLE IF NOT EXISTS net_allocations (
             network   TEXT NOT NULL REFERENCES net_networks(name),
             address   TEXT NOT NULL,
             container TEXT NOT NULL,
             PRIMARY KEY (network, address)
         );
         CREATE INDEX IF NOT EXISTS net_allocations_container ON net_allocations(container);",
    )
    .map_err(sql("create net_ tables"))
}

/// A bridge network as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// User-facing name (`bridge` for the default network).
    pub name: String,
    /// 64-hex id.
    pub id: String,
    /// Always `bridge` for now.
    pub driver: String,
    /// The network's IPv4 subnet.
    pub subnet: Ipv4Net,
    /// The bridge's own address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// `--internal`: no route out of the host.
    pub internal: bool,
    /// Name of the bridge interface.
    pub bridge: String,
    /// Creation time as the engine formats it (RFC 3339).
    pub created: String,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
}

/// What `network create` asks for; `subnet`/`gateway` are picked when `None`.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    /// Network name.
    pub name: String,
    /// 64-hex id.
    pub id: String,
    /// Driver name (`bridge`).
    pub driver: String,
    /// `--subnet`, or a free default subnet.
    pub subnet: Option<Ipv4Net>,
    /// `--gateway`, or the first host address.
    pub gateway: Option<Ipv4Addr>,
    /// `--internal`.
    pub internal: bool,
    /// Bridge interface name.
    pub bridge: String,
    /// Creation time.
    pub created: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// One address held by one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Network name.
    pub network: String,
    /// The address.
    pub address: Ipv4Addr,
    /// The container id.
    pub container: String,
}

fn immediate(conn: &Connection) -> Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(sql("begin transaction"))
}

const NETWORK_COLUMNS: &str = "name, id, driver, subnet, gateway, internal, bridge, created, labels";

fn network_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Network>> {
    let name: String = row.get(0)?;
    let subnet: String = row.get(3)?;
    let gateway: String = row.get(4)?;
    let labels: String = row.get(8)?;
    let corrupt = |detail: String| IpamError::Corrupt {
        network: name.clone(),
        detail,
    };
    let parsed = (|| {
        Ok(Network {
            id: row.get(1).map_err(sql("read network"))?,
            driver: row.get(2).map_err(sql("read network"))?,
            subnet: subnet
                .parse()
                .map_err(|_| corrupt(format!("subnet {subnet:?}")))?,
            gateway: gateway
                .parse()
                .map_err(|_| corrupt(format!("gateway {gateway:?}")))?,
            internal: row.get(5).map_err(sql("read network"))?,
            bridge: row.get(6).map_err(sql("read network"))?,
            created: row.get(7).map_err(sql("read network"))?,
            labels: serde_json::from_str(&labels).map_err(|e| corrupt(format!("labels: {e}")))?,
            name: name.clone(),
        })
    })();
    Ok(parsed)
}

/// The network named `name`, if any.
pub fn get_network(conn: &Connection, name: &str) -> Result<Option<Network>> {
    conn.query_row(
        &format!("SELECT {NETWORK_COLUMNS} FROM net_networks WHERE name = ?1"),
        [name],
        network_from_row,
    )
    .optional()
    .map_err(sql("read network"))?
    .transpose()
}

/// Every network, by name.
pub fn list_networks(conn: &Connection) -> Result<Vec<Network>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {NETWORK_COLUMNS} FROM net_networks ORDER BY name"
        ))
        .map_err(sql("list networks"))?;
    let rows = stmt
        .query_map([], network_from_row)
        .map_err(sql("list networks"))?;
    rows.map(|r| r.map_err(sql("list networks"))?).collect()
}

/// Records a new network. Inside one `BEGIN IMMEDIATE` transaction it refuses a taken name
/// or bridge, a subnet overlapping another network or one of `host_routes`, and picks a
/// default subnet (docker's pools) when none is given. Returns the stored row.
pub fn create_network(conn: &Connection, spec: &NetworkSpec, host_routes: &[Ipv4Net]) -> Result<Network> {
    let tx = immediate(conn)?;
    let existing = list_networks(&tx)?;
    if existing.iter().any(|n| n.name == spec.name) {
        return Err(IpamError::NetworkExists(spec.name.clone()));
    }
    if let Some(n) = existing.iter().find(|n| n.bridge == spec.bridge) {
        return Err(IpamError::BridgeInUse {
            bridge: spec.bridge.clone(),
            network: n.name.clone(),
        });
    }
    let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
    let subnet = match spec.subnet {
        Some(s) => {
            let s = subnet::parse_subnet(&s.to_string())?;
            if let Some(n) = existing.iter().find(|n| subnet::overlaps(s, n.subnet)) {
                return Err(IpamError::Overlap {
                    subnet: s,
                    network: n.name.clone(),
                    other: n.subnet,
                });
            }
            if let Some(route) = subnet::colliding_route(s, host_routes) {
                return Err(IpamError::RouteCollision { subnet: s, route });
            }
            s
        }
        None => subnet::pick_default_subnet(&taken, host_routes).ok_or(IpamError::NoFreeSubnet)?,
    };
    let gateway = spec.gateway.unwrap_or_else(|| subnet::default_gateway(subnet));
    subnet::check_host_addr(subnet, gateway)?;
    let labels = serde_json::to_string(&spec.labels).expect("string map serializes");
    tx.execute(
        &format!("INSERT INTO net_networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            spec.name,
            spec.id,
            spec.driver,
            subnet.to_string(),
            gateway.to_string(),
            spec.internal,
            spec.bridge,
            spec.created,
            labels
        ],
    )
    .map_err(sql("insert network"))?;
    tx.commit().map_err(sql("commit network"))?;
    Ok(Network {
        name: spec.name.clone(),
        id: spec.id.clone(),
        driver: spec.driver.clone(),
        subnet,
        gateway,
        internal: spec.internal,
        bridge: spec.bridge.clone(),
        created: spec.created.clone(),
        labels: spec.labels.clone(),
    })
}

/// Deletes a network row; refused while any container holds an address on it.
pub fn remove_network(conn: &Connection, name: &str) -> Result<Network> {
    let tx = immediate(conn)?;
    let network = get_network(&tx, name)?.ok_or_else(|| IpamError::NoSuchNetwork(name.to_owned()))?;
    let mut containers: Vec<String> = allocations(&tx, name)?.into_iter().map(|a| a.container).collect();
    if !containers.is_empty() {
        containers.dedup();
        return Err(IpamError::InUse {
            network: name.to_owned(),
            containers,
        });
    }
    tx.execute("DELETE FROM net_networks WHERE name = ?1", [name])
        .map_err(sql("delete network"))?;
    tx.commit().map_err(sql("commit network removal"))?;
    Ok(network)
}

fn parse_alloc(network: String, address: String, container: String) -> Result<Allocation> {
    let address = address.parse().map_err(|_| IpamError::Corrupt {
        network: network.clone(),
        detail: format!("allocated address {address:?}"),
    })?;
    Ok(Allocation {
        network,
        address,
        container,
    })
}

fn collect_allocs(conn: &Connection, query: &str, arg: &str) -> Result<Vec<Allocation>> {
    let mut stmt = conn.prepare_cached(query).map_err(sql("list allocations"))?;
    let rows = stmt
        .query_map([arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql("list allocations"))?;
    let mut out = Vec::new();
    for row in rows {
        let (n, a, c) = row.map_err(sql("list allocations"))?;
        out.push(parse_alloc(n, a, c)?);
    }
    out.sort_by_key(|a| a.address);
    Ok(out)
}

/// The addresses allocated on a network, lowest first.
pub fn allocations(conn: &Connection, network: &str) -> Result<Vec<Allocation>> {
    collect_allocs(
        conn,
        "SELECT network, address, container FROM net_allocations WHERE network = ?1",
        network,
    )
}

/// The addresses a container holds, on every network.
pub fn container_allocations(conn: &Connection, container: &str) -> Result<Vec<Allocation>> {
    collect_allocs(
        conn,
        "SELECT network, address, container FROM net_allocations WHERE container = ?1",
        container,
    )
}

/// Gives `container` an address on `network`: `requested` (`--ip`) when given, else the
/// lowest free host address other than the gateway. Calling it again for a container that
/// already has an address there returns that address (so a retried start is harmless),
/// unless a different `requested` address is asked for.
pub fn allocate(
    conn: &Connection,
    network: &str,
    container: &str,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let tx = immediate(conn)?;
    let net = get_network(&tx, network)?.ok_or_else(|| IpamError::NoSuchNetwork(network.to_owned()))?;
    let taken = allocations(&tx, network)?;
    if let Some(mine) = taken.iter().find(|a| a.container == container) {
        return match requested {
            Some(r) if r != mine.address => Err(IpamError::AlreadyAttached {
                container: container.to_owned(),
                address: mine.address,
                network: network.to_owned(),
            }),
            _ => Ok(mine.address),
        };
    }
    let used: HashSet<u32> = taken
        .iter()
        .map(|a| u32::from(a.address))
        .chain([u32::from(net.gateway)])
        .collect();
    let address = match requested {
        Some(addr) => {
            subnet::check_host_addr(net.subnet, addr)?;
            if used.contains(&u32::from(addr)) {
                return Err(IpamError::AddressInUse {
                    address: addr,
                    network: network.to_owned(),
                });
            }
            addr
        }
        None => {
            let first = u32::from(net.subnet.network()) + 1;
            let last = u32::from(net.subnet.broadcast()) - 1;
            (first..=last)
                .find(|a| !used.contains(a))
                .map(Ipv4Addr::from)
                .ok_or_else(|| IpamError::Exhausted {
                    network: network.to_owned(),
                    subnet: net.subnet,
                })?
        }
    };
    tx.execute(
        "INSERT INTO net_allocations (network, address, container) VALUES (?1, ?2, ?3)",
        params![network, address.to_string(), container],
    )
    .map_err(sql("insert allocation"))?;
    tx.commit().map_err(sql("commit allocation"))?;
    Ok(address)
}

/// Releases the address `container` holds on `network`; returns it, or `None` if it held none.
pub fn release(conn: &Connection, network: &str, container: &str) -> Result<Option<Ipv4Addr>> {
    let tx = immediate(conn)?;
    let address: Option<String> = tx
        .query_row(
            "DELETE FROM net_allocations WHERE network = ?1 AND container = ?2 RETURNING address",
            [network, container],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("release address"))?;
    tx.commit().map_err(sql("commit release"))?;
    address
        .map(|a| parse_alloc(network.to_owned(), a, container.to_owned()).map(|a| a.address))
        .transpose()
}

/// Releases every address of a container (on `rm`, or when its exit is noticed).
pub fn release_container(conn: &Connection, container: &str) -> Result<Vec<Allocation>> {
    let tx = immediate(conn)?;
    let held = container_allocations(&tx, container)?;
    tx.execute("DELETE FROM net_allocations WHERE container = ?1", [container])
        .map_err(sql("release addresses"))?;
    tx.commit().map_err(sql("commit release"))?;
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap(); // idempotent
        conn
    }

    fn spec(name: &str, subnet: Option<&str>) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            id: format!("{name:0>64}"),
            driver: "bridge".into(),
            subnet: subnet.map(|s| s.parse().unwrap()),
            bridge: format!("br-{name}"),
            created: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_lowest_free_and_reuses_released() {
        let c = db();
        let n = create_network(&c, &spec("n", Some("10.9.0.0/29")), &[]).unwrap();
        assert_eq!(n.gateway, ip("10.9.0.1"));
        let got: Vec<_> = (0..5)
            .map(|i| allocate(&c, "n", &format!("c{i}"), None).unwrap())
            .collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(ip)
        );
        assert!(matches!(
            allocate(&c, "n", "c5", None),
            Err(IpamError::Exhausted { .. })
        ));
        // idempotent for the same container
        assert_eq!(allocate(&c, "n", "c2", None).unwrap(), ip("10.9.0.4"));
        assert_eq!(release(&c, "n", "c2").unwrap(), Some(ip("10.9.0.4")));
        assert_eq!(release(&c, "n", "c2").unwrap(), None);
        assert_eq!(allocate(&c, "n", "c6", None).unwrap(), ip("10.9.0.4"));
    }

    #[test]
    fn gateway_elsewhere_is_skipped() {
        let c = db();
        let mut s = spec("n", Some("10.9.0.0/29"));
        s.gateway = Some(ip("10.9.0.3"));
        create_network(&c, &s, &[]).unwrap();
        assert_eq!(allocate(&c, "n", "a", None).unwrap(), ip("10.9.0.1"));
        assert_eq!(allocate(&c, "n", "b", None).unwrap(), ip("10.9.0.2"));
        assert_eq!(allocate(&c, "n", "c", None).unwrap(), ip("10.9.0.4"));
        s.name = "m".into();
        s.bridge = "br-m".into();
        s.subnet = Some("10.10.0.0/24".parse().unwrap());
        s.gateway = Some(ip("10.10.0.255"));
        assert!(matches!(create_network(&c, &s, &[]), Err(IpamError::Subnet(_))));
    }

    #[test]
    fn explicit_ip_requests() {
        let c = db();
        create_network(&c, &spec("n", Some("192.168.10.0/24")), &[]).unwrap();
        assert_eq!(
            allocate(&c, "n", "a", Some(ip("192.168.10.50"))).unwrap(),
            ip("192.168.10.50")
        );
        assert!(matches!(
            allocate(&c, "n", "b", Some(ip("192.168.10.50"))),
            Err(IpamError::AddressInUse { .. })
        ));
        assert!(matches!(
            allocate(&c, "n", "b", Some(ip("192.168.10.1"))),
            Err(IpamError::AddressInUse { .. })
        ));
        assert!(matches!(
            allocate(&c, "n", "b", Some(ip("192.168.11.5"))),
            Err(IpamError::Subnet(_))
        ));
        assert!(matches!(
            allocate(&c, "n", "b", Some(ip("192.168.10.255"))),
            Err(IpamError::Subnet(_))
        ));
        assert!(matches!(
            allocate(&c, "n", "a", Some(ip("192.168.10.51"))),
            Err(IpamError::AlreadyAttached { .. })
        ));
        assert_eq!(allocate(&c, "n", "b", None).unwrap(), ip("192.168.10.2"));
        assert!(matches!(
            allocate(&c, "x", "b", None),
            Err(IpamError::NoSuchNetwork(_))
        ));
    }

    #[test]
    fn networks_refuse_overlaps_names_and_route_collisions() {
        let c = db();
        create_network(&c, &spec("a", Some("10.1.0.0/16")), &[]).unwrap();
        let e = create_network(&c, &spec("b", Some("10.1.2.0/24")), &[]).unwrap_err();
        assert!(
            matches!(e, IpamError::Overlap { ref network, .. } if network == "a"),
            "{e}"
        );
        assert!(matches!(
            create_network(&c, &spec("a", Some("10.2.0.0/16")), &[]),
            Err(IpamError::NetworkExists(_))
        ));
        let routes: Vec<Ipv4Net> = vec!["0.0.0.0/0".parse().unwrap(), "10.3.0.0/24".parse().unwrap()];
        assert!(matches!(
            create_network(&c, &spec("c", Some("10.3.0.0/16")), &routes),
            Err(IpamError::RouteCollision { .. })
        ));
        let mut dup_bridge = spec("d", Some("10.4.0.0/16"));
        dup_bridge.bridge = "br-a".into();
        assert!(matches!(
            create_network(&c, &dup_bridge, &[]),
            Err(IpamError::BridgeInUse { .. })
        ));
        // default subnets skip the host's 172.17.0.0/16 and each other
        let routes: Vec<Ipv4Net> = vec!["172.17.0.0/16".parse().unwrap()];
        let d1 = create_network(&c, &spec("d1", None), &routes).unwrap();
        let d2 = create_network(&c, &spec("d2", None), &routes).unwrap();
        assert_eq!(d1.subnet.to_string(), "172.18.0.0/16");
        assert_eq!(d2.subnet.to_string(), "172.19.0.0/16");
        assert_eq!(d2.gateway, ip("172.19.0.1"));
        let names: Vec<_> = list_networks(&c).unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["a", "d1", "d2"]);
    }

    #[test]
    fn network_in_use_cannot_be_removed() {
        let c = db();
        let mut s = spec("n", Some("10.7.0.0/24"));
        s.labels.insert("k".into(), "v".into());
        s.internal = true;
        create_network(&c, &s, &[]).unwrap();
        let stored = get_network(&c, "n").unwrap().unwrap();
        assert!(stored.internal);
        assert_eq!(stored.labels.get("k").map(String::as_str), Some("v"));
        allocate(&c, "n", "web", None).unwrap();
        let e = remove_network(&c, "n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error while removing network: network n has active endpoints (web)"
        );
        let released = release_container(&c, "web").unwrap();
        assert_eq!(released.len(), 1);
        remove_network(&c, "n").unwrap();
        assert!(get_network(&c, "n").unwrap().is_none());
        assert!(matches!(
            remove_network(&c, "n"),
            Err(IpamError::NoSuchNetwork(_))
        ));
    }
}
