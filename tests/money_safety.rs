//! The money-safety rules end to end, on a real dev chain with real relays and viewers: each test is one attack
//! of the money-safety review, named for the rule that defeats it (`THREATS.md` lists them).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry_node::identity::Identity;
use ferry_node::p2p::frame::{read_frame, write_frame};
use ferry_node::p2p::protocol::{
    ChunkReply, ChunkRequest, Code, OpenSession, SessionReply, CHUNK_PROTOCOL, MAX_CONTROL_FRAME, SESSION_PROTOCOL,
};
use ferry_primitives::{claim_id, Balance, Domain, Receipt, Segment};
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
    viewer.set_config("lane_amount = 100000000000", "lane_amount = 0")
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

fn entries(receipts: &serde_json::Value, side: &str, key: &str) -> usize {
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
    ensure!(entries(&r, "relay", "claims") == 0, "the relay acknowledged nothing: {r}");
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

    let acked: Balance = claim_totals(&creator.receipts()?).iter().map(|(a, t)| a + t).sum();
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
    wait_log(&victim, "relay", "not buying a blob upstream", Duration::from_secs(60))?;
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
    ensure!(entries(&r, "viewer", "receipts") == 0, "the cache signed receipts upstream: {r}");
    ensure!(entries(&attacker.receipts()?, "relay", "claims") == 0, "the attacker holds no receipts");
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
    ensure!(entries(&r, "viewer", "receipts") == 0, "the viewer signed receipts: {r}");
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

/// Attack 1 (claim squatting): a viewer that settles a receipt of the same content from its own relay account, at
/// the highest seq and totals (so that, were claims keyed without the relay, every later receipt of the real claim
/// would be refused as older), cannot stop the relay that served it from being paid, not even under the real
/// claim's id.
#[test]
fn a_claim_settled_elsewhere_cannot_block_the_relay_that_served_it() -> Result<()> {
    let s = Solo::new(TestChain::up()?, 600_000)?;
    chain_squat_setup(&s)?;
    let (origin, addr) = relay_on(&s.chain, &s.creator, &[])?;
    play(&s.chain, &s.viewer, &s.cid, &addr, 6)?;
    origin.stop()?;

    // The viewer, also an operator, settles a receipt at the highest seq under the id of its claim at the relay,
    // then under the id its own relay account makes.
    let own = s.viewer.receipts()?;
    let claim_hex = own["viewer"]["receipts"][0]["claim"].as_str().context("a claim of the viewer")?.to_string();
    let mut claim = [0u8; 16];
    hex::decode_to_slice(&claim_hex, &mut claim)?;
    let content = ferry_node::identity::parse_hex32(&s.cid).context("cid")?;
    let (viewer_key, domain) = (s.viewer.account_bytes(), Domain(chain_genesis(&s.chain)?));
    let squat = |claim| {
        Receipt {
            domain,
            claim,
            relay: viewer_key,
            viewer: viewer_key,
            content,
            seq: u64::MAX,
            bytes: u64::MAX,
            amount: 1,
            chunk_chain: [0; 32],
            tip: 0,
        }
        .sign(&ferry_node::identity::dev_secret("viewer").expect("the dev viewer's secret"))
    };
    let client = s.chain.client(&s.viewer)?;
    let refused = block_on(client.settle(vec![squat(claim)]));
    ensure!(refused.as_ref().is_err_and(|e| e.to_string().contains("WrongClaim")), "{refused:?}");
    block_on(client.settle(vec![squat(claim_id(&viewer_key, &viewer_key, &content))]))?;

    s.creator.set_config("settle_every_ms = 600000", "settle_every_ms = 1000")?;
    let (origin, _) = relay_on(&s.chain, &s.creator, &[])?;
    let e = s.creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    let owed: Balance = claim_totals(&s.creator.receipts()?).iter().map(|(a, t)| a + t).sum();
    for claim in e["claims"].as_array().context("claims")? {
        assert_eq!(claim["state"], "settled", "{claim}");
    }
    assert_eq!(e["settled"], owed.to_string(), "the relay was paid for the whole claim");
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
    let owed: Balance = claim_totals(&s.creator.receipts()?).iter().map(|(a, t)| a + t).sum();
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
        write_frame(&mut stream, &OpenSession::signed(who.secret(), content, domain, &peer, &who.peer_id)).await?;
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

/// A client written from the wire protocol alone, with a key of its own, connected to one relay.
struct RawClient {
    id: Identity,
    control: ferry_node::libp2p_stream::Control,
    relay: ferry_node::libp2p::PeerId,
    _client: ferry_node::p2p::Client,
}

impl RawClient {
    async fn connect(id: Identity, addr: &str) -> Result<RawClient> {
        let (client, control, _events) = ferry_node::p2p::start(&id, ferry_node::p2p::NetConfig::viewer())?;
        let relay = client.dial(&addr.parse()?).await?;
        Ok(RawClient { id, control, relay, _client: client })
    }

    /// Sends `open` and returns the session stream with the relay's reply.
    async fn open(&mut self, open: &OpenSession) -> Result<(ferry_node::libp2p::Stream, SessionReply)> {
        let mut s = self.control.open_stream(self.relay, SESSION_PROTOCOL).await?;
        write_frame(&mut s, open).await?;
        let reply = read_frame(&mut s, MAX_CONTROL_FRAME).await?;
        Ok((s, reply))
    }

    /// A session opened and signed by this client's own key: its stream and its claim.
    async fn open_own(&mut self, content: [u8; 32], domain: Domain) -> Result<(ferry_node::libp2p::Stream, [u8; 16])> {
        let open = OpenSession::signed(self.id.secret(), content, domain, &self.relay, &self.id.peer_id);
        match self.open(&open).await? {
            (s, SessionReply::Opened { claim, .. }) => Ok((s, claim)),
            (_, reply) => bail!("session refused: {reply:?}"),
        }
    }

    /// Asks for `segment` in the session of `claim` and reads what the relay sends, without ever signing, until it
    /// sends nothing for 2 s: the bytes read (payload and hash pairs), or the refusal.
    async fn take(&mut self, claim: [u8; 16], segment: &Segment) -> Result<Result<usize, Code>> {
        use futures::AsyncReadExt;
        let mut c = self.control.open_stream(self.relay, CHUNK_PROTOCOL).await?;
        let req = ChunkRequest { claim, blob: segment.hash, size: segment.size, start_group: 0 };
        write_frame(&mut c, &req).await?;
        match read_frame(&mut c, MAX_CONTROL_FRAME).await? {
            ChunkReply::Refused { code, .. } => return Ok(Err(code)),
            ChunkReply::Sending => {}
        }
        let (mut got, mut buf) = (0, vec![0u8; 64 << 10]);
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(Ok(got))
    }
}

/// The blobs of `cid` as published in `home`'s store, largest first (read before a relay opens the store).
fn blobs_of(home: &Home, cid: &str) -> Result<Vec<Segment>> {
    let content = ferry_node::identity::parse_hex32(cid).context("cid")?;
    let store = ferry_node::content::store::Store::open(&home.dir, u64::MAX)?;
    let mut blobs: Vec<Segment> = store.manifest(&content)?.context("manifest")?.manifest.blobs().cloned().collect();
    blobs.sort_by_key(|s| std::cmp::Reverse(s.size));
    Ok(blobs)
}

/// Attack 8 (anyone's lane): a peer that does not hold a viewer's key cannot open a session that viewer's lane
/// pays for: not with a proof of its own key, and not with a proof the viewer really signed for its own
/// connection. The viewer itself is served as before.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_holder_of_a_viewers_key_opens_a_session_on_its_lane() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 4)?)?;
    let blob = blobs_of(&creator, &cid)?.remove(0);
    open_lane(&chain, &viewer, &creator, "1000000000000")?;
    let content = ferry_node::identity::parse_hex32(&cid).context("cid")?;
    let domain = Domain(chain_genesis(&chain)?);
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    let victim = Identity::load(&viewer.dir)?;
    let mut attacker = RawClient::connect(Identity::from_secret([77; 32]), &addr).await?;
    let mut own_key = OpenSession::signed(attacker.id.secret(), content, domain, &attacker.relay, &attacker.id.peer_id);
    own_key.viewer = victim.account;
    let replayed = OpenSession::signed(victim.secret(), content, domain, &attacker.relay, &victim.peer_id);
    let victims_claim = claim_id(&creator.account_bytes(), &victim.account, &content);
    for open in [own_key, replayed] {
        let (_s, reply) = attacker.open(&open).await?;
        ensure!(
            matches!(reply, SessionReply::Refused { code: Code::BadSignature, .. }),
            "a session on the victim's lane without its key: {reply:?}"
        );
        assert_eq!(attacker.take(victims_claim, &blob).await?, Err(Code::UnknownSession), "no bytes on it");
    }
    play(&chain, &viewer, &cid, &addr, 4)?;
    origin.stop()?;
    ensure!(creator.log("relay").contains("did not prove the viewer's key"), "the relay says why it refused");
    Ok(())
}

/// Attack 9 (free video by rotation): a viewer that never signs a receipt gets one credit window from a relay in
/// all, however many sessions it opens one after another; the relay refuses the rest until it pays.
#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_that_never_pays_gets_one_credit_window_in_all() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 12)?)?;
    let blobs = blobs_of(&creator, &cid)?;
    open_lane(&chain, &viewer, &creator, "1000000000000")?;
    let content = ferry_node::identity::parse_hex32(&cid).context("cid")?;
    let domain = Domain(chain_genesis(&chain)?);
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    let mut freeloader = RawClient::connect(Identity::load(&viewer.dir)?, &addr).await?;
    let (mut total, mut refused) = (0, vec![]);
    let mut next = blobs.iter().cycle();
    for _ in 0..6 {
        let (_session, claim) = freeloader.open_own(content, domain).await?;
        // Take blobs until the relay stops short of one: the session's credit is used up.
        for blob in next.by_ref().take(16) {
            match freeloader.take(claim, blob).await? {
                Ok(n) => {
                    total += n;
                    if (n as u64) < blob.size {
                        break;
                    }
                }
                Err(code) => {
                    refused.push(code);
                    break;
                }
            }
        }
    }
    origin.stop()?;
    // The window, plus the bao hash pairs (64 bytes per 16 KiB group, and a few per blob).
    let window = 2 << 20;
    let limit = window + window / 128 + (64 << 10);
    ensure!(total <= limit, "a viewer that never paid received {total} bytes over 6 sessions; one window is {window}");
    ensure!(refused.iter().all(|c| *c == Code::Busy) && !refused.is_empty(), "later sessions are refused: {refused:?}");
    let r = creator.receipts()?;
    ensure!(entries(&r, "relay", "claims") == 0, "nothing was acknowledged: {r}");
    Ok(())
}

