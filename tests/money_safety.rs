//! The money-safety rules end to end, on a real dev chain with real relays and viewers: each test is one attack
//! of the money-safety review, named for the rule that defeats it (`THREATS.md` lists them).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry_node::identity::Identity;
use ferry_node::p2p::frame::{read_frame, write_frame};
use ferry_node::p2p::protocol::{Code, OpenSession, SessionReply, MAX_CONTROL_FRAME, SESSION_PROTOCOL};
use ferry_primitives::{Balance, Domain, Receipt};
use ferry_tests::*;

/// Waits until `home`'s `name.log` contains `text`.
fn wait_log(home: &Home, name: &str, text: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if home.log(name).contains(text) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{}: {name}.log never said {text:?}; log:\n{}", home.dir.display(), home.log(name))
}

/// Starts `ferry watch` on `chain` through `via`, without waiting for the video.
fn start_watch(chain: &TestChain, viewer: &Home, cid: &str, via: &str, max_price: &str) -> Result<Proc> {
    let args =
        ["watch", cid, "--gateway", "127.0.0.1:0", "--bootstrap", via, "--chain", &chain.url, "--max-price", max_price];
    Proc::spawn(&viewer.dir, "watch", &args)
}

/// A viewer that never reserves funds on its own (`lane_amount = 0`).
fn no_auto_lanes(viewer: &Home) -> Result<()> {
    viewer.set_config("lane_amount = 10000000000", "lane_amount = 0")
}

fn lane(chain: &TestChain, payer: &Home, relay: &Home) -> Result<Balance> {
    let c = chain.client(payer)?;
    Ok(block_on(c.lane(payer.account_bytes(), relay.account_bytes()))?.funds)
}

/// A dev chain of its own, the creator's home (it runs the origin relay) and the viewer's.
fn stage() -> Result<(tempfile::TempDir, TestChain, Home, Home)> {
    let root = test_root()?;
    let chain = TestChain::up()?;
    let creator = Home::dev(root.path(), "origin", "creator", 1000)?;
    let viewer = Home::dev(root.path(), "viewer", "viewer", 1000)?;
    Ok((root, chain, creator, viewer))
}

fn sessions(receipts: &serde_json::Value, side: &str, key: &str) -> usize {
    receipts[side][key].as_array().map_or(0, |a| a.len())
}

/// Attack 4 (free video): a viewer without a lane to a relay gets no video from it, however many sessions it opens.
#[test]
fn without_a_lane_a_relay_serves_nothing() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    no_auto_lanes(&viewer)?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 4)?)?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    let watch = start_watch(&chain, &viewer, &cid, &addr, PRICE)?;
    wait_log(&creator, "relay", "not serving past the lane", Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(3));
    watch.stop()?;
    origin.stop()?;

    ensure!(creator.log("relay").contains("no open lane"), "the relay says why it refused");
    let r = creator.receipts()?;
    ensure!(sessions(&r, "relay", "sessions") == 0, "the relay acknowledged nothing: {r}");
    let blobs = std::fs::read_dir(viewer.dir.join("store/blobs")).map(|d| d.count()).unwrap_or(0);
    ensure!(blobs == 0, "the viewer got {blobs} segments without a lane");
    Ok(())
}

/// Attack 3 (one escrow promised to every relay): a relay serves no more than the viewer's lane to it holds, and
/// every receipt it acknowledged is paid in full.
#[test]
fn a_relay_serves_within_the_lane_and_is_paid_for_every_receipt_it_acknowledged() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    no_auto_lanes(&viewer)?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 6)?)?;
    // One 256 KiB chunk and a bit at the relay's price: far less than the video.
    let funds: Balance = 300_000;
    open_lane(&chain, &viewer, &creator, &funds.to_string())?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    let watch = start_watch(&chain, &viewer, &cid, &addr, PRICE)?;
    wait_log(&creator, "relay", "not serving past the lane", Duration::from_secs(60))?;
    watch.stop()?;
    let e = creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;

    let acked: Balance = session_totals(&creator.receipts()?).iter().map(|(a, t)| a + t).sum();
    ensure!(acked > 0, "the relay served the part the lane covers");
    ensure!(acked <= funds, "the relay acknowledged {acked}, more than the lane's {funds}");
    assert_eq!(e["settled"], acked.to_string(), "every acknowledged receipt was paid in full");
    assert_eq!(lane(&chain, &viewer, &creator)?, funds - acked, "the lane paid exactly the receipts");
    Ok(())
}

