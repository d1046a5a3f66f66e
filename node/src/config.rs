//! Node configuration: `$FERRY_HOME/config.toml`, overridden by `FERRY_<SECTION>_<KEY>` environment variables
//! (every key: `FERRY_RELAY_CACHE_BYTES`, `FERRY_CHAIN_URL`, …), overridden by flags.
//!
//! Every field has a default, so a missing file or key is fine; an unknown key is an error, so a typo never
//! silently does nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not valid: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
    #[error("environment variable {0}={1:?}: {2}")]
    Env(String, String, String),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub relay: RelayConfig,
    pub viewer: ViewerConfig,
    pub publish: PublishConfig,
    pub chain: ChainConfig,
    pub api: ApiConfig,
}

/// The REST API and the web app a relay serves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 7070)) }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    pub listen: Vec<String>,
    /// Addresses others reach this relay at that it cannot see itself (a router's public address with a port
    /// forwarded here); announced as they are.
    pub external_addresses: Vec<String>,
    pub bootstrap: Vec<String>,
    pub price_per_mib: u128,
    /// Most this relay pays per MiB when it fills its cache from another relay; 0 means its own price.
    pub max_upstream_price_per_mib: u128,
    pub credit_window_bytes: u64,
    pub cache_bytes: u64,
    /// Memory for the videos used last, kept after their last request (relays and viewers alike).
    pub memory_cache_bytes: u64,
    pub metrics: Option<SocketAddr>,
    pub max_sessions_per_peer: usize,
    pub max_streams_per_peer: usize,
    pub max_streams: usize,
    pub streams_per_second_per_peer: u32,
    pub new_viewers_per_minute: u32,
    /// Circuits this relay carries for relays behind NAT: most bytes and seconds per circuit (bytes 0: no limit).
    pub circuit_max_bytes: u64,
    pub circuit_max_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewerConfig {
    pub bootstrap: Vec<String>,
    /// Where a relay behind NAT can reach this viewer when it hole-punches; never announced.
    pub listen: Vec<String>,
    pub gateway: SocketAddr,
    pub stall_timeout_ms: u64,
    pub prefetch_segments: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    pub creator_share_bps: u16,
    pub segment_seconds: u32,
    pub renditions: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// A batch is settled once what it claims is this many times its fee.
    pub settle_fee_multiple: u32,
    /// A claim this old is settled as soon as it pays for its fee; a viewer with a claim unsettled for twice
    /// this long is not served until it is settled.
    pub settle_max_age_ms: u64,
    /// What `ferry watch` (and a relay filling its cache) reserves for a relay it pays, when it opens or tops up
    /// the lane to it.
    pub lane_amount: u128,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: vec!["/ip4/0.0.0.0/tcp/4001".into(), "/ip4/0.0.0.0/udp/4001/quic-v1".into()],
            external_addresses: vec![],
            bootstrap: vec![],
            price_per_mib: 100_000_000,
            max_upstream_price_per_mib: 0,
            credit_window_bytes: 2 << 20,
            cache_bytes: 10 << 30,
            memory_cache_bytes: 256 << 20,
            metrics: None,
            max_sessions_per_peer: 16,
            max_streams_per_peer: 16,
            max_streams: 4096,
            streams_per_second_per_peer: 200,
            new_viewers_per_minute: 60,
            circuit_max_bytes: 256 << 20,
            circuit_max_seconds: 3600,
        }
    }
}

impl Default for ViewerConfig {
    fn default() -> Self {
        ViewerConfig {
            bootstrap: vec![],
            listen: vec!["/ip4/0.0.0.0/tcp/0".into(), "/ip4/0.0.0.0/udp/0/quic-v1".into()],
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
            settle_fee_multiple: 200,
            settle_max_age_ms: 120_000,
            lane_amount: 100_000_000_000,
        }
    }
}

impl Config {
    /// Reads `home/config.toml` (a missing file gives the defaults), then the `FERRY_<SECTION>_<KEY>`
    /// environment variables.
    pub fn load(home: &Path) -> Result<Config, ConfigError> {
        // Not `vars()`: it panics on a variable that is not UTF-8, and such a variable cannot be one of ours.
        let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Config::load_with(home, env)
    }

    fn load_with(home: &Path, env: impl Iterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError::Read(path, e)),
        };
        // The file alone first, so its errors keep their line numbers and are not blamed on a variable.
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse(path.clone(), e))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse(path.clone(), e))?;
        let from_env = apply_env(&mut table, env)?;
        if !from_env.is_empty() {
            // Through TOML text: `toml::Value` cannot give u128s.
            cfg = toml::from_str(&table.to_string()).map_err(|e: toml::de::Error| {
                ConfigError::Invalid(path.clone(), format!("{} (set by {})", e.message(), from_env.join(", ")))
            })?;
        }
        cfg.check().map_err(|e| ConfigError::Invalid(path, e))?;
        Ok(cfg)
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

