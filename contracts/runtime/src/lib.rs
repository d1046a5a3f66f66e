//! The Ferry dev-chain runtime: the parachain-template shape the omni-node expects (Aura, u32 blocks, parachain
//! system), with the pallets Ferry needs and nothing else: no XCM, no collator selection, no session rotation.
#![cfg_attr(not(feature = "std"), no_std)]
#![recursion_limit = "256"]

extern crate alloc;

mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod genesis;

use alloc::vec::Vec;
use polkadot_sdk::frame_support::{
    derive_impl,
    dispatch::DispatchClass,
    parameter_types,
    traits::{ConstBool, ConstU128, ConstU16, ConstU32, ConstU64, ConstU8},
    weights::{
        constants::{BlockExecutionWeight, ExtrinsicBaseWeight, RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        ConstantMultiplier, Weight,
    },
    PalletId,
};
use polkadot_sdk::frame_system::limits::{BlockLength, BlockWeights};
use polkadot_sdk::pallet_transaction_payment::{Multiplier, MultiplierUpdate};
use polkadot_sdk::sp_runtime::{
    generic, impl_opaque_keys,
    traits::{BlakeTwo256, Bounded, Convert, IdentifyAccount, One, Saturating, Verify},
    FixedPointNumber, MultiAddress, MultiSignature, Perbill, Perquintill,
};
use polkadot_sdk::sp_version::RuntimeVersion;
use polkadot_sdk::*;

pub use polkadot_sdk::sp_consensus_aura::sr25519::AuthorityId as AuraId;

/// Accounts sign with `MultiSignature`, so an ed25519 node identity signs its own extrinsics.
pub type Signature = MultiSignature;
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
pub type Balance = u128;
pub type Nonce = u32;
pub type Hash = sp_core::H256;
pub type BlockNumber = u32;
pub type Address = MultiAddress<AccountId, ()>;
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);

pub type UncheckedExtrinsic = generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;

pub type Executive =
    frame_executive::Executive<Runtime, Block, frame_system::ChainContext<Runtime>, Runtime, AllPalletsWithSystem>;

/// Types the node sees without knowing the runtime's.
pub mod opaque {
    use super::*;
    pub use polkadot_sdk::sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;
    pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
    pub type Block = generic::Block<Header, UncheckedExtrinsic>;
}

