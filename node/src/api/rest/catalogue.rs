//! The catalogue and playback: `GET /api/videos` (search, paging), a video's details, starting playback through
//! this node's gateway (`/hls/<cid>/master.m3u8`), and what the playback verified and paid.

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{content_id, ApiError, State};
use crate::content::catalogue::{Page, Video};
use crate::identity::account_hex;

/// Most videos on one page.
const MAX_LIMIT: usize = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// Words of the title or the creator's account; empty lists everything.
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: usize,
    /// At most 100.
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

#[utoipa::path(get, path = "/api/videos", tag = "catalogue", params(Search),
    responses((status = 200, body = Page, description = "Newest first")))]
pub async fn videos(axum::extract::State(node): State, Query(s): Query<Search>) -> Json<Page> {
    Json(node.catalogue.search(&s.q, s.offset, s.limit.min(MAX_LIMIT)))
}

#[utoipa::path(get, path = "/api/videos/{cid}", tag = "catalogue", params(("cid" = String, Path)),
    responses((status = 200, body = Video), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub async fn video(axum::extract::State(node): State, Path(cid): Path<String>) -> Result<Json<Video>, ApiError> {
    let cid = content_id(&cid)?;
    node.catalogue.get(&cid).map(Json).ok_or_else(|| ApiError::not_found("this node has not heard of that video"))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Playing {
    /// The master playlist on this node's gateway, for hls.js or any player.
    pub playlist: String,
}

#[utoipa::path(post, path = "/api/videos/{cid}/play", tag = "catalogue", params(("cid" = String, Path)),
    security(("token" = [])),
    responses((status = 200, body = Playing), (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody), (status = 502, body = super::ErrorBody)))]
pub async fn play(
    axum::extract::State(node): State,
    headers: HeaderMap,
    Path(cid): Path<String>,
) -> Result<Json<Playing>, ApiError> {
    node.authorize(&headers)?;
    let cid = content_id(&cid)?;
    let manifest = node.fetcher.manifest(&cid).await.map_err(ApiError::upstream)?;
    node.gateway.play(cid, manifest);
    Ok(Json(Playing { playlist: format!("/hls/{}/master.m3u8", hex::encode(cid)) }))
}

/// What this node signed for a video since it started: for its playbacks, and for cache fills it made as a relay.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Playback {
    pub cid: String,
    /// Bytes this node verified and signed receipts for (video it holds itself needs none).
    pub bytes_verified: u64,
    /// Receipts signed: the latest receipt's number in each claim (one per relay), summed.
    pub receipts: u64,
    pub relays: Vec<RelayPaid>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RelayPaid {
    /// The relay's account.
    pub relay: String,
    pub bytes: u64,
    /// What this node's receipts promise it: the bytes at its price (the creator's share and the fee come out of
    /// that) and any tips. The relay settles it from this node's lane.
    pub paid: String,
}

#[utoipa::path(get, path = "/api/videos/{cid}/playback", tag = "catalogue", params(("cid" = String, Path)),
    responses((status = 200, body = Playback), (status = 400, body = super::ErrorBody)))]
pub async fn playback(axum::extract::State(node): State, Path(cid): Path<String>) -> Result<Json<Playback>, ApiError> {
    let content = content_id(&cid)?;
    let mut by_relay: BTreeMap<[u8; 32], (u64, u128)> = BTreeMap::new();
    let mut receipts = 0;
    for r in node.ledger.signed_for(&content) {
        let e = by_relay.entry(r.relay).or_default();
        e.0 += r.bytes;
        e.1 += r.amount + r.tip;
        receipts += r.seq;
    }
    Ok(Json(Playback {
        cid: hex::encode(content),
        bytes_verified: by_relay.values().map(|(b, _)| b).sum(),
        receipts,
        relays: by_relay
            .into_iter()
            .map(|(relay, (bytes, paid))| RelayPaid { relay: account_hex(&relay), bytes, paid: paid.to_string() })
            .collect(),
    }))
}
