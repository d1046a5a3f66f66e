//! Which chain a node's receipts are signed for, learned once and remembered in the home.

use std::path::Path;

use anyhow::{bail, Context as _};
use ferry_primitives::Domain;

use crate::chain::Link;
use crate::config::Config;
use crate::identity::{parse_hex32, Identity};

/// Where a node remembers the genesis of the chain it last reached: `<url> <genesis>`.
const GENESIS_FILE: &str = "chain-genesis";

/// The domain receipts sign for, and a link to the chain when one is configured. With a chain, its genesis is
/// the domain; a genesis in the config must match it. The genesis is remembered in the home, so a node can start
/// while the chain is down (the config's genesis, if set, serves the same purpose).
pub(super) async fn domain_and_link(
    home: &Path,
    cfg: &Config,
    url: Option<String>,
    id: &Identity,
) -> anyhow::Result<(Domain, Option<Link>)> {
    let configured = parse_hex32(&cfg.chain.genesis)
        .with_context(|| format!("chain.genesis {:?} is not a 32-byte hex hash", cfg.chain.genesis))?;
    let Some(url) = url.or(cfg.chain.url.clone()) else { return Ok((Domain(configured), None)) };
    let remembered = home.join(GENESIS_FILE);
    let link = Link::new(url, id.secret());
    match link.get().await {
        Ok(c) => {
            let g = c.genesis();
            if configured != [0; 32] && configured != g {
                bail!(
                    "[chain] genesis 0x{} is not the genesis of the chain at {} (0x{}); fix one of them",
                    hex::encode(configured),
                    link.url(),
                    hex::encode(g)
                );
            }
            let line = format!("{} 0x{}\n", link.url(), hex::encode(g));
            if let Err(e) = std::fs::write(&remembered, line) {
                tracing::warn!(error = %e, path = %remembered.display(), "cannot remember the chain's genesis");
            }
            Ok((Domain(g), Some(link)))
        }
        Err(e) => {
            let from_file = std::fs::read_to_string(&remembered).ok().and_then(|t| {
                let (u, g) = t.trim().split_once(' ')?;
                (u == link.url()).then(|| parse_hex32(g)).flatten()
            });
            let genesis = if configured != [0; 32] { Some(configured) } else { from_file };
            match genesis {
                Some(g) => {
                    tracing::warn!(error = %e, genesis = %format!("0x{}", hex::encode(g)), "chain unreachable; using the genesis seen before and retrying in the background");
                    Ok((Domain(g), Some(link)))
                }
                None => Err(e).context(
                    "cannot learn the chain's genesis hash: start the chain (`ferry chain up`) or set [chain] genesis",
                ),
            }
        }
    }
}