/// Attack 10 (settling costs more than it earns): with the relay's default settlement policy, sessions that each
/// pay a little never make it pay more in fees than they paid it. Their claims wait until they pay for a
/// settlement; none is sent at a loss.
#[test]
fn small_sessions_never_cost_a_relay_more_in_fees_than_they_paid() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    creator.set_config("settle_fee_multiple = 0", "settle_fee_multiple = 200")?;
    creator.set_config("settle_max_age_ms = 120000", "settle_max_age_ms = 3000")?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 4)?)?;
    open_lane(&chain, &viewer, &creator, "1000000000000")?;
    let (origin, addr) = relay_on(&chain, &creator, &[])?;
    let before = block_on(chain.client(&creator)?.balance(creator.account_bytes()))?;

    // Three viewers (homes of their own, so each fetches the video; one account, so one lane).
    play(&chain, &viewer, &cid, &addr, 4)?;
    for i in 2..=3 {
        let again = Home::dev(root.path(), &format!("viewer{i}"), "viewer", 1000)?;
        play(&chain, &again, &cid, &addr, 4)?;
    }
    // Several settlement rounds after every claim is due.
    std::thread::sleep(Duration::from_secs(10));
    let e = creator.earnings()?;
    origin.stop()?;
    let after = block_on(chain.client(&creator)?.balance(creator.account_bytes()))?;

    ensure!(after >= before, "the relay's balance fell from {before} to {after} settling claims that paid less: {e}");
    ensure!(e["pending"] != "0", "the claims are kept for later: {e}");
    let log = creator.log("relay");
    ensure!(e["claims"].as_array().map_or(0, |s| s.len()) == 1, "one claim: {e}\nthe relay's log:\n{log}");
    Ok(())
}

