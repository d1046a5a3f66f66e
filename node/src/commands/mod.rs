//! The `ferry` commands, one module per family. `main.rs` parses the arguments and calls one function here.

pub mod audit;
pub mod chain;
pub mod lane;
pub mod ledger;
pub mod operator;
pub mod publish;
pub mod relay;
pub mod setup;
pub mod watch;

mod domain;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;
use crate::identity::{parse_hex32, Identity};

/// What every command is given: the node's home, and the chain URL from `--chain`/`FERRY_CHAIN`, if any.
pub struct Context {
    pub home: PathBuf,
    pub chain: Option<String>,
}

impl Context {
    pub fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::load(&self.home)?)
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.home)?)
    }

    /// The chain URL: the flag, else the config's.
    pub fn chain_url(&self, cfg: &Config) -> anyhow::Result<String> {
        self.chain.clone().or(cfg.chain.url.clone()).context(
            "no chain configured: set [chain] url in config.toml, FERRY_CHAIN or --chain (e.g. ws://127.0.0.1:9944)",
        )
    }

    /// Connects to the configured chain with this node's identity.
    async fn connect(&self) -> anyhow::Result<(crate::chain::Chain, Identity)> {
        let url = self.chain_url(&self.config()?)?;
        let id = self.identity()?;
        let c = crate::chain::Chain::connect(&url, id.secret()).await?;
        Ok((c, id))
    }
}

/// `~/.ferry`, the home when neither `--home` nor `FERRY_HOME` names one.
pub fn default_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".ferry")
}

/// Where builds, dev chains and their logs live: `FERRY_CACHE`, else `~/.cache/ferry`.
fn cache_dir() -> PathBuf {
    std::env::var_os("FERRY_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/ferry")
    })
}

fn content_id(cid: &str) -> anyhow::Result<[u8; 32]> {
    parse_hex32(cid).with_context(|| format!("{cid:?} is not a content id (64 hex characters)"))
}

fn multiaddrs(v: &[String]) -> anyhow::Result<Vec<libp2p::Multiaddr>> {
    v.iter().map(|s| s.parse().with_context(|| format!("bad multiaddr {s:?} in config"))).collect()
}

fn landed(what: &str, at: crate::chain::Inclusion) {
    println!("{what}: finalized in block #{} (0x{})", at.block_number, hex::encode(at.block_hash));
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

/// Resolves on Ctrl-C or SIGTERM, so a relay or viewer stops cleanly under systemd too. The handlers are installed
/// here, before the node starts: installed on the future's first poll, a SIGTERM that came right after the node
/// printed its addresses could still kill it outright.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch for a signal to stop on");
                    std::future::pending::<()>().await
                }
            }
        };
        tokio::select! {
            _ = wait(term) => {}
            _ = wait(int) => {}
        }
    }
}

/// The chain refuses an early withdrawal with a bare `StillUnbonding`; this says from which block instead.
async fn withdrawable(c: &crate::chain::Chain, from: Option<u32>, what: &str, how: &str) -> anyhow::Result<()> {
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
