//! Getting verified video from relays, with failover. Viewers use it for playback; relays use it to fill their
//! cache from the origin or another relay. Both pay with the same receipts.
//!
//! A blob is fetched from the first candidate relay (bootstrap relays first, then DHT providers). Every 16 KiB
//! group is verified against the blob hash from the signed manifest as it arrives. On a bad group the relay is
//! dropped for good; on a stall, a refusal or a disconnect the next relay is tried. Either way the transfer
//! resumes at the first group not yet verified, so a failover mid-segment loses nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bao_tree::io::fsm::{ResponseDecoder, ResponseDecoderNext};
use bao_tree::io::outboard::PreOrderMemOutboard;
use bao_tree::io::sync::OutboardMut;
use bao_tree::io::BaoContentItem;
use bao_tree::{BaoTree, ChunkNum, ChunkRanges};
use bytes::Bytes;
use ferry_primitives::{ContentId, Domain, Segment, SignedManifest};
use libp2p::{PeerId, StreamProtocol};

use crate::content::buffers::blob_buffer;
use crate::content::store::{Blob, Store, StoreError, BLOCK_SIZE};
use crate::identity::Identity;
use crate::money::funding::Funding;
use crate::money::ledger::Ledger;
use crate::p2p::frame::{read_frame, write_frame};
use crate::p2p::protocol::*;
use crate::p2p::stream_io::StreamReader;
use crate::p2p::Client;
use crate::viewer::session::{PaySession, SessionError};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no relay could provide content {0}; check --bootstrap and that a relay holds it")]
    NoRelay(String),
    #[error("every relay failed for blob {blob}: {last}")]
    AllFailed { blob: String, last: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading or writing the store stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why one transfer from one relay failed.
#[derive(Debug, thiserror::Error)]
enum TransferError {
    #[error("relay sent data that does not match the hash ({0})")]
    Corrupt(String),
    #[error("relay stalled for {0:?}")]
    Stall(Duration),
    #[error("relay refused: {0} ({1})")]
    Refused(Code, String),
    #[error("stream failed: {0}")]
    Io(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("cannot reserve funds for this relay on chain: {0}")]
    Lane(String),
    #[error("relay quoted {quoted} per MiB, but {registered}")]
    Quote { quoted: u128, registered: String },
}

impl TransferError {
    /// A relay that served bad bytes, quoted a price it did not register on chain, or offered a claim to continue
    /// that is not ours, is never asked again.
    fn disqualifies(&self) -> bool {
        matches!(
            self,
            TransferError::Corrupt(_) | TransferError::Quote { .. } | TransferError::Session(SessionError::BadClaim(_))
        )
    }
}

/// Held while one task does what others wait for.
type Gate = Arc<tokio::sync::Mutex<()>>;

/// A session that transfers take turns on.
type SharedSession = Arc<tokio::sync::Mutex<PaySession>>;

/// A little longer than a relay waits before it reads a lane that did not cover a request again.
const LANE_RECHECK: std::time::Duration = std::time::Duration::from_millis(300);
/// How long DHT providers found for a content id are used before they are looked up again.
const PROVIDERS_TTL: Duration = Duration::from_secs(30);

/// Cheap-clone fetcher.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    identity: Identity,
    client: Client,
    control: libp2p_stream::Control,
    store: Store,
    ledger: Ledger,
    domain: Domain,
    max_price_per_mib: u128,
    /// With a chain: opens and tops up lanes to the relays this node pays.
    funding: Option<Funding>,
    bootstrap: Mutex<Vec<PeerId>>,
    stall: Duration,
    sessions: Mutex<HashMap<(PeerId, ContentId), SharedSession>>,
    /// One session opening per relay and content at a time: concurrent transfers share the session it opens.
    opening: Mutex<HashMap<(PeerId, ContentId), Gate>>,
    bad: Mutex<HashSet<PeerId>>,
    /// One fetch per blob at a time; later callers find it in the store.
    blob_locks: Mutex<HashMap<[u8; 32], Gate>>,
    /// DHT providers per content id and when they were found: a lookup per segment would cost a DHT round trip
    /// on every segment.
    providers: Mutex<HashMap<ContentId, (Instant, Vec<PeerId>)>>,
}

