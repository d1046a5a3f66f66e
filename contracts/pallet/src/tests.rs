//! Every rule of the pallet and every error path, on the mock runtime. The tests named for a rule of money
//! safety (`a_claim_belongs_…`, `funds_reserved_…`, `content_registration_…`, `every_payment_burns_…`,
//! `a_payout_below_…`) are the attacks of the money-safety review; each failed on the shared-escrow pallet.

use crate::{mock::*, Claims, Contents, Error, Event, Lanes, Undelivered};
use ferry_primitives::{claim_id, ClaimId, ContentHeader, ContentId, Domain, Receipt, SignedReceipt, Split};
use polkadot_sdk::frame_support::traits::fungible::Inspect;
use polkadot_sdk::frame_support::{assert_noop, assert_ok, BoundedVec};

const SHARE_BPS: u16 = 2_000;
const PRICE: u128 = 1_000;
const FEE_BPS: u16 = 500;

fn balance(secret: [u8; 32]) -> u128 {
    Balances::balance(&account(secret))
}

fn key(secret: [u8; 32]) -> [u8; 32] {
    ferry_primitives::signing::public_key(&secret)
}

fn header(creator: [u8; 32], share: u16) -> ContentHeader {
    ContentHeader { creator: key(creator), creator_share_bps: share, manifest_hash: [0x55; 32] }
}

/// The content every test plays: the creator's, with a 20% share.
fn content() -> ContentId {
    header(CREATOR, SHARE_BPS).content_id()
}

/// The claim of VIEWER at RELAY for `content()`.
fn claim() -> ClaimId {
    claim_id(&key(RELAY), &key(VIEWER), &content())
}

/// `r` with the claim id its relay, viewer and content make.
fn reclaimed(mut r: Receipt) -> Receipt {
    r.claim = claim_id(&r.relay, &r.viewer, &r.content);
    r
}

fn receipt(seq: u64, amount: u128, tip: u128) -> Receipt {
    Receipt {
        domain: Domain(GENESIS),
        claim: claim(),
        relay: key(RELAY),
        viewer: key(VIEWER),
        content: content(),
        seq,
        bytes: seq.saturating_mul(1_000),
        amount,
        chunk_chain: [seq as u8; 32],
        tip,
    }
}

fn batch(receipts: Vec<SignedReceipt>) -> BoundedVec<SignedReceipt, polkadot_sdk::frame_support::traits::ConstU32<64>> {
    receipts.try_into().unwrap()
}

fn origin(secret: [u8; 32]) -> RuntimeOrigin {
    RuntimeOrigin::signed(account(secret))
}

/// An operator, registered content and a viewer with a lane of `funds` to the operator.
fn setup(funds: u128) {
    assert_ok!(Ferry::register_operator(origin(RELAY), b"12D3KooW".to_vec(), PRICE, 10_000));
    assert_ok!(Ferry::register_content(origin(CREATOR), header(CREATOR, SHARE_BPS)));
    if funds > 0 {
        assert_ok!(Ferry::open_lane(origin(VIEWER), account(RELAY), funds));
    }
}

fn settle(receipts: Vec<SignedReceipt>) -> polkadot_sdk::sp_runtime::DispatchResult {
    Ferry::settle(origin(RELAY), batch(receipts))
}

fn lane(viewer: [u8; 32], relay: [u8; 32]) -> u128 {
    Lanes::<Test>::get(account(viewer), account(relay)).funds
}

#[test]
fn register_operator_takes_the_bond() {
    new_test_ext().execute_with(|| {
        assert_ok!(Ferry::register_operator(origin(RELAY), b"peer".to_vec(), PRICE, 5_000));
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
        let who = origin(RELAY);
        assert_noop!(Ferry::register_operator(who.clone(), b"p".to_vec(), PRICE, 999), Error::<Test>::BondTooSmall);
        assert_noop!(Ferry::register_operator(who.clone(), vec![0; 65], PRICE, 1_000), Error::<Test>::PeerIdTooLong);
        assert_ok!(Ferry::register_operator(who.clone(), b"p".to_vec(), PRICE, 1_000));
        assert_noop!(Ferry::register_operator(who, b"p".to_vec(), PRICE, 1_000), Error::<Test>::AlreadyOperator);
    });
}

