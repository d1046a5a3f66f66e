//! `ferry watch`: find relays for a content id, verify and pay for what they serve, and hand the video to any
//! player through the local HLS gateway.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use ferry_primitives::{ContentId, Domain};
use libp2p::Multiaddr;

use crate::content::store::Store;
use crate::identity::Identity;
use crate::money::earnings::Earnings;
use crate::money::funding::Funding;
use crate::money::ledger::Ledger;
use crate::p2p;
use crate::viewer::fetch::Fetcher;

pub struct WatchOptions {
    pub bootstrap: Vec<Multiaddr>,
    /// Where relays behind NAT reach this viewer when they hole-punch.
    pub listen: Vec<Multiaddr>,
    pub gateway: SocketAddr,
    /// The gateway address is the default, not chosen: a port in use is replaced by a free one.
    pub gateway_anywhere: bool,
    pub max_price_per_mib: u128,
    pub stall: Duration,
    pub prefetch: usize,
    pub cache_bytes: u64,
    pub memory_cache_bytes: u64,
    pub domain: Domain,
    /// With a chain: opens and tops up lanes to the relays this viewer pays.
    pub funding: Option<Funding>,
}

/// Longest a stopping viewer waits for relays to answer its last receipts.
const RECEIPTS_ANSWERED: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn run(
    home: &std::path::Path,
    identity: Identity,
    cid: ContentId,
    opts: WatchOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = Store::open(home, opts.cache_bytes).context("cannot open the local video cache")?;
    store.set_memory_bytes(opts.memory_cache_bytes);
    let ledger = Ledger::open(home).context("cannot open the receipt ledger")?;
    let (client, control, _events) = p2p::start(&identity, p2p::NetConfig::viewer())?;
    // Never announced: a relay behind NAT that hole-punches to this viewer reaches it here, and peers see these
    // ports as where this viewer's connections come from.
    for addr in &opts.listen {
        if let Err(e) = client.listen(addr.clone()).await {
            tracing::warn!(%addr, error = %e, "cannot listen; relays behind NAT may not reach this viewer directly");
        }
    }
    let mut boot = vec![];
    for addr in &opts.bootstrap {
        match client.dial(addr).await {
            Ok(peer) => boot.push(peer),
            Err(e) => tracing::warn!(%addr, error = %e, "bootstrap relay unreachable"),
        }
    }
    if boot.is_empty() {
        anyhow::bail!("no bootstrap relay reachable; pass --bootstrap /ip4/…/tcp/…/p2p/<peer id> of a running relay");
    }
    let fetcher = Fetcher::new(
        identity,
        client,
        control,
        store,
        ledger.clone(),
        opts.domain,
        opts.max_price_per_mib,
        opts.stall,
        opts.funding,
    );
    fetcher.set_bootstrap(boot);
    let earnings = tokio::spawn(Earnings::keep_written(ledger.clone(), home.to_path_buf()));
    let manifest = fetcher.manifest(&cid).await.context("cannot get the video's manifest")?;
    let title = String::from_utf8_lossy(&manifest.manifest.title).to_string();
    tracing::info!(%title, renditions = manifest.manifest.renditions.len(), "manifest verified");
    let gateway = crate::api::gateway::Gateway::new(fetcher.clone(), opts.prefetch);
    gateway.play(cid, manifest);
    let bound = crate::api::gateway::serve(opts.gateway, opts.gateway_anywhere, gateway).await.with_context(|| {
        format!("cannot serve the gateway on {}; pick another with --gateway 127.0.0.1:PORT", opts.gateway)
    })?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{bound}/{}/master.m3u8", hex::encode(cid))?;
        out.flush()?;
    }
    shutdown.await;
    tracing::info!("stopping; flushing receipts");
    fetcher.finish(RECEIPTS_ANSWERED).await;
    earnings.abort();
    ledger.close().await.ok();
    Ok(())
}
