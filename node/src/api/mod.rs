//! What a node serves over HTTP: the viewer's HLS gateway, the relay's Prometheus metrics (counted in
//! `crate::metrics`), and the REST API with the web app.

pub mod app;
pub mod gateway;
pub mod metrics;
pub mod rest;
pub mod token;

use std::net::SocketAddr;

/// Serves `app` on `addr` until the process ends; returns the bound address. With `anywhere` (the address is the
/// default, not chosen), a port in use is replaced by a free one, so several nodes run on one machine.
pub async fn serve(
    addr: SocketAddr,
    anywhere: bool,
    what: &'static str,
    app: axum::Router,
) -> std::io::Result<SocketAddr> {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Err(e) if anywhere && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(%addr, what, "port in use; taking a free one");
            tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?
        }
        r => r?,
    };
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, what, "stopped serving");
        }
    });
    Ok(local)
}