#[test]
fn operator_bond_returns_only_after_the_unbonding_period() {
    new_test_ext().execute_with(|| {
        let who = origin(RELAY);
        assert_noop!(Ferry::unregister_operator(who.clone()), Error::<Test>::NotOperator);
        assert_ok!(Ferry::register_operator(who.clone(), b"p".to_vec(), PRICE, 2_000));
        assert_noop!(Ferry::withdraw_bond(who.clone()), Error::<Test>::NothingUnbonding);
        assert_ok!(Ferry::unregister_operator(who.clone()));
        System::assert_last_event(Event::OperatorUnbonding { operator: account(RELAY), until: 11 }.into());
        assert_noop!(Ferry::unregister_operator(who.clone()), Error::<Test>::OperatorUnbonding);
        assert_noop!(Ferry::open_lane(origin(VIEWER), account(RELAY), 10), Error::<Test>::OperatorUnbonding);
        System::set_block_number(10);
        assert_noop!(Ferry::withdraw_bond(who.clone()), Error::<Test>::StillUnbonding);
        System::set_block_number(11);
        assert_ok!(Ferry::withdraw_bond(who));
        assert_eq!(balance(RELAY), START);
        System::assert_last_event(Event::OperatorBondWithdrawn { operator: account(RELAY), amount: 2_000 }.into());
    });
}

#[test]
fn an_operator_changes_its_price() {
    new_test_ext().execute_with(|| {
        assert_noop!(Ferry::set_price(origin(RELAY), 5), Error::<Test>::NotOperator);
        assert_ok!(Ferry::register_operator(origin(RELAY), b"p".to_vec(), PRICE, 1_000));
        assert_ok!(Ferry::set_price(origin(RELAY), 2 * PRICE));
        assert_eq!(Ferry::quote(&account(RELAY), 1 << 20), Some(2 * PRICE));
        System::assert_last_event(Event::PriceChanged { operator: account(RELAY), price_per_mib: 2 * PRICE }.into());
    });
}

#[test]
fn register_content_checks_share_and_uniqueness() {
    new_test_ext().execute_with(|| {
        assert_noop!(Ferry::register_content(origin(CREATOR), header(CREATOR, 10_001)), Error::<Test>::ShareTooLarge);
        assert_ok!(Ferry::register_content(origin(CREATOR), header(CREATOR, SHARE_BPS)));
        System::assert_last_event(
            Event::ContentRegistered { content: content(), creator: account(CREATOR), share_bps: SHARE_BPS }.into(),
        );
        assert_noop!(
            Ferry::register_content(origin(CREATOR), header(CREATOR, SHARE_BPS)),
            Error::<Test>::ContentExists
        );
    });
}

/// Attack 6 (creator front-running): whoever registers first, the content id names the manifest's creator.
#[test]
fn content_registration_always_names_the_manifests_creator() {
    new_test_ext().execute_with(|| {
        // The attacker submits the creator's header first: the registration is still the creator's.
        assert_ok!(Ferry::register_content(origin(STRANGER), header(CREATOR, SHARE_BPS)));
        let c = Contents::<Test>::get(content()).unwrap();
        assert_eq!((c.creator, c.share_bps), (account(CREATOR), SHARE_BPS));
        // A header naming the attacker is another content id: the creator's id cannot be redirected.
        assert_ok!(Ferry::register_content(origin(STRANGER), header(STRANGER, 10_000)));
        assert_ne!(header(STRANGER, 10_000).content_id(), content());
        assert_eq!(Contents::<Test>::get(content()).unwrap().creator, account(CREATOR));
    });
}

#[test]
fn a_lane_returns_its_rest_only_after_the_unbonding_period() {
    new_test_ext().execute_with(|| {
        assert_ok!(Ferry::register_operator(origin(RELAY), b"p".to_vec(), PRICE, 1_000));
        let who = origin(VIEWER);
        assert_noop!(Ferry::open_lane(who.clone(), account(RELAY), 0), Error::<Test>::ZeroAmount);
        assert_noop!(Ferry::open_lane(who.clone(), account(CREATOR), 10), Error::<Test>::NotOperator);
        assert_noop!(Ferry::close_lane(who.clone(), account(RELAY)), Error::<Test>::NoLane);
        assert_ok!(Ferry::open_lane(who.clone(), account(RELAY), 10_000));
        assert_ok!(Ferry::open_lane(who.clone(), account(RELAY), 1_000));
        System::assert_last_event(
            Event::LaneFunded { viewer: account(VIEWER), relay: account(RELAY), amount: 1_000, funds: 11_000 }.into(),
        );
        assert_eq!(balance(VIEWER), START - 11_000);
        assert_noop!(Ferry::withdraw_lane(who.clone(), account(RELAY)), Error::<Test>::NothingUnbonding);
        assert_ok!(Ferry::close_lane(who.clone(), account(RELAY)));
        System::assert_last_event(
            Event::LaneClosing { viewer: account(VIEWER), relay: account(RELAY), funds: 11_000, until: 11 }.into(),
        );
        assert_noop!(Ferry::close_lane(who.clone(), account(RELAY)), Error::<Test>::LaneClosing);
        System::set_block_number(10);
        assert_noop!(Ferry::withdraw_lane(who.clone(), account(RELAY)), Error::<Test>::StillUnbonding);
        System::set_block_number(11);
        assert_ok!(Ferry::withdraw_lane(who.clone(), account(RELAY)));
        System::assert_last_event(
            Event::LaneWithdrawn { viewer: account(VIEWER), relay: account(RELAY), amount: 11_000 }.into(),
        );
        assert_eq!(balance(VIEWER), START);
        assert!(!Lanes::<Test>::contains_key(account(VIEWER), account(RELAY)));
        assert_noop!(Ferry::withdraw_lane(who, account(RELAY)), Error::<Test>::NoLane);
    });
}

