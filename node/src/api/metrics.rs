//! Serves the relay's Prometheus metrics at `http://<metrics addr>/metrics` (and on the API address).

use std::net::SocketAddr;

use axum::response::IntoResponse;

use crate::metrics::Metrics;

/// The `/metrics` answer.
pub async fn render(metrics: Metrics) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.render(),
    )
}

/// Serves `/metrics` until the task is dropped; returns the address it listens on.
pub async fn serve(metrics: Metrics, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = axum::Router::new().route("/metrics", axum::routing::get(move || render(metrics.clone())));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(local)
}
