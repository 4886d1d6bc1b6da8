//! A small IPv4 CIDR type with docker-like parse errors.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::NetError;

/// An IPv4 network: a canonical network address plus prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// Builds a network, rejecting host bits and prefixes over 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, NetError> {
        let s = format!("{addr}/{prefix}");
        if prefix > 32 {
            return Err(NetError::InvalidCidr(s));
        }
        let net = Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if net.addr != addr {
            return Err(NetError::HostBitsSet {
                given: s,
                expected: net.to_string(),
            });
        }
        Ok(net)
    }

    /// Network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Netmask as an integer.
    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// Number of addresses in the network (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address of the network (0 = network address), if inside.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        if n >= self.size() {
            return None;
        }
        let base = u64::from(u32::from(self.addr));
        u32::try_from(base + n).ok().map(Ipv4Addr::from)
    }

    /// The first usable host address, used as the bridge gateway.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        if self.size() < 4 {
            return None;
        }
        self.nth(1)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = || NetError::InvalidCidr(s.to_string());
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ipv4Net::new(addr, prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let n: Ipv4Net = "10.1.2.0/24".parse().unwrap();
        assert_eq!(n.to_string(), "10.1.2.0/24");
        assert_eq!(n.gateway(), Some(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert_eq!(n.size(), 256);
        assert!(n.contains(Ipv4Addr::new(10, 1, 2, 77)));
        assert!(!n.contains(Ipv4Addr::new(10, 1, 3, 1)));
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.size(), 1 << 32);
        assert_eq!(all.nth(u64::from(u32::MAX)), Some(Ipv4Addr::BROADCAST));
    }

    #[test]
    fn rejects_bad_syntax_docker_like() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/24",
            "foo",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "300.0.0.0/8",
            "10.0.0.0/2 4",
        ] {
            let e = bad.parse::<Ipv4Net>().unwrap_err();
            assert!(
                e.to_string().starts_with("invalid CIDR address: "),
                "{bad}: {e}"
            );
        }
        let e = "10.0.0.1/24".parse::<Ipv4Net>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24"
        );
    }

    #[test]
    fn overlap() {
        let a: Ipv4Net = "10.0.0.0/16".parse().unwrap();
        let b: Ipv4Net = "10.0.5.0/24".parse().unwrap();
        let c: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }

    #[test]
    fn tiny_subnet_has_no_gateway() {
        let n: Ipv4Net = "10.0.0.0/31".parse().unwrap();
        assert_eq!(n.gateway(), None);
    }
}
