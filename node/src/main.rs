//! The `ferry` binary: argument parsing, configuration, and one call into the library per command.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ferry_node::chain::Link;
use ferry_node::config::{Config, RelayConfig, ViewerConfig, CONFIG_FILE, TEMPLATE};
use ferry_node::identity::{account_hex, parse_hex32, Identity};
use ferry_node::ledger::LedgerView;
use ferry_primitives::Domain;
use libp2p::Multiaddr;

#[derive(Parser)]
#[command(name = "ferry", version, about = "Ferry: a video relay network that pays its operators")]
struct Cli {
    /// Node home: identity, config, content store and ledger.
    #[arg(long, global = true, env = "FERRY_HOME")]
    home: Option<PathBuf>,
    /// Chain node RPC (e.g. ws://127.0.0.1:9944); overrides [chain] url.
    #[arg(long, global = true, env = "FERRY_CHAIN")]
    chain: Option<String>,
    /// Log as JSON lines (for journald, Loki, …); human-readable text otherwise. FERRY_LOG sets the levels.
    #[arg(long, global = true, env = "FERRY_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make this node's ed25519 identity and a commented config file.
    Init {
        /// Use a funded demo account of the local dev chain (operator, creator or viewer) instead of a new key.
        #[arg(long, value_name = "ROLE")]
        dev_account: Option<String>,
    },
    /// Print the peer id and the account.
    Id {
        #[arg(long)]
        json: bool,
    },
    /// Segment a video (file, HLS folder or HTTP HLS URL), hash it, sign its manifest; prints the content id last.
    Publish {
        source: String,
        #[arg(long)]
        title: Option<String>,
        /// Your share of every payment, in basis points.
        #[arg(long, env = "FERRY_CREATOR_SHARE_BPS")]
        share_bps: Option<u16>,
    },
    /// Run a relay node.
    Relay {
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
        #[command(flatten)]
        faults: ferry_node::faults::Faults,
    },
    /// Check this node's setup (keys, config, ledger, ports, ffmpeg, disk, chain, reachability); names the fix
    /// for each problem and exits with 1 if any check failed.
    Doctor {
        /// Listen addresses to check instead of [relay] listen.
        #[arg(long, env = "FERRY_LISTEN", value_delimiter = ',')]
        listen: Vec<Multiaddr>,
        /// How long to wait for the chain, and for other relays to dial this node back, in seconds.
        #[arg(long, default_value_t = 20)]
        patience: u64,
    },
    /// Fetch, verify and pay for a video, and serve it to players on a local HLS gateway.
    Watch {
        cid: String,
        #[arg(long, env = "FERRY_BOOTSTRAP", value_delimiter = ',')]
        bootstrap: Vec<Multiaddr>,
        #[arg(long, env = "FERRY_GATEWAY")]
        gateway: Option<SocketAddr>,
        /// Refuse relays that ask more per MiB than this.
        #[arg(long, env = "FERRY_MAX_PRICE", default_value_t = 1_000_000)]
        max_price: u128,
    },
    /// List receipts: the relay's ledger, and the receipts this node signed as a viewer.
    Receipts {
        #[arg(long)]
        json: bool,
    },
    /// Operate a relay on chain: register (bond, peer id, price per MiB), change the price, leave.
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// Funds reserved on chain for one relay: only that relay can claim them, for receipts you signed.
    Lane {
        #[command(subcommand)]
        action: LaneAction,
    },
    /// Register published content on chain from its manifest, so relays can be paid for it.
    Register { cid: String },
    /// Tip a video's creator (the protocol fee burns, as on every payment).
    Tip { cid: String, amount: u128 },
    /// This node's balance, and its lanes to the relays it has paid.
    Balance {
        #[arg(long)]
        json: bool,
    },
    /// What this relay earned: pending, in flight, and settled (with block numbers).
    Earnings {
        #[arg(long)]
        json: bool,
    },
    /// A local dev chain for trying Ferry on one machine.
    Chain {
        #[command(subcommand)]
        action: ChainAction,
        /// RPC port on 127.0.0.1.
        #[arg(long, env = "FERRY_RPC_PORT", default_value_t = 9944, global = true)]
        rpc_port: u16,
    },
}

