//! `ferry relay`: serve verified video, collect receipts, fill the cache from other relays, and keep provider
//! records for everything held.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use ferry_primitives::Domain;
use libp2p::Multiaddr;

use crate::chain::Link;
use crate::fetch::Fetcher;
use crate::funding::Funding;
use crate::identity::Identity;
use crate::lanes::LaneBook;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::p2p::{self, NetEvent};
use crate::serve::{Limits, Money, Relay};
use crate::settle::Settler;
use crate::store::Store;

pub struct RelayOptions {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub price_per_mib: u128,
    /// Most this relay pays per MiB to fill its cache from another relay.
    pub max_upstream_price_per_mib: u128,
    pub credit_window: u64,
    pub cache_bytes: u64,
    pub metrics: Option<std::net::SocketAddr>,
    pub limits: Limits,
    pub domain: Domain,
    pub stall: Duration,
    pub fault_flip_after: Option<u64>,
    /// Settlement and lane checks; `None` runs without a chain (receipts accumulate in the ledger).
    pub chain: Option<ChainOptions>,
}

pub struct ChainOptions {
    pub link: Link,
    pub settle_every: Duration,
    pub settle_batch: usize,
    /// What a cache fill reserves for an upstream relay when it opens or tops up the lane to it.
    pub lane_amount: u128,
}

/// How often the store is scanned for newly published content.
const SCAN_EVERY: Duration = Duration::from_secs(1);

pub async fn run(
    home: &std::path::Path,
    identity: Identity,
    opts: RelayOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = Store::open(home, opts.cache_bytes).context("cannot open the content store")?;
    let ledger = Ledger::open(home).context("cannot open the receipt ledger")?;
    let metrics = Metrics::new();
    if let Some(addr) = opts.metrics {
        let bound = metrics.clone().serve(addr).await.with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!(%bound, "metrics at http://{bound}/metrics");
    }
    let (client, mut control, mut events) = p2p::start(&identity, true)?;
    for addr in &opts.listen {
        client.listen(addr.clone()).await.with_context(|| format!("cannot listen on {addr}"))?;
    }
    let fetcher = Fetcher::new(
        identity.clone(),
        client.clone(),
        control.clone(),
        store.clone(),
        ledger.clone(),
        opts.domain,
        opts.max_upstream_price_per_mib,
        opts.stall,
        opts.chain.as_ref().map(|c| Funding::new(c.link.clone(), identity.account, c.lane_amount)),
    );
    let mut boot = vec![];
    for addr in &opts.bootstrap {
        match client.dial(addr).await {
            Ok(peer) => boot.push(peer),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "bootstrap relay unreachable; continuing without it")
            }
        }
    }
    fetcher.set_bootstrap(boot);
    let book = match &opts.chain {
        Some(c) => {
            let owed = ledger.owed_by_viewer().await.context("cannot read the receipt ledger")?;
            Some(std::sync::Arc::new(LaneBook::new(c.link.clone(), identity.account, owed)))
        }
        None => None,
    };
    let relay = Relay::new(
        identity.account,
        opts.domain,
        opts.price_per_mib,
        opts.credit_window,
        store.clone(),
        ledger.clone(),
        metrics.clone(),
        fetcher,
        opts.limits,
        opts.fault_flip_after,
        opts.chain.as_ref().zip(book.clone()).map(|(c, book)| Money::new(book, c.link.clone())),
        client.hosts(),
    );
    relay.spawn_accept(&mut control).map_err(|e| anyhow::anyhow!("cannot accept streams: {e}"))?;
    tracing::info!(peer = %identity.peer_id, account = %crate::identity::account_hex(&identity.account), price_per_mib = opts.price_per_mib, "relay running");

    let settler = opts.chain.map(|c| {
        tracing::info!(chain = c.link.url(), every = ?c.settle_every, "settling receipts on chain");
        let s = Settler::new(
            ledger.clone(),
            c.link,
            metrics.clone(),
            home.to_path_buf(),
            c.settle_every,
            c.settle_batch,
            book.clone(),
        );
        tokio::spawn(s.run())
    });
    if settler.is_none() {
        tracing::warn!("no chain configured ([chain] url or FERRY_CHAIN): receipts are kept but not settled");
    }

    let mut provided = HashSet::new();
    let mut scan = tokio::time::interval(SCAN_EVERY);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            ev = events.recv() => match ev {
                Some(NetEvent::Listening(addr)) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{addr}");
                    let _ = out.flush();
                }
                Some(NetEvent::Announced { from, content }) => {
                    tracing::info!(%from, content = %hex::encode(content), "content announced");
                }
                None => anyhow::bail!("the network stopped unexpectedly"),
            },
            _ = scan.tick() => {
                metrics.cache_bytes.set(store.cached_bytes() as i64);
                match store.manifests() {
                    Ok(cids) => for cid in cids {
                        if provided.insert(cid) {
                            tracing::info!(content = %hex::encode(cid), "providing content");
                            client.provide(cid).await?;
                            client.announce(cid).await?;
                        }
                    },
                    Err(e) => tracing::error!(error = %e, "cannot list stored content"),
                }
            }
        }
    }
    tracing::info!("shutting down; flushing the ledger");
    if let Some(s) = settler {
        s.abort();
    }
    ledger.close().await.ok();
    Ok(())
}
