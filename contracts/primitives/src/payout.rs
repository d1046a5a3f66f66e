//! Prices and how a payment is split. The relay, the pallet and the auditor all compute amounts here.

use crate::{Balance, MIB};

/// Shares and fees are in basis points of the payment.
pub const BPS_DENOMINATOR: u32 = 10_000;

/// What `bytes` cost at `price_per_mib`, rounded down (the viewer never pays for a partial unit).
pub fn amount_for(bytes: u64, price_per_mib: Balance) -> Balance {
    (bytes as Balance).saturating_mul(price_per_mib) / MIB as Balance
}

/// How one payment is divided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Split {
    pub creator: Balance,
    pub burn: Balance,
    pub operator: Balance,
}

impl Split {
    /// The creator's share and the protocol fee are taken from `amount` (rounded down); the operator gets the rest,
    /// so the three always add up to `amount`.
    pub fn of(amount: Balance, creator_share_bps: u16, fee_bps: u16) -> Split {
        let part =
            |bps: u16| amount.saturating_mul(bps.min(BPS_DENOMINATOR as u16) as Balance) / BPS_DENOMINATOR as Balance;
        let creator = part(creator_share_bps);
        let burn = part(fee_bps).min(amount - creator);
        Split { creator, burn, operator: amount - creator - burn }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_always_adds_up() {
        for amount in [0u128, 1, 7, 999, 10_000, 123_456_789] {
            for (c, f) in [(0, 0), (1_000, 500), (10_000, 0), (9_000, 5_000), (10_000, 10_000)] {
                let s = Split::of(amount, c, f);
                assert_eq!(s.creator + s.burn + s.operator, amount, "amount {amount} share {c} fee {f}");
            }
        }
    }

    #[test]
    fn price_is_per_mib_rounded_down() {
        assert_eq!(amount_for(MIB, 1_000), 1_000);
        assert_eq!(amount_for(MIB / 2, 1_000), 500);
        assert_eq!(amount_for(1, 1_000), 0);
        assert_eq!(amount_for(u64::MAX, u128::MAX), u128::MAX / MIB as u128);
    }
}
