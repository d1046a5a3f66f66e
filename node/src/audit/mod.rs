//! `ferry audit`: every payout rechecked from public data. The chain's blocks are read ([`read`]), each `settle`
//! call's receipts verified again and their payouts recomputed ([`check`]), and the totals reported per relay,
//! per lane and per content ([`report`]).

pub mod bill;
pub mod check;
#[cfg(test)]
mod fixtures;
pub mod ledger;
pub mod read;
pub mod relays;
pub mod report;

use futures::StreamExt;

use check::{check_block, Checked};
use read::{ChainSource, Keys, ReadError};
pub use report::Report;

/// Blocks read at once.
const PARALLEL_BLOCKS: usize = 8;

/// Rechecks every settlement in blocks `from..=to`, calling `progress` once per block done.
pub async fn audit_chain(
    source: &ChainSource,
    from: u32,
    to: u32,
    progress: impl Fn(u32),
) -> Result<Report, ReadError> {
    let rules = source.rules().await?;
    let mut report = Report::new(rules.genesis, from, to);
    let mut blocks = futures::stream::iter(from..=to)
        .map(|n| async move {
            let block = source.block(n).await?;
            if block.extrinsics.iter().all(|x| x.settle.is_none()) {
                return Ok::<_, ReadError>(Checked::default());
            }
            let keys = Keys::of_block(&block);
            let before = source.state(n.saturating_sub(1), &keys).await?;
            let after = source.state(n, &keys).await?;
            Ok(check_block(&block, &before, &after, rules))
        })
        .buffered(PARALLEL_BLOCKS);
    let mut n = from;
    while let Some(checked) = blocks.next().await {
        report.add(checked?);
        progress(n);
        n += 1;
    }
    report.finish();
    Ok(report)
}
