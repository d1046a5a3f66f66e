//! The pallets `scripts/devchain weights` benchmarks in this runtime: Ferry's own. The rest keep their upstream weights.

polkadot_sdk::frame_benchmarking::define_benchmarks!([pallet_ferry, Ferry]);
