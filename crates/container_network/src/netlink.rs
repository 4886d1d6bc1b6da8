//! Link, address and route plumbing over rtnetlink.
//!
//! Every call opens a fresh rtnetlink connection on the current tokio
//! runtime. Work inside a container's network namespace runs on a dedicated
//! OS thread that `setns`es into it and then exits, so no runtime thread ever
//! changes namespace.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{NetError, Result};
use crate::subnet::Ipv4Net;

/// Negative errno carried by a netlink error, as a positive number.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn ignore_errno(
    r: std::result::Result<(), rtnetlink::Error>,
    allowed: i32,
) -> std::result::Result<(), rtnetlink::Error> {
    match r {
        Err(e) if errno(&e) == Some(allowed) => Ok(()),
        other => other,
    }
}

/// Opens an rtnetlink connection in the calling thread's network namespace.
pub fn connect() -> Result<Handle> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| NetError::io("open rtnetlink socket", e))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A link as seen in a dump.
#[derive(Debug, Clone)]
pub struct LinkInfoLite {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// `ip link set alias` value.
    pub alias: Option<String>,
    /// Kind (`bridge`, `veth`, ...).
    pub kind: Option<String>,
}

fn lite(msg: &LinkMessage) -> LinkInfoLite {
    let mut out = LinkInfoLite {
        index: msg.header.index,
        name: String::new(),
        alias: None,
        kind: None,
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::IfAlias(s) => out.alias = Some(s.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        out.kind = Some(match k {
                            InfoKind::Bridge => "bridge".to_string(),
                            InfoKind::Veth => "veth".to_string(),
                            other => format!("{other:?}").to_lowercase(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// All links of the current namespace.
pub async fn list_links(h: &Handle) -> Result<Vec<LinkInfoLite>> {
    let mut s = h.link().get().execute();
    let mut out = Vec::new();
    while let Some(msg) = s
        .try_next()
        .await
        .map_err(|e| NetError::nl("dump links", e))?
    {
        out.push(lite(&msg));
    }
    Ok(out)
}

/// Index of the link named `name`, if it exists.
pub async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    Ok(list_links(h)
        .await?
        .into_iter()
        .find(|l| l.name == name)
        .map(|l| l.index))
}

/// Deletes a link by name; a missing link is not an error.
pub async fn delete_link(h: &Handle, name: &str) -> Result<()> {
    if let Some(idx) = link_index(h, name).await? {
        let r = h.link().del(idx).execute().await;
        ignore_errno(r, libc::ENODEV)
            .map_err(|e| NetError::nl(format!("delete link {name}"), e))?;
    }
    Ok(())
}

fn write_proc(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| NetError::io(format!("write {path}"), e))
}

/// Enables IPv4 forwarding (needed for NAT and routing between bridges).
pub fn enable_ip_forward() -> Result<()> {
    write_proc("/proc/sys/net/ipv4/ip_forward", "1")
}

/// Creates (or adopts) the bridge `name` with `gateway/prefix`, brings it up
/// and enables `route_localnet` on it so DNAT from 127.0.0.1 works.
pub async fn ensure_bridge(
    h: &Handle,
    name: &str,
    alias: &str,
    gateway: Ipv4Addr,
    subnet: Ipv4Net,
) -> Result<()> {
    let idx = match link_index(h, name).await? {
        Some(i) => i,
        None => {
            let r = h.link().add(LinkBridge::new(name).build()).execute().await;
            ignore_errno(r, libc::EEXIST)
                .map_err(|e| NetError::nl(format!("create bridge {name}"), e))?;
            link_index(h, name)
                .await?
                .ok_or_else(|| NetError::Config(format!("bridge {name} vanished after creation")))?
        }
    };
    h.link()
        .set(LinkUnspec::new_with_index(idx).alias(alias).build())
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("set alias on {name}"), e))?;
    let r = h
        .address()
        .add(idx, IpAddr::V4(gateway), subnet.prefix())
        .execute()
        .await;
    ignore_errno(r, libc::EEXIST)
        .map_err(|e| NetError::nl(format!("add {gateway}/{} to {name}", subnet.prefix()), e))?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("set {name} up"), e))?;
    write_proc(
        &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
        "1",
    )?;
    Ok(())
}

/// Creates a veth pair `host`/`peer`, attaches `host` to `bridge`, marks it
/// with `alias`, brings it up and enables hairpin mode on the bridge port.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    peer: &str,
    bridge: &str,
    alias: &str,
) -> Result<()> {
    let br = link_index(h, bridge)
        .await?
        .ok_or_else(|| NetError::Config(format!("bridge {bridge} does not exist")))?;
    h.link()
        .add(LinkVeth::new(host, peer).build())
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("create veth {host}"), e))?;
    let idx = link_index(h, host)
        .await?
        .ok_or_else(|| NetError::Config(format!("veth {host} vanished after creation")))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .alias(alias)
                .controller(br)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("attach {host} to {bridge}"), e))?;
    // Hairpin lets a container reach its own published port via the host.
    if let Err(e) = write_proc(&format!("/sys/class/net/{host}/brport/hairpin_mode"), "1") {
        tracing::warn!(error = %e, "could not enable hairpin mode");
    }
    Ok(())
}

