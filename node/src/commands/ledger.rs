//! `ferry earnings` and `ferry receipts`: what the ledger holds, for the operator and for the viewer.

use std::io::Write;

use anyhow::Context as _;

use super::Context;
use crate::identity::account_hex;
use crate::money::earnings::Earnings;
use crate::money::ledger::{LedgerError, LedgerView};

/// What this relay earned; read from the earnings file while the relay runs (it holds the ledger).
pub fn earnings(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let e = match LedgerView::read(&ctx.home) {
        Ok(view) => Earnings::from_claims(&view.claims, &Default::default()),
        Err(LedgerError::InUse(_)) => Earnings::read(&ctx.home)?
            .context("the relay is running and has not written its earnings yet; try again in a few seconds")?,
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    let count = |state: &str| e.claims.iter().filter(|s| s.state == state).count();
    let blocks: Vec<String> = e.blocks().iter().map(|b| format!("#{b}")).collect();
    println!("pending:    {:>14}  ({})", e.pending, claims(count("pending")));
    println!("in flight:  {:>14}  ({})", e.in_flight, claims(count("in flight")));
    if count("short") > 0 {
        println!(
            "short:      {:>14}  ({} settled short: the lane ran dry; sent again once it holds funds)",
            e.short,
            claims(count("short"))
        );
    }
    println!(
        "settled:    {:>14}  (operator's part {}; {}; blocks {})",
        e.settled,
        e.operator_paid,
        claims(count("settled")),
        if blocks.is_empty() { "none".to_string() } else { blocks.join(" ") }
    );
    if count("refused") > 0 {
        println!("refused:    {} (see below)", claims(count("refused")));
    }
    for s in &e.claims {
        println!(
            "  claim {}  viewer {}  {:<9}  owed {:>10}  settled {:>10}  {}{}",
            s.claim,
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

fn claims(n: usize) -> String {
    format!("{n} claim{}", if n == 1 { "" } else { "s" })
}

/// The relay's ledger and this node's own signed receipts; a closed pipe (`ferry receipts | head`) is no error.
pub fn receipts(ctx: &Context, json: bool) -> anyhow::Result<()> {
    match list_receipts(ctx, json) {
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            Ok(())
        }
        r => r,
    }
}

fn list_receipts(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let view = LedgerView::read(&ctx.home)?;
    let mut o = std::io::stdout().lock();
    let receipt_json = |r: &ferry_primitives::SignedReceipt| {
        let x = &r.receipt;
        serde_json::json!({
            "claim": hex::encode(x.claim),
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
                "claims": view.claims.iter().map(|s| serde_json::json!({"latest": receipt_json(&s.latest), "settled": s.settled})).collect::<Vec<_>>(),
                "receipts": view.receipts.iter().map(receipt_json).collect::<Vec<_>>(),
            },
            "viewer": {
                "receipts": view.own.iter().map(|o| { let mut v = receipt_json(&o.receipt); v["acked"] = o.acked.into(); v }).collect::<Vec<_>>(),
            },
        });
        writeln!(o, "{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    if view.claims.is_empty() && view.own.is_empty() {
        writeln!(o, "no receipts yet")?;
    }
    if !view.claims.is_empty() {
        let total: u128 = view.claims.iter().map(|s| s.latest.receipt.amount).sum();
        let bytes: u64 = view.claims.iter().map(|s| s.latest.receipt.bytes).sum();
        writeln!(
            o,
            "relay ledger: {}, {} receipts, {bytes} bytes served, {total} owed",
            claims(view.claims.len()),
            view.receipts.len()
        )?;
        for s in &view.claims {
            let r = &s.latest.receipt;
            let state = match (&s.settled, &s.refused) {
                (_, Some(refused)) if refused.seq == r.seq => "refused",
                _ if s.is_pending() => "pending",
                _ => "settled",
            };
            writeln!(o, "{}", receipt_line(r, "viewer", &r.viewer, state))?;
        }
    }
    if !view.own.is_empty() {
        let acked = view.own.iter().filter(|r| r.acked).count();
        writeln!(o, "signed as viewer: {} receipts ({acked} acknowledged)", view.own.len())?;
        for own in &view.own {
            let r = &own.receipt.receipt;
            writeln!(o, "{}", receipt_line(r, "relay", &r.relay, if own.acked { "acked" } else { "unacked" }))?;
        }
    }
    Ok(())
}

/// One receipt as a line; `party` names the other side (the viewer in a relay's ledger, the relay in a viewer's).
fn receipt_line(r: &ferry_primitives::Receipt, party: &str, account: &[u8; 32], state: &str) -> String {
    format!(
        "  claim {}  {party} {}  seq {:>5}  {:>12} bytes  amount {:>10}  {state}",
        hex::encode(r.claim),
        account_hex(account),
        r.seq,
        r.bytes,
        r.amount
    )
}
