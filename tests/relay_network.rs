//! The relay network end to end: a real video published on an origin relay, cached by a second relay, played by a
//! viewer through its HLS gateway, and paid for with receipts.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use ferry_tests::*;

struct Published {
    root: tempfile::TempDir,
    source_frames: u64,
    source_duration: f64,
    origin: Home,
    cid: String,
    manifest: ferry_primitives::Manifest,
}

fn publish(seconds: u32) -> Result<Published> {
    let root = test_root()?;
    let video = make_video(root.path(), seconds)?;
    let source = decode(video.to_str().unwrap_or_default())?;
    let origin = Home::new(root.path(), "origin")?;
    let out = ferry(&origin.dir, &["publish", video.to_str().unwrap_or_default(), "--title", "test pattern"])?;
    let cid = out.lines().last().unwrap_or_default().trim().to_string();
    let store = ferry_node::content::store::Store::open(&origin.dir, u64::MAX)?;
    let cid_bytes = ferry_node::identity::parse_hex32(&cid).expect("publish prints a content id");
    let manifest = store.manifest(&cid_bytes)?.expect("published manifest is stored").manifest;
    Ok(Published {
        source_frames: source.video_frames[0],
        source_duration: source.duration,
        root,
        origin,
        cid,
        manifest,
    })
}

fn total_bytes(m: &ferry_primitives::Manifest) -> u64 {
    m.blobs().map(|s| s.size).sum()
}

