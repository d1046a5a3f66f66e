//! Rechecks one block's settlements: every receipt of every `settle` call is verified again and its payout
//! recomputed from the receipt, the claim's paid totals and the lane's funds before it, the way `docs/protocol.md`
//! (section 8) says the chain pays; then the recomputation is compared with the block's events, its transfers and
//! burns out of the pot, and the lanes and claims the chain stored after it.
//!
//! Pure: the chain is read elsewhere ([`super::read`]), so the rules have fast tests of their own.

use std::collections::{BTreeMap, HashMap};

use ferry_primitives::{claim_id, AccountId, Balance, ClaimId, ContentId, SignedReceipt, Split, BPS_DENOMINATOR};
use serde::{Deserialize, Serialize};

/// A claim as the chain stores it: its latest settled receipt (whole) and what was paid of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimPaid {
    pub seq: u64,
    pub bytes: u64,
    pub amount: Balance,
    pub tip: Balance,
    pub chunk_chain: [u8; 32],
    pub signature: [u8; 64],
    pub amount_paid: Balance,
    pub tip_paid: Balance,
}

pub type ClaimKey = (AccountId, AccountId, ClaimId);
pub type LaneKey = (AccountId, AccountId);

/// Chain state the checks read, at one block: only the entries a block's receipts name.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// (relay, viewer, claim id).
    pub claims: HashMap<ClaimKey, ClaimPaid>,
    /// (viewer, relay) → funds.
    pub lanes: HashMap<LaneKey, Balance>,
    /// Content id → (creator, share in basis points).
    pub contents: HashMap<ContentId, (AccountId, u16)>,
    /// Payouts held for accounts that could not take them yet.
    pub undelivered: HashMap<AccountId, Balance>,
}

/// The `Ferry::Settled` event's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Payout {
    #[serde(with = "hex::serde")]
    pub relay: AccountId,
    #[serde(with = "hex::serde")]
    pub viewer: AccountId,
    #[serde(with = "hex::serde")]
    pub claim: ClaimId,
    #[serde(with = "hex::serde")]
    pub content: ContentId,
    pub seq: u64,
    pub bytes: u64,
    #[serde(with = "crate::money::earnings::decimal")]
    pub due: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub tip_due: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub tip_paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub operator_paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub creator_paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub burned: Balance,
}

/// The `Ferry::Tipped` event's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TipEvent {
    pub content: ContentId,
    pub from: AccountId,
    pub creator: AccountId,
    pub amount: Balance,
    pub burned: Balance,
}

/// A direct tip (`Ferry::tip`) as the audit recomputed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tip {
    pub block: u32,
    pub time_ms: u64,
    pub extrinsic: u32,
    #[serde(with = "hex::serde")]
    pub from: AccountId,
    #[serde(with = "hex::serde")]
    pub content: ContentId,
    #[serde(with = "hex::serde")]
    pub creator: AccountId,
    /// What the tipper gave.
    #[serde(with = "crate::money::earnings::decimal")]
    pub amount: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub creator_paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub burned: Balance,
}

/// One extrinsic of a block, as far as the audit cares.
#[derive(Debug, Clone, Default)]
pub struct Extrinsic {
    pub index: u32,
    pub signer: Option<AccountId>,
    /// The receipts, when the call is `Ferry::settle`.
    pub settle: Option<Vec<SignedReceipt>>,
    /// The content and amount, when the call is `Ferry::tip`.
    pub tip: Option<(ContentId, Balance)>,
    pub tipped: Vec<TipEvent>,
    /// Transfers out of the signer's account: (to, amount).
    pub from_signer: Vec<(AccountId, Balance)>,
    /// Burned from the signer's account.
    pub signer_burned: Balance,
    /// The error when it failed (nothing it did stands).
    pub failed: Option<String>,
    pub settled: Vec<Payout>,
    /// Lanes it funded or emptied: (viewer, relay) → funds after.
    pub lanes: Vec<(LaneKey, Balance)>,
    /// Transfers out of the pot: (to, amount).
    pub from_pot: Vec<(AccountId, Balance)>,
    /// Payouts the pot kept for accounts that could not take them: (who, amount).
    pub held: Vec<(AccountId, Balance)>,
    /// Burned from the pot.
    pub pot_burned: Balance,
}

