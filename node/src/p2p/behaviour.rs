//! The libp2p behaviours a Ferry node runs, one field per concern.

use std::time::Duration;

use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour};
use libp2p::{autonat, dcutr, gossipsub, identify, identity::Keypair, kad, ping, relay};

use super::protocol::KAD_PROTOCOL;
use super::NetConfig;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    /// One provider record per content id, never per segment.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Content announcements; never video.
    pub gossipsub: gossipsub::Behaviour,
    /// Manifest, session and chunk streams.
    pub stream: libp2p_stream::Behaviour,
    /// Asks public relays whether our addresses can be dialled, and answers them when they ask us.
    pub autonat: autonat::Behaviour,
    /// Reservations on public relays for a relay behind NAT, and dialling peers through them.
    pub relay_client: relay::client::Behaviour,
    /// Circuits for relays behind NAT; only on relays, and only serving once this node has an external address.
    pub relay_server: Toggle<relay::Behaviour>,
    /// Upgrades a relayed connection to a direct one by hole punching.
    pub dcutr: dcutr::Behaviour,
}

impl Behaviour {
    pub fn new(key: &Keypair, relay_client: relay::client::Behaviour, net: &NetConfig) -> Result<Behaviour, String> {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(Duration::from_secs(10));
        kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(60)));
        let mut kad = kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Relays answer DHT queries even with no confirmed public address (loopback, LAN); viewers only ask. Set
        // explicitly: in auto mode a circuit address would make a viewer behind NAT a DHT server.
        kad.set_mode(Some(if net.server { kad::Mode::Server } else { kad::Mode::Client }));

        let gossip_config = gossipsub::ConfigBuilder::default()
            .max_transmit_size(1024)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
            .map_err(|e| e.to_string())?;

        let autonat = autonat::Behaviour::new(
            peer_id,
            autonat::Config {
                // Private address ranges are real networks too (a LAN, a lab, the tests' namespaces).
                only_global_ips: false,
                boot_delay: Duration::from_secs(2),
                retry_interval: Duration::from_secs(20),
                refresh_interval: Duration::from_secs(10 * 60),
                // Small networks have one or two relays to ask; the default (90 s) would leave them unasked.
                throttle_server_period: Duration::from_secs(5),
                ..Default::default()
            },
        );
        let relay_server = Toggle::from(net.server.then(|| {
            relay::Behaviour::new(
                peer_id,
                relay::Config {
                    max_circuits: 64,
                    max_circuits_per_peer: 8,
                    // Video crosses the circuit until hole punching replaces it, or for good where the NAT
                    // does not allow that; the defaults (128 KiB, 2 min) would cut a stream short.
                    max_circuit_bytes: net.circuit_max_bytes,
                    max_circuit_duration: net.circuit_max_duration,
                    ..Default::default()
                },
            )
        }));

        Ok(Behaviour {
            identify: identify::Behaviour::new(
                identify::Config::new("/ferry/id/1".into(), key.public())
                    .with_agent_version(format!("ferry/{}", env!("CARGO_PKG_VERSION")))
                    // Only addresses others can dial: external ones (configured, confirmed, or a circuit).
                    .with_hide_listen_addrs(true)
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            gossipsub,
            stream: libp2p_stream::Behaviour::new(),
            autonat,
            relay_client,
            relay_server,
            dcutr: dcutr::Behaviour::new(peer_id),
        })
    }
}
