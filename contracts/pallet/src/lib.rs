//! # Ferry rewards pallet
//!
//! Receipts become money. Operators register with a bond, a libp2p peer id and a price; anyone registers content
//! from its header, which names the creator and share the content id commits to; viewers reserve funds for one
//! relay each in a **lane**. A relay settles batches of viewer receipts: for each **claim** (what one viewer owes
//! one relay for one content id, over all their sessions) the pallet pays the delta over what it already paid, out
//! of the viewer's lane to that relay only, split between a burned protocol fee, the
//! creator (their share of the rest) and the operator, plus the tip delta to the creator (less the fee).
//!
//! Why lanes: funds reserved for one payee are the only funds a relay can count on. Only the relay can draw on its
//! lane; the viewer gets the rest back only `UnbondingPeriod` blocks after closing it, and the relay can settle
//! meanwhile. So a relay that serves a viewer no further than its lane minus what that viewer already owes it is
//! paid for every receipt it acknowledged, whatever anyone else does on chain. Claims are keyed by
//! (relay, viewer, claim id), the id being a hash of the three parties, so nobody else can touch them and the
//! chain holds one entry per relay, viewer and content however many sessions they had.
//!
//! No tokens are minted: every payout comes out of a lane, and the fee burns on every payment whatever the creator
//! share, so total issuance only falls and self-dealing always loses the fee.
//!
//! `docs/protocol.md` in the repository specifies every call, check and event.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

#[polkadot_sdk::frame_support::pallet]
pub mod pallet {
    use super::WeightInfo;
    use ferry_primitives::{amount_for, claim_id, Balance, ClaimId, ContentHeader, ContentId, SignedReceipt, Split};
    use polkadot_sdk::frame_support::{
        dispatch::DispatchResult,
        pallet_prelude::*,
        traits::{
            fungible::{Inspect, Mutate},
            tokens::{DepositConsequence, Fortitude, Precision, Preservation, Provenance},
        },
        PalletId,
    };
    use polkadot_sdk::frame_system::{self, pallet_prelude::*};
    use polkadot_sdk::sp_runtime::{traits::AccountIdConversion, AccountId32, Saturating};

    /// What a settlement batch owes, paid out of the pot once the whole batch checked out.
    pub(crate) struct Owed<T: Config> {
        burn: Balance,
        payees: alloc::collections::BTreeMap<T::AccountId, Balance>,
    }

    impl<T: Config> Default for Owed<T> {
        fn default() -> Self {
            Owed { burn: 0, payees: Default::default() }
        }
    }

    impl<T: Config> Owed<T> {
        fn pay(&mut self, who: &T::AccountId, amount: Balance) {
            if amount > 0 {
                let e = self.payees.entry(who.clone()).or_default();
                *e = e.saturating_add(amount);
            }
        }
    }

    /// The pallet's pot holds bonds, lanes and payouts that could not be delivered yet.
    pub(crate) fn escrow_account<T: Config>() -> T::AccountId {
        T::PalletId::get().into_account_truncating()
    }

    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<AccountId = AccountId32, RuntimeEvent: From<Event<Self>>>
    {
        /// The chain's currency; balances are `u128`, as in receipts.
        type Currency: Mutate<Self::AccountId, Balance = Balance>;
        /// Holds bonds and lanes.
        #[pallet::constant]
        type PalletId: Get<PalletId>;
        /// Smallest operator bond.
        #[pallet::constant]
        type MinBond: Get<Balance>;
        /// Blocks between `unregister_operator`/`close_lane` and getting the funds back. A relay has this long
        /// after a viewer closes its lane to settle what it is owed.
        #[pallet::constant]
        type UnbondingPeriod: Get<BlockNumberFor<Self>>;
        /// Protocol fee burned from every payment and tip, in basis points (rounded up).
        #[pallet::constant]
        type FeeBps: Get<u16>;
        /// Most receipts in one `settle` call.
        #[pallet::constant]
        type MaxBatch: Get<u32>;
        /// Longest libp2p peer id (bytes).
        #[pallet::constant]
        type MaxPeerIdLen: Get<u32>;
        type WeightInfo: WeightInfo;
    }

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[derive(Clone, Encode, Decode, DecodeWithMemTracking, Eq, PartialEq, Debug, TypeInfo, MaxEncodedLen)]
    pub struct Operator<BlockNumber, PeerId> {
        pub bond: Balance,
        pub peer_id: PeerId,
        pub price_per_mib: Balance,
        /// Set by `unregister_operator`: the bond can be withdrawn from this block on.
        pub unbonding_until: Option<BlockNumber>,
    }

