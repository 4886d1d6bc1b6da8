//! Embedded DNS server for user-defined networks.
//!
//! A small hand-written responder over tokio UDP: it answers `A` queries for
//! names registered by attached containers (name, aliases, short id) and
//! relays every other query verbatim to the host's upstream resolvers. The
//! wire handling needed is tiny (header + one question), so pulling in a full
//! DNS framework would cost far more build time than it saves.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::{NetError, Result};

/// Records of one network: lowercase name -> addresses.
pub type Records = Arc<RwLock<HashMap<String, Vec<Ipv4Addr>>>>;

const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const TTL: u32 = 600;
const MAX_INFLIGHT: usize = 256;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// A parsed query (only what the responder needs).
#[derive(Debug, PartialEq, Eq)]
pub struct Query {
    /// Transaction id.
    pub id: u16,
    /// Recursion desired flag.
    pub rd: bool,
    /// Lowercase dotted name without the trailing dot.
    pub name: String,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// Byte range of the question section in the packet.
    pub question_end: usize,
}

/// Parses a standard single-question query. `None` means "not something we
/// answer locally" (responses, other opcodes, several questions, bad data).
pub fn parse_query(pkt: &[u8]) -> Option<Query> {
    if pkt.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([pkt[0], pkt[1]]);
    let flags = u16::from_be_bytes([pkt[2], pkt[3]]);
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let qdcount = u16::from_be_bytes([pkt[4], pkt[5]]);
    if qr || opcode != 0 || qdcount != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = usize::from(*pkt.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None; // compression in a question: not worth handling
        }
        let label = pkt.get(pos..pos + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += len;
        if pos > 255 + 12 {
            return None;
        }
    }
    let qtype = u16::from_be_bytes([*pkt.get(pos)?, *pkt.get(pos + 1)?]);
    let qclass = u16::from_be_bytes([*pkt.get(pos + 2)?, *pkt.get(pos + 3)?]);
    Some(Query {
        id,
        rd: flags & 0x0100 != 0,
        name: labels.join("."),
        qtype,
        qclass,
        question_end: pos + 4,
    })
}

/// Builds an authoritative answer with `ips` as A records (empty = NODATA).
pub fn build_answer(pkt: &[u8], q: &Query, ips: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.question_end + ips.len() * 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    let mut flags: u16 = 0x8000 | 0x0400 | 0x0080; // QR, AA, RA
    if q.rd {
        flags |= 0x0100;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    let n = u16::try_from(ips.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&pkt[12..q.question_end]);
    for ip in ips.iter().take(usize::from(n)) {
        out.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// Builds an error response (header + question) with `rcode`.
pub fn build_error(pkt: &[u8], rcode: u8) -> Option<Vec<u8>> {
    if pkt.len() < 12 {
        return None;
    }
    let mut out = pkt[..12].to_vec();
    let rd = pkt[2] & 0x01;
    out[2] = 0x80 | (pkt[2] & 0x78) | rd; // QR + opcode + RD
    out[3] = 0x80 | (rcode & 0x0f); // RA + rcode
                                    // Keep only the question section if parseable, else no sections.
    if let Some(q) = parse_query(pkt) {
        out[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&pkt[12..q.question_end]);
    } else {
        out[4..12].copy_from_slice(&[0; 8]);
    }
    Some(out)
}

/// Reads `nameserver` lines from a resolv.conf, as port-53 socket addresses.
pub fn upstreams_from_resolv_conf(path: &Path) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    parse_nameservers(&text)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// `nameserver` addresses of a resolv.conf text.
pub fn parse_nameservers(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some("nameserver"))
                .then(|| it.next())
                .flatten()
                .and_then(|a| a.parse().ok())
        })
        .collect()
}

/// A running DNS server; stops when dropped or via [`DnsServer::stop`].
#[derive(Debug)]
pub struct DnsServer {
    task: JoinHandle<()>,
    /// Address it listens on.
    pub addr: SocketAddr,
}