#[test]
fn a_top_up_cancels_closing() {
    new_test_ext().execute_with(|| {
        setup(5_000);
        assert_ok!(Ferry::close_lane(origin(VIEWER), account(RELAY)));
        assert_ok!(Ferry::open_lane(origin(VIEWER), account(RELAY), 1));
        assert_eq!(Lanes::<Test>::get(account(VIEWER), account(RELAY)).closing_at, None);
        System::set_block_number(100);
        assert_noop!(Ferry::withdraw_lane(origin(VIEWER), account(RELAY)), Error::<Test>::NothingUnbonding);
    });
}

#[test]
fn settle_pays_operator_and_creator_and_burns_the_fee() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        let (relay0, creator0, issuance0) = (balance(RELAY), balance(CREATOR), Balances::total_issuance());
        assert_ok!(settle(vec![receipt(3, 10_000, 0).sign(&VIEWER)]));
        let split = Split::of(10_000, SHARE_BPS, FEE_BPS);
        assert_eq!(split, Split { creator: 1_900, burn: 500, operator: 7_600 });
        assert_eq!(balance(RELAY), relay0 + 7_600);
        assert_eq!(balance(CREATOR), creator0 + 1_900);
        assert_eq!(Balances::total_issuance(), issuance0 - 500);
        assert_eq!(lane(VIEWER, RELAY), 90_000);
        System::assert_has_event(
            Event::Settled {
                relay: account(RELAY),
                viewer: account(VIEWER),
                claim: claim(),
                content: content(),
                seq: 3,
                bytes: 3_000,
                due: 10_000,
                paid: 10_000,
                tip_due: 0,
                tip_paid: 0,
                operator_paid: 7_600,
                creator_paid: 1_900,
                burned: 500,
            }
            .into(),
        );
    });
}

#[test]
fn settle_is_weighed_by_the_content_its_batch_names() {
    use crate::WeightInfo;
    type W = <Test as crate::Config>::WeightInfo;
    let other = Receipt { content: [9; 32], ..receipt(1, 10, 0) }.sign(&VIEWER);
    let mut batch = vec![receipt(1, 10, 0).sign(&VIEWER), receipt(2, 20, 0).sign(&VIEWER), other];
    // Two pieces of content, and one receipt that names the first again.
    assert_eq!(Ferry::settle_weight(&batch), W::settle_shared_content(1).saturating_add(W::settle_own_content(2)));
    batch.truncate(1);
    assert_eq!(Ferry::settle_weight(&batch), W::settle_own_content(1));
}

#[test]
fn resubmitting_a_receipt_is_a_no_op() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        let r = receipt(3, 10_000, 0).sign(&VIEWER);
        assert_ok!(settle(vec![r.clone()]));
        let relay1 = balance(RELAY);
        assert_ok!(settle(vec![r.clone(), r]));
        assert_eq!(balance(RELAY), relay1);
        assert_eq!(lane(VIEWER, RELAY), 90_000);
    });
}

#[test]
fn a_receipt_older_than_the_settled_one_is_refused_not_ignored() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        assert_ok!(settle(vec![receipt(3, 10_000, 0).sign(&VIEWER)]));
        // A relay whose ledger was restored from a backup starts the claim again from seq 1.
        assert_noop!(settle(vec![receipt(2, 8_000, 0).sign(&VIEWER)]), Error::<Test>::Superseded);
        assert_noop!(settle(vec![receipt(1, 20_000, 0).sign(&VIEWER)]), Error::<Test>::Superseded);
        assert_eq!(lane(VIEWER, RELAY), 90_000);
    });
}

#[test]
fn a_later_receipt_pays_only_the_delta() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        assert_ok!(settle(vec![receipt(1, 4_000, 0).sign(&VIEWER)]));
        assert_ok!(settle(vec![receipt(5, 10_000, 0).sign(&VIEWER)]));
        assert_eq!(lane(VIEWER, RELAY), 90_000);
        assert_eq!(Claims::<Test>::get((account(RELAY), account(VIEWER), claim())).unwrap().seq, 5);
    });
}

