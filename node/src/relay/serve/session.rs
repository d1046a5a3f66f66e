//! Sessions: one per claim (viewer, relay, content) at a time. A session starts from the latest receipt of its claim
//! the relay holds, in its ledger or on chain; opening another ends the one before. Its receipts are checked here
//! (signature, domain, parties, that they continue the claim at the quoted price for chunks this relay served, and
//! with a chain that the viewer's lane covers them) and then handed to the ledger, which checks them against the
//! previous receipt and commits them before the session's credit grows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_primitives::{
    amount_for, claim_id, AccountId, Balance, ChunkChain, ClaimId, ContentId, SignedManifest, SignedReceipt,
};
use libp2p::{PeerId, Stream};
use tokio::sync::watch;

use super::{Relay, ServeError, SessionSlot};
use crate::money::lanes::SessionCredit;
use crate::money::ledger::{LedgerError, Rejection};
use crate::p2p::frame::{read_frame, write_frame, FrameError};
use crate::p2p::protocol::*;

/// One open session: what was served, and what has been paid.
pub(super) struct Session {
    pub(super) peer: PeerId,
    claim: ClaimId,
    /// The claim's latest receipt when the session opened (zero if none): this session's receipts continue it,
    /// and everything below is counted from it.
    base: Base,
    /// Quoted when the session opened; receipts are checked against it.
    pub(super) price_per_mib: Balance,
    pub(super) viewer: AccountId,
    pub(super) content: ContentId,
    pub(super) manifest: SignedManifest,
    pub(super) served: Mutex<Served>,
    /// Bytes covered by the latest committed receipt.
    pub(super) paid: watch::Sender<u64>,
    /// One transfer at a time, so chunk boundaries are unambiguous.
    pub(super) transfer: tokio::sync::Mutex<()>,
    /// With a chain: the session's share of its viewer's credit and lane.
    pub(super) credit: Option<SessionCredit>,
    /// When a receipt or a chunk request last came: an idle session ends after [`SESSION_IDLE`].
    active: Mutex<Instant>,
    /// Ends the session: another session of the same claim is opening.
    stop: tokio::sync::Notify,
    /// Set once the session has ended and its receipts are committed.
    ended: watch::Sender<bool>,
}

/// Where a session starts its claim from.
#[derive(Default)]
struct Base {
    seq: u64,
    bytes: u64,
    amount: Balance,
    tip: Balance,
    chunk_chain: [u8; 32],
}

impl Base {
    fn of(latest: Option<&SignedReceipt>) -> Base {
        latest.map_or_else(Base::default, |l| {
            let r = &l.receipt;
            Base { seq: r.seq, bytes: r.bytes, amount: r.amount, tip: r.tip, chunk_chain: r.chunk_chain }
        })
    }
}

