//! Every rule of the pallet and every error path, on the mock runtime.

use crate::{mock::*, Error, Escrows, Event, Sessions};
use ferry_primitives::{Domain, Receipt, SignedReceipt, Split};
use polkadot_sdk::frame_support::traits::fungible::Inspect;
use polkadot_sdk::frame_support::{assert_noop, assert_ok, BoundedVec};

const CONTENT: [u8; 32] = [0x55; 32];
const SHARE_BPS: u16 = 2_000;
const PRICE: u128 = 1_000;

fn balance(secret: [u8; 32]) -> u128 {
    Balances::balance(&account(secret))
}

fn receipt(seq: u64, amount: u128, tip: u128) -> Receipt {
    Receipt {
        domain: Domain(GENESIS),
        session: [7; 16],
        relay: ferry_primitives::signing::public_key(&RELAY),
        viewer: ferry_primitives::signing::public_key(&VIEWER),
        content: CONTENT,
        seq,
        bytes: seq * 1_000,
        amount,
        chunk_chain: [seq as u8; 32],
        tip,
    }
}

fn batch(receipts: Vec<SignedReceipt>) -> BoundedVec<SignedReceipt, polkadot_sdk::frame_support::traits::ConstU32<64>> {
    receipts.try_into().unwrap()
}

/// An operator, registered content and a viewer with `escrow` and `collateral` deposited.
fn setup(escrow: u128, collateral: u128) {
    assert_ok!(Ferry::register_operator(RuntimeOrigin::signed(account(RELAY)), b"12D3KooW".to_vec(), PRICE, 10_000));
    assert_ok!(Ferry::register_content(RuntimeOrigin::signed(account(CREATOR)), CONTENT, SHARE_BPS));
    assert_ok!(Ferry::deposit(RuntimeOrigin::signed(account(VIEWER)), escrow, collateral));
}

fn settle(receipts: Vec<SignedReceipt>) -> polkadot_sdk::sp_runtime::DispatchResult {
    Ferry::settle(RuntimeOrigin::signed(account(RELAY)), batch(receipts))
}

#[test]
fn register_operator_takes_the_bond() {
    new_test_ext().execute_with(|| {
        assert_ok!(Ferry::register_operator(RuntimeOrigin::signed(account(RELAY)), b"peer".to_vec(), PRICE, 5_000));
        assert_eq!(balance(RELAY), START - 5_000);
        assert_eq!(Ferry::escrow_total(), 5_000);
        assert_eq!(Ferry::quote(&account(RELAY), 1 << 20), Some(PRICE));
        System::assert_last_event(
            Event::OperatorRegistered {
                operator: account(RELAY),
                peer_id: b"peer".to_vec().try_into().unwrap(),
                price_per_mib: PRICE,
                bond: 5_000,
            }
            .into(),
        );
    });
}

#[test]
fn register_operator_rejects_small_bond_long_peer_id_and_twice() {
    new_test_ext().execute_with(|| {
        let who = RuntimeOrigin::signed(account(RELAY));
        assert_noop!(Ferry::register_operator(who.clone(), b"p".to_vec(), PRICE, 999), Error::<Test>::BondTooSmall);
        assert_noop!(Ferry::register_operator(who.clone(), vec![0; 65], PRICE, 1_000), Error::<Test>::PeerIdTooLong);
        assert_ok!(Ferry::register_operator(who.clone(), b"p".to_vec(), PRICE, 1_000));
        assert_noop!(Ferry::register_operator(who, b"p".to_vec(), PRICE, 1_000), Error::<Test>::AlreadyOperator);
    });
}

#[test]
fn operator_bond_returns_only_after_the_unbonding_period() {
    new_test_ext().execute_with(|| {
        let who = RuntimeOrigin::signed(account(RELAY));
        assert_noop!(Ferry::unregister_operator(who.clone()), Error::<Test>::NotOperator);
        assert_ok!(Ferry::register_operator(who.clone(), b"p".to_vec(), PRICE, 2_000));
        assert_noop!(Ferry::withdraw_bond(who.clone()), Error::<Test>::NothingUnbonding);
        assert_ok!(Ferry::unregister_operator(who.clone()));
        System::assert_last_event(Event::OperatorUnbonding { operator: account(RELAY), until: 11 }.into());
        assert_noop!(Ferry::unregister_operator(who.clone()), Error::<Test>::OperatorUnbonding);
        System::set_block_number(10);
        assert_noop!(Ferry::withdraw_bond(who.clone()), Error::<Test>::StillUnbonding);
        System::set_block_number(11);
        assert_ok!(Ferry::withdraw_bond(who));
        assert_eq!(balance(RELAY), START);
        System::assert_last_event(Event::OperatorBondWithdrawn { operator: account(RELAY), amount: 2_000 }.into());
    });
}

