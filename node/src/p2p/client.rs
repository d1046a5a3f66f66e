//! The cloneable handle to the network event loop: each command carries its own reply channel.

use std::collections::HashSet;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::NetError;

#[derive(Debug)]
pub(crate) enum Command {
    Listen(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    /// Dial a peer at an address, and add it to the DHT routing table.
    Dial(PeerId, Multiaddr, oneshot::Sender<Result<(), NetError>>),
    /// Make sure we are connected to a known peer (by the addresses the node has learnt).
    Connect(PeerId, oneshot::Sender<Result<(), NetError>>),
    Provide([u8; 32]),
    FindProviders([u8; 32], oneshot::Sender<HashSet<PeerId>>),
    Announce([u8; 32]),
}

#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    hosts: super::PeerHosts,
}

impl Client {
    pub(crate) fn new(tx: mpsc::Sender<Command>, hosts: super::PeerHosts) -> Client {
        Client { tx, hosts }
    }

    /// The address each connected peer reaches us from.
    pub fn hosts(&self) -> super::PeerHosts {
        self.hosts.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    pub async fn listen(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|tx| Command::Listen(addr, tx)).await?
    }

    /// Dials `/…/p2p/<peer>` and waits until connected.
    pub async fn dial(&self, addr: &Multiaddr) -> Result<PeerId, NetError> {
        let (peer, bare) = super::split_peer(addr)?;
        self.ask(|tx| Command::Dial(peer, bare, tx)).await??;
        Ok(peer)
    }

    pub async fn connect(&self, peer: PeerId) -> Result<(), NetError> {
        self.ask(|tx| Command::Connect(peer, tx)).await?
    }

    /// Publishes a provider record for a content id (and keeps it fresh).
    pub async fn provide(&self, content: [u8; 32]) -> Result<(), NetError> {
        self.tx.send(Command::Provide(content)).await.map_err(|_| NetError::Stopped)
    }

    pub async fn find_providers(&self, content: [u8; 32]) -> Result<HashSet<PeerId>, NetError> {
        self.ask(|tx| Command::FindProviders(content, tx)).await
    }

    /// Tells the network about new content over gossipsub.
    pub async fn announce(&self, content: [u8; 32]) -> Result<(), NetError> {
        self.tx.send(Command::Announce(content)).await.map_err(|_| NetError::Stopped)
    }
}