#[derive(Subcommand)]
enum ChainAction {
    /// Start the dev chain unless it runs already; its state survives `down` unless --fresh.
    Up {
        /// Which chain: the real node, or Chopsticks. Default: the node if it is installed, else Chopsticks.
        #[arg(long, env = "FERRY_CHAIN_KIND", value_enum)]
        kind: Option<ferry_node::devchain::ChainKind>,
        /// Block time in milliseconds.
        #[arg(long, env = "FERRY_BLOCK_MS", default_value_t = 1000)]
        block_ms: u64,
        /// Start from genesis, dropping the state of earlier runs on this port.
        #[arg(long)]
        fresh: bool,
    },
    /// Stop it.
    Down,
    /// Print its best and finalized blocks.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OperatorAction {
    /// Bond funds and publish this node's peer id and price per MiB.
    Register {
        #[arg(long)]
        price: u128,
        #[arg(long)]
        bond: u128,
    },
    /// Change the price per MiB (sessions already open keep theirs).
    SetPrice { price: u128 },
    /// Stop operating; the bond can be withdrawn after the unbonding period. Lanes to this relay still settle.
    Unregister,
    /// Take the bond back once unbonding has ended.
    WithdrawBond,
}

#[derive(Subcommand)]
enum LaneAction {
    /// Reserve AMOUNT for RELAY (an account, 0x…), or add to the lane.
    Open { relay: String, amount: u128 },
    /// Start closing the lane; the rest comes back after the unbonding period (the relay can settle until then).
    Close { relay: String },
    /// Take back what is left of a closed lane.
    Withdraw { relay: String },
    /// What the lane to RELAY holds.
    Show {
        relay: String,
        #[arg(long)]
        json: bool,
    },
}

/// Connects to the configured chain with this node's identity.
async fn chain(home: &Path, url: Option<String>) -> anyhow::Result<(ferry_node::chain::Chain, Identity)> {
    let cfg = Config::load(home)?;
    let id = load_identity(home)?;
    let url = url.or(cfg.chain.url).context(
        "no chain configured: set [chain] url in config.toml, FERRY_CHAIN or --chain (e.g. ws://127.0.0.1:9944)",
    )?;
    let c = ferry_node::chain::Chain::connect(&url, id.secret()).await?;
    Ok((c, id))
}

/// The domain receipts sign for, and a link to the chain when one is configured. With a chain, its genesis is
/// the domain; a genesis in the config must match it. The genesis is remembered in the home, so a node can start
/// while the chain is down (the config's genesis, if set, serves the same purpose).
async fn domain_and_link(
    home: &Path,
    cfg: &Config,
    url: Option<String>,
    id: &Identity,
) -> anyhow::Result<(Domain, Option<Link>)> {
    let configured = parse_hex32(&cfg.chain.genesis)
        .with_context(|| format!("chain.genesis {:?} is not a 32-byte hex hash", cfg.chain.genesis))?;
    let Some(url) = url.or(cfg.chain.url.clone()) else { return Ok((Domain(configured), None)) };
    let remembered = home.join(GENESIS_FILE);
    let link = Link::new(url, id.secret());
    match link.get().await {
        Ok(c) => {
            let g = c.genesis();
            if configured != [0; 32] && configured != g {
                bail!(
                    "[chain] genesis 0x{} is not the genesis of the chain at {} (0x{}); fix one of them",
                    hex::encode(configured),
                    link.url(),
                    hex::encode(g)
                );
            }
            let line = format!("{} 0x{}\n", link.url(), hex::encode(g));
            if let Err(e) = std::fs::write(&remembered, line) {
                tracing::warn!(error = %e, path = %remembered.display(), "cannot remember the chain's genesis");
            }
            Ok((Domain(g), Some(link)))
        }
        Err(e) => {
            let from_file = std::fs::read_to_string(&remembered).ok().and_then(|t| {
                let (u, g) = t.trim().split_once(' ')?;
                (u == link.url()).then(|| parse_hex32(g)).flatten()
            });
            let genesis = if configured != [0; 32] { Some(configured) } else { from_file };
            match genesis {
                Some(g) => {
                    tracing::warn!(error = %e, genesis = %format!("0x{}", hex::encode(g)), "chain unreachable; using the genesis seen before and retrying in the background");
                    Ok((Domain(g), Some(link)))
                }
                None => Err(e).context(
                    "cannot learn the chain's genesis hash: start the chain (`ferry chain up`) or set [chain] genesis",
                ),
            }
        }
    }
}