/// What a key holds, as the template shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Text,
    Other,
}

/// Every key the template names (commented-out ones too), by section, and what it holds.
fn keys() -> Vec<(&'static str, &'static str, Kind)> {
    let mut section = "";
    let mut out = Vec::new();
    for line in TEMPLATE.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s;
            continue;
        }
        let line = line.strip_prefix("# ").unwrap_or(line);
        if let Some((key, value)) = line.split_once(" = ") {
            if !section.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                let kind = match value.chars().next() {
                    Some('[') => Kind::List,
                    Some('"') => Kind::Text,
                    _ => Kind::Other,
                };
                out.push((section, key, kind));
            }
        }
    }
    out
}

/// Sets `[section] key` from each `FERRY_<SECTION>_<KEY>` in `env`; returns the variables used. Lists take
/// comma-separated values (or a TOML array); other values are TOML (a number, `true`) or else a string.
fn apply_env(table: &mut toml::Table, env: impl Iterator<Item = (String, String)>) -> Result<Vec<String>, ConfigError> {
    let keys = keys();
    let mut used = Vec::new();
    for (name, raw) in env {
        let Some((section, key, kind)) =
            keys.iter().find(|(s, k, _)| name == format!("FERRY_{}_{}", s.to_uppercase(), k.to_uppercase())).copied()
        else {
            continue;
        };
        let as_toml = toml::from_str::<toml::Table>(&format!("v = {raw}")).ok().and_then(|mut t| t.remove("v"));
        let value = match (kind, as_toml) {
            (Kind::List, Some(v @ toml::Value::Array(_))) => v,
            (Kind::List, _) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            ),
            // A hash like 0x00… would otherwise read as the number 0.
            (Kind::Text, _) | (Kind::Other, None) => toml::Value::String(raw.clone()),
            (Kind::Other, Some(v)) => v,
        };
        let section = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| ConfigError::Env(name.clone(), raw.clone(), format!("[{section}] is not a table")))?;
        section.insert(key.to_string(), value);
        used.push(name);
    }
    Ok(used)
}

/// The commented file `ferry init` writes; it parses to the defaults.
pub const TEMPLATE: &str = r#"# Ferry node configuration.
# Every key can also be set by an environment variable FERRY_<SECTION>_<KEY> (FERRY_RELAY_CACHE_BYTES=…; lists
# comma-separated), which overrides this file; flags override both. Remove a line to get its default.

[relay]
# Addresses to listen on (TCP and QUIC). A listen address on a given IP (not 0.0.0.0) is also announced.
listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
# Addresses others reach this relay at, when it cannot see them itself: behind a home router that forwards port
# 4001 (TCP and UDP) to this machine, the router's public address, e.g. "/ip4/203.0.113.7/tcp/4001". Without
# them a relay learns its public address from other relays (AutoNAT); one that nobody can dial asks its
# bootstrap relays for a circuit and is reached through it, upgraded to a direct connection where the NAT allows.
external_addresses = []
# Relays to join the network through, e.g. "/ip4/203.0.113.5/tcp/4001/p2p/12D3Koo...".
bootstrap = []
# Price of one MiB of verified video, in the chain's smallest unit (0.0001 UNIT: 0.1 UNIT a GiB). Settling one
# receipt costs about 5.5·10^7 in fees on the dev chain, what half a MiB earns at this price (BENCHMARKS.md).
price_per_mib = 100000000
# Most this relay pays per MiB to fill its cache from another relay; 0 means its own price.
max_upstream_price_per_mib = 0
# Bytes a viewer may have received ahead of its acknowledged receipts, over all its sessions with this relay
# (about one segment). What a viewer received and never paid for stays charged to it for an hour.
credit_window_bytes = 2097152
# Disk space for videos cached from other relays (published videos are kept regardless).
cache_bytes = 10737418240
# Memory for the videos used last, kept after their last request: a relay's popular segments, a viewer's prefetch.
memory_cache_bytes = 268435456
# Prometheus metrics endpoint, e.g. "127.0.0.1:9464". Off when unset.
# metrics = "127.0.0.1:9464"
max_sessions_per_peer = 16
max_streams_per_peer = 16
max_streams = 4096
streams_per_second_per_peer = 200
# Sessions for viewer accounts this relay has not seen yet, per peer and per IP address (with a chain).
new_viewers_per_minute = 60
# Circuits this relay carries, unpaid, for relays behind NAT until hole punching connects them directly (or for
# good where their NAT does not allow it): most bytes (0: no limit) and seconds per circuit. A relay carries
# circuits only once others can reach it.
circuit_max_bytes = 268435456
circuit_max_seconds = 3600

