//! The relay's book of what each viewer's lane still covers, so that every receipt it acknowledges is paid and no
//! viewer gets more than one credit window of unpaid bytes, however many sessions or peers it uses.
//!
//! A lane holds funds a viewer reserved on chain for this relay alone; only this relay can claim them, and the
//! viewer gets the rest back only `UnbondingPeriod` blocks after closing it. So the relay knows, from chain state
//! and its own ledger, what it will be paid: the lane's funds, less what the viewer owes it in acknowledged
//! receipts not settled yet (`owed`), less what is **held**: the cost of bytes its sessions were allowed to let
//! out and that no receipt paid yet. A session serves more bytes only after holding their cost here
//! ([`SessionCredit::cover`]), and a receipt is acknowledged only if its amount and tip fit.
//!
//! Credit belongs to the viewer, not the session: the held bytes of all its sessions together stay within one
//! credit window, and what a session let out and never got a receipt for stays held when it ends (it is
//! forgiven only [`FORGIVE_AFTER`] later). So opening a new session per window gains a viewer nothing.
//!
//! Lane figures are read from the chain (at the latest finalized block) at most every few seconds per viewer, or
//! every 250 ms while they do not cover what is asked. A settlement lowers both the lane and what is owed: the
//! settler lowers the cached lane and `owed` together, and a lane read from the chain while a settlement was being
//! recorded is dropped and read again, so the two figures are never mixed across a settlement (at worst a
//! settlement is counted twice for a few seconds, which only serves less).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_primitives::{amount_for, AccountId, Balance};
use futures::future::BoxFuture;

use crate::chain::{Lane, Link};

/// How long a lane figure is reused before the chain is asked again.
const FRESH_FOR: Duration = Duration::from_secs(3);
/// A figure that does not cover a request is read again if it is older than this, so a viewer that just opened or
/// topped up its lane (and retries at once) is served, while a viewer without funds costs at most one lookup this
/// often; new viewer accounts are rate-limited before their first lookup (`rate_limit::Newcomers`).
const RECHECK_AFTER: Duration = Duration::from_millis(250);
/// How old a lane figure may be and still be used while the chain cannot be reached: well within the dev chain's
/// unbonding period (600 blocks of 1 s), so a lane closed meanwhile still pays what was served against it.
const MAX_STALE: Duration = Duration::from_secs(300);
/// How long one lane lookup may take while a viewer waits.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long bytes a session let out and never got a receipt for stay held against the viewer's credit. An honest
/// viewer leaves at most a partial chunk behind when a transfer breaks or it stops watching; a viewer that never
/// pays gets at most one credit window from this relay per this period.
pub const FORGIVE_AFTER: Duration = Duration::from_secs(3600);

/// Where the book reads lanes: the chain, or an in-memory one in tests.
pub trait LaneSource: Send + Sync {
    /// The lane from `viewer` to this relay at the latest finalized block.
    fn lane(&self, viewer: AccountId) -> BoxFuture<'_, Result<Lane, LaneReadError>>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LaneReadError {
    /// The chain cannot be reached: a recent figure may stand in.
    #[error("chain unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Failed(String),
}

/// Lanes to `relay` on the chain behind `link`.
pub struct ChainLanes {
    pub link: Link,
    pub relay: AccountId,
}

impl LaneSource for ChainLanes {
    fn lane(&self, viewer: AccountId) -> BoxFuture<'_, Result<Lane, LaneReadError>> {
        Box::pin(async move {
            let read = async { self.link.get().await?.lane(viewer, self.relay).await };
            match read.await {
                Ok(lane) => Ok(lane),
                Err(e) if e.is_unreachable() => {
                    self.link.reset().await;
                    Err(LaneReadError::Unreachable(e.to_string()))
                }
                Err(e) => Err(LaneReadError::Failed(e.to_string())),
            }
        })
    }
}

