//! Benchmarks of every call, for the generated `weights.rs`. `settle` is measured at its worst for the content its
//! receipts name: every receipt names a different viewer (its own lane) and continues a claim already settled
//! once, and each piece of content named has a creator of its own (a payee of its own).

use super::*;
use ferry_primitives::{Balance, ContentHeader, ContentId, Domain, Receipt, SignedReceipt};
use polkadot_sdk::frame_benchmarking::v2::*;
use polkadot_sdk::frame_support::traits::{
    fungible::{Inspect, Mutate},
    Get,
};
use polkadot_sdk::frame_support::BoundedVec;
use polkadot_sdk::frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use polkadot_sdk::sp_runtime::traits::{Saturating, Zero};

const PRICE: Balance = 1_000;

fn secret(role: u8, i: u32) -> [u8; 32] {
    let mut s = [role; 32];
    s[..4].copy_from_slice(&i.to_le_bytes());
    s
}

/// An account whose key is `secret`, with plenty of funds.
fn funded<T: Config>(secret: [u8; 32]) -> T::AccountId {
    let who = T::AccountId::from(ferry_primitives::signing::public_key(&secret));
    T::Currency::set_balance(&who, T::MinBond::get().saturating_mul(1_000_000_000));
    who
}

/// A lane the chain accepts as the pot's first funds: above the existential deposit.
fn lane<T: Config>() -> Balance {
    T::Currency::minimum_balance().saturating_mul(1_000)
}

fn operator<T: Config>() -> T::AccountId {
    let relay = funded::<T>(secret(1, 0));
    let peer = alloc::vec![7u8; T::MaxPeerIdLen::get() as usize];
    Pallet::<T>::register_operator(RawOrigin::Signed(relay.clone()).into(), peer, PRICE, T::MinBond::get())
        .expect("operator registers");
    relay
}

/// The `i`th piece of content, by a creator of its own; `settle`'s receipts each name their own, so each reads its
/// own `Contents` entry and pays a creator of its own.
fn header(i: u32) -> ContentHeader {
    let mut manifest_hash = [0x55; 32];
    manifest_hash[..4].copy_from_slice(&i.to_le_bytes());
    ContentHeader {
        creator: ferry_primitives::signing::public_key(&secret(2, i)),
        creator_share_bps: 2_000,
        manifest_hash,
    }
}

fn content<T: Config>(i: u32) -> ContentId {
    let creator = funded::<T>(secret(2, i));
    Pallet::<T>::register_content(RawOrigin::Signed(creator).into(), header(i)).expect("content registers");
    header(i).content_id()
}

fn genesis<T: Config>() -> [u8; 32] {
    let h = polkadot_sdk::frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
    let mut g = [0u8; 32];
    g.copy_from_slice(&h.as_ref()[..32]);
    g
}

fn receipt<T: Config>(relay: &T::AccountId, viewer: u32, content: u32, seq: u64) -> SignedReceipt {
    let relay_key: &[u8; 32] = relay.as_ref();
    let s = secret(3, viewer);
    let viewer = ferry_primitives::signing::public_key(&s);
    let content = header(content).content_id();
    Receipt {
        domain: Domain(genesis::<T>()),
        claim: ferry_primitives::claim_id(relay_key, &viewer, &content),
        relay: *relay_key,
        viewer,
        content,
        seq,
        bytes: seq * (256 << 10),
        amount: seq as Balance * 250,
        chunk_chain: [seq as u8; 32],
        tip: seq as Balance,
    }
    .sign(&s)
}

/// The relay and a batch of `n` receipts, each from a viewer of its own and continuing a claim settled once;
/// receipt `v` names content `content_of(v)`.
fn receipts_to_settle<T: Config>(
    n: u32,
    content_of: impl Fn(u32) -> u32,
) -> (T::AccountId, BoundedVec<SignedReceipt, T::MaxBatch>) {
    let relay = operator::<T>();
    let mut first = alloc::vec::Vec::new();
    let mut batch = alloc::vec::Vec::new();
    for v in 0..n {
        if content_of(v) == v {
            content::<T>(v);
        }
        let viewer = funded::<T>(secret(3, v));
        Pallet::<T>::open_lane(RawOrigin::Signed(viewer).into(), relay.clone(), lane::<T>()).expect("opens");
        first.push(receipt::<T>(&relay, v, content_of(v), 1));
        batch.push(receipt::<T>(&relay, v, content_of(v), 2));
    }
    let first: BoundedVec<_, T::MaxBatch> = first.try_into().expect("n ≤ MaxBatch");
    Pallet::<T>::settle(RawOrigin::Signed(relay.clone()).into(), first).expect("first receipts settle");
    (relay, batch.try_into().expect("n ≤ MaxBatch"))
}

