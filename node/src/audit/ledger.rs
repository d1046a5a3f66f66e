//! `ferry audit --ledger`: a relay's own ledger against the chain. Every claim's latest receipt is checked the way
//! the chain will check it, what the chain settled must be what the ledger records, and what the next settlement
//! will pay is worked out from the lanes' funds now, before it is sent.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ferry_primitives::{AccountId, Balance};
use serde::Serialize;

use super::check::{admissible, pay, Payout, Rules, State};
use super::read::Keys;
use crate::identity::account_hex;
use crate::money::ledger::ClaimRecord;

#[derive(Debug, Clone, Serialize)]
pub struct LedgerAudit {
    pub relay: String,
    /// The finalized block the chain was read at.
    pub block: u32,
    /// Claims the chain settled in full, as the ledger says.
    pub settled: usize,
    /// What the next settlement of every pending claim pays, receipt by receipt (in the order the relay sends
    /// them: smallest first, so a lane that runs dry leaves as few claims short as it can).
    pub next: Vec<Payout>,
    /// The operator's part of `next`, per content.
    pub next_by_content: BTreeMap<String, Totals>,
    pub next_total: Totals,
    /// What the ledger holds that the chain would refuse or disagrees with.
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    #[serde(with = "crate::money::earnings::decimal")]
    pub paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub tips: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub operator: Balance,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub claim: String,
    /// The viewer (in a relay's ledger) or the relay (in a viewer's bill).
    pub party: String,
    pub what: String,
}

/// The storage entries the ledger's claims name.
pub fn keys(relay: AccountId, records: &[ClaimRecord]) -> Keys {
    let mut keys = Keys::default();
    for rec in records {
        let r = &rec.latest.receipt;
        keys.claims.insert((relay, r.viewer, r.claim));
        keys.lanes.insert((r.viewer, relay));
        keys.contents.insert(r.content);
    }
    keys
}

/// Checks `records` (the relay's ledger) against `state` (the chain at `block`).
pub fn audit_ledger(relay: AccountId, records: &[ClaimRecord], state: &State, rules: Rules, block: u32) -> LedgerAudit {
    let mut out = LedgerAudit {
        relay: account_hex(&relay),
        block,
        settled: 0,
        next: Vec::new(),
        next_by_content: BTreeMap::new(),
        next_total: Totals::default(),
        problems: Vec::new(),
    };
    let mut pending: Vec<&ClaimRecord> = Vec::new();
    for rec in records {
        let r = &rec.latest.receipt;
        let problem = |what: String| Problem { claim: hex::encode(r.claim), party: account_hex(&r.viewer), what };
        let on_chain = state.claims.get(&(relay, r.viewer, r.claim)).copied();
        if let (Some(c), Some(s)) = (on_chain, &rec.settled) {
            // The ledger's record of what was paid may lag the chain (a settlement in flight), never lead it.
            if s.amount > c.amount_paid + c.tip_paid {
                let what = format!(
                    "the ledger records {} paid for seq {}; the chain has paid {} for seq {}",
                    s.amount,
                    s.seq,
                    c.amount_paid + c.tip_paid,
                    c.seq
                );
                out.problems.push(problem(what));
            }
        }
        match admissible(&rec.latest, &relay, on_chain, &rules) {
            Err(why) => out.problems.push(problem(format!("the chain would refuse its latest receipt, which {why}"))),
            Ok(false) => out.settled += 1,
            Ok(true) if !state.contents.contains_key(&r.content) => {
                let what = format!("its content {} is not registered on chain", hex::encode(r.content));
                out.problems.push(problem(what));
            }
            Ok(true) => pending.push(rec),
        }
    }
    pending.sort_by_key(|rec| rec.owed());
    let mut lanes = state.lanes.clone();
    for rec in pending {
        let r = &rec.latest.receipt;
        let prev = state.claims.get(&(relay, r.viewer, r.claim)).copied();
        let (_, share_bps) = state.contents[&r.content];
        let funds = lanes.entry((r.viewer, relay)).or_insert(0);
        let (payout, _) = pay(&rec.latest, prev, funds, share_bps, rules.fee_bps);
        for t in [out.next_by_content.entry(hex::encode(r.content)).or_default(), &mut out.next_total] {
            t.paid += payout.paid;
            t.tips += payout.tip_paid;
            t.operator += payout.operator_paid;
        }
        out.next.push(payout);
    }
    out
}

impl LedgerAudit {
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Ledger of relay {} against the chain at block #{}:", self.relay, self.block);
        let _ = writeln!(o, "  settled in full on chain: {} claims", self.settled);
        let short = self.next.iter().filter(|p| p.paid < p.due || p.tip_paid < p.tip_due).count();
        let t = &self.next_total;
        let _ = writeln!(
            o,
            "  pending: {} claims; the next settlement pays {} + tips {}, the operator's part {}{}",
            self.next.len(),
            t.paid,
            t.tips,
            t.operator,
            if short > 0 { format!(" ({short} short: their lanes hold less than they owe)") } else { String::new() }
        );
        for (content, t) in &self.next_by_content {
            let _ = writeln!(o, "    content {content}: {} + tips {}, operator {}", t.paid, t.tips, t.operator);
        }
        if self.problems.is_empty() {
            let _ = writeln!(o, "No problems: every receipt the ledger holds is one the chain will take.");
        } else {
            let _ = writeln!(o, "{} problems:", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(o, "  claim {} (viewer {}): {}", p.claim, p.party, p.what);
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::*;
    use ferry_primitives::{claim_id, SignedReceipt};

    fn record(latest: SignedReceipt) -> ClaimRecord {
        ClaimRecord { latest, settled: None, refused: None }
    }

    #[test]
    fn the_next_settlement_is_predicted_from_the_lanes_funds() {
        let audit = audit_ledger(RELAY, &[record(receipt(1_000, 100, &VIEWER_KEY))], &before(10_000), RULES, 5);
        assert!(audit.problems.is_empty(), "{:?}", audit.problems);
        // As the chain pays it: 5% of 1,000 burns, the creator takes 20% of the rest; the tip goes to the creator.
        let t = &audit.next_total;
        assert_eq!((t.paid, t.tips, t.operator), (1_000, 100, 760));
        // A lane of 400 pays 400 of it, and no tip.
        let short = audit_ledger(RELAY, &[record(receipt(1_000, 100, &VIEWER_KEY))], &before(400), RULES, 5);
        let t = &short.next_total;
        assert_eq!((t.paid, t.tips, t.operator), (400, 0, 304));
    }

    #[test]
    fn a_receipt_edited_after_signing_is_named_before_it_is_sent() {
        let mut raised = receipt(1_000, 0, &VIEWER_KEY);
        raised.receipt.amount = 5_000;
        let wrong_key = receipt(1_000, 0, &[6; 32]);
        let mut other_claim = receipt(1_000, 0, &VIEWER_KEY);
        other_claim.receipt.claim = claim_id(&RELAY, &viewer(), &[4; 32]);
        let other_claim = other_claim.receipt.sign(&VIEWER_KEY);
        for (name, r) in [("amount raised", raised), ("another key", wrong_key), ("another claim", other_claim)] {
            let audit = audit_ledger(RELAY, &[record(r)], &before(10_000), RULES, 5);
            assert_eq!(audit.problems.len(), 1, "{name}: {:?}", audit.problems);
            assert!(audit.next.is_empty(), "{name}: predicted a payment for it");
        }
    }
}
