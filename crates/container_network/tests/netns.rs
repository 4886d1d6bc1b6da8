//! Root-only end-to-end tests: real bridges, veths, network namespaces,
//! nftables. Every name is `bt<6hex>`-prefixed and removed by guards, even
//! on panic. Traffic only goes to loopback, this host's own addresses and the
//! namespaces the tests create.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use container_network::{
    AttachRequest, NetError, NetworkConfig, NetworkManager, PortMapping, Proto,
};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn uniq() -> String {
    format!("bt{:06x}", rand::random::<u32>() & 0xff_ffff)
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"))
}

fn random_subnet() -> String {
    format!(
        "10.{}.{}.0/24",
        200 + rand::random::<u8>() % 50,
        rand::random::<u8>()
    )
}

const ECHO: &str = r#"
import socket, threading
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 8001))
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(d, a)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8000))
t.listen(16)
while True:
    c, _ = t.accept()
    d = c.recv(1024)
    c.sendall(d)
    c.close()
"#;

/// Everything a test creates; Drop removes it all.
struct Env {
    rt: tokio::runtime::Runtime,
    prefix: String,
    state: tempfile::TempDir,
    mgr: Option<NetworkManager>,
    netns: Vec<String>,
    children: Vec<Child>,
    extra_links: Vec<String>,
}

impl Env {
    fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Env {
            rt,
            prefix: uniq(),
            state: tempfile::tempdir().unwrap(),
            mgr: None,
            netns: vec![],
            children: vec![],
            extra_links: vec![],
        }
    }

    fn config(&self, upstream: Option<SocketAddr>) -> NetworkConfig {
        let mut c = NetworkConfig::new(self.state.path());
        c.table_name = self.prefix.clone();
        c.default_bridge = self.prefix.clone();
        c.default_subnet = random_subnet();
        c.bridge_prefix = format!("{}n", self.prefix);
        c.veth_prefix = format!("{}v", self.prefix);
        c.upstream_dns = Some(upstream.into_iter().collect());
        c
    }

    fn open(&mut self, upstream: Option<SocketAddr>) {
        let cfg = self.config(upstream);
        self.mgr = Some(self.rt.block_on(NetworkManager::open(cfg)).unwrap());
    }

    fn mgr(&self) -> &NetworkManager {
        self.mgr.as_ref().unwrap()
    }

    fn netns(&mut self, suffix: &str) -> (String, PathBuf) {
        let name = format!("{}-{suffix}", self.prefix);
        let out = sh(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "{out:?}");
        self.netns.push(name.clone());
        let path = PathBuf::from(format!("/run/netns/{name}"));
        (name, path)
    }

    fn attach(
        &self,
        network: &str,
        cid: &str,
        path: &PathBuf,
        name: &str,
        aliases: &[String],
    ) -> container_network::Endpoint {
        self.rt
            .block_on(self.mgr().attach(
                network,
                AttachRequest {
                    container_id: cid,
                    netns_path: path,
                    name,
                    aliases,
                },
            ))
            .unwrap()
    }

    fn spawn_in(&mut self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Full teardown, then checks nothing is left. Also run by Drop.
    fn teardown(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(m) = self.mgr.take() {
            if let Err(e) = self.rt.block_on(m.destroy_all()) {
                eprintln!("destroy_all: {e}");
            }
        }
        for ns in self.netns.drain(..) {
            let _ = sh(&["ip", "netns", "del", &ns]);
        }
        for l in self.extra_links.drain(..) {
            let _ = sh(&["ip", "link", "del", &l]);
        }
        // Belt and braces: anything still carrying our prefix.
        for l in links_with_prefix(&self.prefix) {
            let _ = sh(&["ip", "link", "del", &l]);
        }
        let _ = sh(&["nft", "delete", "table", "ip", &self.prefix]);
    }

    fn assert_clean(&self) {
        assert!(links_with_prefix(&self.prefix).is_empty(), "links left");
        let t = sh(&["nft", "list", "tables"]);
        assert!(
            !String::from_utf8_lossy(&t.stdout).contains(&self.prefix),
            "nft table left"
        );
        let n = sh(&["ip", "netns", "list"]);
        assert!(
            !String::from_utf8_lossy(&n.stdout).contains(&self.prefix),
            "netns left"
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn links_with_prefix(prefix: &str) -> Vec<String> {
    let out = sh(&["ip", "-o", "link", "show"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn ns_ok(ns: &str, args: &[&str]) -> bool {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    sh(&full).status.success()
}

fn ns_out(ns: &str, args: &[&str]) -> String {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    let o = sh(&full);
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tcp_echo(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"hello")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf)
}

fn wait_tcp(addr: SocketAddr) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if tcp_echo(addr).map(|b| b == b"hello").unwrap_or(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("echo server at {addr} never answered");
}

fn udp_echo(addr: SocketAddr) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        let _ = s.send_to(b"ping", addr);
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return &buf[..n] == b"ping";
        }
    }
    false
}

/// The host's primary (global scope, non-berth) IPv4 address, if any.
fn host_primary_ip(prefix: &str) -> Option<Ipv4Addr> {
    let o = sh(&["ip", "-o", "-4", "addr", "show", "scope", "global"]);
    String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let _idx = w.next()?;
        let dev = w.next()?;
        if dev.starts_with(prefix) || dev.starts_with("bt") {
            return None;
        }
        let _inet = w.next()?;
        w.next()?.split('/').next()?.parse().ok()
    })
}

