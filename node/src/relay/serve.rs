//! The relay side of the wire protocols: manifests, sessions with their receipts, and verified chunk transfers.
//!
//! Each inbound stream gets its own task, after the limits below admit it. A session's receipts are checked here
//! (signature, domain, parties, price × bytes, chunk chain, and with a chain that the viewer's lane covers them)
//! and then handed to the ledger, which checks them against the previous receipt and commits them before the
//! session's credit grows. With a chain, nothing is served that the viewer's lane does not cover ([`LaneBook`]).

use std::collections::HashSet;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bao_tree::{ChunkNum, ChunkRanges};
use bytes::Bytes;
use ferry_primitives::{
    amount_for, AccountId, Balance, ChunkChain, ContentId, Domain, Manifest, Segment, SessionId, SignedManifest,
    SignedReceipt,
};
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use tokio::sync::{watch, Semaphore};

use crate::api::metrics::Metrics;
use crate::chain::Link;
use crate::content::store::{Blob, Store};
use crate::faults::Faults;
use crate::money::lanes::{LaneBook, NotCovered, SessionCredit};
use crate::money::ledger::{Ledger, LedgerError, Rejection};
use crate::p2p::frame::{read_frame, write_frame, FrameError};
use crate::p2p::protocol::*;
use crate::p2p::PeerHosts;
use crate::relay::rate_limit::{Newcomers, TokenBucket};
use crate::relay::signatures::Signatures;
use crate::viewer::fetch::Fetcher;

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
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
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

    /// Refuses a session id the chain already settled for this relay and viewer: its receipts would start below
    /// what the chain holds and could never be paid. A relay whose ledger was lost would otherwise serve it.
    /// When the chain does not answer, the ledger's own check (a receipt must follow the session's last) stands.
    async fn fresh_session(&self, relay: AccountId, viewer: AccountId, session: SessionId) -> Result<(), String> {
        let lookup = async { self.link.get().await?.session_paid(relay, viewer, session).await };
        match tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
            Ok(Ok(Some(_))) => Err("this session id was already settled on chain; open a session with a new id".into()),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot check a session id on chain");
                Ok(())
            }
            Err(_) => Ok(()),
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

/// One open session: what was served, and what has been paid.
struct Session {
    peer: PeerId,
    /// Quoted when the session opened; receipts are checked against it.
    price_per_mib: Balance,
    viewer: AccountId,
    content: ContentId,
    manifest: SignedManifest,
    served: Mutex<Served>,
    /// Bytes covered by the latest committed receipt.
    paid: watch::Sender<u64>,
    /// One transfer at a time, so chunk boundaries are unambiguous.
    transfer: tokio::sync::Mutex<()>,
    /// With a chain: the session's share of its viewer's credit and lane.
    credit: Option<SessionCredit>,
    /// When a receipt or a chunk request last came: an idle session ends after [`SESSION_IDLE`].
    active: Mutex<Instant>,
}

