//! What an operator has earned: owed but not yet submitted (pending), submitted and waiting for finality (in
//! flight), and settled in finalized blocks.
//!
//! A running node holds its ledger open, so it also writes these figures to `earnings.json` in its home: a relay
//! with a chain after every settlement round, a relay without one and `ferry watch` every few seconds. `ferry
//! earnings` reads the ledger when it can and that file while the node runs.

use std::collections::HashSet;
use std::path::Path;

use ferry_primitives::{Balance, ClaimId};
use serde::{Deserialize, Serialize};

use crate::identity::account_hex;
use crate::money::ledger::{ClaimRecord, Ledger};

pub const EARNINGS_FILE: &str = "earnings.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earnings {
    /// Owed by receipts not yet submitted.
    #[serde(with = "decimal")]
    pub pending: Balance,
    /// Owed by receipts submitted and waiting for a finalized block.
    #[serde(with = "decimal")]
    pub in_flight: Balance,
    /// Owed by receipts the chain settled short, their lane having run dry; sent again once it holds funds.
    /// Absent from the file of a relay older than this field.
    #[serde(with = "decimal", default)]
    pub short: Balance,
    /// Paid by viewers' lanes for this relay's service (bytes and tips), as the chain's `Settled` events say.
    #[serde(with = "decimal")]
    pub settled: Balance,
    /// The operator's part of `settled` (the rest went to creators and the protocol fee).
    #[serde(with = "decimal")]
    pub operator_paid: Balance,
    pub claims: Vec<ClaimEarnings>,
    /// Unix seconds when these figures were taken.
    pub as_of: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimEarnings {
    pub claim: String,
    pub viewer: String,
    pub content: String,
    /// `pending`, `in flight`, `settled`, `short` (settled, with less paid than claimed) or `refused`.
    pub state: String,
    pub seq: u64,
    pub bytes: u64,
    #[serde(with = "decimal")]
    pub owed: Balance,
    #[serde(with = "decimal")]
    pub settled: Balance,
    #[serde(with = "decimal")]
    pub operator_paid: Balance,
    pub settled_seq: Option<u64>,
    pub block_number: Option<u32>,
    pub block_hash: Option<String>,
    /// Why the chain refused the latest receipt.
    pub error: Option<String>,
}

/// How often a process that settles nothing rewrites `earnings.json`.
pub const KEEP_WRITTEN_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl Earnings {
    pub fn from_claims(records: &[ClaimRecord], in_flight: &HashSet<ClaimId>) -> Earnings {
        let mut e = Earnings { as_of: now(), ..Earnings::default() };
        for rec in records {
            let r = &rec.latest.receipt;
            let done = rec.settled.as_ref();
            let settled = done.map_or(0, |s| s.amount);
            let outstanding = rec.owed();
            let state = if in_flight.contains(&r.claim) && (rec.is_pending() || rec.is_short()) {
                e.in_flight += outstanding;
                "in flight"
            } else if rec.is_short() {
                e.short += outstanding;
                "short"
            } else if rec.is_pending() {
                e.pending += outstanding;
                "pending"
            } else if rec.refused.as_ref().is_some_and(|x| x.seq == r.seq) {
                "refused"
            } else {
                "settled"
            };
            e.settled += settled;
            let operator_paid = done.map_or(0, |s| s.operator_paid);
            e.operator_paid += operator_paid;
            e.claims.push(ClaimEarnings {
                claim: hex::encode(r.claim),
                viewer: account_hex(&r.viewer),
                content: hex::encode(r.content),
                state: state.into(),
                seq: r.seq,
                bytes: r.bytes,
                owed: r.amount + r.tip,
                settled,
                operator_paid,
                settled_seq: done.map(|s| s.seq),
                block_number: done.map(|s| s.block_number),
                block_hash: done.map(|s| format!("0x{}", hex::encode(s.block_hash))),
                error: rec.refused.as_ref().map(|x| x.error.clone()),
            });
        }
        e
    }

    /// Replaces `home/earnings.json` atomically, so a reader never sees half a file.
    pub fn write(&self, home: &Path) -> std::io::Result<()> {
        let tmp = home.join(format!("{EARNINGS_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, home.join(EARNINGS_FILE))
    }

    /// Reads the ledger and writes `earnings.json`; a failure is logged, never fatal.
    pub async fn snapshot(ledger: &Ledger, in_flight: &HashSet<ClaimId>, home: &Path) -> Option<Earnings> {
        let claims = match ledger.claims().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the ledger for earnings");
                return None;
            }
        };
        let earnings = Earnings::from_claims(&claims, in_flight);
        if let Err(e) = earnings.write(home) {
            tracing::warn!(error = %e, home = %home.display(), "cannot write earnings.json");
        }
        Some(earnings)
    }

    /// For a process that holds the ledger and settles nothing (a relay without a chain, `ferry watch`): keeps
    /// `earnings.json` current, rewritten every [`KEEP_WRITTEN_EVERY`], so `ferry earnings` answers while it runs.
    pub async fn keep_written(ledger: Ledger, home: std::path::PathBuf) {
        let mut tick = tokio::time::interval(KEEP_WRITTEN_EVERY);
        loop {
            tick.tick().await;
            Earnings::snapshot(&ledger, &HashSet::new(), &home).await;
        }
    }

    pub fn read(home: &Path) -> std::io::Result<Option<Earnings>> {
        match std::fs::read(home.join(EARNINGS_FILE)) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Blocks that hold this relay's settlements, oldest first.
    pub fn blocks(&self) -> Vec<u32> {
        let mut b: Vec<u32> = self.claims.iter().filter_map(|s| s.block_number).collect();
        b.sort_unstable();
        b.dedup();
        b
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) mod decimal {
    /// Balances as decimal strings: JSON numbers lose precision above 2^53.
    pub fn serialize<S: serde::Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
