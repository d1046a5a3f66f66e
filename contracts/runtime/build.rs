fn main() {
    #[cfg(feature = "wasm")]
    substrate_wasm_builder::WasmBuilder::build_using_defaults();
}
