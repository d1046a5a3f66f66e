//! The relay's settlement worker: the latest receipt of every claim with something owed goes on chain in
//! batches, and only a finalized block marks them settled in the ledger.
//!
//! A batch is sent when it pays: when what it claims is at least `fee_multiple` times what the chain would charge
//! for it ([`Policy`]), or when it holds claims that are due (older than `max_age`) and those alone pay more than
//! the fee. Claims go in the most urgent first: due ones, then the largest, so no viewer can starve a large claim
//! with many small ones. A batch that does not get into a block is sent again with a tip that doubles each time,
//! up to a tenth of what it claims. A viewer whose claim stays unsettled past `2 × max_age` gets nothing more
//! from this relay until it is settled ([`LaneBook::set_overdue`]).
//!
//! Nothing here can pay twice: the pallet pays each claim the delta over what it already paid, and a receipt
//! it has seen is a no-op. So after a crash (between finality and the ledger write) or a timeout, the worker just
//! submits again. While the chain is down, or its pool turns the transaction away, it retries with backoff; the
//! ledger keeps everything. When the chain runs a batch and refuses it, whatever the error, the batch is halved
//! until the receipt at fault is found (a few transactions, logarithmic in the batch); that receipt is parked
//! with the decoded error and the rest is settled, so no receipt ever blocks another.
//!
//! What the ledger records as settled is what the chain paid, from its `Settled` events (or, for a receipt the
//! chain had already settled, from its claim record), never the receipt's own claim.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_primitives::{AccountId, Balance, ClaimId, SignedReceipt};

use futures::future::BoxFuture;

use crate::chain::{ChainError, Inclusion, Lane, Link, Payout, SettledClaim};
use crate::metrics::Metrics;
use crate::money::earnings::Earnings;
use crate::money::lanes::LaneBook;
use crate::money::ledger::{ClaimRecord, Ledger, LedgerError, Refusal, Settled};

/// The chain as the settler uses it: the relay's chain client ([`Link`]), or a model of one in unit tests.
pub trait SettleChain: Send + Sync {
    /// The relay's own account: the one that signs `settle`.
    fn account(&self) -> BoxFuture<'_, Result<AccountId, ChainError>>;
    fn finalized_number(&self) -> BoxFuture<'_, Result<u32, ChainError>>;
    /// What `settle(batch)` would cost in fees, without tip.
    fn settle_fee<'a>(&'a self, batch: &'a [SignedReceipt]) -> BoxFuture<'a, Result<Balance, ChainError>>;
    /// Settles `batch` with `tip`, and waits until its block is finalized.
    fn settle(&self, batch: Vec<SignedReceipt>, tip: Balance) -> BoxFuture<'_, SettleResult>;
    fn claim(
        &self,
        relay: AccountId,
        viewer: AccountId,
        claim: ClaimId,
    ) -> BoxFuture<'_, Result<Option<SettledClaim>, ChainError>>;
    fn lane(&self, viewer: AccountId, relay: AccountId) -> BoxFuture<'_, Result<Lane, ChainError>>;
    /// Drops the connection, so the next call makes a new one.
    fn reset(&self) -> BoxFuture<'_, ()>;
}

/// Where a batch landed and what each of its receipts paid.
pub type SettleResult = Result<(Inclusion, Vec<Payout>), ChainError>;

impl SettleChain for Link {
    fn account(&self) -> BoxFuture<'_, Result<AccountId, ChainError>> {
        Box::pin(async move { Ok(self.get().await?.account().0) })
    }

    fn finalized_number(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
        Box::pin(async move { self.get().await?.finalized_number().await })
    }

    fn settle_fee<'a>(&'a self, batch: &'a [SignedReceipt]) -> BoxFuture<'a, Result<Balance, ChainError>> {
        Box::pin(async move { self.get().await?.settle_fee(batch).await })
    }

    fn settle(&self, batch: Vec<SignedReceipt>, tip: Balance) -> BoxFuture<'_, SettleResult> {
        Box::pin(async move { self.get().await?.settle_tipped(batch, tip).await })
    }

    fn claim(
        &self,
        relay: AccountId,
        viewer: AccountId,
        claim: ClaimId,
    ) -> BoxFuture<'_, Result<Option<SettledClaim>, ChainError>> {
        Box::pin(async move { self.get().await?.claim(relay, viewer, claim).await })
    }

    fn lane(&self, viewer: AccountId, relay: AccountId) -> BoxFuture<'_, Result<Lane, ChainError>> {
        Box::pin(async move { self.get().await?.lane(viewer, relay).await })
    }

    fn reset(&self) -> BoxFuture<'_, ()> {
        Box::pin(Link::reset(self))
    }
}

