//! Bandwidth receipts: the viewer's signed, cumulative statement of what one relay served it of one content id, over
//! every session between them (one **claim**).

use alloc::vec::Vec;
use parity_scale_codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::signing::{Domain, CLAIM_TAG, RECEIPT_TAG};
use crate::{AccountId, Balance, ClaimId, ContentId, Signature};

/// A cumulative receipt. Every field but `seq` and the totals is fixed for the claim; each new receipt supersedes
/// the last, whichever session it came from, so only the latest of a claim needs settling.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
pub struct Receipt {
    /// The chain this receipt pays on.
    pub domain: Domain,
    /// [`claim_id`] of `relay`, `viewer` and `content`; anything else is refused.
    pub claim: ClaimId,
    /// The relay that served the bytes; only it can settle this receipt.
    pub relay: AccountId,
    /// The viewer who signed, and whose escrow pays.
    pub viewer: AccountId,
    pub content: ContentId,
    /// Starts at 1 and grows by at least 1 with every receipt of the claim.
    pub seq: u64,
    /// Verified video bytes served in the claim so far.
    pub bytes: u64,
    /// What the viewer owes the relay for `bytes`: each session adds its bytes at the price it was quoted.
    pub amount: Balance,
    /// Running BLAKE3 over the hashes of the chunks served, in order (see [`ChunkChain`]).
    pub chunk_chain: [u8; 32],
    /// Tips for the creator in the claim so far.
    pub tip: Balance,
}

impl Receipt {
    /// The exact bytes the viewer signs: the receipt tag, then the SCALE encoding.
    pub fn signing_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECEIPT_TAG.len() + Self::max_encoded_len());
        out.extend_from_slice(&RECEIPT_TAG);
        self.encode_to(&mut out);
        out
    }

    /// Signs this receipt with the viewer's secret key.
    #[cfg(feature = "dalek")]
    pub fn sign(self, secret: &[u8; 32]) -> SignedReceipt {
        let signature = crate::signing::sign(secret, &self.signing_payload());
        SignedReceipt { receipt: self, signature }
    }
}

/// The id of the claim of `viewer` at `relay` for `content`: the first 16 bytes of
/// `BLAKE3(CLAIM_TAG || relay || viewer || content)`.
pub fn claim_id(relay: &AccountId, viewer: &AccountId, content: &ContentId) -> ClaimId {
    let mut h = blake3::Hasher::new();
    h.update(&CLAIM_TAG);
    h.update(relay);
    h.update(viewer);
    h.update(content);
    let mut id = [0; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}

/// A receipt and the viewer's signature over [`Receipt::signing_payload`].
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    pub signature: Signature,
}

impl SignedReceipt {
    /// Checks the viewer's signature.
    #[cfg(feature = "dalek")]
    pub fn verify(&self) -> Result<(), crate::SignatureError> {
        crate::signing::verify(&self.receipt.viewer, &self.receipt.signing_payload(), &self.signature)
    }
}

/// The running hash over served chunks that a receipt commits to: `next = BLAKE3(prev || BLAKE3(chunk bytes))`.
/// Relay and viewer compute it independently, so a receipt also proves which bytes were delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkChain(pub [u8; 32]);

impl ChunkChain {
    /// Extends the chain by one chunk, given the chunk's bytes.
    pub fn extend(&mut self, chunk: &[u8]) {
        self.extend_hash(blake3::hash(chunk).as_bytes());
    }

    /// Extends the chain by one chunk, given the BLAKE3 hash of its bytes.
    pub fn extend_hash(&mut self, chunk_hash: &[u8; 32]) {
        let mut h = blake3::Hasher::new();
        h.update(&self.0);
        h.update(chunk_hash);
        self.0 = *h.finalize().as_bytes();
    }
}
