//! Domain separation and ed25519 signatures.
//!
//! Every signed payload starts with a 16-byte tag that names what it is and its version, so a signature made for one
//! purpose can never be replayed as another. Receipts also carry the chain's genesis hash ([`Domain`]), so a receipt
//! for one chain is worthless on another.

use parity_scale_codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Tag that starts every receipt signing payload.
pub const RECEIPT_TAG: [u8; 16] = *b"ferry/receipt/v2";
/// Tag that starts every manifest signing payload.
pub const MANIFEST_TAG: [u8; 16] = *b"ferry/manifst/v1";
/// Tag hashed before a claim's relay, viewer and content to make its id.
pub const CLAIM_TAG: [u8; 16] = *b"ferry/claim/v1\0\0";
/// Tag hashed before a content header to make the content id.
pub const CONTENT_TAG: [u8; 16] = *b"ferry/content/v2";

/// The chain a receipt is valid on: its genesis hash.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen, Default,
)]
pub struct Domain(pub [u8; 32]);

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The public key is not a valid ed25519 point.
    BadKey,
    /// The signature does not match the payload and key.
    Invalid,
}

impl core::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SignatureError::BadKey => f.write_str("the signer's public key is not a valid ed25519 key"),
            SignatureError::Invalid => f.write_str("the signature does not match the signed bytes"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SignatureError {}

/// Signs `payload` with an ed25519 secret key (the 32-byte seed).
#[cfg(feature = "dalek")]
pub fn sign(secret: &[u8; 32], payload: &[u8]) -> crate::Signature {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(secret).sign(payload).to_bytes()
}

/// The public key (account) of an ed25519 secret key.
#[cfg(feature = "dalek")]
pub fn public_key(secret: &[u8; 32]) -> crate::AccountId {
    ed25519_dalek::SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Verifies strictly: anything this accepts, the chain's ed25519 host function (ZIP-215 rules) accepts too, so a
/// relay never acknowledges a receipt the chain would refuse.
#[cfg(feature = "dalek")]
pub fn verify(public: &crate::AccountId, payload: &[u8], signature: &crate::Signature) -> Result<(), SignatureError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| SignatureError::BadKey)?;
    key.verify_strict(payload, &ed25519_dalek::Signature::from_bytes(signature)).map_err(|_| SignatureError::Invalid)
}
