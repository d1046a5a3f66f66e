//! What operators run besides the relay: `ferry doctor`, the systemd unit, and `ferry chain down --forget`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use ferry_tests::*;

/// Runs `ferry --home HOME doctor ARGS…` with extra environment; returns (succeeded, stdout + stderr).
fn doctor(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Result<(bool, String)> {
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("--home").arg(&home.dir).arg("doctor").args(["--patience", "3"]).args(args).env("FERRY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().context("cannot run ferry doctor")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

fn listen_free() -> Result<String> {
    Ok(format!("/ip4/127.0.0.1/tcp/{}", free_port()?))
}

#[test]
fn doctor_passes_a_sound_setup_and_names_the_fix_for_each_broken_one() -> Result<()> {
    let root = test_root()?;
    let home = Home::new(root.path(), "relay")?;
    // Room for the cache on any test machine.
    home.set_config("cache_bytes = 10737418240", "cache_bytes = 1048576")?;

    let (ok, out) = doctor(&home, &["--listen", &listen_free()?], &[])?;
    ensure!(ok, "a fresh `ferry init` home should pass:\n{out}");
    ensure!(out.contains("ok    identity") && out.contains("ok    ledger"), "{out}");

    // A key other users can read.
    let key = home.dir.join("identity.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))?;
    let (ok, out) = doctor(&home, &["--listen", &listen_free()?], &[])?;
    ensure!(!ok && out.contains("FAIL  identity") && out.contains(&format!("chmod 600 {}", key.display())), "{out}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;

    // A port another program holds.
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = busy.local_addr()?.port();
    let (ok, out) = doctor(&home, &["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")], &[])?;
    ensure!(!ok && out.contains(&format!("TCP port {port} is in use")) && out.contains("ss -tlnp"), "{out}");
    drop(busy);

    // A chain that does not answer.
    let dead = format!("ws://127.0.0.1:{}", free_port()?);
    let (ok, out) = doctor(&home, &["--listen", &listen_free()?, "--chain", &dead], &[])?;
    ensure!(!ok && out.contains("FAIL  chain") && out.contains("ferry chain up"), "{out}");

    // No ffmpeg on PATH.
    let empty = root.path().join("empty-path");
    std::fs::create_dir_all(&empty)?;
    let (ok, out) = doctor(&home, &["--listen", &listen_free()?], &[("PATH", &empty.to_string_lossy())])?;
    ensure!(!ok && out.contains("FAIL  ffmpeg") && out.contains("apt-get install ffmpeg"), "{out}");
    Ok(())
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() -> Result<()> {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/ferry-relay.service"))?;
    let root = test_root()?;
    // verify checks that ExecStart exists: point it at the binary under test.
    let path = root.path().join("ferry-relay.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ferry", &ferry_bin().to_string_lossy()))?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .context("systemd-analyze is missing: apt-get install systemd (scripts/test does)")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success() && text.trim().is_empty(), "systemd-analyze verify:\n{text}");
    Ok(())
}

/// `ferry chain down ARGS… --rpc-port PORT`: whether it succeeded, and its output.
fn chain_down(port: u16, args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(ferry_bin())
        .args(["chain", "down"])
        .args(args)
        .args(["--rpc-port", &port.to_string()])
        .env("FERRY_LOG", "warn")
        .output()
        .context("cannot run ferry chain down")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// `down --forget` deletes a dev chain's state, so repeated trials and test runs do not fill the disk; it never
/// deletes the state of a chain that still answers and that this command did not start.
#[test]
fn a_forgotten_dev_chain_loses_its_state_but_one_it_did_not_start_keeps_it() -> Result<()> {
    let chain = TestChain::node()?;
    let cache = std::env::var_os("FERRY_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/ferry")))
        .context("no HOME")?;
    let data = cache.join("devchain").join(format!("data-{}", chain.port));
    ensure!(data.is_dir(), "the node keeps no state at {}", data.display());

    // Without its pid file, the running node is one this command did not start.
    let pid_file = cache.join("devchain").join(format!("node-{}.pid", chain.port));
    let pid = std::fs::read(&pid_file).context("the node's pid file")?;
    std::fs::remove_file(&pid_file)?;
    let refused = chain_down(chain.port, &["--forget"]);
    std::fs::write(&pid_file, pid)?;
    let (ok, text) = refused?;
    ensure!(!ok && text.contains("state was kept"), "down --forget deleted a chain it did not start:\n{text}");
    ensure!(data.is_dir(), "the state of a chain that still runs is gone");
    ensure!(chain.status().is_ok(), "the chain stopped");

    let (ok, text) = chain_down(chain.port, &["--forget"])?;
    ensure!(ok && text.contains("stopped") && text.contains("deleted"), "down --forget:\n{text}");
    ensure!(!data.exists(), "{} is still there", data.display());
    Ok(())
}
