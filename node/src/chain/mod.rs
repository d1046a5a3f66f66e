//! The node's client for the Ferry chain: subxt over code generated from the runtime's metadata
//! (`contracts/runtime/metadata.scale`, checked against the runtime by `ferry-runtime`'s tests).
//!
//! Extrinsics are signed by the node's own ed25519 identity as a `MultiSignature`, so the account that earns
//! (relay), pays (viewer) or creates is the same key as the peer id and the receipt signer.

mod signer;

use std::time::Duration;

use ferry_primitives::{AccountId, Balance, ClaimId, ContentHeader, ContentId, Domain, Receipt, SignedReceipt, Split};
use subxt::utils::{AccountId32, Static};
use subxt::{OnlineClient, PolkadotConfig};

pub use signer::Ed25519Signer;

#[subxt::subxt(
    runtime_metadata_path = "../contracts/runtime/metadata.scale",
    substitute_type(
        path = "ferry_primitives::receipt::SignedReceipt",
        with = "::subxt::utils::Static<::ferry_primitives::SignedReceipt>"
    ),
    substitute_type(
        path = "ferry_primitives::content::ContentHeader",
        with = "::subxt::utils::Static<::ferry_primitives::ContentHeader>"
    ),
    derive_for_all_types = "Clone, Debug"
)]
pub mod runtime {}

use runtime::ferry::events;
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
    /// The pool took the transaction and later let it go unincluded: it expired (mortal transactions live 32
    /// blocks), was dropped, or was pushed out by others that paid more.
    #[error("the transaction left the pool without getting into a block: {0}")]
    NotIncluded(String),
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
    /// True when the chain ran the batch and refused it: splitting the batch finds the receipt at fault, and a
    /// receipt refused on its own is parked, so nothing it does blocks the others.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ChainError::Refused { .. })
    }

    /// The pallet error's name, when the chain refused a call (`Ferry::NotMonotonic`).
    pub fn refusal(&self) -> Option<&str> {
        match self {
            ChainError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when a transaction did not get into a block (the pool dropped it, or preferred others): worth
    /// sending again with a tip.
    pub fn not_included(&self) -> bool {
        match self {
            ChainError::Timeout(_) | ChainError::NotIncluded(_) => true,
            ChainError::Invalid(m) => {
                ["Priority is too low", "ropped", "surped", "banned"].iter().any(|w| m.contains(w))
            }
            _ => false,
        }
    }

    /// True when the chain could not be reached or did not answer: worth retrying as is.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ChainError::Connect(..) | ChainError::Rpc(_) | ChainError::Timeout(_))
    }
}

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// An error from making or submitting a transaction: the pool's refusals apart from the rest.
fn pool_error(e: impl std::fmt::Display) -> ChainError {
    match e.to_string() {
        m if m.contains("nvalid") || m.contains("Priority is too low") => ChainError::Invalid(m),
        m => ChainError::Rpc(m),
    }
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

/// The `Settled` event of one receipt: what it claimed, what the lane paid, and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub viewer: AccountId,
    pub claim: ClaimId,
    pub content: ContentId,
    pub seq: u64,
    /// What the receipt claimed over what was paid before, and what the lane paid of it.
    pub due: Balance,
    pub paid: Balance,
    pub tip_due: Balance,
    pub tip_paid: Balance,
    pub operator_paid: Balance,
    pub creator_paid: Balance,
    pub burned: Balance,
}

impl Payout {
    /// Everything the claim has been paid in total (bytes and tips), after this settlement.
    pub fn total_paid(&self, receipt: &ferry_primitives::Receipt) -> Balance {
        (receipt.amount - self.due + self.paid) + (receipt.tip - self.tip_due + self.tip_paid)
    }
}

/// A claim's state on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledClaim {
    /// The latest receipt the chain settled.
    pub latest: SignedReceipt,
    /// What the lane paid of it in total (bytes and tips); less than its totals only when the lane ran dry.
    pub paid: Balance,
    /// The operator's part of that, in total: the split of what was paid for bytes (tips go to the creator),
    /// which is what the claim's `Settled` events paid the operator, however they were batched.
    pub operator_paid: Balance,
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
            viewer: ev.viewer.0,
            claim: ev.claim,
            content: ev.content,
            seq: ev.seq,
            due: ev.due,
            paid: ev.paid,
            tip_due: ev.tip_due,
            tip_paid: ev.tip_paid,
            operator_paid: ev.operator_paid,
            creator_paid: ev.creator_paid,
            burned: ev.burned,
        }
    }
}

/// What [`Chain::ensure_content`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Already { creator: AccountId, share_bps: u16 },
    New(Inclusion),
}

/// Funds a viewer reserved for one relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lane {
    pub funds: Balance,
    /// The block from which the viewer can take the rest back; the relay's guarantee ends there.
    pub closing_at: Option<u32>,
}

impl Lane {
    /// What a relay may still serve against: nothing once the lane is closing.
    pub fn usable(&self) -> Balance {
        if self.closing_at.is_some() {
            0
        } else {
            self.funds
        }
    }
}

