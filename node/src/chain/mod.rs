//! The node's client for the Ferry chain: subxt over code generated from the runtime's metadata
//! (`contracts/runtime/metadata.scale`, checked against the runtime by `ferry-runtime`'s tests).
//!
//! Extrinsics are signed by the node's own ed25519 identity as a `MultiSignature`, so the account that earns
//! (relay), pays (viewer) or creates is the same key as the peer id and the receipt signer.

mod signer;

use std::time::Duration;

use ferry_primitives::{Balance, ContentId, SessionId, SignedReceipt};
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
    #[error("cannot reach the chain at {0}: {1} (is it running? `ferry chain up` starts a local dev chain)")]
    Connect(String, String),
    /// The transaction was included and failed; `error` is `Pallet::Variant`.
    #[error("the chain refused the transaction: {error}{}", docs_suffix(.docs))]
    Refused { error: String, docs: String },
    /// The transaction pool refused it (bad nonce, cannot pay fees, …).
    #[error("the chain did not accept the transaction: {0}")]
    Invalid(String),
    #[error("chain RPC failed: {0}")]
    Rpc(String),
    #[error("the chain did not answer within {0:?}")]
    Timeout(Duration),
}

fn docs_suffix(docs: &str) -> String {
    if docs.is_empty() {
        String::new()
    } else {
        format!(" ({docs})")
    }
}

impl ChainError {
    /// True when the failure is the fault of one receipt in a batch, so splitting the batch finds it.
    pub fn is_receipt_fault(&self) -> bool {
        matches!(self, ChainError::Refused { error, .. } if RECEIPT_FAULTS.iter().any(|f| error == &format!("Ferry::{f}")))
    }

    /// True when the chain could not be reached or did not answer: worth retrying as is.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ChainError::Connect(..) | ChainError::Rpc(_) | ChainError::Timeout(_))
    }
}

/// Pallet errors that point at one receipt rather than at the batch or the relay.
const RECEIPT_FAULTS: [&str; 6] =
    ["BadSignature", "WrongDomain", "WrongRelay", "SessionMismatch", "NotMonotonic", "UnknownContent"];

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// A failed dispatch, with the pallet error's name and doc line from the metadata.
fn refused(e: subxt::error::TransactionEventsError) -> ChainError {
    use subxt::error::{DispatchError, TransactionEventsError};
    match e {
        TransactionEventsError::ExtrinsicFailed(DispatchError::Module(m)) => match m.details() {
            Ok(d) => ChainError::Refused {
                error: format!("{}::{}", d.pallet.name(), d.variant.name),
                docs: d.variant.docs.join(" ").trim().to_string(),
            },
            Err(_) => ChainError::Refused { error: m.to_string(), docs: String::new() },
        },
        TransactionEventsError::ExtrinsicFailed(other) => {
            ChainError::Refused { error: format!("{other:?}"), docs: other.to_string() }
        }
        other => rpc(other),
    }
}

/// How long a first, cheap call may take before the chain counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one chain call may take before the caller treats the chain as down.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The `Settled` event of one receipt: what it paid, to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub session: SessionId,
    pub seq: u64,
    pub operator_paid: Balance,
    pub creator_paid: Balance,
    pub burned: Balance,
    pub tip_paid: Balance,
}

/// Where a transaction landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inclusion {
    pub block_number: u32,
    pub block_hash: [u8; 32],
}

impl From<&runtime::ferry::events::Settled> for Payout {
    fn from(ev: &runtime::ferry::events::Settled) -> Payout {
        Payout {
            session: ev.session,
            seq: ev.seq,
            operator_paid: ev.operator_paid,
            creator_paid: ev.creator_paid,
            burned: ev.burned,
            tip_paid: ev.tip_paid,
        }
    }
}

/// A viewer's escrow on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Escrow {
    pub free: Balance,
    pub collateral: Balance,
    pub unbonding: Balance,
}

impl Escrow {
    /// Everything a relay can still be paid from: settlement draws on free, then unbonding, then collateral.
    pub fn payable(&self) -> Balance {
        self.free.saturating_add(self.unbonding).saturating_add(self.collateral)
    }
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

