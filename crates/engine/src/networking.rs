//! Containers on bridge networks: joining the networks a container names
//! (once its network namespace exists, before its process starts),
//! publishing its ports, the /etc/hosts and resolv.conf that go with that,
//! and leaving again when it stops. Built on `container_network`.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

use container_network::{AttachRequest, NetError, NetworkManager, PortMapping, Proto};

use crate::container::{Container, EndpointInfo, PublishedPort};
use crate::error::{EngineError, Result};
use crate::Engine;

/// How the daemon sets up bridge networking.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Bridge device of the default network (`berth0`).
    pub bridge: String,
    /// nftables table owned by berth (`berth`).
    pub nft_table: String,
    /// Subnet of the default network.
    pub default_subnet: String,
}

/// What a started container got from its networks.
#[derive(Debug, Default)]
pub(crate) struct Joined {
    pub endpoints: Vec<EndpointInfo>,
    pub ports: Vec<PublishedPort>,
}

/// Maps network errors onto the API's error kinds.
pub fn net_error(e: NetError) -> EngineError {
    let msg = e.to_string();
    match e {
        NetError::NetworkNotFound(_) => EngineError::NotFound(msg),
        NetError::NetworkExists(_) | NetError::AlreadyAttached { .. } => EngineError::Conflict(msg),
        NetError::ActiveEndpoints(_) | NetError::PredefinedNetwork(_) => {
            EngineError::Forbidden(msg)
        }
        NetError::InvalidCidr(_)
        | NetError::HostBitsSet { .. }
        | NetError::SubnetTooSmall(_)
        | NetError::Overlap
        | NetError::InvalidName(_)
        | NetError::InvalidPort(_) => EngineError::InvalidArgument(msg),
        _ => EngineError::Internal(msg),
    }
}

/// The user network a NetworkMode names (`default`/`bridge` = the default
/// network), or None for modes without a bridge (none, host, container:).
pub(crate) fn network_of_mode(mode: &str, default_network: &str) -> Option<String> {
    match mode {
        "" | "default" | "bridge" => Some(default_network.to_string()),
        "none" | "host" => None,
        m if m.starts_with("container:") => None,
        m => Some(m.to_string()),
    }
}

fn parse_port(s: &str, what: &str) -> Result<u16> {
    s.parse::<u16>()
        .map_err(|_| EngineError::InvalidArgument(format!("invalid {what}: \"{s}\"")))
}

/// Splits `3000/tcp` into port and protocol.
pub(crate) fn parse_port_key(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid proto: {other} (only tcp and udp are supported)"
            )))
        }
    };
    let port = parse_port(port, "containerPort")?;
    if port == 0 {
        return Err(EngineError::InvalidArgument(
            "invalid containerPort: 0".into(),
        ));
    }
    Ok((port, proto))
}

