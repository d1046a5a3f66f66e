//! The Ferry runtime as a wasm blob, for tools that embed it. `scripts/devchain runtime` builds this crate and reads
//! the blob from `<target>/release/wbuild/ferry-runtime/`.
#![no_std]

#[cfg(feature = "wasm")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));
