//! The audit's own reading of the chain: blocks, their `settle` calls and events, and the storage entries those
//! name, before and after. Nothing here reads a node's ledger: an audit sees only what is public.

use std::collections::{HashMap, HashSet};

use ferry_primitives::{AccountId, ContentId, SignedReceipt};
use futures::{StreamExt, TryStreamExt};
use subxt::events::Phase;
use subxt::utils::AccountId32;
use subxt::{OnlineClient, PolkadotConfig};

use super::check::{Block, ClaimKey, ClaimPaid, Extrinsic, LaneKey, Payout, Rules, State, TipEvent};
use crate::chain::runtime;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot reach the chain at {0}: {1} (is it running? `ferry chain up` starts a local dev chain)")]
    Connect(String, String),
    #[error("reading block {block}: {error}")]
    Block { block: u32, error: String },
    #[error("reading the chain: {0}")]
    Chain(String),
}

fn at(block: u32) -> impl Fn(String) -> ReadError + Copy {
    move |error| ReadError::Block { block, error }
}

/// Storage reads in flight at once.
const PARALLEL_READS: usize = 32;

/// A chain to audit.
#[derive(Clone)]
pub struct ChainSource {
    api: OnlineClient<PolkadotConfig>,
    /// The pallet's pot, where lanes and bonds are kept and payouts come from.
    pot: AccountId,
}

impl ChainSource {
    pub async fn connect(url: &str) -> Result<ChainSource, ReadError> {
        let api = OnlineClient::<PolkadotConfig>::from_url(url)
            .await
            .map_err(|e| ReadError::Connect(url.to_string(), e.to_string()))?;
        let now = api.at_current_block().await.map_err(|e| ReadError::Chain(e.to_string()))?;
        let id = now
            .constants()
            .entry(runtime::constants().ferry().pallet_id())
            .map_err(|e| ReadError::Chain(e.to_string()))?;
        Ok(ChainSource { api, pot: pallet_account(&id.0) })
    }

    pub async fn rules(&self) -> Result<Rules, ReadError> {
        let now = self.api.at_current_block().await.map_err(|e| ReadError::Chain(e.to_string()))?;
        let fee_bps = now
            .constants()
            .entry(runtime::constants().ferry().fee_bps())
            .map_err(|e| ReadError::Chain(e.to_string()))?;
        Ok(Rules { genesis: self.api.genesis_hash().0, fee_bps })
    }

    /// The hash of block `n`.
    pub async fn block_hash(&self, n: u32) -> Result<[u8; 32], ReadError> {
        let client = self.api.at_block(n).await.map_err(|x| at(n)(x.to_string()))?;
        Ok(client.block_ref().hash().0)
    }

    /// The chain's genesis hash.
    pub fn genesis(&self) -> [u8; 32] {
        self.api.genesis_hash().0
    }

    pub async fn finalized(&self) -> Result<u32, ReadError> {
        let now = self.api.at_current_block().await.map_err(|e| ReadError::Chain(e.to_string()))?;
        Ok(now.block_number() as u32)
    }