/// The host-side mappings a container asks for: PortBindings, plus every
/// exposed port on a free host port with PublishAllPorts (`-P`).
pub(crate) fn port_mappings(rec: &Container) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    let bindings = rec.host_config.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    for key in keys {
        let (container_port, proto) = parse_port_key(key)?;
        for b in bindings[key].clone().unwrap_or_default() {
            let ip = b.host_ip.unwrap_or_default();
            let host_ip: Ipv4Addr = match ip.as_str() {
                "" => Ipv4Addr::UNSPECIFIED,
                // No IPv6 yet: an explicit IPv6 listen address is skipped.
                s if s.contains(':') => continue,
                s => s.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid IP address: {s}"))
                })?,
            };
            let hp = b.host_port.unwrap_or_default();
            // A host range `8000-8010` takes its first port.
            let hp = hp.split('-').next().unwrap_or("");
            let host_port = if hp.is_empty() {
                0
            } else {
                parse_port(hp, "hostPort")?
            };
            out.push(PortMapping {
                host_ip,
                host_port,
                container_port,
                proto,
            });
        }
    }
    if rec.host_config.publish_all_ports.unwrap_or(false) {
        for key in rec.config.exposed_ports.clone().unwrap_or_default() {
            let (container_port, proto) = parse_port_key(&key)?;
            if !out
                .iter()
                .any(|m| m.container_port == container_port && m.proto == proto)
            {
                out.push(PortMapping {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 0,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// Rewrites a file in place (no rename): it is bind-mounted into a
/// container, which keeps the old inode across a rename.
fn rewrite_in_place(path: &Path, data: &str) -> std::io::Result<()> {
    std::fs::write(path, data)
}

impl Engine {
    pub(crate) fn net(&self) -> Option<&NetworkManager> {
        self.network.as_ref()
    }

    /// The networks a container joins at start.
    pub(crate) fn networks_of(&self, rec: &Container) -> Vec<String> {
        let Some(net) = self.net() else {
            return Vec::new();
        };
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let mut out: Vec<String> = network_of_mode(&mode, &net.config().default_network)
            .into_iter()
            .collect();
        for n in &rec.extra_networks {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    /// Checks at create time that a named network exists.
    pub(crate) async fn check_network_mode(&self, mode: &str) -> Result<()> {
        let Some(net) = self.net() else {
            return match mode {
                "" | "default" | "bridge" | "none" | "host" => Ok(()),
                m if m.starts_with("container:") => Ok(()),
                m => Err(EngineError::NotFound(format!("network {m} not found"))),
            };
        };
        if let Some(name) = network_of_mode(mode, &net.config().default_network) {
            if net.find(&name).await.is_none() {
                return Err(EngineError::NotFound(format!("network {name} not found")));
            }
        }
        Ok(())
    }

    /// Joins the container (whose process `pid` exists but has not started)
    /// to its networks and publishes its ports. On error nothing is left.
    pub(crate) async fn join_networks(
        &self,
        rec: &Container,
        pid: i32,
    ) -> std::result::Result<Joined, String> {
        let mut joined = Joined::default();
        let Some(net) = self.net() else {
            return Ok(joined);
        };
        let networks = self.networks_of(rec);
        if networks.is_empty() {
            return Ok(joined);
        }
        let netns = format!("/proc/{pid}/ns/net");
        let mut first = None;
        for name in &networks {
            let aliases = rec.aliases.get(name).cloned().unwrap_or_default();
            let req = AttachRequest {
                container_id: &rec.id,
                netns_path: Path::new(&netns),
                name: &rec.name,
                aliases: &aliases,
            };
            match net.attach(name, req).await {
                Ok(ep) => {
                    joined.endpoints.push(EndpointInfo {
                        network: ep.network.clone(),
                        network_id: ep.network_id.clone(),
                        ip: ep.ip.to_string(),
                        prefix_len: ep.prefix_len,
                        gateway: ep.gateway.to_string(),
                        mac: ep.mac.clone(),
                    });
                    if first.is_none() {
                        first = Some(ep);
                    }
                }
                Err(e) => {
                    self.leave_networks_named(&rec.id, &networks).await;
                    return Err(format!("failed to attach to network {name}: {e}"));
                }
            }
        }
        let Some(ep) = first else { return Ok(joined) };
        let mappings = port_mappings(rec).map_err(|e| e.to_string())?;
        if !mappings.is_empty() {
            match net.publish(&rec.id, ep.ip, &mappings).await {
                Ok(resolved) => {
                    joined.ports = resolved
                        .into_iter()
                        .map(|m| PublishedPort {
                            host_ip: m.host_ip.to_string(),
                            host_port: m.host_port,
                            container_port: m.container_port,
                            proto: match m.proto {
                                Proto::Tcp => "tcp".into(),
                                Proto::Udp => "udp".into(),
                            },
                        })
                        .collect();
                }
                Err(e) => {
                    self.leave_networks_named(&rec.id, &networks).await;
                    return Err(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {e}",
                        rec.name, rec.id
                    ));
                }
            }
        }
        let layout = self.layout(&rec.id);
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let hosts = crate::spec::hosts_file(&ep.ip.to_string(), &hostname);
        let written = rewrite_in_place(&layout.hosts(), &hosts)
            .and_then(|_| rewrite_in_place(&layout.resolv_conf(), &net.resolv_conf_for(&ep)));
        if let Err(e) = written {
            self.leave_networks_named(&rec.id, &networks).await;
            return Err(format!("writing /etc/hosts: {e}"));
        }
        Ok(joined)
    }

    async fn leave_networks_named(&self, container_id: &str, networks: &[String]) {
        let Some(net) = self.net() else { return };
        let _ = net.unpublish(container_id).await;
        for n in networks {
            let _ = net.detach_exited(n, container_id).await;
        }
    }

    /// Leaves every network and drops published ports (idempotent); for containers
    /// that are not running, so veths are deleted in the background.
    pub(crate) async fn leave_networks(&self, rec: &Container) {
        let mut names: Vec<String> = rec.endpoints.iter().map(|e| e.network.clone()).collect();
        for n in self.networks_of(rec) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        self.leave_networks_named(&rec.id, &names).await;
    }

    /// Drops network state of containers that are not running any more.
    pub(crate) async fn reconcile_networks(&self, live: &HashSet<String>) {
        if let Some(net) = self.net() {
            if let Err(e) = net.reconcile(live).await {
                tracing::warn!("network reconcile: {e}");
            }
        }
    }
}

impl Engine {
    fn manager(&self) -> Result<&NetworkManager> {
        self.net().ok_or_else(|| {
            EngineError::InvalidArgument("bridge networking is disabled on this daemon".into())
        })
    }

    /// Bridge networks (the built-in `host` and `none` are the API's to add).
    pub async fn network_list(&self) -> Vec<container_network::Network> {
        match self.net() {
            Some(n) => n.list().await,
            None => Vec::new(),
        }
    }

    /// A network by name, id or unique id prefix.
    pub async fn network_get(&self, key: &str) -> Result<container_network::Network> {
        let net = self
            .manager()
            .map_err(|_| EngineError::NotFound(format!("network {key} not found")))?;
        net.find(key)
            .await
            .ok_or_else(|| EngineError::NotFound(format!("network {key} not found")))
    }

    pub async fn network_create(
        &self,
        name: &str,
        subnet: Option<&str>,
    ) -> Result<container_network::Network> {
        if matches!(name, "host" | "none") {
            return Err(EngineError::Forbidden(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        self.manager()?
            .create_network(name, subnet)
            .await
            .map_err(net_error)
    }

    pub async fn network_remove(&self, key: &str) -> Result<()> {
        let n = self.network_get(key).await?;
        let users: Vec<String> = self
            .list()
            .into_iter()
            .filter(|c| {
                c.extra_networks.contains(&n.name)
                    || c.host_config.network_mode.as_deref() == Some(n.name.as_str())
            })
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.manager()?
            .remove_network(&n.name)
            .await
            .map_err(net_error)
    }

    /// Connects a container to a network: at once when it runs, else from
    /// its next start.
    pub async fn network_connect(
        &self,
        key: &str,
        container: &str,
        aliases: Vec<String>,
    ) -> Result<()> {
        let n = self.network_get(key).await?;
        let ctr = self.find(container)?;
        let rec = ctr.get();
        if self.networks_of(&rec).contains(&n.name)
            || rec.endpoints.iter().any(|e| e.network == n.name)
        {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(EngineError::InvalidArgument(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (mode {mode})"
            )));
        }
        if !aliases.is_empty() {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.aliases.insert(n.name.clone(), aliases.clone());
        }
        if rec.state.status == crate::container::Status::Running {
            let netns = format!("/proc/{}/ns/net", rec.state.pid);
            let req = AttachRequest {
                container_id: &rec.id,
                netns_path: Path::new(&netns),
                name: &rec.name,
                aliases: &aliases,
            };
            let ep = self
                .manager()?
                .attach(&n.name, req)
                .await
                .map_err(net_error)?;
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.endpoints.push(EndpointInfo {
                network: ep.network,
                network_id: ep.network_id,
                ip: ep.ip.to_string(),
                prefix_len: ep.prefix_len,
                gateway: ep.gateway.to_string(),
                mac: ep.mac,
            });
            r.extra_networks.push(n.name.clone());
            self.persist(&r)
        } else {
            let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
            r.extra_networks.push(n.name.clone());
            self.persist(&r)
        }
    }

    pub async fn network_disconnect(&self, key: &str, container: &str) -> Result<()> {
        let n = self.network_get(key).await?;
        let ctr = self.find(container)?;
        let rec = ctr.get();
        let joined = rec.endpoints.iter().any(|e| e.network == n.name);
        if !joined && !rec.extra_networks.contains(&n.name) {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, n.name
            )));
        }
        if joined {
            self.manager()?
                .detach(&n.name, &rec.id)
                .await
                .map_err(net_error)?;
        }
        let mut r = ctr.rec.lock().unwrap_or_else(|e| e.into_inner());
        r.endpoints.retain(|e| e.network != n.name);
        r.extra_networks.retain(|x| x != &n.name);
        if r.host_config.network_mode.as_deref() == Some(n.name.as_str()) {
            r.host_config.network_mode = Some("none".into());
        }
        self.persist(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(
            network_of_mode("default", "bridge").as_deref(),
            Some("bridge")
        );
        assert_eq!(
            network_of_mode("appnet", "bridge").as_deref(),
            Some("appnet")
        );
        assert_eq!(network_of_mode("none", "bridge"), None);
        assert_eq!(network_of_mode("container:web", "bridge"), None);
    }

    #[test]
    fn port_keys() {
        assert_eq!(parse_port_key("3000/tcp").unwrap(), (3000, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_port_key("80").unwrap(), (80, Proto::Tcp));
        assert!(parse_port_key("x/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("70000/tcp").is_err());
    }
}