impl Session {
    fn touch(&self) {
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> std::time::Duration {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

/// A session with no receipt, no chunk request and no transfer running for this long is ended.
pub const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Default)]
struct Served {
    bytes: u64,
    chain: ChunkChain,
    /// (cumulative bytes, chunk chain) at every chunk boundary not yet paid for.
    boundaries: VecDeque<(u64, [u8; 32])>,
}

const MAX_BOUNDARIES: usize = 4096;

impl Relay {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identity: &crate::identity::Identity,
        domain: Domain,
        price_per_mib: Balance,
        credit_window: u64,
        store: Store,
        ledger: Ledger,
        metrics: Metrics,
        fetcher: Fetcher,
        limits: Limits,
        faults: Faults,
        money: Option<Money>,
        hosts: PeerHosts,
        signatures: Signatures,
    ) -> Arc<Relay> {
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
            read_aheads: Arc::new(Semaphore::new(READ_AHEADS)),
            hosts,
            newcomers,
        })
    }

    /// Accepts the three protocols until the control is dropped.
    /// The price new sessions are quoted.
    pub fn price(&self) -> Balance {
        *self.price_per_mib.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Quotes `price` to sessions opened from now on (after `ferry operator set-price`, say).
    pub fn set_price(&self, price: Balance) {
        *self.price_per_mib.lock().unwrap_or_else(|p| p.into_inner()) = price;
    }

    pub fn spawn_accept(self: &Arc<Self>, control: &mut libp2p_stream::Control) -> Result<(), String> {
        for (protocol, kind) in
            [(MANIFEST_PROTOCOL, Kind::Manifest), (SESSION_PROTOCOL, Kind::Session), (CHUNK_PROTOCOL, Kind::Chunk)]
        {
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

    async fn serve_session(&self, peer: PeerId, stream: &mut Stream) -> Result<(), ServeError> {
        let open: OpenSession = match read_frame(stream, MAX_CONTROL_FRAME).await {
            Ok(o) => o,
            Err(e) => {
                return self.refuse_bad_frame(stream, e, |code, reason| SessionReply::Refused { code, reason }).await
            }
        };
        let refusal = |code: Code, reason: String| SessionReply::Refused { code, reason };
        if open.domain != self.domain {
            write_frame(
                stream,
                &refusal(Code::WrongDomain, "session is for another chain (genesis hash differs)".into()),
            )
            .await?;
            return Ok(());
        }
        // Only the holder of the viewer's key opens a session its lane pays for: the proof binds this relay and
        // this peer's connection, so it cannot be replayed from elsewhere.
        if let Err(e) = open.verify(&self.peer_id, &peer) {
            self.metrics.reject(&self.metrics.streams_refused, Code::BadSignature.as_str());
            tracing::warn!(%peer, viewer = %crate::identity::account_hex(&open.viewer), error = %e, "refusing a session: the peer did not prove the viewer's key");
            let reason = format!("the session's proof of the viewer's key does not verify: {e}");
            write_frame(stream, &refusal(Code::BadSignature, reason)).await?;
            return Ok(());
        }
        if let Some(money) = &self.money {
            // Before anything is looked up for the viewer, here or on chain.
            if !money.book.knows(&open.viewer) {
                let host = self.hosts.get(&peer);
                if let Err(reason) = self.newcomers.admit(peer, host) {
                    self.metrics.reject(&self.metrics.streams_refused, "new_accounts");
                    tracing::warn!(%peer, ?host, reason, "refusing a session");
                    write_frame(stream, &refusal(Code::RateLimited, reason.into())).await?;
                    return Ok(());
                }
                money.book.learn(&open.viewer).await;
            }
        }
        let manifest = match self.manifest_bytes(&open.content).await.map(|b| SignedManifest::decode_verified(&b)) {
            Some(Ok((_, m))) => m,
            _ => {
                write_frame(stream, &refusal(Code::NotFound, format!("no content {}", hex::encode(open.content))))
                    .await?;
                return Ok(());
            }
        };
        let price = self.price();
        let session = Arc::new(Session {
            peer,
            price_per_mib: price,
            viewer: open.viewer,
            content: open.content,
            manifest,
            served: Mutex::new(Served::default()),
            paid: watch::channel(0).0,
            transfer: tokio::sync::Mutex::new(()),
            credit: self.money.as_ref().map(|m| SessionCredit::new(m.book.clone(), open.viewer, price)),
            active: Mutex::new(Instant::now()),
        });
        if let Some(money) = &self.money {
            if let Err(reason) = money.registered(&open.content, &session.manifest).await {
                tracing::warn!(%peer, content = %hex::encode(open.content), %reason, "refusing a session");
                write_frame(stream, &refusal(Code::Unregistered, reason)).await?;
                return Ok(());
            }
            if let Err(reason) = money.fresh_session(self.account, open.viewer, open.session).await {
                tracing::warn!(%peer, session = %hex::encode(open.session), %reason, "refusing a session");
                write_frame(stream, &refusal(Code::WrongSession, reason)).await?;
                return Ok(());
            }
        }
        let refused = {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            let u = peers.entry(peer).or_default();
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            match sessions.entry(open.session) {
                _ if u.sessions >= self.limits.max_sessions_per_peer => {
                    Some(refusal(Code::Busy, "too many sessions from this peer".into()))
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    Some(refusal(Code::WrongSession, "session id already in use".into()))
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    u.sessions += 1;
                    slot.insert(session.clone());
                    None
                }
            }
        };
        if let Some(r) = refused {
            write_frame(stream, &r).await?;
            return Ok(());
        }
        self.metrics.sessions_active.inc();
        let reply = SessionReply::Opened {
            relay: self.account,
            price_per_mib: session.price_per_mib,
            credit_window: self.credit_window,
        };
        let result = match write_frame(stream, &reply).await {
            Ok(()) => self.receipts_loop(open.session, &session, stream).await,
            Err(e) => Err(e.into()),
        };
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&open.session);
        // A transfer still running stops at its next leaf: nothing more is covered.
        if let Some(credit) = &session.credit {
            credit.end();
        }
        if let Some(u) = self.peers.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&peer) {
            u.sessions = u.sessions.saturating_sub(1);
        }
        self.metrics.sessions_active.dec();
        result
    }

    /// Reads receipts and queues each, once checked, for the ledger without waiting for the one before it to reach
    /// the disk; acknowledges them in order as their group commits. So a session's receipts share fsyncs with each
    /// other and with every other session's, and the viewer's credit never waits on one commit at a time.
    async fn receipts_loop(&self, id: SessionId, session: &Session, stream: &mut Stream) -> Result<(), ServeError> {
        let (mut reader, mut writer) = futures::AsyncReadExt::split(stream);
        let (queue, mut queued) = tokio::sync::mpsc::channel::<Queued>(RECEIPTS_IN_FLIGHT);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let read = async move {
            loop {
                let frame = read_frame::<_, SessionMessage>(&mut reader, MAX_CONTROL_FRAME);
                tokio::pin!(frame);
                let msg = loop {
                    tokio::select! {
                        m = &mut frame => break m,
                        _ = &mut stopped => return,
                        // Not a timeout on the read: a frame half read must not be dropped.
                        _ = tokio::time::sleep(SESSION_IDLE / 4) => {
                            if session.idle_for() >= SESSION_IDLE && session.transfer.try_lock().is_ok() {
                                tracing::info!(peer = %session.peer, "ending an idle session");
                                return;
                            }
                        }
                    }
                };
                session.touch();
                let item = match msg {
                    Ok(SessionMessage::Receipt(receipt)) => self.check_and_submit(id, session, receipt).await,
                    Err(FrameError::Closed) => return,
                    Err(e) => Queued::BadFrame(e),
                };
                let last = matches!(item, Queued::BadFrame(_));
                if queue.send(item).await.is_err() || last {
                    return;
                }
            }
        };
        let acknowledge = async move {
            let _stop = stop;
            while let Some(item) = queued.recv().await {
                let (seq, bytes, started, verdict) = match item {
                    Queued::BadFrame(e) => {
                        let reject = |code, reason| ReceiptReply::Rejected { seq: 0, code, reason };
                        return self.refuse_bad_frame(&mut writer, e, reject).await;
                    }
                    Queued::Checked { seq, bytes, started, verdict } => (seq, bytes, started, verdict),
                };
                let verdict = match verdict {
                    Verdict::Decided(v) => v,
                    Verdict::Committing(commit) => match commit.await {
                        Ok(v) => v.map_err(|r| (r.code, r.reason)),
                        Err(e) => Err(ledger_down(e)),
                    },
                };
                match verdict {
                    Ok(()) => {
                        {
                            let mut served = session.served.lock().unwrap_or_else(|p| p.into_inner());
                            while served.boundaries.front().is_some_and(|b| b.0 <= bytes) {
                                served.boundaries.pop_front();
                            }
                        }
                        session.paid.send_if_modified(|p| {
                            let grew = bytes > *p;
                            *p = (*p).max(bytes);
                            grew
                        });
                        self.metrics.receipts_accepted.inc();
                        self.metrics.receipt_ack_seconds.observe(started.elapsed().as_secs_f64());
                        write_frame(&mut writer, &ReceiptReply::Ack { seq }).await?;
                    }
                    Err((code, reason)) => {
                        self.metrics.reject(&self.metrics.receipts_rejected, code.as_str());
                        tracing::warn!(peer = %session.peer, seq, %code, %reason, "receipt rejected");
                        write_frame(&mut writer, &ReceiptReply::Rejected { seq, code, reason }).await?;
                        if code.closes_stream() {
                            return Ok(());
                        }
                    }
                }
            }
            Ok(())
        };
        futures::future::join(read, acknowledge).await.1
    }

    /// The checks that need no earlier receipt on disk, then the receipt's place in the ledger's queue.
    async fn check_and_submit(&self, id: SessionId, session: &Session, receipt: SignedReceipt) -> Queued {
        let started = Instant::now();
        let (seq, bytes) = (receipt.receipt.seq, receipt.receipt.bytes);
        let verdict = match self.check(id, session, &receipt).await {
            Err(r) => Verdict::Decided(Err(r)),
            Ok(()) => match self.ledger.submit(receipt).await {
                Ok(commit) => Verdict::Committing(Box::pin(commit)),
                Err(e) => Verdict::Decided(Err(ledger_down(e))),
            },
        };
        Queued::Checked { seq, bytes, started, verdict }
    }

    /// Everything about a receipt that does not need the previous receipt (the ledger checks that part), in the
    /// order `docs/protocol.md` gives.
    async fn check(&self, id: SessionId, session: &Session, receipt: &SignedReceipt) -> Result<(), (Code, String)> {
        self.check_parties(id, session, receipt)?;
        if !self.signatures.valid(receipt).await {
            return Err((Code::BadSignature, ferry_primitives::SignatureError::Invalid.to_string()));
        }
        self.check_served(session, receipt)?;
        let Some(credit) = &session.credit else { return Ok(()) };
        let r = &receipt.receipt;
        credit.receipt(r.bytes, r.amount, r.tip).await.map_err(|e| (Code::NoEscrow, e.to_string()))
    }

    /// Before its signature: whether it names this chain, this relay and this session.
    fn check_parties(&self, id: SessionId, session: &Session, signed: &SignedReceipt) -> Result<(), (Code, String)> {
        let r = &signed.receipt;
        if r.domain != self.domain {
            return Err((Code::WrongDomain, "receipt is for another chain".into()));
        }
        if r.relay != self.account {
            return Err((Code::WrongRelay, format!("receipt names relay {}", crate::identity::account_hex(&r.relay))));
        }
        if r.session != id || r.viewer != session.viewer || r.content != session.content {
            return Err((Code::WrongSession, "receipt does not match this session's id, viewer or content".into()));
        }
        Ok(())
    }

    /// After its signature: whether it asks the quoted price for bytes this relay served and was not paid for.
    fn check_served(&self, session: &Session, signed: &SignedReceipt) -> Result<(), (Code, String)> {
        let r = &signed.receipt;
        let due = amount_for(r.bytes, session.price_per_mib);
        if r.amount != due {
            return Err((
                Code::WrongAmount,
                format!("amount {} for {} bytes; the price makes it {due}", r.amount, r.bytes),
            ));
        }
        let served = session.served.lock().unwrap_or_else(|p| p.into_inner());
        if !served.boundaries.iter().any(|(b, c)| *b == r.bytes && *c == r.chunk_chain) {
            let paid = *session.paid.borrow();
            return Err(if r.bytes <= paid {
                (Code::Replayed, format!("{} bytes are already paid for", r.bytes))
            } else {
                (Code::Unserved, format!("no chunk this relay served ends at {} bytes with that chunk chain", r.bytes))
            });
        }
        Ok(())
    }

    async fn serve_chunk(&self, peer: PeerId, stream: &mut Stream) -> Result<(), ServeError> {
        let req: ChunkRequest = match read_frame(stream, MAX_CONTROL_FRAME).await {
            Ok(r) => r,
            Err(e) => {
                return self.refuse_bad_frame(stream, e, |code, reason| ChunkReply::Refused { code, reason }).await
            }
        };
        let refuse = |code: Code, reason: String| ChunkReply::Refused { code, reason };
        let session = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&req.session).cloned();
        let Some(session) = session.filter(|s| s.peer == peer) else {
            write_frame(stream, &refuse(Code::UnknownSession, "open a session on this connection first".into()))
                .await?;
            return Ok(());
        };
        let Some(segment) =
            session.manifest.manifest.blobs().find(|s| s.hash == req.blob && s.size == req.size).cloned()
        else {
            write_frame(stream, &refuse(Code::NotFound, "that blob is not part of the session's content".into()))
                .await?;
            return Ok(());
        };
        let start = req.start_group.saturating_mul(GROUP_BYTES);
        if start > 0 && start >= segment.size {
            self.metrics.reject(&self.metrics.streams_refused, Code::Malformed.as_str());
            write_frame(
                stream,
                &refuse(Code::Malformed, format!("start group {} is past the blob's end", req.start_group)),
            )
            .await?;
            return Ok(());
        }
        // The viewer asks for its next blob as soon as it has the last byte of this one, which can be before this
        // relay has closed that transfer's stream: wait a little for it rather than refuse.
        let Ok(_transfer) = tokio::time::timeout(TRANSFER_WAIT, session.transfer.lock()).await else {
            write_frame(stream, &refuse(Code::Busy, "one transfer at a time per session".into())).await?;
            return Ok(());
        };
        session.touch();
        // A blob this relay must buy upstream first: the viewer's lane must be able to pay it back, and a viewer
        // that left such a blob unpaid lately gets no other (its cost stays held against it for an hour).
        let fill = session
            .credit
            .as_ref()
            .filter(|_| !self.store.has_blob(&segment.hash))
            .map(|credit| (credit, amount_for(segment.size - start, session.price_per_mib)));
        if let Some((credit, cost)) = fill {
            if let Err(e) = credit.fill(cost).await {
                tracing::warn!(peer = %session.peer, reason = %e, "not buying a blob upstream for this viewer");
                self.metrics.reject(&self.metrics.streams_refused, Code::NoEscrow.as_str());
                write_frame(stream, &refuse(Code::NoEscrow, e.to_string())).await?;
                return Ok(());
            }
        }
        // The requesting viewer is covered, for the first receipt chunk of the transfer, before anything is
        // fetched upstream on its behalf.
        let served = session.served.lock().unwrap_or_else(|p| p.into_inner()).bytes;
        let transfer_end = served + (segment.size - start);
        let first_chunk = chunk_end(served, 0, transfer_end).max(served + 1);
        if let Err(e) = cover(&session, first_chunk, TRANSFER_WAIT, async { Ok(()) }).await {
            if let Some((credit, cost)) = fill {
                credit.unfill(cost);
            }
            let code = match e {
                NotCovered::CreditInUse { .. } => Code::Busy,
                _ => Code::NoEscrow,
            };
            self.metrics.reject(&self.metrics.streams_refused, code.as_str());
            write_frame(stream, &refuse(code, e.to_string())).await?;
            return Ok(());
        }
        let blob = match self.fetcher.blob(&session.content, &segment).await {
            Ok(b) => b,
            Err(e) => {
                // Nothing is served from a fill that failed, so nothing stays held for it.
                if let Some((credit, cost)) = fill {
                    credit.unfill(cost);
                }
                tracing::warn!(error = %e, "cannot get blob to serve");
                write_frame(stream, &refuse(Code::NotFound, format!("blob unavailable: {e}"))).await?;
                return Ok(());
            }
        };
        self.read_ahead(&session.manifest.manifest, &segment);
        write_frame(stream, &ChunkReply::Sending).await?;
        self.metrics.chunk_streams_active.inc();
        let ranges = ChunkRanges::from(ChunkNum(req.start_group.saturating_mul(GROUP_BYTES / 1024))..);
        let mut writer = PaidWriter {
            stream,
            buf: Vec::with_capacity(WRITE_BUF + GROUP_BYTES as usize),
            session: &session,
            window: self.credit_window,
            metrics: &self.metrics,
            blob: &blob,
            blob_pos: start,
            chunk_len: 0,
            transfer_bytes: 0,
            transfer_end,
            faults: &self.faults,
        };
        let mut outboard = blob.outboard.clone();
        // Not the validating encoder: the store checked these bytes against their hash when it read them.
        let result = bao_tree::io::fsm::encode_ranges(blob.data.clone(), &mut outboard, &ranges, &mut writer).await;
        let result = match result {
            Ok(()) => writer.finish().await.map_err(ServeError::from),
            Err(e) => Err(ServeError::Encode(e.to_string())),
        };
        self.metrics.chunk_streams_active.dec();
        session.touch();
        result
    }
}