#[test]
fn register_content_checks_share_and_uniqueness() {
    new_test_ext().execute_with(|| {
        let who = RuntimeOrigin::signed(account(CREATOR));
        assert_noop!(Ferry::register_content(who.clone(), CONTENT, 10_001), Error::<Test>::ShareTooLarge);
        assert_ok!(Ferry::register_content(who.clone(), CONTENT, SHARE_BPS));
        System::assert_last_event(
            Event::ContentRegistered { content: CONTENT, creator: account(CREATOR), share_bps: SHARE_BPS }.into(),
        );
        assert_noop!(Ferry::register_content(who, CONTENT, SHARE_BPS), Error::<Test>::ContentExists);
    });
}

#[test]
fn viewer_escrow_unbonds_with_a_delay() {
    new_test_ext().execute_with(|| {
        let who = RuntimeOrigin::signed(account(VIEWER));
        assert_noop!(Ferry::deposit(who.clone(), 0, 0), Error::<Test>::ZeroAmount);
        assert_ok!(Ferry::deposit(who.clone(), 10_000, 1_000));
        System::assert_last_event(
            Event::Deposited { viewer: account(VIEWER), amount: 10_000, collateral: 1_000 }.into(),
        );
        assert_eq!(balance(VIEWER), START - 11_000);
        assert_noop!(Ferry::unbond(who.clone(), 10_001), Error::<Test>::InsufficientEscrow);
        assert_noop!(Ferry::withdraw(who.clone()), Error::<Test>::NothingUnbonding);
        assert_ok!(Ferry::unbond(who.clone(), 10_000));
        System::assert_last_event(Event::Unbonding { viewer: account(VIEWER), amount: 10_000, until: 11 }.into());
        assert_noop!(Ferry::withdraw(who.clone()), Error::<Test>::StillUnbonding);
        System::set_block_number(11);
        // Nothing left in escrow, so the collateral comes back too.
        assert_ok!(Ferry::withdraw(who));
        System::assert_last_event(Event::Withdrawn { viewer: account(VIEWER), amount: 11_000 }.into());
        assert_eq!(balance(VIEWER), START);
        assert!(!Escrows::<Test>::contains_key(account(VIEWER)));
    });
}

#[test]
fn settle_pays_operator_and_creator_and_burns_the_fee() {
    new_test_ext().execute_with(|| {
        setup(100_000, 5_000);
        let (relay0, creator0, issuance0) = (balance(RELAY), balance(CREATOR), Balances::total_issuance());
        assert_ok!(settle(vec![receipt(3, 10_000, 0).sign(&VIEWER)]));
        let split = Split::of(10_000, SHARE_BPS, 500);
        assert_eq!(split, Split { creator: 2_000, burn: 500, operator: 7_500 });
        assert_eq!(balance(RELAY), relay0 + 7_500);
        assert_eq!(balance(CREATOR), creator0 + 2_000);
        assert_eq!(Balances::total_issuance(), issuance0 - 500);
        assert_eq!(Escrows::<Test>::get(account(VIEWER)).free, 90_000);
        System::assert_has_event(
            Event::Settled {
                session: [7; 16],
                relay: account(RELAY),
                viewer: account(VIEWER),
                content: CONTENT,
                seq: 3,
                bytes: 3_000,
                operator_paid: 7_500,
                creator_paid: 2_000,
                burned: 500,
                tip_paid: 0,
            }
            .into(),
        );
    });
}

#[test]
fn resubmitting_a_receipt_is_a_no_op() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        let r = receipt(3, 10_000, 0).sign(&VIEWER);
        assert_ok!(settle(vec![r.clone()]));
        let relay1 = balance(RELAY);
        assert_ok!(settle(vec![r.clone(), r]));
        assert_ok!(settle(vec![receipt(2, 8_000, 0).sign(&VIEWER)]));
        assert_eq!(balance(RELAY), relay1);
        assert_eq!(Escrows::<Test>::get(account(VIEWER)).free, 90_000);
    });
}

#[test]
fn a_later_receipt_pays_only_the_delta() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        assert_ok!(settle(vec![receipt(1, 4_000, 0).sign(&VIEWER)]));
        assert_ok!(settle(vec![receipt(5, 10_000, 0).sign(&VIEWER)]));
        assert_eq!(Escrows::<Test>::get(account(VIEWER)).free, 90_000);
        assert_eq!(Sessions::<Test>::get([7; 16]).unwrap().seq, 5);
    });
}