/// A registered operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInfo {
    pub bond: Balance,
    pub price_per_mib: Balance,
    pub unbonding_until: Option<u32>,
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
        self.submit_tipped(call, 0).await
    }

    /// [`Chain::submit`] with a tip to the block author, which raises the transaction's priority in the pool.
    async fn submit_tipped<Call: subxt::transactions::Payload>(
        &self,
        call: &Call,
        tip: Balance,
    ) -> Result<(Inclusion, subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>), ChainError> {
        // A short first call, so a chain that went away is noticed in seconds rather than after CALL_TIMEOUT.
        let at = tokio::time::timeout(PROBE_TIMEOUT, self.api.at_current_block())
            .await
            .map_err(|_| ChainError::Timeout(PROBE_TIMEOUT))?
            .map_err(rpc)?;
        let params = subxt::config::polkadot::PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().tip(tip).build();
        let progress = tokio::time::timeout(
            CALL_TIMEOUT,
            at.transactions().sign_and_submit_then_watch(call, &self.signer, params),
        )
        .await
        .map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
        .map_err(pool_error)?;
        // The pool took it: from here, a wait that runs out means other transactions got in instead (a full or
        // stuffed chain), not that the chain went away.
        let work = async {
            let in_block = progress.wait_for_finalized().await.map_err(|e| match e {
                subxt::error::TransactionProgressError::TransactionStatusError(s) => {
                    ChainError::NotIncluded(s.to_string())
                }
                e => rpc(e),
            })?;
            let block_hash = in_block.block_hash();
            let events = in_block.wait_for_success().await.map_err(refused)?;
            let block = self.api.at_block(block_hash).await.map_err(rpc)?;
            Ok((Inclusion { block_number: block.block_number() as u32, block_hash: block_hash.0 }, events))
        };
        tokio::time::timeout(CALL_TIMEOUT, work)
            .await
            .map_err(|_| ChainError::NotIncluded(format!("not in a finalized block within {CALL_TIMEOUT:?}")))?
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

    /// Registers content from its header; the chain derives the content id and the creator from it.
    pub async fn register_content(&self, header: ContentHeader) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().register_content(Static(header))).await
    }

    /// Registers content unless the chain has it already (anyone may submit a registration: the content id commits
    /// to the creator and share).
    pub async fn ensure_content(&self, header: ContentHeader) -> Result<Registration, ChainError> {
        match self.content(header.content_id()).await? {
            Some((creator, share_bps)) => Ok(Registration::Already { creator, share_bps }),
            None => Ok(Registration::New(self.register_content(header).await?)),
        }
    }

    /// Submits `call` and reads the event of type `E` it emitted (`or` if it emitted none).
    async fn submit_reading<Call, E, R>(
        &self,
        call: &Call,
        read: impl FnOnce(E) -> R,
        or: R,
    ) -> Result<(Inclusion, R), ChainError>
    where
        Call: subxt::transactions::Payload,
        E: subxt::events::DecodeAsEvent,
    {
        let (at, events) = self.submit(call).await?;
        Ok((at, events.find_first::<E>().transpose().map_err(rpc)?.map_or(or, read)))
    }

    /// Reserves `amount` for `relay` (or adds to the lane); returns the lane's funds after.
    pub async fn open_lane(&self, relay: AccountId, amount: Balance) -> Result<(Inclusion, Balance), ChainError> {
        let call = runtime::transactions().ferry().open_lane(AccountId32(relay), amount);
        self.submit_reading(&call, |e: events::LaneFunded| e.funds, amount).await
    }

    /// Starts closing the lane to `relay`; returns the block from which it can be withdrawn.
    pub async fn close_lane(&self, relay: AccountId) -> Result<(Inclusion, u32), ChainError> {
        let call = runtime::transactions().ferry().close_lane(AccountId32(relay));
        self.submit_reading(&call, |e: events::LaneClosing| e.until, 0).await
    }

    /// Takes back what is left of a closed lane; returns the amount.
    pub async fn withdraw_lane(&self, relay: AccountId) -> Result<(Inclusion, Balance), ChainError> {
        let call = runtime::transactions().ferry().withdraw_lane(AccountId32(relay));
        self.submit_reading(&call, |e: events::LaneWithdrawn| e.amount, 0).await
    }

    pub async fn set_price(&self, price_per_mib: Balance) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().set_price(price_per_mib)).await
    }

    /// Starts unbonding the operator's bond; returns the block from which it can be withdrawn.
    pub async fn unregister_operator(&self) -> Result<(Inclusion, u32), ChainError> {
        let call = runtime::transactions().ferry().unregister_operator();
        self.submit_reading(&call, |e: events::OperatorUnbonding| e.until, 0).await
    }

    pub async fn withdraw_bond(&self) -> Result<(Inclusion, Balance), ChainError> {
        let call = runtime::transactions().ferry().withdraw_bond();
        self.submit_reading(&call, |e: events::OperatorBondWithdrawn| e.amount, 0).await
    }

    pub async fn tip(&self, content: ContentId, amount: Balance) -> Result<Inclusion, ChainError> {
        self.submit_only(&runtime::transactions().ferry().tip(content, amount)).await
    }

    /// Settles a batch of receipts; returns once the block is finalized, with what each new receipt paid.
    /// A receipt already settled pays nothing and has no payout.
    pub async fn settle(&self, batch: Vec<SignedReceipt>) -> Result<(Inclusion, Vec<Payout>), ChainError> {
        self.settle_tipped(batch, 0).await
    }

    /// What the chain would charge now to settle `batch`, without a tip (the runtime's `query_info`).
    pub async fn settle_fee(&self, batch: &[SignedReceipt]) -> Result<Balance, ChainError> {
        let call = runtime::transactions().ferry().settle(BoundedVec(batch.iter().cloned().map(Static).collect()));
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let params = subxt::config::polkadot::PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().build();
            let tx = at.transactions().create_signed(&call, &self.signer, params).await.map_err(pool_error)?;
            tx.partial_fee_estimate().await.map_err(rpc)
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }

    /// [`Chain::settle`] with a tip to the block author, for a batch that did not get into a block without one.
    pub async fn settle_tipped(
        &self,
        batch: Vec<SignedReceipt>,
        tip: Balance,
    ) -> Result<(Inclusion, Vec<Payout>), ChainError> {
        let batch = BoundedVec(batch.into_iter().map(Static).collect());
        let (at, events) = self.submit_tipped(&runtime::transactions().ferry().settle(batch), tip).await?;
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

    /// The lane from `viewer` to `relay` (empty when there is none).
    pub async fn lane(&self, viewer: AccountId, relay: AccountId) -> Result<Lane, ChainError> {
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let entry = at.storage().entry(runtime::storage().ferry().lanes()).map_err(rpc)?;
            let l = entry.fetch((AccountId32(viewer), AccountId32(relay))).await.map_err(rpc)?.decode().map_err(rpc)?;
            Ok(Lane { funds: l.funds, closing_at: l.closing_at })
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }

    /// The claim as the chain settled it, if it settled any of it: its latest settled receipt, rebuilt from
    /// storage with the viewer's signature, and what the lane paid of it in total (bytes and tips).
    pub async fn claim(
        &self,
        relay: AccountId,
        viewer: AccountId,
        claim: ClaimId,
    ) -> Result<Option<SettledClaim>, ChainError> {
        let domain = Domain(self.genesis());
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let entry = at.storage().entry(runtime::storage().ferry().claims()).map_err(rpc)?;
            match entry.try_fetch((AccountId32(relay), AccountId32(viewer), claim)).await.map_err(rpc)? {
                Some(v) => {
                    let c = v.decode().map_err(rpc)?;
                    let receipt = Receipt {
                        domain,
                        claim,
                        relay,
                        viewer,
                        content: c.content,
                        seq: c.seq,
                        bytes: c.bytes,
                        amount: c.amount,
                        chunk_chain: c.chunk_chain,
                        tip: c.tip,
                    };
                    let paid = c.amount_paid.saturating_add(c.tip_paid);
                    let fee_bps = at.constants().entry(runtime::constants().ferry().fee_bps()).map_err(rpc)?;
                    let contents = at.storage().entry(runtime::storage().ferry().contents()).map_err(rpc)?;
                    let share_bps = match contents.try_fetch((c.content,)).await.map_err(rpc)? {
                        Some(v) => v.decode().map_err(rpc)?.share_bps,
                        None => return Err(ChainError::Rpc("a settled claim names unregistered content".into())),
                    };
                    let operator_paid = Split::of(c.amount_paid, share_bps, fee_bps).operator;
                    let latest = SignedReceipt { receipt, signature: c.signature };
                    Ok(Some(SettledClaim { latest, paid, operator_paid }))
                }
                None => Ok(None),
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, work).await.map_err(|_| ChainError::Timeout(CALL_TIMEOUT))?
    }

    /// A registered operator, if `who` is one.
    pub async fn operator(&self, who: AccountId) -> Result<Option<OperatorInfo>, ChainError> {
        let work = async {
            let at = self.api.at_current_block().await.map_err(rpc)?;
            let entry = at.storage().entry(runtime::storage().ferry().operators()).map_err(rpc)?;
            match entry.try_fetch((AccountId32(who),)).await.map_err(rpc)? {
                Some(v) => {
                    let o = v.decode().map_err(rpc)?;
                    Ok(Some(OperatorInfo {
                        bond: o.bond,
                        price_per_mib: o.price_per_mib,
                        unbonding_until: o.unbonding_until,
                    }))
                }
                None => Ok(None),
            }
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
    /// (creator, amount burned) for every direct `Ferry::Tipped` event.
    pub tip_burns: Vec<([u8; 32], Balance)>,
    /// (viewer, relay, amount) for every `Ferry::LaneFunded` event.
    pub lanes_funded: Vec<([u8; 32], [u8; 32], Balance)>,
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
        use runtime::ferry::events::{LaneFunded, Settled, Tipped};
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
            m.tip_burns.push((ev.creator.0, ev.burned));
        }
        for ev in events.find::<LaneFunded>() {
            let ev = ev.map_err(rpc)?;
            m.lanes_funded.push((ev.viewer.0, ev.relay.0, ev.amount));
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
