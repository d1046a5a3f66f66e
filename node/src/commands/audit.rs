//! `ferry audit`: recheck every payout on a chain from public data alone.

use anyhow::Context as _;

use super::Context;
use crate::audit::{audit_chain, read::ChainSource, report::describe};

#[derive(clap::Args)]
pub struct AuditArgs {
    /// First block to check (default 1).
    #[arg(long)]
    pub from_block: Option<u32>,
    /// Last block to check (default: the latest finalized one).
    #[arg(long)]
    pub to_block: Option<u32>,
    /// The report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn audit(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    // An auditor needs no node of its own: the chain flag is enough.
    let url = match &ctx.chain {
        Some(url) => url.clone(),
        None => ctx.chain_url(&ctx.config().context("no chain given: pass --chain ws://HOST:PORT")?)?,
    };
    let source = ChainSource::connect(&url).await?;
    let to = match args.to_block {
        Some(n) => n,
        None => source.finalized().await?,
    };
    let from = args.from_block.unwrap_or(1).max(1);
    anyhow::ensure!(from <= to, "--from-block {from} is after the last block to check, {to}");
    let bar = indicatif::ProgressBar::new(u64::from(to - from + 1));
    if args.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} blocks, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix("auditing");
    let report = audit_chain(&source, from, to, |_| bar.inc(1)).await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    if let Some(first) = report.discrepancies.first() {
        anyhow::bail!(
            "{} discrepancies between the chain's payouts and their receipts; the first: {}",
            report.discrepancies.len(),
            describe(first)
        );
    }
    Ok(())
}