[viewer]
bootstrap = []
# Ports a relay behind NAT reaches this viewer at when it hole-punches (any free port); never announced.
listen = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
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
# Settle when it pays: a batch goes on chain once it claims this many times its fee (200: fees at most 0.5%),
settle_fee_multiple = 200
# or once a claim is this old and pays more than the fee. A viewer whose claim stays unsettled for twice this long
# is not served until it is (keep it well under the chain's UnbondingPeriod: 600 blocks).
settle_max_age_ms = 120000
# What `ferry watch` (and a relay filling its cache) reserves on chain for each relay it pays, when it opens or
# tops up the lane to it (0.1 UNIT). Unused funds come back with `ferry lane close` and `ferry lane withdraw`.
lane_amount = 100000000000

[api]
# The REST API and the web app (http://127.0.0.1:7070/), served by `ferry relay`. Routes that spend money or change
# anything need the token in api-token beside this file; the address `ferry relay` prints carries it. Anyone who
# can reach this address can read the node's status, catalogue and earnings: keep it on loopback, or put a proxy
# with its own authentication in front. With the default address, a port in use is replaced by a free one.
enabled = true
listen = "127.0.0.1:7070"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_the_chain_cannot_take_is_refused_when_the_config_loads() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(CONFIG_FILE), TEMPLATE.replace("settle_batch = 1024", "settle_batch = 5000"))
            .unwrap();
        let e = Config::load(home.path()).unwrap_err().to_string();
        assert!(e.contains("settle_batch = 5000 must be between 1 and 2048"), "{e}");
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
    fn every_key_can_be_set_from_the_environment() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(CONFIG_FILE), TEMPLATE).unwrap();
        let env = [
            ("FERRY_RELAY_CACHE_BYTES", "1234"),
            ("FERRY_RELAY_EXTERNAL_ADDRESSES", "/ip4/203.0.113.7/tcp/4001, /ip4/203.0.113.7/udp/4001/quic-v1"),
            ("FERRY_RELAY_METRICS", "127.0.0.1:9464"),
            ("FERRY_CHAIN_URL", "ws://127.0.0.1:9944"),
            ("FERRY_CHAIN_GENESIS", "0x0000000000000000000000000000000000000000000000000000000000000001"),
            ("FERRY_VIEWER_BOOTSTRAP", r#"["/ip4/10.0.0.1/tcp/4001/p2p/x"]"#),
            // Not a config key: left alone.
            ("FERRY_CHAIN_KIND", "node"),
        ];
        let cfg = Config::load_with(home.path(), env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        assert_eq!(cfg.relay.cache_bytes, 1234);
        assert_eq!(cfg.relay.external_addresses.len(), 2);
        assert_eq!(cfg.relay.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(cfg.chain.url.as_deref(), Some("ws://127.0.0.1:9944"));
        assert!(cfg.chain.genesis.ends_with("01"), "a hash stays text: {}", cfg.chain.genesis);
        assert_eq!(cfg.viewer.bootstrap, vec!["/ip4/10.0.0.1/tcp/4001/p2p/x".to_string()]);

        let bad = [("FERRY_RELAY_CACHE_BYTES", "lots")].map(|(k, v)| (k.to_string(), v.to_string()));
        let e = Config::load_with(home.path(), bad.into_iter()).unwrap_err().to_string();
        assert!(e.contains("FERRY_RELAY_CACHE_BYTES"), "{e}");
    }

    #[test]
    fn the_template_names_every_key() {
        // The template is where `keys()` (and so the environment variables) come from: it must list every field.
        let fields = serde_json::to_value(Config::default()).unwrap();
        let mut from_struct: Vec<(String, String)> = fields
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(s, v)| v.as_object().unwrap().keys().map(move |k| (s.clone(), k.clone())))
            .collect();
        let mut from_template: Vec<(String, String)> =
            keys().into_iter().map(|(s, k, _)| (s.to_string(), k.to_string())).collect();
        from_struct.sort();
        from_template.sort();
        assert_eq!(from_template, from_struct);
    }

    #[test]
    fn unknown_key_is_an_error() {
        assert!(toml::from_str::<Config>("[relay]\nprice = 3\n").is_err());
    }
}