impl Fetcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identity: Identity,
        client: Client,
        control: libp2p_stream::Control,
        store: Store,
        ledger: Ledger,
        domain: Domain,
        max_price_per_mib: u128,
        stall: Duration,
        funding: Option<Funding>,
    ) -> Fetcher {
        Fetcher {
            inner: Arc::new(Inner {
                identity,
                client,
                control,
                store,
                ledger,
                domain,
                max_price_per_mib,
                funding,
                bootstrap: Mutex::new(vec![]),
                stall,
                sessions: Mutex::new(HashMap::new()),
                opening: Mutex::new(HashMap::new()),
                bad: Mutex::new(HashSet::new()),
                blob_locks: Mutex::new(HashMap::new()),
                providers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Relays to try first, in order.
    pub fn set_bootstrap(&self, peers: Vec<PeerId>) {
        *lock(&self.inner.bootstrap) = peers;
    }

    /// Candidate relays for a content id: bootstrap relays, then DHT providers (looked up again when `fresh` or
    /// after [`PROVIDERS_TTL`]); never ourselves or bad relays.
    async fn candidates(&self, cid: &ContentId, fresh: bool) -> Vec<PeerId> {
        let me = self.inner.identity.peer_id;
        let mut out: Vec<PeerId> = lock(&self.inner.bootstrap).clone();
        let known = lock(&self.inner.providers)
            .get(cid)
            .filter(|(at, _)| !fresh && at.elapsed() < PROVIDERS_TTL)
            .map(|(_, peers)| peers.clone());
        match known {
            Some(peers) => out.extend(peers),
            None => match self.inner.client.find_providers(*cid).await {
                Ok(found) => {
                    let mut found: Vec<_> = found.into_iter().collect();
                    found.sort();
                    if !found.is_empty() {
                        lock(&self.inner.providers).insert(*cid, (Instant::now(), found.clone()));
                    }
                    out.extend(found);
                }
                Err(e) => tracing::warn!(error = %e, "provider lookup failed"),
            },
        }
        let bad = lock(&self.inner.bad).clone();
        let mut seen = HashSet::new();
        out.retain(|p| *p != me && !bad.contains(p) && seen.insert(*p));
        out
    }

    /// The manifest of `cid`, from the store or a relay; verified (signature and content id) before it is stored.
    pub async fn manifest(&self, cid: &ContentId) -> Result<SignedManifest, FetchError> {
        if let Some(m) = self.inner.store.manifest(cid)? {
            return Ok(m);
        }
        let mut last = String::from("no relay answered");
        for peer in self.candidates(cid, false).await {
            match self.manifest_from(peer, cid).await {
                Ok(m) => {
                    self.inner.store.put_manifest(cid, &m)?;
                    return Ok(m);
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "manifest fetch failed");
                    last = e;
                }
            }
        }
        Err(FetchError::AllFailed { blob: format!("manifest {}", hex::encode(cid)), last })
    }

    /// The manifest of `cid` from `peer`, verified but not stored: what the catalogue lists of an announcement.
    pub async fn manifest_of(&self, peer: PeerId, cid: &ContentId) -> Result<SignedManifest, FetchError> {
        self.manifest_from(peer, cid)
            .await
            .map_err(|last| FetchError::AllFailed { blob: format!("manifest {}", hex::encode(cid)), last })
    }

    async fn manifest_from(&self, peer: PeerId, cid: &ContentId) -> Result<SignedManifest, String> {
        let request = ManifestRequest { content: *cid };
        let (_, reply) = self
            .ask(peer, MANIFEST_PROTOCOL, &request, MAX_MANIFEST_FRAME, MANIFEST_WAIT)
            .await
            .map_err(|e| e.to_string())?;
        let bytes = match reply {
            ManifestReply::Found(b) => b,
            ManifestReply::Refused { code, reason } => return Err(format!("{code}: {reason}")),
        };
        let (got, m) = SignedManifest::decode_verified(&bytes).map_err(|e| e.to_string())?;
        if got != *cid {
            self.mark_bad(peer, "sent a manifest for another content id");
            return Err("manifest does not hash to the content id".into());
        }
        Ok(m)
    }

    /// Opens a stream, sends `request` and reads the relay's first reply, waiting for it at most `wait`; asks again
    /// when the stream fails before that reply (see [`dropped_again`]).
    async fn ask<Q: parity_scale_codec::Encode, A: parity_scale_codec::Decode>(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
        request: &Q,
        max_reply: usize,
        wait: Duration,
    ) -> Result<(libp2p::Stream, A), TransferError> {
        let mut attempt = 0;
        loop {
            let mut stream = self.open(peer, protocol.clone()).await?;
            let asked = match write_frame(&mut stream, request).await {
                Ok(()) => tokio::time::timeout(wait, read_frame(&mut stream, max_reply))
                    .await
                    .map_err(|_| TransferError::Stall(wait))?
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match asked {
                Ok(reply) => return Ok((stream, reply)),
                Err(e) if dropped_again(&mut attempt, &e).await => {}
                Err(e) => return Err(TransferError::Io(e)),
            }
        }
    }

    async fn open(&self, peer: PeerId, protocol: StreamProtocol) -> Result<libp2p::Stream, TransferError> {
        if let Err(e) = self.inner.client.connect(peer).await {
            return Err(TransferError::Io(e.to_string()));
        }
        let mut control = self.inner.control.clone();
        tokio::time::timeout(self.inner.stall, control.open_stream(peer, protocol))
            .await
            .map_err(|_| TransferError::Stall(self.inner.stall))?
            .map_err(|e| TransferError::Io(e.to_string()))
    }

    fn mark_bad(&self, peer: PeerId, why: &str) {
        tracing::warn!(%peer, why, "dropping relay");
        lock(&self.inner.bad).insert(peer);
        lock(&self.inner.sessions).retain(|(p, _), _| *p != peer);
    }

    /// Waits, at most `within`, until relays have answered every receipt this fetcher sent, so that stopping now
    /// leaves no paid byte unrecorded.
    pub async fn finish(&self, within: Duration) {
        let sessions: Vec<SharedSession> = lock(&self.inner.sessions).values().cloned().collect();
        let deadline = tokio::time::Instant::now() + within;
        for s in sessions {
            if tokio::time::timeout_at(deadline, async { s.lock().await.all_answered().await }).await.is_err() {
                tracing::warn!("a relay did not answer our last receipts in time");
                return;
            }
        }
    }

    /// The blob, from the store or fetched from relays, verified and then stored.
    pub async fn blob(&self, cid: &ContentId, segment: &Segment) -> Result<Blob, FetchError> {
        if let Some(b) = self.stored(segment).await? {
            return Ok(b);
        }
        let gate = lock(&self.inner.blob_locks).entry(segment.hash).or_default().clone();
        let _guard = gate.lock().await;
        if let Some(b) = self.stored(segment).await? {
            return Ok(b);
        }
        let fetched: Result<Blob, FetchError> = async {
            // Off the async workers: it hashes and writes the whole blob, while the session goes on to the next one.
            let store = self.inner.store.clone();
            let (data, outboard) = self.fetch_with_outboard(cid, segment).await?;
            let outboard = outboard.map(|o| (segment.hash, o));
            Ok(tokio::task::spawn_blocking(move || store.put_fetched(data, outboard)).await??)
        }
        .await;
        // Only now: a caller that came meanwhile would not find it stored yet, and would fetch and pay again.
        lock(&self.inner.blob_locks).remove(&segment.hash);
        let blob = fetched?;
        debug_assert_eq!(*blob.outboard.root.as_bytes(), segment.hash);
        Ok(blob)
    }

    /// The blob from the store: from memory if it is there, else read off the async workers (a segment can be
    /// tens of megabytes).
    async fn stored(&self, segment: &Segment) -> Result<Option<Blob>, FetchError> {
        if let Some(b) = self.inner.store.blob_in_memory(&segment.hash) {
            return Ok(Some(b));
        }
        let store = self.inner.store.clone();
        let hash = segment.hash;
        Ok(tokio::task::spawn_blocking(move || store.blob(&hash)).await??)
    }

    /// The blob's verified bytes, paid for but not stored: [`Fetcher::blob`] stores them, and the transport
    /// benchmark (`examples/viewers_bench.rs`) drops them.
    pub async fn fetch(&self, cid: &ContentId, segment: &Segment) -> Result<Bytes, FetchError> {
        Ok(self.fetch_with_outboard(cid, segment).await?.0)
    }

    /// [`Fetcher::fetch`], with the blob's outboard when one transfer brought (and checked) all of it.
    async fn fetch_with_outboard(
        &self,
        cid: &ContentId,
        segment: &Segment,
    ) -> Result<(Bytes, Option<Vec<u8>>), FetchError> {
        let mut data = blob_buffer(segment.size as usize);
        let mut last = None;
        for round in 0..2 {
            let candidates = self.candidates(cid, round > 0).await;
            if candidates.is_empty() && last.is_none() {
                return Err(FetchError::NoRelay(hex::encode(cid)));
            }
            for peer in candidates {
                match self.transfer(peer, cid, segment, &mut data).await {
                    Ok(outboard) => return Ok((Bytes::from(data), outboard)),
                    Err(e) => {
                        tracing::warn!(%peer, blob = %hex::encode(&segment.hash[..8]), verified = data.len(), error = %e, "transfer failed; trying the next relay");
                        if e.disqualifies() {
                            self.mark_bad(peer, &e.to_string());
                        } else {
                            lock(&self.inner.sessions).remove(&(peer, *cid));
                        }
                        last = Some(e.to_string());
                    }
                }
            }
        }
        Err(FetchError::AllFailed { blob: hex::encode(segment.hash), last: last.unwrap_or_else(|| "no relay".into()) })
    }

    async fn session(&self, peer: PeerId, cid: &ContentId) -> Result<SharedSession, TransferError> {
        if let Some(s) = lock(&self.inner.sessions).get(&(peer, *cid)) {
            return Ok(s.clone());
        }
        let gate = lock(&self.inner.opening).entry((peer, *cid)).or_default().clone();
        let _opening = gate.lock().await;
        // Another transfer may have opened it, or dropped the relay, while this one waited.
        if let Some(s) = lock(&self.inner.sessions).get(&(peer, *cid)) {
            return Ok(s.clone());
        }
        if lock(&self.inner.bad).contains(&peer) {
            return Err(TransferError::Io("relay was dropped".into()));
        }
        let mut attempt = 0;
        let s = loop {
            let stream = self.open(peer, SESSION_PROTOCOL).await?;
            let opened = PaySession::open(
                stream,
                peer,
                &self.inner.identity,
                *cid,
                self.inner.domain,
                self.inner.max_price_per_mib,
                self.inner.ledger.clone(),
            )
            .await;
            match opened {
                Err(SessionError::Stream(e)) if dropped_again(&mut attempt, &e).await => {}
                other => break other?,
            }
        };
        if let Some(funding) = &self.inner.funding {
            // The chain does not hold receipts to the registered price, so the viewer does: a relay is paid what
            // it registered, or not at all.
            let quoted = s.price_per_mib();
            match funding.registered_price(s.relay()).await {
                Ok(Some(p)) if p == quoted => {}
                Ok(registered) => {
                    let registered = registered.map_or("it is not a registered operator on chain".into(), |p| {
                        format!("it registered {p} on chain")
                    });
                    let e = TransferError::Quote { quoted, registered };
                    self.mark_bad(peer, &e.to_string());
                    return Err(e);
                }
                // Down chains do not stop playback: the quote is still within --max-price.
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot check the relay's price on chain; taking its quote")
                }
            }
            // A chain that cannot be reached (or a failed reservation) is not fatal: the relay decides whether
            // the lane it saw last covers us, and refuses with NoEscrow if not.
            if let Err(e) = funding.ensure(s.relay()).await {
                tracing::warn!(%peer, error = %e, "cannot make sure a lane to this relay is funded");
            }
        }
        let s = Arc::new(tokio::sync::Mutex::new(s));
        lock(&self.inner.sessions).insert((peer, *cid), s.clone());
        Ok(s)
    }

    /// Fetches the rest of `segment` (after the groups already in `data`) from one relay, paying as it goes.
    /// Returns the blob's outboard if the transfer started at its first group.
    async fn transfer(
        &self,
        peer: PeerId,
        cid: &ContentId,
        segment: &Segment,
        data: &mut Vec<u8>,
    ) -> Result<Option<Vec<u8>>, TransferError> {
        let session = self.session(peer, cid).await?;
        let mut session = session.lock().await;
        // Every group verified but the transfer failed (its last receipt, say): fetch the last group again.
        let start_group = (data.len() as u64).min(segment.size.saturating_sub(1)) / GROUP_BYTES;
        data.truncate((start_group * GROUP_BYTES) as usize);
        let mut topped_up = false;
        let stream = loop {
            let req = ChunkRequest { claim: session.claim(), blob: segment.hash, size: segment.size, start_group };
            let (stream, reply) = self.ask(peer, CHUNK_PROTOCOL, &req, MAX_CONTROL_FRAME, self.inner.stall).await?;
            match reply {
                ChunkReply::Sending => break stream,
                // The lane ran low: top it up (unless it was funded meanwhile) and ask once more, after the relay
                // reads lanes that did not cover a request again.
                ChunkReply::Refused { code: Code::NoEscrow, reason } if !topped_up => {
                    let Some(funding) = &self.inner.funding else {
                        return Err(TransferError::Refused(Code::NoEscrow, reason));
                    };
                    funding.ensure(session.relay()).await.map_err(|e| TransferError::Lane(e.to_string()))?;
                    tokio::time::sleep(LANE_RECHECK).await;
                    topped_up = true;
                }
                ChunkReply::Refused { code, reason } => return Err(TransferError::Refused(code, reason)),
            }
        };
        let tree = BaoTree::new(segment.size, BLOCK_SIZE);
        // From the first group on, the stream brings every hash pair of the blob, each checked before the decoder
        // hands it out: kept, they are its outboard, and storing the blob need not hash it again.
        let mut outboard = (start_group == 0).then(|| PreOrderMemOutboard {
            root: blake3::Hash::from(segment.hash),
            tree,
            data: vec![0; tree.outboard_size() as usize],
        });
        let ranges = ChunkRanges::from(ChunkNum(start_group * (GROUP_BYTES / 1024))..);
        let mut decoder =
            ResponseDecoder::new(blake3::Hash::from(segment.hash), ranges, tree, StreamReader::new(stream));
        let result = loop {
            let next = match tokio::time::timeout(self.inner.stall, decoder.next()).await {
                Ok(n) => n,
                Err(_) => break Err(TransferError::Stall(self.inner.stall)),
            };
            match next {
                ResponseDecoderNext::More((d, item)) => {
                    decoder = d;
                    match item {
                        Ok(BaoContentItem::Parent(p)) => {
                            if outboard.as_mut().is_some_and(|o| o.save(p.node, &p.pair).is_err()) {
                                outboard = None;
                            }
                        }
                        Ok(BaoContentItem::Leaf(leaf)) => {
                            if leaf.offset != data.len() as u64 {
                                break Err(TransferError::Io(format!(
                                    "leaf at {} but expected {}",
                                    leaf.offset,
                                    data.len()
                                )));
                            }
                            data.extend_from_slice(&leaf.data);
                            session.verified(&leaf.data).await?;
                        }
                        Err(bao_tree::io::DecodeError::LeafHashMismatch(c)) => {
                            break Err(TransferError::Corrupt(format!("16 KiB group {}", c.0 / 16)))
                        }
                        Err(bao_tree::io::DecodeError::ParentHashMismatch(n)) => {
                            break Err(TransferError::Corrupt(format!("hash pair {n:?}")))
                        }
                        Err(e) => break Err(TransferError::Io(e.to_string())),
                    }
                }
                ResponseDecoderNext::Done(_) => break Ok(()),
            }
        };
        match result {
            Ok(()) if data.len() as u64 == segment.size => {
                session.end_transfer().await?;
                Ok(outboard.map(|o| o.data))
            }
            Ok(()) => {
                session.abandon_chunk();
                Err(TransferError::Io(format!("stream ended after {} of {} bytes", data.len(), segment.size)))
            }
            Err(e) => {
                session.abandon_chunk();
                Err(e)
            }
        }
    }
}

/// How long a viewer waits for a manifest: a relay that lacks it looks for it in the DHT (10 s at most) and fetches
/// it from another relay before it replies.
const MANIFEST_WAIT: Duration = Duration::from_secs(30);

/// Times a request is sent again when its stream fails before the relay's first reply.
const DROPPED_RETRIES: u32 = 4;

/// Whether to ask again, after a pause, when a stream failed before the relay replied. A relay under load drops
/// inbound streams: libp2p-stream hands them to the relay through a channel with no buffer, and drops one that
/// arrives before the relay took the previous one, so a burst of viewers sees resets. Nothing was exchanged yet,
/// so asking again is safe.
async fn dropped_again(attempt: &mut u32, error: &impl std::fmt::Display) -> bool {
    if *attempt >= DROPPED_RETRIES {
        return false;
    }
    *attempt += 1;
    tracing::debug!(attempt = *attempt, %error, "stream failed before the relay replied; asking again");
    // Up to as much again at random, so a burst of viewers does not come back at the same moment.
    let pause = 25 << *attempt;
    tokio::time::sleep(Duration::from_millis(pause + rand::random::<u64>() % pause)).await;
    true
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `transfer` relies on to skip hashing a fetched blob again: the pairs of a response from the first group,
    /// saved as the decoder hands them out, are the blob's whole outboard.
    #[tokio::test]
    async fn the_pairs_of_a_whole_transfer_are_the_blobs_outboard() {
        for len in [0, 1, 16 << 10, (16 << 10) + 1, 3 << 20, (5 << 20) + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let want = PreOrderMemOutboard::create(&data, BLOCK_SIZE);
            let ranges = ChunkRanges::from(ChunkNum(0)..);
            let mut encoded = vec![];
            bao_tree::io::sync::encode_ranges_validated(&data[..], &want, &ranges, &mut encoded).unwrap();
            let tree = want.tree;
            let mut got = PreOrderMemOutboard { root: want.root, tree, data: vec![0; tree.outboard_size() as usize] };
            let reader = StreamReader::new(futures::io::Cursor::new(encoded));
            let mut decoder = ResponseDecoder::new(want.root, ranges, tree, reader);
            while let ResponseDecoderNext::More((d, item)) = decoder.next().await {
                decoder = d;
                if let BaoContentItem::Parent(p) = item.unwrap() {
                    got.save(p.node, &p.pair).unwrap();
                }
            }
            assert_eq!(got.data, want.data, "{len} bytes");
        }
    }
}