#[test]
fn forged_receipt_is_rejected_and_nothing_moves() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        let mut forged = receipt(1, 10_000, 0).sign(&OTHER_RELAY);
        forged.receipt.viewer = ferry_primitives::signing::public_key(&VIEWER);
        assert_noop!(settle(vec![forged]), Error::<Test>::BadSignature);
        let mut tampered = receipt(1, 10_000, 0).sign(&VIEWER);
        tampered.receipt.amount += 1;
        assert_noop!(settle(vec![tampered]), Error::<Test>::BadSignature);
    });
}

#[test]
fn a_bad_receipt_fails_the_whole_batch() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        let mut bad = receipt(2, 10_000, 0).sign(&VIEWER);
        bad.signature[0] ^= 1;
        assert_noop!(settle(vec![receipt(1, 5_000, 0).sign(&VIEWER), bad]), Error::<Test>::BadSignature);
    });
}

#[test]
fn receipt_for_another_relay_or_chain_is_rejected() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        assert_ok!(Ferry::register_operator(RuntimeOrigin::signed(account(OTHER_RELAY)), b"p".to_vec(), PRICE, 1_000));
        let r = receipt(1, 1_000, 0).sign(&VIEWER);
        assert_noop!(
            Ferry::settle(RuntimeOrigin::signed(account(OTHER_RELAY)), batch(vec![r])),
            Error::<Test>::WrongRelay
        );
        let mut other_chain = receipt(1, 1_000, 0);
        other_chain.domain = Domain([0xbb; 32]);
        assert_noop!(settle(vec![other_chain.sign(&VIEWER)]), Error::<Test>::WrongDomain);
    });
}

#[test]
fn only_active_operators_settle_non_empty_batches() {
    new_test_ext().execute_with(|| {
        let r = receipt(1, 1_000, 0).sign(&VIEWER);
        assert_noop!(settle(vec![r.clone()]), Error::<Test>::NotOperator);
        setup(100_000, 0);
        assert_noop!(settle(vec![]), Error::<Test>::EmptyBatch);
        assert_ok!(Ferry::unregister_operator(RuntimeOrigin::signed(account(RELAY))));
        assert_noop!(settle(vec![r]), Error::<Test>::OperatorUnbonding);
    });
}

#[test]
fn totals_that_go_down_are_rejected() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        assert_ok!(settle(vec![receipt(2, 5_000, 100).sign(&VIEWER)]));
        assert_noop!(settle(vec![receipt(3, 4_000, 100).sign(&VIEWER)]), Error::<Test>::NotMonotonic);
        assert_noop!(settle(vec![receipt(3, 6_000, 50).sign(&VIEWER)]), Error::<Test>::NotMonotonic);
    });
}

#[test]
fn a_session_cannot_change_viewer_or_content() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        assert_ok!(Ferry::register_content(RuntimeOrigin::signed(account(CREATOR)), [0x66; 32], 0));
        assert_ok!(settle(vec![receipt(1, 1_000, 0).sign(&VIEWER)]));
        let mut r = receipt(2, 2_000, 0);
        r.content = [0x66; 32];
        assert_noop!(settle(vec![r.sign(&VIEWER)]), Error::<Test>::SessionMismatch);
    });
}

#[test]
fn unknown_content_is_rejected() {
    new_test_ext().execute_with(|| {
        assert_ok!(Ferry::register_operator(RuntimeOrigin::signed(account(RELAY)), b"p".to_vec(), PRICE, 1_000));
        assert_ok!(Ferry::deposit(RuntimeOrigin::signed(account(VIEWER)), 10_000, 0));
        assert_noop!(settle(vec![receipt(1, 1_000, 0).sign(&VIEWER)]), Error::<Test>::UnknownContent);
        assert_noop!(Ferry::tip(RuntimeOrigin::signed(account(VIEWER)), CONTENT, 5), Error::<Test>::UnknownContent);
    });
}

#[test]
fn overspending_pays_what_is_left_then_takes_the_collateral() {
    new_test_ext().execute_with(|| {
        setup(6_000, 3_000);
        let relay0 = balance(RELAY);
        assert_ok!(settle(vec![receipt(1, 10_000, 0).sign(&VIEWER)]));
        // 6000 from escrow, 3000 of the 4000 shortfall from the collateral.
        let split = Split::of(9_000, SHARE_BPS, 500);
        assert_eq!(balance(RELAY), relay0 + split.operator);
        let e = Escrows::<Test>::get(account(VIEWER));
        assert_eq!((e.free, e.collateral), (0, 0));
        assert!(System::events()
            .iter()
            .any(|r| r.event == Event::CollateralTaken { viewer: account(VIEWER), amount: 3_000 }.into()));
    });
}

