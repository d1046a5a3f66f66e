//! The IP address each connected peer reaches us from, so limits can apply per host as well as per peer id
//! (peer ids cost nothing to make).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};

#[derive(Clone, Default)]
pub struct PeerHosts(Arc<Mutex<HashMap<PeerId, IpAddr>>>);

impl PeerHosts {
    pub fn get(&self, peer: &PeerId) -> Option<IpAddr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(peer).copied()
    }

    /// How many peers are connected.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn connected(&self, peer: PeerId, remote: &Multiaddr) {
        let ip = remote.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        });
        if let Some(ip) = ip {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, ip);
        }
    }

    pub(crate) fn disconnected(&self, peer: &PeerId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(peer);
    }
}
