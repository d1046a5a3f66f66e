//! Weights of the Ferry pallet.
//!
//! Not yet benchmarked: these are estimates (one ed25519 host verification ≈ 50 µs, plus the storage accesses each
//! call makes, at RocksDB read/write costs). `benchmarking.rs` and the generated `SubstrateWeight` replace them.

use polkadot_sdk::frame_support::weights::{constants::RocksDbWeight, Weight};

pub trait WeightInfo {
    fn register_operator() -> Weight;
    fn unregister_operator() -> Weight;
    fn withdraw_bond() -> Weight;
    fn register_content() -> Weight;
    fn deposit() -> Weight;
    fn unbond() -> Weight;
    fn withdraw() -> Weight;
    fn settle(n: u32) -> Weight;
    fn tip() -> Weight;
}

impl WeightInfo for () {
    fn register_operator() -> Weight {
        Weight::from_parts(40_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(3, 3))
    }
    fn unregister_operator() -> Weight {
        Weight::from_parts(20_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(1, 1))
    }
    fn withdraw_bond() -> Weight {
        Weight::from_parts(40_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(3, 3))
    }
    fn register_content() -> Weight {
        Weight::from_parts(20_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(1, 1))
    }
    fn deposit() -> Weight {
        Weight::from_parts(40_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(3, 3))
    }
    fn unbond() -> Weight {
        Weight::from_parts(20_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(1, 1))
    }
    fn withdraw() -> Weight {
        Weight::from_parts(40_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(3, 3))
    }
    fn settle(n: u32) -> Weight {
        // Per batch: the operator, the genesis hash, and one transfer per payee plus the burn.
        // Per receipt: one ed25519 verification, its session, content and escrow.
        Weight::from_parts(60_000_000, 8_000)
            .saturating_add(RocksDbWeight::get().reads_writes(6, 4))
            .saturating_add(Weight::from_parts(80_000_000, 600).saturating_mul(n as u64))
            .saturating_add(RocksDbWeight::get().reads_writes(3, 2).saturating_mul(n as u64))
    }
    fn tip() -> Weight {
        Weight::from_parts(30_000_000, 4_000).saturating_add(RocksDbWeight::get().reads_writes(3, 2))
    }
}
