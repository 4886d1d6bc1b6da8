//! Typed errors of the networking layer.

use std::io;

/// Everything that can go wrong while managing container networks.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A subnet string could not be parsed (docker-like wording).
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// A subnet had host bits set (docker-like wording).
    #[error("invalid subnet {given}: it should be {expected}")]
    HostBitsSet {
        /// What the user gave.
        given: String,
        /// The canonical network address.
        expected: String,
    },
    /// The subnet is too small to hold a gateway and at least one container.
    #[error("invalid subnet {0}: too small for a bridge network")]
    SubnetTooSmall(String),
    /// A requested subnet overlaps an existing network.
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap,
    /// No free subnet left in the automatic pool.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreeSubnet,
    /// A network name is already taken.
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// No such network.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// Network names must be sane.
    #[error("invalid network name {0:?}")]
    InvalidName(String),
    /// The default network cannot be removed.
    #[error("{0} is a pre-defined network and cannot be removed")]
    PredefinedNetwork(String),
    /// A network still has endpoints attached.
    #[error("error while removing network: network {0} has active endpoints")]
    ActiveEndpoints(String),
    /// The container is already attached to this network.
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyAttached {
        /// Container id.
        container: String,
        /// Network name.
        network: String,
    },
    /// The container is not attached to this network.
    #[error("container {container} is not connected to network {network}")]
    NotAttached {
        /// Container id.
        container: String,
        /// Network name.
        network: String,
    },
    /// All addresses of the network's subnet are taken.
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    PoolExhausted(String),
    /// A requested host port is taken (docker-like wording).
    #[error("Bind for {addr}:{port} failed: port is already allocated")]
    PortAllocated {
        /// Host address of the mapping.
        addr: String,
        /// Host port of the mapping.
        port: u16,
    },
    /// A port mapping spec could not be understood.
    #[error("invalid port mapping: {0}")]
    InvalidPort(String),
    /// Configuration error (bad names, lengths).
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// A netlink request failed.
    #[error("netlink: {context}: {source}")]
    Netlink {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: rtnetlink::Error,
    },
    /// `nft` failed.
    #[error("nftables: {0}")]
    Nft(String),
    /// Persisted state could not be (de)serialized.
    #[error("network state file {path}: {source}")]
    State {
        /// File path.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Plain I/O failure with context.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        NetError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn nl(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetError::Netlink {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, NetError>;
