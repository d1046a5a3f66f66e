//! Runs a runtime's FRAME pallet benchmarks from its wasm, with the same arguments as
//! `frame-omni-bencher v1 benchmark pallet`. The dev node already links frame-benchmarking-cli;
//! building this beside it reuses that work instead of compiling the published bencher's own lock.

use clap::Parser;
use frame_benchmarking_cli::PalletCmd;
use sp_runtime::traits::BlakeTwo256;
use tracing_subscriber::EnvFilter;

/// Host functions a parachain runtime may call beyond the Polkadot host's standard set.
type HostFunctions = (
    sp_statement_store::runtime_api::HostFunctions,
    cumulus_primitives_proof_size_hostfunction::storage_proof_size::HostFunctions,
);

#[derive(Debug, Parser)]
#[command(author, version, about)]
enum Command {
    /// Benchmark the extrinsics of a runtime's pallets, given as `--runtime <wasm>`.
    Pallet(Box<PalletCmd>),
}

fn main() -> sc_cli::Result<()> {
    // The wasm compiler logs every function at info; only the benchmark's own output is of use here.
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for noisy in ["cranelift_codegen", "wasm_cranelift", "wasmtime_jit", "wasmtime_cranelift", "wasm_jit"] {
        filter = filter.add_directive(format!("{noisy}=off").parse().map_err(|e| format!("{e}"))?);
    }
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    match Command::parse() {
        Command::Pallet(cmd) => cmd.run_with_spec::<BlakeTwo256, HostFunctions>(None),
    }
}