/// Covers `session` up to `upto` bytes. While the viewer's other sessions hold its whole credit window, waits
/// up to `wait` for a receipt to free some, after `before_wait` (which flushes what was written, so the viewer
/// can pay for it). Without a chain everything is covered.
async fn cover(
    session: &Session,
    upto: u64,
    wait: std::time::Duration,
    before_wait: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<(), NotCovered> {
    let Some(credit) = &session.credit else { return Ok(()) };
    let deadline = tokio::time::Instant::now() + wait;
    let mut before_wait = Some(before_wait);
    loop {
        let freed = credit.freed();
        match credit.cover(upto).await {
            Err(NotCovered::CreditInUse { held_bytes }) => {
                if let Some(f) = before_wait.take() {
                    f.await.map_err(|e| NotCovered::Unreadable(e.to_string()))?;
                }
                if tokio::time::timeout_at(deadline, freed).await.is_err() {
                    return Err(NotCovered::CreditInUse { held_bytes });
                }
            }
            Err(e) => {
                if !matches!(e, NotCovered::Ended) {
                    let viewer = crate::identity::account_hex(&session.viewer);
                    tracing::warn!(peer = %session.peer, %viewer, reason = %e, "not serving past the lane");
                }
                return Err(e);
            }
            Ok(()) => return Ok(()),
        }
    }
}

impl Relay {
    /// Loads the blob a viewer most likely asks for next while this one is sent, and hashes its chunks, so that
    /// its request waits neither for the disk nor for the hash check. Only a blob stored here: nothing is fetched
    /// (and paid for) upstream on a guess.
    fn read_ahead(&self, manifest: &Manifest, segment: &Segment) {
        let Some(next) = next_in_rendition(manifest, segment) else { return };
        // A few at a time: they must not crowd out the blocking threads that reads for requests wait for.
        let Ok(permit) = self.read_aheads.clone().try_acquire_owned() else { return };
        if !self.store.claim_read_ahead(&next.hash) {
            return;
        }
        let (store, hash) = (self.store.clone(), next.hash);
        tokio::task::spawn_blocking(move || {
            match store.blob(&hash) {
                Ok(Some(blob)) => blob.hash_chunks(),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read a blob ahead of its request"),
            }
            drop(permit);
        });
    }
}

/// Blobs read ahead at once: one per core of a small machine.
const READ_AHEADS: usize = 2;

/// The blob after `segment` in its rendition: what a viewer playing it asks for next.
fn next_in_rendition<'m>(manifest: &'m Manifest, segment: &Segment) -> Option<&'m Segment> {
    manifest.renditions.iter().find_map(|r| {
        let mut from = r.init.iter().chain(&r.segments).skip_while(|s| s.hash != segment.hash);
        from.next()?;
        from.next()
    })
}

