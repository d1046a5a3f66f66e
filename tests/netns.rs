//! A small internet in Linux network namespaces that a test makes for itself and removes afterwards.
//!
//! ```text
//!   boot 10.0.77.1 ─┐
//!   view 10.0.77.2 ─┼─ br0 (in the `wan` namespace)
//! router 10.0.77.3 ─┘
//!   router 192.168.77.1 ── home 192.168.77.2   (the router masquerades the home network)
//! ```
//!
//! The addresses exist only inside these namespaces; nothing touches the host's own network.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

pub const BOOT_IP: &str = "10.0.77.1";
pub const VIEW_IP: &str = "10.0.77.2";
pub const ROUTER_IP: &str = "10.0.77.3";
pub const HOME_IP: &str = "192.168.77.2";

/// Makes every namespace name of this process unique, whichever tests run at once.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether a test should skip because namespaces cannot be made here (it says why). `scripts/test` sets
/// FERRY_REQUIRE_NETNS, so CI fails instead.
pub fn skipped() -> bool {
    match Internet::unavailable() {
        Some(why) if std::env::var_os("FERRY_REQUIRE_NETNS").is_some() => panic!("FERRY_REQUIRE_NETNS is set: {why}"),
        Some(why) => {
            eprintln!("skipped: {why}");
            true
        }
        None => false,
    }
}

/// What the home router lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Router {
    /// Forwards the router's public port (TCP and UDP) to a port of the home machine, as an operator sets up by
    /// hand.
    Forward { public: u16, home: u16 },
    /// Nothing comes in unasked.
    Closed,
}

/// The namespaces of one test; deleted (with every process in them) when dropped.
pub struct Internet {
    prefix: String,
}

fn run(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output().with_context(|| args.join(" "))?;
    if !out.status.success() {
        bail!("{} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Internet {
    /// Why this machine cannot make namespaces (not root, no `ip` or `iptables`, a container without
    /// CAP_NET_ADMIN), or `None` when it can.
    pub fn unavailable() -> Option<String> {
        let probe = format!("ferry-probe-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        if let Err(e) = run(&["ip", "netns", "add", &probe]) {
            return Some(format!("cannot create a network namespace ({e:#})"));
        }
        let nat = run(&["ip", "netns", "exec", &probe, "iptables", "-t", "nat", "-L", "-n"]);
        let _ = run(&["ip", "netns", "del", &probe]);
        nat.err().map(|e| format!("no iptables NAT inside a namespace ({e:#}); apt-get install iptables"))
    }

    pub fn new(router: Router) -> Result<Internet> {
        let net = Internet { prefix: format!("ferry{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)) };
        net.build(router).context("cannot build the test network")?;
        Ok(net)
    }

    /// The namespace's full name, for `ip netns exec`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// A command run inside namespace `name`.
    pub fn command(&self, name: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(name)]).arg(program);
        c
    }

    fn ip(&self, ns: &str, args: &[&str]) -> Result<()> {
        let n = self.ns(ns);
        let mut all = vec!["ip", "-n", &n];
        all.extend_from_slice(args);
        run(&all)
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Result<()> {
        let n = self.ns(ns);
        let mut all = vec!["ip", "netns", "exec", &n];
        all.extend_from_slice(args);
        run(&all)
    }

    fn build(&self, router: Router) -> Result<()> {
        for ns in ["wan", "boot", "view", "router", "home"] {
            run(&["ip", "netns", "add", &self.ns(ns)])?;
            self.ip(ns, &["link", "set", "lo", "up"])?;
        }
        self.ip("wan", &["link", "add", "br0", "type", "bridge"])?;
        self.ip("wan", &["link", "set", "br0", "up"])?;
        for (ns, ip) in [("boot", BOOT_IP), ("view", VIEW_IP), ("router", ROUTER_IP)] {
            let port = format!("to-{ns}");
            self.ip("wan", &["link", "add", &port, "type", "veth", "peer", "name", "wan0", "netns", &self.ns(ns)])?;
            self.ip("wan", &["link", "set", &port, "master", "br0", "up"])?;
            self.ip(ns, &["addr", "add", &format!("{ip}/24"), "dev", "wan0"])?;
            self.ip(ns, &["link", "set", "wan0", "up"])?;
        }
        self.ip("router", &["link", "add", "lan0", "type", "veth", "peer", "name", "lan0", "netns", &self.ns("home")])?;
        self.ip("router", &["addr", "add", "192.168.77.1/24", "dev", "lan0"])?;
        self.ip("router", &["link", "set", "lan0", "up"])?;
        self.ip("home", &["addr", "add", &format!("{HOME_IP}/24"), "dev", "lan0"])?;
        self.ip("home", &["link", "set", "lan0", "up"])?;
        self.ip("home", &["route", "add", "default", "via", "192.168.77.1"])?;
        self.exec("router", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        self.exec(
            "router",
            &["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.77.0/24", "-o", "wan0", "-j", "MASQUERADE"],
        )?;
        if let Router::Forward { public, home } = router {
            let to = format!("{HOME_IP}:{home}");
            let public = public.to_string();
            for proto in ["tcp", "udp"] {
                self.exec(
                    "router",
                    &[
                        "iptables",
                        "-t",
                        "nat",
                        "-A",
                        "PREROUTING",
                        "-i",
                        "wan0",
                        "-p",
                        proto,
                        "--dport",
                        &public,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        &to,
                    ],
                )?;
            }
        }
        Ok(())
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for ns in ["home", "router", "view", "boot", "wan"] {
            remove(&self.ns(ns));
        }
    }
}

/// Kills every process in namespace `name` and deletes it.
fn remove(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", name]).status();
}

/// A machine of its own: one namespace with loopback, which also holds `addresses`. Fixed ports inside it
/// (4001, 8080, 9944) are free whatever else runs on the host. Deleted, with its processes, when dropped.
pub struct Machine {
    name: String,
}

impl Machine {
    pub fn new(addresses: &[&str]) -> Result<Machine> {
        let m = Machine { name: format!("ferry{}-m{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)) };
        run(&["ip", "netns", "add", &m.name])?;
        run(&["ip", "-n", &m.name, "link", "set", "lo", "up"])?;
        for a in addresses {
            run(&["ip", "-n", &m.name, "addr", "add", &format!("{a}/32"), "dev", "lo"])?;
        }
        Ok(m)
    }

    /// `program` run inside the machine.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        remove(&self.name);
    }
}
