//! `ferry chain up|down|status`: a local dev chain running the Ferry runtime, for trying Ferry on one machine.
//!
//! `scripts/devchain install` builds the pinned dev node and `scripts/devchain spec` the chain spec, both cached
//! outside the clone; this starts that node detached on 127.0.0.1, stops it, and reports its blocks.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The dev node version `scripts/devchain install` builds.
pub const NODE_VERSION: &str = "0.24.0";

#[derive(Debug, thiserror::Error)]
pub enum DevChainError {
    #[error(
        "the dev node is not installed at {0}; run `scripts/devchain install` (one time, well over an hour on 2 cores)"
    )]
    NoNode(PathBuf),
    #[error("no chain spec at {0}; run `scripts/devchain spec`")]
    NoSpec(PathBuf),
    #[error("cannot start the dev node: {0}")]
    Spawn(std::io::Error),
    #[error("the dev node exited at start; the end of its log {0}:\n{1}")]
    Exited(PathBuf, String),
    #[error("the dev node did not produce a block within {0:?}; see {1}")]
    NoBlocks(Duration, PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no answer: {0}")]
    Http(#[from] reqwest::Error),
    #[error("not JSON-RPC: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone)]
pub struct DevChain {
    pub node: PathBuf,
    pub spec: PathBuf,
    /// Pid file, log and database live here, one set per RPC port.
    pub dir: PathBuf,
    pub rpc_port: u16,
    pub block_ms: u64,
}

/// What the node's RPC says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub url: String,
    pub best: u64,
    pub finalized: u64,
    pub genesis: String,
}

impl DevChain {
    /// Paths under `cache` (`~/.cache/ferry` unless `FERRY_CACHE` says otherwise), as the install script makes them.
    pub fn in_cache(cache: &Path, rpc_port: u16, block_ms: u64) -> DevChain {
        DevChain {
            node: cache.join("bin").join(format!("ferry-devnode-{NODE_VERSION}")),
            spec: cache.join("devchain").join("spec.json"),
            dir: cache.join("devchain"),
            rpc_port,
            block_ms,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join(format!("node-{}.pid", self.rpc_port))
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join(format!("node-{}.log", self.rpc_port))
    }

    /// Starts the node unless one already answers on the port, keeping its database unless `fresh`; returns once
    /// a block exists.
    pub async fn up(&self, fresh: bool) -> Result<Status, DevChainError> {
        if let Ok(s) = self.status().await {
            return Ok(s);
        }
        if !self.node.exists() {
            return Err(DevChainError::NoNode(self.node.clone()));
        }
        if !self.spec.exists() {
            return Err(DevChainError::NoSpec(self.spec.clone()));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| DevChainError::Io(self.dir.clone(), e))?;
        let data = self.dir.join(format!("data-{}", self.rpc_port));
        if fresh && data.exists() {
            std::fs::remove_dir_all(&data).map_err(|e| DevChainError::Io(data.clone(), e))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .map_err(|e| DevChainError::Io(self.log_file(), e))?;
        let log2 = log.try_clone().map_err(|e| DevChainError::Io(self.log_file(), e))?;
        let mut cmd = std::process::Command::new(&self.node);
        cmd.arg("--chain")
            .arg(&self.spec)
            .args(["--dev", "--dev-block-time", &self.block_ms.to_string(), "--base-path"])
            .arg(&data)
            .args(["--rpc-port", &self.rpc_port.to_string(), "--listen-addr", "/ip4/127.0.0.1/tcp/0"])
            .args(["--no-prometheus", "--no-telemetry", "--no-mdns", "--rpc-cors", "all"])
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own process group: Ctrl-C in the terminal that ran `ferry chain up` does not stop the chain.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(DevChainError::Spawn)?;
        std::fs::write(self.pid_file(), child.id().to_string()).map_err(|e| DevChainError::Io(self.pid_file(), e))?;
        let limit = Duration::from_secs(120);
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                let _ = std::fs::remove_file(self.pid_file());
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
                return Err(DevChainError::Exited(self.log_file(), tail));
            }
            if let Ok(s) = self.status().await {
                if s.best >= 1 {
                    return Ok(s);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(DevChainError::NoBlocks(limit, self.log_file()))
    }

    /// Stops the node this port's pid file names; `false` when none was running.
    pub async fn down(&self) -> Result<bool, DevChainError> {
        let pid = match std::fs::read_to_string(self.pid_file()) {
            Ok(p) => p.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(DevChainError::Io(self.pid_file(), e)),
        };
        let alive = |sig: &str| {
            std::process::Command::new("kill")
                .args([sig, &pid])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let was_running = alive("-TERM");
        let started = Instant::now();
        while was_running && alive("-0") {
            if started.elapsed() > Duration::from_secs(20) {
                alive("-KILL");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::remove_file(self.pid_file());
        Ok(was_running)
    }

    /// Best and finalized block numbers and the genesis hash, from the node's JSON-RPC.
    pub async fn status(&self) -> Result<Status, StatusError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("http://127.0.0.1:{}", self.rpc_port);
        let call = |method: &'static str, params: serde_json::Value| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let body = serde_json::json!({"id": 1, "jsonrpc": "2.0", "method": method, "params": params});
                let reply = http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send()
                    .await?
                    .bytes()
                    .await?;
                let v: serde_json::Value = serde_json::from_slice(&reply)?;
                Ok::<_, StatusError>(v["result"].clone())
            }
        };
        let number = |v: &serde_json::Value| {
            v["number"].as_str().and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok()).unwrap_or(0)
        };
        let best = number(&call("chain_getHeader", serde_json::json!([])).await?);
        let fin_hash = call("chain_getFinalizedHead", serde_json::json!([])).await?;
        let finalized = number(&call("chain_getHeader", serde_json::json!([fin_hash])).await?);
        let genesis =
            call("chain_getBlockHash", serde_json::json!([0])).await?.as_str().unwrap_or_default().to_string();
        Ok(Status { url: self.url(), best, finalized, genesis })
    }
}