fn dnat_rule_count(table: &str) -> usize {
    let o = sh(&["nft", "list", "chain", "ip", table, "ports"]);
    String::from_utf8_lossy(&o.stdout)
        .matches("dnat to")
        .count()
}

#[test]
fn bridge_ping_and_published_ports() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let mut env = Env::new();
    env.open(None);
    let (na, pa) = env.netns("a");
    let (nb, pb) = env.netns("b");
    let ea = env.attach("bridge", "c-a-0000000000000000", &pa, "ca", &[]);
    let eb = env.attach("bridge", "c-b-0000000000000000", &pb, "cb", &[]);
    assert_ne!(ea.ip, eb.ip);
    assert!(ea.mac.starts_with("02:42:"));
    assert_eq!(ea.ifname, "eth0");
    assert_eq!(ea.embedded_dns, None);

    // Container to container by IP.
    let ipb = eb.ip.to_string();
    assert!(ns_ok(&na, &["busybox", "ping", "-c", "1", "-W", "2", &ipb]));
    // Loopback is up inside.
    assert!(ns_ok(
        &na,
        &["busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"]
    ));

    env.spawn_in(&nb, &["python3", "-c", ECHO]);
    wait_tcp(SocketAddr::new(eb.ip.into(), 8000));

    let mgr = env.mgr();
    let res = env
        .rt
        .block_on(mgr.publish(
            "c-b-0000000000000000",
            eb.ip,
            &[
                PortMapping {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 0,
                    container_port: 8000,
                    proto: Proto::Tcp,
                },
                PortMapping {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 0,
                    container_port: 8001,
                    proto: Proto::Udp,
                },
            ],
        ))
        .unwrap();
    let (hp, hpu) = (res[0].host_port, res[1].host_port);
    assert_ne!(hp, 0);
    assert_ne!(hpu, 0);

    assert_eq!(
        tcp_echo(SocketAddr::from(([127, 0, 0, 1], hp))).unwrap(),
        b"hello"
    );
    assert!(udp_echo(SocketAddr::from(([127, 0, 0, 1], hpu))));
    if let Some(ip) = host_primary_ip(&env.prefix) {
        assert_eq!(tcp_echo(SocketAddr::new(ip.into(), hp)).unwrap(), b"hello");
    } else {
        eprintln!("no global host address; skipped that check");
    }
    // From another container via the gateway address (prerouting + hairpin).
    let py = format!(
        "import socket; s=socket.create_connection(('{}',{hp}),3); s.sendall(b'hi'); print(s.recv(9).decode())",
        ea.gateway
    );
    assert!(ns_out(&na, &["python3", "-c", &py]).contains("hi"));

    // A taken host port is a clear error and leaves nothing half-done.
    let rules_before = dnat_rule_count(&env.prefix);
    let err = env
        .rt
        .block_on(mgr.publish(
            "c-a-0000000000000000",
            ea.ip,
            &[
                PortMapping {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 0,
                    container_port: 8000,
                    proto: Proto::Tcp,
                },
                PortMapping {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: hp,
                    container_port: 8000,
                    proto: Proto::Tcp,
                },
            ],
        ))
        .unwrap_err();
    assert!(
        matches!(err, NetError::PortAllocated { port, .. } if port == hp),
        "{err}"
    );
    assert!(err.to_string().contains("port is already allocated"));
    assert_eq!(dnat_rule_count(&env.prefix), rules_before);
    assert!(env
        .rt
        .block_on(mgr.published("c-a-0000000000000000"))
        .is_empty());

    env.rt
        .block_on(mgr.unpublish("c-b-0000000000000000"))
        .unwrap();
    assert_eq!(dnat_rule_count(&env.prefix), 0);
    assert!(tcp_echo(SocketAddr::from(([127, 0, 0, 1], hp))).is_err());

    env.rt
        .block_on(mgr.detach("bridge", "c-a-0000000000000000"))
        .unwrap();
    assert!(!ns_ok(
        &na,
        &["busybox", "ping", "-c", "1", "-W", "1", &ipb]
    ));
    env.teardown();
    env.assert_clean();
}

