//! Receipt signatures, checked together. Checking threads take the signatures queued by any session and check them in
//! ed25519 batches, which cost much less per signature than checking each alone. It uses ed25519-zebra, the
//! library and rules (ZIP-215) of the chain's own check, so the relay accepts exactly the signatures the chain
//! accepts. A batch that fails is checked one signature at a time, so a forged receipt fails alone.

use std::sync::{Arc, Mutex};

use ed25519_zebra::{batch, Signature, VerificationKeyBytes};
use ferry_primitives::SignedReceipt;
use tokio::sync::{mpsc, oneshot};

/// Most signatures in one batch.
const MAX_BATCH: usize = 512;

struct Job {
    item: batch::Item,
    valid: oneshot::Sender<bool>,
}

/// Cheap-clone handle to the checking thread; it stops when the last handle is dropped.
#[derive(Clone)]
pub struct Signatures {
    tx: mpsc::Sender<Job>,
}

impl Signatures {
    /// Starts one checking thread per core (at most four): each takes the next batch while the others check theirs.
    pub fn start() -> std::io::Result<Signatures> {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("signatures-{i}")).spawn(move || run(&rx))?;
        }
        Ok(Signatures { tx })
    }

    /// Whether the receipt is signed by the viewer it names.
    pub async fn valid(&self, signed: &SignedReceipt) -> bool {
        let (valid, answer) = oneshot::channel();
        if self.tx.send(Job { item: item(signed), valid }).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

/// What the batch verifier checks for one receipt.
pub fn item(signed: &SignedReceipt) -> batch::Item {
    let key = VerificationKeyBytes::from(signed.receipt.viewer);
    batch::Item::from((key, Signature::from_bytes(&signed.signature), &signed.receipt.signing_payload()))
}

/// Whether each signature is valid: all at once, and one at a time only when the batch fails.
pub fn check(items: &[batch::Item]) -> Vec<bool> {
    let all_valid = items.len() > 1 && {
        let mut verifier = batch::Verifier::new();
        for item in items {
            verifier.queue(item.clone());
        }
        verifier.verify(rand::thread_rng()).is_ok()
    };
    items.iter().map(|item| all_valid || item.clone().verify_single().is_ok()).collect()
}

fn run(rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let jobs = {
            let mut rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            let Some(first) = rx.blocking_recv() else { return };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        let items: Vec<batch::Item> = jobs.iter().map(|j| j.item.clone()).collect();
        for (job, valid) in jobs.into_iter().zip(check(&items)) {
            let _ = job.valid.send(valid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_primitives::{Domain, Receipt};

    fn receipt(seed: u8, seq: u64) -> SignedReceipt {
        let secret = [seed; 32];
        Receipt {
            domain: Domain([1; 32]),
            claim: [2; 16],
            relay: [3; 32],
            viewer: ferry_primitives::signing::public_key(&secret),
            content: [4; 32],
            seq,
            bytes: seq * 1000,
            amount: u128::from(seq),
            chunk_chain: [5; 32],
            tip: 0,
        }
        .sign(&secret)
    }

    /// Many at once, so they share batches; every forged one is found, and every good one passes, as the
    /// one-at-a-time check says.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_finds_exactly_the_forged_signatures() {
        let s = Signatures::start().unwrap();
        let mut all = Vec::new();
        for i in 0..300u64 {
            let mut r = receipt((i % 7) as u8 + 1, i + 1);
            if i % 37 == 5 {
                r.signature[10] ^= 1;
            }
            if i % 53 == 9 {
                r.receipt.bytes += 1;
            }
            all.push(r);
        }
        let checks = all.iter().map(|r| {
            let s = s.clone();
            async move { s.valid(r).await }
        });
        let got = futures::future::join_all(checks).await;
        for (r, valid) in all.iter().zip(got) {
            assert_eq!(valid, r.verify().is_ok(), "receipt {} disagrees with the single check", r.receipt.seq);
        }
        assert!(all.iter().filter(|r| r.verify().is_err()).count() >= 10, "the test forged some");
    }
}