#[test]
fn forged_receipt_is_rejected_and_nothing_moves() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        let mut forged = receipt(1, 10_000, 0).sign(&OTHER_RELAY);
        forged.receipt.viewer = key(VIEWER);
        assert_noop!(settle(vec![forged]), Error::<Test>::BadSignature);
        let mut tampered = receipt(1, 10_000, 0).sign(&VIEWER);
        tampered.receipt.amount += 1;
        assert_noop!(settle(vec![tampered]), Error::<Test>::BadSignature);
    });
}

#[test]
fn a_bad_receipt_fails_the_whole_batch() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        let mut bad = receipt(2, 10_000, 0).sign(&VIEWER);
        bad.signature[0] ^= 1;
        assert_noop!(settle(vec![receipt(1, 5_000, 0).sign(&VIEWER), bad]), Error::<Test>::BadSignature);
    });
}

#[test]
fn receipt_for_another_relay_or_chain_is_rejected() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        let r = receipt(1, 1_000, 0).sign(&VIEWER);
        assert_noop!(Ferry::settle(origin(OTHER_RELAY), batch(vec![r])), Error::<Test>::WrongRelay);
        let mut other_chain = receipt(1, 1_000, 0);
        other_chain.domain = Domain([0xbb; 32]);
        assert_noop!(settle(vec![other_chain.sign(&VIEWER)]), Error::<Test>::WrongDomain);
    });
}

#[test]
fn an_unbonding_operator_still_settles_what_it_is_owed() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        assert_noop!(settle(vec![]), Error::<Test>::EmptyBatch);
        assert_ok!(Ferry::unregister_operator(origin(RELAY)));
        let relay0 = balance(RELAY);
        assert_ok!(settle(vec![receipt(1, 1_000, 0).sign(&VIEWER)]));
        assert_eq!(balance(RELAY), relay0 + Split::of(1_000, SHARE_BPS, FEE_BPS).operator);
    });
}

#[test]
fn totals_that_go_down_are_rejected() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        assert_ok!(settle(vec![receipt(2, 5_000, 100).sign(&VIEWER)]));
        assert_noop!(settle(vec![receipt(3, 4_000, 100).sign(&VIEWER)]), Error::<Test>::NotMonotonic);
        assert_noop!(settle(vec![receipt(3, 6_000, 50).sign(&VIEWER)]), Error::<Test>::NotMonotonic);
        assert_noop!(settle(vec![receipt(2, 6_000, 100).sign(&VIEWER)]), Error::<Test>::NotMonotonic);
    });
}

#[test]
fn a_receipt_must_name_the_claim_its_parties_make() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        assert_ok!(Ferry::register_content(origin(CREATOR), header(CREATOR, 0)));
        assert_ok!(settle(vec![receipt(1, 1_000, 0).sign(&VIEWER)]));
        // Other content under this claim's id, and this content under an id of the viewer's choosing.
        let mut r = receipt(2, 2_000, 0);
        r.content = header(CREATOR, 0).content_id();
        assert_noop!(settle(vec![r.sign(&VIEWER)]), Error::<Test>::WrongClaim);
        let mut r = receipt(2, 2_000, 0);
        r.claim = [7; 16];
        assert_noop!(settle(vec![r.sign(&VIEWER)]), Error::<Test>::WrongClaim);
        // The same content at a fresh claim id of its own is still this claim: the id is not the viewer's.
        assert_ok!(settle(vec![receipt(2, 2_000, 0).sign(&VIEWER)]));
        assert_eq!(Claims::<Test>::iter_prefix((account(RELAY), account(VIEWER))).count(), 1);
    });
}

#[test]
fn unknown_content_is_rejected() {
    new_test_ext().execute_with(|| {
        assert_ok!(Ferry::register_operator(origin(RELAY), b"p".to_vec(), PRICE, 1_000));
        assert_ok!(Ferry::open_lane(origin(VIEWER), account(RELAY), 10_000));
        assert_noop!(settle(vec![receipt(1, 1_000, 0).sign(&VIEWER)]), Error::<Test>::UnknownContent);
        assert_noop!(Ferry::tip(origin(VIEWER), content(), 5), Error::<Test>::UnknownContent);
    });
}

#[test]
fn a_dry_lane_pays_what_is_left_and_a_top_up_pays_the_rest() {
    new_test_ext().execute_with(|| {
        setup(6_000);
        let relay0 = balance(RELAY);
        let r = receipt(1, 10_000, 0).sign(&VIEWER);
        assert_ok!(settle(vec![r.clone()]));
        assert_eq!(balance(RELAY), relay0 + Split::of(6_000, SHARE_BPS, FEE_BPS).operator);
        assert_eq!(lane(VIEWER, RELAY), 0);
        // The event shows the shortfall.
        assert!(System::events()
            .iter()
            .any(|e| matches!(&e.event, RuntimeEvent::Ferry(Event::Settled { due: 10_000, paid: 6_000, .. }))));
        // The same receipt, once the lane has funds again, pays the rest and nothing more.
        assert_ok!(Ferry::open_lane(origin(VIEWER), account(RELAY), 50_000));
        assert_ok!(settle(vec![r.clone()]));
        assert_eq!(balance(RELAY), relay0 + Split::of(10_000, SHARE_BPS, FEE_BPS).operator);
        assert_eq!(lane(VIEWER, RELAY), 46_000);
        assert_ok!(settle(vec![r]));
        assert_eq!(lane(VIEWER, RELAY), 46_000);
    });
}

