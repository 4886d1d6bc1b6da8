//! [`NetworkManager`]: networks, endpoints, published ports, DNS, reconcile.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::dns::{self, DnsServer, Records};
use crate::error::{NetError, Result};
use crate::netlink::{self, ContainerIf};
use crate::nft;
use crate::ports::{self, Reservation};
use crate::state::{
    mac_for_ip, mac_to_string, EndpointRecord, NetworkRecord, PortMapping, PublishedRecord, State,
};
use crate::subnet::Ipv4Net;

const IFNAMSIZ: usize = 15;
const STATE_FILE: &str = "networks.json";

/// How the manager names and places things.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Directory holding `networks.json`.
    pub state_dir: PathBuf,
    /// nftables `ip` table owned by berth (`berth`).
    pub table_name: String,
    /// Name of the pre-defined network (`bridge`).
    pub default_network: String,
    /// Bridge device of the default network (`berth0`).
    pub default_bridge: String,
    /// Subnet of the default network (`172.17.0.0/16`).
    pub default_subnet: String,
    /// Bridge device prefix of user networks (`br-`); the rest is the id.
    pub bridge_prefix: String,
    /// Host-side veth prefix (`veth`); the rest is random hex.
    pub veth_prefix: String,
    /// Upstream resolvers for the embedded DNS; `None` = from `resolv_conf`.
    pub upstream_dns: Option<Vec<SocketAddr>>,
    /// The host's resolv.conf.
    pub resolv_conf: PathBuf,
}

impl NetworkConfig {
    /// Docker-like defaults under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        NetworkConfig {
            state_dir: state_dir.into(),
            table_name: "berth".into(),
            default_network: "bridge".into(),
            default_bridge: "berth0".into(),
            default_subnet: "172.17.0.0/16".into(),
            bridge_prefix: "br-".into(),
            veth_prefix: "veth".into(),
            upstream_dns: None,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// A network as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// 64-hex id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Bridge device.
    pub bridge: String,
    /// Subnet in CIDR form.
    pub subnet: String,
    /// Gateway address.
    pub gateway: Ipv4Addr,
    /// The pre-defined default network.
    pub is_default: bool,
    /// Served by the embedded DNS.
    pub dns: bool,
    /// Creation time (seconds since the epoch).
    pub created_unix: u64,
    /// Attached containers.
    pub endpoints: Vec<Endpoint>,
}

/// What the engine needs to fill NetworkSettings, /etc/hosts, resolv.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Network name.
    pub network: String,
    /// Network id.
    pub network_id: String,
    /// Container id.
    pub container_id: String,
    /// Container address.
    pub ip: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
    /// Gateway (bridge address).
    pub gateway: Ipv4Addr,
    /// `02:42:..` MAC of the container interface.
    pub mac: String,
    /// Host-side veth (docker's `SandboxKey`-adjacent info, for debugging).
    pub veth_host: String,
    /// Interface name inside the container.
    pub ifname: String,
    /// Nameserver the container should use if this is its first network
    /// (`Some(gateway)` for networks with the embedded DNS).
    pub embedded_dns: Option<Ipv4Addr>,
}

/// Parameters of [`NetworkManager::attach`].
#[derive(Debug, Clone)]
pub struct AttachRequest<'a> {
    /// Container id (full).
    pub container_id: &'a str,
    /// `/proc/<pid>/ns/net` or a bind-mounted netns file.
    pub netns_path: &'a Path,
    /// Container name (registered in DNS).
    pub name: &'a str,
    /// Extra DNS aliases.
    pub aliases: &'a [String],
}

struct Inner {
    state: State,
    reservations: HashMap<String, Vec<Reservation>>,
    records: HashMap<String, Records>,
    dns: HashMap<String, DnsServer>,
}

/// Owns berth's bridges, veths, nftables table and DNS servers.
pub struct NetworkManager {
    cfg: NetworkConfig,
    state_path: PathBuf,
    inner: Mutex<Inner>,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

fn valid_ifname_prefix(p: &str, max: usize) -> bool {
    !p.is_empty()
        && p.len() <= max
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Docker's network name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn validate_network_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidName(name.to_string()))
    }
}

