//! The relay's check that a viewer can pay before it serves past the free credit window.
//!
//! The figure is the viewer's escrow on chain (free + unbonding + collateral), read at most every few seconds
//! per viewer. It is an upper bound: other relays may be owed part of it too, which the collateral is there for.
//! When the chain cannot be reached the last figure seen is used, so a chain outage does not stop playback
//! that was already covered; a viewer never seen on chain gets only the free window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_primitives::{AccountId, Balance};

use crate::chain::Link;

/// How long an escrow figure is reused before the chain is asked again.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// How long one escrow lookup may take while a viewer waits.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct EscrowGate {
    link: Link,
    seen: Mutex<HashMap<AccountId, (Balance, Instant)>>,
}

impl EscrowGate {
    pub fn new(link: Link) -> EscrowGate {
        EscrowGate { link, seen: Mutex::new(HashMap::new()) }
    }

    /// What the viewer's escrow can still pay, or `None` if it was never readable.
    pub async fn payable(&self, viewer: &AccountId) -> Option<Balance> {
        let cached = self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(viewer).copied();
        if let Some((v, at)) = cached {
            if at.elapsed() < FRESH_FOR {
                return Some(v);
            }
        }
        let lookup = async {
            let chain = self.link.get().await?;
            chain.escrow(*viewer).await
        };
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(e)) => {
                let v = e.payable();
                self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(*viewer, (v, Instant::now()));
                Some(v)
            }
            Ok(Err(e)) => {
                if e.is_unreachable() {
                    self.link.reset().await;
                }
                tracing::warn!(error = %e, "cannot read the viewer's escrow; using the last figure seen");
                cached.map(|(v, _)| v)
            }
            Err(_) => {
                tracing::warn!("escrow lookup timed out; using the last figure seen");
                cached.map(|(v, _)| v)
            }
        }
    }
}

/// How many bytes `amount` buys at `price_per_mib` (the inverse of `amount_for`, rounded down).
pub fn bytes_for(amount: Balance, price_per_mib: Balance) -> u64 {
    if price_per_mib == 0 {
        return u64::MAX;
    }
    let bytes = amount.saturating_mul(1 << 20) / price_per_mib;
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_inverts_amount_for() {
        for (bytes, price) in [(1u64 << 20, 1000u128), (5 << 20, 7), (123_456_789, 1_000_000)] {
            let amount = ferry_primitives::amount_for(bytes, price);
            assert!(bytes_for(amount, price) <= bytes);
            assert!(ferry_primitives::amount_for(bytes_for(amount, price), price) <= amount);
        }
        assert_eq!(bytes_for(0, 1000), 0);
        assert_eq!(bytes_for(5, 0), u64::MAX);
    }
}