/// Lanes read at once when checking which short-paid claims can go again.
const LANE_READS: usize = 16;
/// Longest wait between attempts while the chain is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum SettleError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// When a batch is worth sending.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Most receipts per transaction.
    pub max_batch: usize,
    /// A batch is sent once it claims this many times its fee (200: fees at most 0.5% of what it claims).
    pub fee_multiple: u32,
    /// A claim this old is due: it is sent as soon as the due claims of a batch pay more than its fee.
    pub max_age: Duration,
}

/// What one claim (viewer, content) owes and the chain has not paid yet.
#[derive(Debug, Clone)]
pub struct Claim {
    pub receipt: SignedReceipt,
    /// Claimed and not yet paid (bytes and tip).
    pub owed: Balance,
    /// Since the relay first saw it unsettled.
    pub age: Duration,
    /// Its latest receipt was settled short (the lane ran dry): what is owed is the rest.
    pub short: bool,
}

impl Policy {
    fn due(&self, c: &Claim) -> bool {
        c.age >= self.max_age
    }

    /// The most urgent claims first: due ones (oldest first), then the largest. At most `max_batch`.
    pub fn order(&self, mut claims: Vec<Claim>) -> Vec<Claim> {
        claims.sort_by(|a, b| match (self.due(a), self.due(b)) {
            (true, true) => b.age.cmp(&a.age).then(b.owed.cmp(&a.owed)),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => b.owed.cmp(&a.owed),
        });
        claims.truncate(self.max_batch.max(1));
        claims
    }

    /// Whether `batch` is worth `fee`: it claims `fee_multiple` times the fee, or its due claims pay more than it.
    pub fn worth_sending(&self, batch: &[Claim], fee: Balance) -> bool {
        let all: Balance = batch.iter().map(|c| c.owed).fold(0, Balance::saturating_add);
        let due: Balance = batch.iter().filter(|c| self.due(c)).map(|c| c.owed).fold(0, Balance::saturating_add);
        all >= fee.saturating_mul(Balance::from(self.fee_multiple)) || (due > fee && due > 0)
    }

    /// The tip for the `attempt`-th sending of a batch claiming `claimed` at `fee`: none at first, then the fee
    /// doubled each time, never more than a tenth of the claim.
    pub fn tip(&self, attempt: u32, fee: Balance, claimed: Balance) -> Balance {
        if attempt == 0 {
            return 0;
        }
        fee.saturating_mul(1 << attempt.min(20)).min(claimed / 10)
    }
}

pub struct Settler {
    pub ledger: Ledger,
    chain: Box<dyn SettleChain>,
    pub metrics: Metrics,
    /// Where `earnings.json` is written.
    pub home: PathBuf,
    /// Pause between rounds when nothing is left to settle.
    pub every: Duration,
    pub policy: Policy,
    /// The relay's lane book, told what each settlement paid and which viewers are overdue.
    book: Option<Arc<LaneBook>>,
    in_flight: Arc<Mutex<HashSet<ClaimId>>>,
    /// When each claim was first seen with something unsettled, since its last settlement.
    first_seen: Mutex<HashMap<ClaimId, Instant>>,
    /// Sendings of the current batch that did not get into a block.
    attempts: Mutex<u32>,
    started: Instant,
}

impl Settler {
    pub fn new(
        ledger: Ledger,
        chain: Box<dyn SettleChain>,
        metrics: Metrics,
        home: PathBuf,
        every: Duration,
        policy: Policy,
        book: Option<Arc<LaneBook>>,
    ) -> Self {
        Settler {
            ledger,
            chain,
            metrics,
            home,
            every,
            policy,
            book,
            in_flight: Default::default(),
            first_seen: Default::default(),
            attempts: Mutex::new(0),
            started: Instant::now(),
        }
    }

