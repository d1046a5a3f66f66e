//! `GET /api/status`: who this node is, what it is connected to, and how much it holds and serves.

use std::time::Duration;

use axum::Json;
use serde::Serialize;

use super::State;
use crate::identity::account_hex;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    pub version: String,
    pub peer_id: String,
    /// The node's account (0x and 64 hex characters).
    pub account: String,
    /// Where other nodes reach this one.
    pub addresses: Vec<String>,
    /// Peers connected now.
    pub peers: usize,
    pub storage: Storage,
    pub chain: ChainStatus,
    /// Viewer sessions open now.
    pub sessions: i64,
    pub bytes_served: u64,
    pub chunks_served: u64,
    /// What this relay charges per MiB.
    pub price_per_mib: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Storage {
    /// Cached video (what the store may evict); published video is kept on top of it.
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChainStatus {
    pub url: Option<String>,
    pub connected: bool,
    pub finalized: Option<u32>,
    pub error: Option<String>,
}

/// How long the status waits for the chain before it reports it unreachable.
const CHAIN_WAIT: Duration = Duration::from_secs(3);

#[utoipa::path(get, path = "/api/status", tag = "status", responses((status = 200, body = Status)))]
pub async fn status(axum::extract::State(node): State) -> Json<Status> {
    let chain = match &node.link {
        None => ChainStatus { url: None, connected: false, finalized: None, error: Some("no chain configured".into()) },
        Some(link) => {
            let finalized = tokio::time::timeout(CHAIN_WAIT, async { link.get().await?.finalized_number().await })
                .await
                .unwrap_or(Err(crate::chain::ChainError::Timeout(CHAIN_WAIT)));
            match finalized {
                Ok(n) => ChainStatus { url: Some(link.url().into()), connected: true, finalized: Some(n), error: None },
                Err(e) => ChainStatus {
                    url: Some(link.url().into()),
                    connected: false,
                    finalized: None,
                    error: Some(e.to_string()),
                },
            }
        }
    };
    let m = &node.metrics;
    Json(Status {
        version: env!("CARGO_PKG_VERSION").into(),
        peer_id: node.identity.peer_id.to_string(),
        account: account_hex(&node.identity.account),
        addresses: node.addresses.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        peers: node.hosts.count(),
        storage: Storage { used_bytes: node.store.cached_bytes(), limit_bytes: node.cache_limit },
        chain,
        sessions: m.sessions_active.get(),
        bytes_served: m.bytes_served.get(),
        chunks_served: m.chunks_served.get(),
        price_per_mib: (node.price_per_mib)().to_string(),
    })
}
