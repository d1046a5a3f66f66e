//! `ferry audit --mine`: a viewer's bill. Every claim a relay settled against this viewer must rest on a receipt
//! this node signed, with the same totals; what is still owed and what is still reserved in each lane is shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ferry_primitives::{AccountId, Balance, ClaimId};
use serde::Serialize;

use super::check::State;
use super::ledger::Problem;
use super::read::Keys;
use crate::identity::account_hex;
use crate::money::ledger::OwnReceipt;

#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    pub viewer: String,
    pub block: u32,
    pub relays: Vec<RelayBill>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RelayBill {
    pub relay: String,
    pub claims: usize,
    /// What the latest receipts this node signed add up to (bytes and tips).
    #[serde(with = "crate::money::earnings::decimal")]
    pub signed: Balance,
    /// What the chain paid the relay for them.
    #[serde(with = "crate::money::earnings::decimal")]
    pub settled: Balance,
    /// Signed and not yet paid: the relay may still settle it.
    #[serde(with = "crate::money::earnings::decimal")]
    pub owed: Balance,
    /// Still reserved for this relay in the lane.
    #[serde(with = "crate::money::earnings::decimal")]
    pub lane: Balance,
}

/// The claims and lanes this node's receipts name.
pub fn keys(viewer: AccountId, own: &[OwnReceipt]) -> Keys {
    let mut keys = Keys::default();
    for o in own {
        let r = &o.receipt.receipt;
        keys.claims.insert((r.relay, viewer, r.claim));
        keys.lanes.insert((viewer, r.relay));
    }
    keys
}

/// Checks what the chain settled against `own` (the receipts this node signed), with `state` read at `block`.
pub fn audit_bill(viewer: AccountId, own: &[OwnReceipt], state: &State, block: u32) -> Bill {
    let mut bill = Bill { viewer: account_hex(&viewer), block, relays: Vec::new(), problems: Vec::new() };
    // Every signed receipt by (relay, claim), and the latest of each.
    let mut by_claim: BTreeMap<(AccountId, ClaimId), Vec<&OwnReceipt>> = BTreeMap::new();
    for o in own.iter().filter(|o| o.receipt.receipt.viewer == viewer) {
        by_claim.entry((o.receipt.receipt.relay, o.receipt.receipt.claim)).or_default().push(o);
    }
    let mut relays: BTreeMap<AccountId, RelayBill> = BTreeMap::new();
    for ((relay, claim), signed) in &by_claim {
        let Some(latest) = signed.iter().map(|o| &o.receipt.receipt).max_by_key(|r| r.seq) else { continue };
        let row = relays.entry(*relay).or_insert_with(|| RelayBill {
            relay: account_hex(relay),
            lane: state.lanes.get(&(viewer, *relay)).copied().unwrap_or(0),
            ..RelayBill::default()
        });
        row.claims += 1;
        let mut signed_total = latest.amount + latest.tip;
        let mut paid = 0;
        if let Some(c) = state.claims.get(&(*relay, viewer, *claim)) {
            let problem = |what: String| Problem { claim: hex::encode(claim), party: account_hex(relay), what };
            let mine = signed.iter().find(|o| {
                let r = &o.receipt.receipt;
                r.seq == c.seq
                    && r.bytes == c.bytes
                    && r.amount == c.amount
                    && r.tip == c.tip
                    && o.receipt.signature == c.signature
            });
            match mine {
                Some(_) => paid = c.amount_paid + c.tip_paid,
                None => bill.problems.push(problem(format!(
                    "relay {} settled seq {} for {} + tip {}, which this node never signed",
                    account_hex(relay),
                    c.seq,
                    c.amount,
                    c.tip
                ))),
            }
            // A receipt signed on another machine with the same key can be the latest on chain.
            signed_total = signed_total.max(c.amount + c.tip);
        }
        row.signed += signed_total;
        row.settled += paid;
        row.owed += signed_total.saturating_sub(paid);
    }
    bill.relays = relays.into_values().collect();
    bill
}

impl Bill {
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Bill of viewer {} on chain, as of block #{}:", self.viewer, self.block);
        for r in &self.relays {
            let _ = writeln!(
                o,
                "  relay {}: {} claims, signed {}, settled {}, still owed {}, still reserved in the lane {}",
                r.relay, r.claims, r.signed, r.settled, r.owed, r.lane
            );
        }
        if self.problems.is_empty() {
            let _ = writeln!(o, "No problems: every settlement rests on a receipt this node signed.");
        } else {
            let _ = writeln!(o, "{} problems:", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(o, "  claim {}: {}", p.claim, p.what);
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::check::ClaimPaid;
    use crate::audit::fixtures::*;
    use ferry_primitives::SignedReceipt;

    fn settled(r: &SignedReceipt, paid: Balance) -> State {
        let mut s = before(5_000);
        let c = ClaimPaid {
            seq: r.receipt.seq,
            bytes: r.receipt.bytes,
            amount: r.receipt.amount,
            tip: r.receipt.tip,
            chunk_chain: r.receipt.chunk_chain,
            signature: r.signature,
            amount_paid: paid,
            tip_paid: 0,
        };
        s.claims.insert((RELAY, viewer(), r.receipt.claim), c);
        s
    }

    #[test]
    fn a_bill_shows_what_was_signed_settled_owed_and_reserved() {
        let mine = receipt(1_000, 0, &VIEWER_KEY);
        let own = [OwnReceipt { receipt: mine.clone(), acked: true }];
        let bill = audit_bill(viewer(), &own, &settled(&mine, 600), 9);
        assert!(bill.problems.is_empty(), "{:?}", bill.problems);
        let r = &bill.relays[0];
        assert_eq!((r.claims, r.signed, r.settled, r.owed, r.lane), (1, 1_000, 600, 400, 5_000));
    }

    #[test]
    fn a_settlement_this_viewer_never_signed_is_named() {
        let mine = receipt(1_000, 0, &VIEWER_KEY);
        let own = [OwnReceipt { receipt: mine, acked: true }];
        let forged = receipt(9_000, 0, &[6; 32]);
        let bill = audit_bill(viewer(), &own, &settled(&forged, 5_000), 9);
        assert_eq!(bill.problems.len(), 1, "{:?}", bill.problems);
        assert!(bill.problems[0].what.contains("never signed"));
    }
}
