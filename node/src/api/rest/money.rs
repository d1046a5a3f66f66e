//! Money through the API: the balance and lanes, tips, the operator's earnings (with their history), and what a
//! creator's videos earned, read from the chain by the audit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{amount, content_id, json_body, ApiError, Node, State};
use crate::identity::{account_hex, parse_hex32};
use crate::money::earnings::Earnings;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TipRequest {
    /// In the chain's smallest unit.
    pub amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Landed {
    /// The finalized block the transaction is in.
    pub block_number: u32,
    pub block_hash: String,
}

#[utoipa::path(post, path = "/api/videos/{cid}/tip", tag = "money", params(("cid" = String, Path)),
    request_body = TipRequest, security(("token" = [])),
    responses((status = 200, body = Landed), (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody), (status = 422, body = super::ErrorBody, description = "The chain refused it"),
        (status = 502, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn tip(
    axum::extract::State(node): State,
    headers: HeaderMap,
    Path(cid): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Landed>, ApiError> {
    node.authorize(&headers)?;
    let req: TipRequest = json_body(&body)?;
    let cid = content_id(&cid)?;
    let amount = amount(&req.amount)?;
    let at = node.chain().await?.tip(cid, amount).await?;
    Ok(Json(Landed { block_number: at.block_number, block_hash: format!("0x{}", hex::encode(at.block_hash)) }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Money {
    pub account: String,
    pub free: String,
    /// Lanes to the relays this node paid or opened a lane to.
    pub lanes: Vec<LaneView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LaneView {
    pub relay: String,
    pub funds: String,
    /// The block from which a closing lane's rest can be withdrawn.
    pub closing_at: Option<u32>,
}

#[utoipa::path(get, path = "/api/money", tag = "money",
    responses((status = 200, body = Money), (status = 502, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn money(axum::extract::State(node): State) -> Result<Json<Money>, ApiError> {
    let c = node.chain().await?;
    let me = node.identity.account;
    let mut relays = node.lanes_opened.lock().unwrap_or_else(|p| p.into_inner()).clone();
    relays.extend(node.ledger.signed_relays());
    let mut lanes = vec![];
    for relay in relays {
        let l = c.lane(me, relay).await?;
        lanes.push(LaneView { relay: account_hex(&relay), funds: l.funds.to_string(), closing_at: l.closing_at });
    }
    Ok(Json(Money { account: account_hex(&me), free: c.balance(me).await?.to_string(), lanes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OpenLane {
    /// The relay's account (0x and 64 hex characters).
    pub relay: String,
    pub amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LaneFunded {
    pub block_number: u32,
    /// What the lane holds now.
    pub funds: String,
}

fn relay_account(s: &str) -> Result<[u8; 32], ApiError> {
    parse_hex32(s).ok_or_else(|| ApiError::bad_request(format!("{s:?} is not an account (0x and 64 hex characters)")))
}

#[utoipa::path(post, path = "/api/money/lanes", tag = "money", request_body = OpenLane, security(("token" = [])),
    responses((status = 200, body = LaneFunded), (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 502, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn open_lane(
    axum::extract::State(node): State,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<LaneFunded>, ApiError> {
    node.authorize(&headers)?;
    let req: OpenLane = json_body(&body)?;
    let relay = relay_account(&req.relay)?;
    let amount = amount(&req.amount)?;
    let (at, funds) = node.chain().await?.open_lane(relay, amount).await?;
    node.lanes_opened.lock().unwrap_or_else(|p| p.into_inner()).insert(relay);
    Ok(Json(LaneFunded { block_number: at.block_number, funds: funds.to_string() }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LaneClosing {
    pub block_number: u32,
    /// From this block the rest can be withdrawn (`ferry lane withdraw`); the relay can settle until then.
    pub withdrawable_from: u32,
}

#[utoipa::path(post, path = "/api/money/lanes/{relay}/close", tag = "money", params(("relay" = String, Path)),
    security(("token" = [])),
    responses((status = 200, body = LaneClosing), (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 502, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn close_lane(
    axum::extract::State(node): State,
    headers: HeaderMap,
    Path(relay): Path<String>,
) -> Result<Json<LaneClosing>, ApiError> {
    node.authorize(&headers)?;
    let relay = relay_account(&relay)?;
    let (at, until) = node.chain().await?.close_lane(relay).await?;
    Ok(Json(LaneClosing { block_number: at.block_number, withdrawable_from: until }))
}

#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct EarningsView {
    /// Owed by receipts not yet submitted.
    pub pending: String,
    /// Submitted, waiting for a finalized block.
    pub in_flight: String,
    /// Settled short (the lane ran dry); sent again once it holds funds.
    pub short: String,
    /// Paid by viewers' lanes for this relay's service.
    pub settled: String,
    /// The operator's part of `settled`.
    pub operator_paid: String,
    pub by_content: Vec<ContentEarnings>,
    /// The figures each time the node wrote new ones (every settlement round, or every few seconds without a
    /// chain), oldest first, the last 1,800 at most.
    pub history: Vec<Sample>,
}

#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct ContentEarnings {
    pub content: String,
    pub bytes: u64,
    /// Everything its receipts promise.
    pub owed: String,
    pub settled: String,
    pub operator_paid: String,
}

#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct Sample {
    /// Unix seconds.
    pub at: u64,
    pub pending: String,
    pub in_flight: String,
    pub settled: String,
}

/// How often the history takes a sample, and how many it keeps.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
const SAMPLES: usize = 1_800;

#[derive(Default, Clone)]
pub struct EarningsHistory(Arc<Mutex<VecDeque<Sample>>>);

/// Samples `earnings.json` (which the settler keeps current) into the history.
pub(super) async fn keep_history(node: Arc<Node>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tick.tick().await;
        if let Ok(Some(e)) = Earnings::read(&node.home) {
            let mut h = node.history.0.lock().unwrap_or_else(|p| p.into_inner());
            // A new point only when the node wrote new figures.
            if h.back().is_some_and(|last| last.at == e.as_of) {
                continue;
            }
            h.push_back(Sample {
                at: e.as_of,
                pending: e.pending.to_string(),
                in_flight: e.in_flight.to_string(),
                settled: e.settled.to_string(),
            });
            while h.len() > SAMPLES {
                h.pop_front();
            }
        }
    }
}

#[utoipa::path(get, path = "/api/earnings", tag = "money",
    responses((status = 200, body = EarningsView), (status = 500, body = super::ErrorBody)))]
pub async fn earnings(axum::extract::State(node): State) -> Result<Json<EarningsView>, ApiError> {
    let e = Earnings::read(&node.home).map_err(ApiError::internal)?.unwrap_or_default();
    let mut by: BTreeMap<String, (u64, u128, u128, u128)> = BTreeMap::new();
    for c in &e.claims {
        let t = by.entry(c.content.clone()).or_default();
        t.0 += c.bytes;
        t.1 += c.owed;
        t.2 += c.settled;
        t.3 += c.operator_paid;
    }
    let history = node.history.0.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
    Ok(Json(EarningsView {
        pending: e.pending.to_string(),
        in_flight: e.in_flight.to_string(),
        short: e.short.to_string(),
        settled: e.settled.to_string(),
        operator_paid: e.operator_paid.to_string(),
        by_content: by
            .into_iter()
            .map(|(content, (bytes, owed, settled, op))| ContentEarnings {
                content,
                bytes,
                owed: owed.to_string(),
                settled: settled.to_string(),
                operator_paid: op.to_string(),
            })
            .collect(),
        history,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Creator {
    pub account: String,
    /// The last block the figures cover.
    pub checked_to: u32,
    pub videos: Vec<CreatorVideo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatorVideo {
    pub cid: String,
    pub title: String,
    /// Everything the creator received for it: the share of every payment and of every tip.
    pub share: String,
    /// What viewers tipped, directly or in their receipts (before the fee).
    pub tips: String,
    /// Bytes relays were paid for.
    pub bytes: u64,
}

#[utoipa::path(get, path = "/api/creator", tag = "money",
    responses((status = 200, body = Creator), (status = 502, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub async fn creator(axum::extract::State(node): State) -> Result<Json<Creator>, ApiError> {
    let me = account_hex(&node.identity.account);
    let url = node.link.as_ref().ok_or_else(ApiError::no_chain)?.url().to_string();
    // Held by the audit itself: a request cancelled meanwhile does not let a second audit start on the cache.
    let one = node.auditing.clone().lock_owned().await;
    let dir = node.home.join("audit");
    // On a blocking thread that runs the audit to its end: the audit's reads are futures the compiler cannot
    // show to be `Send` across its borrowed keys, which a handler's future must be.
    let handle = tokio::runtime::Handle::current();
    let (to, report) = tokio::task::spawn_blocking(move || {
        let _one = one;
        handle.block_on(async {
            let source = crate::audit::read::ChainSource::connect(&url).await?;
            let to = source.finalized().await?;
            let cache = crate::audit::cache::Cache::path(&dir, source.genesis());
            let report = crate::audit::audit_chain(&source, 1, to, Some(&cache), |_| {}).await?;
            Ok::<_, crate::audit::AuditError>((to, report))
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::upstream)?;
    let mine = node.catalogue.search(&me, 0, usize::MAX).videos.into_iter().filter(|v| v.creator == me);
    let videos = mine
        .map(|v| {
            let t = report.by_content.iter().find(|t| t.of == v.cid);
            CreatorVideo {
                share: t.map_or(0, |t| t.creator).to_string(),
                tips: t.map_or(0, |t| t.tips + t.direct_tips).to_string(),
                bytes: t.map_or(0, |t| t.bytes),
                cid: v.cid,
                title: v.title,
            }
        })
        .collect();
    Ok(Json(Creator { account: me, checked_to: to, videos }))
}
