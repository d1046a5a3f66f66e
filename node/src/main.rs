//! The `ferry` binary: argument parsing, configuration, and one call into the library per command.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ferry_node::config::{Config, CONFIG_FILE, TEMPLATE};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make this node's ed25519 identity and a commented config file.
    Init,
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
        /// Price per MiB of verified video.
        #[arg(long, env = "FERRY_PRICE")]
        price: Option<u128>,
        /// Serve Prometheus metrics here (e.g. 127.0.0.1:9464).
        #[arg(long, env = "FERRY_METRICS")]
        metrics: Option<SocketAddr>,
        /// Test hook: corrupt the served byte at this offset of every transfer.
        #[arg(long, hide = true)]
        fault_flip_after: Option<u64>,
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
    /// Register this node as an operator on chain (bond, peer id, price per MiB).
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// Put funds into escrow to pay relays (plus penalty collateral).
    Deposit {
        amount: u128,
        #[arg(long, default_value_t = 0)]
        collateral: u128,
    },
    /// Start taking funds out of escrow (relays can still settle during the delay).
    Unbond { amount: u128 },
    /// Take back escrow that finished unbonding.
    Withdraw,
    /// Tip a video's creator.
    Tip { cid: String, amount: u128 },
    /// This node's balance and escrow on chain.
    Balance {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OperatorAction {
    Register {
        #[arg(long)]
        price: u128,
        #[arg(long)]
        bond: u128,
    },
}

/// Connects to the configured chain with this node's identity.
async fn chain(home: &Path) -> anyhow::Result<(ferry_node::chain::Chain, Identity)> {
    let cfg = Config::load(home)?;
    let id = load_identity(home)?;
    let url = std::env::var("FERRY_CHAIN")
        .ok()
        .or(cfg.chain.url)
        .context("no chain configured: set [chain] url in config.toml or FERRY_CHAIN (e.g. ws://127.0.0.1:9944)")?;
    let c = ferry_node::chain::Chain::connect(&url, id.secret()).await?;
    Ok((c, id))
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

fn domain(cfg: &Config) -> anyhow::Result<Domain> {
    let g = parse_hex32(&cfg.chain.genesis)
        .with_context(|| format!("chain.genesis {:?} is not a 32-byte hex hash", cfg.chain.genesis))?;
    Ok(Domain(g))
}

fn load_identity(home: &Path) -> anyhow::Result<Identity> {
    Ok(Identity::load(home)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,libp2p_swarm=warn,libp2p_kad=error,libp2p_gossipsub=error")
        }))
        .init();
    let cli = Cli::parse();
    let home = cli.home.unwrap_or_else(default_home);
    match cli.command {
        Command::Init => {
            std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
            let id = Identity::create(&home)?;
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
            println!("{}", hex::encode(cid));
        }
        Command::Relay { listen, bootstrap, price, metrics, fault_flip_after } => {
            let cfg = Config::load(&home)?;
            let id = load_identity(&home)?;
            let parse = |v: &[String]| {
                v.iter()
                    .map(|s| s.parse::<Multiaddr>().with_context(|| format!("bad multiaddr {s:?} in config")))
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let opts = ferry_node::relay::RelayOptions {
                listen: if listen.is_empty() { parse(&cfg.relay.listen)? } else { listen },
                bootstrap: if bootstrap.is_empty() { parse(&cfg.relay.bootstrap)? } else { bootstrap },
                price_per_mib: price.unwrap_or(cfg.relay.price_per_mib),
                credit_window: cfg.relay.credit_window_bytes,
                cache_bytes: cfg.relay.cache_bytes,
                metrics: metrics.or(cfg.relay.metrics),
                limits: ferry_node::serve::Limits {
                    max_sessions_per_peer: cfg.relay.max_sessions_per_peer,
                    max_streams_per_peer: cfg.relay.max_streams_per_peer,
                    max_streams: cfg.relay.max_streams,
                    streams_per_second_per_peer: cfg.relay.streams_per_second_per_peer,
                },
                domain: domain(&cfg)?,
                stall: Duration::from_millis(cfg.viewer.stall_timeout_ms),
                fault_flip_after,
            };
            ferry_node::relay::run(&home, id, opts, shutdown_signal()).await?;
        }
        Command::Watch { cid, bootstrap, gateway, max_price } => {
            let cfg = Config::load(&home)?;
            let id = load_identity(&home)?;
            let cid = parse_hex32(&cid).with_context(|| format!("{cid:?} is not a content id (64 hex characters)"))?;
            let parse = |v: &[String]| {
                v.iter()
                    .map(|s| s.parse::<Multiaddr>().with_context(|| format!("bad multiaddr {s:?} in config")))
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let opts = ferry_node::watch::WatchOptions {
                bootstrap: if bootstrap.is_empty() { parse(&cfg.viewer.bootstrap)? } else { bootstrap },
                gateway: gateway.unwrap_or(cfg.viewer.gateway),
                max_price_per_mib: max_price,
                stall: Duration::from_millis(cfg.viewer.stall_timeout_ms),
                prefetch: cfg.viewer.prefetch_segments,
                cache_bytes: cfg.relay.cache_bytes,
                domain: domain(&cfg)?,
            };
            ferry_node::watch::run(&home, id, cid, opts, shutdown_signal()).await?;
        }
        Command::Operator { action: OperatorAction::Register { price, bond } } => {
            let (c, id) = chain(&home).await?;
            landed("operator registered", c.register_operator(id.peer_id.to_bytes(), price, bond).await?);
        }
        Command::Deposit { amount, collateral } => {
            let (c, _) = chain(&home).await?;
            landed("deposited", c.deposit(amount, collateral).await?);
        }
        Command::Unbond { amount } => {
            let (c, _) = chain(&home).await?;
            landed("unbonding", c.unbond(amount).await?);
        }
        Command::Withdraw => {
            let (c, _) = chain(&home).await?;
            landed("withdrawn", c.withdraw().await?);
        }
        Command::Tip { cid, amount } => {
            let cid = parse_hex32(&cid).with_context(|| format!("{cid:?} is not a content id (64 hex characters)"))?;
            let (c, _) = chain(&home).await?;
            landed("tipped", c.tip(cid, amount).await?);
        }
        Command::Balance { json } => {
            let (c, id) = chain(&home).await?;
            let free = c.balance(id.account).await?;
            let (escrow, collateral, unbonding) = c.escrow(id.account).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"account": account_hex(&id.account), "free": free.to_string(), "escrow": escrow.to_string(),
                        "collateral": collateral.to_string(), "unbonding": unbonding.to_string()})
                );
            } else {
                println!("account:    {}", account_hex(&id.account));
                println!("free:       {free}");
                println!("escrow:     {escrow}  (collateral {collateral}, unbonding {unbonding})");
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
                if s.settled.is_some() { "settled" } else { "pending" }
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