#[derive(Debug, Clone, Default)]
pub struct Block {
    pub number: u32,
    pub hash: [u8; 32],
    /// When it was made (the timestamp inherent), in Unix milliseconds.
    pub time_ms: u64,
    pub extrinsics: Vec<Extrinsic>,
}

/// What the audit found of one receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub block: u32,
    /// The block's time, in Unix milliseconds.
    pub time_ms: u64,
    pub extrinsic: u32,
    pub status: Status,
    #[serde(flatten)]
    pub payout: Payout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Paid,
    /// The lane ran dry: less paid than due.
    Short,
    /// Settled before; nothing moved.
    Unchanged,
}

/// A `settle` the chain ran and refused: none of its receipts moved money.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refused {
    pub block: u32,
    pub extrinsic: u32,
    #[serde(with = "hex::serde")]
    pub relay: AccountId,
    pub receipts: usize,
    pub error: String,
}

/// Where the chain's record differs from what its receipts and funds say it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub block: u32,
    pub extrinsic: Option<u32>,
    /// The claim, in hex, when the difference is one claim's.
    pub claim: Option<String>,
    pub what: String,
}

#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The block's hash.
    pub hash: [u8; 32],
    pub lines: Vec<Line>,
    pub tips: Vec<Tip>,
    pub refused: Vec<Refused>,
    pub discrepancies: Vec<Discrepancy>,
}

/// The chain's constants the checks need.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The chain's genesis hash: every receipt's domain.
    pub genesis: [u8; 32],
    pub fee_bps: u16,
}

/// Rechecks `block` given the state before it and after it (each holding at least every entry the block's
/// receipts name).
pub fn check_block(block: &Block, before: &State, after: &State, rules: Rules) -> Checked {
    let mut out = Checked { hash: block.hash, ..Checked::default() };
    let mut claims = before.claims.clone();
    let mut lanes = before.lanes.clone();
    let mut touched_claims = Vec::new();
    let mut touched_lanes = Vec::new();
    for x in &block.extrinsics {
        let differs = |claim: Option<&ClaimId>, what: String| Discrepancy {
            block: block.number,
            extrinsic: Some(x.index),
            claim: claim.map(hex::encode),
            what,
        };
        if let (Some(tip), None) = (x.tip, &x.failed) {
            check_tip(block, x, tip, before.contents.get(&tip.0).or(after.contents.get(&tip.0)), rules, &mut out);
        }
        let Some(batch) = &x.settle else {
            if x.failed.is_none() {
                for (key, funds) in &x.lanes {
                    lanes.insert(*key, *funds);
                    touched_lanes.push(*key);
                }
            }
            continue;
        };
        let relay = x.signer.unwrap_or_default();
        if let Some(error) = &x.failed {
            out.refused.push(Refused {
                block: block.number,
                extrinsic: x.index,
                relay,
                receipts: batch.len(),
                error: error.clone(),
            });
            if !x.settled.is_empty() {
                out.discrepancies.push(differs(None, "a refused settle has Settled events".into()));
            }
            continue;
        }
        let mut expected = Vec::new();
        let mut payees: BTreeMap<AccountId, Balance> = BTreeMap::new();
        let mut burn: Balance = 0;
        for signed in batch {
            let r = &signed.receipt;
            let key = (relay, r.viewer, r.claim);
            let prev = claims.get(&key).copied();
            match admissible(signed, &relay, prev, &rules) {
                Err(why) => {
                    out.discrepancies.push(differs(Some(&r.claim), format!("the chain paid a receipt that {why}")));
                    continue;
                }
                Ok(false) => {
                    out.lines.push(Line {
                        block: block.number,
                        time_ms: block.time_ms,
                        extrinsic: x.index,
                        status: Status::Unchanged,
                        payout: Payout {
                            relay,
                            viewer: r.viewer,
                            claim: r.claim,
                            content: r.content,
                            seq: r.seq,
                            bytes: r.bytes,
                            ..Payout::default()
                        },
                    });
                    continue;
                }
                Ok(true) => {}
            }
            let Some(&(creator, share_bps)) = before.contents.get(&r.content) else {
                let what = format!("the chain paid for content {} that is not registered", hex::encode(r.content));
                out.discrepancies.push(differs(Some(&r.claim), what));
                continue;
            };
            let funds = lanes.entry((r.viewer, relay)).or_insert(0);
            let (payout, split) = pay(signed, prev, funds, share_bps, rules.fee_bps);
            touched_lanes.push((r.viewer, relay));
            *payees.entry(relay).or_default() += split.operator;
            *payees.entry(creator).or_default() += payout.creator_paid;
            burn += payout.burned;
            claims.insert(key, settled_claim(signed, prev, &payout));
            touched_claims.push(key);
            let short = payout.paid < payout.due || payout.tip_paid < payout.tip_due;
            out.lines.push(Line {
                block: block.number,
                time_ms: block.time_ms,
                extrinsic: x.index,
                status: if short { Status::Short } else { Status::Paid },
                payout,
            });
            expected.push(payout);
        }
        compare_events(&expected, &x.settled, &mut out.discrepancies, differs);
        // Payouts leave the pot once per payee; one held before is paid with it.
        for (payee, amount) in payees.into_iter().filter(|(_, a)| *a > 0) {
            let owed = amount + before.undelivered.get(&payee).copied().unwrap_or(0);
            let moved: Balance = x.from_pot.iter().filter(|(to, _)| *to == payee).map(|(_, a)| a).sum();
            let held: Balance = x.held.iter().filter(|(to, _)| *to == payee).map(|(_, a)| a).sum();
            if moved + held != owed {
                let what = format!(
                    "the pot paid {} {moved} (and held {held}); the receipts make it {owed}",
                    crate::identity::account_hex(&payee)
                );
                out.discrepancies.push(differs(None, what));
            }
        }
        if x.pot_burned != burn {
            out.discrepancies
                .push(differs(None, format!("the pot burned {}; the receipts make it {burn}", x.pot_burned)));
        }
    }
    let at_block = |what: String, claim: Option<&ClaimId>| Discrepancy {
        block: block.number,
        extrinsic: None,
        claim: claim.map(hex::encode),
        what,
    };
    touched_lanes.sort();
    touched_lanes.dedup();
    for key in touched_lanes {
        let (ours, theirs) = (lanes.get(&key).copied().unwrap_or(0), after.lanes.get(&key).copied().unwrap_or(0));
        if ours != theirs {
            let what = format!(
                "the lane of {} to {} holds {theirs} after the block; its fundings and payouts make it {ours}",
                crate::identity::account_hex(&key.0),
                crate::identity::account_hex(&key.1)
            );
            out.discrepancies.push(at_block(what, None));
        }
    }
    for key in touched_claims {
        let (ours, theirs) = (claims.get(&key).copied(), after.claims.get(&key).copied());
        if ours != theirs {
            let what = format!("the chain stored the claim as {theirs:?}; its receipts make it {ours:?}");
            out.discrepancies.push(at_block(what, Some(&key.2)));
        }
    }
    out
}

