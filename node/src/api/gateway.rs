//! The viewer's local HLS gateway: any player (ffplay, VLC, mpv, hls.js) opens
//! `http://127.0.0.1:PORT/<cid>/master.m3u8` (`ferry watch`), or `/hls/<cid>/master.m3u8` on a node's API address
//! once the web app started playing it. Playlists come from the signed manifest; segments are fetched and
//! verified through the [`Fetcher`], and served with the right content type, Range requests and CORS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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

/// The videos being played through this gateway: only those are served, so a page cannot make the node pay for
/// content nobody asked to play (starting playback needs the API's token).
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

struct Inner {
    /// Shared, not copied per request: a long video's manifest runs to megabytes.
    playing: Mutex<HashMap<ContentId, Arc<SignedManifest>>>,
    fetcher: Fetcher,
    prefetch: usize,
}

impl Gateway {
    pub fn new(fetcher: Fetcher, prefetch: usize) -> Gateway {
        Gateway(Arc::new(Inner { playing: Mutex::new(HashMap::new()), fetcher, prefetch }))
    }

    /// Serves `cid`, and starts on the first segment of every rendition before the player asks.
    pub fn play(&self, cid: ContentId, manifest: SignedManifest) {
        for r in &manifest.manifest.renditions {
            if let Some(first) = r.segments.first().cloned() {
                let f = self.0.fetcher.clone();
                tokio::spawn(async move {
                    let _ = f.blob(&cid, &first).await;
                });
            }
        }
        self.0.playing.lock().unwrap_or_else(|p| p.into_inner()).insert(cid, Arc::new(manifest));
    }

    fn manifest(&self, cid: &str) -> Option<(ContentId, Arc<SignedManifest>)> {
        let cid = crate::identity::parse_hex32(cid)?;
        self.0.playing.lock().unwrap_or_else(|p| p.into_inner()).get(&cid).map(|m| (cid, m.clone()))
    }

    /// The gateway's routes, relative to where they are mounted. On the API address they are same-origin for
    /// the web app and answer no other site's scripts.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/{cid}/master.m3u8", get(master))
            .route("/{cid}/{rendition}/{file}", get(rendition_file))
            .with_state(self.clone())
    }
}

/// Serves the gateway; returns the bound address. With `anywhere` (the address is the default, not chosen), a
/// port in use is replaced by a free one, so several viewers run on one machine.
pub async fn serve(addr: SocketAddr, anywhere: bool, gateway: Gateway) -> std::io::Result<SocketAddr> {
    // `ferry watch`'s own gateway serves any player, hls.js on another page's origin included.
    super::serve(addr, anywhere, "gateway", gateway.router().layer(CorsLayer::permissive())).await
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{what} not found\n")).into_response()
}

async fn master(State(g): State<Gateway>, Path(cid): Path<String>) -> Response {
    match g.manifest(&cid) {
        Some((_, m)) => playlist_response(playlist::master(&m.manifest)),
        None => not_found("content"),
    }
}

fn playlist_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/vnd.apple.mpegurl"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

async fn rendition_file(
    State(g): State<Gateway>,
    Path((cid, rendition, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some((cid, manifest)) = g.manifest(&cid) else {
        return not_found("content");
    };
    let m = &manifest.manifest;
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
    let blob = match g.0.fetcher.blob(&cid, segment).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "segment unavailable");
            return (StatusCode::BAD_GATEWAY, format!("segment unavailable: {e}\n")).into_response();
        }
    };
    if let Some(i) = index {
        for next in r.segments[i + 1..].iter().take(g.0.prefetch) {
            let next = next.clone();
            let fetcher = g.0.fetcher.clone();
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