#[test]
fn settling_still_pays_while_the_lane_closes() {
    new_test_ext().execute_with(|| {
        setup(10_000);
        assert_ok!(Ferry::close_lane(origin(VIEWER), account(RELAY)));
        let relay0 = balance(RELAY);
        System::set_block_number(10);
        assert_ok!(settle(vec![receipt(1, 4_000, 0).sign(&VIEWER)]));
        assert_eq!(balance(RELAY), relay0 + Split::of(4_000, SHARE_BPS, FEE_BPS).operator);
        System::set_block_number(11);
        assert_ok!(Ferry::withdraw_lane(origin(VIEWER), account(RELAY)));
        assert_eq!(balance(VIEWER), START - 4_000);
    });
}

#[test]
fn tip_deltas_go_to_the_creator_less_the_fee() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        let creator0 = balance(CREATOR);
        assert_ok!(settle(vec![receipt(1, 0, 300).sign(&VIEWER)]));
        assert_ok!(settle(vec![receipt(2, 0, 500).sign(&VIEWER)]));
        assert_eq!(balance(CREATOR), creator0 + Split::tip(500, FEE_BPS).creator);
        assert_eq!(lane(VIEWER, RELAY), 99_500);
    });
}

#[test]
fn a_direct_tip_reaches_the_creator_less_the_fee() {
    new_test_ext().execute_with(|| {
        setup(0);
        let (viewer0, creator0, issuance0) = (balance(VIEWER), balance(CREATOR), Balances::total_issuance());
        assert_noop!(Ferry::tip(origin(VIEWER), content(), 0), Error::<Test>::ZeroAmount);
        assert_ok!(Ferry::tip(origin(VIEWER), content(), 1_000));
        assert_eq!(balance(VIEWER), viewer0 - 1_000);
        assert_eq!(balance(CREATOR), creator0 + 950);
        assert_eq!(Balances::total_issuance(), issuance0 - 50);
        System::assert_last_event(
            Event::Tipped {
                content: content(),
                from: account(VIEWER),
                creator: account(CREATOR),
                amount: 950,
                burned: 50,
            }
            .into(),
        );
    });
}

/// Attack 1 (squatting): settling a claim under one relay, at the highest seq, cannot block another relay's claim.
#[test]
fn a_claim_belongs_to_its_relay_and_viewer() {
    new_test_ext().execute_with(|| {
        setup(100_000);
        // The viewer, also an operator, settles a receipt for the same content at its own relay at the highest seq.
        assert_ok!(Ferry::register_operator(origin(VIEWER), b"v".to_vec(), PRICE, 1_000));
        assert_ok!(Ferry::open_lane(origin(VIEWER), account(VIEWER), 10));
        let mut squat = receipt(u64::MAX, 0, 0);
        squat.relay = key(VIEWER);
        assert_ok!(Ferry::settle(origin(VIEWER), batch(vec![reclaimed(squat).sign(&VIEWER)])));
        // Under RELAY's claim id it names RELAY, which only RELAY can settle.
        let mut squat = receipt(u64::MAX, 0, 0);
        squat.relay = key(VIEWER);
        assert_noop!(Ferry::settle(origin(VIEWER), batch(vec![squat.sign(&VIEWER)])), Error::<Test>::WrongClaim);
        // A stranger cannot settle the honest relay's receipt either.
        let honest = receipt(5, 10_000, 0).sign(&VIEWER);
        assert_noop!(Ferry::settle(origin(STRANGER), batch(vec![honest.clone()])), Error::<Test>::WrongRelay);
        let relay0 = balance(RELAY);
        assert_ok!(settle(vec![honest]));
        assert_eq!(balance(RELAY), relay0 + Split::of(10_000, SHARE_BPS, FEE_BPS).operator);
    });
}

