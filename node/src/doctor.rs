//! `ferry doctor`: checks what an operator gets wrong, and names the fix for each problem it finds.
//!
//! Every check runs even when an earlier one failed, so one run lists everything to fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;

use crate::config::{Config, CONFIG_FILE};
use crate::identity::{account_hex, Identity, IdentityError, KEY_FILE};
use crate::money::ledger::{LedgerError, LedgerView};

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    /// Works, but not as well as it could; the fix is optional.
    Warn {
        what: String,
        fix: String,
    },
    Fail {
        what: String,
        fix: String,
    },
    /// Not applicable to this node (no chain configured, say).
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict) -> Check {
        Check { name, verdict }
    }

    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Fail { .. })
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Ok(s) => write!(f, "ok    {:<12} {s}", self.name),
            Verdict::Skip(s) => write!(f, "skip  {:<12} {s}", self.name),
            Verdict::Warn { what, fix } => write!(f, "warn  {:<12} {what}\n      {:<12} fix: {fix}", self.name, ""),
            Verdict::Fail { what, fix } => write!(f, "FAIL  {:<12} {what}\n      {:<12} fix: {fix}", self.name, ""),
        }
    }
}

fn fail(what: impl Into<String>, fix: impl Into<String>) -> Verdict {
    Verdict::Fail { what: what.into(), fix: fix.into() }
}

fn warn(what: impl Into<String>, fix: impl Into<String>) -> Verdict {
    Verdict::Warn { what: what.into(), fix: fix.into() }
}

/// What to check: the node's home, and the settings the relay would run with.
pub struct Setup {
    pub home: PathBuf,
    /// Flags given to `ferry doctor` take the place of the config's listen addresses and chain.
    pub listen: Vec<Multiaddr>,
    pub chain: Option<String>,
    /// How long to wait for the chain and for other relays to dial this node back.
    pub patience: Duration,
}

/// Runs every check, in the order an operator would fix them.
pub async fn run(setup: Setup) -> Vec<Check> {
    let mut out = Vec::new();
    let identity = check_identity(&setup.home, &mut out);
    let cfg = match Config::load(&setup.home) {
        Ok(c) => {
            out.push(Check::new("config", Verdict::Ok(format!("{} parses", setup.home.join(CONFIG_FILE).display()))));
            c
        }
        Err(e) => {
            out.push(Check::new(
                "config",
                fail(
                    e.to_string(),
                    "fix the line it names; `ferry init` in an empty folder writes the commented defaults",
                ),
            ));
            Config::default()
        }
    };
    let running = check_ledger(&setup.home, &mut out);
    let listen = if setup.listen.is_empty() {
        cfg.relay.listen.iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        setup.listen.clone()
    };
    check_ports(&listen, running, &mut out);
    out.push(check_ffmpeg());
    out.push(check_disk(&setup.home, cfg.relay.cache_bytes));
    let url = setup.chain.clone().or(cfg.chain.url.clone());
    out.push(check_chain(url, identity.as_ref(), cfg.relay.price_per_mib, setup.patience).await);
    out.push(check_reachable(&cfg, identity.as_ref(), &listen, running, setup.patience).await);
    out
}

fn check_identity(home: &Path, out: &mut Vec<Check>) -> Option<Identity> {
    let key = home.join(KEY_FILE);
    let (verdict, id) = match Identity::load(home) {
        Ok(id) => (Verdict::Ok(format!("peer {}, account {}", id.peer_id, account_hex(&id.account))), Some(id)),
        Err(IdentityError::Missing(_)) => {
            (fail(format!("no identity at {}", key.display()), format!("ferry --home {} init", home.display())), None)
        }
        Err(IdentityError::Permissions(p, mode)) => (
            fail(
                format!(
                    "{} is readable by other users (mode {mode:o}): anyone on this machine can spend as you",
                    p.display()
                ),
                format!("chmod 600 {}", p.display()),
            ),
            None,
        ),
        Err(e) => {
            (fail(e.to_string(), format!("restore {} from your backup (docs/operators.md)", key.display())), None)
        }
    };
    out.push(Check::new("identity", verdict));
    id
}

