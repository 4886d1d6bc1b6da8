//! container_network: bridge networking for berth containers.
//!
//! A [`NetworkManager`] owns, for one daemon: Linux bridges (the default
//! network plus user-defined ones), an IPv4 address pool persisted as JSON,
//! one veth pair per container endpoint (configured over rtnetlink inside the
//! container's network namespace), one nftables table for masquerade,
//! published ports (DNAT) and isolation between bridges, and an embedded DNS
//! server on the gateway of each user-defined network.
//!
//! Everything it creates is marked (link aliases `berth:<table>:...`, its own
//! nftables table) so that teardown and [`NetworkManager::reconcile`] never
//! touch anything it does not own.

pub mod dns;
pub mod error;
mod manager;
pub mod netlink;
pub mod nft;
pub mod ports;
pub mod state;
pub mod subnet;

pub use error::{NetError, Result};
pub use manager::{
    container_resolv_conf, AttachRequest, Endpoint, Network, NetworkConfig, NetworkManager,
    SharedNetworkManager,
};
pub use state::{PortMapping, Proto};
pub use subnet::Ipv4Net;
