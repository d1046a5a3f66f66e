//! `ferry watch`: the viewer's options from flags over the config file, then the viewer and its gateway.

use std::net::SocketAddr;
use std::time::Duration;

use libp2p::Multiaddr;

use super::{content_id, domain::domain_and_link, multiaddrs, shutdown_signal, Context};
use crate::config::ViewerConfig;
use crate::money::funding::Funding;
use crate::viewer::watch::WatchOptions;

/// Flags of `ferry watch`; each overrides its `[viewer]` setting in config.toml.
#[derive(clap::Args)]
pub struct WatchArgs {
    cid: String,
    #[arg(long, env = "FERRY_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    #[arg(long, env = "FERRY_GATEWAY")]
    gateway: Option<SocketAddr>,
    /// Refuse relays that ask more per MiB than this.
    #[arg(long, env = "FERRY_MAX_PRICE", default_value_t = 1_000_000_000)]
    max_price: u128,
}

pub async fn watch(ctx: &Context, args: WatchArgs) -> anyhow::Result<()> {
    let WatchArgs { cid, bootstrap, gateway, max_price } = args;
    let cfg = ctx.config()?;
    let id = ctx.identity()?;
    let (domain, link) = domain_and_link(&ctx.home, &cfg, ctx.chain.clone(), &id).await?;
    // Relays serve only against a lane: one is opened (or topped up) for each relay this viewer pays.
    let funding = link.map(|link| Funding::new(link, id.account, cfg.chain.lane_amount));
    let cid = content_id(&cid)?;
    let opts = WatchOptions {
        bootstrap: if bootstrap.is_empty() { multiaddrs(&cfg.viewer.bootstrap)? } else { bootstrap },
        listen: multiaddrs(&cfg.viewer.listen)?,
        gateway_anywhere: gateway.is_none() && cfg.viewer.gateway == ViewerConfig::default().gateway,
        gateway: gateway.unwrap_or(cfg.viewer.gateway),
        max_price_per_mib: max_price,
        stall: Duration::from_millis(cfg.viewer.stall_timeout_ms),
        prefetch: cfg.viewer.prefetch_segments,
        cache_bytes: cfg.relay.cache_bytes,
        memory_cache_bytes: cfg.relay.memory_cache_bytes,
        domain,
        funding,
    };
    crate::viewer::watch::run(&ctx.home, id, cid, opts, shutdown_signal()).await
}
