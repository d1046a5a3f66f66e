//! `ferry audit --relay MULTIADDR`: a relay's published receipt log against the chain. It shows what the relay
//! acknowledged and has not settled yet, and what the chain settled that the relay no longer shows; a relay that
//! answers with receipts that do not verify, or with more paid than the chain paid, is named.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use ferry_primitives::{AccountId, Balance};
use futures::AsyncWriteExt;
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

use super::check::{admissible, ClaimKey, ClaimPaid, Rules};
use super::ledger::Problem;
use crate::identity::account_hex;
use crate::p2p::frame::{read_frame, write_frame};
use crate::p2p::protocol::{LogEntry, LogFilter, LogReply, LogRequest, LOG_PROTOCOL, MAX_LOG_FRAME, MAX_LOG_PAGE};

/// Most entries read from one relay: a relay that pages on and on is cut off here.
const MAX_LOG_ENTRIES: usize = 1_000_000;
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("relay {0} did not answer the receipt log protocol: {1}")]
    Stream(String, String),
    #[error("relay {0} refused to list its receipts: {1}")]
    Refused(String, String),
    #[error("relay {0}'s peer id holds no ed25519 key, so it names no account")]
    NoAccount(String),
}

/// The account a peer id proves: Ferry's peer ids are its accounts' ed25519 keys.
pub fn account_of(peer: &PeerId) -> Option<AccountId> {
    let key = libp2p::identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// Every entry of the relay's receipt log, page by page.
pub async fn fetch_log(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    name: &str,
) -> Result<Vec<LogEntry>, LogError> {
    let failed = |e: String| LogError::Stream(name.to_string(), e);
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = async {
            let mut s = control.open_stream(peer, LOG_PROTOCOL).await.map_err(|e| failed(e.to_string()))?;
            let req = LogRequest { filter: LogFilter::All, after, limit: MAX_LOG_PAGE };
            write_frame(&mut s, &req).await.map_err(|e| failed(e.to_string()))?;
            let reply: LogReply = read_frame(&mut s, MAX_LOG_FRAME).await.map_err(|e| failed(e.to_string()))?;
            let _ = s.close().await;
            Ok::<_, LogError>(reply)
        };
        let reply =
            tokio::time::timeout(PAGE_TIMEOUT, page).await.map_err(|_| failed("no answer in 20 s".into()))??;
        let (page, more) = match reply {
            LogReply::Page { entries, more } => (entries, more),
            LogReply::Refused { code, reason } => {
                return Err(LogError::Refused(name.to_string(), format!("{code}: {reason}")))
            }
        };
        let Some(last) = page.last().map(|e| e.latest.receipt.claim) else { break };
        if after.is_some_and(|a| last <= a) {
            return Err(failed("its pages do not advance".into()));
        }
        after = Some(last);
        entries.extend(page);
        if !more || entries.len() >= MAX_LOG_ENTRIES {
            break;
        }
    }
    Ok(entries)
}

