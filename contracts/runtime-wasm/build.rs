//! The wasm builder compiles another crate's wasm when asked to: pointing it at the runtime from here, rather than
//! from the runtime's own build script, skips the native (std) build of the runtime and its dependency tree, which
//! a chain needs no part of. The options are those of `build_using_defaults`.
fn main() {
    #[cfg(feature = "wasm")]
    build();
}

#[cfg(feature = "wasm")]
fn build() {
    use std::path::Path;
    // Read when the script runs, not baked in when it is compiled: cargo reuses a compiled build script for a
    // clone at another path.
    let here = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let runtime = Path::new(&here).join("../runtime/Cargo.toml");
    // The builder finds the runtime in `cargo metadata` by comparing manifest paths, which are canonical there.
    let runtime =
        runtime.canonicalize().unwrap_or_else(|e| panic!("the runtime's manifest at {}: {e}", runtime.display()));
    substrate_wasm_builder::WasmBuilder::new()
        .with_project(runtime)
        .unwrap_or_else(|e| panic!("{e}"))
        .import_memory()
        .export_heap_base()
        .build();
}