    /// Block `n`'s extrinsics that matter to the audit: every `settle`, and lanes funded or emptied.
    pub async fn block(&self, n: u32) -> Result<Block, ReadError> {
        use runtime::balances::events::{Burned, Transfer};
        use runtime::ferry::events::{LaneFunded, LaneWithdrawn, PayoutHeld, Settled, Tipped};
        let e = at(n);
        let client = self.api.at_block(n).await.map_err(|x| e(x.to_string()))?;
        let extrinsics = client.extrinsics().fetch().await.map_err(|x| e(x.to_string()))?;
        let events = client.events().fetch().await.map_err(|x| e(x.to_string()))?;
        let mut block = Block { number: n, hash: client.block_ref().hash().0, ..Block::default() };
        for x in extrinsics.iter() {
            let x = x.map_err(|x| e(x.to_string()))?;
            let settle = match x.decode_call_data_fields_as::<runtime::ferry::calls::Settle>() {
                Some(call) => Some(call.map_err(|x| e(x.to_string()))?.batch.0.into_iter().map(|r| r.0).collect()),
                None => None,
            };
            if let Some(Ok(set)) = x.decode_call_data_fields_as::<runtime::timestamp::calls::Set>() {
                block.time_ms = set.now;
            }
            let tip = match x.decode_call_data_fields_as::<runtime::ferry::calls::Tip>() {
                Some(call) => call.map(|t| Some((t.content, t.amount))).map_err(|x| e(x.to_string()))?,
                None => None,
            };
            let signer = x.address_bytes().and_then(|a| a.get(1..33)).and_then(|a| <[u8; 32]>::try_from(a).ok());
            block.extrinsics.push(Extrinsic { index: x.index() as u32, signer, settle, tip, ..Extrinsic::default() });
        }
        let metadata = client.metadata();
        for ev in events.iter() {
            let ev = ev.map_err(|x| e(x.to_string()))?;
            let Phase::ApplyExtrinsic(i) = ev.phase() else { continue };
            let Some(x) = block.extrinsics.iter_mut().find(|x| x.index == i) else { continue };
            if let Some(s) = ev.decode_fields_as::<Settled>() {
                let s = s.map_err(|x| e(x.to_string()))?;
                x.settled.push(Payout {
                    relay: s.relay.0,
                    viewer: s.viewer.0,
                    claim: s.claim,
                    content: s.content,
                    seq: s.seq,
                    bytes: s.bytes,
                    due: s.due,
                    paid: s.paid,
                    tip_due: s.tip_due,
                    tip_paid: s.tip_paid,
                    operator_paid: s.operator_paid,
                    creator_paid: s.creator_paid,
                    burned: s.burned,
                });
            } else if let Some(l) = ev.decode_fields_as::<LaneFunded>() {
                let l = l.map_err(|x| e(x.to_string()))?;
                x.lanes.push(((l.viewer.0, l.relay.0), l.funds));
            } else if let Some(l) = ev.decode_fields_as::<LaneWithdrawn>() {
                let l = l.map_err(|x| e(x.to_string()))?;
                x.lanes.push(((l.viewer.0, l.relay.0), 0));
            } else if let Some(h) = ev.decode_fields_as::<PayoutHeld>() {
                let h = h.map_err(|x| e(x.to_string()))?;
                x.held.push((h.who.0, h.amount));
            } else if let Some(t) = ev.decode_fields_as::<Tipped>() {
                let t = t.map_err(|x| e(x.to_string()))?;
                x.tipped.push(TipEvent {
                    content: t.content,
                    from: t.from.0,
                    creator: t.creator.0,
                    amount: t.amount,
                    burned: t.burned,
                });
            } else if let Some(t) = ev.decode_fields_as::<Transfer>() {
                let t = t.map_err(|x| e(x.to_string()))?;
                if t.from.0 == self.pot {
                    x.from_pot.push((t.to.0, t.amount));
                } else if Some(t.from.0) == x.signer {
                    x.from_signer.push((t.to.0, t.amount));
                }
            } else if let Some(b) = ev.decode_fields_as::<Burned>() {
                let b = b.map_err(|x| e(x.to_string()))?;
                if b.who.0 == self.pot {
                    x.pot_burned += b.amount;
                } else if Some(b.who.0) == x.signer {
                    x.signer_burned += b.amount;
                }
            } else if let Some(f) = ev.decode_fields_as::<runtime::system::events::ExtrinsicFailed>() {
                let f = f.map_err(|x| e(x.to_string()))?;
                x.failed = Some(dispatch_error(&metadata, &f.dispatch_error));
            }
        }
        Ok(block)
    }

    /// The entries `keys` names, at block `n`.
    pub async fn state(&self, n: u32, keys: &Keys) -> Result<State, ReadError> {
        let e = at(n);
        let client = self.api.at_block(n).await.map_err(|x| e(x.to_string()))?;
        let storage = client.storage();
        let claims = storage.entry(runtime::storage().ferry().claims()).map_err(|x| e(x.to_string()))?;
        let lanes = storage.entry(runtime::storage().ferry().lanes()).map_err(|x| e(x.to_string()))?;
        let contents = storage.entry(runtime::storage().ferry().contents()).map_err(|x| e(x.to_string()))?;
        let undelivered = storage.entry(runtime::storage().ferry().undelivered()).map_err(|x| e(x.to_string()))?;
        let mut state = State::default();
        let mut accounts = keys.accounts.clone();
        // Many small reads at once: each is a round trip to the node.
        let read_claims = futures::stream::iter(&keys.claims)
            .map(|&key @ (relay, viewer, claim)| {
                let claims = &claims;
                async move {
                    let v = claims
                        .try_fetch((AccountId32(relay), AccountId32(viewer), claim))
                        .await
                        .map_err(|x| e(x.to_string()))?;
                    let c = match v {
                        Some(v) => Some(claim_paid(v.decode().map_err(|x| e(x.to_string()))?)),
                        None => None,
                    };
                    Ok::<_, ReadError>((key, c))
                }
            })
            .buffer_unordered(PARALLEL_READS);
        for (key, c) in read_claims.try_collect::<Vec<_>>().await? {
            if let Some(c) = c {
                state.claims.insert(key, c);
            }
        }
        let read_lanes = futures::stream::iter(&keys.lanes)
            .map(|&key @ (viewer, relay)| {
                let lanes = &lanes;
                async move {
                    let l = lanes
                        .fetch((AccountId32(viewer), AccountId32(relay)))
                        .await
                        .map_err(|x| e(x.to_string()))?
                        .decode()
                        .map_err(|x| e(x.to_string()))?;
                    Ok::<_, ReadError>((key, l.funds))
                }
            })
            .buffer_unordered(PARALLEL_READS);
        state.lanes.extend(read_lanes.try_collect::<Vec<_>>().await?);
        for &cid in &keys.contents {
            if let Some(v) = contents.try_fetch((cid,)).await.map_err(|x| e(x.to_string()))? {
                let c = v.decode().map_err(|x| e(x.to_string()))?;
                accounts.insert(c.creator.0);
                state.contents.insert(cid, (c.creator.0, c.share_bps));
            }
        }
        for who in accounts {
            let held = undelivered
                .fetch((AccountId32(who),))
                .await
                .map_err(|x| e(x.to_string()))?
                .decode()
                .map_err(|x| e(x.to_string()))?;
            if held > 0 {
                state.undelivered.insert(who, held);
            }
        }
        Ok(state)
    }
}

