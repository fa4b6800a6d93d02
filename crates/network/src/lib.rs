//! Bridge networks: netlink requests (bridges, veth pairs, addresses,
//! routes) on one synchronous socket, subnets and address allocation.
//! Persisting networks and leases is the engine's job (in the store); this
//! crate only talks to the kernel and computes.
#![forbid(unsafe_code)]

pub mod dns;
pub mod firewall;
/// Accept rules for berth's bridges in Docker's `FORWARD` path.
pub mod forward;
pub mod iptables;
pub mod netlink;
pub mod nft;
pub mod subnet;

pub use firewall::Firewall;
pub use netlink::Netlink;
pub use subnet::{Subnet, Subnet6};
