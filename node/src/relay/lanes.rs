//! The relay's book of what each viewer's lane still covers, so that every receipt it acknowledges is paid.
//!
//! A lane holds funds a viewer reserved on chain for this relay alone; only this relay can claim them, and the
//! viewer gets the rest back only `UnbondingPeriod` blocks after closing it. So the relay knows, from chain state
//! and its own ledger, what it will be paid: the lane's funds, less what the viewer owes it in acknowledged
//! receipts not settled yet (`owed`), less what its open sessions were allowed to serve and not yet acknowledged
//! (`reserved`). A session serves more bytes only after reserving their cost here, and a receipt is acknowledged
//! only if its amount and tip fit. A closing lane covers nothing new: what is owed is settled before it closes.
//!
//! Lane figures are read from the chain (at the latest finalized block) at most every few seconds per viewer, or
//! every 250 ms while they do not cover what is asked. A settlement lowers both the lane and what is owed: the
//! settler lowers the cached lane and `owed` together, and a lane read from the chain while a settlement was being
//! recorded is dropped and read again, so the two figures are never mixed across a settlement (at worst a
//! settlement is counted twice for a few seconds, which only serves less).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_primitives::{AccountId, Balance};

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

pub struct LaneBook {
    link: Link,
    relay: AccountId,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The last lane figure read, lowered by every settlement since.
    lanes: HashMap<AccountId, (Lane, Instant)>,
    /// Acknowledged, not yet settled (bytes and tips), per viewer.
    owed: HashMap<AccountId, Balance>,
    /// Allowed to open sessions and not yet acknowledged, per viewer.
    reserved: HashMap<AccountId, Balance>,
    /// Bumped by every settlement, so a lane read before one is not used after it.
    generation: u64,
}

impl Inner {
    fn reserve(&mut self, viewer: &AccountId, lane: &Lane, cost: Balance) -> Result<(), NotCovered> {
        if lane.usable() == 0 {
            return Err(NotCovered::NoLane);
        }
        let owed = self.owed.get(viewer).copied().unwrap_or(0);
        let reserved = self.reserved.get(viewer).copied().unwrap_or(0);
        if owed.saturating_add(reserved).saturating_add(cost) > lane.usable() {
            return Err(NotCovered::UsedUp { funds: lane.usable(), owed, reserved });
        }
        *self.reserved.entry(*viewer).or_default() += cost;
        Ok(())
    }
}

/// Why a viewer is not covered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCovered {
    #[error("no open lane from this viewer to this relay on chain; open one with `ferry lane open <RELAY> <AMOUNT>`")]
    NoLane,
    #[error("the viewer's lane ({funds}) is used up: {owed} owed and {reserved} reserved; top it up")]
    UsedUp { funds: Balance, owed: Balance, reserved: Balance },
    #[error("cannot read the viewer's lane on chain: {0}")]
    Unreadable(String),
}

impl LaneBook {
    /// `owed` is what the ledger holds acknowledged and unsettled, per viewer, when the relay starts.
    pub fn new(link: Link, relay: AccountId, owed: HashMap<AccountId, Balance>) -> LaneBook {
        LaneBook { link, relay, inner: Mutex::new(Inner { owed, ..Inner::default() }) }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The viewer's lane, the generation it was read in, and whether it came from the cache (a figure up to
    /// `fresh_for` old).
    async fn lane(&self, viewer: &AccountId, fresh_for: Duration) -> Result<(Lane, u64, bool), NotCovered> {
        let (cached, generation) = {
            let g = self.inner();
            (g.lanes.get(viewer).copied(), g.generation)
        };
        if let Some((lane, at)) = cached {
            if at.elapsed() < fresh_for {
                return Ok((lane, generation, at.elapsed() >= RECHECK_AFTER));
            }
        }
        let lookup = async {
            let chain = self.link.get().await?;
            chain.lane(*viewer, self.relay).await
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(lane)) => {
                let mut g = self.inner();
                if g.generation == generation {
                    g.lanes.insert(*viewer, (lane, Instant::now()));
                }
                Ok((lane, generation, false))
            }
            Ok(Err(e)) if !e.is_unreachable() => Err(NotCovered::Unreadable(e.to_string())),
            // The chain cannot be reached: only this relay's own settlements (already taken off the cached figure)
            // can lower a lane, and a lane closed meanwhile still pays for the unbonding period, so a recent
            // figure holds.
            outage => {
                if let Ok(Err(_)) = outage {
                    self.link.reset().await;
                }
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
        let g = self.inner();
        g.lanes.contains_key(viewer) || g.owed.contains_key(viewer)
    }

    /// Reads the viewer's lane into the book, so the viewer is known from now on.
    pub async fn learn(&self, viewer: &AccountId) {
        if let Err(e) = self.lane(viewer, FRESH_FOR).await {
            tracing::debug!(error = %e, "cannot read a new viewer's lane yet");
        }
    }

    /// Reserves `cost` of the viewer's lane for bytes a session is about to serve.
    pub async fn reserve(&self, viewer: &AccountId, cost: Balance) -> Result<(), NotCovered> {
        let mut fresh_for = FRESH_FOR;
        for _ in 0..3 {
            let (lane, generation, recheckable) = self.lane(viewer, fresh_for).await?;
            let verdict = {
                let mut g = self.inner();
                if g.generation != generation {
                    // A settlement landed while the lane was read: read it again.
                    continue;
                }
                g.reserve(viewer, &lane, cost)
            };
            match verdict {
                Err(_) if recheckable && fresh_for != RECHECK_AFTER => fresh_for = RECHECK_AFTER,
                verdict => return verdict,
            }
        }
        Err(NotCovered::Unreadable("settlements keep changing the lane; try again".into()))
    }

    /// A receipt was acknowledged: `from_reserve` of its amount was reserved before, `extra` (the tip, and any
    /// amount beyond the reservation) must still fit the lane.
    pub async fn acknowledge(
        &self,
        viewer: &AccountId,
        from_reserve: Balance,
        extra: Balance,
    ) -> Result<(), NotCovered> {
        if extra > 0 {
            self.reserve(viewer, extra).await?;
        }
        let mut g = self.inner();
        let total = from_reserve + extra;
        let r = g.reserved.entry(*viewer).or_default();
        *r = r.saturating_sub(total);
        *g.owed.entry(*viewer).or_default() += total;
        Ok(())
    }

    /// A session ended with `unused` of its reservation never served.
    pub fn release(&self, viewer: &AccountId, unused: Balance) {
        let mut g = self.inner();
        let r = g.reserved.entry(*viewer).or_default();
        *r = r.saturating_sub(unused);
    }

    /// A finalized settlement paid `paid` of what the viewer owed: lower the cached lane and `owed` together.
    pub fn settled(&self, viewer: &AccountId, paid: Balance) {
        let mut g = self.inner();
        g.generation += 1;
        if let Some((lane, _)) = g.lanes.get_mut(viewer) {
            lane.funds = lane.funds.saturating_sub(paid);
        }
        let o = g.owed.entry(*viewer).or_default();
        *o = o.saturating_sub(paid);
    }
}
