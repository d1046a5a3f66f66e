//! The README's "Using it" commands, run as written: each line of its two command blocks, with only its
//! placeholders (`<CID>`, `<RELAY>`, `<AMOUNT>`, the example peer id) filled in. They run inside a network
//! namespace of their own, a machine whose fixed ports (4001, 8080, 9464, 9944) nothing else uses and which owns
//! the example address 203.0.113.5. A command the README shows and this test does not know fails the test, so the
//! two cannot drift apart.
//!
//! Needs root (or CAP_NET_ADMIN); skipped, with the reason, where namespaces cannot be made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use ferry_tests::netns::{skipped, Machine};
use ferry_tests::*;

/// The address the README's `--bootstrap` example dials.
const EXAMPLE_IP: &str = "203.0.113.5";
const EXAMPLE_PEER: &str = "12D3Koo...";

/// The command lines of each bash block in the README's "Using it" section, comments removed.
fn readme_blocks() -> Result<Vec<Vec<String>>> {
    section_blocks("Using it")
}

/// The command lines of each bash block in the README section headed `title`, comments removed.
fn section_blocks(title: &str) -> Result<Vec<Vec<String>>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))?;
    let section =
        readme.split(&format!("\n## {title}")).nth(1).with_context(|| format!("README has no \"{title}\" section"))?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut blocks = Vec::new();
    for block in section.split("```bash\n").skip(1) {
        let body = block.split("```").next().unwrap_or_default();
        let lines = body
            .lines()
            .map(|l| l.split(" #").next().unwrap_or_default().trim().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        blocks.push(lines);
    }
    Ok(blocks)
}

/// Where the commands run: the machine, a working folder holding `video.mp4`, `ferry` on PATH, and a cache of
/// its own for `ferry chain`'s state (pid, log, database), so that the chain on this machine's port 9944 is not
/// the one a demo on the host's port 9944 keeps.
struct Shell {
    machine: Machine,
    work: PathBuf,
    path: String,
    cache: PathBuf,
    chain: Option<String>,
}

/// A cache folder whose Chopsticks program and chain spec are those `scripts/fastchain` installed, and whose
/// run folder is new.
fn chain_cache(root: &Path) -> Result<PathBuf> {
    let installed = std::env::var_os("FERRY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ferry"))
        .join("chopsticks");
    let cache = root.join("cache");
    std::fs::create_dir_all(cache.join("chopsticks/run"))?;
    for file in ["up.mjs", "package.json", "node_modules", "run/spec.raw.json"] {
        let from = installed.join(file);
        ensure!(from.exists(), "{} is missing: run `scripts/fastchain spec`", from.display());
        std::os::unix::fs::symlink(&from, cache.join("chopsticks").join(file))?;
    }
    Ok(cache)
}

struct Ran {
    stdout: String,
    stderr: String,
    ok: bool,
}

impl Shell {
    /// `line` run by bash in the machine, as user of node home `home`.
    fn command(&self, home: &Path, line: &str) -> Command {
        let mut c = self.machine.command("bash");
        c.args(["-c", line]).current_dir(&self.work).env("PATH", &self.path).env("FERRY_HOME", home);
        c.env("FERRY_CHAIN_KIND", "chopsticks").env("FERRY_LOG", "warn").env("FERRY_CACHE", &self.cache);
        // `ferry doctor` fails a cache larger than the free disk; the default 10 GiB is more than a CI disk may have.
        c.env("FERRY_RELAY_CACHE_BYTES", "1073741824");
        if let Some(url) = &self.chain {
            c.env("FERRY_CHAIN", url);
        }
        c
    }

    fn try_run(&self, home: &Path, line: &str) -> Result<Ran> {
        let out = self.command(home, line).output().with_context(|| line.to_string())?;
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            ok: out.status.success(),
        };
        eprintln!("$ {line}\n{}{}", ran.stdout, ran.stderr);
        Ok(ran)
    }

    /// Runs `line` to completion; an error unless it succeeds.
    fn run(&self, home: &Path, line: &str) -> Result<Ran> {
        let ran = self.try_run(home, line)?;
        ensure!(ran.ok, "`{line}` failed:\n{}{}", ran.stdout, ran.stderr);
        Ok(ran)
    }

    /// Starts a command that runs until stopped.
    fn spawn(&self, home: &Path, name: &str, line: &str) -> Result<Proc> {
        eprintln!("$ {line} &");
        Proc::start(self.command(home, &format!("exec {line}")), &home.join(format!("{name}.log")))
    }
}

