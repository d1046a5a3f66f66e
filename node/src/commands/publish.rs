//! `ferry publish` and `ferry register`: content into the store, and onto the chain so relays can be paid for it.

use std::path::Path;

use anyhow::{bail, Context as _};

use super::{content_id, with_spinner, Context};
use crate::chain::Registration;
use crate::content::publish::{PublishOptions, Source};
use crate::content::store::Store;
use crate::identity::{account_hex, Identity};

/// Publishes `source` and prints its content id last, registering it on chain when a chain is configured.
pub async fn publish(
    ctx: &Context,
    source: String,
    title: Option<String>,
    share_bps: Option<u16>,
) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let id = ctx.identity()?;
    let store = Store::open(&ctx.home, cfg.relay.cache_bytes)?;
    let title = title
        .unwrap_or_else(|| Path::new(&source).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default());
    let opts = PublishOptions {
        title,
        creator_share_bps: share_bps.unwrap_or(cfg.publish.creator_share_bps),
        segment_seconds: cfg.publish.segment_seconds,
        renditions: cfg.publish.renditions,
        progress: None,
    };
    if opts.creator_share_bps > 10_000 {
        bail!("--share-bps {} is above 10000 (100%)", opts.creator_share_bps);
    }
    let source = Source::parse(&source);
    let (cid, m) = crate::content::publish::publish(source, &opts, &id, &store).await.context("publish failed")?;
    let segments: usize = m.manifest.renditions.iter().map(|r| r.segments.len()).sum();
    let bytes: u64 = m.manifest.blobs().map(|s| s.size).sum();
    eprintln!(
        "published {:?}: {} renditions, {segments} segments, {bytes} bytes; a relay on this home serves it",
        String::from_utf8_lossy(&m.manifest.title),
        m.manifest.renditions.len()
    );
    if let Some(url) = ctx.chain.clone().or(cfg.chain.url.clone()) {
        register_content(&url, &id, &m).await.with_context(|| {
            format!(
                "published locally as {}, but not registered on chain; once the chain is up, run `ferry register {}`",
                hex::encode(cid),
                hex::encode(cid)
            )
        })?;
    }
    println!("{}", hex::encode(cid));
    Ok(())
}

/// Registers content held in this home (published or watched) from its manifest.
pub async fn register(ctx: &Context, cid: &str) -> anyhow::Result<()> {
    let cid = content_id(cid)?;
    let cfg = ctx.config()?;
    let id = ctx.identity()?;
    let store = Store::open(&ctx.home, cfg.relay.cache_bytes)?;
    let m = store.manifest(&cid)?.with_context(|| {
        format!(
            "no manifest for {} in {}: publish it (or watch it) with this home first",
            hex::encode(cid),
            ctx.home.display()
        )
    })?;
    register_content(&ctx.chain_url(&cfg)?, &id, &m).await
}

/// Registers content on chain from its manifest's header, unless it is registered already. Anyone may submit
/// it: the content id commits to the creator and share, so the registration always names the manifest's creator.
async fn register_content(url: &str, id: &Identity, m: &ferry_primitives::SignedManifest) -> anyhow::Result<()> {
    let c = crate::chain::Chain::connect(url, id.secret()).await?;
    let header = m.manifest.header();
    eprintln!(
        "registering content {} on chain (creator {}, share {} bps) unless it is already",
        hex::encode(header.content_id()),
        account_hex(&header.creator),
        header.creator_share_bps
    );
    match with_spinner(c.ensure_content(header.clone())).await? {
        Registration::Already { creator, share_bps } => {
            eprintln!("already registered on chain to {} (share {share_bps} bps)", account_hex(&creator));
        }
        Registration::New(at) => eprintln!(
            "registered on chain with a {} bps creator share: finalized in block #{}",
            header.creator_share_bps, at.block_number
        ),
    }
    Ok(())
}
