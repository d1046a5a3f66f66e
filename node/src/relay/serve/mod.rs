//! The relay side of the wire protocols: admission, manifests, sessions with their receipts ([`session`]), and
//! verified chunk transfers metered against them ([`transfer`]).
//!
//! Each inbound stream gets its own task, after the limits below admit it. With a chain, nothing is served that the
//! viewer's lane does not cover ([`LaneBook`]).

mod admission;
mod log;
mod session;
mod transfer;

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ferry_primitives::{AccountId, Balance, ClaimId, ContentId, Domain, SignedManifest, SignedReceipt};
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use tokio::sync::Semaphore;

use crate::chain::Link;
use crate::content::store::Store;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::money::lanes::LaneBook;
use crate::money::ledger::Ledger;
use crate::p2p::frame::{read_frame, write_frame, FrameError};
use crate::p2p::protocol::*;
use crate::p2p::PeerHosts;
use crate::relay::rate_limit::{Newcomers, TokenBucket};
use crate::relay::signatures::Signatures;
use crate::viewer::fetch::Fetcher;
use session::Session;

pub use session::SESSION_IDLE;

/// What the relay needs to serve; shared by every stream task.
pub struct Relay {
    pub account: AccountId,
    /// Session proofs name it, so a proof made for this relay is worthless at another.
    peer_id: PeerId,
    pub domain: Domain,
    /// What new sessions are quoted; a session keeps the price it was quoted.
    price_per_mib: Mutex<Balance>,
    pub credit_window: u64,
    pub store: Store,
    pub ledger: Ledger,
    pub metrics: Metrics,
    /// Fills the cache from other relays.
    pub fetcher: Fetcher,
    pub limits: Limits,
    pub faults: Faults,
    /// Checks receipt signatures in batches across sessions.
    signatures: Signatures,
    /// With a chain: what each viewer's lane still covers, and the chain to check content registrations on.
    pub money: Option<Money>,
    /// The open session of each claim.
    sessions: Mutex<HashMap<ClaimId, Arc<Session>>>,
    peers: Mutex<HashMap<PeerId, PeerUse>>,
    streams: Arc<Semaphore>,
    /// Blobs being read ahead of a request.
    read_aheads: Arc<Semaphore>,
    hosts: PeerHosts,
    newcomers: Newcomers,
}

/// The relay's link to the chain: lanes and content registrations.
pub struct Money {
    pub book: Arc<LaneBook>,
    pub link: Link,
    /// Content ids seen registered on chain to the manifest's creator and share.
    registered: Mutex<HashSet<ContentId>>,
}

impl Money {
    pub fn new(book: Arc<LaneBook>, link: Link) -> Money {
        Money { book, link, registered: Mutex::new(HashSet::new()) }
    }