impl ChainSource {
    /// Every claim the chain holds for `relay`, at block `n`.
    pub async fn claims_of(&self, n: u32, relay: AccountId) -> Result<HashMap<ClaimKey, ClaimPaid>, ReadError> {
        let e = at(n);
        let client = self.api.at_block(n).await.map_err(|x| e(x.to_string()))?;
        let storage = client.storage();
        let claims = storage.entry(runtime::storage().ferry().claims()).map_err(|x| e(x.to_string()))?;
        let mut entries = claims.iter((AccountId32(relay),)).await.map_err(|x| e(x.to_string()))?;
        let mut out = HashMap::new();
        while let Some(kv) = entries.next().await {
            let kv = kv.map_err(|x| e(x.to_string()))?;
            let (_, viewer, claim) = kv.key().map_err(|x| e(x.to_string()))?.decode().map_err(|x| e(x.to_string()))?;
            out.insert((relay, viewer.0, claim), claim_paid(kv.value().decode().map_err(|x| e(x.to_string()))?));
        }
        Ok(out)
    }
}

type StoredClaim = runtime::runtime_types::pallet_ferry::pallet::ClaimState;

fn claim_paid(c: StoredClaim) -> ClaimPaid {
    ClaimPaid {
        seq: c.seq,
        bytes: c.bytes,
        amount: c.amount,
        tip: c.tip,
        chunk_chain: c.chunk_chain,
        signature: c.signature,
        amount_paid: c.amount_paid,
        tip_paid: c.tip_paid,
    }
}

/// Which storage entries to read.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub claims: HashSet<ClaimKey>,
    pub lanes: HashSet<LaneKey>,
    pub contents: HashSet<ContentId>,
    /// Accounts whose held payouts to read (the contents' creators are added).
    pub accounts: HashSet<AccountId>,
}

impl Keys {
    /// Everything `block`'s receipts, tips and lane changes name.
    pub fn of_block(block: &Block) -> Keys {
        let mut keys = Keys::default();
        for x in &block.extrinsics {
            keys.lanes.extend(x.lanes.iter().map(|(k, _)| *k));
            keys.contents.extend(x.tip.map(|(content, _)| content));
            let (Some(batch), Some(relay)) = (&x.settle, x.signer) else { continue };
            keys.accounts.insert(relay);
            for SignedReceipt { receipt: r, .. } in batch {
                keys.claims.insert((relay, r.viewer, r.claim));
                keys.lanes.insert((r.viewer, relay));
                keys.contents.insert(r.content);
            }
        }
        keys
    }
}

/// A pallet's account: "modl", its 8-byte id, then zeros (`PalletId::into_account_truncating`).
fn pallet_account(id: &[u8; 8]) -> AccountId {
    let mut a = [0u8; 32];
    a[..4].copy_from_slice(b"modl");
    a[4..12].copy_from_slice(id);
    a
}

/// `Pallet::Error` for a module error, else the error's debug form.
fn dispatch_error(metadata: &subxt::Metadata, e: &runtime::runtime_types::sp_runtime::DispatchError) -> String {
    use runtime::runtime_types::sp_runtime::DispatchError;
    if let DispatchError::Module(m) = e {
        if let Some(p) = metadata.pallet_by_error_index(m.index) {
            if let Some(v) = p.error_variant_by_index(m.error[0]) {
                return format!("{}::{}", p.name(), v.name);
            }
        }
    }
    format!("{e:?}")
}