/// Attack 11 (cache-fill amplification): a viewer that makes a cache relay buy blob after blob upstream, and
/// never pays, makes it buy at most one credit window's worth and one blob more, not the whole video.
#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_that_leaves_fills_unpaid_gets_no_more_fills() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    let cache_home = Home::dev(root.path(), "cache", "operator", 1000)?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    chain.ferry(&cache_home, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let cid = publish(&chain, &creator, &make_video(root.path(), 12)?)?;
    let blobs = blobs_of(&creator, &cid)?;
    let video: u64 = blobs.iter().map(|b| b.size).sum();
    open_lane(&chain, &viewer, &cache_home, "1000000000000")?;
    let content = ferry_node::identity::parse_hex32(&cid).context("cid")?;
    let domain = Domain(chain_genesis(&chain)?);
    let (origin, origin_addr) = relay_on(&chain, &creator, &[])?;
    let (cache, cache_addr) = relay_on(&chain, &cache_home, &["--bootstrap", &origin_addr])?;

    // Every blob of the video, each in a session of its own, never paying.
    let mut walker = RawClient::connect(Identity::load(&viewer.dir)?, &cache_addr).await?;
    let mut refused = vec![];
    let mut sessions = vec![];
    for blob in &blobs {
        let (session, claim) = walker.open_own(content, domain).await?;
        sessions.push(session);
        if let Err(code) = walker.take(claim, blob).await? {
            refused.push(code);
        }
    }
    cache.stop()?;
    origin.stop()?;

    ensure!(!refused.is_empty(), "the cache bought every blob of the video for a viewer that paid nothing");
    let log = cache_home.log("relay");
    ensure!(
        log.contains("not buying a blob upstream") || log.contains("not serving past the lane"),
        "the cache says why"
    );
    let bought: u64 = cache_home.receipts()?["viewer"]["receipts"]
        .as_array()
        .context("the cache's receipts upstream")?
        .iter()
        .filter_map(|r| r["bytes"].as_u64())
        .max()
        .unwrap_or(0);
    let bound = (2 << 20) + blobs[0].size;
    ensure!(bought <= bound, "the cache bought {bought} bytes of a {video}-byte video; the bound is {bound}");
    Ok(())
}

