//! Receipts per second through a relay's receipt path without the network: the ed25519 check (batched across
//! sessions, as the relay does), then the ledger's
//! group commit (redb, fsync) that must finish before the relay acknowledges. Sessions run concurrently. Each keeps
//! up to IN_FLIGHT receipts unacknowledged, as a viewer does within its credit window (8 for the default 2 MiB of
//! 256 KiB chunks; 1 is the old one-at-a-time relay). Viewers sign ahead of time, so signing is not counted.
//!
//!   cargo run --release --example receipt_bench -- [SESSIONS] [RECEIPTS_PER_SESSION] [IN_FLIGHT]

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_node::money::ledger::Ledger;
use ferry_node::relay::signatures::Signatures;
use ferry_primitives::{amount_for, Domain, Receipt, SignedReceipt};

const PRICE_PER_MIB: u128 = 1_000_000;
const CHUNK: u64 = 256 << 10;

fn arg(n: usize, default: usize) -> Result<usize> {
    std::env::args().nth(n).map_or(Ok(default), |a| a.parse().with_context(|| format!("argument {n}: {a}")))
}

/// The receipts one viewer signs for one session, in order.
fn session_receipts(index: usize, count: usize) -> Vec<SignedReceipt> {
    let mut secret = [7u8; 32];
    secret[..8].copy_from_slice(&(index as u64).to_le_bytes());
    let viewer = ferry_primitives::signing::public_key(&secret);
    let mut session = [0u8; 16];
    session[..8].copy_from_slice(&(index as u64).to_le_bytes());
    (1..=count as u64)
        .map(|seq| {
            Receipt {
                domain: Domain([1; 32]),
                session,
                relay: [2; 32],
                viewer,
                content: [3; 32],
                seq,
                bytes: seq * CHUNK,
                amount: amount_for(seq * CHUNK, PRICE_PER_MIB),
                chunk_chain: [seq as u8; 32],
                tip: 0,
            }
            .sign(&secret)
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let sessions = arg(1, 256)?;
    let per_session = arg(2, 400)?;
    let in_flight = arg(3, 8)?.max(1);
    let home = tempfile::tempdir()?;
    let ledger = Ledger::open(home.path())?;
    let signatures = Signatures::start()?;
    eprintln!("signing {} receipts for {sessions} sessions", sessions * per_session);
    let work: Vec<Vec<SignedReceipt>> = (0..sessions).map(|i| session_receipts(i, per_session)).collect();

    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for receipts in work {
        let ledger = ledger.clone();
        let signatures = signatures.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(receipts.len());
            let mut waiting = std::collections::VecDeque::new();
            let mut receipts = receipts.into_iter();
            loop {
                if waiting.len() < in_flight {
                    if let Some(r) = receipts.next() {
                        let t = Instant::now();
                        if !signatures.valid(&r).await {
                            bail!("receipt {} does not verify", r.receipt.seq);
                        }
                        waiting.push_back((t, Box::pin(ledger.submit(r).await?)));
                        continue;
                    }
                }
                let Some((t, commit)) = waiting.pop_front() else { break };
                if let Err(rejected) = commit.await? {
                    bail!("ledger refused a receipt: {}", rejected.reason);
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(sessions * per_session);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = start.elapsed();
    ledger.close().await?;

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let n = latencies.len();
    let (rate, p99) = (n as f64 / elapsed.as_secs_f64(), pct(0.99).as_secs_f64() * 1e3);
    println!(
        "{n} receipts from {sessions} concurrent sessions, {in_flight} in flight each, in {:.3} s: {rate:.0} receipts/s; \
         acknowledgement p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms (receipts_per_s={rate:.0} p99_ms={p99:.2})",
        elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        latencies[n - 1].as_secs_f64() * 1e3,
    );
    Ok(())
}
