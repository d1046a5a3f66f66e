//! A block stuffer: an attacker that fills the normal space of every block with one remark at a tip, so that no
//! settlement fits beside it unless its priority beats the remark's (THREATS.md, "Censorship by block stuffing").
//!
//! It needs the real node: only a real transaction pool orders transactions by priority.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_node::chain::{runtime, Ed25519Signer};
use subxt::config::polkadot::PolkadotExtrinsicParamsBuilder;
use subxt::{OnlineClient, PolkadotConfig};

use crate::{block_on, runtime as tokio_runtime, Home, TestChain};

/// The runtime's block length for normal transactions: 75% of 5 MiB.
const NORMAL_LENGTH: usize = 5 * 1024 * 1024 * 3 / 4;
/// What the stuffer leaves free in each block: less than any `settle` transaction (one receipt alone is 288
/// bytes), so none fits beside its remark.
const ROOM: usize = 100;

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
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Stuffer {
    /// Starts stuffing every block from `home`'s account, each remark with `tip`.
    pub fn start(chain: &TestChain, home: &Home, tip: u128) -> Result<Stuffer> {
        let id = ferry_node::identity::Identity::load(&home.dir)?;
        let signer = Ed25519Signer::new(id.secret());
        let api = block_on(OnlineClient::<PolkadotConfig>::from_url(&chain.url)).context("stuffer connects")?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
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

    /// Stops it, and returns every block it saw.
    pub fn stop(self) -> Result<Vec<Seen>> {
        self.stop.store(true, Ordering::Relaxed);
        block_on(self.task).context("stuffer task")??;
        Ok(self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

async fn stuff(
    api: OnlineClient<PolkadotConfig>,
    signer: Ed25519Signer,
    tip: u128,
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
) -> Result<()> {
    let account = subxt::transactions::Signer::<PolkadotConfig>::account_id(&signer);
    let mut blocks = api.stream_best_blocks().await?;
    let mut next_nonce: Option<u64> = None;
    let mut payload: Option<usize> = None;
    while !stop.load(Ordering::Relaxed) {
        let Ok(block) = tokio::time::timeout(Duration::from_secs(1), blocks.next()).await else { continue };
        let block = block.context("the best-block stream ended")??;
        let at = block.at().await?;
        let events = at.events().fetch().await?;
        let mut stuffed = false;
        for ev in events.find::<runtime::system::events::Remarked>() {
            stuffed |= ev?.sender.0 == account.0;
        }
        let settles = events.find::<runtime::ferry::events::Settled>().count();
        seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen { number: block.number(), stuffed, settles });
        let mut txs = at.transactions();
        let on_chain = txs.account_nonce(&account).await?;
        let next = next_nonce.get_or_insert(on_chain);
        *next = (*next).max(on_chain);
        let payload = match payload {
            Some(p) => p,
            None => {
                let extrinsics = at.extrinsics().fetch().await?;
                let mut inherents = 0;
                for x in extrinsics.iter() {
                    let x = x?;
                    if !x.is_signed() {
                        inherents += x.bytes().len();
                    }
                }
                // The remark's own framing (length, signature, extensions) is measured once on a small one.
                let probe = runtime::transactions().system().remark_with_event(vec![0; 1024]);
                let params = PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().tip(tip).nonce(*next).build();
                let framing = txs.create_signed(&probe, &signer, params).await?.encoded().len() - 1024;
                // A 4 MiB call needs 2 more bytes of length prefixes than a 1 KiB one.
                *payload.insert(NORMAL_LENGTH - inherents - framing - 2 - ROOM)
            }
        };
        // Two remarks queued at any time, so every block has one ready.
        while *next < on_chain + 2 {
            let call = runtime::transactions().system().remark_with_event(vec![0; payload]);
            let params = PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().tip(tip).nonce(*next).build();
            txs.create_signed(&call, &signer, params).await?.submit().await.context("stuffer submits")?;
            *next += 1;
        }
    }
    Ok(())
}
