//! `ferry audit`: recheck every payout on a chain from public data alone; or this node's own ledger (`--ledger`)
//! or bill (`--mine`) against the chain.

use anyhow::Context as _;

use super::Context;
use crate::audit::read::ChainSource;
use crate::audit::{audit_chain, bill, ledger, relays, report::describe};
use crate::money::ledger::{LedgerError, LedgerView};

#[derive(clap::Args)]
pub struct AuditArgs {
    /// First block to check (default 1).
    #[arg(long)]
    pub from_block: Option<u32>,
    /// Last block to check (default: the latest finalized one).
    #[arg(long)]
    pub to_block: Option<u32>,
    /// Check this relay's ledger against the chain, and print what the next settlement will pay it.
    #[arg(long, conflicts_with_all = ["mine", "from_block", "to_block"])]
    pub ledger: bool,
    /// Check what relays settled against this viewer: nothing it did not sign, and what is still reserved.
    #[arg(long, conflicts_with_all = ["from_block", "to_block"])]
    pub mine: bool,
    /// Also read these relays' receipt logs (`/ip4/…/tcp/…/p2p/<peer id>`) and check them against the chain.
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<libp2p::Multiaddr>,
    /// Check every block again rather than resume from what earlier runs checked (kept in
    /// ~/.cache/ferry/audit, for audits from block 1).
    #[arg(long)]
    pub no_cache: bool,
    /// Also sum what each relay and each content earned per hour or per day.
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub by: Option<Period>,
    /// The report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Period {
    Hour,
    Day,
}

pub async fn audit(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    // An auditor of the chain needs no node of its own: the chain flag is enough.
    let url = match &ctx.chain {
        Some(url) => url.clone(),
        None => ctx.chain_url(&ctx.config().context("no chain given: pass --chain ws://HOST:PORT")?)?,
    };
    let source = ChainSource::connect(&url).await?;
    if args.ledger || args.mine {
        return own(ctx, &source, args).await;
    }
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
    let cache = super::cache_dir().join("audit");
    let cache = (!args.no_cache).then(|| crate::audit::cache::Cache::path(&cache, source.genesis()));
    let mut report = audit_chain(&source, from, to, cache.as_deref(), |_| bar.inc(1)).await?;
    bar.finish_and_clear();
    if let Some(period) = args.by {
        report.split_by(match period {
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
        });
    }
    if !args.relay.is_empty() {
        report.relays = relay_logs(&source, &args.relay, to).await?;
    }
    print(args.json, &report, report.text())?;
    let unclean: Vec<&str> = report.relays.iter().filter(|l| !l.clean()).map(|l| l.relay.as_str()).collect();
    anyhow::ensure!(unclean.is_empty(), "receipt logs that disagree with the chain: {}", unclean.join(", "));
    if let Some(first) = report.discrepancies.first() {
        anyhow::bail!(
            "{} discrepancies between the chain's payouts and their receipts; the first: {}",
            report.discrepancies.len(),
            describe(first)
        );
    }
    Ok(())
}

/// Reads each relay's receipt log over the network and checks it against the chain's claims at block `at`.
async fn relay_logs(
    source: &ChainSource,
    addrs: &[libp2p::Multiaddr],
    at: u32,
) -> anyhow::Result<Vec<relays::RelayLog>> {
    // A key of its own for this run: an auditor needs no identity.
    let me = crate::identity::Identity::from_secret(rand::random());
    let (client, mut control, _events) = crate::p2p::start(&me, crate::p2p::NetConfig::viewer())?;
    let rules = source.rules().await?;
    let mut out = Vec::new();
    for addr in addrs {
        let name = addr.to_string();
        let peer = relays::dial(&client, addr).await?;
        let account = relays::account_of(&peer).ok_or_else(|| relays::LogError::NoAccount(name.clone()))?;
        let entries = relays::fetch_log(&mut control, peer, &name).await?;
        let on_chain = source.claims_of(at, account).await?;
        out.push(relays::check_log(&name, account, &entries, &on_chain, rules));
    }
    Ok(out)
}

/// `--ledger` and `--mine`: this node's records against the chain at its latest finalized block.
async fn own(ctx: &Context, source: &ChainSource, args: AuditArgs) -> anyhow::Result<()> {
    let account = ctx.identity()?.account;
    let view = match LedgerView::read(&ctx.home) {
        Err(LedgerError::InUse(_)) => anyhow::bail!(
            "a ferry process is running on this home and holds its ledger; stop it first (`systemctl stop ferry-relay` \
             for the service), then audit"
        ),
        other => other?,
    };
    let rules = source.rules().await?;
    let block = source.finalized().await?;
    let problems = if args.ledger {
        let state = source.state(block, &ledger::keys(account, &view.claims)).await?;
        let audit = ledger::audit_ledger(account, &view.claims, &state, rules, block);
        print(args.json, &audit, audit.text())?;
        audit.problems.len()
    } else {
        let state = source.state(block, &bill::keys(account, &view.own)).await?;
        let bill = bill::audit_bill(account, &view.own, &state, block);
        print(args.json, &bill, bill.text())?;
        bill.problems.len()
    };
    anyhow::ensure!(problems == 0, "{problems} problems (listed above)");
    Ok(())
}

fn print(json: bool, value: &impl serde::Serialize, text: String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{text}");
    }
    Ok(())
}