    pub type OperatorOf<T> = Operator<BlockNumberFor<T>, BoundedVec<u8, <T as Config>::MaxPeerIdLen>>;

    #[derive(Clone, Encode, Decode, DecodeWithMemTracking, Eq, PartialEq, Debug, TypeInfo, MaxEncodedLen)]
    pub struct Content<AccountId> {
        pub creator: AccountId,
        pub share_bps: u16,
    }

    /// Funds a viewer reserved for one relay.
    #[derive(Clone, Encode, Decode, DecodeWithMemTracking, Eq, PartialEq, Debug, TypeInfo, MaxEncodedLen, Default)]
    pub struct Lane<BlockNumber> {
        /// What the relay can still claim.
        pub funds: Balance,
        /// Set by `close_lane`: the viewer can take the rest back from this block on. The relay can settle until
        /// the viewer does.
        pub closing_at: Option<BlockNumber>,
    }

    pub type LaneOf<T> = Lane<BlockNumberFor<T>>;

    /// What one claim has claimed and what it has been paid so far.
    #[derive(Clone, Encode, Decode, DecodeWithMemTracking, Eq, PartialEq, Debug, TypeInfo, MaxEncodedLen)]
    pub struct ClaimState {
        pub content: ContentId,
        /// The latest receipt settled: its seq, totals, chunk chain and the viewer's signature, so that the whole
        /// signed receipt can be rebuilt from storage (a relay whose ledger was lost resumes the claim from it).
        pub seq: u64,
        pub bytes: u64,
        pub amount: Balance,
        pub tip: Balance,
        pub chunk_chain: [u8; 32],
        pub signature: [u8; 64],
        /// What the lane actually paid towards `amount` and `tip`; less only when the lane ran dry.
        pub amount_paid: Balance,
        pub tip_paid: Balance,
    }

    #[pallet::storage]
    pub type Operators<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, OperatorOf<T>>;

    #[pallet::storage]
    pub type Contents<T: Config> = StorageMap<_, Blake2_128Concat, ContentId, Content<T::AccountId>>;

    /// (viewer, relay) → the funds the viewer reserved for that relay.
    #[pallet::storage]
    pub type Lanes<T: Config> =
        StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Blake2_128Concat, T::AccountId, LaneOf<T>, ValueQuery>;

    /// (relay, viewer, claim id) → what the claim has claimed and been paid.
    #[pallet::storage]
    pub type Claims<T: Config> = StorageNMap<
        _,
        (
            NMapKey<Blake2_128Concat, T::AccountId>,
            NMapKey<Blake2_128Concat, T::AccountId>,
            NMapKey<Blake2_128Concat, ClaimId>,
        ),
        ClaimState,
    >;