/// How long a chunk request waits for the session's previous transfer to end before it is refused `Busy`.
const TRANSFER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Receipts of one session read and checked but not yet acknowledged; the viewer's credit window bounds them too.
const RECEIPTS_IN_FLIGHT: usize = 256;

type Commit = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Result<(), Rejection>, LedgerError>> + Send>>;

/// A receipt between the reader and the acknowledger of a session.
enum Queued {
    Checked {
        seq: u64,
        bytes: u64,
        started: Instant,
        verdict: Verdict,
    },
    /// Answered with a rejection, then the session ends.
    BadFrame(FrameError),
}

enum Verdict {
    Decided(Result<(), (Code, String)>),
    Committing(Commit),
}

fn ledger_down(e: LedgerError) -> (Code, String) {
    tracing::error!(error = %e, "ledger unavailable; refusing receipts");
    (Code::Internal, "relay ledger unavailable".into())
}

#[derive(Clone, Copy)]
enum Kind {
    Manifest,
    Session,
    Chunk,
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

/// Writes are gathered up to this size before they reach the stream.
const WRITE_BUF: usize = 256 << 10;

/// The bao encoder's output: it meters payload against the session's credit and records chunk boundaries.
/// bao-tree writes hash pairs with `write` and leaf data with `write_bytes`, so payload is what `write_bytes` gets.
struct PaidWriter<'a> {
    stream: &'a mut Stream,
    buf: Vec<u8>,
    session: &'a Session,
    window: u64,
    metrics: &'a Metrics,
    blob: &'a Blob,
    /// Where the next leaf starts in the blob.
    blob_pos: u64,
    chunk_len: u64,
    transfer_bytes: u64,
    /// The session's served bytes when this transfer is done.
    transfer_end: u64,
    faults: &'a Faults,
}

