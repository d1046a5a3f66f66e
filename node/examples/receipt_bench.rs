//! Receipts per second through a relay's receipt path without the network: the ed25519 check (batched across
//! sessions, as the relay does), then the ledger's
//! group commit (redb, fsync) that must finish before the relay acknowledges. Sessions run concurrently. Each keeps
//! up to IN_FLIGHT receipts unacknowledged, as a viewer does within its credit window (8 for the default 2 MiB of
//! 256 KiB chunks; 1 is the old one-at-a-time relay). Viewers sign ahead of time, so signing is not counted.
//! With RATE (receipts a second, all sessions together) each session sends at its share of that rate, as a viewer
//! does whose chunks arrive at its bitrate, and a receipt's latency counts from when it was due, so a relay that
//! falls behind is not excused; without it (or 0) sessions send as fast as they can.
//!
//!   cargo run --release --example receipt_bench -- [SESSIONS] [RECEIPTS_PER_SESSION] [IN_FLIGHT] [RATE]

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_node::money::ledger::{Ledger, Rejection};
use ferry_node::relay::signatures::Signatures;
use ferry_primitives::{amount_for, Domain, Receipt, SignedReceipt};

const PRICE_PER_MIB: u128 = 1_000_000;
const CHUNK: u64 = 256 << 10;

fn arg(n: usize, default: usize) -> Result<usize> {
    std::env::args().nth(n).map_or(Ok(default), |a| a.parse().with_context(|| format!("argument {n}: {a}")))
}

/// The receipts one viewer signs in one session of its claim, in order.
fn session_receipts(index: usize, count: usize) -> Vec<SignedReceipt> {
    let mut secret = [7u8; 32];
    secret[..8].copy_from_slice(&(index as u64).to_le_bytes());
    let viewer = ferry_primitives::signing::public_key(&secret);
    let claim = ferry_primitives::claim_id(&[2; 32], &viewer, &[3; 32]);
    (1..=count as u64)
        .map(|seq| {
            Receipt {
                domain: Domain([1; 32]),
                claim,
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
    let rate = arg(4, 0)?;
    // Between two receipts of one session; sessions start spread over one period.
    let period = (rate > 0).then(|| Duration::from_secs_f64(sessions as f64 / rate as f64));
    let home = tempfile::tempdir()?;
    let ledger = Ledger::open(home.path())?;
    let signatures = Signatures::start()?;
    eprintln!("signing {} receipts for {sessions} sessions", sessions * per_session);
    let work: Vec<Vec<SignedReceipt>> = (0..sessions).map(|i| session_receipts(i, per_session)).collect();

    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, receipts) in work.into_iter().enumerate() {
        let ledger = ledger.clone();
        let signatures = signatures.clone();
        let mut due = start + period.map_or(Duration::ZERO, |p| p.mul_f64(index as f64 / sessions as f64));
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(receipts.len());
            let mut waiting = std::collections::VecDeque::new();
            let mut receipts = receipts.into_iter().peekable();
            while receipts.peek().is_some() || !waiting.is_empty() {
                let can_send = waiting.len() < in_flight && receipts.peek().is_some();
                tokio::select! {
                    biased;
                    done = async { waiting.front_mut().map(|(_, c): &mut (Instant, _)| c).unwrap().await }, if !waiting.is_empty() => {
                        let committed: Result<(), Rejection> = done?;
                        if let Err(rejected) = committed {
                            bail!("ledger refused a receipt: {}", rejected.reason);
                        }
                        let (t, _) = waiting.pop_front().context("a commit without its receipt")?;
                        latencies.push(t.elapsed());
                    }
                    _ = tokio::time::sleep_until(due.into()), if can_send => {
                        let r = receipts.next().context("no receipt left to send")?;
                        let t = match period {
                            Some(p) => {
                                let t = due;
                                due += p;
                                t
                            }
                            None => Instant::now(),
                        };
                        if !signatures.valid(&r).await {
                            bail!("receipt {} does not verify", r.receipt.seq);
                        }
                        waiting.push_back((t, Box::pin(ledger.submit(r).await?)));
                    }
                }
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
        "{n} receipts from {sessions} concurrent sessions, {in_flight} in flight each, {}, in {:.3} s: \
         {rate:.0} receipts/s; acknowledgement p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms \
         (receipts_per_s={rate:.0} p99_ms={p99:.2})",
        match period {
            Some(_) => format!("offered {} a second", arg(4, 0)?),
            None => "as fast as they can".to_string(),
        },
        elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        latencies[n - 1].as_secs_f64() * 1e3,
    );
    Ok(())
}
