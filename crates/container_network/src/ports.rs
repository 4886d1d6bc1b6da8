//! Host port reservation for published ports.
//!
//! Traffic is forwarded by DNAT, so no process listens on the host port; to
//! make conflicts visible (to us and to other programs) each mapping holds a
//! bound, never-listening socket on `host_ip:host_port`. Binding port 0 lets
//! the kernel pick a free port for `-P`-style mappings.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::error::{NetError, Result};
use crate::state::Proto;

/// A held port: closing it (drop) releases the port.
#[derive(Debug)]
pub struct Reservation {
    _fd: OwnedFd,
    /// Host address bound.
    pub host_ip: Ipv4Addr,
    /// The port actually bound.
    pub port: u16,
    /// Protocol.
    pub proto: Proto,
}

/// Binds `host_ip:port/proto`; `port == 0` picks a free one.
pub fn reserve(host_ip: Ipv4Addr, port: u16, proto: Proto) -> Result<Reservation> {
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| NetError::io("create port reservation socket", e.into()))?;
    let addr = SockaddrIn::from(SocketAddrV4::new(host_ip, port));
    match bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) => {
            return Err(NetError::PortAllocated {
                addr: host_ip.to_string(),
                port,
            })
        }
        Err(e) => {
            return Err(NetError::io(
                format!("bind {host_ip}:{port}/{}", proto.as_str()),
                e.into(),
            ))
        }
    }
    let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|e| NetError::io("getsockname", e.into()))?;
    Ok(Reservation {
        _fd: fd,
        host_ip,
        port: bound.port(),
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_any_port() {
        let a = reserve(Ipv4Addr::LOCALHOST, 0, Proto::Tcp).unwrap();
        assert_ne!(a.port, 0);
        let e = reserve(Ipv4Addr::LOCALHOST, a.port, Proto::Tcp).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Bind for 127.0.0.1:{} failed: port is already allocated",
                a.port
            )
        );
        // Same port over UDP is independent.
        let _u = reserve(Ipv4Addr::LOCALHOST, a.port, Proto::Udp);
        // A plain listener sees the conflict too.
        assert!(std::net::TcpListener::bind(("127.0.0.1", a.port)).is_err());
        let p = a.port;
        drop(a);
        assert!(reserve(Ipv4Addr::LOCALHOST, p, Proto::Tcp).is_ok());
    }
}
