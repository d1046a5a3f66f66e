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
