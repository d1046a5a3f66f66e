//! `ferry audit`: every payout rechecked from public data. The chain's blocks are read ([`read`]), each `settle`
//! call's receipts verified again and their payouts recomputed ([`check`]), and the totals reported per relay,
//! per lane and per content ([`report`]).

pub mod bill;
pub mod cache;
pub mod check;
#[cfg(test)]
mod fixtures;
pub mod ledger;
pub mod read;
pub mod relays;
pub mod report;

use std::path::Path;

use futures::StreamExt;

use cache::Cache;
use check::{check_block, Checked, Line};
use read::{ChainSource, Keys, ReadError};
pub use report::Report;

/// Blocks read at once.
const PARALLEL_BLOCKS: usize = 8;
/// The cache is written every this many blocks, so an interrupted audit resumes near where it stopped.
const SAVE_EVERY: u32 = 1_000;

/// Rechecks every settlement in blocks `from..=to`, calling `progress` once per block done. With a cache, blocks
/// it already checked are taken from it (when `from` is 1) and what is checked now is added to it.
pub async fn audit_chain(
    source: &ChainSource,
    from: u32,
    to: u32,
    cache: Option<&Path>,
    progress: impl Fn(u32),
) -> Result<Report, AuditError> {
    let rules = source.rules().await?;
    let mut report = Report::new(rules.genesis, from, to);
    let mut kept = cache.filter(|_| from == 1).map(|path| (Cache::load(path, rules.genesis), path));
    if let Some((c, path)) = &mut kept {
        // A cache of a chain that shares this genesis (dev chains made from one spec do) names a block this one
        // lacks or hashes differently.
        let same_chain = c.checked_to == 0
            || (c.checked_to <= to
                && source.block_hash(c.checked_to).await.is_ok_and(|h| hex::encode(h) == c.last_hash));
        if !same_chain {
            *c = Cache::empty(rules.genesis);
            tracing::info!(cache = %path.display(), "the audit cache is of another chain or of later blocks; starting over");
        }
    }
    let mut next = from;
    if let Some((c, _)) = &kept {
        let upto = c.checked_to.min(to);
        let take = |l: &Line| l.block <= upto;
        report.add(Checked {
            hash: [0; 32],
            lines: c.lines.iter().filter(|l| take(l)).cloned().collect(),
            tips: c.tips.iter().filter(|t| t.block <= upto).cloned().collect(),
            refused: c.refused.iter().filter(|r| r.block <= upto).cloned().collect(),
            discrepancies: c.discrepancies.iter().filter(|d| d.block <= upto).cloned().collect(),
        });
        for n in from..=upto {
            progress(n);
        }
        next = upto + 1;
    }
    let mut blocks = futures::stream::iter(next..=to)
        .map(|n| async move {
            let block = source.block(n).await?;
            if block.extrinsics.iter().all(|x| x.settle.is_none() && x.tip.is_none()) {
                return Ok::<_, ReadError>(Checked { hash: block.hash, ..Checked::default() });
            }
            let keys = Keys::of_block(&block);
            let before = source.state(n.saturating_sub(1), &keys).await?;
            let after = source.state(n, &keys).await?;
            Ok(check_block(&block, &before, &after, rules))
        })
        .buffered(PARALLEL_BLOCKS);
    let mut n = next;
    while let Some(checked) = blocks.next().await {
        let checked = checked?;
        if let Some((c, path)) = &mut kept {
            if n == c.checked_to + 1 {
                c.add(n, checked.hash, &checked);
                if n.is_multiple_of(SAVE_EVERY) {
                    c.save(path)?;
                }
            }
        }
        report.add(checked);
        progress(n);
        n += 1;
    }
    if let Some((c, path)) = &kept {
        c.save(path)?;
    }
    report.finish();
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
}
