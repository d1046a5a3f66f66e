//! A viewer's money on chain: `ferry lane` (funds reserved for one relay), `ferry balance` and `ferry tip`.

use anyhow::Context as _;

use super::{content_id, landed, with_spinner, withdrawable, Context};
use crate::chain::Lane;
use crate::identity::{account_hex, parse_hex32};
use crate::money::ledger::LedgerView;

#[derive(clap::Subcommand)]
pub enum LaneAction {
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

fn relay_account(relay: &str) -> anyhow::Result<[u8; 32]> {
    parse_hex32(relay)
        .with_context(|| format!("{relay:?} is not an account (0x and 64 hex characters; `ferry id` prints it)"))
}

fn lane_json(relay: &[u8; 32], l: &Lane) -> serde_json::Value {
    serde_json::json!({"relay": account_hex(relay), "funds": l.funds.to_string(), "closing_at": l.closing_at})
}

fn lane_line(relay: &[u8; 32], l: &Lane) -> String {
    let closing = l.closing_at.map(|b| format!("  (closing; withdrawable from block #{b})")).unwrap_or_default();
    format!("lane to {}: {}{closing}", account_hex(relay), l.funds)
}

pub async fn lane(ctx: &Context, action: LaneAction) -> anyhow::Result<()> {
    let (c, id) = ctx.connect().await?;
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
            match json {
                true => println!("{}", lane_json(&relay, &l)),
                false => println!("{}", lane_line(&relay, &l)),
            }
        }
    }
    Ok(())
}

/// The free balance, and the lanes to every relay this node has paid as a viewer (from its own receipts).
pub async fn balance(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let (c, id) = ctx.connect().await?;
    let free = c.balance(id.account).await?;
    let mut relays: Vec<[u8; 32]> = match LedgerView::read(&ctx.home) {
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
        let lanes: Vec<_> = lanes.iter().map(|(r, l)| lane_json(r, l)).collect();
        println!(
            "{}",
            serde_json::json!({"account": account_hex(&id.account), "free": free.to_string(), "lanes": lanes})
        );
    } else {
        println!("account:    {}", account_hex(&id.account));
        println!("free:       {free}");
        for (r, l) in &lanes {
            println!("{}", lane_line(r, l));
        }
    }
    Ok(())
}

pub async fn tip(ctx: &Context, cid: &str, amount: u128) -> anyhow::Result<()> {
    let cid = content_id(cid)?;
    let (c, _) = ctx.connect().await?;
    println!("submitting: tip of {amount} to the creator of {}", hex::encode(cid));
    landed("tipped", with_spinner(c.tip(cid, amount)).await?);
    Ok(())
}
