//! The REST API every relay serves on its API address, and the web app built on it. The OpenAPI document at
//! `/api/openapi.json` is generated from the handlers and types below ([`ApiDoc`]).

mod catalogue;
mod money;
mod publish;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::OpenApi;

use crate::api::gateway::Gateway;
use crate::chain::Link;
use crate::content::catalogue::Catalogue;
use crate::content::store::Store;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::money::ledger::Ledger;
use crate::p2p::PeerHosts;
use crate::viewer::fetch::Fetcher;

pub use money::EarningsHistory;

/// What the handlers share.
pub struct Node {
    pub home: PathBuf,
    pub identity: Identity,
    pub token: String,
    pub store: Store,
    pub ledger: Ledger,
    pub metrics: Metrics,
    pub fetcher: Fetcher,
    pub gateway: Gateway,
    pub catalogue: Catalogue,
    pub link: Option<Link>,
    pub hosts: PeerHosts,
    /// This relay's listen addresses, as the network reported them.
    pub addresses: Arc<Mutex<Vec<String>>>,
    pub cache_limit: u64,
    pub price_per_mib: Arc<dyn Fn() -> u128 + Send + Sync>,
    /// Defaults for what is published through the API.
    pub publish: crate::config::PublishConfig,
    pub history: EarningsHistory,
    pub(crate) jobs: publish::Jobs,
    /// Relays this node opened lanes to through the API, listed by `GET /api/money` with those it paid.
    pub(crate) lanes_opened: Mutex<std::collections::BTreeSet<[u8; 32]>>,
    /// One creator audit at a time: they share a cache file.
    pub(crate) auditing: Arc<tokio::sync::Mutex<()>>,
    /// One upload transcoded at a time: ffmpeg takes every core.
    pub(crate) transcoding: Arc<tokio::sync::Semaphore>,
}

type State = axum::extract::State<Arc<Node>>;

/// An error answer: `{"error": "…"}` with its status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and, where it helps, what to do.
    pub error: String,
}

impl ApiError {
    fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, m.into())
    }
    fn not_found(m: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, m.into())
    }
    /// The chain or the network failed: the node is fine, something it depends on is not.
    fn upstream(m: impl std::fmt::Display) -> ApiError {
        ApiError(StatusCode::BAD_GATEWAY, m.to_string())
    }
    fn internal(m: impl std::fmt::Display) -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, m.to_string())
    }
    fn no_chain() -> ApiError {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no chain configured: set [chain] url in config.toml or FERRY_CHAIN, and restart it".into(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<crate::chain::ChainError> for ApiError {
    fn from(e: crate::chain::ChainError) -> ApiError {
        match e.refusal() {
            Some(_) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            None => ApiError::upstream(e),
        }
    }
}

impl Node {
    /// Refuses a request without the node's token.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if crate::api::token::matches(&self.token, given.trim()) {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send `Authorization: Bearer <token>` with the token in the node's api-token \
                 file (the address `ferry relay` prints carries it)"
                    .into(),
            ))
        }
    }

    async fn chain(&self) -> Result<crate::chain::Chain, ApiError> {
        Ok(self.link.as_ref().ok_or_else(ApiError::no_chain)?.get().await?)
    }
}

fn content_id(cid: &str) -> Result<ferry_primitives::ContentId, ApiError> {
    crate::identity::parse_hex32(cid)
        .ok_or_else(|| ApiError::bad_request(format!("{cid:?} is not a content id (64 hex characters)")))
}

/// A JSON body, read only after the token was checked, with a JSON error when it does not parse.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not what this route takes: {e}")))
}

fn amount(s: &str) -> Result<u128, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not an amount (a whole number of the smallest unit)")))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry node API", description = "A Ferry relay's catalogue, playback, publishing, money and status. \
        Amounts are decimal strings of the chain's smallest unit (1 UNIT = 10^12). Routes marked with the bearer \
        scheme need the token in the node's `api-token` file."),
    paths(
        status::status,
        catalogue::videos,
        catalogue::video,
        catalogue::play,
        catalogue::playback,
        money::tip,
        publish::upload,
        publish::job,
        money::creator,
        money::money,
        money::open_lane,
        money::close_lane,
        money::earnings,
    ),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route of the node's API address: the API, its document, the HLS gateway, `/metrics` and the web app.
pub fn router(node: Arc<Node>) -> Router {
    let metrics = node.metrics.clone();
    let gateway = node.gateway.router();
    Router::new()
        .route("/api/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/api/status", get(status::status))
        .route("/api/videos", get(catalogue::videos))
        .route("/api/videos/{cid}", get(catalogue::video))
        .route("/api/videos/{cid}/play", post(catalogue::play))
        .route("/api/videos/{cid}/playback", get(catalogue::playback))
        .route("/api/videos/{cid}/tip", post(money::tip))
        .route("/api/publish", post(publish::upload))
        .route("/api/publish/{job}", get(publish::job))
        .route("/api/creator", get(money::creator))
        .route("/api/money", get(money::money))
        .route("/api/money/lanes", post(money::open_lane))
        .route("/api/money/lanes/{relay}/close", post(money::close_lane))
        .route("/api/earnings", get(money::earnings))
        .fallback(|| async { ApiError::not_found("no such route: GET /api/openapi.json lists them") })
        .with_state(node)
        .route("/metrics", get(move || crate::api::metrics::render(metrics.clone())))
        .nest("/hls", gateway)
        .merge(crate::api::app::router())
        .layer(axum::middleware::from_fn(local_host_only))
}

/// Answers only requests addressed to an IP address or `localhost`: a page on some domain that its owner pointed
/// at 127.0.0.1 (DNS rebinding) reaches the node as that domain, and is refused.
async fn local_host_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok() {
        return next.run(req).await;
    }
    ApiError(
        StatusCode::MISDIRECTED_REQUEST,
        format!("this node answers requests to its IP address or localhost, not to {host:?}"),
    )
    .into_response()
}

/// Serves the API; returns the bound address. With `anywhere` (the address is the default), a port in use is
/// replaced by a free one.
pub async fn serve(addr: SocketAddr, anywhere: bool, node: Arc<Node>) -> std::io::Result<SocketAddr> {
    let local = crate::api::serve(addr, anywhere, "API", router(node.clone())).await?;
    tokio::spawn(money::keep_history(node));
    Ok(local)
}
