//! Bridge networking for berth containers.
//!
//! - [`netlink`]: a synchronous rtnetlink client (bridges, veth pairs, namespaces, addresses,
//!   routes) and [`netlink::in_netns`] to act inside a container's network namespace.
//! - [`ipam`]: networks and address allocations as SQLite rows, safe under concurrent
//!   `berth run`s.
//! - [`subnet`]: `--subnet`/`--gateway`/`--ip` validation, overlap checks, the default-subnet
//!   picker.
//! - [`nft`]: the one nftables table berth owns (NAT, forwarding, published ports).
//! - [`endpoint`]: the steps the engine runs per network and per container, built on the above.
//!
//! The crate knows nothing of containers beyond an id and a network namespace.

#![warn(missing_docs)]

pub mod endpoint;
pub mod ipam;
mod libnft;
pub mod netlink;
pub mod nft;
pub mod subnet;

pub use endpoint::{attach, detach, ensure_bridge, Endpoint};
pub use ipam::{IpamError, Network, NetworkSpec};
pub use netlink::{in_netns, Netlink, NetlinkError, Netns};
pub use nft::{NftError, PortMapping, Protocol, Ruleset};
