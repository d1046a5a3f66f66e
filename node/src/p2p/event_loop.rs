//! The one task that owns the swarm: it runs commands from [`super::Client`] and turns swarm events into
//! [`NetEvent`]s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{autonat, dcutr, gossipsub, identify, kad, multiaddr::Protocol, relay, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::client::Command;
use super::protocol::{ANNOUNCE_TOPIC, KAD_PROTOCOL};
use super::{NetConfig, NetError, NetEvent};

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
    net: NetConfig,
    /// Listeners on a given IP (not 0.0.0.0 or ::): the operator chose those addresses, so they are announced.
    fixed_listeners: HashSet<ListenerId>,
    /// Peers dialled by address (bootstrap relays): where a relay behind NAT asks for a circuit.
    dialled: HashMap<PeerId, Multiaddr>,
    /// Relays holding (or asked for) a circuit for us, by the listener it came with.
    circuits: HashMap<ListenerId, PeerId>,
    /// AutoNAT's last verdict: nobody could dial us back.
    private: bool,
    /// Providers dialled while their lookup still knew their addresses.
    dialling: HashSet<PeerId>,
    /// Relayed connections, closed once hole punching gives a direct one.
    relayed: HashMap<PeerId, Vec<ConnectionId>>,
    /// Peers whose relayed connections close at the given time: streams already on them get to finish.
    close_relayed: Vec<(tokio::time::Instant, PeerId)>,
}

