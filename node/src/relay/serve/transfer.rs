//! Chunk transfers: the bao encoding of a blob, metered against the session's credit and the viewer's lane, one
//! receipt chunk at a time, with the chunk boundaries its receipts must name.

use bao_tree::{ChunkNum, ChunkRanges};
use bytes::Bytes;
use ferry_primitives::{amount_for, Manifest, Segment};
use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream};

use super::session::{Session, MAX_BOUNDARIES};
use super::{Relay, ServeError};
use crate::content::store::Blob;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::money::lanes::NotCovered;
use crate::p2p::frame::{read_frame, write_frame};
use crate::p2p::protocol::*;

impl Relay {
    pub(super) async fn serve_chunk(&self, peer: PeerId, stream: &mut Stream) -> Result<(), ServeError> {
        let req: ChunkRequest = match read_frame(stream, MAX_CONTROL_FRAME).await {
            Ok(r) => r,
            Err(e) => {
                return self.refuse_bad_frame(stream, e, |code, reason| ChunkReply::Refused { code, reason }).await
            }
        };
        let refuse = |code: Code, reason: String| ChunkReply::Refused { code, reason };
        let session = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&req.claim).cloned();
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
pub(super) const READ_AHEADS: usize = 2;

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
        self.metrics.chunks_served.inc();
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
