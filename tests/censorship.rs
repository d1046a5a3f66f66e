//! Censorship by block stuffing, end to end on the real node (THREATS.md, "Censorship by block stuffing").
//!
//! Its own binary, which `scripts/test` runs alone: the stuffer fills every block only when it and the node have the
//! machine's cores to themselves.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use ferry_primitives::Balance;
use ferry_tests::*;

/// The stuffer's tip on each remark: 20 times the 50,000 that once kept every settlement out of 61 blocks, and
/// thousands of times what an untipped `settle` weighs in the pool (`(tip + 1) × n`, n about 130 by its weight).
/// It stays below what the relay's tip (at most a tenth of the claim, 326,452 here) weighs: a stuffer that outbids
/// that too is bounded by the relay's age rule instead (THREATS.md).
const STUFFER_TIP: Balance = 1_000_000;

/// Censorship by block stuffing: an attacker fills the normal space of every block with one remark at a high tip,
/// so that a settlement sent without a tip never fits beside it. The relay sends it again with a doubling tip, which
/// the pool weighs per byte against the remark's, and it lands while the stuffer goes on filling the blocks around
/// it. Blocks come every 3 s so that the stuffer, a debug build, signs its 4 MB remarks in time for every one.
#[test]
fn a_block_stuffer_cannot_keep_a_relays_settlement_out() -> Result<()> {
    let solo = Solo::new(TestChain::node_with_blocks_every(3000)?, 1000)?;
    let attacker = Home::dev(solo._root.path(), "stuffer", "operator", 1000)?;
    let stuffer = stuffer::Stuffer::start(&solo.chain, &attacker, STUFFER_TIP)?;
    stuffer.wait_stuffing(3, Duration::from_secs(120))?;
    let (relay, addr) = relay_on(&solo.chain, &solo.creator, &[])?;
    play(&solo.chain, &solo.viewer, &solo.cid, &addr, 6)?;
    let settled = solo.creator.wait_settled(1, Duration::from_secs(300));
    let landed = settled.as_ref().ok().and_then(|e| e["claims"][0]["block_number"].as_u64());
    let filled_after = landed.map(|n| stuffer.wait_filled_after(n, Duration::from_secs(30)));
    let seen = stuffer.stop()?;
    relay.stop()?;
    settled.with_context(|| format!("blocks the stuffer saw: {seen:?}\nrelay:\n{}", solo.creator.log("relay")))?;
    let landed = landed.context("settled claim has a block")?;
    let log = solo.creator.log("relay");
    ensure!(
        log.contains("did not get into a block; sending it with a tip"),
        "sent without a tip and landed in block {landed}; blocks the stuffer saw: {seen:?}"
    );
    // From the first block the stuffer filled to the settlement's, it filled every one but the settlement's.
    let first = seen.iter().find(|s| s.stuffed).context("the stuffer filled no block")?.number;
    let window: Vec<_> = seen.iter().filter(|s| (first..=landed).contains(&s.number)).collect();
    let missed: Vec<u64> = window.iter().filter(|s| !s.stuffed && s.settles == 0).map(|s| s.number).collect();
    ensure!(window.len() >= 10, "the settlement landed {} blocks after stuffing began", window.len());
    ensure!(missed.is_empty(), "the stuffer left blocks {missed:?} free of {}: {seen:?}", window.len());
    ensure!(window.iter().any(|s| s.number == landed && s.settles > 0), "the settlement's block: {seen:?}");
    filled_after.context("the stuffer went on")??;
    Ok(())
}
