//! `ferry chain up|down|status`: a local dev chain running the Ferry runtime, for trying Ferry on one machine.
//!
//! Two kinds, both running the same runtime wasm and both cached outside the clone:
//! - the real node (`scripts/devchain install` and `spec`): block production, finality and restarts as on a live
//!   chain, but its first build takes well over an hour on 2 cores;
//! - Chopsticks (`scripts/fastchain spec`): the runtime in Chopsticks' executor, installed in minutes; one block
//!   per transaction, final at once, a fixed genesis hash.
//!
//! This starts the one asked for (or the real node if it is installed, else Chopsticks) detached on 127.0.0.1,
//! stops it, and reports its blocks.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The dev node version `scripts/devchain install` builds.
pub const NODE_VERSION: &str = "0.24.0";

/// Which dev chain runs the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// The real node (`scripts/devchain install`).
    Node,
    /// Chopsticks (`scripts/fastchain install`).
    Chopsticks,
}

impl std::fmt::Display for ChainKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChainKind::Node => "the real dev node",
            ChainKind::Chopsticks => "Chopsticks (one block per transaction, final at once)",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevChainError {
    #[error(
        "the dev node is not installed at {0}; run `scripts/devchain install` (one time, well over an hour on 2 cores)"
    )]
    NoNode(PathBuf),
    #[error("no chain spec at {0}; run `scripts/devchain spec`")]
    NoSpec(PathBuf),
    #[error(
        "Chopsticks is not installed at {0}; run `scripts/fastchain spec` (a few minutes, plus the runtime build)"
    )]
    NoChopsticks(PathBuf),
    #[error(
        "no dev chain is installed: run `scripts/fastchain spec` for the fast one (minutes), or `scripts/devchain \
         install && scripts/devchain spec` for the real node (well over an hour on 2 cores)"
    )]
    NoneInstalled,
    #[error(
        "a chain this command did not start (another kind, or another program) answers on port {0}; stop it \
         (`ferry chain down`, or the program that runs it) to start afresh, or pick another port with --rpc-port"
    )]
    Running(u16),
    #[error(
        "something still listens on port {0}, or the chain this command started there is still alive, so its state \
         was kept: stop what runs there (a chain `ferry chain up` did not start, such as `scripts/fastchain run`), \
         then run this again"
    )]
    InUse(u16),
    #[error("cannot start the dev chain: {0}")]
    Spawn(std::io::Error),
    #[error("the dev chain exited at start; the end of its log {0}:\n{1}")]
    Exited(PathBuf, String),
    #[error("the dev chain did not produce a block within {0:?}; see {1}")]
    NoBlocks(Duration, PathBuf),
    #[error(
        "port {0} was taken while the dev node started, so it listened elsewhere and was stopped; pick another port \
         with --rpc-port"
    )]
    PortTaken(u16),
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
    pub kind: ChainKind,
    /// The node binary, or Chopsticks' start script (run by `node`).
    pub program: PathBuf,
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
    /// The chain of `kind`, at the paths under `cache` (`~/.cache/ferry` unless `FERRY_CACHE` says otherwise) where
    /// `scripts/devchain` and `scripts/fastchain` install them.
    pub fn in_cache(kind: ChainKind, cache: &Path, rpc_port: u16, block_ms: u64) -> DevChain {
        match kind {
            ChainKind::Node => DevChain {
                kind,
                program: cache.join("bin").join(format!("ferry-devnode-{NODE_VERSION}")),
                spec: cache.join("devchain").join("spec.json"),
                dir: cache.join("devchain"),
                rpc_port,
                block_ms,
            },
            ChainKind::Chopsticks => DevChain {
                kind,
                program: cache.join("chopsticks").join("up.mjs"),
                spec: cache.join("chopsticks").join("run").join("spec.raw.json"),
                dir: cache.join("chopsticks").join("run"),
                rpc_port,
                block_ms,
            },
        }
    }

    /// The chain of `kind`, or without one the real node if it is installed, else Chopsticks if it is.
    pub fn pick(
        kind: Option<ChainKind>,
        cache: &Path,
        rpc_port: u16,
        block_ms: u64,
    ) -> Result<DevChain, DevChainError> {
        if let Some(kind) = kind {
            return Ok(DevChain::in_cache(kind, cache, rpc_port, block_ms));
        }
        [ChainKind::Node, ChainKind::Chopsticks]
            .into_iter()
            .map(|k| DevChain::in_cache(k, cache, rpc_port, block_ms))
            .find(DevChain::installed)
            .ok_or(DevChainError::NoneInstalled)
    }

    /// Both the program and the chain spec are there.
    pub fn installed(&self) -> bool {
        self.program.exists() && self.spec.exists()
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    /// Named as `scripts/fastchain` names them, so the script and `ferry chain` see the same chain.
    fn file(&self, ext: &str) -> PathBuf {
        let stem = match self.kind {
            ChainKind::Node => "node",
            ChainKind::Chopsticks => "chopsticks",
        };
        self.dir.join(format!("{stem}-{}.{ext}", self.rpc_port))
    }

    fn pid_file(&self) -> PathBuf {
        self.file("pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.file("log")
    }

    /// Starts the node unless one already answers on the port, keeping its database unless `fresh`; returns once
    /// a block exists. `fresh` stops this chain first if `ferry chain up` started it.
    /// `false` with the status: a chain already answered on the port (of either kind, or another program).
    pub async fn up(&self, fresh: bool) -> Result<(Status, bool), DevChainError> {
        if let Ok(s) = self.status().await {
            if !fresh {
                return Ok((s, false));
            }
            // A chain this command did not start (another kind, another program) is not ours to wipe.
            if !self.down().await? || self.status().await.is_ok() {
                return Err(DevChainError::Running(self.rpc_port));
            }
        }
        if !self.program.exists() {
            return Err(match self.kind {
                ChainKind::Node => DevChainError::NoNode(self.program.clone()),
                ChainKind::Chopsticks => DevChainError::NoChopsticks(self.program.clone()),
            });
        }
        if !self.spec.exists() {
            return Err(match self.kind {
                ChainKind::Node => DevChainError::NoSpec(self.spec.clone()),
                ChainKind::Chopsticks => DevChainError::NoChopsticks(self.spec.clone()),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| DevChainError::Io(self.dir.clone(), e))?;
        if fresh {
            self.forget()?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .map_err(|e| DevChainError::Io(self.log_file(), e))?;
        let log2 = log.try_clone().map_err(|e| DevChainError::Io(self.log_file(), e))?;
        // The log is kept across starts: only what this start writes is read below.
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.command();
        cmd.stdin(std::process::Stdio::null()).stdout(log).stderr(log2);
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
            if self.kind == ChainKind::Node && !self.node_took_our_port(log_start) {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(self.pid_file());
                return Err(DevChainError::PortTaken(self.rpc_port));
            }
            if let Ok(s) = self.status().await {
                if s.best >= 1 {
                    return Ok((s, true));
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(DevChainError::NoBlocks(limit, self.log_file()))
    }

    /// False once the node's log (from byte `from`) shows it serving JSON-RPC on another IPv4 port than ours: when
    /// the port is taken, the node picks a free one and says so only there.
    fn node_took_our_port(&self, from: u64) -> bool {
        use std::io::{Read, Seek};
        let mut log = Vec::new();
        if let Ok(mut f) = std::fs::File::open(self.log_file()) {
            if f.seek(std::io::SeekFrom::Start(from)).is_ok() {
                let _ = f.read_to_end(&mut log);
            }
        }
        match String::from_utf8_lossy(&log).lines().find_map(|l| l.split_once("Running JSON-RPC server: addr=")) {
            Some((_, addrs)) => addrs.split(',').any(|a| a.trim() == format!("127.0.0.1:{}", self.rpc_port)),
            None => true,
        }
    }

    /// The chain's state on this port: the node's database folder, or Chopsticks' database file and the spec
    /// hash kept beside it.
    fn state(&self) -> Vec<PathBuf> {
        match self.kind {
            ChainKind::Node => vec![self.dir.join(format!("data-{}", self.rpc_port))],
            ChainKind::Chopsticks => ["sqlite", "sqlite-wal", "sqlite-shm", "sqlite.spec"]
                .iter()
                .map(|ext| self.dir.join(format!("db-{}.{ext}", self.rpc_port)))
                .collect(),
        }
    }

    /// Deletes this port's chain state. Refused while anything listens on the port, answering or not, or while the
    /// process its pid file names lives: a chain must never lose its database under it.
    pub fn forget(&self) -> Result<(), DevChainError> {
        let rpc = std::net::SocketAddr::from(([127, 0, 0, 1], self.rpc_port));
        let listening = std::net::TcpStream::connect_timeout(&rpc, Duration::from_millis(500)).is_ok();
        let started_here_lives = self.pid()?.is_some_and(|pid| signal(&pid, "-0"));
        if listening || started_here_lives {
            return Err(DevChainError::InUse(self.rpc_port));
        }
        self.remove_state()
    }

    /// The process id in this port's pid file, if there is one.
    fn pid(&self) -> Result<Option<String>, DevChainError> {
        match std::fs::read_to_string(self.pid_file()) {
            Ok(p) => Ok(Some(p.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DevChainError::Io(self.pid_file(), e)),
        }
    }

    fn remove_state(&self) -> Result<(), DevChainError> {
        for path in self.state() {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(DevChainError::Io(path, e)),
                _ => {}
            }
        }
        Ok(())
    }

    fn command(&self) -> std::process::Command {
        let port = self.rpc_port.to_string();
        match self.kind {
            ChainKind::Node => {
                let mut cmd = std::process::Command::new(&self.program);
                cmd.arg("--chain")
                    .arg(&self.spec)
                    .args(["--dev", "--dev-block-time", &self.block_ms.to_string(), "--base-path"])
                    .arg(self.dir.join(format!("data-{port}")))
                    .args(["--rpc-port", &port, "--listen-addr", "/ip4/127.0.0.1/tcp/0"])
                    .args(["--no-prometheus", "--no-telemetry", "--no-mdns", "--rpc-cors", "all"]);
                cmd
            }
            ChainKind::Chopsticks => {
                // The Node.js that installed Chopsticks (`scripts/fastchain install` links it beside the modules):
                // its sqlite3 module loads in no other, and the one on PATH may be older.
                let dir = self.program.parent().unwrap_or(Path::new("."));
                let node = Some(dir.join("node")).filter(|n| n.exists()).unwrap_or_else(|| "node".into());
                let mut cmd = std::process::Command::new(node);
                cmd.arg(&self.program)
                    .arg(&self.spec)
                    .arg(&port)
                    .arg(self.dir.join(format!("db-{port}.sqlite")))
                    .env("FERRY_CHOPSTICKS_DIR", dir);
                cmd
            }
        }
    }

    /// Stops the chain this port's pid file names; `false` when none was running.
    pub async fn down(&self) -> Result<bool, DevChainError> {
        let Some(pid) = self.pid()? else { return Ok(false) };
        let alive = |sig: &str| signal(&pid, sig);
        let was_running = alive("-TERM");
        let started = Instant::now();
        while was_running && alive("-0") {
            if started.elapsed() > Duration::from_secs(20) {
                alive("-KILL");
                while started.elapsed() < Duration::from_secs(25) && alive("-0") {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
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

/// Sends `sig` (`-0` only asks whether it lives) to process `pid`; whether it was delivered.
fn signal(pid: &str, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([sig, pid])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