/// Subnets tried for networks created without `--subnet`, like docker's
/// default pools.
fn auto_pool() -> impl Iterator<Item = Ipv4Net> {
    let a = (18u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let b = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    a.chain(b)
}

/// The `/etc/resolv.conf` a container should get: the embedded DNS when the
/// network has one, else the host's file without loopback nameservers
/// (falling back to public resolvers like docker when none remain).
pub fn container_resolv_conf(host_resolv_conf: &str, embedded: Option<Ipv4Addr>) -> String {
    let mut out = String::new();
    let mut nameservers = 0;
    for line in host_resolv_conf.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if embedded.is_some() {
                    continue;
                }
                let Some(ip) = words
                    .next()
                    .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                else {
                    continue;
                };
                if ip.is_loopback() || ip.is_ipv6() {
                    continue;
                }
                out.push_str(&format!("nameserver {ip}\n"));
                nameservers += 1;
            }
            Some("search") | Some("domain") | Some("options") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if let Some(gw) = embedded {
        out.insert_str(0, &format!("nameserver {gw}\n"));
    } else if nameservers == 0 {
        out.insert_str(0, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

impl NetworkManager {
    /// Loads state, creates the default network if needed and brings every
    /// bridge, the nftables table, port reservations and DNS servers in line
    /// with the persisted state. Must run inside a tokio runtime.
    pub async fn open(cfg: NetworkConfig) -> Result<Self> {
        nft::validate_table_name(&cfg.table_name)?;
        if !valid_ifname_prefix(&cfg.default_bridge, IFNAMSIZ) {
            return Err(NetError::Config(format!(
                "bad bridge name {:?}",
                cfg.default_bridge
            )));
        }
        if !valid_ifname_prefix(&cfg.bridge_prefix, IFNAMSIZ - 4)
            || !valid_ifname_prefix(&cfg.veth_prefix, IFNAMSIZ - 4)
        {
            return Err(NetError::Config(
                "bridge/veth prefixes must be at most 11 plain characters".into(),
            ));
        }
        validate_network_name(&cfg.default_network)?;
        let default_subnet: Ipv4Net = cfg.default_subnet.parse()?;
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| NetError::io(format!("create {}", cfg.state_dir.display()), e))?;
        let state_path = cfg.state_dir.join(STATE_FILE);
        let mut state = State::load(&state_path)?;
        if !state.networks.values().any(|n| n.is_default) {
            let gateway = default_subnet
                .gateway()
                .ok_or_else(|| NetError::SubnetTooSmall(default_subnet.to_string()))?;
            state.networks.insert(
                cfg.default_network.clone(),
                NetworkRecord {
                    id: random_hex(32),
                    name: cfg.default_network.clone(),
                    bridge: cfg.default_bridge.clone(),
                    subnet: default_subnet,
                    gateway,
                    is_default: true,
                    dns: false,
                    created_unix: now_unix(),
                },
            );
        }
        state.save(&state_path)?;
        let mgr = NetworkManager {
            cfg,
            state_path,
            inner: Mutex::new(Inner {
                state,
                reservations: HashMap::new(),
                records: HashMap::new(),
                dns: HashMap::new(),
            }),
        };
        netlink::enable_ip_forward()?;
        {
            let mut inner = mgr.inner.lock().await;
            mgr.converge(&mut inner).await?;
        }
        Ok(mgr)
    }

    /// The configuration in use.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    fn bridge_alias(&self, network: &str) -> String {
        format!("berth:{}:net:{network}", self.cfg.table_name)
    }

    fn veth_alias_prefix(&self) -> String {
        format!("berth:{}:ep:", self.cfg.table_name)
    }

    fn upstreams(&self) -> Vec<SocketAddr> {
        self.cfg
            .upstream_dns
            .clone()
            .unwrap_or_else(|| dns::upstreams_from_resolv_conf(&self.cfg.resolv_conf))
    }

    /// Makes bridges, DNS records/servers, port reservations and nft rules
    /// match `inner.state` (idempotent).
    async fn converge(&self, inner: &mut Inner) -> Result<()> {
        let h = netlink::connect()?;
        for n in inner.state.networks.values() {
            netlink::ensure_bridge(
                &h,
                &n.bridge,
                &self.bridge_alias(&n.name),
                n.gateway,
                n.subnet,
            )
            .await?;
        }
        // DNS records from endpoints.
        inner.records.clear();
        for n in inner.state.networks.values() {
            inner.records.insert(n.name.clone(), Records::default());
        }
        for ep in &inner.state.endpoints {
            if let Some(r) = inner.records.get(&ep.network) {
                register(r, &ep.dns_names, ep.ip);
            }
        }
        // Port reservations for mappings we do not hold yet.
        let published = inner.state.published.clone();
        for p in &published {
            let m = &p.mapping;
            let held = inner.reservations.get(&p.container_id).is_some_and(|v| {
                v.iter()
                    .any(|r| r.host_ip == m.host_ip && r.port == m.host_port && r.proto == m.proto)
            });
            if held {
                continue;
            }
            match ports::reserve(m.host_ip, m.host_port, m.proto) {
                Ok(r) => inner
                    .reservations
                    .entry(p.container_id.clone())
                    .or_default()
                    .push(r),
                Err(e) => {
                    tracing::warn!(error = %e, container = %p.container_id, "could not re-reserve published port")
                }
            }
        }
        nft::apply(&self.cfg.table_name, &inner.state)?;
        let names: Vec<String> = inner
            .state
            .networks
            .values()
            .filter(|n| n.dns)
            .map(|n| n.name.clone())
            .collect();
        for name in names {
            self.start_dns(inner, &name).await;
        }
        Ok(())
    }

    async fn start_dns(&self, inner: &mut Inner, network: &str) {
        if inner.dns.contains_key(network) {
            return;
        }
        let Some(n) = inner.state.networks.get(network) else {
            return;
        };
        let records = inner
            .records
            .entry(network.to_string())
            .or_default()
            .clone();
        let addr = SocketAddr::new(n.gateway.into(), 53);
        match DnsServer::start(addr, records, self.upstreams()).await {
            Ok(s) => {
                tracing::info!(network, %addr, "embedded DNS listening");
                inner.dns.insert(network.to_string(), s);
            }
            Err(e) => tracing::warn!(network, error = %e, "embedded DNS not started"),
        }
    }

    fn save(&self, inner: &Inner) -> Result<()> {
        inner.state.save(&self.state_path)
    }

    fn to_network(&self, state: &State, n: &NetworkRecord) -> Network {
        Network {
            id: n.id.clone(),
            name: n.name.clone(),
            bridge: n.bridge.clone(),
            subnet: n.subnet.to_string(),
            gateway: n.gateway,
            is_default: n.is_default,
            dns: n.dns,
            created_unix: n.created_unix,
            endpoints: state
                .endpoints_of(&n.name)
                .map(|e| endpoint_of(n, e))
                .collect(),
        }
    }

    /// Every network.
    pub async fn list(&self) -> Vec<Network> {
        let inner = self.inner.lock().await;
        inner
            .state
            .networks
            .values()
            .map(|n| self.to_network(&inner.state, n))
            .collect()
    }

    /// Looks a network up by exact name, exact id or unique id prefix.
    pub async fn find(&self, name_or_id: &str) -> Option<Network> {
        let inner = self.inner.lock().await;
        let s = &inner.state;
        let rec = s.networks.get(name_or_id).or_else(|| {
            let mut hits = s
                .networks
                .values()
                .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
            match (hits.next(), hits.next()) {
                (Some(n), None) => Some(n),
                _ => None,
            }
        })?;
        Some(self.to_network(s, rec))
    }

    /// Creates a user-defined bridge network with embedded DNS. Without a
    /// subnet one is picked from docker-like pools avoiding every existing
    /// network and host route.
    pub async fn create_network(&self, name: &str, subnet: Option<&str>) -> Result<Network> {
        validate_network_name(name)?;
        let mut inner = self.inner.lock().await;
        if inner.state.networks.contains_key(name) {
            return Err(NetError::NetworkExists(name.to_string()));
        }
        let ours: Vec<Ipv4Net> = inner.state.networks.values().map(|n| n.subnet).collect();
        let subnet = match subnet {
            Some(s) => {
                let net: Ipv4Net = s.parse()?;
                if net.gateway().is_none() {
                    return Err(NetError::SubnetTooSmall(net.to_string()));
                }
                if ours.iter().any(|o| o.overlaps(&net)) {
                    return Err(NetError::Overlap);
                }
                net
            }
            None => {
                let h = netlink::connect()?;
                let host = netlink::host_ipv4_networks(&h).await?;
                auto_pool()
                    .find(|c| !ours.iter().chain(host.iter()).any(|o| o.overlaps(c)))
                    .ok_or(NetError::NoFreeSubnet)?
            }
        };
        let gateway = subnet
            .gateway()
            .ok_or_else(|| NetError::SubnetTooSmall(subnet.to_string()))?;
        let id = random_hex(32);
        let room = IFNAMSIZ - self.cfg.bridge_prefix.len();
        let bridge = format!("{}{}", self.cfg.bridge_prefix, &id[..room.min(id.len())]);
        let rec = NetworkRecord {
            id,
            name: name.to_string(),
            bridge: bridge.clone(),
            subnet,
            gateway,
            is_default: false,
            dns: true,
            created_unix: now_unix(),
        };
        inner.state.networks.insert(name.to_string(), rec.clone());
        inner.records.insert(name.to_string(), Records::default());
        let setup = async {
            self.save(&inner)?;
            let h = netlink::connect()?;
            netlink::ensure_bridge(&h, &bridge, &self.bridge_alias(name), gateway, subnet).await?;
            nft::apply(&self.cfg.table_name, &inner.state)
        }
        .await;
        if let Err(e) = setup {
            inner.state.networks.remove(name);
            inner.records.remove(name);
            if let Ok(h) = netlink::connect() {
                let _ = netlink::delete_link(&h, &bridge).await;
            }
            let _ = nft::apply(&self.cfg.table_name, &inner.state);
            let _ = self.save(&inner);
            return Err(e);
        }
        self.start_dns(&mut inner, name).await;
        tracing::info!(network = name, %subnet, bridge, "network created");
        Ok(self.to_network(&inner.state, &rec))
    }

    /// Removes a user-defined network without endpoints.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let mut inner = self.inner.lock().await;
        let rec = inner
            .state
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| NetError::NetworkNotFound(name.to_string()))?;
        if rec.is_default {
            return Err(NetError::PredefinedNetwork(name.to_string()));
        }
        if inner.state.endpoints_of(name).next().is_some() {
            return Err(NetError::ActiveEndpoints(name.to_string()));
        }
        if let Some(d) = inner.dns.remove(name) {
            d.stop();
        }
        inner.records.remove(name);
        inner.state.networks.remove(name);
        self.save(&inner)?;
        nft::apply(&self.cfg.table_name, &inner.state)?;
        let h = netlink::connect()?;
        netlink::delete_link(&h, &rec.bridge).await?;
        tracing::info!(network = name, "network removed");
        Ok(())
    }

    /// Connects a container (its network namespace) to `network`: a veth
    /// pair, an address from the pool, default route, DNS names.
    pub async fn attach(&self, network: &str, req: AttachRequest<'_>) -> Result<Endpoint> {
        let mut inner = self.inner.lock().await;
        let net = inner
            .state
            .networks
            .get(network)
            .cloned()
            .ok_or_else(|| NetError::NetworkNotFound(network.to_string()))?;
        if inner.state.endpoint(network, req.container_id).is_some() {
            return Err(NetError::AlreadyAttached {
                container: req.container_id.to_string(),
                network: network.to_string(),
            });
        }
        let ip = inner.state.allocate_ip(&net)?;
        let mac = mac_for_ip(ip);
        let suffix_len = IFNAMSIZ - self.cfg.veth_prefix.len();
        let rnd = random_hex(8);
        let veth_host = format!(
            "{}{}",
            self.cfg.veth_prefix,
            &rnd[..suffix_len.min(rnd.len()).min(11)]
        );
        let peer = format!("bcp{}", &rnd[..8]);
        let alias = format!(
            "{}{}:{}",
            self.veth_alias_prefix(),
            req.container_id,
            network
        );
        let h = netlink::connect()?;
        let plumb = async {
            netlink::create_veth(&h, &veth_host, &peer, &net.bridge, &alias).await?;
            netlink::move_to_netns(&h, &peer, req.netns_path).await?;
            let cfg = ContainerIf {
                peer: peer.clone(),
                mac,
                ip,
                prefix: net.subnet.prefix(),
                gateway: net.gateway,
            };
            netlink::in_netns(req.netns_path, move || {
                netlink::configure_container_side(cfg)
            })
            .await
        }
        .await;
        let ifname = match plumb {
            Ok(n) => n,
            Err(e) => {
                let _ = netlink::delete_link(&h, &veth_host).await;
                let _ = netlink::delete_link(&h, &peer).await;
                return Err(e);
            }
        };
        let mut dns_names: Vec<String> = Vec::new();
        let short_id: String = req.container_id.chars().take(12).collect();
        for n in std::iter::once(req.name)
            .chain(req.aliases.iter().map(String::as_str))
            .chain(std::iter::once(short_id.as_str()))
        {
            let n = n
                .trim_start_matches('/')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if !n.is_empty() && !dns_names.contains(&n) {
                dns_names.push(n);
            }
        }
        let rec = EndpointRecord {
            container_id: req.container_id.to_string(),
            network: network.to_string(),
            ip,
            mac: mac_to_string(&mac),
            veth_host: veth_host.clone(),
            ifname,
            dns_names,
        };
        inner.state.endpoints.push(rec.clone());
        if let Err(e) = self.save(&inner) {
            inner.state.endpoints.retain(|e| e.veth_host != veth_host);
            let _ = netlink::delete_link(&h, &veth_host).await;
            return Err(e);
        }
        if let Some(r) = inner.records.get(network) {
            register(r, &rec.dns_names, ip);
        }
        tracing::info!(network, container = req.container_id, %ip, "endpoint attached");
        Ok(endpoint_of(&net, &rec))
    }

    /// Disconnects a container from `network` (removes the veth pair, frees
    /// the address, drops its DNS names and any port mapping to that address).
    pub async fn detach(&self, network: &str, container_id: &str) -> Result<()> {
        self.detach_with(network, container_id, false).await
    }

    /// [`detach`](Self::detach) for a container that has exited: the veth is deleted
    /// in the background. That takes the kernel ~15 ms (RTNL, RCU grace periods) and
    /// happens by itself once the container's namespace is gone, so it stays off the
    /// exit path; a link a crash leaves behind is removed by `reconcile` (it carries
    /// berth's alias).
    pub async fn detach_exited(&self, network: &str, container_id: &str) -> Result<()> {
        self.detach_with(network, container_id, true).await
    }

    async fn detach_with(&self, network: &str, container_id: &str, deferred: bool) -> Result<()> {
        let mut inner = self.inner.lock().await;
        let ep = inner
            .state
            .endpoint(network, container_id)
            .cloned()
            .ok_or_else(|| NetError::NotAttached {
                container: container_id.to_string(),
                network: network.to_string(),
            })?;
        self.drop_endpoint(&mut inner, &ep, deferred).await
    }

    async fn drop_endpoint(
        &self,
        inner: &mut Inner,
        ep: &EndpointRecord,
        deferred: bool,
    ) -> Result<()> {
        if deferred {
            let veth = ep.veth_host.clone();
            tokio::spawn(async move {
                let res = match netlink::connect() {
                    Ok(h) => netlink::delete_link(&h, &veth).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = res {
                    tracing::warn!(link = %veth, error = %e, "cannot delete veth");
                }
            });
        } else {
            let h = netlink::connect()?;
            netlink::delete_link(&h, &ep.veth_host).await?;
        }
        inner
            .state
            .endpoints
            .retain(|e| !(e.network == ep.network && e.container_id == ep.container_id));
        if let Some(r) = inner.records.get(&ep.network) {
            unregister(r, &ep.dns_names, ep.ip);
        }
        let before = inner.state.published.len();
        inner
            .state
            .published
            .retain(|p| !(p.container_id == ep.container_id && p.container_ip == ep.ip));
        if inner.state.published.len() != before {
            self.rebuild_reservations_for(inner, &ep.container_id);
            nft::apply(&self.cfg.table_name, &inner.state)?;
        }
        self.save(inner)?;
        tracing::info!(network = %ep.network, container = %ep.container_id, "endpoint detached");
        Ok(())
    }

    /// Keeps only the reservations of `container` that still have a mapping.
    fn rebuild_reservations_for(&self, inner: &mut Inner, container: &str) {
        let wanted: Vec<PortMapping> = inner
            .state
            .published
            .iter()
            .filter(|p| p.container_id == container)
            .map(|p| p.mapping.clone())
            .collect();
        if let Some(v) = inner.reservations.get_mut(container) {
            v.retain(|r| {
                wanted
                    .iter()
                    .any(|m| m.host_ip == r.host_ip && m.host_port == r.port && m.proto == r.proto)
            });
        }
    }

    /// Publishes ports of `container_id` (reachable at `container_ip`).
    /// Either every mapping is set up or none is.
    pub async fn publish(
        &self,
        container_id: &str,
        container_ip: Ipv4Addr,
        mappings: &[PortMapping],
    ) -> Result<Vec<PortMapping>> {
        let mut inner = self.inner.lock().await;
        let mut held = Vec::new();
        let mut resolved = Vec::new();
        for m in mappings {
            if m.container_port == 0 {
                return Err(NetError::InvalidPort("container port 0".into()));
            }
            let r = ports::reserve(m.host_ip, m.host_port, m.proto)?;
            resolved.push(PortMapping {
                host_port: r.port,
                ..m.clone()
            });
            held.push(r);
        }
        let recs: Vec<PublishedRecord> = resolved
            .iter()
            .map(|m| PublishedRecord {
                container_id: container_id.to_string(),
                container_ip,
                mapping: m.clone(),
            })
            .collect();
        let n_before = inner.state.published.len();
        inner.state.published.extend(recs);
        let applied =
            nft::apply(&self.cfg.table_name, &inner.state).and_then(|_| self.save(&inner));
        if let Err(e) = applied {
            inner.state.published.truncate(n_before);
            let _ = nft::apply(&self.cfg.table_name, &inner.state);
            let _ = self.save(&inner);
            return Err(e);
        }
        inner
            .reservations
            .entry(container_id.to_string())
            .or_default()
            .extend(held);
        Ok(resolved)
    }

    /// Removes every port mapping of `container_id`.
    pub async fn unpublish(&self, container_id: &str) -> Result<()> {
        let mut inner = self.inner.lock().await;
        let has_rules = inner
            .state
            .published
            .iter()
            .any(|p| p.container_id == container_id);
        if !has_rules {
            // Nothing published: no rules to regenerate (an `nft` run costs
            // milliseconds on every container exit otherwise).
            inner.reservations.remove(container_id);
            return Ok(());
        }
        inner
            .state
            .published
            .retain(|p| p.container_id != container_id);
        nft::apply(&self.cfg.table_name, &inner.state)?;
        inner.reservations.remove(container_id);
        self.save(&inner)
    }

    /// Port mappings of a container.
    pub async fn published(&self, container_id: &str) -> Vec<PortMapping> {
        let inner = self.inner.lock().await;
        inner
            .state
            .published
            .iter()
            .filter(|p| p.container_id == container_id)
            .map(|p| p.mapping.clone())
            .collect()
    }

    /// After a crash/restart: drops endpoints and port mappings of containers
    /// not in `live`, deletes leftover links marked as ours (by alias) that
    /// the state does not know, and re-applies bridges, rules and DNS.
    pub async fn reconcile(&self, live: &HashSet<String>) -> Result<()> {
        let mut inner = self.inner.lock().await;
        let dead: Vec<EndpointRecord> = inner
            .state
            .endpoints
            .iter()
            .filter(|e| !live.contains(&e.container_id))
            .cloned()
            .collect();
        for ep in &dead {
            self.drop_endpoint(&mut inner, ep, false).await?;
        }
        inner
            .state
            .published
            .retain(|p| live.contains(&p.container_id));
        inner.reservations.retain(|c, _| live.contains(c));
        let h = netlink::connect()?;
        let ep_prefix = self.veth_alias_prefix();
        let net_prefix = format!("berth:{}:net:", self.cfg.table_name);
        for l in netlink::list_links(&h).await? {
            let Some(alias) = l.alias.as_deref() else {
                continue;
            };
            let known = if alias.starts_with(&ep_prefix) {
                inner.state.endpoints.iter().any(|e| e.veth_host == l.name)
            } else if alias.starts_with(&net_prefix) {
                inner.state.networks.values().any(|n| n.bridge == l.name)
            } else {
                true
            };
            if !known {
                tracing::info!(link = %l.name, alias, "removing leftover link");
                netlink::delete_link(&h, &l.name).await?;
            }
        }
        self.save(&inner)?;
        self.converge(&mut inner).await
    }

    /// Stops DNS servers and releases port reservations (daemon shutdown);
    /// links and rules stay for running containers.
    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        for (_, d) in inner.dns.drain() {
            d.stop();
        }
        inner.reservations.clear();
    }

    /// Removes everything this manager ever set up: veths, bridges (the
    /// default one too), the nftables table, DNS servers and the state file.
    pub async fn destroy_all(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        for (_, d) in inner.dns.drain() {
            d.stop();
        }
        inner.reservations.clear();
        let h = netlink::connect()?;
        for ep in &inner.state.endpoints {
            netlink::delete_link(&h, &ep.veth_host).await?;
        }
        nft::delete_table(&self.cfg.table_name)?;
        for n in inner.state.networks.values() {
            netlink::delete_link(&h, &n.bridge).await?;
        }
        // Anything else carrying our marks.
        let prefix = format!("berth:{}:", self.cfg.table_name);
        for l in netlink::list_links(&h).await? {
            if l.alias.as_deref().is_some_and(|a| a.starts_with(&prefix)) {
                netlink::delete_link(&h, &l.name).await?;
            }
        }
        inner.state = State::default();
        match std::fs::remove_file(&self.state_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetError::io("remove network state", e)),
        }
    }

    /// resolv.conf content for a container whose first network is `ep`'s.
    pub fn resolv_conf_for(&self, ep: &Endpoint) -> String {
        let host = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        container_resolv_conf(&host, ep.embedded_dns)
    }
}

