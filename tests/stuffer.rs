//! A block stuffer: an attacker that fills the normal space of every block with one remark at a tip, so that no
//! settlement fits beside it unless its priority beats the remark's (THREATS.md, "Censorship by block stuffing").
//!
//! It needs the real node: only a real transaction pool orders transactions by priority.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_node::chain::{runtime, Ed25519Signer};
use subxt::config::polkadot::PolkadotExtrinsicParamsBuilder;
use subxt::transactions::ValidationResult;
use subxt::{OnlineClient, PolkadotConfig};

use crate::{block_on, runtime as tokio_runtime, Home, TestChain};

/// What the stuffer leaves free in each block: less than any `settle` transaction (one receipt alone is 288
/// bytes), so none fits beside its remark.
const ROOM: usize = 100;
/// Remarks signed and in the pool ahead of the chain, so that every block finds one ready even when signing one
/// (a debug build, on a machine busy with other tests) takes longer than a block. Four fill 16 MB of the pool's 20.
const AHEAD: u64 = 4;

/// What the stuffer saw of one block.
#[derive(Debug, Clone)]
pub struct Seen {
    pub number: u64,
    /// Its remark is in the block.
    pub stuffed: bool,
    /// Claims settled in the block.
    pub settles: usize,
}

pub struct Stuffer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Stuffer {
    /// Starts stuffing every block from `home`'s account, each remark with `tip`.
    pub fn start(chain: &TestChain, home: &Home, tip: u128) -> Result<Stuffer> {
        let id = ferry_node::identity::Identity::load(&home.dir)?;
        let signer = Ed25519Signer::new(id.secret());
        let api = block_on(OnlineClient::<PolkadotConfig>::from_url(&chain.url)).context("stuffer connects")?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio_runtime().spawn(stuff(api, signer, tip, stop.clone(), seen.clone()));
        Ok(Stuffer { stop, seen, task })
    }

    /// What it saw so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `n` blocks in a row carried its remark.
    pub fn wait_stuffing(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let seen = self.seen();
            if seen.len() >= n && seen[seen.len() - n..].iter().all(|s| s.stuffed) {
                return Ok(());
            }
            if self.task.is_finished() {
                bail!("the stuffer stopped: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("the stuffer did not fill {n} blocks in a row within {timeout:?}: {:?}", self.seen())
    }

    /// Waits until it has filled a block after block `after`.
    pub fn wait_filled_after(&self, after: u64, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.seen().iter().any(|s| s.number > after && s.stuffed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("the stuffer filled no block after {after} within {timeout:?}: {:?}", self.seen())
    }

    /// Stops it, and returns every block it saw.
    pub fn stop(self) -> Result<Vec<Seen>> {
        self.stop.store(true, Ordering::Relaxed);
        block_on(self.task).context("stuffer task")??;
        Ok(self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn remark(payload: usize) -> impl subxt::transactions::Payload {
    runtime::transactions().system().remark_with_event(vec![0; payload])
}

/// The largest remark payload the pool accepts now, found by asking the runtime to validate candidates.
async fn largest_remark(api: &OnlineClient<PolkadotConfig>, signer: &Ed25519Signer, nonce: u64) -> Result<usize> {
    let (mut fits, mut too_big) = (1024usize, 5 * 1024 * 1024);
    while too_big - fits > 16 {
        let mid = (fits + too_big) / 2;
        let at = api.at_current_block().await?;
        let params = PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().nonce(nonce).build();
        let tx = at.transactions().create_signed(&remark(mid), signer, params).await?;
        match tx.validate().await? {
            ValidationResult::Valid(_) => fits = mid,
            _ => too_big = mid,
        }
    }
    Ok(fits)
}

async fn stuff(
    api: OnlineClient<PolkadotConfig>,
    signer: Ed25519Signer,
    tip: u128,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<()> {
    let account = subxt::transactions::Signer::<PolkadotConfig>::account_id(&signer);
    let start = api.at_current_block().await?;
    let next = start.transactions().account_nonce(&account).await?;
    // Whatever else a block carries (the inherents) shares its length with the remark, so the remark is the
    // largest the pool takes less what a block's inherents were, less the room left.
    let mut inherents = 0;
    for x in start.extrinsics().fetch().await?.iter() {
        let x = x?;
        if !x.is_signed() {
            inherents += x.bytes().len();
        }
    }
    let payload = largest_remark(&api, &signer, next).await? - inherents - ROOM;
    eprintln!("stuffer: remarks of {payload} bytes (inherents {inherents})");
    // The watcher reads each best block's events; the feeder keeps remarks queued. Apart, so that reading blocks
    // never delays the next remark.
    let (best, mut best_rx) = tokio::sync::watch::channel(None);
    let feeder = {
        let (api, stop) = (api.clone(), stop.clone());
        tokio::spawn(async move {
            let mut next = next;
            while !stop.load(Ordering::Relaxed) {
                if tokio::time::timeout(Duration::from_secs(1), best_rx.changed()).await.is_err() {
                    continue;
                }
                let Some(hash) = *best_rx.borrow_and_update() else { continue };
                let mut txs = api.at_block(hash).await?.transactions();
                let on_chain = txs.account_nonce(&account).await?;
                next = next.max(on_chain);
                while next < on_chain + AHEAD {
                    let params = PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().tip(tip).nonce(next).build();
                    let tx = txs.create_signed(&remark(payload), &signer, params).await?;
                    tx.submit().await.context("stuffer submits")?;
                    next += 1;
                }
            }
            anyhow::Ok(())
        })
    };
    let mut blocks = api.stream_best_blocks().await?;
    while !stop.load(Ordering::Relaxed) && !feeder.is_finished() {
        let Ok(block) = tokio::time::timeout(Duration::from_secs(1), blocks.next()).await else { continue };
        let block = block.context("the best-block stream ended")??;
        best.send_replace(Some(block.hash()));
        let events = block.at().await?.events().fetch().await?;
        let mut stuffed = false;
        for ev in events.find::<runtime::system::events::Remarked>() {
            stuffed |= ev?.sender.0 == account.0;
        }
        let settles = events.find::<runtime::ferry::events::Settled>().count();
        seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen { number: block.number(), stuffed, settles });
    }
    stop.store(true, Ordering::Relaxed);
    feeder.await.context("stuffer feeder")?
}
