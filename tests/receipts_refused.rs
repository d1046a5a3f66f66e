//! A relay refuses forged, replayed, non-monotonic and wrong-relay receipts, says why on the wire, in its log and
//! in its metrics, and keeps serving honest receipts on the same session.

use anyhow::{bail, ensure, Context, Result};
use ferry_node::identity::Identity;
use ferry_node::p2p::frame::{read_frame, write_frame};
use ferry_node::p2p::protocol::*;
use ferry_primitives::{amount_for, claim_id, ChunkChain, Domain, Receipt, SignedReceipt};
use ferry_tests::*;
use futures::AsyncReadExt;

const CHUNK: usize = CHUNK_BYTES as usize;

async fn send(stream: &mut ferry_node::libp2p::Stream, r: &SignedReceipt) -> Result<ReceiptReply> {
    write_frame(stream, &SessionMessage::Receipt(r.clone())).await?;
    Ok(read_frame(stream, MAX_CONTROL_FRAME).await?)
}

fn rejected(reply: ReceiptReply) -> Option<Code> {
    match reply {
        ReceiptReply::Rejected { code, .. } => Some(code),
        ReceiptReply::Ack { .. } => None,
    }
}

/// An origin home with a published 6 s video, optionally a credit window; returns its largest segment.
fn publish_origin(
    root: &std::path::Path,
    credit_window: Option<u64>,
) -> Result<(Home, [u8; 32], ferry_primitives::Segment)> {
    let video = make_video(root, 6)?;
    let origin = Home::new(root, "origin")?;
    if let Some(window) = credit_window {
        let config = std::fs::read_to_string(origin.dir.join("config.toml"))?
            .replace("credit_window_bytes = 2097152", &format!("credit_window_bytes = {window}"));
        std::fs::write(origin.dir.join("config.toml"), config)?;
    }
    let out = ferry(&origin.dir, &["publish", video.to_str().unwrap_or_default()])?;
    let cid = ferry_node::identity::parse_hex32(out.lines().last().unwrap_or_default()).context("content id")?;
    let manifest =
        ferry_node::content::store::Store::open(&origin.dir, u64::MAX)?.manifest(&cid)?.context("manifest")?.manifest;
    let segment = manifest.blobs().max_by_key(|s| s.size).cloned().context("a segment")?;
    assert!(segment.size as usize > 2 * CHUNK, "the tests need a segment of more than two chunks");
    Ok((origin, cid, segment))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_receipts_are_refused_with_a_reason() -> Result<()> {
    let root = test_root()?;
    let (origin, cid, segment) = publish_origin(root.path(), None)?;
    let data = stored_blob(&origin, &hex::encode(segment.hash)).context("segment bytes")?;

    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let (relay_proc, addr) = relay(&origin, &["--metrics", &metrics])?;

    let viewer = Identity::from_secret([9; 32]);
    let (client, mut control, _events) = ferry_node::p2p::start(&viewer, ferry_node::p2p::NetConfig::viewer())?;
    let peer = client.dial(&addr.parse()?).await?;

    // Open a session and take one whole segment.
    let mut session = control.open_stream(peer, SESSION_PROTOCOL).await?;
    write_frame(&mut session, &OpenSession::signed(viewer.secret(), cid, Domain::default(), &peer, &viewer.peer_id))
        .await?;
    let SessionReply::Opened { claim, relay: relay_account, price_per_mib, last: None, .. } =
        read_frame(&mut session, MAX_CONTROL_FRAME).await?
    else {
        bail!("session refused, or not a new claim");
    };
    assert_eq!(claim, claim_id(&relay_account, &viewer.account, &cid), "the claim id is the parties'");
    let mut chunk = control.open_stream(peer, CHUNK_PROTOCOL).await?;
    write_frame(&mut chunk, &ChunkRequest { claim, blob: segment.hash, size: segment.size, start_group: 0 }).await?;
    let reply: ChunkReply = read_frame(&mut chunk, MAX_CONTROL_FRAME).await?;
    assert_eq!(reply, ChunkReply::Sending);
    let mut body = Vec::new();
    chunk.read_to_end(&mut body).await?;
    assert!(body.len() as u64 >= segment.size, "the whole segment arrived within the credit window");

    // A transfer that would start past the blob's end is refused, and the relay serves on.
    let past_end = segment.size.div_ceil(GROUP_BYTES);
    let mut far = control.open_stream(peer, CHUNK_PROTOCOL).await?;
    write_frame(&mut far, &ChunkRequest { claim, blob: segment.hash, size: segment.size, start_group: past_end })
        .await?;
    let reply: ChunkReply = read_frame(&mut far, MAX_CONTROL_FRAME).await?;
    assert!(matches!(reply, ChunkReply::Refused { code: Code::Malformed, .. }), "{reply:?}");

    let mut chain1 = ChunkChain::default();
    chain1.extend(&data[..CHUNK]);
    let mut chain2 = chain1;
    chain2.extend(&data[CHUNK..2 * CHUNK]);
    let receipt = |seq: u64, bytes: u64, chain: ChunkChain, tip: u128| Receipt {
        domain: Domain::default(),
        claim,
        relay: relay_account,
        viewer: viewer.account,
        content: cid,
        seq,
        bytes,
        amount: amount_for(bytes, price_per_mib),
        chunk_chain: chain.0,
        tip,
    };

    let first = receipt(1, CHUNK as u64, chain1, 5).sign(viewer.secret());
    assert_eq!(send(&mut session, &first).await?, ReceiptReply::Ack { seq: 1 });
    assert_eq!(rejected(send(&mut session, &first).await?), Some(Code::Replayed), "the same receipt twice");
    let tip_down = receipt(2, 2 * CHUNK as u64, chain2, 0).sign(viewer.secret());
    assert_eq!(rejected(send(&mut session, &tip_down).await?), Some(Code::NotMonotonic), "tip went down");
    let old_seq = receipt(1, 2 * CHUNK as u64, chain2, 5).sign(viewer.secret());
    assert_eq!(rejected(send(&mut session, &old_seq).await?), Some(Code::Replayed), "seq did not grow");
    let wrong_chain = receipt(3, 2 * CHUNK as u64, chain1, 5).sign(viewer.secret());
    assert_eq!(rejected(send(&mut session, &wrong_chain).await?), Some(Code::Unserved), "chunk chain of other bytes");
    let mut overpriced = receipt(3, 2 * CHUNK as u64, chain2, 5);
    overpriced.amount += 1;
    assert_eq!(rejected(send(&mut session, &overpriced.sign(viewer.secret())).await?), Some(Code::WrongAmount));
    // The session still works for honest receipts.
    let second = receipt(3, 2 * CHUNK as u64, chain2, 5).sign(viewer.secret());
    assert_eq!(send(&mut session, &second).await?, ReceiptReply::Ack { seq: 3 });

    let mut forged = receipt(4, segment.size, chain2, 5).sign(&[1; 32]);
    forged.receipt.viewer = viewer.account;
    assert_eq!(rejected(send(&mut session, &forged).await?), Some(Code::BadSignature));
    assert!(
        read_frame::<_, ReceiptReply>(&mut session, MAX_CONTROL_FRAME).await.is_err(),
        "a forger's session is closed"
    );

    // Each of these is refused on a fresh session of the claim (the refusal closes it): a receipt for another
    // relay, for other content than the session's, and one that another viewer signed with its own key. Each
    // fresh session continues the claim from the last receipt the relay acknowledged.
    let fresh = || {
        let mut control = control.clone();
        let open = OpenSession::signed(viewer.secret(), cid, Domain::default(), &peer, &viewer.peer_id);
        async move {
            let mut s = control.open_stream(peer, SESSION_PROTOCOL).await?;
            write_frame(&mut s, &open).await?;
            let reply: SessionReply = read_frame(&mut s, MAX_CONTROL_FRAME).await?;
            let SessionReply::Opened { last: Some(last), .. } = reply else { bail!("session refused: {reply:?}") };
            ensure!(last.receipt.seq == 3, "the claim goes on from the last acknowledged receipt: {last:?}");
            anyhow::Ok(s)
        }
    };
    let mut elsewhere = receipt(4, 2 * CHUNK as u64, chain2, 5);
    elsewhere.relay = [7; 32];
    let mut s2 = fresh().await?;
    assert_eq!(rejected(send(&mut s2, &elsewhere.sign(viewer.secret())).await?), Some(Code::WrongRelay));
    let mut other_content = receipt(4, 2 * CHUNK as u64, chain2, 5);
    other_content.content = [3; 32];
    let mut s3 = fresh().await?;
    assert_eq!(rejected(send(&mut s3, &other_content.sign(viewer.secret())).await?), Some(Code::WrongSession));
    let stranger = Identity::from_secret([10; 32]);
    let mut other_viewer = receipt(4, 2 * CHUNK as u64, chain2, 5);
    other_viewer.viewer = stranger.account;
    let mut s4 = fresh().await?;
    assert_eq!(rejected(send(&mut s4, &other_viewer.sign(stranger.secret())).await?), Some(Code::WrongSession));

    // A garbage frame gets a refusal, not a crash; the relay keeps serving.
    let mut garbage = control.open_stream(peer, SESSION_PROTOCOL).await?;
    futures::AsyncWriteExt::write_all(&mut garbage, &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]).await?;
    futures::AsyncWriteExt::flush(&mut garbage).await?;
    let refused: SessionReply = read_frame(&mut garbage, MAX_CONTROL_FRAME).await?;
    assert!(matches!(refused, SessionReply::Refused { code: Code::Malformed, .. }), "{refused:?}");

    let (_, text) = http_get(&format!("http://{metrics}/metrics"), None)?;
    let text = String::from_utf8(text)?;
    for (reason, n) in [
        ("replayed", 2),
        ("not_monotonic", 1),
        ("unserved", 1),
        ("wrong_amount", 1),
        ("bad_signature", 1),
        ("wrong_relay", 1),
        ("wrong_session", 2),
    ] {
        let line = format!("ferry_receipts_rejected_total{{reason=\"{reason}\"}} {n}");
        assert!(text.contains(&line), "metrics lack {line:?}:\n{text}");
    }
    assert!(text.contains("ferry_receipts_accepted_total 2"), "{text}");
    relay_proc.stop()?;
    let log = origin.log("relay");
    for code in ["replayed", "not_monotonic", "bad_signature", "wrong_relay", "wrong_session"] {
        assert!(log.contains(&format!("code={code}")), "relay log names {code}");
    }
    // Only the two honest receipts are in the ledger.
    let ledger = origin.receipts()?;
    let seqs: Vec<u64> =
        ledger["relay"]["receipts"].as_array().into_iter().flatten().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![1, 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_that_stops_paying_stops_getting_data() -> Result<()> {
    let root = test_root()?;
    // One chunk of credit.
    let (origin, cid, segment) = publish_origin(root.path(), Some(CHUNK_BYTES))?;
    let (relay_proc, addr) = relay(&origin, &[])?;

    let viewer = Identity::from_secret([8; 32]);
    let (client, mut control, _events) = ferry_node::p2p::start(&viewer, ferry_node::p2p::NetConfig::viewer())?;
    let peer = client.dial(&addr.parse()?).await?;
    let mut session = control.open_stream(peer, SESSION_PROTOCOL).await?;
    write_frame(&mut session, &OpenSession::signed(viewer.secret(), cid, Domain::default(), &peer, &viewer.peer_id))
        .await?;
    let SessionReply::Opened { claim, credit_window, .. } = read_frame(&mut session, MAX_CONTROL_FRAME).await? else {
        bail!("session refused");
    };
    assert_eq!(credit_window, CHUNK_BYTES);
    let mut chunk = control.open_stream(peer, CHUNK_PROTOCOL).await?;
    write_frame(&mut chunk, &ChunkRequest { claim, blob: segment.hash, size: segment.size, start_group: 0 }).await?;
    let _: ChunkReply = read_frame(&mut chunk, MAX_CONTROL_FRAME).await?;
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    // Read until the relay stops sending: without receipts it must stop near one window (plus bao hash pairs).
    while let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_secs(2), chunk.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got += n;
    }
    let limit = CHUNK_BYTES as usize + CHUNK_BYTES as usize / 64 + 4096;
    assert!(got > 0 && got <= limit, "received {got} bytes unpaid; the window allows {limit}");
    relay_proc.stop()?;
    Ok(())
}
