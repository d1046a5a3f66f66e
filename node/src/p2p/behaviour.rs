//! The libp2p behaviours a Ferry node runs, one field per concern.

use std::time::Duration;

use libp2p::{gossipsub, identify, identity::Keypair, kad, ping, swarm::NetworkBehaviour};

use super::protocol::KAD_PROTOCOL;

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
}

impl Behaviour {
    pub fn new(key: &Keypair, server: bool) -> Result<Behaviour, String> {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(Duration::from_secs(10));
        kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(60)));
        let mut kad = kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Relays answer DHT queries even with no confirmed public address (loopback, LAN); viewers only ask.
        kad.set_mode(Some(if server { kad::Mode::Server } else { kad::Mode::Client }));

        let gossip_config = gossipsub::ConfigBuilder::default()
            .max_transmit_size(1024)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
            .map_err(|e| e.to_string())?;

        Ok(Behaviour {
            identify: identify::Behaviour::new(
                identify::Config::new("/ferry/id/1".into(), key.public())
                    .with_agent_version(format!("ferry/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            gossipsub,
            stream: libp2p_stream::Behaviour::new(),
        })
    }
}
