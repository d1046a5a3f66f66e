//! `ferry chain up|down|status`: the local dev chain, for trying Ferry on one machine.

use super::{cache_dir, Context};
use crate::devchain::{ChainKind, DevChain};

#[derive(clap::Subcommand)]
pub enum ChainAction {
    /// Start the dev chain unless it runs already; its state survives `down` unless --fresh.
    Up {
        /// Which chain: the real node, or Chopsticks. Default: the node if it is installed, else Chopsticks.
        #[arg(long, env = "FERRY_CHAIN_KIND", value_enum)]
        kind: Option<ChainKind>,
        /// Block time in milliseconds.
        #[arg(long, env = "FERRY_BLOCK_MS", default_value_t = 1000)]
        block_ms: u64,
        /// Start from genesis, dropping the state of earlier runs on this port.
        #[arg(long)]
        fresh: bool,
    },
    /// Stop it.
    Down {
        /// Also delete its state on this port (blocks and balances), so the next `up` starts from genesis.
        #[arg(long)]
        forget: bool,
    },
    /// Print its best and finalized blocks.
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub async fn chain(_ctx: &Context, action: ChainAction, rpc_port: u16) -> anyhow::Result<()> {
    let cache = cache_dir();
    match action {
        ChainAction::Up { kind, block_ms, fresh } => {
            let dev = DevChain::pick(kind, &cache, rpc_port, block_ms)?;
            match dev.up(fresh).await? {
                (s, true) => {
                    println!("dev chain up: {} (block #{}, genesis {}), {}", s.url, s.best, s.genesis, dev.kind);
                    eprintln!("log: {}; stop it with `ferry chain down`", dev.log_file().display());
                }
                (s, false) => println!("a chain already runs on {} (block #{}, genesis {})", s.url, s.best, s.genesis),
            }
        }
        ChainAction::Down { forget } => {
            let chains =
                [ChainKind::Node, ChainKind::Chopsticks].map(|k| DevChain::in_cache(k, &cache, rpc_port, 1000));
            let mut stopped = false;
            let mut failed = None;
            for dev in &chains {
                match dev.down().await {
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
            if forget {
                for dev in &chains {
                    dev.forget()?;
                }
                println!("its state on port {rpc_port} is deleted; the next `ferry chain up` starts from genesis");
            }
        }
        ChainAction::Status { json } => {
            let dev = DevChain::in_cache(ChainKind::Node, &cache, rpc_port, 1000);
            match dev.status().await {
                Ok(s) if json => println!("{}", serde_json::to_string(&s)?),
                Ok(s) => println!("up: {}  best #{}  finalized #{}  genesis {}", s.url, s.best, s.finalized, s.genesis),
                Err(e) => {
                    if json {
                        println!("{}", serde_json::json!({"url": dev.url(), "down": e.to_string()}));
                    } else {
                        println!("down: nothing answers on {} ({e})", dev.url());
                    }
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}