    /// Every unsettled claim with its age. Claims found when the relay starts count as due: nothing says how
    /// long they waited before.
    fn claims(&self, pending: Vec<ClaimRecord>) -> Vec<Claim> {
        let now = Instant::now();
        let mut seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
        let live: HashSet<ClaimId> = pending.iter().map(|r| r.latest.receipt.claim).collect();
        seen.retain(|s, _| live.contains(s));
        pending
            .into_iter()
            .map(|rec| {
                let r = &rec.latest.receipt;
                let since = match seen.get(&r.claim) {
                    Some(&at) => at,
                    None => {
                        let at = if now.duration_since(self.started) < self.every {
                            now.checked_sub(self.policy.max_age).unwrap_or(now)
                        } else {
                            now
                        };
                        seen.insert(r.claim, at);
                        at
                    }
                };
                Claim { owed: rec.owed(), age: now.duration_since(since), short: rec.is_short(), receipt: rec.latest }
            })
            .collect()
    }

    /// Short-paid claims go again only once their lane holds funds: sent while it is dry, they would pay nothing
    /// and cost a fee. Their lanes are read together: one at a time, thousands of them held a round for minutes.
    async fn without_dry_lanes(&self, claims: Vec<Claim>) -> Result<Vec<Claim>, SettleError> {
        use futures::{StreamExt, TryStreamExt};
        let viewers: HashSet<AccountId> = claims.iter().filter(|c| c.short).map(|c| c.receipt.receipt.viewer).collect();
        if viewers.is_empty() {
            return Ok(claims);
        }
        let relay = self.chain.account().await?;
        let funded: HashMap<AccountId, bool> = futures::stream::iter(viewers)
            .map(|viewer| async move { Ok::<_, ChainError>((viewer, self.chain.lane(viewer, relay).await?.funds > 0)) })
            .buffer_unordered(LANE_READS)
            .try_collect()
            .await?;
        Ok(claims
            .into_iter()
            .filter(|c| {
                let back = !c.short || funded.get(&c.receipt.receipt.viewer).copied().unwrap_or(false);
                if back && c.short {
                    tracing::debug!(claim = %hex::encode(c.receipt.receipt.claim), owed = %c.owed, "the lane of a claim settled short holds funds again");
                }
                back
            })
            .collect())
    }