/// Where a node remembers the genesis of the chain it last reached: `<url> <genesis>`.
const GENESIS_FILE: &str = "chain-genesis";

fn cache_dir() -> PathBuf {
    std::env::var_os("FERRY_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/ferry")
    })
}

fn landed(what: &str, at: ferry_node::chain::Inclusion) {
    println!("{what}: finalized in block #{} (0x{})", at.block_number, hex::encode(at.block_hash));
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".ferry")
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn load_identity(home: &Path) -> anyhow::Result<Identity> {
    Ok(Identity::load(home)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,libp2p_swarm=warn,libp2p_kad=error,libp2p_gossipsub=error")
    });
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let home = cli.home.unwrap_or_else(default_home);
    match cli.command {
        Command::Init { dev_account } => {
            std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
            let id = match dev_account {
                None => Identity::create(&home)?,
                Some(role) => {
                    let secret = ferry_node::identity::dev_secret(&role).with_context(|| {
                        format!("--dev-account {role:?}: the dev chain funds {:?}", ferry_node::identity::DEV_ROLES)
                    })?;
                    Identity::create_from(&home, secret)?
                }
            };
            let cfg = home.join(CONFIG_FILE);
            if !cfg.exists() {
                std::fs::write(&cfg, TEMPLATE).with_context(|| format!("cannot write {}", cfg.display()))?;
            }
            println!("peer id: {}", id.peer_id);
            println!("account: {}", account_hex(&id.account));
            eprintln!("identity and config written to {}", home.display());
        }
        Command::Id { json } => {
            let id = load_identity(&home)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"peer_id": id.peer_id.to_string(), "account": account_hex(&id.account)})
                );
            } else {
                println!("peer id: {}", id.peer_id);
                println!("account: {}", account_hex(&id.account));
            }
        }
        Command::Publish { source, title, share_bps } => {
            let cfg = Config::load(&home)?;
            let id = load_identity(&home)?;
            let store = ferry_node::store::Store::open(&home, cfg.relay.cache_bytes)?;
            let title = title.unwrap_or_else(|| {
                Path::new(&source).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()
            });
            let opts = ferry_node::publish::PublishOptions {
                title,
                creator_share_bps: share_bps.unwrap_or(cfg.publish.creator_share_bps),
                segment_seconds: cfg.publish.segment_seconds,
                renditions: cfg.publish.renditions,
            };
            if opts.creator_share_bps > 10_000 {
                bail!("--share-bps {} is above 10000 (100%)", opts.creator_share_bps);
            }
            let source = ferry_node::publish::Source::parse(&source);
            let (cid, m) = ferry_node::publish::publish(source, &opts, &id, &store).await.context("publish failed")?;
            let segments: usize = m.manifest.renditions.iter().map(|r| r.segments.len()).sum();
            let bytes: u64 = m.manifest.blobs().map(|s| s.size).sum();
            eprintln!(
                "published {:?}: {} renditions, {segments} segments, {bytes} bytes; a relay on this home serves it",
                String::from_utf8_lossy(&m.manifest.title),
                m.manifest.renditions.len()
            );
            if let Some(url) = cli.chain.clone().or(cfg.chain.url.clone()) {
                register_content(&url, &id, &m).await.with_context(|| {
                    format!(
                        "published locally as {}, but not registered on chain; once the chain is up, run \
                         `ferry register {}`",
                        hex::encode(cid),
                        hex::encode(cid)
                    )
                })?;
            }
            println!("{}", hex::encode(cid));
        }
        Command::Relay { listen, bootstrap, external, price, metrics, faults } => {
            let cfg = Config::load(&home)?;
            let id = load_identity(&home)?;
            let (domain, link) = domain_and_link(&home, &cfg, cli.chain.clone(), &id).await?;
            let parse = |v: &[String]| {
                v.iter()
                    .map(|s| s.parse::<Multiaddr>().with_context(|| format!("bad multiaddr {s:?} in config")))
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let opts = ferry_node::relay::RelayOptions {
                listen_anywhere: listen.is_empty() && cfg.relay.listen == RelayConfig::default().listen,
                listen: if listen.is_empty() { parse(&cfg.relay.listen)? } else { listen },
                bootstrap: if bootstrap.is_empty() { parse(&cfg.relay.bootstrap)? } else { bootstrap },
                net: ferry_node::p2p::NetConfig {
                    server: true,
                    external: if external.is_empty() { parse(&cfg.relay.external_addresses)? } else { external },
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
                metrics: metrics.or(cfg.relay.metrics),
                limits: ferry_node::serve::Limits {
                    max_sessions_per_peer: cfg.relay.max_sessions_per_peer,
                    max_streams_per_peer: cfg.relay.max_streams_per_peer,
                    max_streams: cfg.relay.max_streams,
                    streams_per_second_per_peer: cfg.relay.streams_per_second_per_peer,
                    new_viewers_per_minute: cfg.relay.new_viewers_per_minute,
                },
                domain,
                stall: Duration::from_millis(cfg.viewer.stall_timeout_ms),
                faults,
                chain: link.map(|link| ferry_node::relay::ChainOptions {
                    link,
                    settle_every: Duration::from_millis(cfg.chain.settle_every_ms),
                    settle_batch: cfg.chain.settle_batch,
                    lane_amount: cfg.chain.lane_amount,
                }),
            };
            ferry_node::relay::run(&home, id, opts, shutdown_signal()).await?;
        }
        Command::Doctor { listen, patience } => {
            let checks = ferry_node::doctor::run(ferry_node::doctor::Setup {
                home: home.clone(),
                listen,
                chain: cli.chain.clone(),
                patience: Duration::from_secs(patience),
            })
            .await;
            for c in &checks {
                println!("{c}");
            }
            let failed = checks.iter().filter(|c| c.failed()).count();
            if failed > 0 {
                bail!("{failed} check(s) failed; each names its fix above");
            }
        }
        Command::Watch { cid, bootstrap, gateway, max_price } => {
            let cfg = Config::load(&home)?;
            let id = load_identity(&home)?;
            let (domain, link) = domain_and_link(&home, &cfg, cli.chain.clone(), &id).await?;
            // Relays serve only against a lane: one is opened (or topped up) for each relay this viewer pays.
            let funding = link.map(|link| ferry_node::funding::Funding::new(link, id.account, cfg.chain.lane_amount));
            let cid = parse_hex32(&cid).with_context(|| format!("{cid:?} is not a content id (64 hex characters)"))?;
            let parse = |v: &[String]| {
                v.iter()
                    .map(|s| s.parse::<Multiaddr>().with_context(|| format!("bad multiaddr {s:?} in config")))
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let opts = ferry_node::watch::WatchOptions {
                bootstrap: if bootstrap.is_empty() { parse(&cfg.viewer.bootstrap)? } else { bootstrap },
                listen: parse(&cfg.viewer.listen)?,
                gateway_anywhere: gateway.is_none() && cfg.viewer.gateway == ViewerConfig::default().gateway,
                gateway: gateway.unwrap_or(cfg.viewer.gateway),
                max_price_per_mib: max_price,
                stall: Duration::from_millis(cfg.viewer.stall_timeout_ms),
                prefetch: cfg.viewer.prefetch_segments,
                cache_bytes: cfg.relay.cache_bytes,
                domain,
                funding,
            };
            ferry_node::watch::run(&home, id, cid, opts, shutdown_signal()).await?;
        }
        Command::Operator { action } => operator(&home, cli.chain.clone(), action).await?,
        Command::Lane { action } => lane(&home, cli.chain.clone(), action).await?,
        Command::Register { cid } => {
            let cid = parse_hex32(&cid).with_context(|| format!("{cid:?} is not a content id (64 hex characters)"))?;
            let cfg = Config::load(&home)?;
            let id = load_identity(&home)?;
            let store = ferry_node::store::Store::open(&home, cfg.relay.cache_bytes)?;
            let m = store.manifest(&cid)?.with_context(|| {
                format!(
                    "no manifest for {} in {}: publish it (or watch it) with this home first",
                    hex::encode(cid),
                    home.display()
                )
            })?;
            let url = cli.chain.clone().or(cfg.chain.url.clone()).context(
                "no chain configured: set [chain] url in config.toml, FERRY_CHAIN or --chain (e.g. ws://127.0.0.1:9944)",
            )?;
            register_content(&url, &id, &m).await?;
        }
        Command::Tip { cid, amount } => {
            let cid = parse_hex32(&cid).with_context(|| format!("{cid:?} is not a content id (64 hex characters)"))?;
            let (c, _) = chain(&home, cli.chain.clone()).await?;
            println!("submitting: tip of {amount} to the creator of {}", hex::encode(cid));
            landed("tipped", with_spinner(c.tip(cid, amount)).await?);
        }
        Command::Balance { json } => {
            let (c, id) = chain(&home, cli.chain.clone()).await?;
            let free = c.balance(id.account).await?;
            // The relays this node has paid as a viewer, from its own receipts.
            let mut relays: Vec<[u8; 32]> = match LedgerView::read(&home) {
                Ok(view) => view.own.iter().map(|o| o.receipt.receipt.relay).collect(),
                Err(_) => vec![],
            };
            relays.sort();
            relays.dedup();
            let mut lanes = vec![];
            for relay in relays {
                lanes.push((relay, c.lane(id.account, relay).await?));
            }
            if json {
                let lanes: Vec<_> = lanes
                    .iter()
                    .map(|(r, l)| serde_json::json!({"relay": account_hex(r), "funds": l.funds.to_string(), "closing_at": l.closing_at}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"account": account_hex(&id.account), "free": free.to_string(), "lanes": lanes})
                );
            } else {
                println!("account:    {}", account_hex(&id.account));
                println!("free:       {free}");
                for (r, l) in &lanes {
                    let closing =
                        l.closing_at.map(|b| format!("  (closing; withdrawable from block #{b})")).unwrap_or_default();
                    println!("lane to {}: {}{closing}", account_hex(r), l.funds);
                }
            }
        }
        Command::Earnings { json } => earnings(&home, json)?,
        Command::Chain { action, rpc_port } => {
            use ferry_node::devchain::{ChainKind, DevChain};
            let cache = cache_dir();
            let dev = DevChain::in_cache(ChainKind::Node, &cache, rpc_port, 1000);
            match action {
                ChainAction::Up { kind, block_ms, fresh } => {
                    let dev = DevChain::pick(kind, &cache, rpc_port, block_ms)?;
                    match dev.up(fresh).await? {
                        (s, true) => {
                            println!(
                                "dev chain up: {} (block #{}, genesis {}), {}",
                                s.url, s.best, s.genesis, dev.kind
                            );
                            eprintln!("log: {}; stop it with `ferry chain down`", dev.log_file().display());
                        }
                        (s, false) => {
                            println!("a chain already runs on {} (block #{}, genesis {})", s.url, s.best, s.genesis)
                        }
                    }
                }
                ChainAction::Down => {
                    let mut stopped = false;
                    let mut failed = None;
                    for kind in [ChainKind::Node, ChainKind::Chopsticks] {
                        match DevChain::in_cache(kind, &cache, rpc_port, 1000).down().await {
                            Ok(s) => stopped |= s,
                            Err(e) => failed = Some(e),
                        }
                    }
                    if let Some(e) = failed {
                        return Err(e.into());
                    }
                    match stopped {
                        true => println!("dev chain on port {rpc_port} stopped"),
                        false => println!("no dev chain was running on port {rpc_port}"),
                    }
                }
                ChainAction::Status { json } => match dev.status().await {
                    Ok(s) if json => println!("{}", serde_json::to_string(&s)?),
                    Ok(s) => {
                        println!("up: {}  best #{}  finalized #{}  genesis {}", s.url, s.best, s.finalized, s.genesis)
                    }
                    Err(e) => {
                        if json {
                            println!("{}", serde_json::json!({"url": dev.url(), "down": e.to_string()}));
                        } else {
                            println!("down: nothing answers on {} ({e})", dev.url());
                        }
                        std::process::exit(1);
                    }
                },
            }
        }
        Command::Receipts { json } => match receipts(&home, json) {
            // `ferry receipts | head` is fine.
            Err(e)
                if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {}
            r => r?,
        },
    }
    Ok(())
}