/// Attack 2 (escrow escape): a viewer cannot pull back funds reserved for a relay, through tips, its own relay
/// or its own content, before the relay is paid.
#[test]
fn funds_reserved_for_a_relay_only_pay_that_relay() {
    new_test_ext().execute_with(|| {
        setup(20_000);
        // The viewer registers its own content (share 10000) and its own relay, and settles a receipt whose tip
        // is the whole reservation.
        let own = header(VIEWER, 10_000);
        assert_ok!(Ferry::register_content(origin(VIEWER), own.clone()));
        assert_ok!(Ferry::register_operator(origin(VIEWER), b"v".to_vec(), PRICE, 1_000));
        let mut escape = receipt(1, 0, 20_000);
        escape.relay = key(VIEWER);
        escape.content = own.content_id();
        assert_ok!(Ferry::settle(origin(VIEWER), batch(vec![reclaimed(escape).sign(&VIEWER)])));
        // Closing gives nothing back before the unbonding period.
        assert_ok!(Ferry::close_lane(origin(VIEWER), account(RELAY)));
        assert_noop!(Ferry::withdraw_lane(origin(VIEWER), account(RELAY)), Error::<Test>::StillUnbonding);
        let relay0 = balance(RELAY);
        assert_ok!(settle(vec![receipt(1, 20_000, 0).sign(&VIEWER)]));
        assert_eq!(balance(RELAY), relay0 + Split::of(20_000, SHARE_BPS, FEE_BPS).operator, "honest relay paid");
    });
}

/// Attack 8 (self-dealing): at any share, even 100%, playing viewer to yourself burns the fee.
#[test]
fn every_payment_burns_the_fee_whatever_the_share() {
    new_test_ext().execute_with(|| {
        assert_ok!(Ferry::register_operator(origin(RELAY), b"p".to_vec(), PRICE, 1_000));
        let own = header(RELAY, 10_000);
        assert_ok!(Ferry::register_content(origin(RELAY), own.clone()));
        assert_ok!(Ferry::open_lane(origin(RELAY), account(RELAY), 50_000));
        let (issuance0, wealth0) = (Balances::total_issuance(), balance(RELAY) + lane(RELAY, RELAY));
        let mut r = receipt(1, 20_000, 1_000);
        r.viewer = key(RELAY);
        r.content = own.content_id();
        assert_ok!(settle(vec![reclaimed(r).sign(&RELAY)]));
        assert_eq!(issuance0 - Balances::total_issuance(), 1_000 + 50, "the fee burns on the bytes and the tip");
        assert_eq!(balance(RELAY) + lane(RELAY, RELAY), wealth0 - 1_050, "self-dealing loses the fee");
    });
}

/// Attack 7 on chain: a creator payout below the existential deposit of an empty account used to fail the whole
/// batch for good. It is held and paid with the creator's next payout.
#[test]
fn a_payout_below_the_existential_deposit_is_held_not_failed() {
    new_test_ext().execute_with(|| {
        ExistentialDeposit::set(100);
        const NEW_CREATOR: [u8; 32] = [0x77; 32];
        setup(100_000);
        assert_ok!(Ferry::register_content(origin(NEW_CREATOR), header(NEW_CREATOR, 100)));
        let mut r = receipt(1, 1_000, 0);
        r.content = header(NEW_CREATOR, 100).content_id();
        assert_ok!(settle(vec![reclaimed(r).sign(&VIEWER)]));
        let held = Split::of(1_000, 100, FEE_BPS).creator;
        assert_eq!(Undelivered::<Test>::get(account(NEW_CREATOR)), held);
        assert_eq!(balance(NEW_CREATOR), 0);
        let mut r = receipt(2, 200_000 / 2, 0);
        r.content = header(NEW_CREATOR, 100).content_id();
        assert_ok!(settle(vec![reclaimed(r).sign(&VIEWER)]));
        assert_eq!(balance(NEW_CREATOR), Split::of(100_000, 100, FEE_BPS).creator);
        assert_eq!(Undelivered::<Test>::get(account(NEW_CREATOR)), 0);
        ExistentialDeposit::set(1);
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
            setup(100_000);
            let (relay0, creator0, issuance0) = (balance(RELAY), balance(CREATOR), Balances::total_issuance());
            for (i, amount) in steps.iter().enumerate() {
                assert_ok!(settle(vec![receipt(i as u64 + 1, *amount, 0).sign(&VIEWER)]));
            }
            (balance(RELAY) - relay0, balance(CREATOR) - creator0, issuance0 - Balances::total_issuance())
        })
    };
    let at_once = run(&[10_009]);
    let total = Split::of(10_009, SHARE_BPS, FEE_BPS);
    assert_eq!(at_once, (total.operator, total.creator, total.burn));
    assert_eq!(run(&[3, 7, 19, 2_503, 10_009]), at_once);
}

mod properties {
    //! Random sequences of lane opens, top-ups, closes, withdrawals, served receipts, settlements and tips by
    //! four accounts that are viewers, relays and creators at once. Each relay acknowledges a receipt only within
    //! its lane minus what the viewer already owes it (the node's rule), and settles before a closing lane's
    //! guarantee ends. After every step: issuance fell by exactly the burns, every settled acknowledged receipt
    //! was paid in full, and no account gained more than others paid it.

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const ACCOUNTS: [[u8; 32]; 4] = [VIEWER, RELAY, CREATOR, OTHER_RELAY];

