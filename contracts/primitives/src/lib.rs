//! Types that the Ferry node and the Ferry pallet both need, and the one canonical way to encode and sign them.
//!
//! The bytes a viewer signs off-chain are the bytes the pallet verifies on-chain, so both sides take them from
//! [`Receipt::signing_payload`] and [`Manifest::signing_payload`] here and nowhere else. The encodings are pinned
//! by golden vectors (`vectors/v1.json`, checked in `tests/golden.rs`): if they drift, on-chain verification breaks.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod codec;
pub mod content;
pub mod manifest;
pub mod payout;
pub mod receipt;
pub mod signing;

pub use codec::{decode_bounded, DecodeError};
pub use content::ContentHeader;
pub use manifest::{Container, Manifest, ManifestError, Rendition, Segment, SignedManifest};
pub use payout::{amount_for, Split, BPS_DENOMINATOR};
pub use receipt::{claim_id, ChunkChain, Receipt, SignedReceipt};
pub use signing::{Domain, SignatureError};

/// An account on the Ferry chain: the raw ed25519 public key, as `AccountId32` holds it for `MultiSigner::Ed25519`.
pub type AccountId = [u8; 32];
/// A content id: BLAKE3 of the content tag and the [`ContentHeader`] (creator, share, manifest hash).
pub type ContentId = [u8; 32];
/// A BLAKE3 hash of one stored blob (a video segment).
pub type BlobHash = [u8; 32];
/// Names one **claim**: everything a viewer owes one relay for one content id, across all its sessions. It is
/// [`claim_id`] of the three, so no party chooses it; receipts, ledgers and the chain's storage are keyed by it.
pub type ClaimId = [u8; 16];
/// Token amounts, as the chain's `Balance`.
pub type Balance = u128;
/// An ed25519 signature.
pub type Signature = [u8; 64];

/// Bytes per MiB: prices are quoted per MiB of verified video.
pub const MIB: u64 = 1 << 20;

/// Most receipts one `settle` call carries. The benchmarked weight of this many, each naming content of its own (the
/// worst case), fits in one dev-chain block (`receipts_per_block` in the runtime's tests), so a batch the pallet
/// accepts is never too big to land.
pub const MAX_SETTLE_BATCH: u32 = 2_048;

/// Either the bytes did not decode, or the decoded manifest is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeOrManifestError {
    Decode(DecodeError),
    Manifest(ManifestError),
}

impl From<DecodeError> for DecodeOrManifestError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<ManifestError> for DecodeOrManifestError {
    fn from(e: ManifestError) -> Self {
        Self::Manifest(e)
    }
}

impl core::fmt::Display for DecodeOrManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "manifest does not decode: {e}"),
            Self::Manifest(e) => write!(f, "manifest rejected: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeOrManifestError {}
