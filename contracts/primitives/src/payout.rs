//! Prices and how a payment is split. The relay, the pallet and the auditor all compute amounts here.

use crate::{Balance, MIB};

/// Shares and fees are in basis points of the payment.
pub const BPS_DENOMINATOR: u32 = 10_000;

/// What `bytes` cost at `price_per_mib`, rounded down (the viewer never pays for a partial unit).
pub fn amount_for(bytes: u64, price_per_mib: Balance) -> Balance {
    (bytes as Balance).saturating_mul(price_per_mib) / MIB as Balance
}

/// `amount × bps / 10000` without overflow for any `amount`, rounded up or down; never more than `amount`.
fn part(amount: Balance, bps: u16, round_up: bool) -> Balance {
    let d = BPS_DENOMINATOR as Balance;
    let bps = bps.min(BPS_DENOMINATOR as u16) as Balance;
    let (q, r) = (amount / d, amount % d);
    let up = round_up && !(r * bps).is_multiple_of(d);
    q * bps + r * bps / d + up as Balance
}

/// How one payment is divided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Split {
    pub creator: Balance,
    pub burn: Balance,
    pub operator: Balance,
}

impl Split {
    /// The protocol fee comes off first, rounded up, so every payment above zero burns something whatever the
    /// creator share: playing viewer to yourself always loses money. The creator's share is taken from what is
    /// left (rounded down) and the operator gets the rest, so the three always add up to `amount`.
    pub fn of(amount: Balance, creator_share_bps: u16, fee_bps: u16) -> Split {
        let burn = part(amount, fee_bps, true);
        let creator = part(amount - burn, creator_share_bps, false);
        Split { creator, burn, operator: amount - burn - creator }
    }

    /// A tip: the fee burns and the creator gets the rest.
    pub fn tip(amount: Balance, fee_bps: u16) -> Split {
        Split::of(amount, BPS_DENOMINATOR as u16, fee_bps)
    }

    /// What a session's payout grows by when its settled amount goes from `from` to `to`: the change in the
    /// split of the running total. So a session pays `Split::of(total)` in the end, however the relay batched
    /// its settlements, and an auditor needs only the last receipt. Where rounding would make a part shrink
    /// (tiny steps with share + fee near 100%), the step is split on its own instead; it still adds up to `to - from`.
    pub fn step(from: Balance, to: Balance, creator_share_bps: u16, fee_bps: u16) -> Split {
        let (a, b) = (Split::of(from, creator_share_bps, fee_bps), Split::of(to, creator_share_bps, fee_bps));
        match (b.creator.checked_sub(a.creator), b.burn.checked_sub(a.burn), b.operator.checked_sub(a.operator)) {
            (Some(creator), Some(burn), Some(operator)) => Split { creator, burn, operator },
            _ => Split::of(to.saturating_sub(from), creator_share_bps, fee_bps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_add_up_to_the_split_of_the_total() {
        for (c, f) in [(0, 0), (2_000, 500), (3_333, 777), (10_000, 0)] {
            let mut total = Split::default();
            let mut at = 0;
            for to in [250u128, 251, 1_000, 1_001, 77_777, 1_000_000] {
                let s = Split::step(at, to, c, f);
                assert_eq!(s.creator + s.burn + s.operator, to - at);
                total = Split {
                    creator: total.creator + s.creator,
                    burn: total.burn + s.burn,
                    operator: total.operator + s.operator,
                };
                at = to;
            }
            assert_eq!(total, Split::of(at, c, f), "share {c} fee {f}");
        }
    }

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
    fn every_payment_burns_the_fee_whatever_the_share() {
        for share in [0u16, 2_000, 9_500, 10_000] {
            for amount in [1u128, 19, 20, 10_000, 123_456_789] {
                let s = Split::of(amount, share, 500);
                assert!(s.burn >= 1, "amount {amount} share {share}");
                assert!(s.burn * 10_000 >= amount * 500, "amount {amount} share {share}: burn below the fee");
            }
        }
        assert_eq!(Split::of(10_000, 2_000, 500), Split { creator: 1_900, burn: 500, operator: 7_600 });
        assert_eq!(Split::tip(1_000, 500), Split { creator: 950, burn: 50, operator: 0 });
        // Huge amounts split exactly, so no saturated total skews later steps.
        let s = Split::of(u128::MAX, 2_000, 500);
        assert_eq!(s.creator + s.burn + s.operator, u128::MAX);
        assert_eq!(s.burn, u128::MAX / 20 + 1);
    }

    #[test]
    fn price_is_per_mib_rounded_down() {
        assert_eq!(amount_for(MIB, 1_000), 1_000);
        assert_eq!(amount_for(MIB / 2, 1_000), 500);
        assert_eq!(amount_for(1, 1_000), 0);
        assert_eq!(amount_for(u64::MAX, u128::MAX), u128::MAX / MIB as u128);
    }
}
