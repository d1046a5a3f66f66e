//! Fills a stopped relay's ledger with `N` receipts for the audit benchmark (`scripts/bench audit`): one claim per
//! viewer (each its own key), seq 1, for one registered content, as if `N` viewers had each been given one chunk.
//! The viewers hold no lanes, so each receipt's amount is 0: it settles in full (paying nothing), and the relay
//! does not keep it as short, to be tried again.
//!
//!   audit_bench HOME CID GENESIS_HEX N

use anyhow::Context;
use ferry_node::identity::{parse_hex32, Identity};
use ferry_node::money::ledger::Ledger;
use ferry_primitives::{claim_id, Domain, Receipt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [home, cid, genesis, n] = args.as_slice() else {
        anyhow::bail!("usage: audit_bench HOME CID GENESIS_HEX N");
    };
    let home = std::path::Path::new(home);
    let relay = Identity::load(home)?.account;
    let content = parse_hex32(cid).context("CID")?;
    let domain = Domain(parse_hex32(genesis).context("GENESIS_HEX")?);
    let n: u32 = n.parse().context("N")?;
    let ledger = Ledger::open(home)?;
    // Queued without waiting for each commit, so they share fsyncs.
    let mut commits = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut secret = [9u8; 32];
        secret[..4].copy_from_slice(&i.to_le_bytes());
        let viewer = ferry_primitives::signing::public_key(&secret);
        let receipt = Receipt {
            domain,
            claim: claim_id(&relay, &viewer, &content),
            relay,
            viewer,
            content,
            seq: 1,
            bytes: 256 << 10,
            amount: 0,
            chunk_chain: [0; 32],
            tip: 0,
        }
        .sign(&secret);
        commits.push(ledger.submit(receipt).await?);
    }
    for commit in commits {
        commit.await?.map_err(|r| anyhow::anyhow!("the ledger refused a receipt: {}", r.reason))?;
    }
    ledger.close().await?;
    println!("{n}");
    Ok(())
}