    #[derive(Clone, Debug)]
    enum Op {
        Open { viewer: usize, relay: usize, amount: u128 },
        Close { viewer: usize, relay: usize },
        Withdraw { viewer: usize, relay: usize },
        Serve { viewer: usize, relay: usize, content: usize, amount: u128, tip: u128 },
        Settle { relay: usize },
        Tip { viewer: usize, content: usize, amount: u128 },
    }

    fn op() -> impl Strategy<Value = Op> {
        let who = || 0..ACCOUNTS.len();
        prop_oneof![
            (who(), who(), 1..50_000u128).prop_map(|(viewer, relay, amount)| Op::Open { viewer, relay, amount }),
            (who(), who()).prop_map(|(viewer, relay)| Op::Close { viewer, relay }),
            (who(), who()).prop_map(|(viewer, relay)| Op::Withdraw { viewer, relay }),
            (who(), who(), 0..2usize, 0..20_000u128, prop_oneof![Just(0u128), 0..2_000u128])
                .prop_map(|(viewer, relay, content, amount, tip)| Op::Serve { viewer, relay, content, amount, tip }),
            who().prop_map(|relay| Op::Settle { relay }),
            (who(), 0..2usize, 1..5_000u128).prop_map(|(viewer, content, amount)| Op::Tip { viewer, content, amount }),
        ]
    }

    /// What a relay acknowledged in one claim: the latest receipt and its totals.
    #[derive(Clone)]
    struct Acked {
        receipt: SignedReceipt,
    }

    struct Model {
        contents: [(usize, ContentHeader); 2],
        /// (relay, viewer, content) → the latest acknowledged receipt.
        acked: BTreeMap<(usize, usize, usize), Acked>,
        issuance0: u128,
        burned: u128,
        wealth0: [u128; 4],
        /// What each account was paid by others (payouts from others' lanes, tips from others).
        from_others: [u128; 4],
        /// What each account paid others.
        to_others: [u128; 4],
        /// Burns that came out of each account's funds (as viewer or tipper).
        burned_from: [u128; 4],
    }

    fn idx(who: &polkadot_sdk::sp_runtime::AccountId32) -> Option<usize> {
        ACCOUNTS.iter().position(|s| account(*s) == *who)
    }

    /// Free balance, plus the lanes the account funded, plus its bond and held payouts.
    fn wealth(i: usize) -> u128 {
        let me = account(ACCOUNTS[i]);
        let lanes: u128 = Lanes::<Test>::iter_prefix(&me).map(|(_, l)| l.funds).sum();
        let bond = crate::Operators::<Test>::get(&me).map_or(0, |o| o.bond);
        Balances::balance(&me) + lanes + bond + Undelivered::<Test>::get(&me)
    }

    impl Model {
        /// What `viewer` owes `relay` in acknowledged receipts the chain has not paid yet.
        fn owed(&self, relay: usize, viewer: usize) -> u128 {
            self.acked
                .iter()
                .filter(|((r, v, _), _)| *r == relay && *v == viewer)
                .map(|((r, v, _), a)| {
                    let paid =
                        Claims::<Test>::get((account(ACCOUNTS[*r]), account(ACCOUNTS[*v]), a.receipt.receipt.claim))
                            .map_or(0, |p| p.amount_paid + p.tip_paid);
                    a.receipt.receipt.amount + a.receipt.receipt.tip - paid
                })
                .sum()
        }

        fn settle(&mut self, relay: usize, only_viewer: Option<usize>) {
            let receipts: Vec<_> = self
                .acked
                .iter()
                .filter(|((r, v, _), _)| *r == relay && only_viewer.is_none_or(|o| o == *v))
                .map(|(_, a)| a.receipt.clone())
                .collect();
            if receipts.is_empty() {
                return;
            }
            assert_ok!(Ferry::settle(origin(ACCOUNTS[relay]), batch(receipts.clone())));
            for s in receipts {
                let r = &s.receipt;
                let viewer = polkadot_sdk::sp_runtime::AccountId32::from(r.viewer);
                let p = Claims::<Test>::get((account(ACCOUNTS[relay]), viewer, r.claim)).expect("settled");
                assert_eq!((p.amount_paid, p.tip_paid), (r.amount, r.tip), "an acknowledged receipt went unpaid");
            }
        }