/// The commands of the README's web app section, against the first block's relay while it serves (its API on the
/// default address), with `<CID>` and the home (`~/.ferry`) filled in.
fn web_app_commands(sh: &Shell, home: &Path, cid: &str) -> Result<()> {
    let blocks = section_blocks("The web app and the API")?;
    ensure!(blocks.len() == 1, "the web app section has {} command blocks, not one", blocks.len());
    for line in &blocks[0] {
        let filled = line.replace("<CID>", cid).replace("~/.ferry", &home.display().to_string());
        let expect = if line.contains("openapi.json") {
            "/api/videos"
        } else if line.contains("/api/videos?q=") {
            "My video"
        } else if line.contains("/api/earnings") {
            "pending"
        } else if line.contains("/play") {
            "playlist"
        } else if line.starts_with("ffprobe") {
            "duration="
        } else {
            bail!("the README shows `{line}`, which this test does not run: add it here");
        };
        let mut out = String::new();
        // The relay lists what it holds within a second of starting.
        for _ in 0..20 {
            out = sh.run(home, &filled)?.stdout;
            if out.contains(expect) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        ensure!(out.contains(expect), "`{line}` printed no {expect:?}:\n{out}");
    }
    Ok(())
}

fn account_of(sh: &Shell, home: &Path) -> Result<String> {
    let id: serde_json::Value = serde_json::from_str(&sh.run(home, "ferry id --json")?.stdout)?;
    Ok(id["account"].as_str().context("account")?.to_string())
}

#[test]
fn the_readme_commands_work_as_written() -> Result<()> {
    if skipped() {
        return Ok(());
    }
    let blocks = readme_blocks()?;
    ensure!(blocks.len() == 2, "expected two command blocks under \"Using it\", found {}", blocks.len());
    let root = test_root()?;
    let work = root.path().join("work");
    std::fs::create_dir_all(&work)?;
    let video = make_video(root.path(), 4)?;
    std::fs::copy(&video, work.join("video.mp4"))?;
    let source = decode(&video.to_string_lossy())?;
    // `ferry` on PATH, whatever the tested binary's file is called.
    let bin_dir = root.path().join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    std::os::unix::fs::symlink(ferry_bin(), bin_dir.join("ferry"))?;
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let cache = chain_cache(root.path())?;
    let mut sh = Shell { machine: Machine::new(&[EXAMPLE_IP])?, work, path, cache, chain: None };

    // Without a chain: an operator's relay publishes and serves; a viewer (another home) plays through it.
    let relay_home = root.path().join("relay");
    let watcher = root.path().join("watcher");
    // The viewer's own `ferry init`; a funded dev account, so that it can register content later.
    sh.run(&watcher, "ferry init --dev-account viewer")?;
    let (mut peer, mut cid1) = (String::new(), String::new());
    let (mut relay, mut watch) = (None, None);
    for line in &blocks[0] {
        let words: Vec<&str> = line.split_whitespace().collect();
        match (words[0], words.get(1).copied().unwrap_or_default()) {
            ("ferry", "init") => {
                sh.run(&relay_home, line)?;
            }
            ("ferry", "id") => {
                let out = sh.run(&relay_home, line)?.stdout;
                peer = out.lines().find_map(|l| l.strip_prefix("peer id: ")).context("peer id")?.to_string();
            }
            ("ferry", "publish") => {
                let out = sh.run(&relay_home, line)?.stdout;
                cid1 = out.lines().last().context("publish printed no content id")?.trim().to_string();
            }
            ("ferry", "doctor") => {
                sh.run(&relay_home, line)?;
            }
            ("ferry", "relay") => {
                let p = sh.spawn(&relay_home, "relay", line)?;
                p.line(Duration::from_secs(30), |l| l.contains(&format!("/ip4/{EXAMPLE_IP}/tcp/4001/p2p/")))?;
                relay = Some(p);
                web_app_commands(&sh, &relay_home, &cid1)?;
            }
            ("ferry", "watch") => {
                ensure!(line.contains(EXAMPLE_PEER), "the watch example no longer shows {EXAMPLE_PEER}");
                let line = line.replace("<CID>", &cid1).replace(EXAMPLE_PEER, &peer);
                let p = sh.spawn(&watcher, "watch", &line)?;
                p.line(Duration::from_secs(30), |l| l.starts_with("http://127.0.0.1:8080/"))?;
                watch = Some(p);
            }
            ("ffplay", url) => {
                // No screen here: ffprobe decodes the same URL to the end.
                let url = url.replace("<CID>", &cid1);
                let got = decode_with(sh.machine.command("ffprobe"), &url)?;
                let want = source.video_frames.first().copied();
                ensure!(
                    !got.video_frames.is_empty() && got.video_frames.iter().all(|f| Some(*f) == want),
                    "every rendition should play all {want:?} frames: {:?}",
                    got.video_frames
                );
                let metrics = sh.run(&relay_home, "curl -sf http://127.0.0.1:9464/metrics")?.stdout;
                ensure!(metrics.contains("ferry_"), "the relay's metrics endpoint answered:\n{metrics}");
            }
            ("ferry", "receipts") => {
                // The ledger belongs to the running node; `receipts` reads it once the node has stopped.
                watch.take().context("watch ran")?.stop()?;
                relay.take().context("relay ran")?.stop()?;
                for home in [&relay_home, &watcher] {
                    sh.run(home, line)?;
                }
                let viewer = account_of(&sh, &watcher)?;
                let r: serde_json::Value = serde_json::from_str(&sh.run(&relay_home, "ferry receipts --json")?.stdout)?;
                let sessions = r["relay"]["claims"].as_array().context("claims")?;
                ensure!(
                    sessions
                        .iter()
                        .any(|s| s["latest"]["viewer"] == viewer.as_str() && s["latest"]["bytes"].as_u64() > Some(0)),
                    "the relay's ledger holds no receipt from the viewer: {r}"
                );
            }
            _ => bail!("the README shows `{line}`, which this test does not run: add it here"),
        }
    }
    ensure!(relay.is_none() && watch.is_none(), "the first block no longer ends with `ferry receipts`");

    // With a chain: the dev chain's funded accounts, in homes of their own.
    sh.chain = Some("ws://127.0.0.1:9944".into());
    let [viewer, operator, creator] = ["viewer", "operator", "creator"].map(|n| root.path().join(n));
    let mut cid2 = String::new();
    let mut relay_account = String::new();
    for line in &blocks[1] {
        let words: Vec<&str> = line.split_whitespace().collect();
        match (words[0], words.get(1).copied().unwrap_or_default()) {
            ("ferry", "chain") => {
                sh.run(&viewer, line)?;
                sh.run(&viewer, "ferry chain status")?;
            }
            ("ferry", "init") => {
                ensure!(line.ends_with("--dev-account viewer"), "the init example changed: {line}");
                sh.run(&viewer, line)?;
                sh.run(&operator, &line.replace("viewer", "operator"))?;
                sh.run(&creator, &line.replace("viewer", "creator"))?;
                relay_account = account_of(&sh, &operator)?;
            }
            ("ferry", "operator") => {
                let out = sh.run(&operator, line)?.stdout;
                ensure!(out.contains("block #"), "`{line}` names no block:\n{out}");
            }
            ("ferry", "publish") => {
                let out = sh.run(&creator, line)?.stdout;
                cid2 = out.lines().last().context("publish printed no content id")?.trim().to_string();
            }
            ("ferry", "register") => {
                // Anyone registers content published without a chain: here the viewer that watched it, for the
                // relay's operator, who published it.
                let ran = sh.run(&watcher, &line.replace("<CID>", &cid1))?;
                let creator = account_of(&sh, &relay_home)?;
                ensure!(
                    ran.stderr.contains(&format!("creator {creator}")),
                    "registered for someone else:\n{}",
                    ran.stderr
                );
                ensure!(ran.stderr.contains("block #"), "no block named:\n{}", ran.stderr);
            }
            ("ferry", "lane") => {
                let line = line.replace("<RELAY>", &relay_account);
                if words[2] == "withdraw" {
                    // The README: from the block `close` named. Before it, the command says when.
                    let ran = sh.try_run(&viewer, &line)?;
                    ensure!(!ran.ok && ran.stderr.contains("block #"), "an early withdraw should name the block");
                } else {
                    sh.run(&viewer, &line)?;
                }
            }
            ("ferry", "tip") => {
                let out = sh.run(&viewer, &line.replace("<CID>", &cid2).replace("<AMOUNT>", "1000000000"))?.stdout;
                ensure!(out.contains("block #"), "the tip names no block:\n{out}");
            }
            ("ferry", "balance") => {
                sh.run(&viewer, line)?;
                let b: serde_json::Value = serde_json::from_str(&sh.run(&viewer, "ferry balance --json")?.stdout)?;
                let free: u128 = b["free"].as_str().and_then(|f| f.parse().ok()).context("free balance")?;
                ensure!(free > 0, "no free balance: {b}");
            }
            ("ferry", "earnings") => {
                sh.run(&operator, line)?;
            }
            _ => bail!("the README shows `{line}`, which this test does not run: add it here"),
        }
    }
    ensure!(!cid2.is_empty() && !relay_account.is_empty(), "the chain block lost its publish or init line");
    // Named in a comment of the block: leaving, and the bond's return after the delay.
    let out = sh.run(&operator, "ferry operator unregister")?.stdout;
    ensure!(out.contains("withdrawn from block #"), "unregister does not say when:\n{out}");
    let early = sh.try_run(&operator, "ferry operator withdraw-bond")?;
    ensure!(!early.ok && early.stderr.contains("block #"), "an early withdraw-bond should name the block");
    // Named in a comment of the block: `down --forget` stops the chain and deletes its state.
    let out = sh.run(&viewer, "ferry chain down --forget")?.stdout;
    ensure!(out.contains("stopped") && out.contains("deleted"), "down --forget did not stop and delete:\n{out}");
    Ok(())
}