/// Tiny loopback "upstream resolver" answering every A query with 192.0.2.99.
fn fake_upstream() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = s.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut buf = [0u8; 512];
        while t0.elapsed() < Duration::from_secs(60) {
            let Ok((n, peer)) = s.recv_from(&mut buf) else {
                continue;
            };
            let Some(q) = container_network::dns::parse_query(&buf[..n]) else {
                continue;
            };
            let ips = if q.qtype == 1 {
                vec![Ipv4Addr::new(192, 0, 2, 99)]
            } else {
                vec![]
            };
            let a = container_network::dns::build_answer(&buf[..n], &q, &ips);
            let _ = s.send_to(&a, peer);
        }
    });
    (addr, h)
}

#[test]
fn user_networks_dns_and_isolation() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let (up, _up_thread) = fake_upstream();
    let mut env = Env::new();
    env.open(Some(up));
    let mgr = env.mgr();
    let s1 = random_subnet();
    let mut s2 = random_subnet();
    while s2 == s1 {
        s2 = random_subnet();
    }
    let n1 = env
        .rt
        .block_on(mgr.create_network("one", Some(&s1)))
        .unwrap();
    let n2 = env
        .rt
        .block_on(mgr.create_network("two", Some(&s2)))
        .unwrap();
    assert!(n1.dns && n2.dns);
    assert!(n1.bridge.starts_with(&env.prefix) && n1.bridge.len() <= 15);

    // Docker-like errors.
    let e = env
        .rt
        .block_on(mgr.create_network("one", Some("10.1.0.0/24")))
        .unwrap_err();
    assert_eq!(e.to_string(), "network with name one already exists");
    let over = format!(
        "{}/16",
        s1.split('/')
            .next()
            .unwrap()
            .rsplit_once('.')
            .unwrap()
            .0
            .rsplit_once('.')
            .unwrap()
            .0
            .to_string()
            + ".0.0"
    );
    let e = env
        .rt
        .block_on(mgr.create_network("three", Some(&over)))
        .unwrap_err();
    assert!(matches!(e, NetError::Overlap), "{over}: {e}");
    let e = env
        .rt
        .block_on(mgr.create_network("three", Some("10.0.0.0/33")))
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid CIDR address: 10.0.0.0/33");
    let e = env
        .rt
        .block_on(mgr.create_network("three", Some("10.0.0.7/24")))
        .unwrap_err();
    assert!(e.to_string().contains("it should be 10.0.0.0/24"));
    assert!(env.rt.block_on(mgr.find("three")).is_none());

    let (na, pa) = env.netns("a");
    let (nb, pb) = env.netns("b");
    let ea = env.attach("one", "aaaaaaaaaaaaaaaa", &pa, "alpha", &["al".to_string()]);
    let eb = env.attach("two", "bbbbbbbbbbbbbbbb", &pb, "beta", &[]);
    assert_eq!(ea.embedded_dns, Some(n1.gateway));
    let resolv = env.mgr().resolv_conf_for(&ea);
    assert!(resolv.starts_with(&format!("nameserver {}\n", n1.gateway)));

    // DNS from inside the namespace.
    let gw1 = n1.gateway.to_string();
    let out = ns_out(&na, &["busybox", "nslookup", "alpha", &gw1]);
    assert!(out.contains(&ea.ip.to_string()), "{out}");
    let out = ns_out(&na, &["busybox", "nslookup", "al", &gw1]);
    assert!(out.contains(&ea.ip.to_string()), "{out}");
    let out = ns_out(&na, &["busybox", "nslookup", "aaaaaaaaaaaa", &gw1]);
    assert!(out.contains(&ea.ip.to_string()), "{out}");
    // Unknown names go upstream.
    let out = ns_out(&na, &["busybox", "nslookup", "example.test", &gw1]);
    assert!(out.contains("192.0.2.99"), "{out}");
    // beta lives on another network: not known to network one's DNS
    // (forwarded; the fake upstream answers 192.0.2.99, never beta's IP).
    let out = ns_out(&na, &["busybox", "nslookup", "beta", &gw1]);
    assert!(!out.contains(&eb.ip.to_string()), "{out}");

    // Isolation between the two bridges.
    let ipb = eb.ip.to_string();
    assert!(ns_ok(
        &nb,
        &[
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            &n2.gateway.to_string()
        ]
    ));
    assert!(!ns_ok(
        &na,
        &["busybox", "ping", "-c", "1", "-W", "1", &ipb]
    ));

    // connect b to network one too: now reachable there, and by name.
    let eb1 = env.attach("one", "bbbbbbbbbbbbbbbb", &pb, "beta", &[]);
    assert_eq!(eb1.ifname, "eth1");
    let ipb1 = eb1.ip.to_string();
    assert!(ns_ok(
        &na,
        &["busybox", "ping", "-c", "1", "-W", "2", &ipb1]
    ));
    let out = ns_out(&na, &["busybox", "nslookup", "beta", &gw1]);
    assert!(out.contains(&ipb1), "{out}");
    let e = env
        .rt
        .block_on(env.mgr().remove_network("one"))
        .unwrap_err();
    assert!(matches!(e, NetError::ActiveEndpoints(_)));
    env.rt
        .block_on(env.mgr().detach("one", "bbbbbbbbbbbbbbbb"))
        .unwrap();
    assert!(!ns_ok(
        &na,
        &["busybox", "ping", "-c", "1", "-W", "1", &ipb1]
    ));
    let out = ns_out(&na, &["busybox", "nslookup", "beta", &gw1]);
    assert!(!out.contains(&ipb1), "{out}");

    // Remove a network: bridge gone, DNS stopped.
    env.rt
        .block_on(env.mgr().detach("two", "bbbbbbbbbbbbbbbb"))
        .unwrap();
    env.rt.block_on(env.mgr().remove_network("two")).unwrap();
    assert!(!links_with_prefix(&env.prefix).contains(&n2.bridge));
    let e = env
        .rt
        .block_on(env.mgr().remove_network("bridge"))
        .unwrap_err();
    assert!(matches!(e, NetError::PredefinedNetwork(_)));
    env.teardown();
    env.assert_clean();
}

