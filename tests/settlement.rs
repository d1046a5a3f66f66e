//! Settlement on a real dev chain: real relays and a real viewer play a real video, the relays settle their
//! receipts, and the chain's balances and lanes must move by exactly what the receipts in the ledgers say.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use ferry_node::chain::{BlockMoney, Chain};
use ferry_primitives::{claim_id, Balance, ContentHeader, Domain, Receipt, Split};
use ferry_tests::*;

/// Balances and lanes of the parties at one moment.
#[derive(Debug, Clone, Copy)]
struct Books {
    block: u32,
    creator: Balance,
    operator: Balance,
    viewer: Balance,
    /// The viewer's lane to the relay it plays from (the cache relay, or the origin when there is none).
    viewer_lane: Balance,
    /// The viewer's lane to the origin, when there is a cache relay too.
    viewer_origin_lane: Balance,
    /// The cache relay's lane to the origin.
    operator_lane: Balance,
    issuance: Balance,
}

fn books(c: &Chain, creator: &Home, operator: Option<&Home>, viewer: &Home) -> Result<Books> {
    block_on(async {
        let op = operator.map(|o| o.account_bytes()).unwrap_or([0; 32]);
        let (v, origin) = (viewer.account_bytes(), creator.account_bytes());
        let first = if operator.is_some() { op } else { origin };
        Ok(Books {
            block: c.finalized_number().await?,
            creator: c.balance(origin).await?,
            operator: c.balance(op).await?,
            viewer: c.balance(v).await?,
            viewer_lane: c.lane(v, first).await?.funds,
            viewer_origin_lane: if operator.is_some() { c.lane(v, origin).await?.funds } else { 0 },
            operator_lane: c.lane(op, origin).await?.funds,
            issuance: c.total_issuance().await?,
        })
    })
}

fn fees_of(m: &BlockMoney, who: [u8; 32]) -> Balance {
    m.fees.iter().filter(|(w, _)| *w == who).map(|(_, f)| f).sum()
}

/// The split of every claim's latest receipt, summed: what the chain must have paid for a relay's ledger.
fn due(totals: &[(u128, u128)]) -> (Split, Balance, Balance) {
    let mut s = Split::default();
    let (mut amount, mut tips) = (0, 0);
    for (a, t) in totals {
        let x = Split::of(*a, SHARE_BPS, FEE_BPS);
        s = Split { creator: s.creator + x.creator, burn: s.burn + x.burn, operator: s.operator + x.operator };
        amount += a;
        tips += t;
    }
    (s, amount, tips)
}

