//! Bridge networking end to end: published ports, user networks with DNS,
//! isolation, errors, and cleanup of everything added to the host.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{eventually, ok, text, Daemon};
use rand::Rng;

fn free_port() -> u16 {
    loop {
        let p = rand::thread_rng().gen_range(20000..40000);
        if std::net::TcpListener::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
}

fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A non-loopback IPv4 address of this host that is not on a test bridge.
fn host_address() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .ok()?;
    text(&out.stdout)
        .lines()
        .filter(|l| {
            !l.contains(" lo ") && !l.contains("bt-") && !l.contains("br-") && !l.contains("berth")
        })
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|a| a.split('/').next().unwrap_or("").to_string())
        .find(|a| !a.is_empty())
}

/// Builds a static UDP echo server (port 9999, replies "echo:<data>").
fn udp_echo_binary(d: &Daemon) -> Option<std::path::PathBuf> {
    let dir = d.root.parent()?.join("udpecho");
    std::fs::create_dir_all(&dir).ok()?;
    let src = dir.join("udpecho.c");
    std::fs::write(
        &src,
        r#"#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
int main(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(9999);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return 1;
  for (;;) {
    char buf[512], out[520]; struct sockaddr_in from; socklen_t fl = sizeof from;
    int n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) continue;
    memcpy(out, "echo:", 5); memcpy(out + 5, buf, n);
    sendto(s, out, n + 5, 0, (struct sockaddr *)&from, fl);
  }
}
"#,
    )
    .ok()?;
    let out = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(dir.join("udpecho"))
        .arg(&src)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "skipping the UDP check: cannot build a static binary: {}",
            text(&out.stderr)
        );
        return None;
    }
    Some(dir)
}

const WEB: &str =
    "mkdir -p /www && echo hello-from-container > /www/index.html && httpd -f -p 8080 -h /www";

#[test]
fn published_port_reaches_the_container() {
    require_root!();
    let d = Daemon::with_busybox();
    let port = free_port();
    let publish = format!("{port}:8080");
    ok(&d.berth(&[
        "run", "-d", "--name", "web", "-p", &publish, "busybox", "sh", "-c", WEB,
    ]));
    let local = format!("127.0.0.1:{port}");
    assert!(
        eventually(5, || http_get(&local)
            .is_some_and(|r| r.contains("hello-from-container"))),
        "{}",
        d.log()
    );
    if let Some(host) = host_address() {
        let addr = format!("{host}:{port}");
        assert!(
            http_get(&addr).is_some_and(|r| r.contains("hello-from-container")),
            "via {addr}"
        );
    }
    assert_eq!(
        ok(&d.berth(&["port", "web"])).lines().next().unwrap_or(""),
        format!("8080/tcp -> 0.0.0.0:{port}")
    );
    let ip = ok(&d.berth(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]));
    assert!(
        ip.starts_with(&d.subnet[..d.subnet.len() - 4]),
        "{ip} in {}",
        d.subnet
    );
    // The same host port again: refused, nothing half-configured.
    let out = d.berth(&["run", "-d", "-p", &publish, "busybox", "sleep", "10"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("already allocated"),
        "{}",
        text(&out.stderr)
    );
    assert!(http_get(&local).is_some_and(|r| r.contains("hello-from-container")));
    ok(&d.berth(&["rm", "-f", "web"]));
    assert!(http_get(&local).is_none(), "port must be closed after rm");
}