/// Whether a node runs from this home (it holds the ledger).
fn check_ledger(home: &Path, out: &mut Vec<Check>) -> bool {
    let (verdict, running) = match LedgerView::read(home) {
        Ok(view) => (Verdict::Ok(format!("opens cleanly ({} claims)", view.claims.len())), false),
        Err(LedgerError::InUse(_)) => (Verdict::Ok("held by the node running from this home".into()), true),
        Err(e) => (
            fail(
                e.to_string(),
                "stop the node, move the ledger aside and restore it from your backup (docs/operators.md); \
                 receipts not in the backup are lost",
            ),
            false,
        ),
    };
    out.push(Check::new("ledger", verdict));
    running
}

fn check_ports(listen: &[Multiaddr], running: bool, out: &mut Vec<Check>) {
    if running {
        out.push(Check::new("ports", Verdict::Skip("the running node holds its own ports".into())));
        return;
    }
    let mut problems = Vec::new();
    let mut free = Vec::new();
    for addr in listen {
        let Some((sock, udp)) = crate::p2p::ports::socket_of(addr) else { continue };
        let proto = if udp { "UDP" } else { "TCP" };
        match crate::p2p::ports::try_bind(addr) {
            Ok(()) => free.push(format!("{proto} {sock}")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => problems.push(fail(
                format!("{proto} port {} is in use by another program ({addr})", sock.port()),
                format!(
                    "stop that program (`ss -{}lnp 'sport = :{}'` names it) or listen elsewhere (--listen, [relay] listen)",
                    if udp { "u" } else { "t" },
                    sock.port()
                ),
            )),
            Err(e) => problems.push(fail(
                format!("cannot bind {proto} {sock}: {e}"),
                "listen on an address of this machine (--listen, [relay] listen); ports below 1024 need root",
            )),
        }
    }
    if problems.is_empty() {
        out.push(Check::new("ports", Verdict::Ok(format!("free: {}", free.join(", ")))));
    }
    out.extend(problems.into_iter().map(|v| Check::new("ports", v)));
}

fn check_ffmpeg() -> Check {
    let found = |p: &str| std::process::Command::new(p).arg("-version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = ["ffmpeg", "ffprobe"].into_iter().filter(|p| !found(p)).collect();
    Check::new(
        "ffmpeg",
        match missing.is_empty() {
            true => Verdict::Ok("ffmpeg and ffprobe found".into()),
            false => fail(
                format!("{} not found on PATH (publishing a video file needs them)", missing.join(" and ")),
                "sudo apt-get install ffmpeg",
            ),
        },
    )
}

fn check_disk(home: &Path, cache_bytes: u64) -> Check {
    let probe = if home.exists() { home } else { home.parent().unwrap_or(Path::new("/")) };
    let verdict = match rustix::fs::statvfs(probe) {
        Ok(s) => {
            let available = s.f_bavail.saturating_mul(s.f_frsize);
            let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
            if available < cache_bytes {
                fail(
                    format!(
                        "{} free on the disk of {}, but cache_bytes is {}",
                        gib(available),
                        probe.display(),
                        gib(cache_bytes)
                    ),
                    "free space there, or lower [relay] cache_bytes below what is free",
                )
            } else {
                Verdict::Ok(format!("{} free for a cache of {}", gib(available), gib(cache_bytes)))
            }
        }
        Err(e) => warn(format!("cannot read free space of {}: {e}", probe.display()), "check `df -h` by hand"),
    };
    Check::new("disk", verdict)
}

async fn check_chain(url: Option<String>, id: Option<&Identity>, price: u128, patience: Duration) -> Check {
    let Some(url) = url else {
        return Check::new(
            "chain",
            Verdict::Skip("no chain configured: receipts are kept but not paid ([chain] url, FERRY_CHAIN)".into()),
        );
    };
    let Some(id) = id else { return Check::new("chain", Verdict::Skip("needs the identity (see above)".into())) };
    let chain = match tokio::time::timeout(patience, crate::chain::Chain::connect(&url, id.secret())).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Check::new(
                "chain",
                fail(
                    format!("cannot reach the chain at {url}: {e}"),
                    "start it (`ferry chain up` for a dev chain) or fix [chain] url / --chain",
                ),
            )
        }
        Err(_) => {
            return Check::new(
                "chain",
                fail(
                    format!("no answer from the chain at {url} within {patience:?}"),
                    "check the URL and that the node runs",
                ),
            )
        }
    };
    let verdict = match chain.operator(id.account).await {
        Ok(Some(op)) if op.unbonding_until.is_some() => warn(
            format!("operator is unbonding (withdrawable from block #{})", op.unbonding_until.unwrap_or_default()),
            "register again to keep serving for pay: ferry operator register",
        ),
        Ok(Some(op)) if op.price_per_mib != price => warn(
            format!(
                "registered at {} per MiB, but [relay] price_per_mib is {price}; the relay charges the registered price",
                op.price_per_mib
            ),
            format!("ferry operator set-price {price}, or set price_per_mib = {} in config.toml", op.price_per_mib),
        ),
        Ok(Some(op)) => {
            Verdict::Ok(format!("{url}: registered operator, price {} per MiB, bond {}", op.price_per_mib, op.bond))
        }
        Ok(None) => fail(
            format!("{url} answers, but {} is not a registered operator: settlement pays nothing", account_hex(&id.account)),
            format!("ferry operator register --price {price} --bond <AMOUNT>"),
        ),
        Err(e) => fail(format!("{url}: cannot read the operator registration: {e}"), "check that the chain runs Ferry's runtime"),
    };
    Check::new("chain", verdict)
}

