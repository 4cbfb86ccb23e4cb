//! IPv4 subnets: parsing what users type, overlap checks, and docker's default-subnet picker.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// A subnet or gateway a user gave that berth cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// Not `a.b.c.d/len`.
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR like 192.168.10.0/24")]
    Syntax(String),
    /// Host bits are set (`192.168.10.5/24`).
    #[error("invalid subnet {given}: host bits are set (did you mean {suggested}?)")]
    HostBits {
        /// What was given.
        given: String,
        /// The network it lies in.
        suggested: Ipv4Net,
    },
    /// Too small to hold a gateway and a container.
    #[error("invalid subnet {0}: a bridge network needs at least a /30")]
    TooSmall(Ipv4Net),
    /// Not an IPv4 address.
    #[error("invalid IPv4 address {0:?}")]
    Address(String),
    /// The address is not a usable host address of the subnet.
    #[error("address {addr} is not a usable host address of {subnet}")]
    NotInSubnet {
        /// The address.
        addr: Ipv4Addr,
        /// The subnet it should be in.
        subnet: Ipv4Net,
    },
}

/// Parses and validates a `--subnet` value: IPv4 CIDR, no host bits, at most /30.
pub fn parse_subnet(s: &str) -> Result<Ipv4Net, SubnetError> {
    let net: Ipv4Net = s.trim().parse().map_err(|_| SubnetError::Syntax(s.to_owned()))?;
    if net.addr() != net.network() {
        return Err(SubnetError::HostBits {
            given: s.to_owned(),
            suggested: net.trunc(),
        });
    }
    if net.prefix_len() > 30 {
        return Err(SubnetError::TooSmall(net));
    }
    Ok(net)
}

/// Parses an IPv4 address (`--gateway`, `--ip`).
pub fn parse_addr(s: &str) -> Result<Ipv4Addr, SubnetError> {
    s.trim().parse().map_err(|_| SubnetError::Address(s.to_owned()))
}

/// True when `addr` is a host address of `subnet` (neither its network nor broadcast address).
pub fn is_host_addr(subnet: Ipv4Net, addr: Ipv4Addr) -> bool {
    subnet.contains(&addr) && addr != subnet.network() && addr != subnet.broadcast()
}

/// Checks that `addr` can be given out in `subnet`, as a gateway or a container address.
pub fn check_host_addr(subnet: Ipv4Net, addr: Ipv4Addr) -> Result<(), SubnetError> {
    if is_host_addr(subnet, addr) {
        Ok(())
    } else {
        Err(SubnetError::NotInSubnet { addr, subnet })
    }
}

/// The gateway docker picks: the first host address.
pub fn default_gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// True when two subnets share any address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The host route (from `routes`) that `subnet` would collide with: any route sharing an
/// address with it, except a default route (`0.0.0.0/0`), which overlaps everything. The
/// caller leaves out routes through berth's own bridges (their subnets are rows already).
pub fn colliding_route(subnet: Ipv4Net, routes: &[Ipv4Net]) -> Option<Ipv4Net> {
    routes
        .iter()
        .copied()
        .find(|r| r.prefix_len() > 0 && overlaps(subnet, *r))
}

/// docker's default address pools, in the order it tries them: 172.17–31.0.0/16, then
/// 192.168.0.0/16 cut into /20s.
pub fn default_pool() -> impl Iterator<Item = Ipv4Net> {
    let b16 = (17u8..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("/16"));
    let c20 = (0u8..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("/20"));
    b16.chain(c20)
}

/// The first subnet of the default pool that overlaps neither a berth network in `taken`
/// nor a host route in `routes`.
pub fn pick_default_subnet(taken: &[Ipv4Net], routes: &[Ipv4Net]) -> Option<Ipv4Net> {
    default_pool().find(|candidate| {
        !taken.iter().any(|t| overlaps(*candidate, *t)) && colliding_route(*candidate, routes).is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_validates_subnets() {
        assert_eq!(parse_subnet("192.168.10.0/24").unwrap(), net("192.168.10.0/24"));
        assert_eq!(
            parse_subnet("192.168.10.5/24").unwrap_err().to_string(),
            "invalid subnet 192.168.10.5/24: host bits are set (did you mean 192.168.10.0/24?)"
        );
        assert!(matches!(
            parse_subnet("10.0.0.0/31"),
            Err(SubnetError::TooSmall(_))
        ));
        assert!(matches!(parse_subnet("10.0.0.0"), Err(SubnetError::Syntax(_))));
        assert!(matches!(parse_subnet("fd00::/64"), Err(SubnetError::Syntax(_))));
        assert!(matches!(parse_subnet("10.0.0.0/33"), Err(SubnetError::Syntax(_))));
        assert!(parse_subnet("10.0.0.0/30").is_ok());
    }

    #[test]
    fn host_addresses_exclude_network_and_broadcast() {
        let n = net("10.1.0.0/24");
        assert!(!is_host_addr(n, "10.1.0.0".parse().unwrap()));
        assert!(is_host_addr(n, "10.1.0.1".parse().unwrap()));
        assert!(is_host_addr(n, "10.1.0.254".parse().unwrap()));
        assert!(!is_host_addr(n, "10.1.0.255".parse().unwrap()));
        assert!(!is_host_addr(n, "10.1.1.1".parse().unwrap()));
        assert_eq!(default_gateway(n), "10.1.0.1".parse::<Ipv4Addr>().unwrap());
        assert!(check_host_addr(n, "10.2.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        assert!(overlaps(net("10.0.0.0/8"), net("10.5.0.0/16")));
        assert!(overlaps(net("10.5.0.0/16"), net("10.0.0.0/8")));
        assert!(overlaps(net("10.5.0.0/16"), net("10.5.0.0/16")));
        assert!(!overlaps(net("10.5.0.0/16"), net("10.6.0.0/16")));
        assert!(!overlaps(net("192.168.0.0/24"), net("192.168.1.0/24")));
    }

    #[test]
    fn picker_skips_taken_subnets_and_host_routes() {
        assert_eq!(pick_default_subnet(&[], &[]), Some(net("172.17.0.0/16")));
        // The default route never collides; a host LAN on 172.17.5.0/24 does.
        let routes = [net("0.0.0.0/0"), net("172.17.5.0/24")];
        assert_eq!(pick_default_subnet(&[], &routes), Some(net("172.18.0.0/16")));
        let taken = [net("172.18.0.0/16")];
        assert_eq!(pick_default_subnet(&taken, &routes), Some(net("172.19.0.0/16")));
        // A host on 172.16.0.0/12 pushes berth into 192.168.0.0/20 and beyond.
        let routes = [net("172.16.0.0/12"), net("192.168.0.0/24")];
        assert_eq!(pick_default_subnet(&[], &routes), Some(net("192.168.16.0/20")));
        let all: Vec<Ipv4Net> = default_pool().collect();
        assert_eq!(all.len(), 31);
        assert_eq!(pick_default_subnet(&all, &[]), None);
    }
}
