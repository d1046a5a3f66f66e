//! Golden vectors: the exact bytes of the encodings and signatures (receipts `ferry/receipt/v2`, whose totals run over
//! a claim; manifests v1; the v2 content id, which hashes a header naming the creator and share; the claim id). Any
//! other implementation (or a future version of this one) can check itself against `vectors/v1.json`. Regenerate only for a new protocol version,
//! with `FERRY_BLESS=1 cargo test -p ferry-primitives --test golden`.

use ferry_primitives::manifest::MANIFEST_VERSION;
use ferry_primitives::{claim_id, Container, Domain, Manifest, Receipt, Rendition, Segment};
use parity_scale_codec::Encode;

const VIEWER_SECRET: [u8; 32] = [0x11; 32];
const CREATOR_SECRET: [u8; 32] = [0x22; 32];

fn receipt() -> Receipt {
    let viewer = ferry_primitives::signing::public_key(&VIEWER_SECRET);
    Receipt {
        domain: Domain([0xaa; 32]),
        claim: claim_id(&[0x02; 32], &viewer, &[0x03; 32]),
        relay: [0x02; 32],
        viewer,
        content: [0x03; 32],
        seq: 7,
        bytes: 786_432,
        amount: 750,
        chunk_chain: [0x04; 32],
        tip: 5,
    }
}

fn manifest() -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        creator: ferry_primitives::signing::public_key(&CREATOR_SECRET),
        creator_share_bps: 2_000,
        created_at: 1_800_000_000,
        title: b"golden".to_vec(),
        container: Container::Ts,
        target_duration_ms: 2_000,
        renditions: vec![Rendition {
            name: b"360p".to_vec(),
            bandwidth: 900_000,
            width: 640,
            height: 360,
            codecs: b"avc1.64001e,mp4a.40.2".to_vec(),
            init: None,
            segments: vec![Segment { hash: [0x05; 32], size: 123_456, duration_ms: 2_000 }],
        }],
    }
}

fn vectors() -> serde_json::Value {
    let r = receipt();
    let signed_r = r.clone().sign(&VIEWER_SECRET);
    let m = manifest();
    let signed_m = m.clone().sign(&CREATOR_SECRET);
    serde_json::json!({
        "viewer_secret": hex::encode(VIEWER_SECRET),
        "viewer_public": hex::encode(r.viewer),
        "claim_id": hex::encode(r.claim),
        "receipt_encoding": hex::encode(r.encode()),
        "receipt_signing_payload": hex::encode(r.signing_payload()),
        "receipt_signature": hex::encode(signed_r.signature),
        "creator_secret": hex::encode(CREATOR_SECRET),
        "manifest_encoding": hex::encode(m.encode()),
        "content_header_encoding": hex::encode(m.header().encode()),
        "manifest_content_id": hex::encode(m.content_id()),
        "manifest_signature": hex::encode(signed_m.signature),
    })
}

#[test]
fn encodings_and_signatures_match_the_committed_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/v1.json");
    let now = vectors();
    if std::env::var_os("FERRY_BLESS").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors/v1.json")).unwrap();
    assert_eq!(now, committed, "the wire format changed; that breaks on-chain verification of existing receipts");
}

#[test]
fn receipt_payload_is_tag_then_encoding() {
    let r = receipt();
    let payload = r.signing_payload();
    assert_eq!(&payload[..16], b"ferry/receipt/v2");
    assert_eq!(&payload[16..], &r.encode()[..]);
    assert_eq!(r.encode().len(), 224);
}

#[test]
fn the_content_id_commits_to_creator_and_share() {
    let m = manifest();
    let mut other = m.clone();
    other.creator_share_bps = 10_000;
    assert_ne!(m.content_id(), other.content_id());
    let mut h = m.header();
    assert_eq!(h.content_id(), m.content_id());
    h.creator = [0x09; 32];
    assert_ne!(h.content_id(), m.content_id());
}

#[test]
fn tampered_receipt_does_not_verify() {
    let mut signed = receipt().sign(&VIEWER_SECRET);
    assert!(signed.verify().is_ok());
    signed.receipt.bytes += 1;
    assert!(signed.verify().is_err());
}