    /// Payouts that could not be delivered (below the existential deposit of an empty account). They stay in
    /// the pot and go out with the account's next payout, so a tiny payout never fails a settlement.
    #[pallet::storage]
    pub type Undelivered<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Balance, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        OperatorRegistered {
            operator: T::AccountId,
            peer_id: BoundedVec<u8, T::MaxPeerIdLen>,
            price_per_mib: Balance,
            bond: Balance,
        },
        PriceChanged {
            operator: T::AccountId,
            price_per_mib: Balance,
        },
        OperatorUnbonding {
            operator: T::AccountId,
            until: BlockNumberFor<T>,
        },
        OperatorBondWithdrawn {
            operator: T::AccountId,
            amount: Balance,
        },
        ContentRegistered {
            content: ContentId,
            creator: T::AccountId,
            share_bps: u16,
        },
        /// A viewer reserved (more) funds for a relay; `funds` is the lane's total now.
        LaneFunded {
            viewer: T::AccountId,
            relay: T::AccountId,
            amount: Balance,
            funds: Balance,
        },
        /// The viewer can take the lane's rest back from block `until`; the relay can settle until then.
        LaneClosing {
            viewer: T::AccountId,
            relay: T::AccountId,
            funds: Balance,
            until: BlockNumberFor<T>,
        },
        LaneWithdrawn {
            viewer: T::AccountId,
            relay: T::AccountId,
            amount: Balance,
        },
        /// One claim settled up to `seq`. `due`/`tip_due` are what the receipt claimed over what was paid
        /// before; `paid`/`tip_paid` what the lane paid (less only if it ran dry). `paid + tip_paid` is split
        /// into `operator_paid + creator_paid + burned`.
        Settled {
            relay: T::AccountId,
            viewer: T::AccountId,
            claim: ClaimId,
            content: ContentId,
            seq: u64,
            bytes: u64,
            due: Balance,
            paid: Balance,
            tip_due: Balance,
            tip_paid: Balance,
            operator_paid: Balance,
            creator_paid: Balance,
            burned: Balance,
        },
        /// A payout below the existential deposit of an empty account, kept for the account's next payout.
        PayoutHeld {
            who: T::AccountId,
            amount: Balance,
        },
        Tipped {
            content: ContentId,
            from: T::AccountId,
            creator: T::AccountId,
            amount: Balance,
            burned: Balance,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The bond is below `MinBond`.
        BondTooSmall,
        /// This account is already a registered operator.
        AlreadyOperator,
        /// Only registered operators can do this.
        NotOperator,
        /// The operator is unbonding: it cannot re-register, and no new lanes open to it.
        OperatorUnbonding,
        /// The unbonding period has not ended yet.
        StillUnbonding,
        /// Nothing is unbonding.
        NothingUnbonding,
        /// The peer id is longer than `MaxPeerIdLen`.
        PeerIdTooLong,
        /// The content id is already registered.
        ContentExists,
        /// No content with this id is registered.
        UnknownContent,
        /// The creator share is above 10000 basis points.
        ShareTooLarge,
        /// Amounts must be above zero.
        ZeroAmount,
        /// There is no lane from this viewer to this relay.
        NoLane,
        /// The lane is already closing.
        LaneClosing,
        /// A receipt's signature does not verify.
        BadSignature,
        /// A receipt is for another chain.
        WrongDomain,
        /// A receipt names another relay than the caller.
        WrongRelay,
        /// A receipt's claim id is not the one its relay, viewer and content make.
        WrongClaim,
        /// A receipt's totals are below what was already settled, or differ at the same seq.
        NotMonotonic,
        /// The batch is empty.
        EmptyBatch,
        /// The claim already settled a later receipt: this one is older than what the chain holds (a relay
        /// whose ledger is behind the chain).
        Superseded,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(T::MaxBatch::get() > 0, "MaxBatch must allow at least one receipt");
            assert!(T::FeeBps::get() <= 10_000, "FeeBps is a share of the payment");
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Become an operator: bond funds, publish the libp2p peer id and a price per MiB.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::register_operator())]
        pub fn register_operator(
            origin: OriginFor<T>,
            peer_id: alloc::vec::Vec<u8>,
            price_per_mib: Balance,
            bond: Balance,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(!Operators::<T>::contains_key(&who), Error::<T>::AlreadyOperator);
            ensure!(bond >= T::MinBond::get(), Error::<T>::BondTooSmall);
            let peer_id: BoundedVec<u8, T::MaxPeerIdLen> = peer_id.try_into().map_err(|_| Error::<T>::PeerIdTooLong)?;
            T::Currency::transfer(&who, &escrow_account::<T>(), bond, Preservation::Preserve)?;
            Operators::<T>::insert(
                &who,
                Operator { bond, peer_id: peer_id.clone(), price_per_mib, unbonding_until: None },
            );
            Self::deposit_event(Event::OperatorRegistered { operator: who, peer_id, price_per_mib, bond });
            Ok(())
        }

        /// Stop operating; the bond comes back after `UnbondingPeriod`. Lanes to this relay stay settleable.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::unregister_operator())]
        pub fn unregister_operator(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let until = frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
            Operators::<T>::try_mutate(&who, |op| {
                let op = op.as_mut().ok_or(Error::<T>::NotOperator)?;
                ensure!(op.unbonding_until.is_none(), Error::<T>::OperatorUnbonding);
                op.unbonding_until = Some(until);
                Ok::<_, DispatchError>(())
            })?;
            Self::deposit_event(Event::OperatorUnbonding { operator: who, until });
            Ok(())
        }

        /// Take the bond back once unbonding has ended.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::withdraw_bond())]
        pub fn withdraw_bond(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let op = Operators::<T>::get(&who).ok_or(Error::<T>::NotOperator)?;
            let until = op.unbonding_until.ok_or(Error::<T>::NothingUnbonding)?;
            ensure!(frame_system::Pallet::<T>::block_number() >= until, Error::<T>::StillUnbonding);
            T::Currency::transfer(&escrow_account::<T>(), &who, op.bond, Preservation::Expendable)?;
            Operators::<T>::remove(&who);
            Self::deposit_event(Event::OperatorBondWithdrawn { operator: who, amount: op.bond });
            Ok(())
        }

        /// Register content from its header. The content id is the header's hash, so whoever submits it, the
        /// registration names the creator and share the manifest commits to.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::register_content())]
        pub fn register_content(origin: OriginFor<T>, header: ContentHeader) -> DispatchResult {
            ensure_signed(origin)?;
            ensure!(header.creator_share_bps <= 10_000, Error::<T>::ShareTooLarge);
            let content = header.content_id();
            ensure!(!Contents::<T>::contains_key(content), Error::<T>::ContentExists);
            let creator = T::AccountId::from(header.creator);
            let share_bps = header.creator_share_bps;
            Contents::<T>::insert(content, Content { creator: creator.clone(), share_bps });
            Self::deposit_event(Event::ContentRegistered { content, creator, share_bps });
            Ok(())
        }

        /// Reserve `amount` for `relay`, or add to the lane already there (which also cancels its closing).
        #[pallet::call_index(4)]
        #[pallet::weight(T::WeightInfo::open_lane())]
        pub fn open_lane(origin: OriginFor<T>, relay: T::AccountId, amount: Balance) -> DispatchResult {
            let viewer = ensure_signed(origin)?;
            ensure!(amount > 0, Error::<T>::ZeroAmount);
            let op = Operators::<T>::get(&relay).ok_or(Error::<T>::NotOperator)?;
            ensure!(op.unbonding_until.is_none(), Error::<T>::OperatorUnbonding);
            T::Currency::transfer(&viewer, &escrow_account::<T>(), amount, Preservation::Preserve)?;
            let funds = Lanes::<T>::mutate(&viewer, &relay, |lane| {
                lane.funds = lane.funds.saturating_add(amount);
                lane.closing_at = None;
                lane.funds
            });
            Self::deposit_event(Event::LaneFunded { viewer, relay, amount, funds });
            Ok(())
        }

        /// Start closing the lane to `relay`: the rest comes back after `UnbondingPeriod`, and the relay can
        /// settle until then.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::close_lane())]
        pub fn close_lane(origin: OriginFor<T>, relay: T::AccountId) -> DispatchResult {
            let viewer = ensure_signed(origin)?;
            let until = frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
            let funds = Lanes::<T>::try_mutate(&viewer, &relay, |lane| {
                ensure!(lane.funds > 0, Error::<T>::NoLane);
                ensure!(lane.closing_at.is_none(), Error::<T>::LaneClosing);
                lane.closing_at = Some(until);
                Ok::<_, DispatchError>(lane.funds)
            })?;
            Self::deposit_event(Event::LaneClosing { viewer, relay, funds, until });
            Ok(())
        }

        /// Take back what is left of a closed lane once its unbonding period has ended.
        #[pallet::call_index(6)]
        #[pallet::weight(T::WeightInfo::withdraw_lane())]
        pub fn withdraw_lane(origin: OriginFor<T>, relay: T::AccountId) -> DispatchResult {
            let viewer = ensure_signed(origin)?;
            ensure!(Lanes::<T>::contains_key(&viewer, &relay), Error::<T>::NoLane);
            let lane = Lanes::<T>::get(&viewer, &relay);
            let until = lane.closing_at.ok_or(Error::<T>::NothingUnbonding)?;
            ensure!(frame_system::Pallet::<T>::block_number() >= until, Error::<T>::StillUnbonding);
            if lane.funds > 0 {
                T::Currency::transfer(&escrow_account::<T>(), &viewer, lane.funds, Preservation::Expendable)?;
            }
            Lanes::<T>::remove(&viewer, &relay);
            Self::deposit_event(Event::LaneWithdrawn { viewer, relay, amount: lane.funds });
            Ok(())
        }

        /// Settle the latest receipt of each claim: pay the delta over what was already paid, from the
        /// viewer's lane to the calling relay.
        #[pallet::call_index(7)]
        #[pallet::weight(Pallet::<T>::settle_weight(batch))]
        pub fn settle(origin: OriginFor<T>, batch: BoundedVec<SignedReceipt, T::MaxBatch>) -> DispatchResult {
            let relay = ensure_signed(origin)?;
            Self::settle_batch(&relay, batch.into_inner())
        }

        /// Tip a creator directly; the protocol fee burns, as on every payment.
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::tip())]
        pub fn tip(origin: OriginFor<T>, content: ContentId, amount: Balance) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(amount > 0, Error::<T>::ZeroAmount);
            let c = Contents::<T>::get(content).ok_or(Error::<T>::UnknownContent)?;
            let split = Split::tip(amount, T::FeeBps::get());
            T::Currency::transfer(&who, &c.creator, split.creator, Preservation::Preserve)?;
            T::Currency::burn_from(&who, split.burn, Preservation::Preserve, Precision::Exact, Fortitude::Polite)?;
            Self::deposit_event(Event::Tipped {
                content,
                from: who,
                creator: c.creator,
                amount: split.creator,
                burned: split.burn,
            });
            Ok(())
        }

        /// Change the price per MiB the operator charges. Sessions already open keep the price they were quoted.
        #[pallet::call_index(9)]
        #[pallet::weight(T::WeightInfo::set_price())]
        pub fn set_price(origin: OriginFor<T>, price_per_mib: Balance) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Operators::<T>::try_mutate(&who, |op| {
                let op = op.as_mut().ok_or(Error::<T>::NotOperator)?;
                op.price_per_mib = price_per_mib;
                Ok::<_, DispatchError>(())
            })?;
            Self::deposit_event(Event::PriceChanged { operator: who, price_per_mib });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        fn settle_batch(relay: &T::AccountId, batch: alloc::vec::Vec<SignedReceipt>) -> DispatchResult {
            ensure!(!batch.is_empty(), Error::<T>::EmptyBatch);
            let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
            // Payouts are summed over the batch and moved once per payee, so a receipt costs one signature
            // check and its claim, content and lane entries, not three balance transfers.
            let mut owed = Owed::<T>::default();
            for signed in batch {
                Self::settle_one(relay, genesis.as_ref(), signed, &mut owed)?;
            }
            let pot = escrow_account::<T>();
            for (payee, amount) in owed.payees {
                Self::deliver(&pot, payee, amount)?;
            }
            if owed.burn > 0 {
                T::Currency::burn_from(&pot, owed.burn, Preservation::Expendable, Precision::Exact, Fortitude::Force)?;
            }
            Ok(())
        }

        /// `settle`'s weight: a receipt naming content that no other receipt of the batch names costs a `Contents`
        /// read and a creator's payout of its own; the others share theirs. Measured as two batches, one of each
        /// kind, so a mixed batch is charged both fixed parts.
        pub fn settle_weight(batch: &[SignedReceipt]) -> Weight {
            let contents: alloc::collections::BTreeSet<&ContentId> = batch.iter().map(|r| &r.receipt.content).collect();
            let own = contents.len() as u32;
            match (batch.len() as u32).saturating_sub(own) {
                0 => T::WeightInfo::settle_own_content(own),
                shared => {
                    T::WeightInfo::settle_shared_content(shared).saturating_add(T::WeightInfo::settle_own_content(own))
                }
            }
        }

        fn settle_one(
            relay: &T::AccountId,
            genesis: &[u8],
            signed: SignedReceipt,
            owed: &mut Owed<T>,
        ) -> DispatchResult {
            let r = &signed.receipt;
            ensure!(r.relay == *<T::AccountId as AsRef<[u8; 32]>>::as_ref(relay), Error::<T>::WrongRelay);
            ensure!(r.domain.0.as_slice() == genesis, Error::<T>::WrongDomain);
            ensure!(r.claim == claim_id(&r.relay, &r.viewer, &r.content), Error::<T>::WrongClaim);
            let viewer = T::AccountId::from(r.viewer);
            let key = (relay.clone(), viewer.clone(), r.claim);
            let prev = Claims::<T>::get(&key);
            if let Some(p) = &prev {
                // An older receipt is refused, never a silent no-op: a relay whose ledger is behind the chain
                // learns it, rather than counting a claim as paid that the chain never paid.
                ensure!(r.seq >= p.seq, Error::<T>::Superseded);
                if r.seq == p.seq {
                    ensure!(r.bytes == p.bytes && r.amount == p.amount && r.tip == p.tip, Error::<T>::NotMonotonic);
                    if p.amount_paid == p.amount && p.tip_paid == p.tip {
                        return Ok(());
                    }
                }
                ensure!(r.bytes >= p.bytes && r.amount >= p.amount && r.tip >= p.tip, Error::<T>::NotMonotonic);
            }
            let content = Contents::<T>::get(r.content).ok_or(Error::<T>::UnknownContent)?;
            let ok = polkadot_sdk::sp_io::crypto::ed25519_verify(
                &polkadot_sdk::sp_core::ed25519::Signature::from_raw(signed.signature),
                &r.signing_payload(),
                &polkadot_sdk::sp_core::ed25519::Public::from_raw(r.viewer),
            );
            ensure!(ok, Error::<T>::BadSignature);

            let (amount_paid, tip_paid) = prev.as_ref().map_or((0, 0), |p| (p.amount_paid, p.tip_paid));
            let due = r.amount - amount_paid;
            let tip_due = r.tip - tip_paid;
            // Only this relay's lane pays, the bytes first, then the tip.
            let mut lane = Lanes::<T>::get(&viewer, relay);
            let paid = due.min(lane.funds);
            lane.funds -= paid;
            let tip_now = tip_due.min(lane.funds);
            lane.funds -= tip_now;
            if paid + tip_now > 0 {
                Lanes::<T>::insert(&viewer, relay, lane);
            }
            let fee = T::FeeBps::get();
            // The split of the running paid total, so batching never changes what each party gets.
            let split = Split::step(amount_paid, amount_paid + paid, content.share_bps, fee);
            let tip_split = Split::step(tip_paid, tip_paid + tip_now, 10_000, fee);
            owed.pay(relay, split.operator);
            owed.pay(&content.creator, split.creator + tip_split.creator);
            owed.burn = owed.burn.saturating_add(split.burn + tip_split.burn);
            Claims::<T>::insert(
                &key,
                ClaimState {
                    content: r.content,
                    seq: r.seq,
                    bytes: r.bytes,
                    amount: r.amount,
                    tip: r.tip,
                    chunk_chain: r.chunk_chain,
                    signature: signed.signature,
                    amount_paid: amount_paid + paid,
                    tip_paid: tip_paid + tip_now,
                },
            );
            Self::deposit_event(Event::Settled {
                relay: relay.clone(),
                viewer,
                claim: r.claim,
                content: r.content,
                seq: r.seq,
                bytes: r.bytes,
                due,
                paid,
                tip_due,
                tip_paid: tip_now,
                operator_paid: split.operator,
                creator_paid: split.creator + tip_split.creator,
                burned: split.burn + tip_split.burn,
            });
            Ok(())
        }

        /// Moves a payout out of the pot, with anything held for the payee before. A payout the account cannot
        /// take yet (below the existential deposit of an empty account) is held instead of failing the batch.
        fn deliver(pot: &T::AccountId, payee: T::AccountId, amount: Balance) -> DispatchResult {
            // Read, and cleared only if something was held: a `take` would write every payee's entry.
            let held = Undelivered::<T>::get(&payee);
            if held > 0 {
                Undelivered::<T>::remove(&payee);
            }
            let amount = amount.saturating_add(held);
            if T::Currency::can_deposit(&payee, amount, Provenance::Extant) == DepositConsequence::Success {
                T::Currency::transfer(pot, &payee, amount, Preservation::Expendable)?;
            } else {
                Undelivered::<T>::insert(&payee, amount);
                Self::deposit_event(Event::PayoutHeld { who: payee, amount });
            }
            Ok(())
        }

        /// What `bytes` cost at an operator's registered price (for clients and audits).
        pub fn quote(operator: &T::AccountId, bytes: u64) -> Option<Balance> {
            Operators::<T>::get(operator).map(|op| amount_for(bytes, op.price_per_mib))
        }

        /// Balance of the pot (bonds, lanes, held payouts).
        pub fn escrow_total() -> Balance {
            T::Currency::balance(&escrow_account::<T>())
        }
    }
}
