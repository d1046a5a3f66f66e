//! The `ferry` binary: argument parsing, logging, and one call into `ferry_node::commands` per command.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferry_node::commands::{
    self, audit::AuditArgs, chain::ChainAction, lane::LaneAction, operator::OperatorAction, relay::RelayArgs,
    watch::WatchArgs, Context,
};
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
    Relay(RelayArgs),
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
    Watch(WatchArgs),
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
    /// Recheck every payout on the chain from public data: each settlement's receipts verified again, its
    /// payout recomputed and compared with the chain's events, transfers and lanes. Exits with 1 on any
    /// discrepancy, naming its block and claim.
    Audit(AuditArgs),
    /// A local dev chain for trying Ferry on one machine.
    Chain {
        #[command(subcommand)]
        action: ChainAction,
        /// RPC port on 127.0.0.1.
        #[arg(long, env = "FERRY_RPC_PORT", default_value_t = 9944, global = true)]
        rpc_port: u16,
    },
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
    let ctx = Context { home: cli.home.unwrap_or_else(commands::default_home), chain: cli.chain };
    match cli.command {
        Command::Init { dev_account } => commands::setup::init(&ctx, dev_account),
        Command::Id { json } => commands::setup::id(&ctx, json),
        Command::Doctor { listen, patience } => {
            commands::setup::doctor(&ctx, listen, Duration::from_secs(patience)).await
        }
        Command::Publish { source, title, share_bps } => {
            commands::publish::publish(&ctx, source, title, share_bps).await
        }
        Command::Register { cid } => commands::publish::register(&ctx, &cid).await,
        Command::Relay(args) => commands::relay::relay(&ctx, args).await,
        Command::Watch(args) => commands::watch::watch(&ctx, args).await,
        Command::Receipts { json } => commands::ledger::receipts(&ctx, json),
        Command::Earnings { json } => commands::ledger::earnings(&ctx, json),
        Command::Operator { action } => commands::operator::operator(&ctx, action).await,
        Command::Lane { action } => commands::lane::lane(&ctx, action).await,
        Command::Balance { json } => commands::lane::balance(&ctx, json).await,
        Command::Tip { cid, amount } => commands::lane::tip(&ctx, &cid, amount).await,
        Command::Audit(args) => commands::audit::audit(&ctx, args).await,
        Command::Chain { action, rpc_port } => commands::chain::chain(&ctx, action, rpc_port).await,
    }
}
