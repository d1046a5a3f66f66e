//! Many viewers on one relay, over the chunk protocol into a sink: the transport-only figure. Each viewer has its
//! own key and its own libp2p connection, verifies every 16 KiB group and signs a receipt per 256 KiB, as `ferry
//! watch` does; nothing goes through the HLS gateway or a viewer's store (see `ferry_node::viewer::load`).
//!
//!   cargo run --release --example viewers_bench -- RELAY_MULTIADDR CID VIEWERS [RENDITION]
//!
//! Prints one line: `viewers=N bytes=B seconds=S gbit=G errors=E first_ms_median=M first_ms_max=X`, where first_ms
//! is each viewer's time from dialling the relay to its first verified segment.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_node::content::store::Store;
use ferry_node::money::ledger::Ledger;
use ferry_node::viewer::load::sink_viewer;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        bail!("usage: viewers_bench RELAY_MULTIADDR CID VIEWERS [RENDITION]");
    }
    let relay: ferry_node::libp2p::Multiaddr = args[1].parse().context("relay multiaddr")?;
    let cid = ferry_node::identity::parse_hex32(&args[2]).context("CID: 64 hex digits")?;
    let viewers: usize = args[3].parse().context("VIEWERS")?;
    let rendition: usize = args.get(4).map_or(Ok(0), |r| r.parse()).context("RENDITION")?;
    let home = tempfile::tempdir()?;
    let store = Store::open(home.path(), 1 << 30)?;
    let ledger = Ledger::open(home.path())?;

    let start = Instant::now();
    let tasks: Vec<_> = (0..viewers)
        .map(|_| tokio::spawn(sink_viewer(relay.clone(), cid, rendition, store.clone(), ledger.clone())))
        .collect();
    let (mut bytes, mut firsts, mut errors) = (0, vec![], vec![]);
    for t in tasks {
        match t.await.context("a viewer task panicked")? {
            Ok(w) => {
                bytes += w.bytes;
                firsts.extend(w.first_segment);
                errors.extend(w.error);
            }
            Err(e) => errors.push(e),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    ledger.close().await?;
    firsts.sort();
    let ms = |d: Option<&Duration>| d.map_or(-1.0, |d| d.as_secs_f64() * 1e3);
    for e in errors.iter().take(5) {
        eprintln!("viewer error: {e}");
    }
    println!(
        "viewers={viewers} bytes={bytes} seconds={seconds:.3} gbit={:.3} errors={} first_ms_median={:.0} first_ms_max={:.0}",
        bytes as f64 * 8.0 / seconds / 1e9,
        errors.len(),
        ms(firsts.get(firsts.len() / 2)),
        ms(firsts.last()),
    );
    Ok(())
}
