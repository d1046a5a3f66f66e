//! `ferry audit` end to end: an operator's prediction of its next payout, a viewer's bill, and a ledger edited
//! after signing, all against a real dev chain with real relays and a real viewer.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use ferry_primitives::Balance;
use ferry_tests::*;

/// Runs `ferry audit ARGS --json` on `home` and returns whether it passed and its report.
fn audit(chain: &TestChain, home: &Home, args: &[&str]) -> Result<(bool, serde_json::Value)> {
    let mut all = vec!["--chain", chain.url.as_str(), "audit", "--json"];
    all.extend_from_slice(args);
    let out = std::process::Command::new(ferry_bin())
        .arg("--home")
        .arg(&home.dir)
        .args(&all)
        .env("FERRY_LOG", "warn")
        .output()?;
    let report = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("ferry audit printed no report: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok((out.status.success(), report))
}

fn number(v: &serde_json::Value) -> Balance {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The relay's receipts wait unsettled; `ferry audit --ledger` predicts what their settlement will pay the operator,
/// and the chain then pays exactly that. The viewer's `--mine` shows the same payment against what it signed, and
/// an audit of the chain finds every payout right.
#[test]
fn the_operator_predicts_its_payout_to_the_unit_and_the_viewer_checks_its_bill() -> Result<()> {
    let Solo { _root, chain, creator, viewer, cid } = Solo::new(TestChain::up()?, 600_000)?;
    let c = chain.client(&creator)?;
    let start = block_on(c.finalized_number())?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    play(&chain, &viewer, &cid, &addr, 6)?;
    origin.stop()?;

    let (passed, predicted) = audit(&chain, &creator, &["--ledger"])?;
    ensure!(passed && predicted["problems"] == serde_json::json!([]), "ledger audit: {predicted}");
    let operator = number(&predicted["next_total"]["operator"]);
    ensure!(operator > 0, "nothing predicted: {predicted}");

    creator.set_config("settle_every_ms = 600000", "settle_every_ms = 1000")?;
    let (origin, _) = relay_on(&chain, &creator, &[])?;
    creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    let end = block_on(c.finalized_number())?;
    let m = money(&c, start, end)?;
    let paid: Balance =
        m.settled.iter().filter(|(r, _)| *r == creator.account_bytes()).map(|(_, p)| p.operator_paid).sum();
    assert_eq!(paid, operator, "the chain paid the operator what --ledger predicted");

    let (passed, bill) = audit(&chain, &viewer, &["--mine"])?;
    ensure!(passed && bill["problems"] == serde_json::json!([]), "bill: {bill}");
    let row = &bill["relays"][0];
    ensure!(row["relay"] == creator.account, "bill: {bill}");
    let signed: Balance = claim_totals(&creator.receipts()?).iter().map(|(a, t)| a + t).sum();
    assert_eq!(number(&row["signed"]), signed, "the bill counts what the viewer signed");
    assert_eq!(number(&row["settled"]), signed, "and all of it settled");
    assert_eq!(number(&row["owed"]), 0);

    let (passed, report) = chain.audit(start + 1, end, &[])?;
    ensure!(passed && report["discrepancies"] == serde_json::json!([]), "chain audit: {report}");

    // The whole chain, for people, per hour; run again, it resumes from what it checked and says the same.
    let first = chain.ferry(&viewer, &["audit", "--by", "hour", "--to-block", &end.to_string()])?;
    for line in ["No discrepancies", "Earned per period", creator.account.as_str()] {
        ensure!(first.contains(line), "the report lacks {line:?}:\n{first}");
    }
    let again = chain.ferry(&viewer, &["audit", "--by", "hour", "--to-block", &end.to_string()])?;
    assert_eq!(again, first, "a resumed audit reports the same");
    Ok(())
}

/// A relay whose ledger was edited after the viewer signed (a receipt's amount raised) learns it from
/// `ferry audit --ledger`, which names the claim before the relay sends it to the chain.
#[test]
fn an_edited_ledger_is_named_before_it_is_settled() -> Result<()> {
    let Solo { _root, chain, creator, viewer, cid } = Solo::new(TestChain::up()?, 600_000)?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    play(&chain, &viewer, &cid, &addr, 6)?;
    origin.stop()?;
    let genesis = chain_genesis(&chain)?;
    let mut edited = latest_receipts(&creator, genesis)?.into_iter().next().context("no receipt")?;
    edited.receipt.seq += 1;
    edited.receipt.amount += 1_000_000;
    put_in_ledger(&creator, [edited.clone()])?;

    let (passed, report) = audit(&chain, &creator, &["--ledger"])?;
    ensure!(!passed, "the audit passed an edited ledger: {report}");
    let problems = report["problems"].as_array().context("problems")?;
    ensure!(problems.len() == 1, "one problem: {report}");
    assert_eq!(problems[0]["claim"], hex::encode(edited.receipt.claim));
    ensure!(problems[0]["what"].as_str().is_some_and(|w| w.contains("does not verify")), "{report}");
    Ok(())
}

/// A relay publishes its receipt log; an auditor reading it beside the chain finds it whole, and once the relay
/// has lost a claim the chain settled (its ledger deleted), reports that claim missing and fails.
#[test]
fn a_receipt_log_that_lost_a_settled_claim_is_reported_missing() -> Result<()> {
    let Solo { _root, chain, creator, viewer, cid } = Solo::new(TestChain::up()?, 1000)?;
    let c = chain.client(&creator)?;
    let start = block_on(c.finalized_number())?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    play(&chain, &viewer, &cid, &addr, 6)?;
    creator.wait_settled(1, Duration::from_secs(90))?;
    let end = block_on(c.finalized_number())?;
    let (passed, report) = chain.audit(start + 1, end, &["--relay", &addr])?;
    ensure!(passed, "the audit of a whole log failed: {report}");
    let log = &report["relays"][0];
    ensure!(log["claims"] == 1 && log["missing"] == serde_json::json!([]), "log: {log}");
    ensure!(log["account"] == creator.account, "log: {log}");

    origin.stop()?;
    std::fs::remove_file(creator.dir.join("ledger.redb"))?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    let (passed, report) = chain.audit(start + 1, end, &["--relay", &addr])?;
    origin.stop()?;
    ensure!(!passed, "the audit passed a log that lost a settled claim: {report}");
    let missing = report["relays"][0]["missing"].as_array().context("missing")?;
    ensure!(missing.len() == 1, "one claim missing: {report}");
    Ok(())
}
