//! The relay's receipt log for auditors: the latest receipt of every claim it holds, with what it saw settled.
//! Public by design: receipts carry no more than the chain's `Settled` events, and auditors need the ones not yet
//! settled to see what a relay is owed.

use futures::AsyncWriteExt;
use libp2p::Stream;

use super::{Relay, ServeError};
use crate::money::ledger::ClaimRecord;
use crate::p2p::frame::{read_frame, write_frame};
use crate::p2p::protocol::*;

impl Relay {
    pub(super) async fn serve_log(&self, stream: &mut Stream) -> Result<(), ServeError> {
        let req: LogRequest = match read_frame(stream, MAX_CONTROL_FRAME).await {
            Ok(r) => r,
            Err(e) => return self.refuse_bad_frame(stream, e, |code, reason| LogReply::Refused { code, reason }).await,
        };
        let reply = match self.ledger.claims().await {
            Ok(records) => page(records, &req),
            Err(e) => {
                tracing::error!(error = %e, "ledger unavailable; cannot list receipts");
                LogReply::Refused { code: Code::Internal, reason: "relay ledger unavailable".into() }
            }
        };
        write_frame(stream, &reply).await?;
        stream.flush().await?;
        Ok(())
    }
}

/// The page of `records` that `req` asks for: its filter, in claim id order, after its cursor.
fn page(mut records: Vec<ClaimRecord>, req: &LogRequest) -> LogReply {
    records.retain(|rec| {
        let r = &rec.latest.receipt;
        let wanted = match req.filter {
            LogFilter::All => true,
            LogFilter::Content(c) => r.content == c,
            LogFilter::Viewer(v) => r.viewer == v,
        };
        wanted && req.after.is_none_or(|after| r.claim > after)
    });
    records.sort_by_key(|rec| rec.latest.receipt.claim);
    let limit = usize::from(req.limit.clamp(1, MAX_LOG_PAGE));
    let more = records.len() > limit;
    let entries = records
        .into_iter()
        .take(limit)
        .map(|rec| LogEntry {
            settled: rec.settled.map(|s| (s.seq, s.amount)),
            refused: rec.refused.map(|r| shorten(r.error)),
            latest: rec.latest,
        })
        .collect();
    LogReply::Page { entries, more }
}

/// The reason cut to [`MAX_LOG_REASON`] bytes, at a character boundary.
fn shorten(mut reason: String) -> String {
    let mut end = reason.len().min(MAX_LOG_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.truncate(end);
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_primitives::{Domain, Receipt};
    use parity_scale_codec::Encode;

    fn record(claim: u8, content: u8) -> ClaimRecord {
        let receipt = Receipt {
            domain: Domain::default(),
            claim: [claim; 16],
            relay: [1; 32],
            viewer: [2; 32],
            content: [content; 32],
            seq: u64::MAX,
            bytes: u64::MAX,
            amount: u128::MAX,
            chunk_chain: [0; 32],
            tip: u128::MAX,
        };
        ClaimRecord { latest: receipt.sign(&[5; 32]), settled: None, refused: None }
    }

    #[test]
    fn pages_follow_claim_ids_and_a_full_page_fits_its_frame() {
        let records: Vec<_> = (0..=255u8).rev().map(|c| record(c, c % 2)).collect();
        let ask = |filter, after, limit| page(records.clone(), &LogRequest { filter, after, limit });
        let LogReply::Page { entries, more } = ask(LogFilter::All, None, u16::MAX) else { panic!() };
        assert_eq!((entries.len(), more), (256, false));
        // The longest entry: every total at its maximum, and a refusal's reason.
        let entry = LogEntry {
            latest: records[0].latest.clone(),
            settled: Some((u64::MAX, u128::MAX)),
            refused: Some("x".repeat(200)),
        };
        let full = LogReply::Page { entries: vec![entry; usize::from(MAX_LOG_PAGE)], more: true };
        assert!(full.encode().len() <= MAX_LOG_FRAME, "a full page is {} bytes", full.encode().len());
        let LogReply::Page { entries, more } = ask(LogFilter::Content([1; 32]), Some([100; 16]), 10) else { panic!() };
        let ids: Vec<u8> = entries.iter().map(|e| e.latest.receipt.claim[0]).collect();
        assert_eq!(ids, [101, 103, 105, 107, 109, 111, 113, 115, 117, 119]);
        assert!(more);
    }
}