fn settled_twice<T: Config>(relay: T::AccountId) {
    let viewer = T::AccountId::from(ferry_primitives::signing::public_key(&secret(3, 0)));
    assert!(Claims::<T>::iter_prefix((relay, viewer)).any(|(_, c)| c.seq == 2));
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register_operator() {
        let who = funded::<T>(secret(1, 0));
        let peer = alloc::vec![7u8; T::MaxPeerIdLen::get() as usize];
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), peer, PRICE, T::MinBond::get());
        assert!(Operators::<T>::contains_key(&who));
    }

    #[benchmark]
    fn unregister_operator() {
        let who = operator::<T>();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(Operators::<T>::get(&who).is_some_and(|o| o.unbonding_until.is_some()));
    }

    #[benchmark]
    fn withdraw_bond() {
        let who = operator::<T>();
        Pallet::<T>::unregister_operator(RawOrigin::Signed(who.clone()).into()).expect("unregisters");
        let later = polkadot_sdk::frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
        polkadot_sdk::frame_system::Pallet::<T>::set_block_number(later);
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!Operators::<T>::contains_key(&who));
    }

    #[benchmark]
    fn register_content() {
        let who = funded::<T>(secret(2, 0));
        #[extrinsic_call]
        _(RawOrigin::Signed(who), header(0));
        assert!(Contents::<T>::contains_key(header(0).content_id()));
    }

    #[benchmark]
    fn open_lane() {
        let relay = operator::<T>();
        let who = funded::<T>(secret(3, 0));
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), relay.clone(), lane::<T>());
        assert_eq!(Lanes::<T>::get(&who, &relay).funds, lane::<T>());
    }

    #[benchmark]
    fn close_lane() {
        let relay = operator::<T>();
        let who = funded::<T>(secret(3, 0));
        Pallet::<T>::open_lane(RawOrigin::Signed(who.clone()).into(), relay.clone(), lane::<T>()).expect("opens");
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), relay.clone());
        assert!(Lanes::<T>::get(&who, &relay).closing_at.is_some());
    }

    #[benchmark]
    fn withdraw_lane() {
        let relay = operator::<T>();
        let who = funded::<T>(secret(3, 0));
        Pallet::<T>::open_lane(RawOrigin::Signed(who.clone()).into(), relay.clone(), lane::<T>()).expect("opens");
        Pallet::<T>::close_lane(RawOrigin::Signed(who.clone()).into(), relay.clone()).expect("closes");
        let later = polkadot_sdk::frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
        polkadot_sdk::frame_system::Pallet::<T>::set_block_number(later);
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), relay.clone());
        assert!(!Lanes::<T>::contains_key(&who, &relay));
    }

    /// `n` receipts that all name one piece of content.
    #[benchmark]
    fn settle_shared_content(n: Linear<1, { T::MaxBatch::get() }>) {
        let (relay, batch) = receipts_to_settle::<T>(n, |_| 0);
        #[extrinsic_call]
        settle(RawOrigin::Signed(relay.clone()), batch);
        settled_twice::<T>(relay);
    }

    /// `n` receipts that each name a piece of content of their own, by a creator of its own (a payee each).
    #[benchmark]
    fn settle_own_content(n: Linear<1, { T::MaxBatch::get() }>) {
        let (relay, batch) = receipts_to_settle::<T>(n, |v| v);
        #[extrinsic_call]
        settle(RawOrigin::Signed(relay.clone()), batch);
        settled_twice::<T>(relay);
    }

    #[benchmark]
    fn tip() {
        let content = content::<T>(0);
        let who = funded::<T>(secret(3, 0));
        #[extrinsic_call]
        _(RawOrigin::Signed(who), content, lane::<T>());
    }

    #[benchmark]
    fn set_price() {
        let who = operator::<T>();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), PRICE * 2);
        assert!(Operators::<T>::get(&who).is_some_and(|o| o.price_per_mib == PRICE * 2));
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