/// Sum over a ledger's claims of the bytes the latest receipt covers, for claims signed by `viewer`.
fn paid_bytes(ledger: &serde_json::Value, viewer: &str) -> u64 {
    ledger["relay"]["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["latest"]["viewer"] == viewer)
        .map(|s| s["latest"]["bytes"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn video_plays_through_a_caching_relay_and_every_byte_is_paid_for() -> Result<()> {
    let p = publish(20)?;
    assert!(p.manifest.renditions.len() >= 2, "a 720p source gets at least two renditions");
    let (origin, origin_addr) = relay(&p.origin, &[])?;
    // A patient viewer and a patient cache: on a loaded machine the cache's first fetches from the origin can take
    // longer than the default 5 s stall timeout. Either one giving up sends the viewer to the origin, which leaves
    // gaps in the cache.
    let cache = Home::new(p.root.path(), "cache")?;
    cache.set_config("stall_timeout_ms = 5000", "stall_timeout_ms = 30000")?;
    let (cache_relay, cache_addr) = relay(&cache, &["--bootstrap", &origin_addr])?;
    let viewer = Home::new(p.root.path(), "viewer")?;
    viewer.set_config("stall_timeout_ms = 5000", "stall_timeout_ms = 30000")?;
    let (watcher, url) = watch(&viewer, &p.cid, &[&cache_addr])?;

    // ffprobe decodes the whole video through the gateway: the source's duration and frame count, per rendition.
    let decoded = decode(&url)?;
    assert!(
        (decoded.duration - p.source_duration).abs() < 0.5,
        "duration {} vs source {}",
        decoded.duration,
        p.source_duration
    );
    assert_eq!(decoded.video_frames.len(), p.manifest.renditions.len());
    for frames in &decoded.video_frames {
        assert_eq!(*frames, p.source_frames, "every frame of every rendition decodes");
    }

    // The bytes served are the published segments, with the types, ranges and CORS players need.
    let base = url.trim_end_matches("master.m3u8");
    for r in &p.manifest.renditions {
        let name = String::from_utf8_lossy(&r.name);
        for (i, s) in r.segments.iter().enumerate() {
            let (headers, body) = http_get(&format!("{base}{name}/{i}.ts"), None)?;
            let published = stored_blob(&p.origin, &hex::encode(s.hash)).expect("origin holds its segments");
            assert_eq!(body, published, "segment {name}/{i}");
            assert!(headers.to_lowercase().contains("content-type: video/mp2t"), "{headers}");
            assert!(headers.to_lowercase().contains("access-control-allow-origin"), "{headers}");
            assert!(stored_blob(&cache, &hex::encode(s.hash)).is_some(), "the cache relay kept {name}/{i}");
        }
    }
    let first = &p.manifest.renditions[0];
    let (headers, body) = http_get(&format!("{base}{}/0.ts", String::from_utf8_lossy(&first.name)), Some("100-199"))?;
    assert!(headers.starts_with("HTTP/1.1 206"), "{headers}");
    assert_eq!(body, stored_blob(&p.origin, &hex::encode(first.segments[0].hash)).unwrap()[100..200]);

    watcher.stop()?;
    cache_relay.stop()?;
    origin.stop()?;

    // The viewer paid the cache relay for every byte once; the cache relay paid the origin for every byte once.
    let total = total_bytes(&p.manifest);
    let v = viewer.receipts()?;
    let own = v["viewer"]["receipts"].as_array().cloned().unwrap_or_default();
    assert!(!own.is_empty());
    assert!(
        own.iter().all(|r| r["acked"] == true && r["relay"] == cache.account.as_str()),
        "all receipts acked, all to the cache relay"
    );
    assert_eq!(paid_bytes(&cache.receipts()?, &viewer.account), total);
    assert_eq!(paid_bytes(&p.origin.receipts()?, &cache.account), total);
    Ok(())
}

#[test]
fn a_relay_that_flips_bytes_is_dropped_and_never_paid() -> Result<()> {
    let p = publish(8)?;
    let (origin, origin_addr) = relay(&p.origin, &[])?;
    let liar = Home::new(p.root.path(), "liar")?;
    // The flip comes after the first whole receipt chunk (256 KiB) of each transfer: the liar is honest long enough
    // to be paid once.
    let (liar_relay, liar_addr) = relay(&liar, &["--bootstrap", &origin_addr, "--fault-flip-after", "300000"])?;
    let viewer = Home::new(p.root.path(), "viewer")?;
    // The lying relay is asked first.
    let (watcher, url) = watch(&viewer, &p.cid, &[&liar_addr, &origin_addr])?;

    let decoded = decode(&url)?;
    for frames in &decoded.video_frames {
        assert_eq!(*frames, p.source_frames);
    }
    let base = url.trim_end_matches("master.m3u8");
    for r in &p.manifest.renditions {
        for (i, s) in r.segments.iter().enumerate() {
            let (_, body) = http_get(&format!("{base}{}/{i}.ts", String::from_utf8_lossy(&r.name)), None)?;
            assert_eq!(body, stored_blob(&p.origin, &hex::encode(s.hash)).unwrap());
        }
    }
    watcher.stop()?;
    liar_relay.stop()?;
    origin.stop()?;

    assert!(liar.log("relay").contains("flipped a served byte"), "the fault was injected");
    assert!(viewer.log("watch").contains("does not match the hash"), "the viewer noticed");
    let own = viewer.receipts()?["viewer"]["receipts"].as_array().cloned().unwrap_or_default();
    let to_liar: Vec<_> = own.iter().filter(|r| r["relay"] == liar.account.as_str()).collect();
    // Paid for the good chunk before the flip, in the one session it had: after the bad byte the viewer never
    // opened another session with it, so it was dropped, not just skipped once.
    assert!(!to_liar.is_empty(), "the liar was paid for the chunk it served honestly");
    let liar_peer = liar_addr.rsplit("/p2p/").next().unwrap_or_default();
    let log = viewer.log("watch");
    let opened = log.lines().filter(|l| l.contains("session open") && l.contains(liar_peer)).count();
    assert_eq!(opened, 1, "the viewer opened {opened} sessions with the liar:\n{log}");
    assert!(paid_bytes(&liar.receipts()?, &viewer.account) > 0, "the liar's ledger holds the viewer's receipt");
    Ok(())
}

#[test]
fn acknowledged_receipts_survive_kill_9_of_the_relay() -> Result<()> {
    let p = publish(20)?;
    let (origin, origin_addr) = relay(&p.origin, &[])?;
    let viewer = Home::new(p.root.path(), "viewer")?;
    let (watcher, url) = watch(&viewer, &p.cid, &[&origin_addr])?;
    let base = url.trim_end_matches("master.m3u8");
    let name = String::from_utf8_lossy(&p.manifest.renditions[0].name).to_string();
    // Play the first segments; each request also prefetches the next ones, so transfers are in flight at the kill.
    for i in 0..5 {
        http_get(&format!("{base}{name}/{i}.ts"), None)?;
    }
    origin.kill9()?;
    std::thread::sleep(Duration::from_millis(300));
    watcher.stop()?;

    let acked: HashSet<(String, u64, String)> = viewer.receipts()?["viewer"]["receipts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["acked"] == true)
        .map(|r| {
            (
                r["claim"].as_str().unwrap_or_default().to_string(),
                r["seq"].as_u64().unwrap_or(0),
                r["signature"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(acked.len() >= 5, "receipts were acknowledged before the kill");

    // The relay restarts on the same ledger and serves again; then every acknowledged receipt is there.
    let (restarted, _) = relay(&p.origin, &[])?;
    restarted.stop()?;
    let stored: HashSet<(String, u64, String)> = p.origin.receipts()?["relay"]["receipts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["claim"].as_str().unwrap_or_default().to_string(),
                r["seq"].as_u64().unwrap_or(0),
                r["signature"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged receipts lost by kill -9: {missing:?}");
    Ok(())
}

#[test]
fn viewer_finds_another_relay_through_the_dht_when_its_relay_dies() -> Result<()> {
    let p = publish(20)?;
    let (origin, origin_addr) = relay(&p.origin, &[])?;
    let cache = Home::new(p.root.path(), "cache")?;
    let (cache_relay, cache_addr) = relay(&cache, &["--bootstrap", &origin_addr])?;
    let viewer = Home::new(p.root.path(), "viewer")?;
    // The viewer only knows the cache relay; the origin is reachable only through the DHT.
    let (watcher, url) = watch(&viewer, &p.cid, &[&cache_addr])?;
    let base = url.trim_end_matches("master.m3u8");
    let name = String::from_utf8_lossy(&p.manifest.renditions[0].name).to_string();
    http_get(&format!("{base}{name}/0.ts"), None)?;
    cache_relay.kill9()?;

    let decoded = decode(&url)?;
    for frames in &decoded.video_frames {
        assert_eq!(*frames, p.source_frames, "playback finished after the relay died");
    }
    watcher.stop()?;
    origin.stop()?;
    let own = viewer.receipts()?["viewer"]["receipts"].as_array().cloned().unwrap_or_default();
    assert!(own.iter().any(|r| r["relay"] == p.origin.account.as_str()), "the origin, found through the DHT, was paid");
    Ok(())
}

#[test]
fn hls_folders_and_http_origins_publish_the_same_segments() -> Result<()> {
    let p = publish(8)?;
    let (origin, _, origin_quic) = relay_tcp_quic(&p.origin, &[])?;
    let viewer = Home::new(p.root.path(), "viewer")?;
    // This viewer reaches the relay over QUIC.
    let (watcher, url) = watch(&viewer, &p.cid, &[&origin_quic])?;

    // An HTTP HLS origin: the viewer's gateway serves one. Every byte is hashed again on the way in.
    let creator = Home::new(p.root.path(), "creator")?;
    let cid2 =
        ferry(&creator.dir, &["publish", &url, "--title", "mirrored"])?.lines().last().unwrap_or_default().to_string();
    let store = ferry_node::content::store::Store::open(&creator.dir, u64::MAX)?;
    let m2 = store.manifest(&ferry_node::identity::parse_hex32(&cid2).unwrap())?.expect("stored").manifest;
    let hashes = |m: &ferry_primitives::Manifest| m.blobs().map(|s| s.hash).collect::<Vec<_>>();
    assert_eq!(hashes(&m2), hashes(&p.manifest), "same segments, byte for byte");
    assert_ne!(cid2, p.cid, "another creator, another manifest");
    watcher.stop()?;
    origin.stop()?;

    // An HLS folder: mirror the gateway's layout on disk and publish it.
    let dir = p.root.path().join("hls");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("master.m3u8"), ferry_node::content::playlist::master(&p.manifest))?;
    for r in &p.manifest.renditions {
        let rdir = dir.join(String::from_utf8_lossy(&r.name).as_ref());
        std::fs::create_dir_all(&rdir)?;
        std::fs::write(rdir.join("index.m3u8"), ferry_node::content::playlist::media(&p.manifest, r))?;
        for (i, s) in r.segments.iter().enumerate() {
            std::fs::write(rdir.join(format!("{i}.ts")), stored_blob(&p.origin, &hex::encode(s.hash)).unwrap())?;
        }
    }
    let cid3 = ferry(&creator.dir, &["publish", dir.to_str().unwrap_or_default()])?
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let m3 = store.manifest(&ferry_node::identity::parse_hex32(&cid3).unwrap())?.expect("stored").manifest;
    assert_eq!(hashes(&m3), hashes(&p.manifest));

    // A segment that does not match is caught: a corrupt HLS folder publishes different hashes, never the old ones.
    let r0 = &p.manifest.renditions[0];
    let seg = dir.join(String::from_utf8_lossy(&r0.name).as_ref()).join("0.ts");
    let mut bytes = std::fs::read(&seg)?;
    bytes[1000] ^= 1;
    std::fs::write(&seg, bytes)?;
    let cid4 = ferry(&creator.dir, &["publish", dir.to_str().unwrap_or_default()])?
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let m4 = store.manifest(&ferry_node::identity::parse_hex32(&cid4).unwrap())?.expect("stored").manifest;
    assert_ne!(m4.renditions[0].segments[0].hash, r0.segments[0].hash);
    Ok(())
}

/// A hundred viewers start at once on one relay. The relay's stream library drops inbound streams that arrive before
/// its accept loop took the one before; viewers ask again, so every one of them gets, and pays for, every byte.
#[test]
fn a_hundred_viewers_at_once_all_get_and_pay_for_every_byte() -> Result<()> {
    const VIEWERS: usize = 100;
    let p = publish(4)?;
    let (origin, origin_addr) = relay(&p.origin, &[])?;
    let cid = ferry_node::identity::parse_hex32(&p.cid).expect("a content id");
    let rendition: u64 = p.manifest.renditions[0].segments.iter().map(|s| s.size).sum();
    let home = tempfile::tempdir()?;
    let watched = tokio::runtime::Runtime::new()?.block_on(async {
        let store = ferry_node::content::store::Store::open(home.path(), u64::MAX)?;
        let ledger = ferry_node::money::ledger::Ledger::open(home.path())?;
        let addr: ferry_node::libp2p::Multiaddr = origin_addr.parse()?;
        let viewers: Vec<_> = (0..VIEWERS)
            .map(|_| {
                tokio::spawn(ferry_node::viewer::load::sink_viewer(addr.clone(), cid, 0, store.clone(), ledger.clone()))
            })
            .collect();
        let mut out = vec![];
        for v in viewers {
            out.push(v.await?);
        }
        ledger.close().await?;
        anyhow::Ok(out)
    })?;
    origin.stop()?;
    let failed: Vec<String> = watched
        .iter()
        .filter_map(|w| match w {
            Ok(w) => w.error.clone().or_else(|| (w.bytes != rendition).then(|| format!("{} bytes", w.bytes))),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(failed.is_empty(), "{} of {VIEWERS} viewers failed, e.g. {:?}", failed.len(), failed.first());
    let ledger = p.origin.receipts()?;
    let sessions = ledger["relay"]["claims"].as_array().cloned().unwrap_or_default();
    let viewers: HashSet<&str> = sessions.iter().filter_map(|s| s["latest"]["viewer"].as_str()).collect();
    assert_eq!(viewers.len(), VIEWERS, "every viewer signed receipts");
    let paid: u64 = sessions.iter().map(|s| s["latest"]["bytes"].as_u64().unwrap_or(0)).sum();
    assert_eq!(paid, VIEWERS as u64 * rendition, "every byte was paid for");
    Ok(())
}

#[test]
fn a_relay_that_offers_a_claim_the_viewer_never_signed_is_dropped_and_never_paid() -> Result<()> {
    let p = publish(8)?;
    let (origin, origin_addr) = relay(&p.origin, &[])?;
    let liar = Home::new(p.root.path(), "liar")?;
    // It offers every viewer, as the receipt to continue, one claiming a billion more than the viewer ever signed:
    // a viewer that continued it would sign for bytes it never received.
    let (liar_relay, liar_addr) = relay(&liar, &["--bootstrap", &origin_addr, "--fault-inflate-claim", "1000000000"])?;
    let viewer = Home::new(p.root.path(), "viewer")?;
    // The liar is asked first.
    let (watcher, url) = watch(&viewer, &p.cid, &[&liar_addr, &origin_addr])?;

    let decoded = decode(&url)?;
    for frames in &decoded.video_frames {
        assert_eq!(*frames, p.source_frames);
    }
    watcher.stop()?;
    liar_relay.stop()?;
    origin.stop()?;

    assert!(liar.log("relay").contains("offering a claim the viewer never signed"), "the fault was injected");
    let log = viewer.log("watch");
    assert!(log.contains("does not continue our claim"), "the viewer says why it refused the liar:\n{log}");
    let own = viewer.receipts()?["viewer"]["receipts"].as_array().cloned().unwrap_or_default();
    assert!(!own.is_empty(), "the viewer paid the honest relay");
    assert!(own.iter().all(|r| r["relay"] != liar.account.as_str()), "the viewer signed a receipt to the liar");
    let liar_peer = liar_addr.rsplit("/p2p/").next().unwrap_or_default();
    let refused = |l: &&str| l.contains("transfer failed") && l.contains("does not continue our claim");
    let asked = log.lines().filter(|l| refused(l) && l.contains(liar_peer)).count();
    assert_eq!(asked, 1, "the viewer asked the liar again after refusing it:\n{log}");
    assert!(log.lines().any(|l| l.contains("dropping relay") && l.contains(liar_peer)), "the liar is dropped:\n{log}");
    Ok(())
}