/// Settlement that grows with sessions: however many sessions a viewer opens for one video at a relay, they are one
/// claim, which the relay settles as one entry on chain, and every session's bytes are paid.
#[test]
fn every_session_of_one_video_is_one_claim_on_chain() -> Result<()> {
    let s = Solo::new(TestChain::up()?, 1000)?;
    let video: u64 = blobs_of(&s.creator, &s.cid)?.iter().map(|b| b.size).sum();
    let before = lane(&s.chain, &s.viewer, &s.creator)?;
    let (origin, addr) = relay_on(&s.chain, &s.creator, &[])?;
    for _ in 0..3 {
        // The viewer's copy goes each time, so every playback fetches, and pays for, the whole video again.
        let _ = std::fs::remove_dir_all(s.viewer.dir.join("store"));
        play(&s.chain, &s.viewer, &s.cid, &addr, 6)?;
    }
    let e = s.creator.wait_settled(1, Duration::from_secs(120))?;
    origin.stop()?;

    let log = s.viewer.log("watch");
    let sessions = log.lines().filter(|l| l.contains("session open")).count();
    ensure!(sessions >= 3, "three playbacks opened {sessions} sessions");
    ensure!(e["claims"].as_array().map_or(0, |c| c.len()) == 1, "one claim for one viewer and one video: {e}");
    let r = s.creator.receipts()?;
    let latest = &r["relay"]["claims"][0]["latest"];
    let bytes = latest["bytes"].as_u64().context("bytes")?;
    ensure!(bytes >= 3 * video, "the claim covers all three playbacks: {bytes} bytes of a {video}-byte video");
    let (amount, tip) = claim_totals(&r)[0];
    // The chain holds that claim's latest receipt, paid in full, out of the lane.
    let claim = claim_id(&s.creator.account_bytes(), &s.viewer.account_bytes(), &parse_cid(&s.cid)?);
    let c = s.chain.client(&s.creator)?;
    let on_chain =
        block_on(c.claim(s.creator.account_bytes(), s.viewer.account_bytes(), claim))?.context("no claim")?;
    assert_eq!(on_chain.latest.receipt.seq, latest["seq"].as_u64().context("seq")?, "settled to its latest receipt");
    on_chain.latest.verify().map_err(|e| anyhow::anyhow!("the chain's copy of the receipt does not verify: {e}"))?;
    assert_eq!(on_chain.paid, amount + tip);
    assert_eq!(before - lane(&s.chain, &s.viewer, &s.creator)?, amount + tip, "the lane paid the claim once");
    Ok(())
}

