//! What an audit found, summed per relay, per lane (viewer to relay) and per content, for people and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ferry_primitives::Balance;
use serde::Serialize;

use super::check::{Checked, ClaimKey, Discrepancy, Line, Refused, Status, Tip};
use super::relays::RelayLog;
use crate::identity::account_hex;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The chain's genesis hash.
    pub chain: String,
    pub from_block: u32,
    pub to_block: u32,
    /// Settlements recomputed from their receipts, one per receipt.
    pub payouts: Vec<Line>,
    /// Tips given straight to creators (`ferry tip`), outside any receipt.
    pub direct_tips: Vec<Tip>,
    pub by_relay: Vec<Totals>,
    pub by_lane: Vec<Totals>,
    pub by_content: Vec<Totals>,
    /// `settle` calls the chain refused.
    pub refused: Vec<Refused>,
    pub discrepancies: Vec<Discrepancy>,
    /// Relays' receipt logs, when asked for (`--relay`).
    pub relays: Vec<RelayLog>,
    /// What each relay and each content earned per hour or day, when asked for (`--by`).
    pub by_period: Vec<Period>,
}

/// One relay's or one content's earnings in one hour or day.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    /// `relay` or `content`.
    pub kind: &'static str,
    pub of: String,
    /// The period's start, UTC (`2026-12-07 13:00`).
    pub start: String,
    pub receipts: usize,
    #[serde(with = "crate::money::earnings::decimal")]
    pub paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub tips: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub operator: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub creator: Balance,
}

/// Sums over the payouts of one relay, lane or content.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// The relay, `viewer -> relay`, or the content id.
    pub of: String,
    pub claims: usize,
    /// The claims' byte totals, as their latest settled receipts say.
    pub bytes: u64,
    #[serde(with = "crate::money::earnings::decimal")]
    pub due: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub paid: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub tips: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub operator: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub creator: Balance,
    #[serde(with = "crate::money::earnings::decimal")]
    pub burned: Balance,
    /// Claims whose lane ran dry before they were paid in full.
    pub short: usize,
    /// Direct tips to a content's creator (what tippers gave; its creator and burned parts are in `creator` and
    /// `burned`).
    #[serde(with = "crate::money::earnings::decimal")]
    pub direct_tips: Balance,
}

impl Report {
    pub fn new(genesis: [u8; 32], from_block: u32, to_block: u32) -> Report {
        Report {
            chain: format!("0x{}", hex::encode(genesis)),
            from_block,
            to_block,
            payouts: Vec::new(),
            direct_tips: Vec::new(),
            by_relay: Vec::new(),
            by_lane: Vec::new(),
            by_content: Vec::new(),
            refused: Vec::new(),
            discrepancies: Vec::new(),
            relays: Vec::new(),
            by_period: Vec::new(),
        }
    }

    /// Adds one block's findings, in block order.
    pub fn add(&mut self, checked: Checked) {
        self.payouts.extend(checked.lines);
        self.direct_tips.extend(checked.tips);
        self.refused.extend(checked.refused);
        self.discrepancies.extend(checked.discrepancies);
    }

    /// Sums the payouts added so far.
    pub fn finish(&mut self) {
        self.by_relay = self.totals(|l| account_hex(&l.payout.relay));
        self.by_lane =
            self.totals(|l| format!("{} -> {}", account_hex(&l.payout.viewer), account_hex(&l.payout.relay)));
        self.by_content = self.totals(|l| hex::encode(l.payout.content));
        for tip in &self.direct_tips {
            let of = hex::encode(tip.content);
            let at = match self.by_content.binary_search_by(|t| t.of.cmp(&of)) {
                Ok(i) => i,
                Err(i) => {
                    self.by_content.insert(i, Totals { of, ..Totals::default() });
                    i
                }
            };
            let t = &mut self.by_content[at];
            t.direct_tips += tip.amount;
            t.creator += tip.creator_paid;
            t.burned += tip.burned;
        }
    }

    fn totals(&self, key: impl Fn(&Line) -> String) -> Vec<Totals> {
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        // A claim's bytes and shortness are those of its latest payout.
        let mut claims: BTreeMap<(String, ClaimKey), (u64, bool)> = BTreeMap::new();
        for l in &self.payouts {
            let p = &l.payout;
            let k = key(l);
            let t = out.entry(k.clone()).or_insert_with(|| Totals { of: k.clone(), ..Totals::default() });
            t.due += p.due + p.tip_due;
            t.paid += p.paid;
            t.tips += p.tip_paid;
            t.operator += p.operator_paid;
            t.creator += p.creator_paid;
            t.burned += p.burned;
            let short = l.status == Status::Short;
            claims
                .entry((k, (p.relay, p.viewer, p.claim)))
                .and_modify(|c| *c = if l.status == Status::Unchanged { *c } else { (p.bytes, short) })
                .or_insert((p.bytes, short));
        }
        for ((k, _), (bytes, short)) in claims {
            if let Some(t) = out.get_mut(&k) {
                t.claims += 1;
                t.bytes += bytes;
                t.short += usize::from(short);
            }
        }
        out.into_values().collect()
    }