fn endpoint_of(n: &NetworkRecord, e: &EndpointRecord) -> Endpoint {
    Endpoint {
        network: n.name.clone(),
        network_id: n.id.clone(),
        container_id: e.container_id.clone(),
        ip: e.ip,
        prefix_len: n.subnet.prefix(),
        gateway: n.gateway,
        mac: e.mac.clone(),
        veth_host: e.veth_host.clone(),
        ifname: e.ifname.clone(),
        embedded_dns: n.dns.then_some(n.gateway),
    }
}

fn register(records: &Records, names: &[String], ip: Ipv4Addr) {
    if let Ok(mut m) = records.write() {
        for n in names {
            let v = m.entry(n.clone()).or_default();
            if !v.contains(&ip) {
                v.push(ip);
            }
        }
    }
}

fn unregister(records: &Records, names: &[String], ip: Ipv4Addr) {
    if let Ok(mut m) = records.write() {
        for n in names {
            if let Some(v) = m.get_mut(n) {
                v.retain(|x| *x != ip);
                if v.is_empty() {
                    m.remove(n);
                }
            }
        }
    }
}

/// Shared handle type the engine can store.
pub type SharedNetworkManager = Arc<NetworkManager>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names() {
        assert!(validate_network_name("my-net_1.x").is_ok());
        assert!(validate_network_name("-x").is_err());
        assert!(validate_network_name("").is_err());
        assert!(validate_network_name("a b").is_err());
        assert!(validate_network_name("a/b").is_err());
    }

    #[test]
    fn resolv_conf() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n";
        let plain = container_resolv_conf(host, None);
        assert_eq!(plain, "nameserver 10.0.0.2\nsearch corp\noptions edns0\n");
        let emb = container_resolv_conf(host, Some(Ipv4Addr::new(172, 18, 0, 1)));
        assert_eq!(emb, "nameserver 172.18.0.1\nsearch corp\noptions edns0\n");
        let only_local = container_resolv_conf("nameserver 127.0.0.53\n", None);
        assert!(only_local.starts_with("nameserver 8.8.8.8\n"));
    }

    #[test]
    fn pool_is_docker_like() {
        let v: Vec<String> = auto_pool().map(|n| n.to_string()).collect();
        assert_eq!(v[0], "172.18.0.0/16");
        assert_eq!(v[13], "172.31.0.0/16");
        assert_eq!(v[14], "192.168.0.0/20");
        assert_eq!(v.len(), 30);
    }
}