/// Ledger behind the chain: a relay whose ledger is lost after a settlement continues the claim from the receipt
/// the chain holds, so the viewer's next receipts are paid rather than refused as older than the chain's.
#[test]
fn a_relay_that_lost_its_ledger_continues_the_claim_from_the_chain() -> Result<()> {
    let s = Solo::new(TestChain::up()?, 1000)?;
    let (origin, addr) = relay_on(&s.chain, &s.creator, &[])?;
    play(&s.chain, &s.viewer, &s.cid, &addr, 6)?;
    s.creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;
    let claim = claim_id(&s.creator.account_bytes(), &s.viewer.account_bytes(), &parse_cid(&s.cid)?);
    let c = s.chain.client(&s.creator)?;
    let first = block_on(c.claim(s.creator.account_bytes(), s.viewer.account_bytes(), claim))?.context("settled")?;

    std::fs::remove_file(s.creator.dir.join(ferry_node::money::ledger::LEDGER_FILE))?;
    let (origin, addr) = relay_on(&s.chain, &s.creator, &[])?;
    let _ = std::fs::remove_dir_all(s.viewer.dir.join("store"));
    play(&s.chain, &s.viewer, &s.cid, &addr, 6)?;
    let e = s.creator.wait_settled(1, Duration::from_secs(90))?;
    origin.stop()?;

    ensure!(s.creator.log("relay").contains("continuing from the chain's"), "the relay says where it resumed");
    for claim in e["claims"].as_array().context("claims")? {
        assert_eq!(claim["state"], "settled", "{claim}");
    }
    let now = block_on(c.claim(s.creator.account_bytes(), s.viewer.account_bytes(), claim))?.context("settled")?;
    ensure!(now.latest.receipt.seq > first.latest.receipt.seq, "the second playback was settled above the first");
    ensure!(now.latest.receipt.bytes >= 2 * first.latest.receipt.bytes, "both playbacks are in the claim");
    assert_eq!(now.paid, now.latest.receipt.amount + now.latest.receipt.tip, "paid in full");
    Ok(())
}

fn parse_cid(cid: &str) -> Result<[u8; 32]> {
    ferry_node::identity::parse_hex32(cid).context("cid")
}

/// Content whose creator share is 100% leaves the relay nothing of any payment, so a relay does not serve it for
/// pay: the session is refused `Unregistered`, with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn content_that_leaves_the_relay_nothing_is_not_served_for_pay() -> Result<()> {
    let (root, chain, creator, viewer) = stage()?;
    chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
    let video = make_video(root.path(), 4)?;
    let out = chain.ferry(&creator, &["publish", &video.to_string_lossy(), "--share-bps", "10000"])?;
    let cid = out.lines().last().context("publish printed no content id")?.trim().to_string();
    open_lane(&chain, &viewer, &creator, "1000000000000")?;
    let domain = Domain(chain_genesis(&chain)?);
    let (origin, addr) = relay_on(&chain, &creator, &[])?;

    let mut client = RawClient::connect(Identity::load(&viewer.dir)?, &addr).await?;
    let open = OpenSession::signed(client.id.secret(), parse_cid(&cid)?, domain, &client.relay, &client.id.peer_id);
    let (_stream, reply) = client.open(&open).await?;
    origin.stop()?;
    ensure!(matches!(reply, SessionReply::Refused { code: Code::Unregistered, .. }), "served for pay: {reply:?}");
    ensure!(creator.log("relay").contains("100%"), "the relay says why:\n{}", creator.log("relay"));
    Ok(())
}
