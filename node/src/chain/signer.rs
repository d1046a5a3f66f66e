//! subxt signs with the node's ed25519 key: subxt-signer has no ed25519 signer, and the runtime takes
//! `MultiSignature::Ed25519` from an `AccountId32` that is the raw public key.

use subxt::utils::{AccountId32, MultiSignature};
use subxt::PolkadotConfig;

#[derive(Clone)]
pub struct Ed25519Signer {
    secret: [u8; 32],
    public: [u8; 32],
}

impl Ed25519Signer {
    pub fn new(secret: &[u8; 32]) -> Self {
        Ed25519Signer { secret: *secret, public: ferry_primitives::signing::public_key(secret) }
    }
}

impl subxt::transactions::Signer<PolkadotConfig> for Ed25519Signer {
    fn account_id(&self) -> AccountId32 {
        AccountId32(self.public)
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        MultiSignature::Ed25519(ferry_primitives::signing::sign(&self.secret, signer_payload))
    }
}