impl DnsServer {
    /// Binds `addr` (UDP) and serves `records`, forwarding the rest to
    /// `upstreams` (tried in order).
    pub async fn start(
        addr: SocketAddr,
        records: Records,
        upstreams: Vec<SocketAddr>,
    ) -> Result<Self> {
        let sock = UdpSocket::bind(addr)
            .await
            .map_err(|e| NetError::io(format!("bind DNS server on {addr}"), e))?;
        let addr = sock
            .local_addr()
            .map_err(|e| NetError::io("DNS local_addr", e))?;
        let sock = Arc::new(sock);
        let upstreams = Arc::new(upstreams);
        let limit = Arc::new(Semaphore::new(MAX_INFLIGHT));
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, peer) = match sock.recv_from(&mut buf).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(error = %e, "dns recv");
                        continue;
                    }
                };
                let pkt = buf[..n].to_vec();
                if let Some(resp) = local_answer(&pkt, &records) {
                    let _ = sock.send_to(&resp, peer).await;
                    continue;
                }
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    if let Some(r) = build_error(&pkt, 2) {
                        let _ = sock.send_to(&r, peer).await;
                    }
                    continue;
                };
                let sock = sock.clone();
                let upstreams = upstreams.clone();
                tokio::spawn(async move {
                    let resp = forward(&pkt, &upstreams).await;
                    let resp = resp.or_else(|| build_error(&pkt, 2)); // SERVFAIL
                    if let Some(r) = resp {
                        let _ = sock.send_to(&r, peer).await;
                    }
                    drop(permit);
                });
            }
        });
        Ok(DnsServer { task, addr })
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers from the local records, or `None` to forward.
fn local_answer(pkt: &[u8], records: &Records) -> Option<Vec<u8>> {
    let q = parse_query(pkt)?;
    if q.qclass != CLASS_IN {
        return None;
    }
    let ips = {
        let map = records.read().ok()?;
        map.get(&q.name)?.clone()
    };
    if q.qtype == TYPE_A || q.qtype == TYPE_ANY {
        Some(build_answer(pkt, &q, &ips))
    } else {
        // The name is ours but has no records of that type: NODATA.
        Some(build_answer(pkt, &q, &[]))
    }
}

async fn forward(pkt: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = pkt.get(..2)?;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.connect(up).await.is_err() || s.send(pkt).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv(&mut buf)).await {
            Ok(Ok(n)) if n >= 12 && &buf[..2] == id => return Some(buf[..n].to_vec()),
            _ => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a query packet for tests.
    pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p
    }

    #[test]
    fn parse_and_answer() {
        let p = query(0x1234, "Web.Local", 1);
        let q = parse_query(&p).unwrap();
        assert_eq!(q.name, "web.local");
        assert_eq!(q.qtype, 1);
        let a = build_answer(&p, &q, &[Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, 0); // NOERROR
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 2]);
    }

    #[test]
    fn hostile_packets_do_not_panic() {
        assert!(parse_query(&[]).is_none());
        assert!(parse_query(&[0; 11]).is_none());
        let mut p = query(1, "a", 1);
        p.truncate(p.len() - 3);
        assert!(parse_query(&p).is_none());
        // Label length past the end.
        let mut p = query(1, "a", 1);
        p[12] = 60;
        assert!(parse_query(&p).is_none());
        // Compression pointer in the question.
        let mut p = query(1, "a", 1);
        p[12] = 0xc0;
        assert!(parse_query(&p).is_none());
        assert!(build_error(&[1, 2, 3], 2).is_none());
        let e = build_error(&[0xab; 40], 2).unwrap();
        assert_eq!(e.len(), 12);
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let _ = parse_query(&junk);
            let _ = build_error(&junk, 2);
        }
    }

    #[test]
    fn nameservers() {
        let t = "# c\nnameserver 10.0.0.53\nsearch x\nnameserver ::1\nnameserver bogus\n";
        let v = parse_nameservers(t);
        assert_eq!(v.len(), 2);
    }

    #[tokio::test]
    async fn serves_local_and_forwards() {
        // Fake upstream on loopback answering everything with 192.0.2.99.
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        let up_task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            for _ in 0..4 {
                let Ok((n, peer)) = up.recv_from(&mut buf).await else {
                    return;
                };
                let q = parse_query(&buf[..n]).unwrap();
                let a = build_answer(&buf[..n], &q, &[Ipv4Addr::new(192, 0, 2, 99)]);
                up.send_to(&a, peer).await.unwrap();
            }
        });
        let records: Records = Arc::default();
        records
            .write()
            .unwrap()
            .insert("web".into(), vec![Ipv4Addr::new(10, 0, 0, 2)]);
        let srv = DnsServer::start("127.0.0.1:0".parse().unwrap(), records, vec![up_addr])
            .await
            .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(srv.addr).await.unwrap();
        let mut buf = [0u8; 512];
        c.send(&query(7, "web", 1)).await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[n - 4..n], &[10, 0, 0, 2]);
        c.send(&query(8, "example.test", 1)).await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..2], &[0, 8]);
        assert_eq!(&buf[n - 4..n], &[192, 0, 2, 99]);
        // AAAA for a local name: NOERROR, no answers.
        c.send(&query(9, "web", 28)).await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert!(n >= 12);
        assert_eq!(buf[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 0);
        srv.stop();
        up_task.abort();
    }
}