/// How long a relayed connection stays open after hole punching gave a direct one.
const RELAYED_GRACE: Duration = Duration::from_secs(10);

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        net: NetConfig,
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
            net,
            fixed_listeners: HashSet::new(),
            dialled: HashMap::new(),
            circuits: HashMap::new(),
            private: false,
            dialling: HashSet::new(),
            relayed: HashMap::new(),
            close_relayed: Vec::new(),
        }
    }

    /// Whether the operator configured the address others reach this node at; if so it never asks another relay
    /// for a circuit. (A listener on a given IP is announced, but that IP may be a LAN's: AutoNAT decides.)
    fn has_fixed_address(&self) -> bool {
        !self.net.external.is_empty()
    }

    /// Never waits: a node that does not read its events (a viewer) must not stall the network.
    fn tell(&self, event: NetEvent) {
        if let Err(e) = self.events.try_send(event) {
            tracing::debug!(error = %e, "network event dropped");
        }
    }

    fn close_due_relayed(&mut self) {
        let now = tokio::time::Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.close_relayed.drain(..).partition(|(at, _)| *at <= now);
        self.close_relayed = later;
        for (_, peer) in due {
            for id in self.relayed.remove(&peer).unwrap_or_default() {
                self.swarm.close_connection(id);
            }
        }
    }

    /// A relay that AutoNAT found unreachable, with nothing configured, asks each relay it dialled for a circuit.
    /// Viewers only dial out and never ask.
    fn reserve_circuits(&mut self) {
        if !self.net.server || !self.private || self.has_fixed_address() {
            return;
        }
        let asked: HashSet<PeerId> = self.circuits.values().copied().collect();
        for (peer, addr) in self.dialled.clone() {
            if asked.contains(&peer) {
                continue;
            }
            let circuit = addr.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    tracing::info!(relay = %peer, "not reachable from outside: asking this relay for a circuit");
                    self.circuits.insert(id, peer);
                }
                Err(e) => tracing::warn!(%circuit, error = %e, "cannot ask for a circuit"),
            }
        }
    }

    pub(crate) async fn run(mut self) {
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&self.topic) {
            tracing::warn!(error = %e, "cannot subscribe to content announcements");
        }
        let mut reprovide = tokio::time::interval(REPROVIDE_EVERY);
        let mut housekeeping = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = housekeeping.tick() => self.close_due_relayed(),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                _ = reprovide.tick() => {
                    for cid in self.provided.clone() {
                        let _ = self.swarm.behaviour_mut().kad.start_providing(cid.to_vec().into());
                    }
                    // A circuit refused or lost earlier is asked for again.
                    self.reserve_circuits();
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen(addr, reply) => {
                let fixed = addr.iter().any(|p| match p {
                    Protocol::Ip4(ip) => !ip.is_unspecified(),
                    Protocol::Ip6(ip) => !ip.is_unspecified(),
                    _ => false,
                });
                let r = match self.swarm.listen_on(addr.clone()) {
                    Ok(id) => {
                        if fixed && self.net.server {
                            self.fixed_listeners.insert(id);
                        }
                        Ok(())
                    }
                    Err(libp2p::TransportError::Other(e)) if address_in_use(&e) => Err(NetError::InUse(addr)),
                    Err(e) => Err(NetError::Listen(addr, e.to_string())),
                };
                let _ = reply.send(r);
            }
            Command::Dial(peer, addr, reply) => {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                self.addresses.entry(peer).or_default().push(addr.clone());
                self.dialled.insert(peer, addr.clone());
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
                if self.dialling.contains(&peer) {
                    self.pending_dials.entry(peer).or_default().push(reply);
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

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                if self.fixed_listeners.contains(&listener_id) {
                    self.swarm.add_external_address(address.clone());
                }
                // A circuit address already ends in /p2p/<us>.
                let full = match address.iter().last() {
                    Some(Protocol::P2p(_)) => address,
                    _ => address.with(Protocol::P2p(*self.swarm.local_peer_id())),
                };
                self.tell(NetEvent::Listening(full));
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                if let Some(relay) = self.circuits.remove(&listener_id) {
                    match reason {
                        Ok(()) => tracing::info!(%relay, "circuit closed; asking again later"),
                        Err(e) => tracing::warn!(%relay, error = %e, "circuit refused or lost; asking again later"),
                    }
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "reachable at");
                // Peers learn it now rather than at identify's next periodic round, and provider records are
                // stored again with it (they carry the external addresses of the moment).
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                self.swarm.behaviour_mut().identify.push(peers);
                for cid in self.provided.clone() {
                    let _ = self.swarm.behaviour_mut().kad.start_providing(cid.to_vec().into());
                }
            }
            SwarmEvent::ExternalAddrExpired { address } => tracing::info!(%address, "no longer reachable at"),
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, connection_id, .. } => {
                self.hosts.connected(peer_id, endpoint.get_remote_address());
                self.dialling.remove(&peer_id);
                if endpoint.is_relayed() {
                    tracing::debug!(peer = %peer_id, "connected through a relay");
                    self.relayed.entry(peer_id).or_default().push(connection_id);
                }
                for reply in self.pending_dials.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                if let Some(ids) = self.relayed.get_mut(&peer_id) {
                    ids.retain(|id| *id != connection_id);
                }
                if num_established == 0 {
                    self.hosts.disconnected(&peer_id);
                    self.relayed.remove(&peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. }
                if !self.swarm.is_connected(&peer) =>
            {
                self.dialling.remove(&peer);
                for reply in self.pending_dials.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(NetError::Dial(peer.to_string(), error.to_string())));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::StatusChanged { old, new })) => {
                tracing::info!(?old, ?new, "reachability (AutoNAT)");
                self.private = new == autonat::NatStatus::Private;
                self.reserve_circuits();
                let verdict = match new {
                    autonat::NatStatus::Public(addr) => Some(Some(addr)),
                    autonat::NatStatus::Private => Some(None),
                    autonat::NatStatus::Unknown => None,
                };
                if let Some(v) = verdict {
                    self.tell(NetEvent::Reachability(v));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal: false,
                ..
            })) => tracing::info!(relay = %relay_peer_id, "circuit reserved: reachable through this relay"),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed: false,
            })) => tracing::info!(peer = %src_peer_id, "serving a circuit for a relay behind NAT"),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result })) => match result {
                Ok(_) => {
                    tracing::info!(peer = %remote_peer_id, "direct connection by hole punching");
                    // Streams pick any connection to the peer: leave them only the direct one, once the streams
                    // already on the circuit had time to end.
                    self.close_relayed.push((tokio::time::Instant::now() + RELAYED_GRACE, remote_peer_id));
                }
                Err(e) => {
                    tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed; staying on the relayed connection")
                }
            },
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
                        // The addresses in the answer live only as long as this query: dial now.
                        for peer in &providers {
                            if *peer == *self.swarm.local_peer_id() || self.swarm.is_connected(peer) {
                                continue;
                            }
                            let opts = DialOpts::peer_id(*peer).condition(PeerCondition::DisconnectedAndNotDialing);
                            if self.swarm.dial(opts.build()).is_ok() {
                                self.dialling.insert(*peer);
                            }
                        }
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
                    // The relay that signed the announcement holds the content; the peer that passed it on may not.
                    let from = message.source.unwrap_or(propagation_source);
                    self.tell(NetEvent::Announced { from, content });
                } else {
                    tracing::debug!(peer = %propagation_source, "ignoring malformed announcement");
                }
            }
            _ => {}
        }
    }
}

/// Whether a listen error is "address in use": transports wrap the OS error in their own error types.
fn address_in_use(e: &std::io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::AddrInUse {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                cur = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        cur = x.source();
    }
    e.to_string().contains("Address already in use")
}