/// Rechecks a direct tip that went through: split as every tip is, to the content's creator, and moved as the
/// `Tipped` event says.
/// `registered` is the content's (creator, share) as the chain holds it.
fn check_tip(
    block: &Block,
    x: &Extrinsic,
    (content, amount): (ContentId, Balance),
    registered: Option<&(AccountId, u16)>,
    rules: Rules,
    out: &mut Checked,
) {
    let mut differs = |what: String| {
        out.discrepancies.push(Discrepancy { block: block.number, extrinsic: Some(x.index), claim: None, what })
    };
    let from = x.signer.unwrap_or_default();
    let Some(&(creator, _)) = registered else {
        differs(format!("the chain took a tip for content {} that is not registered", hex::encode(content)));
        return;
    };
    let split = Split::tip(amount, rules.fee_bps);
    let want = TipEvent { content, from, creator, amount: split.creator, burned: split.burn };
    if x.tipped != [want] {
        differs(format!("the Tipped events are {:?}; a tip of {amount} makes them [{want:?}]", x.tipped));
    }
    let moved: Balance = x.from_signer.iter().filter(|(to, _)| *to == creator).map(|(_, a)| a).sum();
    if moved != split.creator || x.signer_burned != split.burn {
        differs(format!(
            "the tip moved {moved} to the creator and burned {}; a tip of {amount} makes it {} and {}",
            x.signer_burned, split.creator, split.burn
        ));
    }
    out.tips.push(Tip {
        block: block.number,
        time_ms: block.time_ms,
        extrinsic: x.index,
        from,
        content,
        creator,
        amount,
        creator_paid: split.creator,
        burned: split.burn,
    });
}

