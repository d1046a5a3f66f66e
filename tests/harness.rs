//! Test harness: real `ferry` processes on 127.0.0.1, real video made by ffmpeg, real players (ffprobe, curl).
//!
//! Every process writes its log to a file in its home; a test that fails prints those logs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry_primitives::{Domain, Receipt, SignedReceipt};

pub mod netns;
pub mod stuffer;

/// The `ferry` binary to test: `FERRY_BIN` (scripts/test sets it to the one cargo built with the fault-injection
/// feature), else the one `cargo build` put next to this test's folder.
pub fn ferry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FERRY_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let bin = dir.join("ferry");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p ferry-node --bin ferry --features fault-injection` first, or set FERRY_BIN \
         (scripts/test does)",
        bin.display()
    );
    bin
}

/// A test's own folder. With `FERRY_KEEP_TEST_DIRS=1` it is kept after the test, with every log in it, and its
/// path is printed.
pub fn test_root() -> Result<tempfile::TempDir> {
    let mut dir = tempfile::tempdir()?;
    if std::env::var_os("FERRY_KEEP_TEST_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("test folder kept: {}", dir.path().display());
    }
    Ok(dir)
}

/// Runs `ferry --home HOME args…` to completion and returns stdout.
pub fn ferry(home: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(ferry_bin()).arg("--home").arg(home).args(args).env("FERRY_LOG", "warn").output()?;
    if !out.status.success() {
        bail!("ferry {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A node home with an identity.
pub struct Home {
    pub dir: PathBuf,
    pub account: String,
}

impl Home {
    pub fn new(root: &Path, name: &str) -> Result<Home> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        ferry(&dir, &["init"])?;
        let id: serde_json::Value = serde_json::from_str(&ferry(&dir, &["id", "--json"])?)?;
        Ok(Home { dir, account: id["account"].as_str().unwrap_or_default().to_string() })
    }

    /// Replaces one line of the home's config.toml (as `ferry init` wrote it).
    pub fn set_config(&self, line: &str, with: &str) -> Result<()> {
        let path = self.dir.join("config.toml");
        let text = std::fs::read_to_string(&path)?;
        if !text.contains(line) {
            bail!("{} has no line {line:?}", path.display());
        }
        std::fs::write(&path, text.replace(line, with))?;
        Ok(())
    }

    pub fn receipts(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&ferry(&self.dir, &["receipts", "--json"])?)?)
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// A running ferry process; killed when dropped.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: PathBuf,
}

impl Proc {
    /// Network tests outside a namespace stay on loopback: viewers listen there too.
    pub fn spawn(home: &Path, name: &str, args: &[&str]) -> Result<Proc> {
        let mut cmd = Command::new(ferry_bin());
        cmd.env("FERRY_VIEWER_LISTEN", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1");
        Proc::spawn_with(cmd, home, name, args)
    }

    /// `ferry` started by `cmd`, e.g. `ip netns exec NS ferry` ([`netns::Internet::command`]).
    pub fn spawn_with(mut cmd: Command, home: &Path, name: &str, args: &[&str]) -> Result<Proc> {
        cmd.arg("--home").arg(home).args(args);
        Proc::start(cmd, &home.join(format!("{name}.log")))
    }

    /// Starts `cmd` as it is, its stderr (the log) appended to `log`, its stdout read by [`Proc::line`].
    pub fn start(mut cmd: Command, log: &Path) -> Result<Proc> {
        let log = log.to_path_buf();
        let logfile = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let mut child = cmd
            .env("FERRY_LOG", "info,ferry_node=debug,libp2p_swarm=warn,libp2p_kad=error,libp2p_gossipsub=error")
            .stdout(Stdio::piped())
            .stderr(logfile)
            .spawn()
            .context("cannot start ferry")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc { child, lines, log })
    }

    /// Waits for the next stdout line that satisfies `pred`.
    pub fn line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return Ok(l),
                Ok(_) => continue,
                Err(_) => bail!(
                    "no matching output within {timeout:?}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("exited with {status}; log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("did not stop within 15 s after SIGTERM")
    }

    /// kill -9.
    pub fn kill9(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a relay on ephemeral loopback ports; returns it and its TCP address (with /p2p/).
pub fn relay(home: &Home, extra: &[&str]) -> Result<(Proc, String)> {
    let (p, tcp, _) = relay_tcp_quic(home, extra)?;
    Ok((p, tcp))
}

/// Starts a relay listening on TCP and QUIC; returns it and both addresses.
pub fn relay_tcp_quic(home: &Home, extra: &[&str]) -> Result<(Proc, String, String)> {
    let mut args = vec!["relay", "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&home.dir, "relay", &args)?;
    let (mut tcp, mut quic) = (None, None);
    while tcp.is_none() || quic.is_none() {
        let l = p.line(Duration::from_secs(20), |l| l.contains("/p2p/"))?;
        if l.contains("/quic-v1/") {
            quic = Some(l);
        } else if l.contains("/tcp/") {
            tcp = Some(l);
        }
    }
    Ok((p, tcp.unwrap_or_default(), quic.unwrap_or_default()))
}

/// Starts `ferry watch`; returns it and the playlist URL.
pub fn watch(home: &Home, cid: &str, bootstrap: &[&str]) -> Result<(Proc, String)> {
    let mut args = vec!["watch", cid, "--gateway", "127.0.0.1:0"];
    for b in bootstrap {
        args.extend_from_slice(&["--bootstrap", b]);
    }
    let p = Proc::spawn(&home.dir, "watch", &args)?;
    let url = p.line(Duration::from_secs(30), |l| l.starts_with("http://"))?;
    Ok((p, url))
}

/// A real source video: ffmpeg testsrc2 + sine, H.264/AAC, `seconds` long, 25 fps.
pub fn make_video(dir: &Path, seconds: u32) -> Result<PathBuf> {
    let out = dir.join("source.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&out)
        .status()
        .context("ffmpeg is required (apt-get install ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg could not make the test video");
    }
    Ok(out)
}

/// What ffprobe decodes from a URL or file: duration and the number of video frames, per video stream.
pub struct Decoded {
    pub duration: f64,
    pub video_frames: Vec<u64>,
}

pub fn decode(input: &str) -> Result<Decoded> {
    decode_with(Command::new("ffprobe"), input)
}

/// [`decode`] with ffprobe started by `cmd` (e.g. inside a network namespace).
pub fn decode_with(mut cmd: Command, input: &str) -> Result<Decoded> {
    let out = cmd
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "format=duration:stream=codec_type,nb_read_frames",
            "-of",
            "json",
            input,
        ])
        .output()?;
    if !out.status.success() {
        bail!("ffprobe failed on {input}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let duration = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    let video_frames = v["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["codec_type"] == "video")
                .filter_map(|s| s["nb_read_frames"].as_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Decoded { duration, video_frames })
}

/// GETs a URL with curl; returns (status line + headers, body).
pub fn http_get(url: &str, range: Option<&str>) -> Result<(String, Vec<u8>)> {
    let dir = tempfile::tempdir()?;
    let headers = dir.path().join("h");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-D"]).arg(&headers);
    if let Some(r) = range {
        cmd.args(["-r", r]);
    }
    cmd.args(["-H", "Origin: http://example.test", url]);
    let out = cmd.output().context("curl is required")?;
    if !out.status.success() {
        bail!("curl {url} failed");
    }
    Ok((std::fs::read_to_string(headers)?, out.stdout))
}

/// A relay's `/metrics` at `addr`, parsed as Prometheus text: each sample's name (with its labels) and value. Fails
/// on a line that is neither a comment nor `name[{labels}] value`.
pub fn scrape(addr: &str) -> Result<std::collections::HashMap<String, f64>> {
    let (_, body) = http_get(&format!("http://{addr}/metrics"), None)?;
    let mut samples = std::collections::HashMap::new();
    for line in String::from_utf8(body)?.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').with_context(|| format!("not a sample: {line:?}"))?;
        let value: f64 = value.parse().with_context(|| format!("not a number: {line:?}"))?;
        let bare = name.split('{').next().unwrap_or(name);
        ensure!(
            !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "not a metric name: {line:?}"
        );
        ensure!(name == bare || name.ends_with('}'), "unclosed labels: {line:?}");
        samples.insert(name.to_string(), value);
    }
    Ok(samples)
}

/// The bytes of a blob in a node's content store.
pub fn stored_blob(home: &Home, hash_hex: &str) -> Option<Vec<u8>> {
    std::fs::read(home.dir.join("store/blobs").join(hash_hex)).ok()
}

/// A dev chain of its own for one test, on a free loopback port; stopped and deleted when dropped.
/// Needs `scripts/devchain install` and `scripts/devchain spec`, or `scripts/fastchain spec` (scripts/test runs
/// them).
pub struct TestChain {
    pub port: u16,
    pub url: String,
    kind: Option<&'static str>,
    /// Milliseconds between blocks, when not the default.
    block_ms: Option<u64>,
}

impl TestChain {
    /// Whichever chain `ferry chain up` picks (`FERRY_CHAIN_KIND`, else the real node if it is installed).
    pub fn up() -> Result<TestChain> {
        TestChain::of(None)
    }

    /// The real node: for tests that need blocks to keep coming without transactions, finality after
    /// inclusion, or a restart.
    pub fn node() -> Result<TestChain> {
        TestChain::of(Some("node"))
    }

    /// The real node, making a block every `block_ms`.
    pub fn node_with_blocks_every(block_ms: u64) -> Result<TestChain> {
        TestChain::of_kind(Some("node"), Some(block_ms))
    }

    fn of(kind: Option<&'static str>) -> Result<TestChain> {
        TestChain::of_kind(kind, None)
    }

    fn of_kind(kind: Option<&'static str>, block_ms: Option<u64>) -> Result<TestChain> {
        // Tests side by side pick free ports at once; another may take ours before the node binds it.
        for _ in 0..3 {
            let port = free_port()?;
            let chain = TestChain { port, url: format!("ws://127.0.0.1:{port}"), kind, block_ms };
            match chain.cli(&["up", "--fresh"]) {
                Err(e) if e.to_string().contains("was taken while the dev node started") => continue,
                up => return up.map(|_| chain),
            }
        }
        bail!("three ports in a row were taken while the dev node started")
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(ferry_bin());
        cmd.args(["chain"]).args(args);
        if let (Some(kind), Some(&"up")) = (self.kind, args.first()) {
            cmd.args(["--kind", kind]);
        }
        if let (Some(ms), Some(&"up")) = (self.block_ms, args.first()) {
            cmd.args(["--block-ms", &ms.to_string()]);
        }
        let out = cmd.args(["--rpc-port", &self.port.to_string()]).env("FERRY_LOG", "warn").output()?;
        if !out.status.success() {
            bail!(
                "ferry chain {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Starts the node again, keeping its state, and waits until it answers.
    pub fn start(&self) -> Result<()> {
        self.cli(&["up"]).map(|_| ())
    }

    pub fn stop(&self) -> Result<()> {
        self.cli(&["down"]).map(|_| ())
    }

    pub fn status(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.cli(&["status", "--json"])?)?)
    }

    /// A client that signs as `home`'s identity.
    pub fn client(&self, home: &Home) -> Result<ferry_node::chain::Chain> {
        let id = ferry_node::identity::Identity::load(&home.dir)?;
        Ok(block_on(ferry_node::chain::Chain::connect(&self.url, id.secret()))?)
    }

    /// Runs `ferry --home HOME --chain URL args…`.
    pub fn ferry(&self, home: &Home, args: &[&str]) -> Result<String> {
        let mut all = vec!["--chain", &self.url];
        all.extend_from_slice(args);
        ferry(&home.dir, &all)
    }
}

impl TestChain {
    /// Runs `ferry audit --chain URL --json` over blocks `from..=to` with `extra` arguments, as an auditor with no
    /// node of its own, and returns whether it passed and its report.
    pub fn audit(&self, from: u32, to: u32, extra: &[&str]) -> Result<(bool, serde_json::Value)> {
        let home = tempfile::tempdir()?;
        let (from, to) = (from.to_string(), to.to_string());
        let mut args = vec!["--chain", &self.url, "audit", "--json", "--from-block", &from, "--to-block", &to];
        args.extend_from_slice(extra);
        let out =
            Command::new(ferry_bin()).arg("--home").arg(home.path()).args(args).env("FERRY_LOG", "warn").output()?;
        let report = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("ferry audit printed no report: {}", String::from_utf8_lossy(&out.stderr)))?;
        Ok((out.status.success(), report))
    }
}

impl Drop for TestChain {
    /// Stops the chain and deletes its state, so test runs do not fill the disk with one chain each.
    fn drop(&mut self) {
        let _ = self.cli(&["down", "--forget"]);
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a future to completion (tests are synchronous). One runtime serves the whole test binary, so a chain
/// client made in one call keeps its connection task running for the next.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// The runtime [`block_on`] uses; tasks spawned on it go on while the test waits on processes.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
    })
}

impl Home {
    /// A home holding a funded demo account of the dev chain (`operator`, `creator` or `viewer`), configured to
    /// settle on `chain` every `settle_every_ms`.
    pub fn dev(root: &Path, name: &str, role: &str, settle_every_ms: u64) -> Result<Home> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        ferry(&dir, &["init", "--dev-account", role])?;
        let id: serde_json::Value = serde_json::from_str(&ferry(&dir, &["id", "--json"])?)?;
        let home = Home { dir, account: id["account"].as_str().unwrap_or_default().to_string() };
        home.set_config("settle_every_ms = 6000", &format!("settle_every_ms = {settle_every_ms}"))?;
        // Settle every claim at once, whatever it pays: the tests of the settlement policy set it back.
        home.set_config("settle_fee_multiple = 200", "settle_fee_multiple = 0")?;
        Ok(home)
    }

    pub fn account_bytes(&self) -> [u8; 32] {
        ferry_node::identity::parse_hex32(&self.account).unwrap_or_default()
    }

    pub fn earnings(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&ferry(&self.dir, &["earnings", "--json"])?)?)
    }

    /// Waits until this relay has settled everything it is owed, and at least `claims` claims, in figures taken
    /// after this call (a running relay refreshes them every settlement round).
    pub fn wait_settled(&self, claims: usize, timeout: Duration) -> Result<serde_json::Value> {
        self.wait_earnings(timeout, |e| {
            e["claims"].as_array().map_or(0, |s| s.len()) >= claims && e["pending"] == "0" && e["in_flight"] == "0"
        })
    }

    /// Waits for `ferry earnings` figures, taken after this call, that satisfy `pred`.
    pub fn wait_earnings(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let called = unix_now();
        let deadline = Instant::now() + timeout;
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Ok(e) = self.earnings() {
                if e["as_of"].as_u64().is_some_and(|t| t > called) && pred(&e) {
                    return Ok(e);
                }
                last = e;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("{}: earnings not as expected within {timeout:?}; last: {last}", self.dir.display())
    }
}

/// The latest receipt of every claim in a relay's ledger (from `ferry receipts --json`), as (amount, tip).
pub fn claim_totals(receipts: &serde_json::Value) -> Vec<(u128, u128)> {
    claim_totals_by_viewer(receipts).into_iter().map(|(_, a, t)| (a, t)).collect()
}

/// The same, with the paying viewer's account (`0x…`) first.
pub fn claim_totals_by_viewer(receipts: &serde_json::Value) -> Vec<(String, u128, u128)> {
    receipts["relay"]["claims"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    let n = |k: &str| s["latest"][k].as_str().and_then(|v| v.parse().ok()).unwrap_or(0u128);
                    (s["latest"]["viewer"].as_str().unwrap_or_default().to_string(), n("amount"), n("tip"))
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---- Chain test setups shared by the settlement and money-safety tests ----

pub const PRICE: &str = "1000000";
pub const BOND: &str = "10000000000000";
pub const SHARE_BPS: u16 = 2_000;
/// The dev runtime's protocol fee.
pub const FEE_BPS: u16 = 500;

/// Reserves `amount` in a lane from `payer` to `relay`, as `ferry lane open` does.
pub fn open_lane(chain: &TestChain, payer: &Home, relay: &Home, amount: &str) -> Result<()> {
    chain.ferry(payer, &["lane", "open", &relay.account, amount]).map(|_| ())
}

pub fn publish(chain: &TestChain, creator: &Home, video: &std::path::Path) -> Result<String> {
    let out = chain.ferry(creator, &["publish", &video.to_string_lossy(), "--share-bps", &SHARE_BPS.to_string()])?;
    Ok(out.lines().last().context("publish printed no content id")?.trim().to_string())
}

pub fn relay_on(chain: &TestChain, home: &Home, extra: &[&str]) -> Result<(Proc, String)> {
    let mut args = vec!["--chain", chain.url.as_str(), "--price", PRICE];
    args.extend_from_slice(extra);
    relay(home, &args)
}

pub fn play(chain: &TestChain, viewer: &Home, cid: &str, via: &str, seconds: u32) -> Result<()> {
    let args = ["watch", cid, "--gateway", "127.0.0.1:0", "--bootstrap", via, "--chain", &chain.url];
    let p = Proc::spawn(&viewer.dir, "watch", &args)?;
    let url = p.line(Duration::from_secs(60), |l| l.starts_with("http://"))?;
    let d = decode(&url)?;
    ensure!(!d.video_frames.is_empty(), "no video stream decoded");
    for f in &d.video_frames {
        ensure!(*f == u64::from(seconds) * 25, "decoded {f} frames of {}", seconds * 25);
    }
    p.stop()
}

/// A dev chain, a creator who runs the origin relay (bonded, 6 s video published and registered) and a viewer
/// with a lane to it: the setup of the single-relay tests.
pub struct Solo {
    pub _root: tempfile::TempDir,
    pub chain: TestChain,
    pub creator: Home,
    pub viewer: Home,
    pub cid: String,
}

impl Solo {
    pub fn new(chain: TestChain, settle_every_ms: u64) -> Result<Solo> {
        let root = test_root()?;
        let creator = Home::dev(root.path(), "origin", "creator", settle_every_ms)?;
        let viewer = Home::dev(root.path(), "viewer", "viewer", 1000)?;
        let video = make_video(root.path(), 6)?;
        chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
        let cid = publish(&chain, &creator, &video)?;
        open_lane(&chain, &viewer, &creator, "1000000000000")?;
        Ok(Solo { _root: root, chain, creator, viewer, cid })
    }
}

/// Commits receipts straight into a stopped relay's ledger, as if it had accepted them from a viewer.
pub fn put_in_ledger(relay: &Home, receipts: impl IntoIterator<Item = SignedReceipt>) -> Result<()> {
    block_on(async {
        let ledger = ferry_node::money::ledger::Ledger::open(&relay.dir)?;
        for r in receipts {
            ledger.commit(r).await?.map_err(|r| anyhow::anyhow!("ledger refused: {}", r.reason))?;
        }
        ledger.close().await?;
        anyhow::Ok(())
    })
}

pub fn chain_genesis(chain: &TestChain) -> Result<[u8; 32]> {
    let s = chain.status()?;
    ferry_node::identity::parse_hex32(s["genesis"].as_str().unwrap_or_default()).context("genesis in status")
}

/// The latest receipt of every claim in a relay's ledger, rebuilt from `ferry receipts --json` and verified.
pub fn latest_receipts(home: &Home, genesis: [u8; 32]) -> Result<Vec<SignedReceipt>> {
    let v = home.receipts()?;
    let mut out = vec![];
    for s in v["relay"]["claims"].as_array().context("claims")? {
        let r = &s["latest"];
        let h32 = |k: &str| ferry_node::identity::parse_hex32(r[k].as_str().unwrap_or_default()).context(k.to_string());
        let mut claim = [0u8; 16];
        hex::decode_to_slice(r["claim"].as_str().unwrap_or_default(), &mut claim)?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(r["signature"].as_str().unwrap_or_default(), &mut signature)?;
        let n = |k: &str| r[k].as_str().and_then(|v| v.parse::<u128>().ok()).context(k.to_string());
        let receipt = Receipt {
            domain: Domain(genesis),
            claim,
            relay: h32("relay")?,
            viewer: h32("viewer")?,
            content: h32("content")?,
            seq: r["seq"].as_u64().context("seq")?,
            bytes: r["bytes"].as_u64().context("bytes")?,
            amount: n("amount")?,
            chunk_chain: h32("chunk_chain")?,
            tip: n("tip")?,
        };
        let signed = SignedReceipt { receipt, signature };
        signed.verify().map_err(|e| anyhow::anyhow!("rebuilt receipt does not verify: {e}"))?;
        out.push(signed);
    }
    Ok(out)
}

/// Every payout and fee between two blocks (exclusive, inclusive).
pub fn money(c: &ferry_node::chain::Chain, from: u32, to: u32) -> Result<ferry_node::chain::BlockMoney> {
    block_on(async {
        let mut all = ferry_node::chain::BlockMoney::default();
        for n in from + 1..=to {
            let m = c.block_money(n).await?;
            all.settled.extend(m.settled);
            all.fees.extend(m.fees);
            all.tips.extend(m.tips);
            all.tip_burns.extend(m.tip_burns);
            all.lanes_funded.extend(m.lanes_funded);
        }
        Ok(all)
    })
}