/// Where the receipt chunk that starts `chunk_len` bytes before `served` ends: a full chunk later, or where the
/// transfer ends. Sessions reserve whole chunks, so those sharing a small lane serve chunks the viewer can pay for,
/// never parts of several that no receipt ever covers.
fn chunk_end(served: u64, chunk_len: u64, transfer_end: u64) -> u64 {
    (served.saturating_sub(chunk_len) + CHUNK_BYTES).min(transfer_end)
}

impl PaidWriter<'_> {
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.stream.write_all(&self.buf).await?;
            self.buf.clear();
        }
        self.stream.flush().await
    }

    /// Waits until serving up to `upto` bytes stays within the session's credit window, with the viewer's lane
    /// and credit covering up to `cover_to`.
    async fn wait_for_credit(&mut self, upto: u64, cover_to: u64) -> std::io::Result<()> {
        let session = self.session;
        if let Err(e) = cover(session, cover_to, PAYMENT_TIMEOUT, self.flush()).await {
            self.flush().await?;
            return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()));
        }
        let need = upto.saturating_sub(self.window);
        if *self.session.paid.borrow() >= need {
            return Ok(());
        }
        // The viewer can only pay for what it has received.
        self.flush().await?;
        let mut paid = self.session.paid.subscribe();
        let paid_in_time =
            matches!(tokio::time::timeout(PAYMENT_TIMEOUT, paid.wait_for(|p| *p >= need)).await, Ok(Ok(_)));
        match paid_in_time {
            true => Ok(()),
            false => {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "viewer stopped paying (credit window used up)"))
            }
        }
    }

    fn close_chunk(&mut self) {
        if self.chunk_len == 0 {
            return;
        }
        let start = self.blob_pos - self.chunk_len;
        let hash = self.blob.chunk_hash(start as usize, self.chunk_len as usize);
        self.chunk_len = 0;
        let mut s = self.session.served.lock().unwrap_or_else(|p| p.into_inner());
        s.chain.extend_hash(&hash);
        let entry = (s.bytes, s.chain.0);
        if s.boundaries.len() >= MAX_BOUNDARIES {
            s.boundaries.pop_front();
        }
        s.boundaries.push_back(entry);
    }

    async fn finish(mut self) -> std::io::Result<()> {
        self.close_chunk();
        self.flush().await?;
        self.stream.close().await
    }
}

