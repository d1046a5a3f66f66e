//! `ferry relay`: the relay's options from flags over the config file, then the relay itself.

use std::net::SocketAddr;
use std::time::Duration;

use libp2p::Multiaddr;

use super::{domain::domain_and_link, multiaddrs, shutdown_signal, Context};
use crate::config::{ApiConfig, RelayConfig};
use crate::relay::{ApiOptions, ChainOptions, RelayOptions};

/// Flags of `ferry relay`; each overrides its `[relay]` setting in config.toml.
#[derive(clap::Args)]
pub struct RelayArgs {
    #[arg(long, env = "FERRY_LISTEN", value_delimiter = ',')]
    listen: Vec<Multiaddr>,
    #[arg(long, env = "FERRY_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// An address others reach this relay at (repeatable), e.g. a router's public address with the port
    /// forwarded here: /ip4/203.0.113.7/tcp/4001.
    #[arg(long = "external-address", env = "FERRY_EXTERNAL_ADDRESS", value_delimiter = ',')]
    external: Vec<Multiaddr>,
    /// Price per MiB of verified video.
    #[arg(long, env = "FERRY_PRICE")]
    price: Option<u128>,
    /// Serve Prometheus metrics here (e.g. 127.0.0.1:9464).
    #[arg(long, env = "FERRY_METRICS")]
    metrics: Option<SocketAddr>,
    /// Serve the REST API and the web app here (default [api] listen, 127.0.0.1:7070); prints its address with
    /// the token.
    #[arg(long, env = "FERRY_API")]
    api: Option<SocketAddr>,
    #[command(flatten)]
    faults: crate::faults::Faults,
}

pub async fn relay(ctx: &Context, args: RelayArgs) -> anyhow::Result<()> {
    let RelayArgs { listen, bootstrap, external, price, metrics, api, faults } = args;
    let cfg = ctx.config()?;
    let id = ctx.identity()?;
    let (domain, link) = domain_and_link(&ctx.home, &cfg, ctx.chain.clone(), &id).await?;
    let opts = RelayOptions {
        listen_anywhere: listen.is_empty() && cfg.relay.listen == RelayConfig::default().listen,
        listen: if listen.is_empty() { multiaddrs(&cfg.relay.listen)? } else { listen },
        bootstrap: if bootstrap.is_empty() { multiaddrs(&cfg.relay.bootstrap)? } else { bootstrap },
        net: crate::p2p::NetConfig {
            server: true,
            external: if external.is_empty() { multiaddrs(&cfg.relay.external_addresses)? } else { external },
            circuit_max_bytes: cfg.relay.circuit_max_bytes,
            circuit_max_duration: Duration::from_secs(cfg.relay.circuit_max_seconds.min(u32::MAX.into())),
        },
        price_per_mib: price.unwrap_or(cfg.relay.price_per_mib),
        max_upstream_price_per_mib: match cfg.relay.max_upstream_price_per_mib {
            0 => price.unwrap_or(cfg.relay.price_per_mib),
            cap => cap,
        },
        credit_window: cfg.relay.credit_window_bytes,
        cache_bytes: cfg.relay.cache_bytes,
        memory_cache_bytes: cfg.relay.memory_cache_bytes,
        metrics: metrics.or(cfg.relay.metrics),
        limits: crate::relay::serve::Limits {
            max_sessions_per_peer: cfg.relay.max_sessions_per_peer,
            max_streams_per_peer: cfg.relay.max_streams_per_peer,
            max_streams: cfg.relay.max_streams,
            streams_per_second_per_peer: cfg.relay.streams_per_second_per_peer,
            new_viewers_per_minute: cfg.relay.new_viewers_per_minute,
        },
        domain,
        api: (cfg.api.enabled || api.is_some()).then(|| ApiOptions {
            anywhere: api.is_none() && cfg.api.listen == ApiConfig::default().listen,
            addr: api.unwrap_or(cfg.api.listen),
            publish: cfg.publish.clone(),
            prefetch: cfg.viewer.prefetch_segments,
        }),
        stall: Duration::from_millis(cfg.viewer.stall_timeout_ms),
        faults,
        chain: link.map(|link| ChainOptions {
            link,
            settle_every: Duration::from_millis(cfg.chain.settle_every_ms),
            policy: crate::money::settle::Policy {
                max_batch: cfg.chain.settle_batch,
                fee_multiple: cfg.chain.settle_fee_multiple,
                max_age: Duration::from_millis(cfg.chain.settle_max_age_ms),
            },
            lane_amount: cfg.chain.lane_amount,
        }),
    };
    crate::relay::run(&ctx.home, id, opts, shutdown_signal()).await
}