/// Asks the configured bootstrap relays to dial this node back (AutoNAT), on the relay's own listen addresses.
async fn check_reachable(
    cfg: &Config,
    id: Option<&Identity>,
    listen: &[Multiaddr],
    running: bool,
    patience: Duration,
) -> Check {
    let name = "reachable";
    if running {
        return Check::new(name, Verdict::Skip("the running node holds its ports; its log says `reachable at`".into()));
    }
    let Some(id) = id else { return Check::new(name, Verdict::Skip("needs the identity (see above)".into())) };
    let bootstrap: Vec<Multiaddr> = cfg.relay.bootstrap.iter().filter_map(|a| a.parse().ok()).collect();
    if bootstrap.is_empty() {
        return Check::new(name, Verdict::Skip("no bootstrap relays configured to ask ([relay] bootstrap)".into()));
    }
    let external: Vec<Multiaddr> = cfg.relay.external_addresses.iter().filter_map(|a| a.parse().ok()).collect();
    let net = crate::p2p::NetConfig { external, ..crate::p2p::NetConfig::viewer() };
    let verdict = match probe(id, net, listen, &bootstrap, patience).await {
        Ok(Some(addr)) => Verdict::Ok(format!("other relays dialled this node back at {addr}")),
        Ok(None) => warn(
            "no relay could dial this node back: it is behind NAT or a firewall",
            "forward TCP and UDP of the listen port on your router to this machine and set [relay] external_addresses \
             to the router's public address; without that the relay is reached through a circuit on its bootstrap \
             relays (slower, limited per circuit)",
        ),
        Err(e) => warn(format!("could not ask: {e}"), "check [relay] bootstrap and that those relays run"),
    };
    Check::new(name, verdict)
}

async fn probe(
    id: &Identity,
    net: crate::p2p::NetConfig,
    listen: &[Multiaddr],
    bootstrap: &[Multiaddr],
    patience: Duration,
) -> Result<Option<Multiaddr>, String> {
    let (client, _control, mut events) = crate::p2p::start(id, net).map_err(|e| e.to_string())?;
    for addr in listen {
        client.listen(addr.clone()).await.map_err(|e| e.to_string())?;
    }
    let mut reached = 0;
    for addr in bootstrap {
        if client.dial(addr).await.is_ok() {
            reached += 1;
        }
    }
    if reached == 0 {
        return Err("no bootstrap relay answered".into());
    }
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(crate::p2p::NetEvent::Reachability(r))) => return Ok(r),
            Ok(Some(_)) => {}
            Ok(None) => return Err("the network stopped".into()),
            Err(_) => return Err(format!("no relay answered within {patience:?}")),
        }
    }
}