#[derive(Debug, Clone, Serialize)]
pub struct RelayLog {
    /// The address asked, and the relay's account.
    pub relay: String,
    pub account: String,
    pub claims: usize,
    /// Acknowledged by the relay and not (yet) settled: claim → owed.
    pub unsettled: BTreeMap<String, String>,
    /// Claims the chain settled that the relay's log does not show, or shows at an older receipt.
    pub missing: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Checks a relay's log against the chain's claims for it (all of them, at one block).
pub fn check_log(
    name: &str,
    relay: AccountId,
    entries: &[LogEntry],
    on_chain: &HashMap<ClaimKey, ClaimPaid>,
    rules: Rules,
) -> RelayLog {
    let mut out = RelayLog {
        relay: name.to_string(),
        account: account_hex(&relay),
        claims: entries.len(),
        unsettled: BTreeMap::new(),
        missing: Vec::new(),
        problems: Vec::new(),
    };
    let mut shown: HashMap<ClaimKey, u64> = HashMap::new();
    for e in entries {
        let r = &e.latest.receipt;
        let problem = |what: String| Problem {
            claim: hex::encode(r.claim),
            party: account_hex(&r.viewer),
            what: format!("relay {name} {what}"),
        };
        let key = (relay, r.viewer, r.claim);
        let chain = on_chain.get(&key).copied();
        // Checked as the chain would check it: against nothing settled (a relay's own receipt must stand alone),
        // then against what the chain settled.
        if let Err(why) = admissible(&e.latest, &relay, None, &rules) {
            out.problems.push(problem(format!("answered with a receipt that {why}")));
            continue;
        }
        shown.insert(key, r.seq);
        let paid = chain.map_or(0, |c| c.amount_paid + c.tip_paid);
        if let Some((seq, amount)) = e.settled {
            if amount > paid {
                out.problems
                    .push(problem(format!("says seq {seq} was paid {amount}; the chain has paid the claim {paid}")));
            }
        }
        match chain {
            Some(c) if r.seq < c.seq => out.missing.push(hex::encode(r.claim)),
            Some(c)
                if r.seq == c.seq && (r.amount != c.amount || r.tip != c.tip || e.latest.signature != c.signature) =>
            {
                out.problems.push(problem(format!("shows seq {} other than the chain settled it", r.seq)));
            }
            _ => {
                let owed: Balance = (r.amount + r.tip).saturating_sub(paid);
                if owed > 0 {
                    out.unsettled.insert(hex::encode(r.claim), owed.to_string());
                }
            }
        }
    }
    for key in on_chain.keys() {
        if !shown.contains_key(key) {
            out.missing.push(hex::encode(key.2));
        }
    }
    out.missing.sort();
    out
}

/// Dials `addr` on `client`'s network and returns the peer.
pub async fn dial(client: &crate::p2p::Client, addr: &Multiaddr) -> Result<PeerId, LogError> {
    client.dial(addr).await.map_err(|e| LogError::Stream(addr.to_string(), e.to_string()))
}

impl RelayLog {
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Receipt log of relay {} (account {}): {} claims", self.relay, self.account, self.claims);
        if !self.unsettled.is_empty() {
            let total: Balance = self.unsettled.values().filter_map(|v| v.parse::<Balance>().ok()).sum();
            let _ = writeln!(o, "  acknowledged and not yet settled: {} claims, {total} owed", self.unsettled.len());
        }
        if !self.missing.is_empty() {
            let _ = writeln!(o, "  settled on chain and missing from the log: {}", self.missing.join(", "));
        }
        for p in &self.problems {
            let _ = writeln!(o, "  problem: claim {} (viewer {}): {}", p.claim, p.party, p.what);
        }
        o
    }

    /// Whether the log and the chain agree: nothing missing, nothing wrong.
    pub fn clean(&self) -> bool {
        self.missing.is_empty() && self.problems.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::*;

    fn settled(e: &LogEntry) -> HashMap<ClaimKey, ClaimPaid> {
        let r = &e.latest.receipt;
        let c = ClaimPaid {
            seq: r.seq,
            bytes: r.bytes,
            amount: r.amount,
            tip: r.tip,
            chunk_chain: r.chunk_chain,
            signature: e.latest.signature,
            amount_paid: r.amount,
            tip_paid: r.tip,
        };
        HashMap::from([((RELAY, r.viewer, r.claim), c)])
    }

    #[test]
    fn a_log_that_matches_the_chain_is_clean_and_an_unsettled_receipt_is_owed() {
        let e = LogEntry { latest: receipt(1_000, 0, &VIEWER_KEY), settled: Some((1, 1_000)), refused: None };
        let log = check_log("r", RELAY, std::slice::from_ref(&e), &settled(&e), RULES);
        assert!(log.clean() && log.unsettled.is_empty(), "{log:?}");
        let log = check_log("r", RELAY, &[LogEntry { settled: None, ..e }], &HashMap::new(), RULES);
        assert!(log.clean(), "{log:?}");
        assert_eq!(log.unsettled.values().collect::<Vec<_>>(), ["1000"]);
    }

    #[test]
    fn a_settled_claim_the_log_leaves_out_is_missing_and_a_forged_entry_is_named() {
        let e = LogEntry { latest: receipt(1_000, 0, &VIEWER_KEY), settled: None, refused: None };
        let log = check_log("r", RELAY, &[], &settled(&e), RULES);
        assert_eq!(log.missing, [hex::encode(e.latest.receipt.claim)]);
        let forged = LogEntry { latest: receipt(1_000, 0, &[6; 32]), settled: None, refused: None };
        let log = check_log("r", RELAY, &[forged], &HashMap::new(), RULES);
        assert_eq!(log.problems.len(), 1);
        assert!(log.problems[0].what.starts_with("relay r answered with a receipt that does not verify"));
        let boastful = LogEntry { settled: Some((1, 5_000)), ..e.clone() };
        let log = check_log("r", RELAY, &[boastful], &settled(&e), RULES);
        assert_eq!(log.problems.len(), 1, "{log:?}");
    }

    #[test]
    fn a_peer_id_names_its_account() {
        let id = crate::identity::Identity::from_secret([5; 32]);
        assert_eq!(account_of(&id.peer_id), Some(id.account));
    }
}