/// Moves link `name` into the namespace at `netns`.
pub async fn move_to_netns(h: &Handle, name: &str, netns: &Path) -> Result<()> {
    let idx = link_index(h, name)
        .await?
        .ok_or_else(|| NetError::Config(format!("link {name} not found")))?;
    let f = File::open(netns)
        .map_err(|e| NetError::io(format!("open netns {}", netns.display()), e))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .setns_by_fd(f.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("move {name} into {}", netns.display()), e))
}

/// Runs `f` on a fresh thread inside the network namespace at `netns`.
pub async fn in_netns<T, F, Fut>(netns: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    let path: PathBuf = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let run = || -> Result<T> {
                let file = File::open(&path)
                    .map_err(|e| NetError::io(format!("open netns {}", path.display()), e))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetError::io(format!("setns {}", path.display()), std::io::Error::from(e))
                })?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| NetError::io("build netns runtime", e))?;
                rt.block_on(f())
            };
            let _ = tx.send(run());
        })
        .map_err(|e| NetError::io("spawn netns thread", e))?;
    rx.await
        .map_err(|_| NetError::Config("netns worker thread died".into()))?
}

/// What to configure on the container side of a veth.
#[derive(Debug, Clone)]
pub struct ContainerIf {
    /// Temporary name the peer was created with.
    pub peer: String,
    /// MAC to set.
    pub mac: [u8; 6],
    /// Address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway (added only when the namespace has no default route).
    pub gateway: Ipv4Addr,
}

/// Inside the container namespace: renames the peer to the first free
/// `ethN`, sets MAC and address, brings it and `lo` up and adds the default
/// route. Returns the final interface name. Must run via [`in_netns`].
pub async fn configure_container_side(cfg: ContainerIf) -> Result<String> {
    let h = connect()?;
    let links = list_links(&h).await?;
    let idx = links
        .iter()
        .find(|l| l.name == cfg.peer)
        .map(|l| l.index)
        .ok_or_else(|| {
            NetError::Config(format!("{} not found in container namespace", cfg.peer))
        })?;
    let ifname = (0..)
        .map(|n| format!("eth{n}"))
        .find(|n| !links.iter().any(|l| &l.name == n))
        .unwrap_or_else(|| "eth0".into());
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .name(ifname.clone())
                .address(cfg.mac.to_vec())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("rename {} to {ifname}", cfg.peer), e))?;
    h.address()
        .add(idx, IpAddr::V4(cfg.ip), cfg.prefix)
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("add {}/{} to {ifname}", cfg.ip, cfg.prefix), e))?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| NetError::nl(format!("set {ifname} up"), e))?;
    if let Some(lo) = links.iter().find(|l| l.name == "lo") {
        h.link()
            .set(LinkUnspec::new_with_index(lo.index).up().build())
            .execute()
            .await
            .map_err(|e| NetError::nl("set lo up", e))?;
    }
    let r = h
        .route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(cfg.gateway)
                .output_interface(idx)
                .build(),
        )
        .execute()
        .await;
    ignore_errno(r, libc::EEXIST).map_err(|e| NetError::nl("add default route", e))?;
    Ok(ifname)
}

/// IPv4 destinations in the main routing table (except the default route)
/// and the networks of every IPv4 address, for subnet overlap checks.
pub async fn host_ipv4_networks(h: &Handle) -> Result<Vec<Ipv4Net>> {
    let mut out = Vec::new();
    let mut routes = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(r) = routes
        .try_next()
        .await
        .map_err(|e| NetError::nl("dump routes", e))?
    {
        if r.header.address_family != AddressFamily::Inet || r.header.destination_prefix_length == 0
        {
            continue;
        }
        for a in &r.attributes {
            if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = a {
                let p = r.header.destination_prefix_length;
                let masked =
                    Ipv4Addr::from(u32::from(*ip) & (u32::MAX << (32 - u32::from(p.min(32)))));
                if let Ok(n) = Ipv4Net::new(masked, p) {
                    out.push(n);
                }
            }
        }
    }
    let mut addrs = h.address().get().execute();
    while let Some(a) = addrs
        .try_next()
        .await
        .map_err(|e| NetError::nl("dump addresses", e))?
    {
        let p = a.header.prefix_len;
        if p == 0 || p > 32 {
            continue;
        }
        for attr in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr {
                let masked = Ipv4Addr::from(u32::from(*ip) & (u32::MAX << (32 - u32::from(p))));
                if let Ok(n) = Ipv4Net::new(masked, p) {
                    if !ip.is_loopback() {
                        out.push(n);
                    }
                }
            }
        }
    }
    Ok(out)
}
