//! The paying side of a session: it opens the session with a relay, continues the claim from the latest receipt
//! the relay holds (one this viewer signed, or none), signs a cumulative receipt after every verified chunk, keeps a copy (written lazily: see `ledger`), and sends it to the relay. Acknowledgements arrive
//! on the same stream and are recorded in the ledger.

use ferry_primitives::{amount_for, claim_id, AccountId, Balance, ChunkChain, ClaimId, ContentId, Domain, Receipt};
use futures::io::{ReadHalf, WriteHalf};
use futures::AsyncReadExt;
use libp2p::{PeerId, Stream};

use crate::identity::Identity;
use crate::money::ledger::Ledger;
use crate::p2p::frame::{read_frame, write_frame, FrameError};
use crate::p2p::protocol::*;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("relay refused the session: {0} ({1})")]
    Refused(Code, String),
    #[error("relay asks {asked} per MiB, above our limit of {limit}")]
    TooExpensive { asked: Balance, limit: Balance },
    #[error("relay's answer does not continue our claim: {0}; not paying this relay")]
    BadClaim(String),
    #[error("session stream failed: {0}")]
    Stream(String),
    #[error("cannot keep a copy of our receipt: {0}")]
    Ledger(#[from] crate::money::ledger::LedgerError),
}

pub struct PaySession {
    claim: ClaimId,
    peer: PeerId,
    relay: AccountId,
    price_per_mib: Balance,
    secret: [u8; 32],
    viewer: AccountId,
    content: ContentId,
    domain: Domain,
    seq: u64,
    bytes: u64,
    tip: Balance,
    chain: ChunkChain,
    /// The claim's totals when this session opened: its receipts add this session's bytes at its price.
    base_bytes: u64,
    base_amount: Balance,
    chunk: blake3::Hasher,
    chunk_len: u64,
    writer: WriteHalf<Stream>,
    ledger: Ledger,
    /// The highest seq the relay answered.
    answered: tokio::sync::watch::Receiver<u64>,
}

impl PaySession {
    pub async fn open(
        mut stream: Stream,
        peer: PeerId,
        identity: &Identity,
        content: ContentId,
        domain: Domain,
        max_price_per_mib: Balance,
        ledger: Ledger,
    ) -> Result<PaySession, SessionError> {
        let open = OpenSession::signed(identity.secret(), content, domain, &peer, &identity.peer_id);
        write_frame(&mut stream, &open).await.map_err(|e| SessionError::Stream(e.to_string()))?;
        let reply: SessionReply =
            read_frame(&mut stream, MAX_CONTROL_FRAME).await.map_err(|e| SessionError::Stream(e.to_string()))?;
        let (claim, relay, price_per_mib, last) = match reply {
            SessionReply::Opened { claim, relay, price_per_mib, last, .. } => (claim, relay, price_per_mib, last),
            SessionReply::Refused { code, reason } => return Err(SessionError::Refused(code, reason)),
        };
        if price_per_mib > max_price_per_mib {
            return Err(SessionError::TooExpensive { asked: price_per_mib, limit: max_price_per_mib });
        }
        let viewer = identity.account;
        if claim != claim_id(&relay, &viewer, &content) {
            return Err(SessionError::BadClaim(
                "the claim id is not the one the relay, viewer and content make".into(),
            ));
        }
        // Only a receipt this viewer signed for this claim: so whatever the relay sends, the viewer never owes
        // more than the most it signed plus what it verifies from now on.
        let last = match last {
            Some(l) => {
                let r = &l.receipt;
                if (r.claim, r.relay, r.viewer, r.content, r.domain) != (claim, relay, viewer, content, domain) {
                    return Err(SessionError::BadClaim("the latest receipt it holds is for another claim".into()));
                }
                l.verify().map_err(|e| SessionError::BadClaim(format!("the latest receipt it holds: {e}")))?;
                Some(l.receipt)
            }
            None => None,
        };
        let seq = last.as_ref().map_or(0, |r| r.seq);
        tracing::info!(%peer, claim = %hex::encode(claim), price_per_mib, from_seq = seq, "session open");
        let (reader, writer) = stream.split();
        let (answer, answered) = tokio::sync::watch::channel(seq);
        tokio::spawn(read_acks(reader, peer, claim, ledger.clone(), answer));
        Ok(PaySession {
            claim,
            peer,
            relay,
            price_per_mib,
            secret: *identity.secret(),
            viewer,
            content,
            domain,
            seq,
            bytes: last.as_ref().map_or(0, |r| r.bytes),
            tip: last.as_ref().map_or(0, |r| r.tip),
            chain: ChunkChain(last.as_ref().map_or([0; 32], |r| r.chunk_chain)),
            base_bytes: last.as_ref().map_or(0, |r| r.bytes),
            base_amount: last.as_ref().map_or(0, |r| r.amount),
            chunk: blake3::Hasher::new(),
            chunk_len: 0,
            writer,
            ledger,
            answered,
        })
    }