impl_opaque_keys! {
    pub struct SessionKeys {
        pub aura: Aura,
    }
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("ferry-dev"),
    impl_name: alloc::borrow::Cow::Borrowed("ferry-dev"),
    authoring_version: 1,
    spec_version: 3,
    impl_version: 0,
    apis: apis::RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// The omni-node's dev mode gives every block its own 6 s slot, whatever `--dev-block-time` is.
pub const MILLISECS_PER_BLOCK: u64 = 6000;
pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;

pub const UNIT: Balance = 1_000_000_000_000;
pub const MILLIUNIT: Balance = 1_000_000_000;
pub const EXISTENTIAL_DEPOSIT: Balance = MILLIUNIT;

const AVERAGE_ON_INITIALIZE_RATIO: Perbill = Perbill::from_percent(5);
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
/// Two seconds of compute per block, as the parachain template allows, and no bound on proof size. This chain runs
/// on its own (the omni-node's dev mode): no relay chain ever receives a proof of validity, so proof size is not a
/// resource of its blocks, as in polkadot-sdk's solochain template. Run as a parachain, the runtime would take back
/// `relay_chain::MAX_POV_SIZE` here (BENCHMARKS.md says what a block could then settle).
const MAXIMUM_BLOCK_WEIGHT: Weight = Weight::from_parts(WEIGHT_REF_TIME_PER_SECOND.saturating_mul(2), u64::MAX);

const UNINCLUDED_SEGMENT_CAPACITY: u32 = 3;
const BLOCK_PROCESSING_VELOCITY: u32 = 1;
const RELAY_CHAIN_SLOT_DURATION_MILLIS: u32 = 6000;

type ConsensusHook = cumulus_pallet_aura_ext::FixedVelocityConsensusHook<
    Runtime,
    RELAY_CHAIN_SLOT_DURATION_MILLIS,
    BLOCK_PROCESSING_VELOCITY,
    UNINCLUDED_SEGMENT_CAPACITY,
>;

parameter_types! {
    pub const Version: RuntimeVersion = VERSION;
    pub RuntimeBlockLength: BlockLength = BlockLength::builder()
        .max_length(5 * 1024 * 1024)
        .modify_max_length_for_class(DispatchClass::Normal, |m| *m = NORMAL_DISPATCH_RATIO * *m)
        .build();
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::builder()
        .base_block(BlockExecutionWeight::get())
        .for_class(DispatchClass::all(), |weights| {
            weights.base_extrinsic = ExtrinsicBaseWeight::get();
        })
        .for_class(DispatchClass::Normal, |weights| {
            weights.max_total = Some(NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
        })
        .for_class(DispatchClass::Operational, |weights| {
            weights.max_total = Some(MAXIMUM_BLOCK_WEIGHT);
            weights.reserved = Some(MAXIMUM_BLOCK_WEIGHT - NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
        })
        .avg_block_initialization(AVERAGE_ON_INITIALIZE_RATIO)
        .build_or_panic();
    pub const SS58Prefix: u16 = 42;
    pub const FerryPalletId: PalletId = PalletId(*b"ferry/rw");
}

#[derive_impl(frame_system::config_preludes::ParaChainDefaultConfig)]
impl frame_system::Config for Runtime {
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type Block = Block;
    type BlockHashCount = ConstU32<256>;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type DbWeight = RocksDbWeight;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type SS58Prefix = SS58Prefix;
    type OnSetCode = cumulus_pallet_parachain_system::ParachainSetCode<Self>;
    type MaxConsumers = ConstU32<16>;
}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Aura;
    type MinimumPeriod = ConstU64<0>;
    type WeightInfo = ();
}

impl cumulus_pallet_parachain_system::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnSystemEvent = ();
    type SelfParaId = staging_parachain_info::Pallet<Runtime>;
    type OutboundXcmpMessageSource = ();
    type DmpQueue = ();
    type ReservedDmpWeight = ();
    type XcmpMessageHandler = ();
    type ReservedXcmpWeight = ();
    type CheckAssociatedRelayNumber = cumulus_pallet_parachain_system::RelayNumberMonotonicallyIncreases;
    type WeightInfo = ();
    type ConsensusHook = ConsensusHook;
    type RelayParentOffset = ConstU32<0>;
    type SchedulingSignatureVerifier = ();
}

impl staging_parachain_info::Config for Runtime {}

impl pallet_aura::Config for Runtime {
    type AuthorityId = AuraId;
    type DisabledValidators = ();
    type MaxAuthorities = ConstU32<32>;
    type AllowMultipleBlocksPerSlot = ConstBool<false>;
    type SlotDuration = ConstU64<SLOT_DURATION>;
}

impl cumulus_pallet_aura_ext::Config for Runtime {}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Runtime {
    type Balance = Balance;
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ConstU32<50>;
}

parameter_types! {
    /// Each byte of a block costs this: by arithmetic, filling the normal part of a block (3.75 MiB) costs about
    /// 0.39 UNIT, so keeping settlements out of every block for one `UnbondingPeriod` (600 blocks) over 236 UNIT.
    pub const TransactionByteFee: Balance = 100_000;
    /// Fees rise while blocks are fuller than this and fall back to the minimum below it.
    pub const TargetBlockFullness: Perquintill = Perquintill::from_percent(25);
    /// How fast: a full block raises fees by about 0.23%, so 600 full blocks multiply them by about 3.9.
    pub AdjustmentVariable: Multiplier = Multiplier::saturating_from_rational(3, 1_000);
    /// Weight is always charged in full.
    pub MinimumMultiplier: Multiplier = Multiplier::one();
    pub MaximumMultiplier: Multiplier = Bounded::max_value();
}

/// One unit of fee per nanosecond of compute (a thousand units of weight), before the load multiplier. By the
/// benchmarked weights, a settlement of one receipt comes to about 1.5·10^7 for its compute and a block's whole
/// compute to 1.5·10^9, so block length, at `TransactionByteFee`, is what a block costs most (arithmetic, not a run).
pub struct NanosecondFee;

impl polkadot_sdk::frame_support::weights::WeightToFee for NanosecondFee {
    type Balance = Balance;
    fn weight_to_fee(weight: &Weight) -> Balance {
        Balance::from(weight.ref_time()) / 1_000
    }
}

/// Fees follow load, by the formula of polkadot-sdk's `TargetedFeeAdjustment`, but a block's load is the fuller of
/// its normal-class weight and its length: blocks stuffed with long, light calls raise fees too.
pub struct LoadFeeAdjustment;

impl MultiplierUpdate for LoadFeeAdjustment {
    fn min() -> Multiplier {
        MinimumMultiplier::get()
    }
    fn max() -> Multiplier {
        MaximumMultiplier::get()
    }
    fn target() -> Perquintill {
        TargetBlockFullness::get()
    }
    fn variability() -> Multiplier {
        AdjustmentVariable::get()
    }
}

impl Convert<Multiplier, Multiplier> for LoadFeeAdjustment {
    fn convert(previous: Multiplier) -> Multiplier {
        let previous = previous.max(Self::min());
        let weights = RuntimeBlockWeights::get();
        let max_weight = weights.get(DispatchClass::Normal).max_total.unwrap_or(weights.max_block).ref_time().max(1);
        let weight = System::block_weight().get(DispatchClass::Normal).ref_time().min(max_weight);
        let max_length = u64::from(*RuntimeBlockLength::get().max.get(DispatchClass::Normal)).max(1);
        let length = u64::from(System::block_size()).min(max_length);
        let load = Perquintill::from_rational(weight, max_weight).max(Perquintill::from_rational(length, max_length));
        // Perquintill and Multiplier (FixedU128) both count in 10^18 parts.
        let load = Multiplier::from_inner(u128::from(load.deconstruct()));
        let target = Multiplier::from_inner(u128::from(Self::target().deconstruct()));
        let v = Self::variability();
        let first = v.saturating_mul(if load >= target { load - target } else { target - load });
        let second = first.saturating_mul(first) / Multiplier::saturating_from_integer(2);
        let next = if load >= target {
            previous.saturating_add(previous.saturating_mul(first.saturating_add(second)))
        } else {
            previous.saturating_sub(previous.saturating_mul(first.saturating_sub(second)))
        };
        next.clamp(Self::min(), Self::max())
    }
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<Balances, ()>;
    type WeightToFee = NanosecondFee;
    type LengthToFee = ConstantMultiplier<Balance, TransactionByteFee>;
    type FeeMultiplierUpdate = LoadFeeAdjustment;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightInfo = ();
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = ();
}

impl pallet_ferry::Config for Runtime {
    type Currency = Balances;
    type PalletId = FerryPalletId;
    type MinBond = ConstU128<{ 10 * UNIT }>;
    /// Ten minutes of 1 s dev blocks.
    type UnbondingPeriod = ConstU32<600>;
    /// 5% of every payment burns.
    type FeeBps = ConstU16<500>;
    type MaxBatch = ConstU32<{ ferry_primitives::MAX_SETTLE_BATCH }>;
    type MaxPeerIdLen = ConstU32<64>;
    type WeightInfo = pallet_ferry::weights::SubstrateWeight<Runtime>;
}

#[frame_support::runtime]
mod runtime {
    #[runtime::runtime]
    #[runtime::derive(
        RuntimeCall,
        RuntimeEvent,
        RuntimeError,
        RuntimeOrigin,
        RuntimeFreezeReason,
        RuntimeHoldReason,
        RuntimeSlashReason,
        RuntimeLockId,
        RuntimeTask,
        RuntimeViewFunction
    )]
    pub struct Runtime;

    #[runtime::pallet_index(0)]
    pub type System = frame_system;
    #[runtime::pallet_index(1)]
    pub type ParachainSystem = cumulus_pallet_parachain_system;
    #[runtime::pallet_index(2)]
    pub type Timestamp = pallet_timestamp;
    #[runtime::pallet_index(3)]
    pub type ParachainInfo = staging_parachain_info;
    #[runtime::pallet_index(10)]
    pub type Balances = pallet_balances;
    #[runtime::pallet_index(11)]
    pub type TransactionPayment = pallet_transaction_payment;
    #[runtime::pallet_index(15)]
    pub type Sudo = pallet_sudo;
    #[runtime::pallet_index(23)]
    pub type Aura = pallet_aura;
    #[runtime::pallet_index(24)]
    pub type AuraExt = cumulus_pallet_aura_ext;
    #[runtime::pallet_index(50)]
    pub type Ferry = pallet_ferry;
}

cumulus_pallet_parachain_system::register_validate_block! {
    Runtime = Runtime,
    BlockExecutor = cumulus_pallet_aura_ext::BlockExecutor::<Runtime, Executive>,
}
