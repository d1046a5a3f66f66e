//! The one task that owns the swarm: it runs commands from [`super::Client`] and turns swarm events into
//! [`NetEvent`]s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{dial_opts::DialOpts, SwarmEvent};
use libp2p::{gossipsub, identify, kad, multiaddr::Protocol, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::client::Command;
use super::protocol::{ANNOUNCE_TOPIC, KAD_PROTOCOL};
use super::{NetError, NetEvent};

/// Provider records expire after 48 h; refreshing often also reaches relays that joined since.
const REPROVIDE_EVERY: Duration = Duration::from_secs(30);

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    pending_dials: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NetError>>>>,
    pending_providers: HashMap<kad::QueryId, (HashSet<PeerId>, oneshot::Sender<HashSet<PeerId>>)>,
    provided: HashSet<[u8; 32]>,
    /// Listen addresses peers told us through identify.
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    hosts: super::PeerHosts,
    topic: gossipsub::IdentTopic,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
        hosts: super::PeerHosts,
    ) -> Self {
        EventLoop {
            swarm,
            commands,
            events,
            pending_dials: HashMap::new(),
            pending_providers: HashMap::new(),
            provided: HashSet::new(),
            addresses: HashMap::new(),
            hosts,
            topic: gossipsub::IdentTopic::new(ANNOUNCE_TOPIC),
        }
    }

    pub(crate) async fn run(mut self) {
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&self.topic) {
            tracing::warn!(error = %e, "cannot subscribe to content announcements");
        }
        let mut reprovide = tokio::time::interval(REPROVIDE_EVERY);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                _ = reprovide.tick() => {
                    for cid in self.provided.clone() {
                        let _ = self.swarm.behaviour_mut().kad.start_providing(cid.to_vec().into());
                    }
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen(addr, reply) => {
                let r =
                    self.swarm.listen_on(addr.clone()).map(|_| ()).map_err(|e| NetError::Listen(addr, e.to_string()));
                let _ = reply.send(r);
            }
            Command::Dial(peer, addr, reply) => {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                self.addresses.entry(peer).or_default().push(addr.clone());
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                match self.swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr.clone()]).build()) {
                    Ok(()) => self.pending_dials.entry(peer).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial(addr.to_string(), e.to_string())));
                    }
                }
            }
            Command::Connect(peer, reply) => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let addrs = self.addresses.get(&peer).cloned().unwrap_or_default();
                match self
                    .swarm
                    .dial(DialOpts::peer_id(peer).addresses(addrs).extend_addresses_through_behaviour().build())
                {
                    Ok(()) => self.pending_dials.entry(peer).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial(peer.to_string(), e.to_string())));
                    }
                }
            }
            Command::Provide(cid) => {
                self.provided.insert(cid);
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(cid.to_vec().into()) {
                    tracing::warn!(error = %e, "cannot store provider record");
                }
            }
            Command::FindProviders(cid, reply) => {
                let id = self.swarm.behaviour_mut().kad.get_providers(cid.to_vec().into());
                self.pending_providers.insert(id, (HashSet::new(), reply));
            }
            Command::Announce(cid) => {
                let topic = self.topic.clone();
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, cid.to_vec()) {
                    // No subscribed peers yet is normal for a lone relay; the DHT record still finds the content.
                    tracing::debug!(error = %e, "announcement not sent");
                }
            }
        }
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with(Protocol::P2p(*self.swarm.local_peer_id()));
                let _ = self.events.send(NetEvent::Listening(full)).await;
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                self.hosts.connected(peer_id, endpoint.get_remote_address());
                for reply in self.pending_dials.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => self.hosts.disconnected(&peer_id),
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. }
                if !self.swarm.is_connected(&peer) =>
            {
                for reply in self.pending_dials.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(NetError::Dial(peer.to_string(), error.to_string())));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let kad_peer = info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL.as_ref());
                for addr in info.listen_addrs {
                    if kad_peer {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
                    }
                    let known = self.addresses.entry(peer_id).or_default();
                    if !known.contains(&addr) {
                        known.push(addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(r),
                step,
                ..
            })) => {
                let done = match r {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        if let Some((found, _)) = self.pending_providers.get_mut(&id) {
                            found.extend(providers);
                        }
                        step.last
                    }
                    Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "provider lookup ended");
                        true
                    }
                };
                if done {
                    if let Some((found, reply)) = self.pending_providers.remove(&id) {
                        let _ = reply.send(found);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            })) => {
                if let Ok(content) = <[u8; 32]>::try_from(message.data.as_slice()) {
                    let _ = self.events.send(NetEvent::Announced { from: propagation_source, content }).await;
                } else {
                    tracing::debug!(peer = %propagation_source, "ignoring malformed announcement");
                }
            }
            _ => {}
        }
    }
}