impl iroh_io::AsyncStreamWriter for PaidWriter<'_> {
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(data);
        Ok(())
    }

    async fn write_bytes(&mut self, leaf: Bytes) -> std::io::Result<()> {
        let len = leaf.len() as u64;
        let before = self.session.served.lock().unwrap_or_else(|p| p.into_inner()).bytes;
        let upto = before + len;
        self.wait_for_credit(upto, upto.max(chunk_end(before, self.chunk_len, self.transfer_end))).await?;
        self.blob_pos += len;
        self.chunk_len += len;
        self.session.served.lock().unwrap_or_else(|p| p.into_inner()).bytes += len;
        if let Some(credit) = &self.session.credit {
            credit.served(upto);
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&leaf);
        self.faults.on_leaf(self.transfer_bytes, &mut self.buf[start..]);
        self.transfer_bytes += len;
        self.metrics.bytes_served.inc_by(len);
        if self.chunk_len >= CHUNK_BYTES {
            self.close_chunk();
        }
        if self.buf.len() >= WRITE_BUF {
            self.flush().await?;
        }
        Ok(())
    }

    async fn sync(&mut self) -> std::io::Result<()> {
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_primitives::{Container, Rendition};

    #[test]
    fn the_next_blob_is_the_following_one_of_the_same_rendition() {
        let seg = |n: u8| Segment { hash: [n; 32], size: 1000, duration_ms: 1000 };
        let rendition = |init: Option<u8>, segs: &[u8]| Rendition {
            name: b"r".to_vec(),
            bandwidth: 1,
            width: 1,
            height: 1,
            codecs: vec![],
            init: init.map(seg),
            segments: segs.iter().copied().map(seg).collect(),
        };
        let manifest = Manifest {
            version: 1,
            creator: [0; 32],
            creator_share_bps: 0,
            created_at: 0,
            title: vec![],
            container: Container::Fmp4,
            target_duration_ms: 1000,
            renditions: vec![rendition(Some(1), &[2, 3]), rendition(None, &[4])],
        };
        let next = |n: u8| next_in_rendition(&manifest, &seg(n)).map(|s| s.hash[0]);
        assert_eq!(next(1), Some(2), "the init segment, then the first segment");
        assert_eq!(next(2), Some(3));
        assert_eq!(next(3), None, "the last of its rendition: not the first of the next one");
        assert_eq!(next(4), None);
        assert_eq!(next(9), None, "not in the manifest");
    }
}
