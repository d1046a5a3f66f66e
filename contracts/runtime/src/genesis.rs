//! Genesis presets. The `development` preset is `chain-spec/development.json`: funded dev accounts (Alice, Bob),
//! Alice as the Aura authority and sudo, para id 1000, and the demo operator, creator and viewer.

use alloc::vec::Vec;
use polkadot_sdk::sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET};

const DEVELOPMENT: &[u8] = include_bytes!("../../../chain-spec/development.json");

pub fn preset(id: &PresetId) -> Option<Vec<u8>> {
    let id: &str = id.as_ref();
    (id == DEV_RUNTIME_PRESET).then(|| DEVELOPMENT.to_vec())
}

pub fn preset_names() -> Vec<PresetId> {
    alloc::vec![PresetId::from(DEV_RUNTIME_PRESET)]
}
