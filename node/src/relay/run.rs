//! `ferry relay`: serve verified video, collect receipts, fill the cache from other relays, and keep provider
//! records for everything held.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ferry_primitives::Domain;
use libp2p::Multiaddr;

use crate::api::gateway::Gateway;
use crate::api::rest::Node;
use crate::chain::Link;
use crate::content::catalogue::Catalogue;
use crate::content::store::Store;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::money::earnings::Earnings;
use crate::money::funding::Funding;
use crate::money::lanes::{ChainLanes, LaneBook};
use crate::money::ledger::Ledger;
use crate::money::settle::Settler;
use crate::p2p::{self, NetEvent};
use crate::relay::serve::{Limits, Money, Parts, Relay, Terms};
use crate::viewer::fetch::Fetcher;

pub struct RelayOptions {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    /// Reachability: external addresses and the circuits this relay serves for others.
    pub net: p2p::NetConfig,
    /// The listen addresses are the defaults, not chosen: a port in use is replaced by a free one.
    pub listen_anywhere: bool,
    pub price_per_mib: u128,
    /// Most this relay pays per MiB to fill its cache from another relay.
    pub max_upstream_price_per_mib: u128,
    pub credit_window: u64,
    pub cache_bytes: u64,
    pub memory_cache_bytes: u64,
    pub metrics: Option<std::net::SocketAddr>,
    pub limits: Limits,
    pub domain: Domain,
    pub stall: Duration,
    pub faults: crate::faults::Faults,
    /// Settlement and lane checks; `None` runs without a chain (receipts accumulate in the ledger).
    pub chain: Option<ChainOptions>,
    /// The REST API and the web app; `None` serves neither.
    pub api: Option<ApiOptions>,
}

pub struct ApiOptions {
    pub addr: std::net::SocketAddr,
    /// The address is the default, not chosen: a port in use is replaced by a free one.
    pub anywhere: bool,
    /// Defaults for videos published through the API.
    pub publish: crate::config::PublishConfig,
    /// Segments the gateway fetches ahead of the player.
    pub prefetch: usize,
}

pub struct ChainOptions {
    pub link: Link,
    pub settle_every: Duration,
    /// When a batch is worth settling.
    pub policy: crate::money::settle::Policy,
    /// What a cache fill reserves for an upstream relay when it opens or tops up the lane to it.
    pub lane_amount: u128,
}

/// How often held content is announced again, and how many videos each time: a relay that joins later hears of
/// everything in turn (a relay holding 10,000 videos goes round in about 7 hours).
const ANNOUNCE_AGAIN_EVERY: Duration = Duration::from_secs(10);
const ANNOUNCED_AGAIN: usize = 4;
/// Most manifests of announced videos read at once.
const MANIFEST_READS: usize = 8;
/// How often the store is scanned for newly published content.
const SCAN_EVERY: Duration = Duration::from_secs(1);
/// How often a relay with a chain reads its registered price again.
const PRICE_EVERY: Duration = Duration::from_secs(30);