    /// Waits until the relay has answered (acknowledged or rejected) every receipt sent so far, or the session
    /// stream ended. A viewer that stops waits for this, or the relay may never read its last receipts.
    pub async fn all_answered(&mut self) {
        let sent = self.seq;
        let _ = self.answered.wait_for(|seq| *seq >= sent).await;
    }

    /// The claim this session continues; chunk requests name it.
    pub fn claim(&self) -> ClaimId {
        self.claim
    }

    /// The price per MiB the relay quoted when the session opened.
    pub fn price_per_mib(&self) -> Balance {
        self.price_per_mib
    }

    /// The relay's account, as it quoted it when the session opened.
    pub fn relay(&self) -> AccountId {
        self.relay
    }

    /// Counts one verified group; pays when it completes a chunk.
    pub async fn verified(&mut self, group: &[u8]) -> Result<(), SessionError> {
        self.chunk.update(group);
        self.chunk_len += group.len() as u64;
        if self.chunk_len >= CHUNK_BYTES {
            self.pay_chunk().await?;
        }
        Ok(())
    }

    /// The transfer ended with every byte verified: pay for the last, partial chunk.
    pub async fn end_transfer(&mut self) -> Result<(), SessionError> {
        if self.chunk_len > 0 {
            self.pay_chunk().await?;
        }
        Ok(())
    }

    /// The transfer broke mid-chunk: the relay is not paid for an incomplete chunk.
    pub fn abandon_chunk(&mut self) {
        self.chunk.reset();
        self.chunk_len = 0;
    }

    async fn pay_chunk(&mut self) -> Result<(), SessionError> {
        self.chain.extend_hash(self.chunk.finalize().as_bytes());
        self.bytes += self.chunk_len;
        self.seq += 1;
        self.chunk.reset();
        self.chunk_len = 0;
        let receipt = Receipt {
            domain: self.domain,
            claim: self.claim,
            relay: self.relay,
            viewer: self.viewer,
            content: self.content,
            seq: self.seq,
            bytes: self.bytes,
            amount: self.base_amount + amount_for(self.bytes - self.base_bytes, self.price_per_mib),
            chunk_chain: self.chain.0,
            tip: self.tip,
        }
        .sign(&self.secret);
        self.ledger.record_own(receipt.clone()).await?;
        write_frame(&mut self.writer, &SessionMessage::Receipt(receipt))
            .await
            .map_err(|e| SessionError::Stream(e.to_string()))?;
        Ok(())
    }
}

async fn read_acks(
    mut reader: ReadHalf<Stream>,
    peer: PeerId,
    claim: ClaimId,
    ledger: Ledger,
    answered: tokio::sync::watch::Sender<u64>,
) {
    loop {
        match read_frame::<_, ReceiptReply>(&mut reader, MAX_CONTROL_FRAME).await {
            Ok(ReceiptReply::Ack { seq }) => {
                if ledger.mark_acked(claim, seq).await.is_err() {
                    return;
                }
                answered.send_modify(|s| *s = (*s).max(seq));
            }
            Ok(ReceiptReply::Rejected { seq, code, reason }) => {
                tracing::warn!(%peer, seq, %code, %reason, "relay rejected our receipt");
                answered.send_modify(|s| *s = (*s).max(seq));
            }
            Err(FrameError::Closed) => return,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "session stream ended");
                return;
            }
        }
    }
}

impl Drop for PaySession {
    fn drop(&mut self) {
        tracing::debug!(peer = %self.peer, claim = %hex::encode(self.claim), bytes = self.bytes, "session closed");
    }
}