/// What settling `signed` pays, given the claim's settled totals and the lane's funds (which it lowers), as the
/// chain pays it: the delta over what was paid before, the bytes first, then the tip, each split as a step of the
/// claim's running total. Also returns the split of the bytes' part.
pub fn pay(
    signed: &SignedReceipt,
    prev: Option<ClaimPaid>,
    funds: &mut Balance,
    share_bps: u16,
    fee_bps: u16,
) -> (Payout, Split) {
    let r = &signed.receipt;
    let (amount_paid, tip_paid) = prev.map_or((0, 0), |p| (p.amount_paid, p.tip_paid));
    let due = r.amount.saturating_sub(amount_paid);
    let tip_due = r.tip.saturating_sub(tip_paid);
    let paid = due.min(*funds);
    *funds -= paid;
    let tip_now = tip_due.min(*funds);
    *funds -= tip_now;
    let split = Split::step(amount_paid, amount_paid + paid, share_bps, fee_bps);
    let tip_split = Split::step(tip_paid, tip_paid + tip_now, BPS_DENOMINATOR as u16, fee_bps);
    let payout = Payout {
        relay: r.relay,
        viewer: r.viewer,
        claim: r.claim,
        content: r.content,
        seq: r.seq,
        bytes: r.bytes,
        due,
        paid,
        tip_due,
        tip_paid: tip_now,
        operator_paid: split.operator,
        creator_paid: split.creator + tip_split.creator,
        burned: split.burn + tip_split.burn,
    };
    (payout, split)
}

/// The claim's totals once `payout` is settled.
fn settled_claim(signed: &SignedReceipt, prev: Option<ClaimPaid>, payout: &Payout) -> ClaimPaid {
    let (amount_paid, tip_paid) = prev.map_or((0, 0), |p| (p.amount_paid, p.tip_paid));
    let r = &signed.receipt;
    ClaimPaid {
        seq: r.seq,
        bytes: r.bytes,
        amount: r.amount,
        tip: r.tip,
        chunk_chain: r.chunk_chain,
        signature: signed.signature,
        amount_paid: amount_paid + payout.paid,
        tip_paid: tip_paid + payout.tip_paid,
    }
}

/// Whether the chain takes `signed` from `relay` over the claim's settled totals `prev`: `Ok(true)` if it pays
/// something, `Ok(false)` if it was settled in full before (a no-op), `Err` with the reason it is refused.
pub fn admissible(
    signed: &SignedReceipt,
    relay: &AccountId,
    prev: Option<ClaimPaid>,
    rules: &Rules,
) -> Result<bool, String> {
    receipt_valid(signed, relay, rules)?;
    let r = &signed.receipt;
    let Some(p) = prev else { return Ok(true) };
    if r.seq < p.seq {
        return Err(format!("is older (seq {}) than the claim's settled seq {}", r.seq, p.seq));
    }
    if r.seq == p.seq && (r.bytes != p.bytes || r.amount != p.amount || r.tip != p.tip) {
        return Err(format!("has the settled seq {} with other totals", r.seq));
    }
    if r.seq == p.seq && p.amount_paid == p.amount && p.tip_paid == p.tip {
        return Ok(false);
    }
    if r.bytes < p.bytes || r.amount < p.amount || r.tip < p.tip {
        return Err("has totals below the claim's settled ones".into());
    }
    Ok(true)
}

/// The checks a receipt must pass to be paid at all, as the chain makes them.
fn receipt_valid(signed: &SignedReceipt, relay: &AccountId, rules: &Rules) -> Result<(), String> {
    let r = &signed.receipt;
    if r.relay != *relay {
        return Err(format!("names relay {}, not the one that sent it", crate::identity::account_hex(&r.relay)));
    }
    if r.domain.0 != rules.genesis {
        return Err("is for another chain".into());
    }
    if r.claim != claim_id(&r.relay, &r.viewer, &r.content) {
        return Err("names a claim id that is not its parties'".into());
    }
    signed.verify().map_err(|e| format!("does not verify: {e}"))
}

