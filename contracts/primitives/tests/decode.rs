//! Bad input gives an error, never a panic.

use ferry_primitives::manifest::MAX_MANIFEST_BYTES;
use ferry_primitives::{decode_bounded, DecodeError, Receipt, SignedManifest, SignedReceipt};
use parity_scale_codec::Encode;
use proptest::prelude::*;

fn valid_manifest_bytes() -> Vec<u8> {
    let m = ferry_primitives::Manifest {
        version: 1,
        creator: ferry_primitives::signing::public_key(&[7; 32]),
        creator_share_bps: 100,
        created_at: 0,
        title: b"t".to_vec(),
        container: ferry_primitives::Container::Ts,
        target_duration_ms: 2000,
        renditions: vec![ferry_primitives::Rendition {
            name: b"a".to_vec(),
            bandwidth: 1,
            width: 2,
            height: 2,
            codecs: vec![],
            init: None,
            segments: vec![ferry_primitives::Segment { hash: [1; 32], size: 10, duration_ms: 2000 }],
        }],
    };
    m.sign(&[7; 32]).encode()
}

#[test]
fn valid_manifest_decodes_and_a_flipped_byte_fails() {
    let bytes = valid_manifest_bytes();
    assert!(SignedManifest::decode_verified(&bytes).is_ok());
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(SignedManifest::decode_verified(&b).is_err(), "flipping byte {i} went unnoticed");
    }
}

#[test]
fn oversized_and_trailing_input_is_refused() {
    let big = vec![0u8; MAX_MANIFEST_BYTES + 1];
    assert!(matches!(decode_bounded::<SignedManifest>(&big, MAX_MANIFEST_BYTES), Err(DecodeError::TooLarge { .. })));
    let mut bytes = valid_manifest_bytes();
    bytes.push(0);
    assert!(SignedManifest::decode_verified(&bytes).is_err());
}

proptest! {
    #[test]
    fn garbage_manifests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedManifest::decode_verified(&bytes);
    }

    #[test]
    fn truncated_manifests_are_errors(cut in 0usize..400) {
        let bytes = valid_manifest_bytes();
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(SignedManifest::decode_verified(&bytes[..cut]).is_err());
    }

    #[test]
    fn garbage_receipts_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = decode_bounded::<SignedReceipt>(&bytes, 512) {
            let _ = r.verify();
        }
        let _ = decode_bounded::<Receipt>(&bytes, 512);
    }
}
