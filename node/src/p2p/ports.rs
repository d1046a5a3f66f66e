//! Whether a listen address's port is free. libp2p listens with SO_REUSEPORT, so a second node on the same port
//! would bind it too and share its connections; binding a plain socket first is how a node finds out.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// The socket address a listen multiaddr binds, and whether it is UDP (QUIC).
pub fn socket_of(addr: &Multiaddr) -> Option<(SocketAddr, bool)> {
    let mut ip = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(IpAddr::V6(a)),
            Protocol::Tcp(port) => return ip.map(|ip| (SocketAddr::new(ip, port), false)),
            Protocol::Udp(port) => return ip.map(|ip| (SocketAddr::new(ip, port), true)),
            _ => {}
        }
    }
    None
}

/// Binds the address's socket and lets it go: the error says why a node could not have it alone.
pub fn try_bind(addr: &Multiaddr) -> std::io::Result<()> {
    match socket_of(addr) {
        Some((sock, _)) if sock.port() == 0 => Ok(()),
        Some((sock, true)) => UdpSocket::bind(sock).map(|_| ()),
        Some((sock, false)) => TcpListener::bind(sock).map(|_| ()),
        None => Ok(()),
    }
}

/// The same address with port 0: any free port.
pub fn any_port(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(0),
            Protocol::Udp(_) => Protocol::Udp(0),
            p => p,
        })
        .collect()
}