/// Registers content on chain from its manifest's header, unless it is registered already. Anyone may submit
/// it: the content id commits to the creator and share, so the registration always names the manifest's creator.
async fn register_content(url: &str, id: &Identity, m: &ferry_primitives::SignedManifest) -> anyhow::Result<()> {
    let c = ferry_node::chain::Chain::connect(url, id.secret()).await?;
    let header = m.manifest.header();
    let cid = header.content_id();
    match c.content(cid).await? {
        Some((creator, share)) => {
            eprintln!("already registered on chain to {} (share {share} bps)", account_hex(&creator));
        }
        None => {
            eprintln!(
                "submitting: register content {} (creator {}, share {} bps)",
                hex::encode(cid),
                account_hex(&header.creator),
                header.creator_share_bps
            );
            let at = with_spinner(c.register_content(header.clone())).await?;
            eprintln!(
                "registered on chain with a {} bps creator share: finalized in block #{}",
                header.creator_share_bps, at.block_number
            );
        }
    }
    Ok(())
}

/// Waits for a chain call with a spinner on a terminal.
async fn with_spinner<T>(work: impl std::future::Future<Output = T>) -> T {
    let bar = indicatif::ProgressBar::new_spinner();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_message("waiting for a finalized block");
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let out = work.await;
    bar.finish_and_clear();
    out
}

