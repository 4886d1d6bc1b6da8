//! Persisted network state: networks, endpoints (the IPAM) and published ports.
//!
//! Saved as one JSON file, written atomically (temp file + rename), so
//! addresses and port mappings survive daemon restarts.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::subnet::Ipv4Net;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// Lowercase name as docker and nft spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(NetError::InvalidPort(format!(
                "unsupported protocol {other}"
            ))),
        }
    }
}

/// One published port. `host_port == 0` asks for any free port; the value
/// returned by `publish` always carries the real port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on; `0.0.0.0` means every local address.
    pub host_ip: Ipv4Addr,
    /// Host port, 0 = pick a free one.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// A network as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Random 64-hex id, like docker's.
    pub id: String,
    /// User-visible name.
    pub name: String,
    /// Linux bridge device name.
    pub bridge: String,
    /// Subnet.
    pub subnet: Ipv4Net,
    /// Gateway address (on the bridge).
    pub gateway: Ipv4Addr,
    /// True for the pre-defined default bridge network.
    pub is_default: bool,
    /// Whether the embedded DNS server serves this network.
    pub dns: bool,
    /// Creation time, RFC 3339 not needed: seconds since the epoch.
    pub created_unix: u64,
}

/// One container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// Container id.
    pub container_id: String,
    /// Network name.
    pub network: String,
    /// Address inside the subnet.
    pub ip: Ipv4Addr,
    /// MAC address of the container side, `02:42:..`.
    pub mac: String,
    /// Host-side veth name.
    pub veth_host: String,
    /// Interface name inside the container (`eth0`, ...).
    pub ifname: String,
    /// Names registered with the embedded DNS.
    pub dns_names: Vec<String>,
}

/// A published port with the container address it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRecord {
    /// Container id.
    pub container_id: String,
    /// Container address the port is forwarded to.
    pub container_ip: Ipv4Addr,
    /// The resolved mapping (host port never 0 here).
    pub mapping: PortMapping,
}

/// Everything persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Networks by name.
    pub networks: BTreeMap<String, NetworkRecord>,
    /// Endpoints keyed by (network name, container id).
    pub endpoints: Vec<EndpointRecord>,
    /// Published ports.
    pub published: Vec<PublishedRecord>,
}

impl State {
    /// Loads the state file, or an empty state if it does not exist.
    pub fn load(path: &Path) -> Result<State> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| NetError::State {
                path: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(NetError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Saves atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| NetError::State {
            path: path.display().to_string(),
            source,
        })?;
        let tmp: PathBuf = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| NetError::io(format!("write {}", path.display()), e))
    }

    /// Endpoints of one network.
    pub fn endpoints_of<'a>(
        &'a self,
        network: &'a str,
    ) -> impl Iterator<Item = &'a EndpointRecord> {
        self.endpoints.iter().filter(move |e| e.network == network)
    }

    /// Finds an endpoint.
    pub fn endpoint(&self, network: &str, container: &str) -> Option<&EndpointRecord> {
        self.endpoints
            .iter()
            .find(|e| e.network == network && e.container_id == container)
    }

    /// Lowest free address in the network, skipping network, gateway and
    /// broadcast addresses and every address already given out.
    pub fn allocate_ip(&self, network: &NetworkRecord) -> Result<Ipv4Addr> {
        let used: std::collections::HashSet<Ipv4Addr> =
            self.endpoints_of(&network.name).map(|e| e.ip).collect();
        let subnet = network.subnet;
        let broadcast = subnet.broadcast();
        // Cap the scan: a /8 has 16M addresses; the used set is small, so the
        // first free address is found within `used.len() + 2` steps.
        for n in 1..subnet.size() {
            let Some(ip) = subnet.nth(n) else { break };
            if ip == network.gateway || ip == broadcast || used.contains(&ip) {
                continue;
            }
            return Ok(ip);
        }
        Err(NetError::PoolExhausted(network.name.clone()))
    }
}

/// Docker-style MAC derived from the IPv4 address: `02:42:a:b:c:d`.
pub fn mac_for_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Formats a MAC as lowercase colon hex.
pub fn mac_to_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str) -> NetworkRecord {
        let subnet: Ipv4Net = subnet.parse().unwrap();
        NetworkRecord {
            id: "x".into(),
            name: "n".into(),
            bridge: "b".into(),
            subnet,
            gateway: subnet.gateway().unwrap(),
            is_default: false,
            dns: true,
            created_unix: 0,
        }
    }

    fn ep(ip: Ipv4Addr, c: &str) -> EndpointRecord {
        EndpointRecord {
            container_id: c.into(),
            network: "n".into(),
            ip,
            mac: String::new(),
            veth_host: String::new(),
            ifname: "eth0".into(),
            dns_names: vec![],
        }
    }

    #[test]
    fn allocates_lowest_free_and_exhausts() {
        let n = net("10.9.0.0/29"); // .1 gw, .2-.6 usable, .7 broadcast
        let mut s = State::default();
        let mut got = vec![];
        for i in 0..5 {
            let ip = s.allocate_ip(&n).unwrap();
            got.push(ip);
            s.endpoints.push(ep(ip, &format!("c{i}")));
        }
        assert_eq!(got[0], Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 9, 0, 6));
        assert!(matches!(s.allocate_ip(&n), Err(NetError::PoolExhausted(_))));
        // Free .3 and get it back.
        s.endpoints.retain(|e| e.ip != Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(s.allocate_ip(&n).unwrap(), Ipv4Addr::new(10, 9, 0, 3));
    }

    #[test]
    fn state_round_trips_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("networks.json");
        assert_eq!(State::load(&p).unwrap(), State::default());
        let mut s = State::default();
        s.networks.insert("n".into(), net("10.9.0.0/24"));
        s.endpoints.push(ep(Ipv4Addr::new(10, 9, 0, 2), "c"));
        s.published.push(PublishedRecord {
            container_id: "c".into(),
            container_ip: Ipv4Addr::new(10, 9, 0, 2),
            mapping: PortMapping {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
                container_port: 80,
                proto: Proto::Udp,
            },
        });
        s.save(&p).unwrap();
        assert_eq!(State::load(&p).unwrap(), s);
        fs::write(&p, b"{not json").unwrap();
        assert!(matches!(State::load(&p), Err(NetError::State { .. })));
    }

    #[test]
    fn mac_is_docker_like() {
        let m = mac_for_ip(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac_to_string(&m), "02:42:ac:11:00:02");
    }
}
