//! A runtime with only System, Balances and the Ferry pallet.

use crate as pallet_ferry;
use polkadot_sdk::frame_support::{derive_impl, parameter_types, PalletId};
use polkadot_sdk::sp_runtime::{traits::IdentityLookup, AccountId32, BuildStorage};
use polkadot_sdk::{frame_support, frame_system, pallet_balances, sp_io};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Ferry: pallet_ferry,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountId = AccountId32;
    type Lookup = IdentityLookup<AccountId32>;
    type AccountData = pallet_balances::AccountData<u128>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type Balance = u128;
    type AccountStore = System;
    type ExistentialDeposit = ExistentialDeposit;
}

parameter_types! {
    /// A test can raise it to see payouts below the existential deposit.
    pub static ExistentialDeposit: u128 = 1;
    pub const FerryPalletId: PalletId = PalletId(*b"ferry/rw");
}

impl pallet_ferry::Config for Test {
    type Currency = Balances;
    type PalletId = FerryPalletId;
    type MinBond = frame_support::traits::ConstU128<1_000>;
    type UnbondingPeriod = frame_support::traits::ConstU64<10>;
    type FeeBps = frame_support::traits::ConstU16<500>;
    type MaxBatch = frame_support::traits::ConstU32<64>;
    type MaxPeerIdLen = frame_support::traits::ConstU32<64>;
    type WeightInfo = ();
}

pub const VIEWER: [u8; 32] = [0x11; 32];
pub const RELAY: [u8; 32] = [0x22; 32];
pub const CREATOR: [u8; 32] = [0x33; 32];
pub const OTHER_RELAY: [u8; 32] = [0x44; 32];
pub const STRANGER: [u8; 32] = [0x66; 32];
pub const GENESIS: [u8; 32] = [0xaa; 32];
pub const START: u128 = 1_000_000;

pub fn account(secret: [u8; 32]) -> AccountId32 {
    AccountId32::from(ferry_primitives::signing::public_key(&secret))
}

pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    pallet_balances::GenesisConfig::<Test> {
        balances: [VIEWER, RELAY, CREATOR, OTHER_RELAY, STRANGER].iter().map(|s| (account(*s), START)).collect(),
        ..Default::default()
    }
    .assimilate_storage(&mut t)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(t);
    ext.execute_with(|| {
        System::set_block_number(1);
        frame_system::BlockHash::<Test>::insert(0, polkadot_sdk::sp_core::H256(GENESIS));
    });
    ext
}