#[test]
fn restart_and_reconcile() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let mut env = Env::new();
    env.open(None);
    let (_na, pa) = env.netns("a");
    let s1 = random_subnet();
    env.rt
        .block_on(env.mgr().create_network("net", Some(&s1)))
        .unwrap();
    let ea = env.attach("net", "cccccccccccccccc", &pa, "c", &[]);
    let res = env
        .rt
        .block_on(env.mgr().publish(
            "cccccccccccccccc",
            ea.ip,
            &[PortMapping {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 0,
                container_port: 80,
                proto: Proto::Tcp,
            }],
        ))
        .unwrap();
    let hp = res[0].host_port;

    // "Crash": drop the manager without cleanup and start a new one.
    let cfg = env.mgr().config().clone();
    env.mgr = None;
    env.mgr = Some(env.rt.block_on(NetworkManager::open(cfg.clone())).unwrap());
    let net = env.rt.block_on(env.mgr().find("net")).unwrap();
    assert_eq!(net.endpoints.len(), 1);
    assert_eq!(net.endpoints[0].ip, ea.ip);
    assert_eq!(
        env.rt.block_on(env.mgr().published("cccccccccccccccc"))[0].host_port,
        hp
    );
    // Port is held again after restart.
    assert!(std::net::TcpListener::bind(("127.0.0.1", hp)).is_err());
    assert_eq!(dnat_rule_count(&env.prefix), 1);

    // Leftovers: a veth marked as ours but unknown, and one not ours.
    let stray = format!("{}vzz", env.prefix);
    let keep = format!("{}keep", env.prefix);
    env.extra_links.push(keep.clone());
    assert!(sh(&[
        "ip",
        "link",
        "add",
        &stray,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{}vzy", env.prefix)
    ])
    .status
    .success());
    let alias = format!("berth:{}:ep:dead:net", env.prefix);
    assert!(sh(&["ip", "link", "set", &stray, "alias", &alias])
        .status
        .success());
    assert!(sh(&["ip", "link", "add", &keep, "type", "bridge"])
        .status
        .success());

    // The container died while we were down.
    env.rt
        .block_on(env.mgr().reconcile(&HashSet::new()))
        .unwrap();
    let links = links_with_prefix(&env.prefix);
    assert!(!links.contains(&stray), "{links:?}");
    assert!(!links.contains(&ea.veth_host), "{links:?}");
    assert!(links.contains(&keep), "{links:?}");
    assert_eq!(dnat_rule_count(&env.prefix), 0);
    assert!(std::net::TcpListener::bind(("127.0.0.1", hp)).is_ok());
    let net = env.rt.block_on(env.mgr().find("net")).unwrap();
    assert!(net.endpoints.is_empty());

    // A bad namespace path fails cleanly: no link, no address used.
    let before = links_with_prefix(&env.prefix);
    let bad = PathBuf::from("/nonexistent/netns");
    let r = env.rt.block_on(env.mgr().attach(
        "net",
        AttachRequest {
            container_id: "dddddddddddddddd",
            netns_path: &bad,
            name: "d",
            aliases: &[],
        },
    ));
    assert!(r.is_err());
    assert_eq!(links_with_prefix(&env.prefix), before);
    let net = env.rt.block_on(env.mgr().find("net")).unwrap();
    assert!(net.endpoints.is_empty());

    // Automatic subnet: avoids host routes and our networks.
    let auto = env
        .rt
        .block_on(env.mgr().create_network("auto", None))
        .unwrap();
    let auto_net: container_network::Ipv4Net = auto.subnet.parse().unwrap();
    let s1n: container_network::Ipv4Net = s1.parse().unwrap();
    assert!(!auto_net.overlaps(&s1n));
    env.teardown();
    env.assert_clean();
}
