//! The content header: what a content id commits to, so that registering an id on chain can only ever name the
//! creator and share the creator put in the manifest.

use parity_scale_codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::signing::CONTENT_TAG;
use crate::{AccountId, ContentId};

/// Creator, share and the hash of the full manifest. The content id is the hash of this header, so whoever
/// submits it to the chain, the registration pays this creator this share.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
pub struct ContentHeader {
    pub creator: AccountId,
    /// Creator's share of every payment after the protocol fee, in basis points.
    pub creator_share_bps: u16,
    /// BLAKE3 of the manifest's SCALE encoding.
    pub manifest_hash: [u8; 32],
}

impl ContentHeader {
    /// The content id: BLAKE3 over the content tag and the header's encoding.
    pub fn content_id(&self) -> ContentId {
        let mut h = blake3::Hasher::new();
        h.update(&CONTENT_TAG);
        h.update(&self.encode());
        *h.finalize().as_bytes()
    }
}
