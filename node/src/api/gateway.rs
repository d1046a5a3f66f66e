//! The viewer's local HLS gateway: any player (ffplay, VLC, mpv, hls.js) opens
//! `http://127.0.0.1:PORT/<cid>/master.m3u8`. Playlists come from the signed manifest; segments are fetched and
//! verified through the [`Fetcher`], and served with the right content type, Range requests and CORS.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferry_primitives::{ContentId, SignedManifest};
use tower_http::cors::CorsLayer;

use crate::content::playlist;
use crate::viewer::fetch::Fetcher;

struct Gateway {
    cid: ContentId,
    manifest: SignedManifest,
    fetcher: Fetcher,
    prefetch: usize,
}

/// Serves the gateway; returns the bound address. With `anywhere` (the address is the default, not chosen), a
/// port in use is replaced by a free one, so several viewers run on one machine.
pub async fn serve(
    addr: SocketAddr,
    anywhere: bool,
    cid: ContentId,
    manifest: SignedManifest,
    fetcher: Fetcher,
    prefetch: usize,
) -> std::io::Result<SocketAddr> {
    let state = Arc::new(Gateway { cid, manifest, fetcher, prefetch });
    let app = Router::new()
        .route("/{cid}/master.m3u8", get(master))
        .route("/{cid}/{rendition}/{file}", get(rendition_file))
        .layer(CorsLayer::permissive())
        .with_state(state);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Err(e) if anywhere && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(%addr, "gateway port in use; taking a free one");
            tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?
        }
        r => r?,
    };
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "gateway stopped");
        }
    });
    Ok(local)
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{what} not found\n")).into_response()
}

fn check_cid(g: &Gateway, cid: &str) -> bool {
    crate::identity::parse_hex32(cid) == Some(g.cid)
}

async fn master(State(g): State<Arc<Gateway>>, Path(cid): Path<String>) -> Response {
    if !check_cid(&g, &cid) {
        return not_found("content");
    }
    playlist_response(playlist::master(&g.manifest.manifest))
}

fn playlist_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/vnd.apple.mpegurl"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

async fn rendition_file(
    State(g): State<Arc<Gateway>>,
    Path((cid, rendition, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if !check_cid(&g, &cid) {
        return not_found("content");
    }
    let m = &g.manifest.manifest;
    let Some(r) = m.renditions.iter().find(|r| r.name == rendition.as_bytes()) else {
        return not_found("rendition");
    };
    if file == "index.m3u8" {
        return playlist_response(playlist::media(m, r));
    }
    let (segment, index) = if file == "init.mp4" {
        match &r.init {
            Some(s) => (s, None),
            None => return not_found("init segment"),
        }
    } else {
        let ext = playlist::segment_ext(m.container);
        let Some(i) = file.strip_suffix(&format!(".{ext}")).and_then(|n| n.parse::<usize>().ok()) else {
            return not_found("file");
        };
        match r.segments.get(i) {
            Some(s) => (s, Some(i)),
            None => return not_found("segment"),
        }
    };
    let blob = match g.fetcher.blob(&g.cid, segment).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "segment unavailable");
            return (StatusCode::BAD_GATEWAY, format!("segment unavailable: {e}\n")).into_response();
        }
    };
    if let Some(i) = index {
        for next in r.segments[i + 1..].iter().take(g.prefetch) {
            let next = next.clone();
            let (fetcher, cid) = (g.fetcher.clone(), g.cid);
            tokio::spawn(async move {
                if let Err(e) = fetcher.blob(&cid, &next).await {
                    tracing::debug!(error = %e, "prefetch failed");
                }
            });
        }
    }
    let mime = if index.is_some() { playlist::mime(m.container) } else { "video/mp4" };
    ranged(blob.data, mime, headers.get(header::RANGE))
}

/// A full (200) or single-range (206) response; unsatisfiable ranges get 416.
fn ranged(data: bytes::Bytes, mime: &'static str, range: Option<&HeaderValue>) -> Response {
    let len = data.len() as u64;
    let base = |status: StatusCode| {
        let mut r = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, mime)
            .header(header::ACCEPT_RANGES, "bytes");
        r = r.header(header::CACHE_CONTROL, "max-age=31536000, immutable");
        r
    };
    // No range, or several at once (serving the whole body is allowed then): 200 with everything.
    let Some(spec) =
        range.and_then(|v| v.to_str().ok()).and_then(|s| s.strip_prefix("bytes=")).filter(|s| !s.contains(','))
    else {
        return base(StatusCode::OK).header(header::CONTENT_LENGTH, len).body(Body::from(data)).unwrap_or_default();
    };
    let parsed = spec.split_once('-').and_then(|(a, b)| match (a.trim(), b.trim()) {
        ("", suffix) => {
            suffix.parse::<u64>().ok().filter(|n| *n > 0).map(|n| (len.saturating_sub(n), len.saturating_sub(1)))
        }
        (start, "") => start.parse::<u64>().ok().map(|s| (s, len.saturating_sub(1))),
        (start, end) => Some((start.parse().ok()?, end.parse::<u64>().ok()?.min(len.saturating_sub(1)))),
    });
    match parsed {
        Some((start, end)) if start <= end && start < len => base(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
            .header(header::CONTENT_LENGTH, end - start + 1)
            .body(Body::from(data.slice(start as usize..=end as usize)))
            .unwrap_or_default(),
        _ => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(data: &[u8], spec: &str) -> (StatusCode, Option<String>) {
        let v = HeaderValue::from_str(spec).unwrap();
        let r = ranged(bytes::Bytes::copy_from_slice(data), "video/mp2t", Some(&v));
        (r.status(), r.headers().get(header::CONTENT_RANGE).map(|h| h.to_str().unwrap().to_string()))
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let d = [0u8; 100];
        assert_eq!(range(&d, "bytes=0-9"), (StatusCode::PARTIAL_CONTENT, Some("bytes 0-9/100".into())));
        assert_eq!(range(&d, "bytes=90-"), (StatusCode::PARTIAL_CONTENT, Some("bytes 90-99/100".into())));
        assert_eq!(range(&d, "bytes=-10"), (StatusCode::PARTIAL_CONTENT, Some("bytes 90-99/100".into())));
        assert_eq!(range(&d, "bytes=50-500"), (StatusCode::PARTIAL_CONTENT, Some("bytes 50-99/100".into())));
        assert_eq!(range(&d, "bytes=100-"), (StatusCode::RANGE_NOT_SATISFIABLE, Some("bytes */100".into())));
        assert_eq!(range(&d, "bytes=0-1,5-6").0, StatusCode::OK);
    }
}
