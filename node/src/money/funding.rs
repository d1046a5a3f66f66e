//! The paying side's lanes: before it pays a relay, a viewer (or a relay filling its cache) makes sure funds are
//! reserved for that relay on chain, opening or topping up the lane by a set amount. A relay can take from its
//! lane only what the viewer signed receipts for, and the rest comes back with `ferry lane close` and
//! `ferry lane withdraw`, so reserving ahead loses nothing.

use std::collections::HashMap;

use ferry_primitives::{AccountId, Balance};

use crate::chain::{ChainError, Link};
use crate::identity::account_hex;

pub struct Funding {
    link: Link,
    account: AccountId,
    /// What one opening or top-up reserves.
    amount: Balance,
    /// Top-ups per relay in this run, so a relay that keeps answering "no lane" cannot drain the viewer's balance
    /// into reservations.
    top_ups: tokio::sync::Mutex<HashMap<AccountId, u32>>,
}

/// Most top-ups of one lane in one run, after the first opening.
const MAX_TOP_UPS: u32 = 8;

impl Funding {
    pub fn new(link: Link, account: AccountId, amount: Balance) -> Funding {
        Funding { link, account, amount, top_ups: Default::default() }
    }

    /// The price per MiB `relay` registered on chain, or `None` if it is not a registered operator.
    pub async fn registered_price(&self, relay: AccountId) -> Result<Option<Balance>, ChainError> {
        let chain = self.link.get().await?;
        Ok(chain.operator(relay).await?.map(|op| op.price_per_mib))
    }

    /// Makes sure the lane to `relay` holds at least half of `amount`, reserving `amount` more when it does not.
    /// Returns whether funds were added.
    pub async fn ensure(&self, relay: AccountId) -> Result<bool, ChainError> {
        if self.amount == 0 {
            // Reserving by hand (`ferry lane open`) only.
            return Ok(false);
        }
        let mut top_ups = self.top_ups.lock().await;
        let chain = self.link.get().await?;
        let lane = chain.lane(self.account, relay).await?;
        if lane.usable() >= self.amount / 2 && lane.usable() > 0 {
            return Ok(false);
        }
        let n = top_ups.entry(relay).or_default();
        if *n > MAX_TOP_UPS {
            return Ok(false);
        }
        *n += 1;
        let (at, funds) = chain.open_lane(relay, self.amount).await?;
        eprintln!(
            "reserved {} for relay {} (its lane now holds {funds}; block #{}); `ferry lane close` returns the rest",
            self.amount,
            account_hex(&relay),
            at.block_number
        );
        tracing::info!(relay = %account_hex(&relay), amount = %self.amount, %funds, block = at.block_number, "lane funded");
        Ok(true)
    }
}
