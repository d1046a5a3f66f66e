//! The runtime's genesis preset and metadata, checked natively (no node needed).

use ferry_runtime::{Runtime, RuntimeGenesisConfig};
use polkadot_sdk::sp_genesis_builder::DEV_RUNTIME_PRESET;
use polkadot_sdk::*;

/// The metadata the node's subxt client is generated from. Regenerate after a runtime change with
/// `FERRY_BLESS=1 cargo test -p ferry-runtime --test runtime`.
const METADATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/metadata.scale");

#[test]
fn committed_metadata_matches_the_runtime() {
    let now: Vec<u8> = sp_io::TestExternalities::default()
        .execute_with(|| Runtime::metadata_at_version(16).expect("metadata v16").to_vec());
    if std::env::var_os("FERRY_BLESS").is_some() {
        std::fs::write(METADATA, &now).unwrap();
    }
    let committed = std::fs::read(METADATA).expect("contracts/runtime/metadata.scale");
    assert!(
        committed == now,
        "the runtime changed but metadata.scale did not: run FERRY_BLESS=1 cargo test -p ferry-runtime --test runtime, \
         then rebuild the node so its chain client matches"
    );
}

#[test]
fn development_preset_builds_a_genesis_with_funded_demo_accounts() {
    let patch = ferry_runtime::genesis::preset(&DEV_RUNTIME_PRESET.into()).expect("development preset");
    let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
    let patch: serde_json::Value = serde_json::from_slice(&patch).unwrap();
    json_merge(&mut config, patch);
    let storage = sp_runtime::BuildStorage::build_storage(
        &serde_json::from_value::<RuntimeGenesisConfig>(config).expect("preset fits the genesis config"),
    )
    .expect("genesis builds");
    sp_io::TestExternalities::new(storage).execute_with(|| {
        assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 1);
        assert_eq!(u32::from(staging_parachain_info::Pallet::<Runtime>::parachain_id()), 1000);
        for seed in ["ferry/demo/operator", "ferry/demo/creator", "ferry/demo/viewer"] {
            let secret: [u8; 32] = blake2_256(seed.as_bytes());
            let account = sp_runtime::AccountId32::from(ferry_primitives::signing::public_key(&secret));
            assert!(pallet_balances::Pallet::<Runtime>::free_balance(&account) > 0, "{seed} is funded");
        }
    });
}

fn blake2_256(data: &[u8]) -> [u8; 32] {
    sp_io::hashing::blake2_256(data)
}

fn json_merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// How many receipts one block of the dev chain can settle, from the benchmarked weights (`scripts/devchain
/// weights` prints it). Batches of at most `MaxBatch` receipts, each its own extrinsic, fill the normal class.
#[test]
fn receipts_per_block() {
    use ferry_primitives::SignedReceipt;
    use frame_support::{dispatch::DispatchClass, traits::Get, weights::Weight};
    use pallet_ferry::WeightInfo;
    use parity_scale_codec::MaxEncodedLen;

    let weights = ferry_runtime::RuntimeBlockWeights::get();
    let normal = weights.get(DispatchClass::Normal);
    let (max_total, max_extrinsic) = (normal.max_total.unwrap(), normal.max_extrinsic.unwrap());
    let max_length = *ferry_runtime::RuntimeBlockLength::get().max.get(DispatchClass::Normal) as usize;
    let max_batch: u32 = <Runtime as pallet_ferry::Config>::MaxBatch::get();
    type W = <Runtime as pallet_ferry::Config>::WeightInfo;
    // How many receipts fit one block when the content they name is `shape`: one piece for the whole batch, or one
    // each (with a creator each: the worst case).
    let per_block = |own_content: bool| {
        // What `Pallet::settle_weight` charges a batch of `b` such receipts.
        let weight = |b: u32| match own_content {
            true => W::settle_own_content(b),
            false if b == 1 => W::settle_own_content(1),
            false => W::settle_shared_content(b - 1).saturating_add(W::settle_own_content(1)),
        };
        let block = |n: u32| {
            let batches = (0..n.div_ceil(max_batch)).map(|i| max_batch.min(n - i * max_batch));
            let mut total = Weight::zero();
            for b in batches {
                if weight(b).any_gt(max_extrinsic) {
                    return None;
                }
                total = total.saturating_add(weight(b)).saturating_add(normal.base_extrinsic);
            }
            Some(total)
        };
        let fits = |n: u32| {
            block(n).is_some_and(|w| w.all_lte(max_total))
                && n as usize * SignedReceipt::max_encoded_len() <= max_length
        };
        let (mut lo, mut hi) = (0u32, 10_000_000u32);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let used = block(lo).unwrap_or_default();
        println!(
            "receipts per block, {}: {lo} ({} batches of at most {max_batch}; {:.3} s of {:.3} s compute, {} of {} \
             proof bytes, {} of {max_length} bytes of block length)",
            if own_content { "each naming its own content" } else { "all naming one piece of content" },
            lo.div_ceil(max_batch),
            used.ref_time() as f64 / 1e12,
            max_total.ref_time() as f64 / 1e12,
            used.proof_size(),
            max_total.proof_size(),
            lo as usize * SignedReceipt::max_encoded_len(),
        );
        lo
    };
    let (shared, own) = (per_block(false), per_block(true));
    // Proof size no longer binds (the runtime's MAXIMUM_BLOCK_WEIGHT); compute does, mostly the database's share.
    // 3,977 with the weights measured on 2026-11-30: a drop of a tenth is a regression to look at.
    assert!(shared >= 3_600, "the weights let one block settle only {shared} receipts of one piece of content");
    assert!(max_batch <= own, "a batch of MaxBatch = {max_batch} receipts does not always fit in one block ({own} do)");
}

/// Fees follow load, and a block full of long, light calls is load: stuffing blocks to keep settlements out
/// raises what it costs with every block, and fees fall back to the minimum once blocks empty.
#[test]
fn load_by_length_raises_fees() {
    use frame_support::dispatch::DispatchClass;
    use pallet_transaction_payment::Multiplier;
    use sp_runtime::traits::{Convert, One};
    use sp_runtime::FixedPointNumber;
    type Adjust = ferry_runtime::LoadFeeAdjustment;

    sp_io::TestExternalities::default().execute_with(|| {
        let one = Multiplier::one();
        let max_length = *ferry_runtime::RuntimeBlockLength::get().max.get(DispatchClass::Normal);
        frame_system::BlockSize::<Runtime>::put(max_length);
        let mut m = one;
        for _ in 0..600 {
            m = Adjust::convert(m);
        }
        // 600 full blocks: (1 + 0.003 × 0.75 + ...)^600, about 3.9.
        assert!(m > Multiplier::saturating_from_rational(38, 10), "600 blocks full by length raise fees to {m}");
        assert!(m < Multiplier::saturating_from_rational(40, 10), "{m}");

        frame_system::BlockSize::<Runtime>::put(0);
        let down = Adjust::convert(m);
        assert!(down < m, "an empty block lowers fees");
        let mut low = down;
        for _ in 0..10_000 {
            low = Adjust::convert(low);
        }
        assert_eq!(low, one, "never below the minimum: weight is always charged in full");
    });
}