pub struct LaneBook {
    source: Box<dyn LaneSource>,
    /// Most bytes one viewer may have let out ahead of its receipts, over all its sessions.
    credit_window: u64,
    inner: Mutex<Inner>,
    /// Woken whenever held credit is freed, so sessions waiting for credit try again.
    freed: tokio::sync::Notify,
}

#[derive(Default)]
struct Inner {
    viewers: HashMap<AccountId, Viewer>,
    /// Bumped by every settlement, so a lane read before one is not used after it.
    generation: u64,
}

#[derive(Default)]
struct Viewer {
    /// The last lane figure read, lowered by every settlement since.
    lane: Option<(Lane, Instant)>,
    /// Acknowledged, not yet settled (bytes and tips).
    owed: Balance,
    /// Cost of bytes sessions may let out or let out, with no receipt yet, including `unpaid`.
    held: Balance,
    /// The same in bytes: never above the credit window.
    held_bytes: u64,
    /// What ended sessions let out, or bought upstream for the viewer, and never got a receipt for: (when, bytes,
    /// cost, whether it was a cache fill), oldest first.
    unpaid: VecDeque<(Instant, u64, Balance, bool)>,
    /// A claim of this viewer could not be settled in time: nothing more is served until one is.
    overdue: bool,
    /// Cost of blobs bought upstream for it and not paid back, in open sessions and in `unpaid`; part of `held`.
    fill_risk: Balance,
}

impl Viewer {
    /// Lets go of unpaid bytes older than [`FORGIVE_AFTER`]; returns whether any were.
    fn forgive(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(&(at, bytes, cost, fill)) = self.unpaid.front() {
            if now.duration_since(at) < FORGIVE_AFTER {
                break;
            }
            self.unpaid.pop_front();
            self.held = self.held.saturating_sub(cost);
            if fill {
                self.fill_risk = self.fill_risk.saturating_sub(cost);
            }
            self.held_bytes = self.held_bytes.saturating_sub(bytes);
            any = true;
        }
        any
    }
}

/// Why a viewer is not covered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCovered {
    #[error("no open lane from this viewer to this relay on chain; open one with `ferry lane open <RELAY> <AMOUNT>`")]
    NoLane,
    #[error("the viewer's lane ({funds}) is used up: {owed} owed and {held} held for bytes not yet paid; top it up")]
    UsedUp { funds: Balance, owed: Balance, held: Balance },
    /// Transient: the viewer's sessions hold its whole credit window; a receipt frees it.
    #[error("the viewer's credit window is in use ({held_bytes} bytes not yet paid for); send receipts first")]
    CreditInUse { held_bytes: u64 },
    #[error("cannot read the viewer's lane on chain: {0}")]
    Unreadable(String),
    #[error("the session has ended")]
    Ended,
    #[error("what this viewer owes has not been settled on chain in time; the relay serves it again once it is")]
    Overdue,
    /// Blobs bought upstream for the viewer and not paid back (in the last [`FORGIVE_AFTER`]) exceed one credit
    /// window: no new fill for it.
    #[error("this viewer left blobs the relay bought for it unpaid; it is served only what the relay holds")]
    FillUnpaid,
}