        fn record_events(&mut self) {
            for e in System::events() {
                match e.event {
                    RuntimeEvent::Ferry(Event::Settled {
                        relay,
                        viewer,
                        content,
                        operator_paid,
                        creator_paid,
                        burned,
                        ..
                    }) => {
                        self.burned += burned;
                        let creator = Contents::<Test>::get(content).unwrap().creator;
                        let v = idx(&viewer).unwrap();
                        self.burned_from[v] += burned;
                        for (payee, amount) in [(relay, operator_paid), (creator, creator_paid)] {
                            let p = idx(&payee).unwrap();
                            if p != v {
                                self.from_others[p] += amount;
                                self.to_others[v] += amount;
                            }
                        }
                    }
                    RuntimeEvent::Ferry(Event::Tipped { from, creator, amount, burned, .. }) => {
                        self.burned += burned;
                        let (f, c) = (idx(&from).unwrap(), idx(&creator).unwrap());
                        self.burned_from[f] += burned;
                        if f != c {
                            self.from_others[c] += amount;
                            self.to_others[f] += amount;
                        }
                    }
                    _ => {}
                }
            }
        }

        fn check(&self) {
            assert_eq!(Balances::total_issuance(), self.issuance0 - self.burned, "issuance falls only by the burns");
            for i in 0..ACCOUNTS.len() {
                assert_eq!(
                    wealth(i) + self.to_others[i],
                    self.wealth0[i] + self.from_others[i] - self.burned_from[i],
                    "account {i}: wealth moves only by what others paid it, what it paid others and its burns"
                );
            }
        }
    }

    fn run(ops: Vec<Op>) {
        new_test_ext().execute_with(|| {
            for s in ACCOUNTS {
                assert_ok!(Ferry::register_operator(origin(s), b"p".to_vec(), PRICE, 1_000));
            }
            // Content 0 is the creator's; content 1 is the viewer's own at a 100% share.
            let contents = [(2, header(CREATOR, SHARE_BPS)), (0, header(VIEWER, 10_000))];
            for (c, h) in &contents {
                assert_ok!(Ferry::register_content(origin(ACCOUNTS[*c]), h.clone()));
            }
            let mut m = Model {
                contents,
                acked: BTreeMap::new(),
                issuance0: Balances::total_issuance(),
                burned: 0,
                wealth0: [0, 1, 2, 3].map(wealth),
                from_others: [0; 4],
                to_others: [0; 4],
                burned_from: [0; 4],
            };
            for op in ops {
                System::reset_events();
                match op {
                    Op::Open { viewer, relay, amount } => {
                        let _ = Ferry::open_lane(origin(ACCOUNTS[viewer]), account(ACCOUNTS[relay]), amount);
                    }
                    Op::Close { viewer, relay } => {
                        let _ = Ferry::close_lane(origin(ACCOUNTS[viewer]), account(ACCOUNTS[relay]));
                    }
                    Op::Withdraw { viewer, relay } => {
                        let lane = Lanes::<Test>::get(account(ACCOUNTS[viewer]), account(ACCOUNTS[relay]));
                        if let Some(until) = lane.closing_at {
                            // The relay settles before the guarantee ends, as the node does.
                            m.settle(relay, Some(viewer));
                            System::set_block_number(until.max(System::block_number()));
                            assert_ok!(Ferry::withdraw_lane(origin(ACCOUNTS[viewer]), account(ACCOUNTS[relay])));
                        }
                    }
                    Op::Serve { viewer, relay, content, amount, tip } => {
                        let lane = Lanes::<Test>::get(account(ACCOUNTS[viewer]), account(ACCOUNTS[relay]));
                        let prev = m.acked.get(&(relay, viewer, content)).map(|a| a.receipt.receipt.clone());
                        let cid = m.contents[content].1.content_id();
                        let (seq, a0, t0) = prev.as_ref().map_or((1, 0, 0), |p| (p.seq + 1, p.amount, p.tip));
                        // The relay's rule: serve only within the open lane minus what is already owed.
                        if lane.closing_at.is_some() || amount + tip > lane.funds.saturating_sub(m.owed(relay, viewer))
                        {
                            continue;
                        }
                        let r = Receipt {
                            domain: Domain(GENESIS),
                            claim: claim_id(&key(ACCOUNTS[relay]), &key(ACCOUNTS[viewer]), &cid),
                            relay: key(ACCOUNTS[relay]),
                            viewer: key(ACCOUNTS[viewer]),
                            content: cid,
                            seq,
                            bytes: seq * 1_000,
                            amount: a0 + amount,
                            chunk_chain: [0; 32],
                            tip: t0 + tip,
                        };
                        m.acked.insert((relay, viewer, content), Acked { receipt: r.sign(&ACCOUNTS[viewer]) });
                    }
                    Op::Settle { relay } => m.settle(relay, None),
                    Op::Tip { viewer, content, amount } => {
                        let _ = Ferry::tip(origin(ACCOUNTS[viewer]), m.contents[content].1.content_id(), amount);
                    }
                }
                m.record_events();
                m.check();
            }
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn money_is_never_taken_from_a_relay_and_self_dealing_never_pays(ops in proptest::collection::vec(op(), 1..80)) {
            run(ops);
        }
    }
}
