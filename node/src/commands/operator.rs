//! `ferry operator`: a relay's registration on chain (bond, peer id, price per MiB).

use super::{landed, with_spinner, withdrawable, Context};
use crate::identity::account_hex;

#[derive(clap::Subcommand)]
pub enum OperatorAction {
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

pub async fn operator(ctx: &Context, action: OperatorAction) -> anyhow::Result<()> {
    let (c, id) = ctx.connect().await?;
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
