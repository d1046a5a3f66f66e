//! # Ferry rewards pallet
//!
//! Receipts become money. Operators register with a bond, a libp2p peer id and a price; creators register content
//! with a revenue share; viewers deposit into escrow with a penalty collateral. A relay settles batches of viewer
//! receipts: for each session the pallet pays the delta over what was already settled, split between the creator
//! (their share), a burned protocol fee and the operator (the rest), plus the tip delta to the creator.
//!
//! No tokens are minted for relays: every payout comes out of a viewer's escrow and a fee is burned on it, so an
//! operator who plays viewer to itself always loses money.
//!
//! Receipts are checked natively: one `ed25519_verify` host call per receipt over the same signing payload the
//! node builds ([`ferry_primitives::Receipt::signing_payload`]), the domain (this chain's genesis hash), that the
//! receipt names the submitting relay, and that totals only grow. A receipt already settled is a no-op.
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
    use ferry_primitives::{amount_for, Balance, ContentId, SessionId, SignedReceipt, Split};
    use polkadot_sdk::frame_support::{
        dispatch::DispatchResult,
        pallet_prelude::*,
        traits::{
            fungible::{Inspect, Mutate},
            tokens::{Fortitude, Precision, Preservation},
        },
        PalletId,
    };
    use polkadot_sdk::frame_system::{self, pallet_prelude::*};
    use polkadot_sdk::sp_runtime::{traits::AccountIdConversion, AccountId32, Saturating};

    /// What a settlement batch owes, paid out of the pot once the whole batch checked out.
    pub(crate) struct Owed<T: Config> {
        operator: Balance,
        burn: Balance,
        creators: alloc::collections::BTreeMap<T::AccountId, Balance>,
    }

    impl<T: Config> Default for Owed<T> {
        fn default() -> Self {
            Owed { operator: 0, burn: 0, creators: Default::default() }
        }
    }

    /// The pallet's escrow account holds bonds, deposits and collateral.
    pub(crate) fn escrow_account<T: Config>() -> T::AccountId {
        T::PalletId::get().into_account_truncating()
    }

    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<AccountId = AccountId32, RuntimeEvent: From<Event<Self>>>
    {
        /// The chain's currency; balances are `u128`, as in receipts.
        type Currency: Mutate<Self::AccountId, Balance = Balance>;
        /// Holds escrowed funds.
        #[pallet::constant]
        type PalletId: Get<PalletId>;
        /// Smallest operator bond.
        #[pallet::constant]
        type MinBond: Get<Balance>;
        /// Blocks between `unregister_operator`/`unbond` and getting the funds back; relays can settle meanwhile.
        #[pallet::constant]
        type UnbondingPeriod: Get<BlockNumberFor<Self>>;
        /// Protocol fee burned from every payment, in basis points.
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

    #[derive(Clone, Encode, Decode, DecodeWithMemTracking, Eq, PartialEq, Debug, TypeInfo, MaxEncodedLen, Default)]
    pub struct Escrow<BlockNumber> {
        /// Spendable by settlements.
        pub free: Balance,
        /// Taken only when receipts exceed everything else.
        pub collateral: Balance,
        /// Leaving escrow; still spendable by settlements until `unbonding_until`.
        pub unbonding: Balance,
        pub unbonding_until: Option<BlockNumber>,
    }

    pub type EscrowOf<T> = Escrow<BlockNumberFor<T>>;

    /// What has been paid for a session so far.
    #[derive(Clone, Encode, Decode, DecodeWithMemTracking, Eq, PartialEq, Debug, TypeInfo, MaxEncodedLen)]
    pub struct SessionState<AccountId> {
        pub relay: AccountId,
        pub viewer: AccountId,
        pub content: ContentId,
        pub seq: u64,
        pub bytes: u64,
        pub amount: Balance,
        pub tip: Balance,
    }

    #[pallet::storage]
    pub type Operators<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, OperatorOf<T>>;

    #[pallet::storage]
    pub type Contents<T: Config> = StorageMap<_, Blake2_128Concat, ContentId, Content<T::AccountId>>;

    #[pallet::storage]
    pub type Escrows<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, EscrowOf<T>, ValueQuery>;

    #[pallet::storage]
    pub type Sessions<T: Config> = StorageMap<_, Blake2_128Concat, SessionId, SessionState<T::AccountId>>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        OperatorRegistered {
            operator: T::AccountId,
            peer_id: BoundedVec<u8, T::MaxPeerIdLen>,
            price_per_mib: Balance,
            bond: Balance,
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
        Deposited {
            viewer: T::AccountId,
            amount: Balance,
            collateral: Balance,
        },
        Unbonding {
            viewer: T::AccountId,
            amount: Balance,
            until: BlockNumberFor<T>,
        },
        Withdrawn {
            viewer: T::AccountId,
            amount: Balance,
        },
        /// One session settled up to `seq`: what each party got for this delta.
        Settled {
            session: SessionId,
            relay: T::AccountId,
            viewer: T::AccountId,
            content: ContentId,
            seq: u64,
            bytes: u64,
            operator_paid: Balance,
            creator_paid: Balance,
            burned: Balance,
            tip_paid: Balance,
        },
        /// Receipts exceeded the escrow: the collateral covered `amount`.
        CollateralTaken {
            viewer: T::AccountId,
            amount: Balance,
        },
        Tipped {
            content: ContentId,
            from: T::AccountId,
            creator: T::AccountId,
            amount: Balance,
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
        /// The operator is unbonding and cannot settle or re-register until it withdraws.
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
        /// The escrow holds less than asked.
        InsufficientEscrow,
        /// A receipt's signature does not verify.
        BadSignature,
        /// A receipt is for another chain.
        WrongDomain,
        /// A receipt names another relay than the caller.
        WrongRelay,
        /// A receipt changes the session's viewer, relay or content.
        SessionMismatch,
        /// A receipt's totals are below what was already settled.
        NotMonotonic,
        /// The batch is empty.
        EmptyBatch,
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

        /// Stop operating; the bond comes back after `UnbondingPeriod`.
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

        /// Register content (the manifest's content id) so its payments carry the creator's share.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::register_content())]
        pub fn register_content(origin: OriginFor<T>, content: ContentId, share_bps: u16) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(share_bps <= 10_000, Error::<T>::ShareTooLarge);
            ensure!(!Contents::<T>::contains_key(content), Error::<T>::ContentExists);
            Contents::<T>::insert(content, Content { creator: who.clone(), share_bps });
            Self::deposit_event(Event::ContentRegistered { content, creator: who, share_bps });
            Ok(())
        }

        /// Put funds into escrow to pay relays, and collateral that covers receipts beyond the escrow.
        #[pallet::call_index(4)]
        #[pallet::weight(T::WeightInfo::deposit())]
        pub fn deposit(origin: OriginFor<T>, amount: Balance, collateral: Balance) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let total = amount.saturating_add(collateral);
            ensure!(total > 0, Error::<T>::ZeroAmount);
            T::Currency::transfer(&who, &escrow_account::<T>(), total, Preservation::Preserve)?;
            Escrows::<T>::mutate(&who, |e| {
                e.free = e.free.saturating_add(amount);
                e.collateral = e.collateral.saturating_add(collateral);
            });
            Self::deposit_event(Event::Deposited { viewer: who, amount, collateral });
            Ok(())
        }

        /// Start taking `amount` out of escrow. Relays can still settle from it until the period ends.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::unbond())]
        pub fn unbond(origin: OriginFor<T>, amount: Balance) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(amount > 0, Error::<T>::ZeroAmount);
            let until = frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
            Escrows::<T>::try_mutate(&who, |e| {
                ensure!(e.free >= amount, Error::<T>::InsufficientEscrow);
                e.free -= amount;
                e.unbonding = e.unbonding.saturating_add(amount);
                e.unbonding_until = Some(until);
                Ok::<_, DispatchError>(())
            })?;
            Self::deposit_event(Event::Unbonding { viewer: who, amount, until });
            Ok(())
        }

        /// Take back what finished unbonding (and the collateral, once the escrow is empty).
        #[pallet::call_index(6)]
        #[pallet::weight(T::WeightInfo::withdraw())]
        pub fn withdraw(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut e = Escrows::<T>::get(&who);
            let until = e.unbonding_until.ok_or(Error::<T>::NothingUnbonding)?;
            ensure!(frame_system::Pallet::<T>::block_number() >= until, Error::<T>::StillUnbonding);
            let mut amount = e.unbonding;
            e.unbonding = 0;
            e.unbonding_until = None;
            if e.free == 0 {
                amount = amount.saturating_add(e.collateral);
                e.collateral = 0;
            }
            T::Currency::transfer(&escrow_account::<T>(), &who, amount, Preservation::Expendable)?;
            if e == Escrow::default() {
                Escrows::<T>::remove(&who);
            } else {
                Escrows::<T>::insert(&who, e);
            }
            Self::deposit_event(Event::Withdrawn { viewer: who, amount });
            Ok(())
        }

        /// Settle the latest receipt of each session: pay the delta over what was already settled.
        #[pallet::call_index(7)]
        #[pallet::weight(T::WeightInfo::settle(batch.len() as u32))]
        pub fn settle(origin: OriginFor<T>, batch: BoundedVec<SignedReceipt, T::MaxBatch>) -> DispatchResult {
            let relay = ensure_signed(origin)?;
            ensure!(!batch.is_empty(), Error::<T>::EmptyBatch);
            let op = Operators::<T>::get(&relay).ok_or(Error::<T>::NotOperator)?;
            ensure!(op.unbonding_until.is_none(), Error::<T>::OperatorUnbonding);
            let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
            // Payouts are summed over the batch and moved once per payee, so a receipt costs one signature
            // check and its session, content and escrow entries, not three balance transfers.
            let mut owed = Owed::<T>::default();
            for signed in batch {
                Self::settle_one(&relay, genesis.as_ref(), signed, &mut owed)?;
            }
            let pot = escrow_account::<T>();
            if owed.operator > 0 {
                T::Currency::transfer(&pot, &relay, owed.operator, Preservation::Expendable)?;
            }
            for (creator, amount) in owed.creators {
                T::Currency::transfer(&pot, &creator, amount, Preservation::Expendable)?;
            }
            if owed.burn > 0 {
                T::Currency::burn_from(&pot, owed.burn, Preservation::Expendable, Precision::Exact, Fortitude::Force)?;
            }
            Ok(())
        }

        /// Tip a creator directly.
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::tip())]
        pub fn tip(origin: OriginFor<T>, content: ContentId, amount: Balance) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(amount > 0, Error::<T>::ZeroAmount);
            let c = Contents::<T>::get(content).ok_or(Error::<T>::UnknownContent)?;
            T::Currency::transfer(&who, &c.creator, amount, Preservation::Preserve)?;
            Self::deposit_event(Event::Tipped { content, from: who, creator: c.creator, amount });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        fn settle_one(
            relay: &T::AccountId,
            genesis: &[u8],
            signed: SignedReceipt,
            owed: &mut Owed<T>,
        ) -> DispatchResult {
            let r = &signed.receipt;
            ensure!(r.relay == *<T::AccountId as AsRef<[u8; 32]>>::as_ref(relay), Error::<T>::WrongRelay);
            ensure!(r.domain.0.as_slice() == genesis, Error::<T>::WrongDomain);
            let prev = Sessions::<T>::get(r.session);
            let viewer = T::AccountId::from(r.viewer);
            if let Some(p) = &prev {
                ensure!(p.relay == *relay && p.viewer == viewer && p.content == r.content, Error::<T>::SessionMismatch);
                if r.seq <= p.seq {
                    // Already settled: resubmitting is a no-op.
                    return Ok(());
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

            let (prev_amount, prev_tip) = prev.as_ref().map_or((0, 0), |p| (p.amount, p.tip));
            let due = r.amount - prev_amount;
            let tip_due = r.tip - prev_tip;
            let mut escrow = Escrows::<T>::get(&viewer);
            let take = |want: Balance, e: &mut EscrowOf<T>| {
                let from_free = want.min(e.free);
                e.free -= from_free;
                let from_unbonding = (want - from_free).min(e.unbonding);
                e.unbonding -= from_unbonding;
                from_free + from_unbonding
            };
            let mut paid = take(due, &mut escrow);
            if paid < due {
                let slashed = (due - paid).min(escrow.collateral);
                escrow.collateral -= slashed;
                paid += slashed;
                if slashed > 0 {
                    Self::deposit_event(Event::CollateralTaken { viewer: viewer.clone(), amount: slashed });
                }
            }
            let tip_paid = take(tip_due, &mut escrow);
            let split = if paid == due {
                Split::step(prev_amount, r.amount, content.share_bps, T::FeeBps::get())
            } else {
                Split::of(paid, content.share_bps, T::FeeBps::get())
            };
            owed.operator = owed.operator.saturating_add(split.operator);
            owed.burn = owed.burn.saturating_add(split.burn);
            if split.creator + tip_paid > 0 {
                let c = owed.creators.entry(content.creator.clone()).or_default();
                *c = c.saturating_add(split.creator + tip_paid);
            }
            Escrows::<T>::insert(&viewer, escrow);
            Sessions::<T>::insert(
                r.session,
                SessionState {
                    relay: relay.clone(),
                    viewer: viewer.clone(),
                    content: r.content,
                    seq: r.seq,
                    bytes: r.bytes,
                    amount: r.amount,
                    tip: r.tip,
                },
            );
            Self::deposit_event(Event::Settled {
                session: r.session,
                relay: relay.clone(),
                viewer,
                content: r.content,
                seq: r.seq,
                bytes: r.bytes,
                operator_paid: split.operator,
                creator_paid: split.creator,
                burned: split.burn,
                tip_paid,
            });
            Ok(())
        }

        /// What `bytes` cost at an operator's registered price (for clients and audits).
        pub fn quote(operator: &T::AccountId, bytes: u64) -> Option<Balance> {
            Operators::<T>::get(operator).map(|op| amount_for(bytes, op.price_per_mib))
        }

        /// Balance of the escrow account (bonds, deposits, collateral).
        pub fn escrow_total() -> Balance {
            T::Currency::balance(&escrow_account::<T>())
        }
    }
}