impl LaneBook {
    /// `owed` is what the ledger holds acknowledged and unsettled, per viewer, when the relay starts.
    pub fn new(source: Box<dyn LaneSource>, credit_window: u64, owed: HashMap<AccountId, Balance>) -> LaneBook {
        let viewers = owed.into_iter().map(|(v, owed)| (v, Viewer { owed, ..Viewer::default() })).collect();
        LaneBook {
            source,
            credit_window,
            inner: Mutex::new(Inner { viewers, generation: 0 }),
            freed: tokio::sync::Notify::new(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The viewer's lane, the generation it was read in, and whether it came from the cache (a figure up to
    /// `fresh_for` old).
    async fn lane(&self, viewer: &AccountId, fresh_for: Duration) -> Result<(Lane, u64, bool), NotCovered> {
        let (cached, generation) = {
            let g = self.inner();
            (g.viewers.get(viewer).and_then(|v| v.lane), g.generation)
        };
        if let Some((lane, at)) = cached {
            if at.elapsed() < fresh_for {
                return Ok((lane, generation, at.elapsed() >= RECHECK_AFTER));
            }
        }
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.source.lane(*viewer)).await {
            Ok(Ok(lane)) => {
                let mut g = self.inner();
                if g.generation == generation {
                    g.viewers.entry(*viewer).or_default().lane = Some((lane, Instant::now()));
                }
                Ok((lane, generation, false))
            }
            Ok(Err(LaneReadError::Failed(e))) => Err(NotCovered::Unreadable(e)),
            // The chain cannot be reached: only this relay's own settlements (already taken off the cached figure)
            // can lower a lane, and a lane closed meanwhile still pays for the unbonding period, so a recent
            // figure holds.
            Ok(Err(LaneReadError::Unreachable(_))) | Err(_) => {
                match cached.filter(|(_, at)| at.elapsed() < MAX_STALE) {
                    Some((lane, _)) => {
                        tracing::warn!("chain unreachable; using the viewer's lane as last seen");
                        Ok((lane, generation, false))
                    }
                    None => Err(NotCovered::Unreadable(
                        "the chain is unreachable and this lane was not seen in the last 5 minutes".into(),
                    )),
                }
            }
        }
    }

    /// Whether the relay has read this viewer's lane, or is owed by it.
    pub fn knows(&self, viewer: &AccountId) -> bool {
        self.inner().viewers.contains_key(viewer)
    }

    /// Reads the viewer's lane into the book, so the viewer is known from now on.
    pub async fn learn(&self, viewer: &AccountId) {
        if let Err(e) = self.lane(viewer, FRESH_FOR).await {
            tracing::debug!(error = %e, "cannot read a new viewer's lane yet");
        }
    }

    /// Holds `cost` (for `bytes` of credit) of the viewer's lane, if the lane and the credit window allow it. A
    /// cache fill (`fill` is its allowance) also needs the viewer's unpaid fills to be within the allowance.
    async fn hold(
        &self,
        viewer: &AccountId,
        bytes: u64,
        cost: Balance,
        fill: Option<Balance>,
    ) -> Result<(), NotCovered> {
        let mut fresh_for = FRESH_FOR;
        for _ in 0..3 {
            let (lane, generation, recheckable) = self.lane(viewer, fresh_for).await?;
            let verdict = {
                let mut g = self.inner();
                if g.generation != generation {
                    // A settlement landed while the lane was read: read it again.
                    continue;
                }
                let v = g.viewers.entry(*viewer).or_default();
                if v.forgive(Instant::now()) {
                    self.freed.notify_waiters();
                }
                if v.overdue {
                    Err(NotCovered::Overdue)
                } else if fill.is_some_and(|allowance| v.fill_risk > allowance) {
                    Err(NotCovered::FillUnpaid)
                } else if lane.usable() == 0 {
                    Err(NotCovered::NoLane)
                } else if v.owed.saturating_add(v.held).saturating_add(cost) > lane.usable() {
                    Err(NotCovered::UsedUp { funds: lane.usable(), owed: v.owed, held: v.held })
                } else if v.held_bytes.saturating_add(bytes) > self.credit_window {
                    return Err(NotCovered::CreditInUse { held_bytes: v.held_bytes });
                } else {
                    v.held += cost;
                    v.held_bytes += bytes;
                    if fill.is_some() {
                        v.fill_risk += cost;
                    }
                    Ok(())
                }
            };
            match verdict {
                Err(_) if recheckable && fresh_for != RECHECK_AFTER => fresh_for = RECHECK_AFTER,
                verdict => return verdict,
            }
        }
        Err(NotCovered::Unreadable("settlements keep changing the lane; try again".into()))
    }

    /// A receipt was acknowledged: it pays `from_held` (held before, for `bytes` of credit) and `extra` (its tip
    /// and any amount beyond what was held), which must still fit the lane.
    async fn acknowledge(
        &self,
        viewer: &AccountId,
        bytes: u64,
        from_held: Balance,
        extra: Balance,
    ) -> Result<(), NotCovered> {
        if extra > 0 {
            // Funds only: it is paid now, so it takes no credit.
            self.hold(viewer, 0, extra, None).await?;
        }
        let mut g = self.inner();
        let v = g.viewers.entry(*viewer).or_default();
        let total = from_held + extra;
        v.held = v.held.saturating_sub(total);
        v.held_bytes = v.held_bytes.saturating_sub(bytes);
        v.owed += total;
        drop(g);
        self.freed.notify_waiters();
        Ok(())
    }

    /// A session ended: `unused` bytes (costing `unused_cost`) it held were never let out and are freed;
    /// `unpaid` bytes (costing `unpaid_cost`) were let out without a receipt, and `fill_cost` of blobs bought
    /// upstream for it was not paid back: both stay held until forgiven.
    fn end_session(
        &self,
        viewer: &AccountId,
        (unused, unused_cost): (u64, Balance),
        (unpaid, unpaid_cost): (u64, Balance),
        fill_cost: Balance,
    ) {
        let mut g = self.inner();
        let v = g.viewers.entry(*viewer).or_default();
        v.held = v.held.saturating_sub(unused_cost);
        v.held_bytes = v.held_bytes.saturating_sub(unused);
        let now = Instant::now();
        if unpaid > 0 || unpaid_cost > 0 {
            v.unpaid.push_back((now, unpaid, unpaid_cost, false));
        }
        if fill_cost > 0 {
            v.unpaid.push_back((now, 0, fill_cost, true));
        }
        drop(g);
        self.freed.notify_waiters();
    }

    /// `cost` held for a cache fill is paid back, or the fill did not happen.
    fn release_fill(&self, viewer: &AccountId, cost: Balance) {
        let mut g = self.inner();
        let v = g.viewers.entry(*viewer).or_default();
        v.held = v.held.saturating_sub(cost);
        v.fill_risk = v.fill_risk.saturating_sub(cost);
        drop(g);
        self.freed.notify_waiters();
    }

    /// A finalized settlement paid `paid` of what the viewer owed: lower the cached lane and `owed` together.
    pub fn settled(&self, viewer: &AccountId, paid: Balance) {
        let mut g = self.inner();
        g.generation += 1;
        let v = g.viewers.entry(*viewer).or_default();
        if let Some((lane, _)) = &mut v.lane {
            lane.funds = lane.funds.saturating_sub(paid);
        }
        v.owed = v.owed.saturating_sub(paid);
    }

    /// Whether a claim of `viewer` stayed unsettled too long (the settler decides): an overdue viewer is served
    /// nothing more until a settlement lands, so a relay whose claims cannot get on chain stops adding to them.
    pub fn set_overdue(&self, viewer: &AccountId, overdue: bool) {
        let mut g = self.inner();
        let Some(v) = g.viewers.get_mut(viewer) else { return };
        if v.overdue != overdue {
            v.overdue = overdue;
            let who = crate::identity::account_hex(viewer);
            match overdue {
                true => {
                    tracing::warn!(viewer = %who, "a claim of this viewer is not settled in time; not serving it until it is")
                }
                false => tracing::info!(viewer = %who, "the viewer's claims are settled; serving it again"),
            }
        }
    }

    /// What the viewer owes and holds, and the held bytes: for tests and logs.
    pub fn figures(&self, viewer: &AccountId) -> (Balance, Balance, u64) {
        self.inner().viewers.get(viewer).map_or((0, 0, 0), |v| (v.owed, v.held, v.held_bytes))
    }
}

/// One session's use of its viewer's credit. Dropping it ends the session's claim: what it held and never let
/// out is freed, what it let out unpaid stays held against the viewer.
pub struct SessionCredit {
    book: Arc<LaneBook>,
    viewer: AccountId,
    price_per_mib: Balance,
    state: Mutex<CreditState>,
}

#[derive(Default)]
struct CreditState {
    /// Bytes the session may let out: held in the book, or paid.
    covered: u64,
    /// Bytes let out.
    served: u64,
    /// Held in the book for this session and not paid by a receipt yet.
    held: Balance,
    /// Held for blobs bought upstream for this session beyond its held bytes, not yet paid back by receipts.
    fill_risk: Balance,
    /// The totals of the latest acknowledged receipt.
    acked_bytes: u64,
    acked_amount: Balance,
    acked_tip: Balance,
    ended: bool,
}

impl SessionCredit {
    pub fn new(book: Arc<LaneBook>, viewer: AccountId, price_per_mib: Balance) -> SessionCredit {
        SessionCredit { book, viewer, price_per_mib, state: Mutex::new(CreditState::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CreditState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A future that completes when any viewer's credit is freed; made before [`SessionCredit::cover`] is
    /// tried, so a wake-up between the two is not lost.
    pub fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.book.freed.notified()
    }

    /// Makes sure the session may let out bytes up to `upto`, holding the cost of what is not covered yet.
    pub async fn cover(&self, upto: u64) -> Result<(), NotCovered> {
        let covered = {
            let s = self.state();
            if s.ended {
                return Err(NotCovered::Ended);
            }
            s.covered
        };
        if upto <= covered {
            return Ok(());
        }
        let cost = amount_for(upto, self.price_per_mib) - amount_for(covered, self.price_per_mib);
        self.book.hold(&self.viewer, upto - covered, cost, None).await?;
        let mut s = self.state();
        if s.ended || s.covered != covered {
            // It ended, or another task covered it, while this was held: give it back.
            drop(s);
            self.book.end_session(&self.viewer, (upto - covered, cost), (0, 0), 0);
            return Err(NotCovered::Ended);
        }
        s.covered = upto;
        s.held += cost;
        Ok(())
    }

    /// The relay is about to buy a blob upstream for this session at `cost`: the viewer's lane must be able to
    /// pay it back, and what the viewer left unpaid of earlier fills must be within one credit window's cost. It
    /// is held (funds, not credit) until the session's receipts pay as much; what they do not pay when the
    /// session ends stays held for [`FORGIVE_AFTER`], and blocks further fills meanwhile.
    pub async fn fill(&self, cost: Balance) -> Result<(), NotCovered> {
        if self.state().ended {
            return Err(NotCovered::Ended);
        }
        let allowance = amount_for(self.book.credit_window, self.price_per_mib);
        self.book.hold(&self.viewer, 0, cost, Some(allowance)).await?;
        let mut s = self.state();
        if s.ended {
            drop(s);
            self.book.release_fill(&self.viewer, cost);
            return Err(NotCovered::Ended);
        }
        s.fill_risk += cost;
        Ok(())
    }

    /// The fill held with [`SessionCredit::fill`] will not happen after all.
    pub fn unfill(&self, cost: Balance) {
        let mut s = self.state();
        let cost = cost.min(s.fill_risk);
        s.fill_risk -= cost;
        drop(s);
        self.book.release_fill(&self.viewer, cost);
    }

    /// Bytes up to `upto` have been let out.
    pub fn served(&self, upto: u64) {
        let mut s = self.state();
        s.served = s.served.max(upto);
    }

    /// A receipt for `bytes` at cumulative `amount` and `tip`: what it pays moves from held to owed. A tip, or
    /// any amount past what was held, must fit the lane.
    pub async fn receipt(&self, bytes: u64, amount: Balance, tip: Balance) -> Result<(), NotCovered> {
        let (paid_bytes, from_held, extra, fill_paid) = {
            let s = self.state();
            let more = amount.saturating_sub(s.acked_amount);
            let from_held = more.min(s.held);
            let extra = more - from_held + tip.saturating_sub(s.acked_tip);
            (bytes.saturating_sub(s.acked_bytes), from_held, extra, more.min(s.fill_risk))
        };
        self.book.acknowledge(&self.viewer, paid_bytes, from_held, extra).await?;
        if fill_paid > 0 {
            self.book.release_fill(&self.viewer, fill_paid);
        }
        let mut s = self.state();
        s.held = s.held.saturating_sub(from_held);
        s.fill_risk = s.fill_risk.saturating_sub(fill_paid);
        s.acked_bytes = s.acked_bytes.max(bytes);
        s.acked_amount = s.acked_amount.max(amount);
        s.acked_tip = s.acked_tip.max(tip);
        Ok(())
    }

    /// Ends the session's claim (also done on drop).
    pub fn end(&self) {
        let mut s = self.state();
        if std::mem::replace(&mut s.ended, true) {
            return;
        }
        let served = s.served.min(s.covered);
        let price = self.price_per_mib;
        let unused = s.covered - served;
        let unused_cost = (amount_for(s.covered, price) - amount_for(served, price)).min(s.held);
        let unpaid = served.saturating_sub(s.acked_bytes);
        let unpaid_cost = s.held - unused_cost;
        let fill_cost = std::mem::take(&mut s.fill_risk);
        s.held = 0;
        drop(s);
        if unpaid > 0 || fill_cost > 0 {
            tracing::info!(viewer = %crate::identity::account_hex(&self.viewer), unpaid, %fill_cost, "session ended with bytes served, or bought upstream, and not paid; they stay charged to the viewer");
        }
        self.book.end_session(&self.viewer, (unused, unused_cost), (unpaid, unpaid_cost), fill_cost);
    }
}

impl Drop for SessionCredit {
    fn drop(&mut self) {
        self.end();
    }
}

/// An in-memory chain for tests: one lane per viewer.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct ModelLanes(pub Mutex<HashMap<AccountId, Lane>>, std::sync::atomic::AtomicBool);

#[cfg(test)]
impl ModelLanes {
    /// The chain stops, or starts again, answering.
    pub fn set_down(&self, down: bool) {
        self.1.store(down, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
impl LaneSource for Arc<ModelLanes> {
    fn lane(&self, viewer: AccountId) -> BoxFuture<'_, Result<Lane, LaneReadError>> {
        let lane = self.0.lock().unwrap().get(&viewer).copied().unwrap_or_default();
        let down = self.1.load(std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            match down {
                true => Err(LaneReadError::Unreachable("the model chain is down".into())),
                false => Ok(lane),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lanes = ModelLanes;

    const MIB: u64 = 1 << 20;
    const PRICE: Balance = 1_000_000;
    const VIEWER: AccountId = [7; 32];

    fn book(funds: Balance, window: u64) -> Arc<LaneBook> {
        let lanes = Arc::new(Lanes::default());
        lanes.0.lock().unwrap().insert(VIEWER, Lane { funds, closing_at: None });
        Arc::new(LaneBook::new(Box::new(lanes), window, HashMap::new()))
    }

    #[tokio::test]
    async fn credit_is_the_viewers_across_sessions() {
        let book = book(100 * PRICE, 2 * MIB);
        let a = SessionCredit::new(book.clone(), VIEWER, PRICE);
        let b = SessionCredit::new(book.clone(), VIEWER, PRICE);
        a.cover(2 * MIB).await.unwrap();
        assert_eq!(b.cover(1).await, Err(NotCovered::CreditInUse { held_bytes: 2 * MIB }), "one window in all");
        a.receipt(MIB, PRICE, 0).await.unwrap();
        b.cover(MIB).await.unwrap();
        assert_eq!(book.figures(&VIEWER), (PRICE, 2 * PRICE, 2 * MIB));
    }

    #[tokio::test]
    async fn bytes_let_out_unpaid_stay_charged_after_the_session() {
        let book = book(100 * PRICE, 2 * MIB);
        for _ in 0..3 {
            // A viewer that takes its credit and never pays, one session after another.
            let s = SessionCredit::new(book.clone(), VIEWER, PRICE);
            if s.cover(2 * MIB).await.is_ok() {
                s.served(2 * MIB);
            }
        }
        assert_eq!(book.figures(&VIEWER), (0, 2 * PRICE, 2 * MIB), "one window of unpaid bytes, no more");
        let next = SessionCredit::new(book.clone(), VIEWER, PRICE);
        assert!(matches!(next.cover(1).await, Err(NotCovered::CreditInUse { .. })));
    }

    #[tokio::test]
    async fn what_a_session_held_and_never_let_out_is_freed() {
        let book = book(100 * PRICE, 2 * MIB);
        let s = SessionCredit::new(book.clone(), VIEWER, PRICE);
        s.cover(2 * MIB).await.unwrap();
        s.served(MIB / 2);
        s.receipt(MIB / 4, PRICE / 4, 0).await.unwrap();
        drop(s);
        assert_eq!(book.figures(&VIEWER), (PRICE / 4, PRICE / 4, MIB / 4), "a quarter owed, a quarter unpaid");
    }

    #[tokio::test]
    async fn a_fill_left_unpaid_stays_held_and_stops_other_fills() {
        let book = book(100 * PRICE, 2 * MIB);
        let s = SessionCredit::new(book.clone(), VIEWER, PRICE);
        s.cover(MIB / 4).await.unwrap();
        s.fill(10 * PRICE).await.unwrap();
        s.served(MIB / 4);
        s.receipt(MIB / 4, PRICE / 4, 0).await.unwrap();
        drop(s);
        // A quarter MiB paid of a 10 MiB blob bought for it.
        assert_eq!(book.figures(&VIEWER), (PRICE / 4, 10 * PRICE - PRICE / 4, 0));
        let next = SessionCredit::new(book.clone(), VIEWER, PRICE);
        assert_eq!(next.fill(PRICE).await, Err(NotCovered::FillUnpaid));
        next.cover(MIB).await.unwrap();
    }

    #[tokio::test]
    async fn a_fill_paid_back_is_released() {
        let book = book(100 * PRICE, 2 * MIB);
        let s = SessionCredit::new(book.clone(), VIEWER, PRICE);
        s.fill(PRICE).await.unwrap();
        s.cover(MIB).await.unwrap();
        s.served(MIB);
        s.receipt(MIB, PRICE, 0).await.unwrap();
        drop(s);
        assert_eq!(book.figures(&VIEWER), (PRICE, 0, 0), "owed for the bytes, nothing held");
        assert!(SessionCredit::new(book.clone(), VIEWER, PRICE).fill(PRICE).await.is_ok());
    }

    #[tokio::test]
    async fn a_lane_bounds_what_is_owed_and_held() {
        let book = book(PRICE, 8 * MIB);
        let s = SessionCredit::new(book.clone(), VIEWER, PRICE);
        s.cover(MIB).await.unwrap();
        assert!(matches!(s.cover(2 * MIB).await, Err(NotCovered::UsedUp { .. })));
        s.served(MIB);
        s.receipt(MIB, PRICE, 0).await.unwrap();
        assert!(matches!(s.receipt(MIB, PRICE, 1).await, Err(NotCovered::UsedUp { .. })), "a tip must fit too");
        let other = book.clone();
        assert!(matches!(SessionCredit::new(other, [8; 32], PRICE).cover(1).await, Err(NotCovered::NoLane)));
    }
}