#[test]
fn user_networks_resolve_names_and_stay_isolated() {
    require_root!();
    let d = Daemon::with_busybox();
    let r: u32 = rand::thread_rng().gen();
    let sub_a = format!("10.{}.{}.0/24", 100 + (r >> 24) % 50, (r >> 8) & 0xff);
    let sub_b = format!("10.{}.{}.0/24", 150 + (r >> 24) % 50, r & 0xff);
    let net_a = format!("{}-a", d.prefix);
    let net_b = format!("{}-b", d.prefix);
    ok(&d.berth(&["network", "create", "--subnet", &sub_a, &net_a]));
    ok(&d.berth(&["network", "create", "--subnet", &sub_b, &net_b]));
    let ls = ok(&d.berth(&["network", "ls"]));
    assert!(
        ls.contains(&net_a) && ls.contains("bridge") && ls.contains("host"),
        "{ls}"
    );
    ok(&d.berth(&[
        "run",
        "-d",
        "--network",
        &net_a,
        "--name",
        "db",
        "busybox",
        "sleep",
        "60",
    ]));
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        &net_a,
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "db",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let db_ip = ok(&d.berth(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net_a}\").IPAddress}}}}"),
        "db",
    ]));
    assert!(!db_ip.is_empty());
    // Another network cannot reach it, by name or by address.
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        &net_b,
        "busybox",
        "ping",
        "-c1",
        "-W1",
        &db_ip,
    ]);
    assert_ne!(out.status.code(), Some(0), "networks must be isolated");
    // Removing a network in use is refused; after rm it works.
    let out = d.berth(&["network", "rm", &net_a]);
    assert_ne!(out.status.code(), Some(0));
    ok(&d.berth(&["rm", "-f", "db"]));
    ok(&d.berth(&["network", "rm", &net_a]));
    // Bad input.
    let out = d.berth(&["network", "create", "--subnet", "10.0.0.300/24", "bad"]);
    assert_ne!(out.status.code(), Some(0));
    let out = d.berth(&["network", "create", "--subnet", &sub_b, "overlap"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("overlaps"),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    ok(&d.berth(&["network", "rm", &net_b]));
}

#[test]
fn default_bridge_gives_an_address_and_cleans_up() {
    require_root!();
    let d = Daemon::with_busybox();
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; cat /etc/hosts | tail -1",
    ]));
    let gw_prefix = &d.subnet[..d.subnet.len() - 4];
    assert!(out.contains(gw_prefix), "{out}");
    // Published-port rules and veths are gone once containers are.
    let table = d.prefix.replace('-', "_");
    let port = free_port();
    let id = ok(&d.berth(&[
        "run",
        "-d",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]));
    let rules = text(
        &std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(rules.contains(&port.to_string()), "{rules}");
    ok(&d.berth(&["rm", "-f", &id]));
    let rules = text(
        &std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!rules.contains(&port.to_string()), "{rules}");
    assert!(veth_gone(&id), "veth of {id} still there");
}

#[test]
fn docker_cli_publishes_ports_and_manages_networks() {
    require_root!();
    if !std::path::Path::new(common::DOCKER).exists() {
        return;
    }
    let d = Daemon::with_busybox();
    let port = free_port();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        "busybox",
        "sh",
        "-c",
        WEB,
    ]));
    let local = format!("127.0.0.1:{port}");
    assert!(eventually(5, || http_get(&local)
        .is_some_and(|r| r.contains("hello-from-container"))));
    assert_eq!(
        ok(&d.docker(&["port", "dweb"])),
        format!("8080/tcp -> 127.0.0.1:{port}")
    );
    let ps = ok(&d.docker(&["ps"]));
    assert!(ps.contains(&format!("127.0.0.1:{port}->8080/tcp")), "{ps}");
    let net = format!("{}-d", d.prefix);
    let id = ok(&d.docker(&["network", "create", &net]));
    assert_eq!(id.len(), 64);
    assert!(ok(&d.docker(&["network", "ls"])).contains(&net));
    ok(&d.docker(&["network", "connect", &net, "dweb"]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&d.docker(&["network", "inspect", &net]))).unwrap();
    assert_eq!(v[0]["Containers"].as_object().map(|m| m.len()), Some(1));
    ok(&d.docker(&["network", "disconnect", &net, "dweb"]));
    assert_eq!(ok(&d.docker(&["network", "rm", &net])), net);
    ok(&d.docker(&["rm", "-f", "dweb"]));
}

