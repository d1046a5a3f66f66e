//! Relays on other machines, behind a home router: a small internet in network namespaces (see
//! `ferry_tests::netns`). A bootstrap relay on the public side, a relay at home behind a masquerading router that
//! published the video, and a viewer on the public side that knows only the bootstrap relay and will not pay its
//! price, so it must find the home relay through the DHT and reach it across the NAT.
//!
//! Needs root (or CAP_NET_ADMIN) and iptables; skipped, with the reason, where namespaces cannot be made.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use ferry_tests::netns::{skipped, Internet, Router, BOOT_IP, ROUTER_IP};
use ferry_tests::*;

struct Played {
    /// The homes live in it; dropping it deletes them.
    _root: tempfile::TempDir,
    home: Home,
    viewer: Home,
    home_log: String,
    viewer_log: String,
}

/// Publishes at home, starts the three nodes in `net`, plays the video to the end from the viewer's namespace.
/// `home_args` are the home relay's extra flags; `ready` finds the line the home relay logs once it can be reached;
/// the home relay and the viewer dial the bootstrap relay's address over `transport` (`/tcp/` or `/quic-v1/`).
fn play_from_home(net: &Internet, home_args: &[&str], ready: fn(&str) -> bool, transport: &str) -> Result<Played> {
    let root = test_root()?;
    let video = make_video(root.path(), 6)?;
    let source = decode(&video.to_string_lossy())?;
    let boot = Home::new(root.path(), "boot")?;
    let home = Home::new(root.path(), "home")?;
    let viewer = Home::new(root.path(), "viewer")?;
    let out = ferry(&home.dir, &["publish", &video.to_string_lossy(), "--title", "from home"])?;
    let cid = out.lines().last().context("publish printed no content id")?.trim().to_string();

    let boot_relay = Proc::spawn_with(
        net.command("boot", &ferry_bin()),
        &boot.dir,
        "relay",
        &[
            "relay",
            "--listen",
            &format!("/ip4/{BOOT_IP}/tcp/4001"),
            "--listen",
            &format!("/ip4/{BOOT_IP}/udp/4001/quic-v1"),
            "--price",
            "1000000",
        ],
    )?;
    let boot_addr = boot_relay.line(Duration::from_secs(20), |l| l.contains(transport))?;

    let mut args = vec![
        "relay",
        "--listen",
        "/ip4/0.0.0.0/tcp/4001",
        "--listen",
        "/ip4/0.0.0.0/udp/4001/quic-v1",
        "--bootstrap",
        &boot_addr,
        "--price",
        "1000",
    ];
    args.extend_from_slice(home_args);
    let home_relay = Proc::spawn_with(net.command("home", &ferry_bin()), &home.dir, "relay", &args)?;
    wait_for_log(&home, ready, Duration::from_secs(60))?;
    wait_for_log(&home, |l| l.contains("providing content"), Duration::from_secs(30))?;
    // The provider record with the new address reaches the bootstrap relay.
    std::thread::sleep(Duration::from_secs(2));

    let watcher = Proc::spawn_with(
        net.command("view", &ferry_bin()),
        &viewer.dir,
        "watch",
        &["watch", &cid, "--bootstrap", &boot_addr, "--gateway", "127.0.0.1:0", "--max-price", "1000"],
    )?;
    let url = watcher.line(Duration::from_secs(60), |l| l.starts_with("http://"))?;
    let decoded = decode_with(net.command("view", std::path::Path::new("ffprobe")), &url)?;
    ensure!(!decoded.video_frames.is_empty(), "no video decoded");
    for frames in &decoded.video_frames {
        ensure!(*frames == source.video_frames[0], "decoded {frames} frames of {}", source.video_frames[0]);
    }
    // A short video can play to the end over the circuit before hole punching is through: give it the time.
    if home_args.is_empty() {
        let _ = wait_for_log(&home, |l| l.contains("hole punching"), Duration::from_secs(20));
    }
    watcher.stop()?;
    home_relay.stop()?;
    boot_relay.stop()?;
    Ok(Played { home_log: home.log("relay"), viewer_log: viewer.log("watch"), home, viewer, _root: root })
}