    /// Sums every payout per relay and per content over periods of `period_ms` (an hour, a day), by block time;
    /// direct tips count to their content.
    pub fn split_by(&mut self, period_ms: u64) {
        let mut rows: BTreeMap<(&'static str, String, u64), Period> = BTreeMap::new();
        let key = |kind: &'static str, of: String, time_ms: u64| (kind, of, time_ms - time_ms % period_ms.max(1));
        let empty = |(kind, of, start): &(&'static str, String, u64)| Period {
            kind,
            of: of.clone(),
            start: utc(*start),
            receipts: 0,
            paid: 0,
            tips: 0,
            operator: 0,
            creator: 0,
        };
        for l in self.payouts.iter().filter(|l| l.status != Status::Unchanged) {
            let p = &l.payout;
            for (kind, of) in [("relay", account_hex(&p.relay)), ("content", hex::encode(p.content))] {
                let k = key(kind, of, l.time_ms);
                let row = rows.entry(k.clone()).or_insert_with(|| empty(&k));
                row.receipts += 1;
                row.paid += p.paid;
                row.tips += p.tip_paid;
                row.operator += p.operator_paid;
                row.creator += p.creator_paid;
            }
        }
        for tip in &self.direct_tips {
            let k = key("content", hex::encode(tip.content), tip.time_ms);
            let row = rows.entry(k.clone()).or_insert_with(|| empty(&k));
            row.tips += tip.amount;
            row.creator += tip.creator_paid;
        }
        self.by_period = rows.into_values().collect();
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let receipts = self.payouts.len();
        let _ = writeln!(
            o,
            "Audit of blocks {}..={} of chain {}: {receipts} settled receipts, {} direct tips, {} refused settlements.",
            self.from_block,
            self.to_block,
            self.chain,
            self.direct_tips.len(),
            self.refused.len()
        );
        for (title, rows) in
            [("relay", &self.by_relay), ("lane (viewer -> relay)", &self.by_lane), ("content", &self.by_content)]
        {
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(o, "\nPer {title}:");
            for t in rows {
                let _ = write!(
                    o,
                    "  {}\n    claims {} ({} short), bytes {}, due {}, paid {} + tips {}",
                    t.of, t.claims, t.short, t.bytes, t.due, t.paid, t.tips
                );
                if t.direct_tips > 0 {
                    let _ = write!(o, " + direct tips {}", t.direct_tips);
                }
                let _ = writeln!(o, ": operator {}, creator {}, burned {}", t.operator, t.creator, t.burned);
            }
        }
        let short: Vec<&Line> = self.payouts.iter().filter(|l| l.status == Status::Short).collect();
        if !short.is_empty() {
            let _ = writeln!(o, "\nUnderfunded (the viewer's lane ran dry; the relay may settle the rest later):");
            for l in short {
                let p = &l.payout;
                let _ = writeln!(
                    o,
                    "  block {} claim {}: due {}, paid {}",
                    l.block,
                    hex::encode(p.claim),
                    p.due + p.tip_due,
                    p.paid + p.tip_paid
                );
            }
        }
        if !self.refused.is_empty() {
            let _ = writeln!(o, "\nRefused by the chain (nothing moved):");
            for r in &self.refused {
                let _ = writeln!(
                    o,
                    "  block {} extrinsic {}: {} receipts from {}: {}",
                    r.block,
                    r.extrinsic,
                    r.receipts,
                    account_hex(&r.relay),
                    r.error
                );
            }
        }
        if !self.by_period.is_empty() {
            let _ = writeln!(o, "\nEarned per period (relays: the operator's part; contents: the creator's):");
            let top = self.by_period.iter().map(|p| p.operator.max(p.creator)).max().unwrap_or(0).max(1);
            let mut last = "";
            for p in &self.by_period {
                if p.of != last {
                    let _ = writeln!(o, "  {} {}", p.kind, p.of);
                    last = &p.of;
                }
                let amount = if p.kind == "relay" { p.operator } else { p.creator };
                let bar = "#".repeat((amount.saturating_mul(30) / top) as usize);
                let _ = writeln!(o, "    {}  {:>20}  {:<30}  {} receipts", p.start, amount, bar, p.receipts);
            }
        }
        for log in &self.relays {
            let _ = write!(o, "\n{}", log.text());
        }
        if self.discrepancies.is_empty() {
            let _ =
                writeln!(o, "\nNo discrepancies: every payout matches its receipts, its lane and the chain's events.");
        } else {
            let _ = writeln!(o, "\n{} discrepancies:", self.discrepancies.len());
            for d in &self.discrepancies {
                let _ = writeln!(o, "  {}", describe(d));
            }
        }
        o
    }
}

/// One line naming the block, the extrinsic and the claim of a discrepancy.
pub fn describe(d: &Discrepancy) -> String {
    let mut s = format!("block {}", d.block);
    if let Some(x) = d.extrinsic {
        let _ = write!(s, " extrinsic {x}");
    }
    if let Some(c) = &d.claim {
        let _ = write!(s, " claim {c}");
    }
    format!("{s}: {}", d.what)
}

/// `time_ms` (Unix milliseconds) as a UTC date and time to the minute.
fn utc(time_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(time_ms as i64)
        .map_or_else(|| format!("{time_ms} ms"), |t| t.format("%Y-%m-%d %H:%M").to_string())
}