    /// Tells the lane book which viewers are overdue: their claims unsettled for more than twice `max_age` are
    /// worth more than a settlement's `fee` (claims worth less are never settled, and block nobody).
    fn mark_overdue(&self, claims: &[Claim], fee: Balance) {
        let Some(book) = &self.book else { return };
        let mut late: HashMap<AccountId, Balance> = HashMap::new();
        for c in claims {
            let sum = late.entry(c.receipt.receipt.viewer).or_default();
            if c.age >= self.policy.max_age * 2 {
                *sum = sum.saturating_add(c.owed);
            }
        }
        for (viewer, sum) in late {
            book.set_overdue(&viewer, sum > fee);
        }
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
                    if n >= self.policy.max_batch {
                        Duration::ZERO
                    } else {
                        self.every
                    }
                }
                Err(e) => {
                    match &e {
                        SettleError::Chain(c) if c.is_unreachable() => {
                            self.chain.reset().await;
                            self.metrics.chain_reachable.set(0);
                            if down_since.is_none() {
                                down_since = Some(std::time::Instant::now());
                            }
                            tracing::warn!(error = %e, retry_in = ?backoff, "chain unreachable; receipts stay in the ledger");
                            self.metrics.reject(&self.metrics.settlement_errors, "unreachable");
                        }
                        // Not at once: while the pool still holds the last sending, the next is refused as a
                        // duplicate until its tip is higher, and retrying without a pause would loop on that refusal.
                        SettleError::Chain(c) if c.not_included() => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "the settlement did not get into a block; it goes again with a tip");
                            self.metrics.reject(&self.metrics.settlement_errors, "not_included");
                        }
                        _ => {
                            tracing::error!(error = %e, retry_in = ?backoff, "settlement failed");
                            self.metrics.reject(&self.metrics.settlement_errors, "refused");
                        }
                    }
                    let b = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    b
                }
            };
            self.snapshot().await;
            tokio::time::sleep(pause).await;
        }
    }

    /// One batch of pending receipts, if it is worth sending; returns how many left the pending set.
    async fn round(&self) -> Result<usize, SettleError> {
        let all = self.without_dry_lanes(self.claims(self.ledger.pending().await?)).await?;
        let mut claims = self.policy.order(all.clone());
        // Chosen by urgency, sent smallest first: a lane that runs dry then leaves as few claims short as it can.
        claims.sort_by_key(|c| c.owed);
        if claims.is_empty() {
            // Still ask the chain something, so an outage shows even when there is nothing to settle.
            self.chain.finalized_number().await?;
            return Ok(0);
        }
        let batch: Vec<SignedReceipt> = claims.iter().map(|c| c.receipt.clone()).collect();
        let fee = self.chain.settle_fee(&batch).await?;
        self.mark_overdue(&all, fee);
        if !self.policy.worth_sending(&claims, fee) {
            let owed: Balance = claims.iter().map(|c| c.owed).sum();
            tracing::debug!(%owed, %fee, claims = claims.len(), "not settling yet: the claims do not pay for the fee");
            return Ok(0);
        }
        let claimed: Balance = claims.iter().map(|c| c.owed).sum();
        let n = batch.len();
        let mut work = vec![batch];
        while let Some(batch) = work.pop() {
            self.set_in_flight(&batch);
            self.snapshot().await;
            let attempt = *self.attempts.lock().unwrap_or_else(|p| p.into_inner());
            let tip = self.policy.tip(attempt, fee, claimed);
            if tip > 0 {
                tracing::warn!(%tip, attempt, "the last settlement did not get into a block; sending it with a tip");
            }
            let result = self.submit(&batch, tip).await;
            {
                let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
                match &result {
                    Err(SettleError::Chain(e)) if e.not_included() => *a += 1,
                    _ => *a = 0,
                }
            }
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
                        claim = %hex::encode(r.claim),
                        seq = r.seq,
                        viewer = %crate::identity::account_hex(&r.viewer),
                        error = %e,
                        "the chain refused a receipt; it will not be submitted again"
                    );
                    self.metrics.receipts_refused_on_chain.inc();
                    self.ledger.mark_refused(r.claim, Refusal { seq: r.seq, error: e.to_string() }).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    async fn submit(&self, batch: &[SignedReceipt], tip: Balance) -> Result<(), SettleError> {
        let relay = self.chain.account().await?;
        let (at, payouts) = self.chain.settle(batch.to_vec(), tip).await?;
        let mut settled = Vec::with_capacity(batch.len());
        for s in batch {
            let r = &s.receipt;
            let payout = payouts.iter().find(|p| p.claim == r.claim && p.viewer == r.viewer && p.seq == r.seq);
            let (total, operator_paid, operator_total) = match payout {
                Some(p) => {
                    if let Some(book) = &self.book {
                        book.settled(&r.viewer, p.paid + p.tip_paid);
                    }
                    if p.paid < p.due || p.tip_paid < p.tip_due {
                        tracing::error!(
                            claim = %hex::encode(r.claim),
                            due = %(p.due + p.tip_due),
                            paid = %(p.paid + p.tip_paid),
                            "the viewer's lane paid less than the receipt claims"
                        );
                    }
                    (p.total_paid(r), p.operator_paid, None)
                }
                // Already settled before (a resubmission after a crash or a timeout): the chain's record says
                // what it paid, and the operator's part of it.
                None => match self.chain.claim(relay, r.viewer, r.claim).await? {
                    Some(c) => (c.paid, 0, Some(c.operator_paid)),
                    None => (0, 0, None),
                },
            };
            settled.push(Settled { claim: r.claim, seq: r.seq, amount: total, operator_paid, operator_total });
        }
        let operator: u128 = payouts.iter().map(|p| p.operator_paid).sum();
        self.ledger.mark_settled(settled, at.block_number, at.block_hash).await?;
        {
            // What these claims owe from now on is new: its age starts when it is next seen.
            let mut seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
            for s in batch {
                seen.remove(&s.receipt.claim);
            }
        }
        if let Some(book) = &self.book {
            for s in batch {
                book.set_overdue(&s.receipt.viewer, false);
            }
        }
        self.metrics.receipts_settled.inc_by(batch.len() as u64);
        self.metrics.settlement_batches.inc();
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
        f.extend(batch.iter().map(|s| s.receipt.claim));
    }

    /// Writes `earnings.json` for `ferry earnings`; a failure is logged, never fatal.
    async fn snapshot(&self) {
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(e) = Earnings::snapshot(&self.ledger, &in_flight, &self.home).await {
            let m = &self.metrics;
            for (gauge, amount) in [
                (&m.amount_pending, e.pending),
                (&m.amount_in_flight, e.in_flight),
                (&m.amount_settled, e.settled),
                (&m.amount_operator_paid, e.operator_paid),
            ] {
                gauge.set(amount as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_primitives::Receipt;

    fn claim(id: u8, owed: Balance, age_s: u64) -> Claim {
        let receipt = Receipt {
            domain: Default::default(),
            claim: [id; 16],
            relay: [1; 32],
            viewer: [2; 32],
            content: [3; 32],
            seq: 1,
            bytes: 0,
            amount: owed,
            chunk_chain: [0; 32],
            tip: 0,
        };
        Claim { receipt: receipt.sign(&[4; 32]), owed, age: Duration::from_secs(age_s), short: false }
    }

    const POLICY: Policy = Policy { max_batch: 3, fee_multiple: 200, max_age: Duration::from_secs(60) };

    #[test]
    fn due_claims_go_first_then_the_largest_whatever_their_ids() {
        // Many small claims with low ids cannot keep a large one out of the batch.
        let claims = vec![claim(0, 1, 0), claim(1, 1, 0), claim(2, 1, 0), claim(9, 1_000, 0), claim(8, 5, 61)];
        let order: Vec<u8> = POLICY.order(claims).iter().map(|c| c.receipt.receipt.claim[0]).collect();
        assert_eq!(order, [8, 9, 0], "the due one, the largest, then the rest up to the batch size");
    }

    #[test]
    fn a_batch_is_sent_only_when_it_pays() {
        let fee = 100;
        assert!(!POLICY.worth_sending(&[claim(0, 19_999, 0)], fee), "under 200 times the fee");
        assert!(POLICY.worth_sending(&[claim(0, 20_000, 0)], fee));
        assert!(!POLICY.worth_sending(&[claim(0, 100, 61)], fee), "a due claim that pays no more than its fee");
        assert!(POLICY.worth_sending(&[claim(0, 101, 61), claim(1, 5, 0)], fee), "due, and pays more than the fee");
        let every = Policy { fee_multiple: 0, ..POLICY };
        assert!(every.worth_sending(&[claim(0, 0, 0)], fee), "a multiple of 0 settles everything");
    }

    #[test]
    fn the_tip_doubles_and_never_passes_a_tenth_of_the_claim() {
        assert_eq!(POLICY.tip(0, 100, 1_000_000), 0);
        assert_eq!(POLICY.tip(1, 100, 1_000_000), 200);
        assert_eq!(POLICY.tip(3, 100, 1_000_000), 800);
        assert_eq!(POLICY.tip(30, 100, 1_000_000), 100_000);
    }

    /// The settler against a model of the chain, which settles as the pallet does for one relay: each claim is
    /// paid what it claims over what it was paid, out of its viewer's lane, never more than the lane holds.
    mod against_a_model_chain {
        use super::*;
        use crate::chain::ChainError;

        const RELAY: AccountId = [1; 32];
        const FEE: Balance = 1_000;

        #[derive(Default)]
        struct Model {
            lanes: HashMap<AccountId, Balance>,
            /// Per claim: the latest receipt settled and what it was paid in all.
            claims: HashMap<ClaimId, (SignedReceipt, Balance)>,
            /// How many sendings a block stuffer keeps out of blocks.
            kept_out: u32,
            /// A batch holding a receipt of one of these viewers is refused.
            refused: HashSet<AccountId>,
            /// The tip of every sending, in order.
            tips: Vec<Balance>,
        }

        #[derive(Default, Clone)]
        struct ModelChain(Arc<Mutex<Model>>);

        impl ModelChain {
            fn with<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
                f(&mut self.0.lock().unwrap())
            }
        }

        impl SettleChain for ModelChain {
            fn account(&self) -> BoxFuture<'_, Result<AccountId, ChainError>> {
                Box::pin(async { Ok(RELAY) })
            }

            fn finalized_number(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
                Box::pin(async { Ok(1) })
            }

            fn settle_fee<'a>(&'a self, _: &'a [SignedReceipt]) -> BoxFuture<'a, Result<Balance, ChainError>> {
                Box::pin(async { Ok(FEE) })
            }

            fn settle(&self, batch: Vec<SignedReceipt>, tip: Balance) -> BoxFuture<'_, SettleResult> {
                let result = self.with(|m| {
                    m.tips.push(tip);
                    if m.kept_out > 0 {
                        m.kept_out -= 1;
                        return Err(ChainError::Timeout(Duration::from_secs(60)));
                    }
                    if batch.iter().any(|s| m.refused.contains(&s.receipt.viewer)) {
                        return Err(ChainError::Refused { error: "Ferry::BadSignature".into(), docs: String::new() });
                    }
                    let mut payouts = vec![];
                    for s in batch {
                        let r = &s.receipt;
                        let before = m.claims.get(&r.claim).map_or(0, |c| c.1);
                        let lane = m.lanes.entry(r.viewer).or_default();
                        let due = r.amount - before;
                        let paid = due.min(*lane);
                        *lane -= paid;
                        m.claims.insert(r.claim, (s.clone(), before + paid));
                        payouts.push(Payout {
                            viewer: r.viewer,
                            claim: r.claim,
                            content: r.content,
                            seq: r.seq,
                            due,
                            paid,
                            tip_due: 0,
                            tip_paid: 0,
                            operator_paid: paid,
                            creator_paid: 0,
                            burned: 0,
                        });
                    }
                    Ok((Inclusion { block_number: 2, block_hash: [2; 32] }, payouts))
                });
                Box::pin(async move { result })
            }

            fn claim(
                &self,
                _: AccountId,
                _: AccountId,
                claim: ClaimId,
            ) -> BoxFuture<'_, Result<Option<SettledClaim>, ChainError>> {
                let found = self.with(|m| {
                    m.claims.get(&claim).map(|(r, paid)| SettledClaim {
                        latest: r.clone(),
                        paid: *paid,
                        operator_paid: *paid,
                    })
                });
                Box::pin(async move { Ok(found) })
            }

            fn lane(&self, viewer: AccountId, _: AccountId) -> BoxFuture<'_, Result<Lane, ChainError>> {
                let funds = self.with(|m| m.lanes.get(&viewer).copied().unwrap_or_default());
                Box::pin(async move { Ok(Lane { funds, closing_at: None }) })
            }

            fn reset(&self) -> BoxFuture<'_, ()> {
                Box::pin(async {})
            }
        }

        /// A viewer's receipt for `amount` at `seq`, from the viewer whose secret is `[viewer; 32]`.
        fn receipt(viewer: u8, seq: u64, amount: Balance) -> SignedReceipt {
            let secret = [viewer; 32];
            let key = ferry_primitives::signing::public_key(&secret);
            Receipt {
                domain: Default::default(),
                claim: ferry_primitives::claim_id(&RELAY, &key, &[3; 32]),
                relay: RELAY,
                viewer: key,
                content: [3; 32],
                seq,
                bytes: seq,
                amount,
                chunk_chain: [0; 32],
                tip: 0,
            }
            .sign(&secret)
        }

        fn viewer(n: u8) -> AccountId {
            ferry_primitives::signing::public_key(&[n; 32])
        }

        /// A settler that sends whatever is owed, at once.
        async fn settler(chain: &ModelChain, receipts: &[SignedReceipt]) -> (Settler, tempfile::TempDir) {
            let home = tempfile::tempdir().unwrap();
            let ledger = Ledger::open(home.path()).unwrap();
            for r in receipts {
                ledger.commit(r.clone()).await.unwrap().unwrap();
            }
            let policy = Policy { max_batch: 16, fee_multiple: 0, max_age: Duration::ZERO };
            let s = Settler::new(
                ledger,
                Box::new(chain.clone()),
                Metrics::new(),
                home.path().to_path_buf(),
                Duration::from_secs(1),
                policy,
                None,
            );
            (s, home)
        }

        #[tokio::test]
        async fn a_claim_settled_short_goes_again_only_once_its_lane_holds_funds() {
            let chain = ModelChain::default();
            chain.with(|m| m.lanes.insert(viewer(5), 400_000));
            let (s, _home) = settler(&chain, &[receipt(5, 1, 1_000_000)]).await;
            s.round().await.unwrap();
            assert!(s.ledger.pending().await.unwrap()[0].is_short(), "400 000 of 1 000 000 paid");
            // The lane is dry: nothing is sent, so no fee is spent on it.
            s.round().await.unwrap();
            assert_eq!(chain.with(|m| m.tips.len()), 1, "sent again while its lane was dry");
            chain.with(|m| m.lanes.insert(viewer(5), 2_000_000));
            s.round().await.unwrap();
            assert!(s.ledger.pending().await.unwrap().is_empty(), "settled in full once the lane was topped up");
            assert_eq!(chain.with(|m| m.lanes[&viewer(5)]), 1_400_000, "the rest and no more");
        }

        #[tokio::test]
        async fn a_batch_kept_out_of_blocks_goes_again_with_a_doubling_tip() {
            let chain = ModelChain::default();
            chain.with(|m| {
                m.lanes.insert(viewer(5), 10_000_000);
                m.kept_out = 3;
            });
            let (s, _home) = settler(&chain, &[receipt(5, 1, 100_000)]).await;
            for _ in 0..3 {
                assert!(s.round().await.is_err(), "kept out of the block");
            }
            s.round().await.unwrap();
            // None at first, then the fee doubled each time, never more than a tenth of the claim.
            assert_eq!(chain.with(|m| m.tips.clone()), [0, 2 * FEE, 4 * FEE, 8 * FEE]);
            assert!(s.ledger.pending().await.unwrap().is_empty());
            let (s, _home) = settler(&chain, &[receipt(6, 1, 30_000)]).await;
            chain.with(|m| {
                m.tips.clear();
                m.kept_out = 2;
            });
            let _ = s.round().await;
            let _ = s.round().await;
            s.round().await.unwrap();
            assert_eq!(chain.with(|m| m.tips.clone()), [0, 2 * FEE, 3_000], "a tenth of a 30 000 claim");
        }

        #[tokio::test]
        async fn a_receipt_the_chain_refuses_is_parked_and_the_rest_settle() {
            let chain = ModelChain::default();
            let receipts: Vec<_> = (10..16).map(|v| receipt(v, 1, 10_000)).collect();
            chain.with(|m| {
                for v in 10..16 {
                    m.lanes.insert(viewer(v), 10_000);
                }
                m.refused.insert(viewer(13));
            });
            let (s, _home) = settler(&chain, &receipts).await;
            s.round().await.unwrap();
            assert!(s.ledger.pending().await.unwrap().is_empty(), "nothing left to send");
            let claims = s.ledger.claims().await.unwrap();
            let refused: Vec<_> =
                claims.iter().filter(|c| c.refused.is_some()).map(|c| c.latest.receipt.viewer).collect();
            assert_eq!(refused, [viewer(13)], "only the receipt at fault is parked");
            assert!(claims
                .iter()
                .filter(|c| c.refused.is_none())
                .all(|c| c.settled.as_ref().is_some_and(|x| x.amount == 10_000)));
            assert!(chain.with(|m| m.tips.len()) <= 1 + 2 * 3, "found by halving: a few sendings, not one a receipt");
        }
    }
}