#[test]
fn settling_still_pays_while_the_viewer_unbonds() {
    new_test_ext().execute_with(|| {
        setup(10_000, 0);
        assert_ok!(Ferry::unbond(RuntimeOrigin::signed(account(VIEWER)), 10_000));
        let relay0 = balance(RELAY);
        assert_ok!(settle(vec![receipt(1, 4_000, 0).sign(&VIEWER)]));
        assert_eq!(balance(RELAY), relay0 + Split::of(4_000, SHARE_BPS, 500).operator);
        assert_eq!(Escrows::<Test>::get(account(VIEWER)).unbonding, 6_000);
    });
}

#[test]
fn tip_deltas_go_to_the_creator() {
    new_test_ext().execute_with(|| {
        setup(100_000, 0);
        let creator0 = balance(CREATOR);
        assert_ok!(settle(vec![receipt(1, 0, 300).sign(&VIEWER)]));
        assert_ok!(settle(vec![receipt(2, 0, 500).sign(&VIEWER)]));
        assert_eq!(balance(CREATOR), creator0 + 500);
        assert_eq!(Escrows::<Test>::get(account(VIEWER)).free, 99_500);
    });
}

#[test]
fn a_direct_tip_reaches_the_creator() {
    new_test_ext().execute_with(|| {
        setup(1, 0);
        let (viewer0, creator0) = (balance(VIEWER), balance(CREATOR));
        assert_noop!(Ferry::tip(RuntimeOrigin::signed(account(VIEWER)), CONTENT, 0), Error::<Test>::ZeroAmount);
        assert_ok!(Ferry::tip(RuntimeOrigin::signed(account(VIEWER)), CONTENT, 777));
        assert_eq!(balance(VIEWER), viewer0 - 777);
        assert_eq!(balance(CREATOR), creator0 + 777);
        System::assert_last_event(
            Event::Tipped { content: CONTENT, from: account(VIEWER), creator: account(CREATOR), amount: 777 }.into(),
        );
    });
}

#[test]
fn self_dealing_loses_money() {
    new_test_ext().execute_with(|| {
        // The operator plays viewer to itself: it pays itself from its own escrow, and the fee burns.
        assert_ok!(Ferry::register_operator(RuntimeOrigin::signed(account(RELAY)), b"p".to_vec(), PRICE, 1_000));
        assert_ok!(Ferry::register_content(RuntimeOrigin::signed(account(RELAY)), CONTENT, SHARE_BPS));
        assert_ok!(Ferry::deposit(RuntimeOrigin::signed(account(RELAY)), 50_000, 0));
        let before = balance(RELAY) + Escrows::<Test>::get(account(RELAY)).free;
        let mut r = receipt(1, 20_000, 0);
        r.viewer = ferry_primitives::signing::public_key(&RELAY);
        assert_ok!(settle(vec![r.sign(&RELAY)]));
        let after = balance(RELAY) + Escrows::<Test>::get(account(RELAY)).free;
        assert!(after < before, "self-dealing must cost the fee");
    });
}

#[test]
fn integrity_test_passes_for_the_mock() {
    use polkadot_sdk::frame_support::traits::Hooks;
    new_test_ext().execute_with(<crate::Pallet<Test> as Hooks<u64>>::integrity_test);
}

#[test]
fn payouts_depend_only_on_the_latest_receipt_not_on_how_it_was_batched() {
    // Amounts chosen so that splitting each step on its own would round differently from splitting the total.
    let run = |steps: &[u128]| {
        new_test_ext().execute_with(|| {
            setup(100_000, 0);
            let (relay0, creator0, issuance0) = (balance(RELAY), balance(CREATOR), Balances::total_issuance());
            for (i, amount) in steps.iter().enumerate() {
                assert_ok!(settle(vec![receipt(i as u64 + 1, *amount, 0).sign(&VIEWER)]));
            }
            (balance(RELAY) - relay0, balance(CREATOR) - creator0, issuance0 - Balances::total_issuance())
        })
    };
    let at_once = run(&[10_009]);
    let total = Split::of(10_009, SHARE_BPS, 500);
    assert_eq!(at_once, (total.operator, total.creator, total.burn));
    assert_eq!(run(&[3, 7, 19, 2_503, 10_009]), at_once);
}
