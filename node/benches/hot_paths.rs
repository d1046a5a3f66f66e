//! The data path's hot spots, each alone, so that a regression shows: verifying video in 16 KiB groups, signing and
//! checking a receipt, and the ledger's group commit (redb with fsync, in the system's temporary directory: run it
//! with TMPDIR on a real disk). `cargo bench -p ferry-node --bench hot_paths`.

use std::time::{Duration, Instant};

use bao_tree::io::outboard::{EmptyOutboard, PreOrderMemOutboard};
use bao_tree::io::sync::{decode_ranges, encode_ranges_validated};
use bao_tree::{BaoTree, ChunkRanges};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ferry_node::content::store::BLOCK_SIZE;
use ferry_node::money::ledger::Ledger;
use ferry_node::relay::signatures;
use ferry_primitives::{amount_for, Domain, Receipt, SignedReceipt};

/// One receipt's worth of video: the relay sends, and the viewer verifies, this much per signature.
const CHUNK: usize = 256 << 10;

fn receipt(viewer: usize, seq: u64) -> SignedReceipt {
    let mut secret = [9u8; 32];
    secret[..8].copy_from_slice(&(viewer as u64).to_le_bytes());
    let viewer = ferry_primitives::signing::public_key(&secret);
    Receipt {
        domain: Domain([1; 32]),
        claim: ferry_primitives::claim_id(&[2; 32], &viewer, &[3; 32]),
        relay: [2; 32],
        viewer,
        content: [3; 32],
        seq,
        bytes: seq * CHUNK as u64,
        amount: amount_for(seq * CHUNK as u64, 1_000),
        chunk_chain: [seq as u8; 32],
        tip: 0,
    }
    .sign(&secret)
}

fn verify(c: &mut Criterion) {
    let data: Vec<u8> = (0..CHUNK).map(|i| (i * 7 + i / 4096) as u8).collect();
    let outboard = PreOrderMemOutboard::create(&data, BLOCK_SIZE);
    let mut encoded = vec![];
    encode_ranges_validated(&data[..], &outboard, &ChunkRanges::all(), &mut encoded).expect("encodes");
    let tree = BaoTree::new(data.len() as u64, BLOCK_SIZE);
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.bench_function("256 KiB in 16 KiB groups", |b| {
        b.iter(|| {
            let mut out = vec![0u8; CHUNK];
            decode_ranges(&encoded[..], &ChunkRanges::all(), &mut out[..], EmptyOutboard { tree, root: outboard.root })
                .expect("verifies");
            out
        })
    });
    g.finish();
}

fn receipts(c: &mut Criterion) {
    let mut g = c.benchmark_group("receipt");
    let secret = [5u8; 32];
    let unsigned = receipt(0, 1).receipt;
    g.bench_function("sign", |b| b.iter(|| unsigned.clone().sign(&secret)));
    let signed = receipt(0, 1);
    g.bench_function("verify one (dalek, strict)", |b| b.iter(|| signed.verify().expect("valid")));
    let one = [signatures::item(&signed)];
    g.bench_function("verify one (zebra)", |b| b.iter(|| signatures::check(&one)));
    let many: Vec<_> = (0..512).map(|v| signatures::item(&receipt(v, 1))).collect();
    g.throughput(Throughput::Elements(many.len() as u64));
    g.bench_function("verify a batch of 512 (zebra)", |b| b.iter(|| signatures::check(&many)));
    g.finish();
}

fn ledger(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let home = tempfile::tempdir().expect("temporary directory");
    let ledger = rt.block_on(async { Ledger::open(home.path()) }).expect("ledger opens");
    let mut seq = 0u64;
    let mut g = c.benchmark_group("ledger");
    g.bench_function("commit one receipt", |b| {
        b.iter_batched(
            || {
                seq += 1;
                receipt(0, seq)
            },
            |r| rt.block_on(ledger.commit(r)).expect("commits").expect("accepted"),
            BatchSize::SmallInput,
        )
    });
    const GROUP: usize = 256;
    g.throughput(Throughput::Elements(GROUP as u64));
    let mut next = 0u64;
    g.bench_function("commit 256 sessions' receipts as one group", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                next += 1;
                let batch: Vec<_> = (0..GROUP).map(|v| receipt(1 + v, next)).collect();
                let start = Instant::now();
                rt.block_on(async {
                    let mut waits = vec![];
                    for r in batch {
                        waits.push(ledger.submit(r).await.expect("queued"));
                    }
                    for w in waits {
                        w.await.expect("commits").expect("accepted");
                    }
                });
                spent += start.elapsed();
            }
            spent
        })
    });
    g.finish();
    rt.block_on(ledger.close()).expect("ledger closes");
}

criterion_group!(benches, verify, receipts, ledger);
criterion_main!(benches);