pub async fn run(
    home: &std::path::Path,
    identity: Identity,
    opts: RelayOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = Store::open(home, opts.cache_bytes).context("cannot open the content store")?;
    store.set_memory_bytes(opts.memory_cache_bytes);
    let ledger = Ledger::open(home).context("cannot open the receipt ledger")?;
    let metrics = Metrics::new();
    if let Some(addr) = opts.metrics {
        let bound = crate::api::metrics::serve(metrics.clone(), addr)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!(%bound, "metrics at http://{bound}/metrics");
    }
    let (client, mut control, mut events) = p2p::start(&identity, opts.net.clone())?;
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
    let book = match &opts.chain {
        Some(c) => {
            let owed = ledger.owed_by_viewer().await.context("cannot read the receipt ledger")?;
            let lanes = ChainLanes { link: c.link.clone(), relay: identity.account };
            Some(std::sync::Arc::new(LaneBook::new(Box::new(lanes), opts.credit_window, owed)))
        }
        None => None,
    };
    let price_per_mib = opts.faults.price(match &opts.chain {
        Some(c) => charged_price(&c.link, identity.account, opts.price_per_mib).await,
        None => opts.price_per_mib,
    });
    let relay = Relay::new(
        &identity,
        Terms { domain: opts.domain, price_per_mib, credit_window: opts.credit_window, limits: opts.limits },
        Parts {
            store: store.clone(),
            ledger: ledger.clone(),
            metrics: metrics.clone(),
            fetcher,
            faults: opts.faults.clone(),
            money: opts.chain.as_ref().zip(book.clone()).map(|(c, book)| Money::new(book, c.link.clone())),
            hosts: client.hosts(),
            signatures: crate::relay::signatures::Signatures::start().context("cannot start the signature checker")?,
        },
    );
    relay.spawn_accept(&mut control).map_err(|e| anyhow::anyhow!("cannot accept streams: {e}"))?;
    // Only now, with every protocol accepted: a viewer that connects at once is never told a protocol is missing.
    for addr in &opts.listen {
        let addr = match p2p::ports::try_bind(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && opts.listen_anywhere => {
                // The default port is taken, most likely by another node on this machine: any free port will do.
                let any = p2p::ports::any_port(addr);
                tracing::warn!(%addr, instead = %any, "default port in use; listening on a free port instead");
                any
            }
            Err(e) => anyhow::bail!(
                "cannot listen on {addr}: {e} (another relay on this machine?); pick another address with --listen"
            ),
            Ok(()) => addr.clone(),
        };
        client.listen(addr.clone()).await.with_context(|| format!("cannot listen on {addr}"))?;
    }
    let mut boot = vec![];
    for addr in &opts.bootstrap {
        match client.dial(addr).await {
            Ok(peer) => boot.push(peer),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "bootstrap relay unreachable; continuing without it")
            }
        }
    }
    relay.fetcher.set_bootstrap(boot);
    let price_follower =
        opts.chain.as_ref().map(|c| tokio::spawn(follow_price(relay.clone(), c.link.clone(), opts.faults.clone())));
    let catalogue = Catalogue::default();
    let addresses = Arc::new(Mutex::new(Vec::new()));
    if let Some(api) = opts.api {
        let token = crate::api::token::load_or_create(home)
            .with_context(|| format!("cannot read or write the API token in {}", home.display()))?;
        let price_of = relay.clone();
        let node = Arc::new(Node {
            home: home.to_path_buf(),
            identity: identity.clone(),
            token: token.clone(),
            store: store.clone(),
            ledger: ledger.clone(),
            metrics: metrics.clone(),
            fetcher: relay.fetcher.clone(),
            gateway: Gateway::new(relay.fetcher.clone(), api.prefetch),
            catalogue: catalogue.clone(),
            link: opts.chain.as_ref().map(|c| c.link.clone()),
            hosts: client.hosts(),
            addresses: addresses.clone(),
            cache_limit: opts.cache_bytes,
            price_per_mib: Arc::new(move || price_of.price()),
            publish: api.publish,
            history: Default::default(),
            jobs: Default::default(),
            lanes_opened: Default::default(),
            auditing: Default::default(),
            transcoding: Arc::new(tokio::sync::Semaphore::new(1)),
        });
        let bound = crate::api::rest::serve(api.addr, api.anywhere, node)
            .await
            .with_context(|| format!("cannot serve the API on {}; pick another with --api 127.0.0.1:PORT", api.addr))?;
        let token_file = home.join(crate::api::token::TOKEN_FILE);
        tracing::info!(%bound, token = %token_file.display(), "web app and API at http://{bound}/");
        // The token goes to a terminal only, never to a log (systemd sends stdout to the journal).
        let mut out = std::io::stdout().lock();
        let _ = match std::io::IsTerminal::is_terminal(&out) {
            true => writeln!(out, "http://{bound}/#token={token}"),
            false => writeln!(out, "http://{bound}/"),
        };
        let _ = out.flush();
    }
    tracing::info!(peer = %identity.peer_id, account = %crate::identity::account_hex(&identity.account), price_per_mib, "relay running");

    let settler = opts.chain.map(|c| {
        tracing::info!(chain = c.link.url(), every = ?c.settle_every, "settling receipts on chain");
        let s = Settler::new(
            ledger.clone(),
            Box::new(c.link),
            metrics.clone(),
            home.to_path_buf(),
            c.settle_every,
            c.policy,
            book.clone(),
        );
        tokio::spawn(s.run())
    });
    let earnings = match &settler {
        Some(_) => None,
        None => {
            tracing::warn!("no chain configured ([chain] url or FERRY_CHAIN): receipts are kept but not settled");
            Some(tokio::spawn(Earnings::keep_written(ledger.clone(), home.to_path_buf())))
        }
    };

    let manifest_reads = Arc::new(tokio::sync::Semaphore::new(MANIFEST_READS));
    let reading: Arc<Mutex<HashSet<ferry_primitives::ContentId>>> = Default::default();
    let mut provided = HashSet::new();
    let mut held = Vec::new();
    let mut next_again = 0;
    let mut scan = tokio::time::interval(SCAN_EVERY);
    let mut again = tokio::time::interval(ANNOUNCE_AGAIN_EVERY);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            ev = events.recv() => match ev {
                Some(NetEvent::Listening(addr)) => {
                    addresses.lock().unwrap_or_else(|p| p.into_inner()).push(addr.to_string());
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{addr}");
                    let _ = out.flush();
                }
                Some(NetEvent::Reachability(_)) => {}
                Some(NetEvent::Announced { from, content }) => {
                    tracing::debug!(%from, content = %hex::encode(content), "content announced");
                    if !catalogue.also_from(&content, &from.to_string()) {
                        // A bounded number of manifest reads at once, one per content id: what is dropped now is
                        // announced again.
                        if let Ok(permit) = manifest_reads.clone().try_acquire_owned() {
                            if reading.lock().unwrap_or_else(|p| p.into_inner()).insert(content) {
                                let (fetcher, catalogue, reading) = (relay.fetcher.clone(), catalogue.clone(), reading.clone());
                                tokio::spawn(async move {
                                    list_announced(fetcher, catalogue, from, content).await;
                                    reading.lock().unwrap_or_else(|p| p.into_inner()).remove(&content);
                                    drop(permit);
                                });
                            }
                        }
                    }
                }
                None => anyhow::bail!("the network stopped unexpectedly"),
            },
            _ = again.tick() => {
                for _ in 0..ANNOUNCED_AGAIN.min(held.len()) {
                    next_again %= held.len();
                    client.announce(held[next_again]).await?;
                    next_again += 1;
                }
            }
            _ = scan.tick() => {
                metrics.cache_bytes.set(store.cached_bytes() as i64);
                metrics.blob_disk_reads.inc_by(store.disk_reads().saturating_sub(metrics.blob_disk_reads.get()));
                match store.manifests() {
                    Ok(cids) => for cid in cids {
                        if provided.insert(cid) {
                            held.push(cid);
                            match store.manifest(&cid) {
                                Ok(Some(m)) => catalogue.hold(&cid, &m, &identity.peer_id.to_string()),
                                Ok(None) => {}
                                Err(e) => tracing::warn!(error = %e, "cannot read a stored manifest"),
                            }
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
    for task in settler.into_iter().chain(earnings).chain(price_follower) {
        task.abort();
    }
    ledger.close().await.ok();
    Ok(())
}

/// Lists a video another relay announced, from its manifest (signed by the creator, checked against the id).
async fn list_announced(
    fetcher: Fetcher,
    catalogue: Catalogue,
    from: libp2p::PeerId,
    cid: ferry_primitives::ContentId,
) {
    match fetcher.manifest_of(from, &cid).await {
        Ok(m) => catalogue.heard(&cid, &m, &from.to_string()),
        Err(e) => tracing::debug!(%from, error = %e, "cannot read an announced video's manifest"),
    }
}

/// With a chain, a relay charges the price it registered: viewers refuse any other quote. Without a registration
/// (or while the chain is down) it quotes the configured price.
async fn charged_price(link: &Link, account: ferry_primitives::AccountId, configured: u128) -> u128 {
    match registered_price(link, account).await {
        Ok(Some(p)) => {
            if p != configured {
                tracing::warn!(registered = %p, %configured, "charging the price registered on chain, not the configured one; `ferry operator set-price` changes it");
            }
            p
        }
        Ok(None) => {
            tracing::warn!("not a registered operator: viewers on this chain will not pay this relay; run `ferry operator register`");
            configured
        }
        Err(e) => {
            tracing::warn!(error = %e, %configured, "cannot read this relay's registration; quoting the configured price");
            configured
        }
    }
}

async fn registered_price(
    link: &Link,
    account: ferry_primitives::AccountId,
) -> Result<Option<u128>, crate::chain::ChainError> {
    Ok(link.get().await?.operator(account).await?.map(|op| op.price_per_mib))
}

/// Follows the registration: a price changed on chain (`ferry operator set-price`) is quoted to new sessions.
async fn follow_price(relay: std::sync::Arc<Relay>, link: Link, faults: crate::faults::Faults) {
    let mut tick = tokio::time::interval(PRICE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Ok(Some(p)) = registered_price(&link, relay.account).await {
            let p = faults.price(p);
            if p != relay.price() {
                tracing::info!(price_per_mib = %p, "the registered price changed: quoting it to new sessions");
                relay.set_price(p);
            }
        }
    }
}