fn relay_account(relay: &str) -> anyhow::Result<[u8; 32]> {
    parse_hex32(relay)
        .with_context(|| format!("{relay:?} is not an account (0x and 64 hex characters; `ferry id` prints it)"))
}

async fn operator(home: &Path, url: Option<String>, action: OperatorAction) -> anyhow::Result<()> {
    let (c, id) = chain(home, url).await?;
    match action {
        OperatorAction::Register { price, bond } => {
            println!("submitting: register operator {} (price {price} per MiB, bond {bond})", account_hex(&id.account));
            landed("operator registered", with_spinner(c.register_operator(id.peer_id.to_bytes(), price, bond)).await?);
        }
        OperatorAction::SetPrice { price } => {
            println!("submitting: price {price} per MiB");
            landed("price changed", with_spinner(c.set_price(price)).await?);
        }
        OperatorAction::Unregister => {
            println!("submitting: unregister operator {}", account_hex(&id.account));
            let (at, until) = with_spinner(c.unregister_operator()).await?;
            landed("unbonding", at);
            println!("the bond can be withdrawn from block #{until} with `ferry operator withdraw-bond`");
        }
        OperatorAction::WithdrawBond => {
            let until = c.operator(id.account).await?.and_then(|o| o.unbonding_until);
            withdrawable(&c, until, "the bond", "`ferry operator unregister`").await?;
            println!("submitting: withdraw bond");
            let (at, amount) = with_spinner(c.withdraw_bond()).await?;
            landed(&format!("bond of {amount} withdrawn"), at);
        }
    }
    Ok(())
}

