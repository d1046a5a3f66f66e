//! Node configuration: `$FERRY_HOME/config.toml`, overridden by `FERRY_*` environment variables and flags.
//!
//! Every field has a default, so a missing file or key is fine; an unknown key is an error, so a typo never
//! silently does nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not valid: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub relay: RelayConfig,
    pub viewer: ViewerConfig,
    pub publish: PublishConfig,
    pub chain: ChainConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    pub listen: Vec<String>,
    pub bootstrap: Vec<String>,
    pub price_per_mib: u128,
    /// Most this relay pays per MiB when it fills its cache from another relay; 0 means its own price.
    pub max_upstream_price_per_mib: u128,
    pub credit_window_bytes: u64,
    pub cache_bytes: u64,
    pub metrics: Option<SocketAddr>,
    pub max_sessions_per_peer: usize,
    pub max_streams_per_peer: usize,
    pub max_streams: usize,
    pub streams_per_second_per_peer: u32,
    pub new_viewers_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewerConfig {
    pub bootstrap: Vec<String>,
    pub gateway: SocketAddr,
    pub stall_timeout_ms: u64,
    pub prefetch_segments: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    pub creator_share_bps: u16,
    pub segment_seconds: u32,
    pub renditions: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Genesis hash of the chain receipts pay on (`0x…`); all zeros means "no chain yet".
    pub genesis: String,
    /// WebSocket RPC of a chain node (e.g. `ws://127.0.0.1:9944`); unset means no chain.
    pub url: Option<String>,
    /// Pause between settlement rounds when nothing is left to settle.
    pub settle_every_ms: u64,
    /// Most receipts per settlement transaction.
    pub settle_batch: usize,
    /// What `ferry watch` (and a relay filling its cache) reserves for a relay it pays, when it opens or tops up
    /// the lane to it.
    pub lane_amount: u128,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/4001".into(), "/ip4/0.0.0.0/udp/4001/quic-v1".into()],
            bootstrap: vec![],
            price_per_mib: 1_000,
            max_upstream_price_per_mib: 0,
            credit_window_bytes: 2 << 20,
            cache_bytes: 10 << 30,
            metrics: None,
            max_sessions_per_peer: 16,
            max_streams_per_peer: 16,
            max_streams: 4096,
            streams_per_second_per_peer: 200,
            new_viewers_per_minute: 60,
        }
    }
}

impl Default for ViewerConfig {
    fn default() -> Self {
        ViewerConfig {
            bootstrap: vec![],
            gateway: SocketAddr::from(([127, 0, 0, 1], 8080)),
            stall_timeout_ms: 5_000,
            prefetch_segments: 3,
        }
    }
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig { creator_share_bps: 2_000, segment_seconds: 2, renditions: 2 }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            genesis: format!("0x{}", "00".repeat(32)),
            url: None,
            settle_every_ms: 6_000,
            settle_batch: 1_024,
            lane_amount: 10_000_000_000,
        }
    }
}

impl Config {
    /// Reads `home/config.toml`; a missing file gives the defaults.
    pub fn load(home: &Path) -> Result<Config, ConfigError> {
        let path = home.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse(path.clone(), e))?;
                cfg.check().map_err(|e| ConfigError::Invalid(path, e))?;
                Ok(cfg)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(ConfigError::Read(path, e)),
        }
    }

    /// Values that parse but that the relay cannot work with.
    fn check(&self) -> Result<(), String> {
        let max = ferry_primitives::MAX_SETTLE_BATCH as usize;
        if !(1..=max).contains(&self.chain.settle_batch) {
            return Err(format!(
                "settle_batch = {} must be between 1 and {max}, the most receipts the chain takes in one transaction",
                self.chain.settle_batch
            ));
        }
        Ok(())
    }
}

/// The commented file `ferry init` writes; it parses to the defaults.
pub const TEMPLATE: &str = r#"# Ferry node configuration.
# Flags override FERRY_* environment variables, which override this file. Remove a line to get its default.

[relay]
# Addresses to listen on (TCP and QUIC).
listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
# Relays to join the network through, e.g. "/ip4/203.0.113.5/tcp/4001/p2p/12D3Koo...".
bootstrap = []
# Price of one MiB of verified video, in the chain's smallest unit.
price_per_mib = 1000
# Most this relay pays per MiB to fill its cache from another relay; 0 means its own price.
max_upstream_price_per_mib = 0
# Bytes served ahead of the viewer's last acknowledged receipt (about one segment).
credit_window_bytes = 2097152
# Disk space for videos cached from other relays (published videos are kept regardless).
cache_bytes = 10737418240
# Prometheus metrics endpoint, e.g. "127.0.0.1:9464". Off when unset.
# metrics = "127.0.0.1:9464"
max_sessions_per_peer = 16
max_streams_per_peer = 16
max_streams = 4096
streams_per_second_per_peer = 200
# Sessions for viewer accounts this relay has not seen yet, per peer and per IP address (with a chain).
new_viewers_per_minute = 60

[viewer]
bootstrap = []
# Where `ferry watch` serves HLS to your player.
gateway = "127.0.0.1:8080"
# Switch relays when no byte arrives for this long.
stall_timeout_ms = 5000
prefetch_segments = 3

[publish]
# Your share of every payment for your videos, in basis points (2000 = 20%).
creator_share_bps = 2000
segment_seconds = 2
renditions = 2

[chain]
# Genesis hash of the settlement chain; receipts signed for one chain are worthless on another.
genesis = "0x0000000000000000000000000000000000000000000000000000000000000000"
# Chain node RPC for settlement, lanes and tips, e.g. "ws://127.0.0.1:9944". Off when unset.
# With a url and the all-zero genesis above, the genesis is read from the chain.
# url = "ws://127.0.0.1:9944"
# Pause between settlement rounds when nothing is left to settle, and most receipts per transaction (1 to 2048).
settle_every_ms = 6000
settle_batch = 1024
# What `ferry watch` (and a relay filling its cache) reserves on chain for each relay it pays, when it opens or
# tops up the lane to it (0.01 UNIT). Unused funds come back with `ferry lane close` and `ferry lane withdraw`.
lane_amount = 10000000000
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_the_chain_cannot_take_is_refused_when_the_config_loads() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(CONFIG_FILE), TEMPLATE.replace("settle_batch = 1024", "settle_batch = 4096"))
            .unwrap();
        let e = Config::load(home.path()).unwrap_err().to_string();
        assert!(e.contains("settle_batch = 4096 must be between 1 and 2048"), "{e}");
        std::fs::write(home.path().join(CONFIG_FILE), TEMPLATE).unwrap();
        assert_eq!(Config::load(home.path()).unwrap().chain.settle_batch, 1024);
    }

    #[test]
    fn template_parses_to_defaults() {
        let parsed: Config = toml::from_str(TEMPLATE).unwrap();
        let d = Config::default();
        assert_eq!(parsed.relay.listen, d.relay.listen);
        assert_eq!(parsed.relay.price_per_mib, d.relay.price_per_mib);
        assert_eq!(parsed.relay.cache_bytes, d.relay.cache_bytes);
        assert_eq!(parsed.viewer.gateway, d.viewer.gateway);
        assert_eq!(parsed.publish.creator_share_bps, d.publish.creator_share_bps);
        assert_eq!(parsed.chain.genesis, d.chain.genesis);
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert!(toml::from_str::<Config>("[relay]\nprice = 3\n").is_err());
    }
}
