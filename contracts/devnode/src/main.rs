//! Ferry's dev-chain node: the omni-node for parachain-template runtimes (Aura, u32 blocks),
//! built without the relay-chain runtimes that the published binary compiles in.

#[cfg(target_os = "linux")]
extern crate polkadot_jemalloc_shim;

use polkadot_omni_node_lib::{
    chain_spec::DiskChainSpecLoader, extra_subcommand::NoExtraSubcommand, run_with_custom_cli,
    runtime::DefaultRuntimeResolver, CliConfig as CliConfigT, RunConfig, NODE_VERSION,
};

struct CliConfig;

impl CliConfigT for CliConfig {
    fn impl_version() -> String {
        format!("{NODE_VERSION}-ferry")
    }

    fn author() -> String {
        env!("CARGO_PKG_AUTHORS").into()
    }

    fn support_url() -> String {
        "https://github.com/ferry-network/ferry/issues".into()
    }

    fn copyright_start_year() -> u16 {
        2026
    }
}

fn main() -> color_eyre::eyre::Result<()> {
    color_eyre::install()?;
    let config = RunConfig::new(Box::new(DefaultRuntimeResolver), Box::new(DiskChainSpecLoader));
    Ok(run_with_custom_cli::<CliConfig, NoExtraSubcommand>(config)?)
}
