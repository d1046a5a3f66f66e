//! Viewers without a player, for benchmarks and load tests: each has its own key and its own connection to the
//! relay, verifies and pays for every segment as `ferry watch` does, and drops the bytes. Many can share one
//! process, one store (for the manifest) and one ledger (for their copies of their receipts).

use std::time::{Duration, Instant};

use ferry_primitives::{ContentId, Domain};
use libp2p::Multiaddr;

use crate::content::store::Store;
use crate::identity::Identity;
use crate::money::ledger::Ledger;
use crate::p2p::{self, NetConfig};
use crate::viewer::fetch::Fetcher;

/// What one viewer got.
#[derive(Debug, Default)]
pub struct Watched {
    pub bytes: u64,
    /// From dialling the relay to the first verified segment.
    pub first_segment: Option<Duration>,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// One new viewer fetches every segment of rendition `rendition` of `cid` from the relay at `relay`, in order.
pub async fn sink_viewer(
    relay: Multiaddr,
    cid: ContentId,
    rendition: usize,
    store: Store,
    ledger: Ledger,
) -> Result<Watched, String> {
    let identity = Identity::from_secret(rand::random());
    let (client, control, _events) = p2p::start(&identity, NetConfig::viewer()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let peer = client.dial(&relay).await.map_err(|e| format!("dialling the relay: {e}"))?;
    let fetcher = Fetcher::new(
        identity,
        client,
        control,
        store,
        ledger,
        Domain([0; 32]),
        u128::MAX,
        Duration::from_secs(30),
        None,
    );
    fetcher.set_bootstrap(vec![peer]);
    let manifest = fetcher.manifest(&cid).await.map_err(|e| e.to_string())?;
    let segments = &manifest
        .manifest
        .renditions
        .get(rendition)
        .ok_or_else(|| format!("the video has no rendition {rendition}"))?
        .segments;
    let mut out = Watched::default();
    for s in segments {
        match fetcher.fetch(&cid, s).await {
            Ok(data) => {
                out.bytes += data.len() as u64;
                out.first_segment.get_or_insert_with(|| start.elapsed());
            }
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        }
    }
    fetcher.finish(Duration::from_secs(10)).await;
    Ok(out)
}