/// Attack 5 (draining a relay through its cache): a cache relay fetches upstream only for a viewer it is covered
/// for, and never pays more per MiB than it chose.
#[test]
fn a_cache_fill_never_pays_more_than_the_relay_chose() -> Result<()> {
    // The attacker runs the origin at a huge price; the victim is a cache relay that fills from it.
    let (root, chain, attacker, viewer) = stage()?;
    let victim = Home::dev(root.path(), "cache", "operator", 1000)?;
    no_auto_lanes(&viewer)?;
    let huge = "1000000000000";
    chain.ferry(&attacker, &["operator", "register", "--price", huge, "--bond", BOND])?;
    chain.ferry(&victim, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &attacker, &make_video(root.path(), 4)?)?;
    let (origin, origin_addr) = relay(&attacker, &["--chain", &chain.url, "--price", huge])?;
    let (cache, cache_addr) = relay_on(&chain, &victim, &["--bootstrap", &origin_addr])?;

    // No lane to the cache: it refuses before it fetches anything upstream.
    let watch = start_watch(&chain, &viewer, &cid, &cache_addr, PRICE)?;
    wait_log(&victim, "relay", "not serving past the lane", Duration::from_secs(60))?;
    watch.stop()?;
    ensure!(!victim.log("relay").contains("session open"), "the cache opened a paid session upstream");

    // With a lane to the cache: the cache refuses the attacker's price.
    open_lane(&chain, &viewer, &victim, "1000000000000")?;
    let watch = start_watch(&chain, &viewer, &cid, &cache_addr, PRICE)?;
    wait_log(&victim, "relay", "above our limit", Duration::from_secs(60))
        .with_context(|| format!("the viewer's log:\n{}", viewer.log("watch")))?;
    watch.stop()?;
    cache.stop()?;
    origin.stop()?;

    assert_eq!(lane(&chain, &victim, &attacker)?, 0, "the cache reserved nothing for the attacker");
    let r = victim.receipts()?;
    ensure!(sessions(&r, "viewer", "receipts") == 0, "the cache signed receipts upstream: {r}");
    ensure!(sessions(&attacker.receipts()?, "relay", "sessions") == 0, "the attacker holds no receipts");
    Ok(())
}

/// A relay that quotes more than its registration says is dropped before the viewer reserves or signs anything:
/// the chain pays what receipts say, so the viewer is the one that holds relays to their registered price.
#[test]
fn a_relay_quoting_other_than_its_registered_price_is_refused() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 4)?)?;
    let (origin, addr) = relay_on(&chain, &creator, &["--fault-quote-price", "3000000"])?;

    // The viewer would pay up to 10× the registered price, so only the check against the chain refuses it.
    let watch = start_watch(&chain, &viewer, &cid, &addr, "10000000")?;
    wait_log(
        &viewer,
        "watch",
        "relay quoted 3000000 per MiB, but it registered 1000000 on chain",
        Duration::from_secs(60),
    )?;
    watch.stop()?;
    origin.stop()?;

    assert_eq!(lane(&chain, &viewer, &creator)?, 0, "the viewer reserved nothing for the relay");
    let r = viewer.receipts()?;
    ensure!(sessions(&r, "viewer", "receipts") == 0, "the viewer signed receipts: {r}");
    Ok(())
}

/// Attack 6 (creator front-running): content that is not registered is not served for pay, and whoever registers
/// it, the registration names the manifest's creator and share.
#[test]
fn only_content_registered_to_its_creator_is_served_for_pay() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    let video = make_video(root.path(), 4)?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    // Published with no chain configured: not registered.
    let out = ferry(&creator.dir, &["publish", &video.to_string_lossy(), "--share-bps", &SHARE_BPS.to_string()])?;
    let cid = out.lines().last().context("content id")?.trim().to_string();
    open_lane(&chain, &viewer, &creator, "1000000000000")?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    let watch = start_watch(&chain, &viewer, &cid, &addr, PRICE)?;
    wait_log(&creator, "relay", "not registered on chain", Duration::from_secs(60))?;
    watch.stop()?;

    // Someone else (here the viewer, which has the manifest now) registers it first: it is still the creator's.
    chain.ferry(&viewer, &["register", &cid])?;
    let content = ferry_node::identity::parse_hex32(&cid).context("cid")?;
    let registered = block_on(chain.client(&viewer)?.content(content))?;
    assert_eq!(registered, Some((creator.account_bytes(), SHARE_BPS)), "registered to the manifest's creator");

    play(&chain, &viewer, &cid, &addr, 4)?;
    let e = creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    ensure!(e["settled"] != "0", "the relay was paid once the content was registered: {e}");
    Ok(())
}