/// Waits until the finalized block is past `block`, so reads see everything up to it.
fn settle_time(c: &Chain) -> Result<u32> {
    let now = block_on(c.finalized_number())?;
    for _ in 0..100 {
        let n = block_on(c.finalized_number())?;
        if n > now {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!("the chain stopped finalizing blocks")
}

#[test]
fn payouts_on_chain_match_the_receipts_in_the_ledgers() -> Result<()> {
    let root = test_root()?;
    let chain = TestChain::node()?;
    let creator = Home::dev(root.path(), "origin", "creator", 1000)?;
    let operator = Home::dev(root.path(), "cache", "operator", 1000)?;
    let viewer = Home::dev(root.path(), "viewer", "viewer", 1000)?;
    let video = make_video(root.path(), 8)?;

    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &video)?;
    chain.ferry(&operator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    // The cache relay pays the origin for what it caches, from its lane to the origin; the viewer pays the cache.
    open_lane(&chain, &operator, &creator, "1000000000000")?;
    open_lane(&chain, &viewer, &operator, "1000000000000")?;
    let c = chain.client(&viewer)?;
    let before = books(&c, &creator, Some(&operator), &viewer)?;

    let (origin, origin_addr) = relay_on(&chain, &creator, &[])?;
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let (cache, cache_addr) = relay_on(&chain, &operator, &["--bootstrap", &origin_addr, "--metrics", &metrics])?;
    play(&chain, &viewer, &cid, &cache_addr, 8)?;
    let tip: Balance = 123_456_789;
    chain.ferry(&viewer, &["tip", &cid, &tip.to_string()])?;

    operator.wait_settled(1, Duration::from_secs(90))?;
    creator.wait_settled(1, Duration::from_secs(90))?;
    // The cache's metrics agree with its ledger: every receipt it acknowledged, and what it is owed and was paid.
    let scraped = scrape(&metrics)?;
    let cache_earnings = operator.earnings()?;
    let sample = |name: &str| scraped.get(name).copied().with_context(|| format!("no {name} in {scraped:?}"));
    let claims = cache_earnings["claims"].as_array().context("claims")?;
    let seqs: u64 = claims.iter().filter_map(|c| c["seq"].as_u64()).sum();
    let bytes: u64 = claims.iter().filter_map(|c| c["bytes"].as_u64()).sum();
    assert_eq!(sample("ferry_receipts_accepted_total")?, seqs as f64, "one receipt a seq, all in the ledger");
    ensure!(sample("ferry_chunks_served_total")? >= seqs as f64, "a receipt for every chunk served");
    ensure!(sample("ferry_bytes_served_total")? >= bytes as f64, "served at least what was receipted");
    for (gauge, field) in [("ferry_amount_settled", "settled"), ("ferry_amount_operator_paid", "operator_paid")] {
        let want: f64 = cache_earnings[field].as_str().context("earnings figure")?.parse()?;
        assert_eq!(sample(gauge)?, want, "{gauge} against the ledger's {field}");
    }
    ensure!(sample("ferry_settlement_batches_total")? >= 1.0 && sample("ferry_ledger_commit_seconds_count")? >= 1.0);
    cache.stop()?;
    origin.stop()?;
    settle_time(&c)?;
    let after = books(&c, &creator, Some(&operator), &viewer)?;
    let m = money(&c, before.block, after.block)?;

    // What the ledgers say was served and signed for. The viewer normally pays only the cache, but if the cache
    // stalls under load it may fetch part of the video from the origin, which it finds through the DHT.
    let at_cache = claim_totals_by_viewer(&operator.receipts()?);
    let at_origin = claim_totals_by_viewer(&creator.receipts()?);
    let by = |rows: &[(String, u128, u128)], who: &str| -> Vec<(u128, u128)> {
        rows.iter().filter(|(v, _, _)| v == who).map(|(_, a, t)| (*a, *t)).collect()
    };
    ensure!(!at_cache.is_empty() && !by(&at_origin, &operator.account).is_empty(), "both relays hold receipts");
    ensure!(at_cache.iter().all(|(v, _, _)| *v == viewer.account), "only the viewer pays the cache");
    let (a, a_amount, _) = due(&by(&at_cache, &viewer.account));
    let (b, b_amount, _) = due(&by(&at_origin, &operator.account));
    let (d, d_amount, _) = due(&by(&at_origin, &viewer.account));
    ensure!(a_amount > 0 && b_amount > 0);

    // Every settled claim in the ledgers is settled up to its latest receipt.
    for home in [&operator, &creator] {
        for s in home.receipts()?["relay"]["claims"].as_array().context("claims")? {
            ensure!(s["settled"]["seq"] == s["latest"]["seq"], "claim not settled to its latest receipt: {s}");
        }
    }

    let fees_total: Balance = m.fees.iter().map(|(_, f)| f).sum();
    let tip_split = Split::tip(tip, FEE_BPS);
    assert_eq!(before.viewer_lane - after.viewer_lane, a_amount, "the viewer's lane to the cache pays its receipts");
    // If the viewer fell back to the origin, it opened a lane to it during playback and paid from that.
    let origin_lane_opened: Balance = m
        .lanes_funded
        .iter()
        .filter(|(v, r, _)| *v == viewer.account_bytes() && *r == creator.account_bytes())
        .map(|(_, _, a)| a)
        .sum();
    assert_eq!(
        before.viewer_origin_lane + origin_lane_opened - after.viewer_origin_lane,
        d_amount,
        "the viewer's lane to the origin pays its receipts"
    );
    assert_eq!(before.operator_lane - after.operator_lane, b_amount, "the cache's lane pays the origin's receipts");
    assert_eq!(
        after.operator + fees_of(&m, operator.account_bytes()) - before.operator,
        a.operator,
        "cache operator earns its part of the viewer's receipts"
    );
    // The origin relay runs on the creator's account: it earns the operator's part of the cache's receipts, the
    // creator share of every receipt, and the tip.
    assert_eq!(
        after.creator + fees_of(&m, creator.account_bytes()) - before.creator,
        a.creator + b.creator + b.operator + d.creator + d.operator + tip_split.creator,
        "creator and origin earnings"
    );
    assert_eq!(
        before.viewer - after.viewer - fees_of(&m, viewer.account_bytes()) - origin_lane_opened,
        tip,
        "viewer paid the tip"
    );
    assert_eq!(
        before.issuance - after.issuance,
        a.burn + b.burn + d.burn + tip_split.burn + fees_total,
        "the protocol fee is burned on every payment and tip"
    );
    let op_events: Balance =
        m.settled.iter().filter(|(r, _)| *r == operator.account_bytes()).map(|(_, p)| p.operator_paid).sum();
    assert_eq!(op_events, a.operator, "Settled events agree with the balances");
    ensure!(m.tips.iter().any(|(who, amount)| *who == creator.account_bytes() && *amount == tip_split.creator));

    // `ferry earnings` reports the same figures, with the blocks they landed in.
    let e = operator.earnings()?;
    assert_eq!(e["settled"], a_amount.to_string());
    assert_eq!(e["operator_paid"], a.operator.to_string());
    ensure!(e["claims"][0]["block_number"].as_u64().is_some_and(|b| b > before.block as u64));

    // An auditor with nothing but the chain rebuilds the same payouts from the receipts in the blocks.
    let (passed, report) = chain.audit(before.block + 1, after.block, &[])?;
    ensure!(passed && report["discrepancies"] == serde_json::json!([]), "the audit found discrepancies: {report}");
    let of = |relay: &Home| {
        let rows = report["by_relay"].as_array().cloned().unwrap_or_default();
        rows.into_iter()
            .find(|t| t["of"] == relay.account)
            .with_context(|| format!("no audit row for {}", relay.account))
    };
    let (cache_row, origin_row) = (of(&operator)?, of(&creator)?);
    assert_eq!(cache_row["paid"], a_amount.to_string(), "audit: the cache was paid its receipts");
    assert_eq!(cache_row["operator"], a.operator.to_string(), "audit: the cache operator's part");
    assert_eq!(origin_row["paid"], (b_amount + d_amount).to_string(), "audit: the origin was paid its receipts");
    assert_eq!(origin_row["operator"], (b.operator + d.operator).to_string(), "audit: the origin operator's part");
    let burned: Balance = report["by_relay"]
        .as_array()
        .context("by_relay")?
        .iter()
        .map(|t| t["burned"].as_str().and_then(|b| b.parse::<Balance>().ok()).unwrap_or(0))
        .sum();
    assert_eq!(burned, a.burn + b.burn + d.burn, "audit: what settlements burned");
    // The creator's row holds what its balance gained as creator: its share of every receipt and the direct tip.
    let content_row = report["by_content"]
        .as_array()
        .and_then(|rows| rows.iter().find(|t| t["of"] == cid.as_str()).cloned())
        .context("no audit row for the content")?;
    assert_eq!(content_row["direct_tips"], tip.to_string(), "audit: the direct tip");
    assert_eq!(
        content_row["creator"],
        (a.creator + b.creator + d.creator + tip_split.creator).to_string(),
        "audit: the creator's part of the receipts and the tip"
    );
    let tips = report["direct_tips"].as_array().context("direct_tips")?;
    ensure!(
        tips.len() == 1
            && tips[0]["from"] == viewer.account.trim_start_matches("0x")
            && tips[0]["burned"] == tip_split.burn.to_string(),
        "audit: the tip's line: {tips:?}"
    );
    Ok(())
}

#[test]
fn a_relay_killed_before_settling_settles_once_after_restart_and_resubmission_pays_nothing() -> Result<()> {
    // Settles once at start (nothing yet), then not for ten minutes: the receipts wait in the ledger.
    let Solo { _root, chain, creator, viewer, cid } = Solo::new(TestChain::node()?, 600_000)?;
    let c = chain.client(&creator)?;
    let before = books(&c, &creator, None, &viewer)?;

    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    play(&chain, &viewer, &cid, &addr, 6)?;
    origin.kill9()?;

    let e = creator.earnings()?;
    ensure!(e["settled"] == "0" && e["pending"] != "0", "receipts wait unsettled after the crash: {e}");
    assert_eq!(books(&c, &creator, None, &viewer)?.viewer_lane, before.viewer_lane, "nothing settled yet");

    creator.set_config("settle_every_ms = 600000", "settle_every_ms = 1000")?;
    let (origin, _) = relay_on(&chain, &creator, &[])?;
    creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    settle_time(&c)?;
    let after = books(&c, &creator, None, &viewer)?;
    let totals = claim_totals(&creator.receipts()?);
    let (split, amount, _) = due(&totals);
    let m = money(&c, before.block, after.block)?;
    assert_eq!(before.viewer_lane - after.viewer_lane, amount);
    assert_eq!(after.creator + fees_of(&m, creator.account_bytes()) - before.creator, split.operator + split.creator);
    let settled_events = m.settled.len();
    ensure!(settled_events >= totals.len(), "every claim settled");

    // The same batch, twice more: both land, neither pays.
    let batch = latest_receipts(&creator, chain_genesis(&chain)?)?;
    let again = books(&c, &creator, None, &viewer)?;
    for _ in 0..2 {
        let (_, payouts) = block_on(c.settle(batch.clone()))?;
        ensure!(payouts.is_empty(), "a settled receipt paid again: {payouts:?}");
    }
    settle_time(&c)?;
    let last = books(&c, &creator, None, &viewer)?;
    let m = money(&c, again.block, last.block)?;
    assert_eq!(last.viewer_lane, again.viewer_lane, "resubmission takes nothing from the viewer");
    assert_eq!(last.creator + fees_of(&m, creator.account_bytes()), again.creator, "resubmission pays nothing");
    ensure!(m.settled.is_empty(), "no Settled event for a resubmitted batch");
    Ok(())
}

#[test]
fn settlement_catches_up_after_the_chain_was_down_during_playback() -> Result<()> {
    let Solo { _root, chain, creator, viewer, cid } = Solo::new(TestChain::node()?, 1000)?;
    let c = chain.client(&creator)?;
    let before = books(&c, &creator, None, &viewer)?;
    drop(c);

    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    // A first playback while the chain is up: the relay reads the viewer's lane and settles.
    play(&chain, &viewer, &cid, &addr, 6)?;
    creator.wait_settled(1, Duration::from_secs(90))?;

    chain.stop()?;
    // The second playback happens with the chain down; receipts pile up in the ledger. The viewer's own copy is
    // dropped first, so it fetches (and pays for) the video again.
    std::fs::remove_dir_all(viewer.dir.join("store"))?;
    play(&chain, &viewer, &cid, &addr, 6)?;
    // Receipts of the second playback wait in the ledger.
    creator.wait_earnings(Duration::from_secs(60), |e| e["pending"] != "0")?;
    let log = std::fs::read_to_string(&origin.log)?;
    ensure!(log.contains("chain unreachable"), "the relay logs the outage");

    chain.start()?;
    creator.wait_settled(1, Duration::from_secs(120))?;
    origin.stop()?;
    let c = chain.client(&creator)?;
    settle_time(&c)?;
    let after = books(&c, &creator, None, &viewer)?;
    let totals = claim_totals(&creator.receipts()?);
    ensure!(totals.len() == 1, "two playbacks of one video by one viewer are one claim: {totals:?}");
    let (split, amount, _) = due(&totals);
    let m = money(&c, before.block, after.block)?;
    assert_eq!(before.viewer_lane - after.viewer_lane, amount, "every receipt was settled, once");
    assert_eq!(after.creator + fees_of(&m, creator.account_bytes()) - before.creator, split.operator + split.creator);
    Ok(())
}

#[test]
fn forged_wrong_relay_wrong_chain_and_overspending_receipts_are_refused_on_chain() -> Result<()> {
    let root = test_root()?;
    let chain = TestChain::node()?;
    let creator = Home::dev(root.path(), "origin", "creator", 1000)?;
    let viewer = Home::dev(root.path(), "viewer", "viewer", 1000)?;
    let other = Home::dev(root.path(), "other", "operator", 1000)?;
    let video = make_video(root.path(), 2)?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &video)?;
    let lane: Balance = 1_000_000;
    open_lane(&chain, &viewer, &creator, &lane.to_string())?;
    let genesis = chain_genesis(&chain)?;
    let content = ferry_node::identity::parse_hex32(&cid).context("cid")?;
    let viewer_secret = ferry_node::identity::dev_secret("viewer").context("viewer secret")?;

    // Each receipt names content of its own, registered to the creator, so each is a claim of its own.
    let c = chain.client(&creator)?;
    let mut contents = vec![content];
    for i in 2..=5u8 {
        let header =
            ContentHeader { creator: creator.account_bytes(), creator_share_bps: 2_000, manifest_hash: [i; 32] };
        block_on(c.register_content(header.clone()))?;
        contents.push(header.content_id());
    }
    let receipt = |i: u8, amount: Balance| {
        let content = contents[usize::from(i) - 1];
        Receipt {
            domain: Domain(genesis),
            claim: claim_id(&creator.account_bytes(), &viewer.account_bytes(), &content),
            relay: creator.account_bytes(),
            viewer: viewer.account_bytes(),
            content,
            seq: 1,
            bytes: 1 << 20,
            amount,
            chunk_chain: [i; 32],
            tip: 0,
        }
    };
    let tag: HashMap<String, &str> = (1..=5u8)
        .map(|i| (hex::encode(receipt(i, 0).claim), ["01", "02", "03", "04", "05"][usize::from(i) - 1]))
        .collect();
    let good = receipt(1, 10_000).sign(&viewer_secret);
    let mut forged = receipt(2, 10_000).sign(&viewer_secret);
    forged.signature[0] ^= 1;
    let wrong_relay = Receipt { relay: other.account_bytes(), ..receipt(3, 10_000) }.sign(&viewer_secret);
    let wrong_chain = Receipt { domain: Domain([9; 32]), ..receipt(4, 10_000) }.sign(&viewer_secret);
    let overspend = receipt(5, 50_000_000).sign(&viewer_secret);
    // Straight into the relay's ledger, as if a buggy or hostile relay build had accepted them.
    put_in_ledger(&creator, [good.clone(), forged, wrong_relay, wrong_chain, overspend])?;

    let before = books(&c, &creator, None, &viewer)?;
    let (origin, _) = relay_on(&chain, &creator, &[])?;
    let e = creator.wait_settled(5, Duration::from_secs(120))?;
    origin.stop()?;
    settle_time(&c)?;
    let after = books(&c, &creator, None, &viewer)?;

    let states: HashMap<String, (String, String)> = e["claims"]
        .as_array()
        .context("claims")?
        .iter()
        .map(|s| {
            (
                tag.get(s["claim"].as_str().unwrap_or_default()).copied().unwrap_or("?").to_string(),
                (s["state"].as_str().unwrap_or_default().to_string(), s["error"].to_string()),
            )
        })
        .collect();
    assert_eq!(states["01"].0, "settled");
    assert_eq!(states["05"].0, "short", "the overspending claim was settled short");
    for (s, error) in [("02", "Ferry::BadSignature"), ("03", "Ferry::WrongRelay"), ("04", "Ferry::WrongDomain")] {
        assert_eq!(states[s].0, "refused", "claim {s}");
        ensure!(states[s].1.contains(error), "claim {s}: {:?} should name {error}", states[s].1);
    }
    let log = creator.log("relay");
    for error in ["Ferry::BadSignature", "Ferry::WrongRelay", "Ferry::WrongDomain"] {
        ensure!(log.contains(error), "the relay log names {error}");
    }
    ensure!(log.contains("signature does not verify"), "the log carries the error's explanation");

    // The overspending receipt took the rest of the lane and nothing more, and its event shows the shortfall.
    assert_eq!(block_on(c.lane(viewer.account_bytes(), creator.account_bytes()))?.funds, 0);
    let m = money(&c, before.block, after.block)?;
    let paid: Balance = m.settled.iter().map(|(_, p)| p.operator_paid + p.creator_paid + p.burned).sum();
    assert_eq!(paid, lane, "payouts are capped by the lane");
    ensure!(
        m.settled.iter().any(|(_, p)| p.due == 50_000_000 && p.paid == lane - 10_000),
        "the Settled event names what was due and what was paid: {:?}",
        m.settled
    );

    // Replaying a settled receipt pays nothing.
    let (_, payouts) = block_on(c.settle(vec![good]))?;
    ensure!(payouts.is_empty(), "a replayed receipt paid: {payouts:?}");

    // Once the viewer tops its lane up, the relay settles the rest of the short claim, and no more.
    let rest = 50_000_000 - (lane - 10_000);
    open_lane(&chain, &viewer, &creator, "60000000")?;
    let (origin, _) = relay_on(&chain, &creator, &[])?;
    let e = creator.wait_earnings(Duration::from_secs(120), |e| {
        e["short"] == "0" && e["pending"] == "0" && e["in_flight"] == "0"
    })?;
    origin.stop()?;
    assert_eq!(block_on(c.lane(viewer.account_bytes(), creator.account_bytes()))?.funds, 60_000_000 - rest, "{e}");
    Ok(())
}

/// The scale the benchmarked weights promise, on a real chain: a batch of the most receipts one transaction may carry
/// (`MAX_SETTLE_BATCH`), each a claim of its own (a viewer of its own; they hold no lanes, so each is settled with
/// nothing paid), lands in one block.
#[test]
fn one_block_settles_a_full_batch_of_receipts() -> Result<()> {
    const RECEIPTS: u32 = ferry_primitives::MAX_SETTLE_BATCH;
    const AMOUNT: Balance = 1_000;
    let s = Solo::new(TestChain::node()?, 1000)?;
    s.creator.set_config("settle_batch = 1024", &format!("settle_batch = {RECEIPTS}"))?;
    let genesis = chain_genesis(&s.chain)?;
    let content = ferry_node::identity::parse_hex32(&s.cid).context("cid")?;
    put_in_ledger(
        &s.creator,
        (0..RECEIPTS).map(|i| {
            let mut viewer_secret = [7u8; 32];
            viewer_secret[..4].copy_from_slice(&i.to_le_bytes());
            let viewer = ferry_primitives::signing::public_key(&viewer_secret);
            Receipt {
                domain: Domain(genesis),
                claim: claim_id(&s.creator.account_bytes(), &viewer, &content),
                relay: s.creator.account_bytes(),
                viewer,
                content,
                seq: 1,
                bytes: 256 << 10,
                amount: AMOUNT,
                chunk_chain: [0; 32],
                tip: 0,
            }
            .sign(&viewer_secret)
        }),
    )?;

    let c = s.chain.client(&s.creator)?;
    let before = block_on(c.finalized_number())?;
    let (origin, _) = relay_on(&s.chain, &s.creator, &[])?;
    let e = s.creator.wait_settled(RECEIPTS as usize, Duration::from_secs(300))?;
    origin.stop()?;
    let blocks: std::collections::BTreeSet<u64> =
        e["claims"].as_array().context("claims")?.iter().filter_map(|s| s["block_number"].as_u64()).collect();
    assert_eq!(blocks.len(), 1, "the receipts were settled in blocks {blocks:?}");
    let after = block_on(c.finalized_number())?;
    let m = money(&c, before, after)?;
    assert_eq!(m.settled.len(), RECEIPTS as usize, "a Settled event for every claim");
    Ok(())
}

/// A settlement that landed while the relay was down (as when it dies between the chain's finality and its ledger
/// write) is paid to the operator all the same; `ferry earnings` must then report what the chain's `Settled` events
/// paid, not only what the relay saw itself.
#[test]
fn earnings_match_the_chains_payouts_after_a_settlement_the_relay_never_saw() -> Result<()> {
    let Solo { _root, chain, creator, viewer, cid } = Solo::new(TestChain::node()?, 600_000)?;
    let c = chain.client(&creator)?;
    let start = block_on(c.finalized_number())?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    play(&chain, &viewer, &cid, &addr, 6)?;
    origin.kill9()?;
    // The relay's own receipts land on chain, signed with its key, while it is down.
    let (_, payouts) = block_on(c.settle(latest_receipts(&creator, chain_genesis(&chain)?)?))?;
    ensure!(!payouts.is_empty(), "the settlement paid nothing");

    creator.set_config("settle_every_ms = 600000", "settle_every_ms = 1000")?;
    let (origin, _) = relay_on(&chain, &creator, &[])?;
    let e = creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    let m = money(&c, start, settle_time(&c)?)?;
    let mine = || m.settled.iter().filter(|(r, _)| *r == creator.account_bytes()).map(|(_, p)| p);
    let operator: Balance = mine().map(|p| p.operator_paid).sum();
    let paid: Balance = mine().map(|p| p.paid + p.tip_paid).sum();
    ensure!(operator > 0, "the chain paid the operator nothing");
    assert_eq!(e["operator_paid"], operator.to_string(), "earnings: {e}");
    assert_eq!(e["settled"], paid.to_string(), "earnings: {e}");
    Ok(())
}