    /// The latest receipt of a claim the chain settled, so that a relay whose ledger was lost or restored from
    /// an older copy continues the claim above it rather than serving receipts the chain would refuse. When the
    /// chain does not answer within 2 s the ledger's record stands.
    async fn settled_claim(&self, relay: AccountId, viewer: AccountId, claim: ClaimId) -> Option<SignedReceipt> {
        let lookup = async { self.link.get().await?.claim(relay, viewer, claim).await };
        match tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
            Ok(Ok(settled)) => settled.map(|c| c.latest),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot read a claim on chain");
                None
            }
            Err(_) => None,
        }
    }

    /// Whether the chain registered `cid` with the manifest's creator and share. Only registered content can be
    /// paid for: receipts for anything else are refused on chain.
    async fn registered(&self, cid: &ContentId, manifest: &SignedManifest) -> Result<(), String> {
        if self.registered.lock().unwrap_or_else(|p| p.into_inner()).contains(cid) {
            return Ok(());
        }
        let lookup = async { self.link.get().await?.content(*cid).await };
        let found = match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => return Err(format!("cannot check the content's registration on chain: {e}")),
            Err(_) => return Err("cannot check the content's registration on chain: no answer".into()),
        };
        let m = &manifest.manifest;
        if u32::from(m.creator_share_bps) >= ferry_primitives::BPS_DENOMINATOR {
            return Err("the creator's share of this content is 100%, which leaves the relay nothing".into());
        }
        match found {
            Some((creator, share)) if creator == m.creator && share == m.creator_share_bps => {
                self.registered.lock().unwrap_or_else(|p| p.into_inner()).insert(*cid);
                Ok(())
            }
            Some(_) => Err("the chain registered this content to another creator or share than its manifest".into()),
            None => Err("this content is not registered on chain, so nobody can be paid for it; \
                         its creator registers it with `ferry register <CID>`"
                .into()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_sessions_per_peer: usize,
    pub max_streams_per_peer: usize,
    pub max_streams: usize,
    pub streams_per_second_per_peer: u32,
    /// Sessions for viewer accounts the relay has not seen yet, per peer and per host (with a chain only).
    pub new_viewers_per_minute: u32,
}

#[derive(Default)]
struct PeerUse {
    sessions: usize,
    streams: usize,
    /// New streams.
    rate: TokenBucket,
}

/// The relay's terms: the chain its receipts pay on, what it charges and how far it serves ahead of payment.
pub struct Terms {
    pub domain: Domain,
    /// Quoted to new sessions.
    pub price_per_mib: Balance,
    pub credit_window: u64,
    pub limits: Limits,
}

/// What a relay serves with: its store and ledger, and what it shares with the rest of the node.
pub struct Parts {
    pub store: Store,
    pub ledger: Ledger,
    pub metrics: Metrics,
    pub fetcher: Fetcher,
    pub faults: Faults,
    /// With a chain: lanes and content registrations.
    pub money: Option<Money>,
    pub hosts: PeerHosts,
    pub signatures: Signatures,
}

impl Relay {
    pub fn new(identity: &crate::identity::Identity, terms: Terms, parts: Parts) -> Arc<Relay> {
        let Terms { domain, price_per_mib, credit_window, limits } = terms;
        let Parts { store, ledger, metrics, fetcher, faults, money, hosts, signatures } = parts;
        let streams = Arc::new(Semaphore::new(limits.max_streams));
        let newcomers = Newcomers::new(limits.new_viewers_per_minute);
        Arc::new(Relay {
            account: identity.account,
            peer_id: identity.peer_id,
            domain,
            price_per_mib: Mutex::new(price_per_mib),
            credit_window,
            store,
            ledger,
            metrics,
            fetcher,
            limits,
            faults,
            signatures,
            money,
            sessions: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            streams,
            read_aheads: Arc::new(Semaphore::new(transfer::READ_AHEADS)),
            hosts,
            newcomers,
        })
    }

    /// The price new sessions are quoted.
    pub fn price(&self) -> Balance {
        *self.price_per_mib.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Quotes `price` to sessions opened from now on (after `ferry operator set-price`, say).
    pub fn set_price(&self, price: Balance) {
        *self.price_per_mib.lock().unwrap_or_else(|p| p.into_inner()) = price;
    }

    /// Accepts the four protocols until the control is dropped.
    pub fn spawn_accept(self: &Arc<Self>, control: &mut libp2p_stream::Control) -> Result<(), String> {
        for (protocol, kind) in [
            (MANIFEST_PROTOCOL, Kind::Manifest),
            (SESSION_PROTOCOL, Kind::Session),
            (CHUNK_PROTOCOL, Kind::Chunk),
            (LOG_PROTOCOL, Kind::Log),
        ] {
            let mut incoming = control.accept(protocol).map_err(|e| e.to_string())?;
            let relay = self.clone();
            tokio::spawn(async move {
                // The accept channel has no buffer: hand each stream to its own task at once.
                while let Some((peer, stream)) = incoming.next().await {
                    let relay = relay.clone();
                    tokio::spawn(async move { relay.handle(kind, peer, stream).await });
                }
            });
        }
        Ok(())
    }

    async fn handle(self: Arc<Self>, kind: Kind, peer: PeerId, mut stream: Stream) {
        let Some(_permit) = self.admit(peer) else {
            let _ = stream.close().await;
            return;
        };
        let result = match kind {
            Kind::Manifest => self.serve_manifest(&mut stream).await,
            Kind::Session => self.serve_session(peer, &mut stream).await,
            Kind::Chunk => self.serve_chunk(peer, &mut stream).await,
            Kind::Log => self.serve_log(&mut stream).await,
        };
        if let Err(e) = result {
            match e {
                ServeError::Frame(FrameError::Closed) => {}
                e => tracing::debug!(%peer, error = %e, "stream ended with an error"),
            }
        }
        let _ = stream.close().await;
        self.release(peer);
    }

    /// Global and per-peer stream limits and the per-peer rate. `None` means refused.
    fn admit(&self, peer: PeerId) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            self.metrics.reject(&self.metrics.streams_refused, "busy");
            return None;
        };
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let u = peers.entry(peer).or_default();
        if u.streams >= self.limits.max_streams_per_peer {
            self.metrics.reject(&self.metrics.streams_refused, "busy");
            tracing::warn!(%peer, limit = self.limits.max_streams_per_peer, "peer has too many streams open; refusing");
            return None;
        }
        let rate = f64::from(self.limits.streams_per_second_per_peer);
        if !u.rate.take(rate, rate.max(1.0)) {
            self.metrics.reject(&self.metrics.streams_refused, "rate_limited");
            tracing::warn!(%peer, "peer opens streams too fast; refusing");
            return None;
        }
        u.streams += 1;
        Some(permit)
    }

    fn release(&self, peer: PeerId) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = peers.get_mut(&peer) {
            u.streams = u.streams.saturating_sub(1);
            if u.streams == 0 && u.sessions == 0 {
                peers.remove(&peer);
            }
        }
    }

    async fn serve_manifest(&self, stream: &mut Stream) -> Result<(), ServeError> {
        let req: ManifestRequest = match read_frame(stream, MAX_CONTROL_FRAME).await {
            Ok(r) => r,
            Err(e) => {
                return self.refuse_bad_frame(stream, e, |code, reason| ManifestReply::Refused { code, reason }).await
            }
        };
        let reply = match self.manifest_bytes(&req.content).await {
            Some(bytes) => ManifestReply::Found(bytes),
            None => ManifestReply::Refused {
                code: Code::NotFound,
                reason: format!("no content {}", hex::encode(req.content)),
            },
        };
        write_frame(stream, &reply).await?;
        Ok(())
    }

    /// The manifest from the store, or fetched from another relay (and then stored).
    async fn manifest_bytes(&self, cid: &ContentId) -> Option<Vec<u8>> {
        match self.store.manifest_bytes(cid) {
            Ok(Some(b)) => return Some(b),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "store read failed");
                return None;
            }
        }
        let m = self.fetcher.manifest(cid).await.ok()?;
        self.store.manifest_bytes(cid).ok().flatten().or_else(|| Some(parity_scale_codec::Encode::encode(&m)))
    }

    async fn refuse_bad_frame<T: parity_scale_codec::Encode>(
        &self,
        stream: &mut (impl futures::AsyncWrite + Unpin),
        e: FrameError,
        refuse: impl FnOnce(Code, String) -> T,
    ) -> Result<(), ServeError> {
        let code = match &e {
            FrameError::TooLarge { .. } => Code::TooLarge,
            FrameError::Malformed(_) => Code::Malformed,
            _ => return Err(e.into()),
        };
        tracing::warn!(error = %e, "refusing malformed request");
        self.metrics.reject(&self.metrics.streams_refused, code.as_str());
        write_frame(stream, &refuse(code, e.to_string())).await?;
        Err(e.into())
    }
}

/// One of a peer's open sessions, counted against its limit until dropped.
struct SessionSlot<'r> {
    relay: &'r Relay,
    peer: PeerId,
}

impl<'r> SessionSlot<'r> {
    fn take(relay: &'r Relay, peer: PeerId) -> Option<SessionSlot<'r>> {
        let mut peers = relay.peers.lock().unwrap_or_else(|p| p.into_inner());
        let u = peers.entry(peer).or_default();
        if u.sessions >= relay.limits.max_sessions_per_peer {
            return None;
        }
        u.sessions += 1;
        Some(SessionSlot { relay, peer })
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        if let Some(u) = self.relay.peers.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&self.peer) {
            u.sessions = u.sessions.saturating_sub(1);
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Manifest,
    Session,
    Chunk,
    Log,
}

#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("stream write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("transfer stopped: {0}")]
    Encode(String),
}