    /// Signs, submits and waits until the block holding the call is finalized.
    async fn submit<Call: subxt::transactions::Payload>(
        &self,
        call: &Call,
    ) -> Result<(Inclusion, subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>), ChainError> {
        // A short first call, so a chain that went away is noticed in seconds rather than after CALL_TIMEOUT.
        let at = tokio::time::timeout(PROBE_TIMEOUT, self.api.at_current_block())
            .await
            .map_err(|_| ChainError::Timeout(PROBE_TIMEOUT))?
            .map_err(rpc)?;
        let work = async {
            let progress =
                at.transactions().sign_and_submit_then_watch_default(call, &self.signer).await.map_err(|e| match e
                    .to_string()
                {
                    m if m.contains("nvalid") || m.contains("Priority is too low") => ChainError::Invalid(m),
                    m => ChainError::Rpc(m),
                })?;
            let in_block = progress.wait_for_finalized().await.map_err(|e| match e {
                subxt::error::TransactionProgressError::TransactionStatusError(s) => ChainError::Invalid(s.to_string()),
                e => rpc(e),
            })?;
            let block_hash = in_block.block_hash();
            let events = in_block.wait_for_success().await.map_err(refused)?;
            let block = self.api.at_block(block_hash).await.map_err(rpc)?;
            Ok((Inclusion { block_number: block.block_number() as u32, block_hash: block_hash.0 }, events))
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }

    async fn submit_only<Call: subxt::transactions::Payload>(&self, call: &Call) -> Result<Inclusion, ChainError> {
        Ok(self.submit(call).await?.0)
    }

    pub async fn register_operator(
        &self,
        peer_id: Vec<u8>,
        price_per_mib: Balance,
        bond: Balance,
    ) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().register_operator(peer_id, price_per_mib, bond)).await
    }

    pub async fn register_content(&self, content: ContentId, share_bps: u16) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().register_content(content, share_bps)).await
    }

    pub async fn deposit(&self, amount: Balance, collateral: Balance) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().deposit(amount, collateral)).await
    }

    pub async fn unbond(&self, amount: Balance) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().unbond(amount)).await
    }

    pub async fn withdraw(&self) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().withdraw()).await
    }

    pub async fn tip(&self, content: ContentId, amount: Balance) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().tip(content, amount)).await
    }

    /// Settles a batch of receipts; returns once the block is finalized, with what each new receipt paid.
    /// A receipt already settled pays nothing and has no payout.
    pub async fn settle(&self, batch: Vec<SignedReceipt>) -> Result<(Inclusion, Vec<Payout>), ChainError> {
        let batch = BoundedVec(batch.into_iter().map(Static).collect());
        let (at, events) = self.submit(&runtime::transactions().ferry().settle(batch)).await?;
        let mut payouts = vec![];
        for ev in events.find::<runtime::ferry::events::Settled>() {
            payouts.push(Payout::from(&ev.map_err(rpc)?));
        }
        Ok((at, payouts))
    }

    /// Free balance of an account.
    pub async fn balance(&self, who: [u8; 32]) -> Result<Balance, ChainError> {
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let entry = at.storage().entry(runtime::storage().system().account()).map_err(rpc)?;
            let info = entry.fetch((AccountId32(who),)).await.map_err(rpc)?.decode().map_err(rpc)?;
            Ok(info.data.free)
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }

    /// A viewer's escrow.
    pub async fn escrow(&self, who: [u8; 32]) -> Result<Escrow, ChainError> {
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let entry = at.storage().entry(runtime::storage().ferry().escrows()).map_err(rpc)?;
            let e = entry.fetch((AccountId32(who),)).await.map_err(rpc)?.decode().map_err(rpc)?;
            Ok(Escrow { free: e.free, collateral: e.collateral, unbonding: e.unbonding })
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }
}

