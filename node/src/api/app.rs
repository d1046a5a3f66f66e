//! The web app at `/`: the files `scripts/web` bundles into `web/dist`, embedded at build time (see `build.rs`).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// `(file name, contents)` of every file in `web/dist` when the binary was built.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Ferry</title>\
<p>This ferry binary was built without its web app. Run <code>scripts/web</code>, then build ferry again; \
the API is at <a href=/api/openapi.json>/api/openapi.json</a>.";

pub fn router() -> Router {
    Router::new().route("/", get(|| asset(Path("index.html".to_string())))).route("/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, body)) = ASSETS.iter().find(|(name, _)| *name == file) else {
        if file == "index.html" {
            return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], NOT_BUILT).into_response();
        }
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let mime = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Nothing from another host: the page talks to this node only.
            // No other site may frame it either (a tip button under someone else's page).
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'"),
        ],
        *body,
    )
        .into_response()
}
