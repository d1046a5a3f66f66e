//! The network: a cloneable [`Client`] in front of one event loop that owns the swarm.
//!
//! Everything else (relay, viewer, publish) reaches the network through [`Client`] and, for streams, through a
//! `libp2p_stream::Control`. Wire formats are specified in [`protocol`].

pub mod behaviour;
pub mod client;
mod event_loop;
pub mod frame;
mod hosts;
pub mod ports;
pub mod protocol;
pub mod stream_io;

use std::time::Duration;

use libp2p::{noise, tcp, yamux, Multiaddr, PeerId};
use tokio::sync::mpsc;

pub use client::Client;
pub use hosts::PeerHosts;

use crate::identity::Identity;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot build the network stack: {0}")]
    Build(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(Multiaddr, String),
    #[error("cannot listen on {0}: the port is in use (another node on this machine?)")]
    InUse(Multiaddr),
    #[error("cannot dial {0}: {1}")]
    Dial(String, String),
    #[error("bootstrap address {0} has no /p2p/<peer id> suffix")]
    NoPeerId(Multiaddr),
    #[error("the network event loop has stopped")]
    Stopped,
}

/// Something the network tells the node about.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// We listen on this address (with `/p2p/<peer id>`).
    Listening(Multiaddr),
    /// A relay announced content it holds (`from` signed the announcement).
    Announced { from: PeerId, content: [u8; 32] },
    /// AutoNAT's verdict: other nodes dialled us back at this address, or nobody could.
    Reachability(Option<Multiaddr>),
}

/// How a node takes part in the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// A relay: a DHT server, an AutoNAT server, and a circuit relay for relays behind NAT (once reachable).
    /// A viewer only asks.
    pub server: bool,
    /// Addresses others reach this node at that it cannot see itself: a router's public address with a port
    /// forwarded to this machine, say. Announced as they are.
    pub external: Vec<Multiaddr>,
    /// Most bytes one circuit carries through this relay (0: no limit).
    pub circuit_max_bytes: u64,
    pub circuit_max_duration: Duration,
}

impl NetConfig {
    /// A viewer's network: asks, announces nothing.
    pub fn viewer() -> NetConfig {
        NetConfig {
            server: false,
            external: vec![],
            circuit_max_bytes: 0,
            circuit_max_duration: Duration::from_secs(3600),
        }
    }
}

/// Starts the network for `identity`.
pub fn start(
    identity: &Identity,
    net: NetConfig,
) -> Result<(Client, libp2p_stream::Control, mpsc::Receiver<NetEvent>), NetError> {
    let muxer = || {
        let mut c = yamux::Config::default();
        c.set_max_num_streams(1024);
        c
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity.keypair())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, muxer)
        .map_err(|e| NetError::Build(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, muxer)
        .map_err(|e| NetError::Build(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            behaviour::Behaviour::new(key, relay_client, &net).map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| NetError::Build(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    for addr in &net.external {
        tracing::info!(%addr, "announcing configured external address");
        swarm.add_external_address(addr.clone());
    }
    let control = swarm.behaviour().stream.new_control();
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let hosts = PeerHosts::default();
    tokio::spawn(event_loop::EventLoop::new(swarm, net, cmd_rx, ev_tx, hosts.clone()).run());
    Ok((Client::new(cmd_tx, hosts), control, ev_rx))
}

/// Splits `/…/p2p/<id>` into the peer id and the address without it.
pub fn split_peer(addr: &Multiaddr) -> Result<(PeerId, Multiaddr), NetError> {
    let mut a = addr.clone();
    match a.pop() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Ok((peer, a)),
        _ => Err(NetError::NoPeerId(addr.clone())),
    }
}