impl Chain {
    /// The registered creator and share of a content id, if registered.
    pub async fn content(&self, content: ContentId) -> Result<Option<([u8; 32], u16)>, ChainError> {
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let entry = at.storage().entry(runtime::storage().ferry().contents()).map_err(rpc)?;
            match entry.try_fetch((content,)).await.map_err(rpc)? {
                Some(v) => {
                    let c = v.decode().map_err(rpc)?;
                    Ok(Some((c.creator.0, c.share_bps)))
                }
                None => Ok(None),
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }
}

/// How long connecting may take before the chain counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A chain client made on first use and made again after the chain was unreachable, shared by the relay's tasks.
#[derive(Clone)]
pub struct Link {
    url: String,
    secret: [u8; 32],
    current: std::sync::Arc<tokio::sync::Mutex<Option<Chain>>>,
}

impl Link {
    pub fn new(url: String, secret: &[u8; 32]) -> Link {
        Link { url, secret: *secret, current: Default::default() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn get(&self) -> Result<Chain, ChainError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(CONNECT_TIMEOUT, Chain::connect(&self.url, &self.secret))
            .await
            .map_err(|_| ChainError::Connect(self.url.clone(), format!("no answer within {CONNECT_TIMEOUT:?}")))??;
        *current = Some(c.clone());
        Ok(c)
    }

    /// Drops the client after a failure, so the next call connects afresh.
    pub async fn reset(&self) {
        *self.current.lock().await = None;
    }
}

/// Money that moved in one block through Ferry and fees: what an auditor sums to check payouts.
#[derive(Debug, Clone, Default)]
pub struct BlockMoney {
    /// (relay, payout) for every `Ferry::Settled` event.
    pub settled: Vec<([u8; 32], Payout)>,
    /// (payer, fee) for every `TransactionPayment::TransactionFeePaid` event.
    pub fees: Vec<([u8; 32], Balance)>,
    /// (creator, amount) for every direct `Ferry::Tipped` event.
    pub tips: Vec<([u8; 32], Balance)>,
    /// (viewer, amount) for every `Ferry::CollateralTaken` event.
    pub collateral_taken: Vec<([u8; 32], Balance)>,
}

impl Chain {
    /// Number of the latest finalized block.
    /// Cheap, and quick to fail, so it also tells whether the chain is still there.
    pub async fn finalized_number(&self) -> Result<u32, ChainError> {
        let at = tokio::time::timeout(PROBE_TIMEOUT, self.api.at_current_block())
            .await
            .map_err(|_| ChainError::Timeout(PROBE_TIMEOUT))?
            .map_err(rpc)?;
        Ok(at.block_number() as u32)
    }

    /// The Ferry payouts, tips and fees of one block.
    pub async fn block_money(&self, number: u32) -> Result<BlockMoney, ChainError> {
        use runtime::ferry::events::{CollateralTaken, Settled, Tipped};
        use runtime::transaction_payment::events::TransactionFeePaid;
        let at = self.api.at_block(number).await.map_err(rpc)?;
        let events = at.events().fetch().await.map_err(rpc)?;
        let mut m = BlockMoney::default();
        for ev in events.find::<Settled>() {
            let ev = ev.map_err(rpc)?;
            m.settled.push((ev.relay.0, Payout::from(&ev)));
        }
        for ev in events.find::<TransactionFeePaid>() {
            let ev = ev.map_err(rpc)?;
            m.fees.push((ev.who.0, ev.actual_fee));
        }
        for ev in events.find::<Tipped>() {
            let ev = ev.map_err(rpc)?;
            m.tips.push((ev.creator.0, ev.amount));
        }
        for ev in events.find::<CollateralTaken>() {
            let ev = ev.map_err(rpc)?;
            m.collateral_taken.push((ev.viewer.0, ev.amount));
        }
        Ok(m)
    }

    /// Total issuance of the chain's currency (burns lower it).
    pub async fn total_issuance(&self) -> Result<Balance, ChainError> {
        let at = self.api.at_current_block().await.map_err(rpc)?;
        let entry = at.storage().entry(runtime::storage().balances().total_issuance()).map_err(rpc)?;
        entry.fetch(()).await.map_err(rpc)?.decode().map_err(rpc)
    }
}
