//! The node's client for the Ferry chain: subxt over code generated from the runtime's metadata
//! (`contracts/runtime/metadata.scale`, checked against the runtime by `ferry-runtime`'s tests).
//!
//! Extrinsics are signed by the node's own ed25519 identity as a `MultiSignature`, so the account that earns
//! (relay), pays (viewer) or creates is the same key as the peer id and the receipt signer.

mod signer;

use ferry_primitives::{Balance, ContentId, SignedReceipt};
use subxt::utils::{AccountId32, Static};
use subxt::{OnlineClient, PolkadotConfig};

pub use signer::Ed25519Signer;

#[subxt::subxt(
    runtime_metadata_path = "../contracts/runtime/metadata.scale",
    substitute_type(
        path = "ferry_primitives::receipt::SignedReceipt",
        with = "::subxt::utils::Static<::ferry_primitives::SignedReceipt>"
    ),
    derive_for_all_types = "Clone, Debug"
)]
pub mod runtime {}

use runtime::runtime_types::bounded_collections::bounded_vec::BoundedVec;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot reach the chain at {0}: {1} (is it running? `scripts/devchain up` starts a local dev chain)")]
    Connect(String, String),
    #[error("the chain refused the transaction: {0}")]
    Dispatch(String),
    #[error("chain RPC failed: {0}")]
    Rpc(String),
}

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// Where a transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inclusion {
    pub block_number: u32,
    pub block_hash: [u8; 32],
}

/// A connected chain client with the node's signer.
#[derive(Clone)]
pub struct Chain {
    api: OnlineClient<PolkadotConfig>,
    signer: Ed25519Signer,
}

impl Chain {
    pub async fn connect(url: &str, secret: &[u8; 32]) -> Result<Chain, ChainError> {
        let api = OnlineClient::<PolkadotConfig>::from_url(url)
            .await
            .map_err(|e| ChainError::Connect(url.to_string(), e.to_string()))?;
        Ok(Chain { api, signer: Ed25519Signer::new(secret) })
    }

    /// The chain's genesis hash: the domain receipts must name.
    pub fn genesis(&self) -> [u8; 32] {
        self.api.genesis_hash().0
    }

    pub fn account(&self) -> AccountId32 {
        subxt::transactions::Signer::<PolkadotConfig>::account_id(&self.signer)
    }

    async fn submit<Call: subxt::transactions::Payload>(&self, call: &Call) -> Result<Inclusion, ChainError> {
        let at = self.api.at_current_block().await.map_err(rpc)?;
        let progress = at.transactions().sign_and_submit_then_watch_default(call, &self.signer).await.map_err(rpc)?;
        let in_block = progress.wait_for_finalized().await.map_err(rpc)?;
        let block_hash = in_block.block_hash();
        in_block.wait_for_success().await.map_err(|e| ChainError::Dispatch(e.to_string()))?;
        let block = self.api.at_block(block_hash).await.map_err(rpc)?;
        Ok(Inclusion { block_number: block.block_number() as u32, block_hash: block_hash.0 })
    }

    pub async fn register_operator(
        &self,
        peer_id: Vec<u8>,
        price_per_mib: Balance,
        bond: Balance,
    ) -> Result<Inclusion, ChainError> {
        self.submit(&runtime::transactions().ferry().register_operator(peer_id, price_per_mib, bond)).await
    }

    pub async fn register_content(&self, content: ContentId, share_bps: u16) -> Result<Inclusion, ChainError> {
        self.submit(&runtime::transactions().ferry().register_content(content, share_bps)).await
    }

    pub async fn deposit(&self, amount: Balance, collateral: Balance) -> Result<Inclusion, ChainError> {
        self.submit(&runtime::transactions().ferry().deposit(amount, collateral)).await
    }

    pub async fn unbond(&self, amount: Balance) -> Result<Inclusion, ChainError> {
        self.submit(&runtime::transactions().ferry().unbond(amount)).await
    }

    pub async fn withdraw(&self) -> Result<Inclusion, ChainError> {
        self.submit(&runtime::transactions().ferry().withdraw()).await
    }

    pub async fn tip(&self, content: ContentId, amount: Balance) -> Result<Inclusion, ChainError> {
        self.submit(&runtime::transactions().ferry().tip(content, amount)).await
    }

    /// Settles a batch of receipts; returns once the block is finalized.
    pub async fn settle(&self, batch: Vec<SignedReceipt>) -> Result<Inclusion, ChainError> {
        let batch = BoundedVec(batch.into_iter().map(Static).collect());
        self.submit(&runtime::transactions().ferry().settle(batch)).await
    }

    /// Free balance of an account.
    pub async fn balance(&self, who: [u8; 32]) -> Result<Balance, ChainError> {
        let at = self.api.at_current_block().await.map_err(rpc)?;
        let entry = at.storage().entry(runtime::storage().system().account()).map_err(rpc)?;
        let info = entry.fetch((AccountId32(who),)).await.map_err(rpc)?.decode().map_err(rpc)?;
        Ok(info.data.free)
    }

    /// A viewer's escrow: (free, collateral, unbonding).
    pub async fn escrow(&self, who: [u8; 32]) -> Result<(Balance, Balance, Balance), ChainError> {
        let at = self.api.at_current_block().await.map_err(rpc)?;
        let entry = at.storage().entry(runtime::storage().ferry().escrows()).map_err(rpc)?;
        let e = entry.fetch((AccountId32(who),)).await.map_err(rpc)?.decode().map_err(rpc)?;
        Ok((e.free, e.collateral, e.unbonding))
    }
}