/// Attack 1 (session squatting): a viewer that settles a zero receipt under its session's id from its own relay
/// account cannot stop the relay that served the session from being paid for it.
#[test]
fn a_session_id_settled_elsewhere_cannot_block_the_relay_that_served_it() -> Result<()> {
    let s = Solo::new(TestChain::up()?, 600_000)?;
    chain_squat_setup(&s)?;
    let (origin, addr) = relay_on(&s.chain, &s.creator, &[])?;
    play(&s.chain, &s.viewer, &s.cid, &addr, 6)?;
    origin.stop()?;

    // The viewer, also an operator, settles a zero receipt under the id of its session with the relay.
    let own = s.viewer.receipts()?;
    let session_hex = own["viewer"]["receipts"][0]["session"].as_str().context("a session of the viewer")?.to_string();
    let mut session = [0u8; 16];
    hex::decode_to_slice(&session_hex, &mut session)?;
    let squat = Receipt {
        domain: Domain(chain_genesis(&s.chain)?),
        session,
        relay: s.viewer.account_bytes(),
        viewer: s.viewer.account_bytes(),
        content: ferry_node::identity::parse_hex32(&s.cid).context("cid")?,
        seq: 1,
        bytes: 0,
        amount: 0,
        chunk_chain: [0; 32],
        tip: 0,
    }
    .sign(&ferry_node::identity::dev_secret("viewer").context("viewer secret")?);
    block_on(s.chain.client(&s.viewer)?.settle(vec![squat]))?;

    s.creator.set_config("settle_every_ms = 600000", "settle_every_ms = 1000")?;
    let (origin, _) = relay_on(&s.chain, &s.creator, &[])?;
    let e = s.creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    let owed: Balance = session_totals(&s.creator.receipts()?).iter().map(|(a, t)| a + t).sum();
    for session in e["sessions"].as_array().context("sessions")? {
        assert_eq!(session["state"], "settled", "{session}");
    }
    assert_eq!(e["settled"], owed.to_string(), "the relay was paid for the whole session");
    Ok(())
}

/// The viewer registers as an operator (so it can settle) and reserves a little for itself.
fn chain_squat_setup(s: &Solo) -> Result<()> {
    s.chain.ferry(&s.viewer, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    open_lane(&s.chain, &s.viewer, &s.viewer, "1000")
}

/// Attack 7 (settlement that stalls): a relay that started leaving (unbonding) still settles what it is owed.
#[test]
fn an_unbonding_relay_still_settles_what_it_is_owed() -> Result<()> {
    let s = Solo::new(TestChain::up()?, 600_000)?;
    let (origin, addr) = relay_on(&s.chain, &s.creator, &[])?;
    play(&s.chain, &s.viewer, &s.cid, &addr, 6)?;
    origin.stop()?;
    let out = s.chain.ferry(&s.creator, &["operator", "unregister"])?;
    ensure!(out.contains("withdraw-bond"), "unregister says when the bond comes back: {out}");

    s.creator.set_config("settle_every_ms = 600000", "settle_every_ms = 1000")?;
    let before = lane(&s.chain, &s.viewer, &s.creator)?;
    let (origin, _) = relay_on(&s.chain, &s.creator, &[])?;
    let e = s.creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    let owed: Balance = session_totals(&s.creator.receipts()?).iter().map(|(a, t)| a + t).sum();
    assert_eq!(e["settled"], owed.to_string());
    assert_eq!(before - lane(&s.chain, &s.viewer, &s.creator)?, owed);
    Ok(())
}

/// Fresh accounts: every viewer account a relay has not seen costs it a chain lookup, and accounts and peer ids
/// cost nothing to make, so sessions for new accounts are limited per peer and per address.
#[tokio::test(flavor = "multi_thread")]
async fn new_accounts_from_one_address_are_rate_limited() -> Result<()> {
    let (root, chain, creator, _viewer) = stage()?;
    creator.set_config("new_viewers_per_minute = 60", "new_viewers_per_minute = 2")?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 4)?)?;
    let content = ferry_node::identity::parse_hex32(&cid).context("cid")?;
    let domain = Domain(chain_genesis(&chain)?);
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    // Four peers on 127.0.0.1, each with an account of its own.
    let mut refused = vec![];
    for i in 0..4u8 {
        let who = Identity::from_secret([40 + i; 32]);
        let (client, mut control, _events) = ferry_node::p2p::start(&who, ferry_node::p2p::NetConfig::viewer())?;
        let peer = client.dial(&addr.parse()?).await?;
        let mut stream = control.open_stream(peer, SESSION_PROTOCOL).await?;
        write_frame(&mut stream, &OpenSession { session: [i; 16], content, viewer: who.account, domain }).await?;
        refused.push(match read_frame(&mut stream, MAX_CONTROL_FRAME).await? {
            SessionReply::Opened { .. } => None,
            SessionReply::Refused { code, .. } => Some(code),
        });
    }
    origin.stop()?;

    let limited = Some(Code::RateLimited);
    assert_eq!(refused, [None, None, limited, limited], "two new accounts a minute from one address");
    ensure!(creator.log("relay").contains("too many new accounts from this address"), "the relay says why");
    Ok(())
}
