//! What each account paid in fees and earned, as a relay (the operator's part of `Settled`) and as a creator, over
//! a range of finalized blocks, with the settlements and the claims they wrote on chain: the settlement
//! economics `scripts/bench` reports. One JSON object per account on stdout.
//!
//!   chain_money ws://127.0.0.1:9944 FROM_BLOCK [TO_BLOCK]     (TO_BLOCK: the latest finalized one)

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use ferry_node::chain::Chain;
use ferry_primitives::{AccountId, Balance, ContentId};

#[derive(Default)]
struct Figures {
    fees: Balance,
    operator_paid: Balance,
    creator_paid: Balance,
    /// Blocks with a settlement by this relay: one `settle` transaction each.
    settle_blocks: BTreeSet<u32>,
    /// Sessions this relay settled: the chain keeps an entry for each.
    claims: BTreeSet<(AccountId, [u8; 16])>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, from, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: chain_money WS_URL FROM_BLOCK [TO_BLOCK]");
    };
    // Reads only; the key signs nothing.
    let chain = Chain::connect(url, &[0; 32]).await?;
    let from: u32 = from.parse().context("FROM_BLOCK")?;
    let to: u32 = match rest.first() {
        Some(t) => t.parse().context("TO_BLOCK")?,
        None => chain.finalized_number().await?,
    };
    let mut by: BTreeMap<AccountId, Figures> = BTreeMap::new();
    let mut creators: HashMap<ContentId, AccountId> = HashMap::new();
    for n in from..=to {
        let m = chain.block_money(n).await?;
        for (who, fee) in m.fees {
            by.entry(who).or_default().fees += fee;
        }
        for (relay, p) in m.settled {
            let creator = match creators.get(&p.content) {
                Some(c) => *c,
                None => {
                    let (c, _) = chain.content(p.content).await?.context("a settled content is registered")?;
                    creators.insert(p.content, c);
                    c
                }
            };
            by.entry(creator).or_default().creator_paid += p.creator_paid;
            let r = by.entry(relay).or_default();
            r.operator_paid += p.operator_paid;
            r.settle_blocks.insert(n);
            r.claims.insert((p.viewer, p.claim));
        }
    }
    for (who, f) in by {
        println!(
            "{{\"account\":\"0x{}\",\"fees\":\"{}\",\"operator_paid\":\"{}\",\"creator_paid\":\"{}\",\"settlements\":{},\"claims\":{}}}",
            hex::encode(who),
            f.fees,
            f.operator_paid,
            f.creator_paid,
            f.settle_blocks.len(),
            f.claims.len()
        );
    }
    Ok(())
}
