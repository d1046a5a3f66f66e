//! The relay's settlement worker: the latest receipt of every session with something owed goes on chain in
//! batches, and only a finalized block marks them settled in the ledger.
//!
//! Nothing here can pay twice: the pallet pays each session the delta over what it already paid, and a receipt
//! it has seen is a no-op. So after a crash (between finality and the ledger write) or a timeout, the worker just
//! submits again. While the chain is down, or its pool turns the transaction away, it retries with backoff; the
//! ledger keeps everything. When the chain runs a batch and refuses it, whatever the error, the batch is halved
//! until the receipt at fault is found (a few transactions, logarithmic in the batch); that receipt is parked
//! with the decoded error and the rest is settled, so no receipt ever blocks another.
//!
//! What the ledger records as settled is what the chain paid, from its `Settled` events (or, for a receipt the
//! chain had already settled, from its session record), never the receipt's own claim.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_primitives::{SessionId, SignedReceipt};

use crate::api::metrics::Metrics;
use crate::chain::{ChainError, Link};
use crate::money::earnings::Earnings;
use crate::money::ledger::{Ledger, LedgerError, Refusal, Settled};
use crate::relay::lanes::LaneBook;

/// Longest wait between attempts while the chain is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum SettleError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub struct Settler {
    pub ledger: Ledger,
    pub link: Link,
    pub metrics: Metrics,
    /// Where `earnings.json` is written.
    pub home: PathBuf,
    /// Pause between rounds when nothing is left to settle.
    pub every: Duration,
    pub max_batch: usize,
    /// The relay's lane book, told what each settlement paid.
    book: Option<Arc<LaneBook>>,
    in_flight: Arc<Mutex<HashSet<SessionId>>>,
}

impl Settler {
    pub fn new(
        ledger: Ledger,
        link: Link,
        metrics: Metrics,
        home: PathBuf,
        every: Duration,
        max_batch: usize,
        book: Option<Arc<LaneBook>>,
    ) -> Self {
        Settler { ledger, link, metrics, home, every, max_batch: max_batch.max(1), book, in_flight: Default::default() }
    }

    /// Settles until the task is dropped. Dropping it mid-round is safe: nothing is marked settled before
    /// finality, and submitting again pays nothing twice.
    pub async fn run(self) {
        let mut backoff = Duration::from_secs(1);
        let mut down_since: Option<std::time::Instant> = None;
        loop {
            let pause = match self.round().await {
                Ok(n) => {
                    if let Some(t) = down_since.take() {
                        tracing::info!(after = ?t.elapsed(), "chain reachable again; settlement resumed");
                    }
                    self.metrics.chain_reachable.set(1);
                    backoff = Duration::from_secs(1);
                    if n >= self.max_batch {
                        Duration::ZERO
                    } else {
                        self.every
                    }
                }
                Err(SettleError::Chain(e)) if e.is_unreachable() => {
                    self.link.reset().await;
                    self.metrics.chain_reachable.set(0);
                    if down_since.is_none() {
                        down_since = Some(std::time::Instant::now());
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "chain unreachable; receipts stay in the ledger");
                    self.metrics.reject(&self.metrics.settlement_errors, "unreachable");
                    let b = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    b
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "settlement failed");
                    self.metrics.reject(&self.metrics.settlement_errors, "refused");
                    let b = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    b
                }
            };
            self.snapshot().await;
            tokio::time::sleep(pause).await;
        }
    }

    /// One batch of pending receipts; returns how many left the pending set.
    async fn round(&self) -> Result<usize, SettleError> {
        let batch = self.ledger.pending(self.max_batch).await?;
        if batch.is_empty() {
            // Still ask the chain something, so an outage shows even when there is nothing to settle.
            self.link.get().await?.finalized_number().await?;
            return Ok(0);
        }
        let n = batch.len();
        let mut work = vec![batch];
        while let Some(batch) = work.pop() {
            self.set_in_flight(&batch);
            self.snapshot().await;
            let result = self.submit(&batch).await;
            self.set_in_flight(&[]);
            match result {
                Ok(()) => {}
                Err(SettleError::Chain(e)) if e.is_refusal() && batch.len() > 1 => {
                    tracing::warn!(error = %e, size = batch.len(), "the chain refused a batch; splitting it to find the receipt");
                    let mut left = batch;
                    let right = left.split_off(left.len() / 2);
                    work.push(right);
                    work.push(left);
                }
                Err(SettleError::Chain(e)) if e.is_refusal() => {
                    let r = &batch[0].receipt;
                    tracing::error!(
                        session = %hex::encode(r.session),
                        seq = r.seq,
                        viewer = %crate::identity::account_hex(&r.viewer),
                        error = %e,
                        "the chain refused a receipt; it will not be submitted again"
                    );
                    self.metrics.receipts_refused_on_chain.inc();
                    self.ledger.mark_refused(r.session, Refusal { seq: r.seq, error: e.to_string() }).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    async fn submit(&self, batch: &[SignedReceipt]) -> Result<(), SettleError> {
        let chain = self.link.get().await?;
        let relay = chain.account().0;
        let (at, payouts) = chain.settle(batch.to_vec()).await?;
        let mut settled = Vec::with_capacity(batch.len());
        for s in batch {
            let r = &s.receipt;
            let payout = payouts.iter().find(|p| p.session == r.session && p.viewer == r.viewer && p.seq == r.seq);
            let (total, operator_paid) = match payout {
                Some(p) => {
                    if let Some(book) = &self.book {
                        book.settled(&r.viewer, p.paid + p.tip_paid);
                    }
                    if p.paid < p.due || p.tip_paid < p.tip_due {
                        tracing::error!(
                            session = %hex::encode(r.session),
                            due = %(p.due + p.tip_due),
                            paid = %(p.paid + p.tip_paid),
                            "the viewer's lane paid less than the receipt claims"
                        );
                    }
                    (p.total_paid(r), p.operator_paid)
                }
                // Already settled before (a resubmission after a crash or a timeout): the chain's record says
                // what it paid.
                None => (chain.session_paid(relay, r.viewer, r.session).await?.unwrap_or(0), 0),
            };
            settled.push(Settled { session: r.session, seq: r.seq, amount: total, operator_paid });
        }
        let operator: u128 = payouts.iter().map(|p| p.operator_paid).sum();
        self.ledger.mark_settled(settled, at.block_number, at.block_hash).await?;
        self.metrics.receipts_settled.inc_by(batch.len() as u64);
        self.metrics.last_settled_block.set(at.block_number as i64);
        tracing::info!(
            receipts = batch.len(),
            paid = payouts.len(),
            operator_paid = %operator,
            block = at.block_number,
            hash = %format!("0x{}", hex::encode(at.block_hash)),
            "settled on chain (finalized)"
        );
        Ok(())
    }

    fn set_in_flight(&self, batch: &[SignedReceipt]) {
        let mut f = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        f.clear();
        f.extend(batch.iter().map(|s| s.receipt.session));
    }

    /// Writes `earnings.json` for `ferry earnings`; a failure is logged, never fatal.
    async fn snapshot(&self) {
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Earnings::snapshot(&self.ledger, &in_flight, &self.home).await;
    }
}