#[test]
fn publish_all_udp_and_aliases() {
    require_root!();
    let d = Daemon::with_busybox();
    // -P publishes exposed ports on free host ports.
    ok(&d.berth(&[
        "run", "-d", "--name", "pall", "--expose", "8080", "-P", "busybox", "sh", "-c", WEB,
    ]));
    let port_line = ok(&d.berth(&["port", "pall", "8080/tcp"]));
    let host_port = port_line
        .lines()
        .next()
        .unwrap_or("")
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_string();
    assert!(host_port.parse::<u16>().is_ok(), "{port_line}");
    let addr = format!("127.0.0.1:{host_port}");
    assert!(eventually(5, || http_get(&addr)
        .is_some_and(|r| r.contains("hello-from-container"))));
    // UDP: busybox has no UDP server here, so a tiny static echo server is
    // compiled for the test (skipped without a C compiler).
    if let Some(dir) = udp_echo_binary(&d) {
        let uport = free_port();
        let bind = format!("{}:/t:ro", dir.display());
        ok(&d.berth(&[
            "run",
            "-d",
            "--name",
            "udp",
            "-v",
            &bind,
            "-p",
            &format!("{uport}:9999/udp"),
            "busybox",
            "/t/udpecho",
        ]));
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = String::new();
        for _ in 0..20 {
            let _ = sock.send_to(b"udp-ping", ("127.0.0.1", uport));
            let mut buf = [0u8; 64];
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                got = String::from_utf8_lossy(&buf[..n]).into_owned();
                break;
            }
        }
        assert_eq!(got, "echo:udp-ping");
    }
    // --network-alias resolves on a user network.
    let r: u32 = rand::thread_rng().gen();
    let net = format!("{}-al", d.prefix);
    ok(&d.berth(&[
        "network",
        "create",
        "--subnet",
        &format!("10.{}.{}.0/24", 60 + (r >> 24) % 30, r & 0xff),
        &net,
    ]));
    ok(&d.berth(&[
        "run",
        "-d",
        "--network",
        &net,
        "--network-alias",
        "database",
        "--name",
        "pg",
        "busybox",
        "sleep",
        "60",
    ]));
    let out = d.berth(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "database",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    ok(&d.berth(&["rm", "-f", "pg"]));
    ok(&d.berth(&["network", "rm", &net]));
}

/// Opt-in (BERTH_TEST_EGRESS=1, `--ignored`): a container reaches the Debian
/// mirror through NAT, resolving with the host's resolver.
#[test]
#[ignore = "needs the outside network; run with BERTH_TEST_EGRESS=1 -- --ignored"]
fn egress_reaches_the_debian_mirror() {
    require_root!();
    if std::env::var_os("BERTH_TEST_EGRESS").is_none() {
        eprintln!("skipped: set BERTH_TEST_EGRESS=1");
        return;
    }
    let d = Daemon::with_busybox();
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-O",
        "/dev/null",
        "http://deb.debian.org/debian/",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn daemon_crash_leaves_no_network_state_behind() {
    require_root!();
    let mut d = Daemon::with_busybox();
    let table = d.prefix.replace('-', "_");
    let port = free_port();
    let id = ok(&d.berth(&[
        "run",
        "-d",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "1",
    ]));
    let keeper = free_port();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "-p",
        &format!("{keeper}:8080"),
        "busybox",
        "sh",
        "-c",
        WEB,
    ]));
    d.kill9();
    // The short one exits while no daemon is there.
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn();
    let nft = |t: &str| {
        text(
            &std::process::Command::new("nft")
                .args(["list", "table", "ip", t])
                .output()
                .unwrap()
                .stdout,
        )
    };
    assert!(
        eventually(5, || !nft(&table).contains(&port.to_string())),
        "{}",
        nft(&table)
    );
    assert!(veth_gone(&id), "veth of {id} still there");
    // The survivor keeps its port across the restart.
    let addr = format!("127.0.0.1:{keeper}");
    assert!(eventually(5, || http_get(&addr)
        .is_some_and(|r| r.contains("hello-from-container"))));
    assert!(nft(&table).contains(&keeper.to_string()));
}

/// Whether the host veth of a container (marked with its id) goes within 5 s: it is
/// deleted in the background, right after the container stops.
fn veth_gone(id: &str) -> bool {
    eventually(5, || {
        let links = text(
            &std::process::Command::new("ip")
                .args(["-o", "link", "show"])
                .output()
                .unwrap()
                .stdout,
        );
        !links.contains(&format!("ep:{id}"))
    })
}