/// Each expected payout must be an event of the extrinsic, in order, with the same figures, and no event more.
fn compare_events(
    expected: &[Payout],
    events: &[Payout],
    out: &mut Vec<Discrepancy>,
    differs: impl Fn(Option<&ClaimId>, String) -> Discrepancy,
) {
    for (i, want) in expected.iter().enumerate() {
        match events.get(i) {
            Some(got) if got == want => {}
            Some(got) => out.push(differs(
                Some(&want.claim),
                format!(
                    "the Settled event says paid {} + tip {} (operator {}, creator {}, burned {}); the receipt and \
                     the lane make it paid {} + tip {} (operator {}, creator {}, burned {})",
                    got.paid,
                    got.tip_paid,
                    got.operator_paid,
                    got.creator_paid,
                    got.burned,
                    want.paid,
                    want.tip_paid,
                    want.operator_paid,
                    want.creator_paid,
                    want.burned
                ),
            )),
            None => {
                out.push(differs(Some(&want.claim), "a receipt the chain must have paid has no Settled event".into()))
            }
        }
    }
    for extra in events.iter().skip(expected.len()) {
        out.push(differs(Some(&extra.claim), format!("a Settled event no receipt explains: {extra:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::*;
    use ferry_primitives::MIB;

    /// A 1,000 payment and a 100 tip from a lane of 10,000, as the chain pays them: 5% burns (rounded up), the
    /// creator takes 20% of the rest and the whole tip after its fee. Figures worked by hand.
    fn honest() -> (Block, State) {
        let signed = receipt(1_000, 100, &VIEWER_KEY);
        let payout = Payout {
            relay: RELAY,
            viewer: viewer(),
            claim: signed.receipt.claim,
            content: CONTENT,
            seq: 1,
            bytes: MIB,
            due: 1_000,
            paid: 1_000,
            tip_due: 100,
            tip_paid: 100,
            operator_paid: 760,
            creator_paid: 190 + 95,
            burned: 50 + 5,
        };
        let x = Extrinsic {
            index: 1,
            signer: Some(RELAY),
            settle: Some(vec![signed.clone()]),
            settled: vec![payout],
            from_pot: vec![(RELAY, 760), (CREATOR, 285)],
            pot_burned: 55,
            ..Extrinsic::default()
        };
        let mut after = before(8_900);
        let paid = ClaimPaid {
            seq: 1,
            bytes: MIB,
            amount: 1_000,
            tip: 100,
            chunk_chain: [0; 32],
            signature: signed.signature,
            amount_paid: 1_000,
            tip_paid: 100,
        };
        after.claims.insert((RELAY, viewer(), signed.receipt.claim), paid);
        (Block { number: 7, extrinsics: vec![x], ..Block::default() }, after)
    }

    /// A direct tip of 1,000 from the viewer: 5% burns, the creator gets the rest.
    fn tip_block() -> Block {
        let x = Extrinsic {
            index: 3,
            signer: Some(viewer()),
            tip: Some((CONTENT, 1_000)),
            tipped: vec![TipEvent { content: CONTENT, from: viewer(), creator: CREATOR, amount: 950, burned: 50 }],
            from_signer: vec![(CREATOR, 950)],
            signer_burned: 50,
            ..Extrinsic::default()
        };
        Block { number: 9, extrinsics: vec![x], ..Block::default() }
    }

    #[test]
    fn a_direct_tip_is_split_and_moved_as_its_event_says() {
        let c = check_block(&tip_block(), &before(0), &before(0), RULES);
        assert_eq!(c.discrepancies, vec![]);
        let t = &c.tips[..];
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].from, t[0].creator, t[0].amount, t[0].creator_paid, t[0].burned),
            (viewer(), CREATOR, 1_000, 950, 50)
        );
    }

    #[test]
    fn a_tip_that_burned_less_than_the_fee_is_named() {
        let mut block = tip_block();
        let x = &mut block.extrinsics[0];
        (x.tipped[0].amount, x.tipped[0].burned, x.from_signer[0].1, x.signer_burned) = (990, 10, 990, 10);
        let c = check_block(&block, &before(0), &before(0), RULES);
        assert_eq!(c.discrepancies.len(), 2, "the event and the balances: {:?}", c.discrepancies);
        assert!(c.discrepancies.iter().all(|d| d.block == 9 && d.extrinsic == Some(3)));
    }

    #[test]
    fn an_honest_settlement_has_no_discrepancy() {
        let (block, after) = honest();
        let c = check_block(&block, &before(10_000), &after, RULES);
        assert_eq!(c.discrepancies, vec![]);
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.lines[0].status, Status::Paid);
    }

    #[test]
    fn an_event_that_pays_the_operator_more_than_the_split_is_named() {
        let (mut block, after) = honest();
        let p = &mut block.extrinsics[0].settled[0];
        (p.operator_paid, p.burned) = (800, 15);
        let c = check_block(&block, &before(10_000), &after, RULES);
        assert_eq!(c.discrepancies.len(), 1, "{:?}", c.discrepancies);
        let d = &c.discrepancies[0];
        assert_eq!((d.block, d.extrinsic), (7, Some(1)));
        assert_eq!(d.claim.as_deref(), Some(hex::encode(block.extrinsics[0].settled[0].claim).as_str()));
        assert!(d.what.contains("operator 800") && d.what.contains("operator 760"), "{}", d.what);
    }

    #[test]
    fn a_lane_that_kept_what_it_paid_is_named() {
        let (block, mut after) = honest();
        after.lanes.insert((viewer(), RELAY), 10_000);
        let c = check_block(&block, &before(10_000), &after, RULES);
        assert_eq!(c.discrepancies.len(), 1, "{:?}", c.discrepancies);
        assert!(c.discrepancies[0].what.contains("holds 10000"), "{}", c.discrepancies[0].what);
    }

    #[test]
    fn a_paid_receipt_the_viewer_never_signed_is_named() {
        let (mut block, after) = honest();
        block.extrinsics[0].settle = Some(vec![receipt(1_000, 100, &[6; 32])]);
        let c = check_block(&block, &before(10_000), &after, RULES);
        assert!(c.discrepancies.iter().any(|d| d.what.contains("does not verify")), "{:?}", c.discrepancies);
    }

    #[test]
    fn pot_transfers_and_burns_must_match_the_payouts() {
        let (mut block, after) = honest();
        block.extrinsics[0].from_pot = vec![(RELAY, 700), (CREATOR, 285)];
        block.extrinsics[0].pot_burned = 115;
        let c = check_block(&block, &before(10_000), &after, RULES);
        assert_eq!(c.discrepancies.len(), 2, "{:?}", c.discrepancies);
    }

    #[test]
    fn a_lane_that_runs_dry_pays_short_and_the_tip_waits() {
        let signed = receipt(1_000, 100, &VIEWER_KEY);
        let (claim, signature) = (signed.receipt.claim, signed.signature);
        // 500 of 1,000: burn 25, creator 95, operator 380; nothing left for the tip.
        let payout = Payout {
            relay: RELAY,
            viewer: viewer(),
            claim,
            content: CONTENT,
            seq: 1,
            bytes: MIB,
            due: 1_000,
            paid: 500,
            tip_due: 100,
            tip_paid: 0,
            operator_paid: 380,
            creator_paid: 95,
            burned: 25,
        };
        let x = Extrinsic {
            index: 2,
            signer: Some(RELAY),
            settle: Some(vec![signed]),
            settled: vec![payout],
            from_pot: vec![(RELAY, 380), (CREATOR, 95)],
            pot_burned: 25,
            ..Extrinsic::default()
        };
        let mut after = before(0);
        let paid = ClaimPaid {
            seq: 1,
            bytes: MIB,
            amount: 1_000,
            tip: 100,
            chunk_chain: [0; 32],
            signature,
            amount_paid: 500,
            tip_paid: 0,
        };
        after.claims.insert((RELAY, viewer(), claim), paid);
        let block = Block { number: 8, extrinsics: vec![x], ..Block::default() };
        let c = check_block(&block, &before(500), &after, RULES);
        assert_eq!(c.discrepancies, vec![]);
        assert_eq!(c.lines[0].status, Status::Short);
    }

    #[test]
    fn a_refused_settlement_moves_nothing_and_is_listed() {
        let (mut block, _) = honest();
        let x = &mut block.extrinsics[0];
        x.failed = Some("Ferry::BadSignature".into());
        (x.settled, x.from_pot, x.pot_burned) = (vec![], vec![], 0);
        let c = check_block(&block, &before(10_000), &before(10_000), RULES);
        assert_eq!(c.discrepancies, vec![]);
        assert_eq!(c.refused.len(), 1);
        assert_eq!(c.refused[0].error, "Ferry::BadSignature");
    }
}