/// How long a session opening waits for the claim's previous session to end.
const TAKEOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Session {
    pub(super) fn touch(&self) {
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> std::time::Duration {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

/// A session with no receipt, no chunk request and no transfer running for this long is ended.
pub const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Default)]
pub(super) struct Served {
    /// Bytes let out in this session.
    pub(super) bytes: u64,
    pub(super) chain: ChunkChain,
    /// (session bytes, chunk chain) at every chunk boundary not yet paid for.
    pub(super) boundaries: VecDeque<(u64, [u8; 32])>,
}

pub(super) const MAX_BOUNDARIES: usize = 4096;

impl Relay {
    pub(super) async fn serve_session(&self, peer: PeerId, stream: &mut Stream) -> Result<(), ServeError> {
        let open: OpenSession = match read_frame(stream, MAX_CONTROL_FRAME).await {
            Ok(o) => o,
            Err(e) => {
                return self.refuse_bad_frame(stream, e, |code, reason| SessionReply::Refused { code, reason }).await
            }
        };
        let refusal = |code: Code, reason: String| SessionReply::Refused { code, reason };
        let manifest = match self.admit_session(peer, &open).await {
            Ok(manifest) => manifest,
            Err((code, reason)) => {
                write_frame(stream, &refusal(code, reason)).await?;
                return Ok(());
            }
        };
        let Some(_slot) = SessionSlot::take(self, peer) else {
            write_frame(stream, &refusal(Code::Busy, "too many sessions from this peer".into())).await?;
            return Ok(());
        };
        let claim = claim_id(&self.account, &open.viewer, &open.content);
        if let Err(reason) = self.end_previous(claim).await {
            write_frame(stream, &refusal(Code::Busy, reason.into())).await?;
            return Ok(());
        }
        let last = match self.claim_latest(claim, open.viewer).await {
            Ok(last) => self.faults.offered_last(last, claim, self.account, open.viewer, open.content, self.domain),
            Err(e) => {
                let (code, reason) = ledger_down(e);
                write_frame(stream, &refusal(code, reason)).await?;
                return Ok(());
            }
        };
        let price = self.price();
        let base = Base::of(last.as_ref());
        let session = Arc::new(Session {
            peer,
            claim,
            price_per_mib: price,
            viewer: open.viewer,
            content: open.content,
            manifest,
            served: Mutex::new(Served { chain: ChunkChain(base.chunk_chain), ..Served::default() }),
            base,
            paid: watch::channel(0).0,
            transfer: tokio::sync::Mutex::new(()),
            credit: self.money.as_ref().map(|m| SessionCredit::new(m.book.clone(), open.viewer, price)),
            active: Mutex::new(Instant::now()),
            stop: tokio::sync::Notify::new(),
            ended: watch::channel(false).0,
        });
        let taken = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let taken = sessions.get(&claim).is_some_and(|s| !*s.ended.borrow());
            if !taken {
                sessions.insert(claim, session.clone());
            }
            taken
        };
        if taken {
            write_frame(stream, &refusal(Code::Busy, "another session of this claim opened meanwhile".into())).await?;
            return Ok(());
        }
        self.metrics.sessions_active.inc();
        let reply = SessionReply::Opened {
            claim,
            relay: self.account,
            price_per_mib: session.price_per_mib,
            credit_window: self.credit_window,
            last: last.map(Box::new),
        };
        let result = match write_frame(stream, &reply).await {
            Ok(()) => self.receipts_loop(&session, stream).await,
            Err(e) => Err(e.into()),
        };
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if sessions.get(&claim).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                sessions.remove(&claim);
            }
        }
        // A transfer still running stops at its next leaf: nothing more is covered.
        if let Some(credit) = &session.credit {
            credit.end();
        }
        self.metrics.sessions_active.dec();
        session.ended.send_replace(true);
        result
    }

    /// Ends the claim's open session, if any, and waits until its receipts are committed, so the new session
    /// starts from its last one.
    async fn end_previous(&self, claim: ClaimId) -> Result<(), &'static str> {
        let Some(previous) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&claim).cloned() else {
            return Ok(());
        };
        tracing::info!(peer = %previous.peer, claim = %hex::encode(claim), "a new session of the claim ends the open one");
        previous.stop.notify_one();
        let mut ended = previous.ended.subscribe();
        let in_time = tokio::time::timeout(TAKEOVER_WAIT, ended.wait_for(|e| *e)).await.is_ok();
        match in_time {
            true => Ok(()),
            false => Err("the claim's open session is still ending; try again"),
        }
    }

    /// The latest receipt of the claim: the ledger's, or the chain's where the chain settled a later one (a
    /// ledger lost or restored from an older copy).
    async fn claim_latest(&self, claim: ClaimId, viewer: AccountId) -> Result<Option<SignedReceipt>, LedgerError> {
        let ledger = self.ledger.latest(claim).await?;
        let chain = match &self.money {
            Some(money) => money.settled_claim(self.account, viewer, claim).await,
            None => None,
        };
        if let (Some(c), l) = (&chain, &ledger) {
            if l.as_ref().is_none_or(|l| l.receipt.seq < c.receipt.seq) {
                tracing::warn!(claim = %hex::encode(claim), seq = c.receipt.seq, "the chain settled a later receipt of this claim than the ledger holds; continuing from the chain's");
            }
        }
        Ok([ledger, chain].into_iter().flatten().max_by_key(|l| l.receipt.seq))
    }

    /// Reads receipts and queues each, once checked, for the ledger without waiting for the one before it to reach
    /// the disk; acknowledges them in order as their group commits. So a session's receipts share fsyncs with each
    /// other and with every other session's, and the viewer's credit never waits on one commit at a time.
    async fn receipts_loop(&self, session: &Session, stream: &mut Stream) -> Result<(), ServeError> {
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
                        _ = session.stop.notified() => {
                            tracing::debug!(peer = %session.peer, "session ended by a newer one of its claim");
                            return;
                        }
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
                    Ok(SessionMessage::Receipt(receipt)) => self.check_and_submit(session, receipt).await,
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
                    Verdict::Committing(commit) => {
                        let waited = std::time::Instant::now();
                        let committed = commit.await;
                        self.metrics.ledger_commit_seconds.observe(waited.elapsed().as_secs_f64());
                        match committed {
                            Ok(v) => v.map_err(|r| (r.code, r.reason)),
                            Err(e) => Err(ledger_down(e)),
                        }
                    }
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
    async fn check_and_submit(&self, session: &Session, receipt: SignedReceipt) -> Queued {
        let started = Instant::now();
        // Bytes of this session: what the claim's total grew by since it opened.
        let (seq, bytes) = (receipt.receipt.seq, receipt.receipt.bytes.saturating_sub(session.base.bytes));
        let verdict = match self.check(session, &receipt).await {
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
    async fn check(&self, session: &Session, receipt: &SignedReceipt) -> Result<(), (Code, String)> {
        self.check_parties(session, receipt)?;
        if !self.signatures.valid(receipt).await {
            return Err((Code::BadSignature, ferry_primitives::SignatureError::Invalid.to_string()));
        }
        let (bytes, amount, tip) = self.check_served(session, receipt)?;
        let Some(credit) = &session.credit else { return Ok(()) };
        credit.receipt(bytes, amount, tip).await.map_err(|e| (Code::NoEscrow, e.to_string()))
    }

    /// Before its signature: whether it names this chain, this relay and this session's claim.
    fn check_parties(&self, session: &Session, signed: &SignedReceipt) -> Result<(), (Code, String)> {
        let r = &signed.receipt;
        if r.domain != self.domain {
            return Err((Code::WrongDomain, "receipt is for another chain".into()));
        }
        if r.relay != self.account {
            return Err((Code::WrongRelay, format!("receipt names relay {}", crate::identity::account_hex(&r.relay))));
        }
        if r.claim != session.claim || r.viewer != session.viewer || r.content != session.content {
            return Err((Code::WrongSession, "receipt does not match this session's claim, viewer or content".into()));
        }
        Ok(())
    }

    /// After its signature: whether it continues the claim from the session's start, at the quoted price, for
    /// bytes this relay served and was not paid for. Returns what the session's receipts total: bytes, amount and
    /// tip over the claim's at the session's start.
    fn check_served(
        &self,
        session: &Session,
        signed: &SignedReceipt,
    ) -> Result<(u64, Balance, Balance), (Code, String)> {
        let (r, base) = (&signed.receipt, &session.base);
        if r.seq <= base.seq {
            return Err((
                Code::Replayed,
                format!("seq {} is not above the claim's seq {} at the session's start", r.seq, base.seq),
            ));
        }
        let (Some(bytes), Some(amount), Some(tip)) =
            (r.bytes.checked_sub(base.bytes), r.amount.checked_sub(base.amount), r.tip.checked_sub(base.tip))
        else {
            return Err((Code::NotMonotonic, "a total is below the claim's at the session's start".into()));
        };
        let due = amount_for(bytes, session.price_per_mib);
        if amount != due {
            return Err((
                Code::WrongAmount,
                format!("amount {amount} for {bytes} bytes in this session; the price makes it {due}"),
            ));
        }
        let served = session.served.lock().unwrap_or_else(|p| p.into_inner());
        if !served.boundaries.iter().any(|(b, c)| *b == bytes && *c == r.chunk_chain) {
            let paid = *session.paid.borrow();
            return Err(if bytes <= paid {
                (Code::Replayed, format!("{} bytes are already paid for", r.bytes))
            } else {
                (Code::Unserved, format!("no chunk this relay served ends at {} bytes with that chunk chain", r.bytes))
            });
        }
        Ok((bytes, amount, tip))
    }
}

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