fn wait_for_log(home: &Home, line: impl Fn(&str) -> bool, timeout: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if home.log("relay").lines().any(&line) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!("the awaited line is not in the relay's log within {timeout:?}:\n{}", home.log("relay"))
}

/// The home relay's ledger holds receipts the viewer signed, for every byte of the video it played.
fn paid_by_viewer(p: &Played) -> Result<u64> {
    let ledger = p.home.receipts()?;
    let bytes: u64 = ledger["relay"]["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["latest"]["viewer"] == p.viewer.account.as_str())
        .map(|s| s["latest"]["bytes"].as_u64().unwrap_or(0))
        .sum();
    ensure!(bytes > 0, "the home relay holds no receipt from the viewer: {ledger}");
    Ok(bytes)
}

#[test]
fn a_relay_at_home_with_a_forwarded_port_is_reached_at_its_external_address() -> Result<()> {
    if skipped() {
        return Ok(());
    }
    // Another public port than the relay's own, so that only the configured address leads in: AutoNAT, which
    // dials back the relay's port at the router's address, finds nothing there.
    let net = Internet::new(Router::Forward { public: 14001, home: 4001 })?;
    let tcp = format!("/ip4/{ROUTER_IP}/tcp/14001");
    let quic = format!("/ip4/{ROUTER_IP}/udp/14001/quic-v1");
    let p = play_from_home(
        &net,
        &["--external-address", &tcp, "--external-address", &quic],
        |l| l.contains("announcing configured external address"),
        "/tcp/",
    )?;
    paid_by_viewer(&p)?;
    ensure!(!p.viewer_log.contains("no addresses for peer"), "the viewer had no address for the home relay");
    ensure!(
        !p.home_log.contains("asking this relay for a circuit"),
        "a relay with an external address asked for a circuit"
    );
    Ok(())
}

#[test]
fn a_relay_at_home_behind_nat_is_reached_through_a_circuit_and_hole_punching() -> Result<()> {
    if skipped() {
        return Ok(());
    }
    let net = Internet::new(Router::Closed)?;
    // Over QUIC: both ends learn their UDP addresses as the bootstrap relay sees them, and hole punching over UDP
    // got through here in every run, where over TCP it depends on which SYN reaches the router first
    // (docs/operators.md).
    let p = play_from_home(&net, &[], |l| l.contains("reachable at") && l.contains("p2p-circuit"), "/quic-v1/")?;
    paid_by_viewer(&p)?;
    ensure!(p.viewer_log.contains("session open"), "the viewer paid the home relay");
    // Linux's MASQUERADE keeps the source port of the relay's outgoing packets, so the address the bootstrap relay
    // saw is the one the viewer's packets must reach.
    ensure!(
        p.home_log.contains("direct connection by hole punching"),
        "no direct connection replaced the circuit:\n{}",
        p.home_log.lines().filter(|l| l.contains("punch") || l.contains("circuit")).collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

/// Several nodes on one machine need no hand-picked ports: a relay left on the default listen addresses takes free
/// ports when 4001 is in use. (In a namespace, since the default listens on every interface.)
#[test]
fn a_second_relay_on_default_settings_takes_free_ports() -> Result<()> {
    if skipped() {
        return Ok(());
    }
    let net = Internet::new(Router::Closed)?;
    let root = test_root()?;
    let first = Home::new(root.path(), "first")?;
    let second = Home::new(root.path(), "second")?;
    let a = Proc::spawn_with(net.command("boot", &ferry_bin()), &first.dir, "relay", &["relay"])?;
    let a_addr = a.line(Duration::from_secs(20), |l| l.contains("/tcp/"))?;
    ensure!(a_addr.contains("/tcp/4001/"), "the first relay has the default port: {a_addr}");
    let b = Proc::spawn_with(net.command("boot", &ferry_bin()), &second.dir, "relay", &["relay"])?;
    let b_addr = b.line(Duration::from_secs(20), |l| l.contains("/tcp/"))?;
    ensure!(!b_addr.contains("/tcp/4001/"), "the second relay took another port: {b_addr}");
    ensure!(second.log("relay").contains("default port in use"), "it says why:\n{}", second.log("relay"));
    b.stop()?;
    a.stop()?;
    Ok(())
}