/// The chain refuses an early withdrawal with a bare `StillUnbonding`; this says from which block instead.
async fn withdrawable(c: &ferry_node::chain::Chain, from: Option<u32>, what: &str, how: &str) -> anyhow::Result<()> {
    let Some(from) = from else { anyhow::bail!("{what} is not unbonding: run {how} first") };
    let now = c.finalized_number().await?;
    // The transaction lands in a block after the finalized one.
    if now + 1 < from {
        anyhow::bail!(
            "{what} can be withdrawn from block #{from}; the chain is at #{now}, {} blocks to go",
            from - now - 1
        );
    }
    Ok(())
}

async fn lane(home: &Path, url: Option<String>, action: LaneAction) -> anyhow::Result<()> {
    let (c, id) = chain(home, url).await?;
    match action {
        LaneAction::Open { relay, amount } => {
            let relay = relay_account(&relay)?;
            println!("submitting: reserve {amount} for relay {}", account_hex(&relay));
            let (at, funds) = with_spinner(c.open_lane(relay, amount)).await?;
            landed(&format!("lane funded (now {funds})"), at);
        }
        LaneAction::Close { relay } => {
            let relay = relay_account(&relay)?;
            println!("submitting: close the lane to relay {}", account_hex(&relay));
            let (at, until) = with_spinner(c.close_lane(relay)).await?;
            landed("lane closing", at);
            println!("withdrawable from block #{until} with `ferry lane withdraw {}`", account_hex(&relay));
        }
        LaneAction::Withdraw { relay } => {
            let relay = relay_account(&relay)?;
            let closing = c.lane(id.account, relay).await?.closing_at;
            withdrawable(&c, closing, "the lane", &format!("`ferry lane close {}`", account_hex(&relay))).await?;
            println!("submitting: withdraw the lane to relay {}", account_hex(&relay));
            let (at, amount) = with_spinner(c.withdraw_lane(relay)).await?;
            landed(&format!("{amount} withdrawn"), at);
        }
        LaneAction::Show { relay, json } => {
            let relay = relay_account(&relay)?;
            let l = c.lane(id.account, relay).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"relay": account_hex(&relay), "funds": l.funds.to_string(), "closing_at": l.closing_at})
                );
            } else {
                let closing =
                    l.closing_at.map(|b| format!("  (closing; withdrawable from block #{b})")).unwrap_or_default();
                println!("lane to {}: {}{closing}", account_hex(&relay), l.funds);
            }
        }
    }
    Ok(())
}

fn earnings(home: &Path, json: bool) -> anyhow::Result<()> {
    use ferry_node::earnings::Earnings;
    let e = match LedgerView::read(home) {
        Ok(view) => Earnings::from_sessions(&view.sessions, &Default::default()),
        Err(ferry_node::ledger::LedgerError::InUse(_)) => Earnings::read(home)?
            .context("the relay is running and has not written its earnings yet; try again in a few seconds")?,
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    let count = |state: &str| e.sessions.iter().filter(|s| s.state == state).count();
    let blocks: Vec<String> = e.blocks().iter().map(|b| format!("#{b}")).collect();
    println!("pending:    {:>14}  ({} sessions)", e.pending, count("pending"));
    println!("in flight:  {:>14}  ({} sessions)", e.in_flight, count("in flight"));
    println!(
        "settled:    {:>14}  (operator's part {}; {} sessions; blocks {})",
        e.settled,
        e.operator_paid,
        count("settled"),
        if blocks.is_empty() { "none".to_string() } else { blocks.join(" ") }
    );
    if count("refused") > 0 {
        println!("refused:    {} sessions (see below)", count("refused"));
    }
    for s in &e.sessions {
        println!(
            "  session {}  viewer {}  {:<9}  owed {:>10}  settled {:>10}  {}{}",
            s.session,
            s.viewer,
            s.state,
            s.owed,
            s.settled,
            s.block_number.map(|b| format!("block #{b}")).unwrap_or_default(),
            s.error.as_ref().map(|x| format!("  error: {x}")).unwrap_or_default()
        );
    }
    Ok(())
}

fn receipts(home: &Path, json: bool) -> anyhow::Result<()> {
    let view = LedgerView::read(home)?;
    let mut o = std::io::stdout().lock();
    let receipt_json = |r: &ferry_primitives::SignedReceipt| {
        let x = &r.receipt;
        serde_json::json!({
            "session": hex::encode(x.session),
            "seq": x.seq,
            "bytes": x.bytes,
            "amount": x.amount.to_string(),
            "tip": x.tip.to_string(),
            "relay": account_hex(&x.relay),
            "viewer": account_hex(&x.viewer),
            "content": hex::encode(x.content),
            "chunk_chain": hex::encode(x.chunk_chain),
            "signature": hex::encode(r.signature),
        })
    };
    if json {
        let out = serde_json::json!({
            "relay": {
                "sessions": view.sessions.iter().map(|s| serde_json::json!({"latest": receipt_json(&s.latest), "settled": s.settled})).collect::<Vec<_>>(),
                "receipts": view.receipts.iter().map(receipt_json).collect::<Vec<_>>(),
            },
            "viewer": {
                "receipts": view.own.iter().map(|o| { let mut v = receipt_json(&o.receipt); v["acked"] = o.acked.into(); v }).collect::<Vec<_>>(),
            },
        });
        writeln!(o, "{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    if view.sessions.is_empty() && view.own.is_empty() {
        writeln!(o, "no receipts yet")?;
    }
    if !view.sessions.is_empty() {
        let total: u128 = view.sessions.iter().map(|s| s.latest.receipt.amount).sum();
        let bytes: u64 = view.sessions.iter().map(|s| s.latest.receipt.bytes).sum();
        writeln!(
            o,
            "relay ledger: {} sessions, {} receipts, {bytes} bytes served, {total} owed",
            view.sessions.len(),
            view.receipts.len()
        )?;
        for s in &view.sessions {
            let r = &s.latest.receipt;
            writeln!(
                o,
                "  session {}  viewer {}  seq {:>5}  {:>12} bytes  amount {:>10}  {}",
                hex::encode(r.session),
                account_hex(&r.viewer),
                r.seq,
                r.bytes,
                r.amount,
                match (&s.settled, &s.refused) {
                    (_, Some(r)) if r.seq == s.latest.receipt.seq => "refused",
                    _ if s.is_pending() => "pending",
                    _ => "settled",
                }
            )?;
        }
    }
    if !view.own.is_empty() {
        let acked = view.own.iter().filter(|r| r.acked).count();
        writeln!(o, "signed as viewer: {} receipts ({acked} acknowledged)", view.own.len())?;
        for own in &view.own {
            let r = &own.receipt.receipt;
            writeln!(
                o,
                "  session {}  relay {}  seq {:>5}  {:>12} bytes  amount {:>10}  {}",
                hex::encode(r.session),
                account_hex(&r.relay),
                r.seq,
                r.bytes,
                r.amount,
                if own.acked { "acked" } else { "unacked" }
            )?;
        }
    }
    Ok(())
}
