//! Publishing from the web app: `POST /api/publish` streams the upload to a file in the node's home (never whole
//! in memory), then ffmpeg transcodes it and the result is hashed, signed and registered on chain, as `ferry
//! publish` does; `GET /api/publish/{job}` follows it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::{ApiError, Node, State};
use crate::content::publish::{PublishOptions, Source};

/// Finished jobs kept for `GET /api/publish/{job}`.
const KEPT_JOBS: usize = 100;
/// The largest upload taken.
const MAX_UPLOAD_BYTES: u64 = 8 << 30;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub job: String,
    /// `queued` (another upload is being transcoded), `transcoding`, `registering`, `done` or `failed`.
    pub state: String,
    /// How far the transcode is, from 0 to 1.
    pub progress: f64,
    pub uploaded_bytes: u64,
    /// The content id, once published.
    pub cid: Option<String>,
    pub error: Option<String>,
}

#[derive(Default)]
pub(crate) struct Jobs(Mutex<(HashMap<String, Job>, VecDeque<String>)>);

impl Jobs {
    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.0.lock().unwrap_or_else(|p| p.into_inner()).0.get_mut(id) {
            f(j);
        }
    }

    fn add(&self, job: Job) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.1.push_back(job.job.clone());
        g.0.insert(job.job.clone(), job);
        while g.1.len() > KEPT_JOBS {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0.get(id).cloned()
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublishParams {
    /// The video's title (the file's name when empty).
    #[serde(default)]
    title: String,
    /// The creator's share of every payment in basis points (the node's `[publish] creator_share_bps` when unset).
    share_bps: Option<u16>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Started {
    pub job: String,
}

#[utoipa::path(post, path = "/api/publish", tag = "publish", params(PublishParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The video file"),
    security(("token" = [])),
    responses((status = 202, body = Started), (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody), (status = 500, body = super::ErrorBody)))]
pub async fn upload(
    axum::extract::State(node): State,
    headers: HeaderMap,
    Query(p): Query<PublishParams>,
    body: Body,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    node.authorize(&headers)?;
    let share = p.share_bps.unwrap_or(node.publish.creator_share_bps);
    if share > 10_000 {
        return Err(ApiError::bad_request(format!("share_bps {share} is above 10000 (100%)")));
    }
    let dir = node.home.join("uploads");
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    let id = hex::encode(rand::random::<[u8; 8]>());
    let path = dir.join(format!("{id}.upload"));
    let written = receive(body, &path).await;
    let uploaded = match written {
        Ok(0) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(ApiError::bad_request("the upload is empty: send the video file as the request body"));
        }
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(ApiError::bad_request(format!("the upload did not arrive whole: {e}")));
        }
    };
    node.jobs.add(Job {
        job: id.clone(),
        state: "queued".into(),
        progress: 0.0,
        uploaded_bytes: uploaded,
        cid: None,
        error: None,
    });
    let title = if p.title.trim().is_empty() { format!("Upload {id}") } else { p.title.trim().to_string() };
    tokio::spawn(run(node, id.clone(), path, title, share));
    Ok((StatusCode::ACCEPTED, Json(Started { job: id })))
}

/// Streams the body to `path`, up to [`MAX_UPLOAD_BYTES`]; returns its length.
async fn receive(body: Body, path: &std::path::Path) -> std::io::Result<u64> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        n += chunk.len() as u64;
        if n > MAX_UPLOAD_BYTES {
            return Err(std::io::Error::other(format!("it is larger than {MAX_UPLOAD_BYTES} bytes")));
        }
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok(n)
}

async fn run(node: Arc<Node>, id: String, path: std::path::PathBuf, title: String, share: u16) {
    let progress_node = node.clone();
    let progress_id = id.clone();
    let opts = PublishOptions {
        title,
        creator_share_bps: share,
        segment_seconds: node.publish.segment_seconds,
        renditions: node.publish.renditions,
        progress: Some(Arc::new(move |f| progress_node.jobs.update(&progress_id, |j| j.progress = f))),
    };
    let outcome = async {
        let _turn = node.transcoding.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        node.jobs.update(&id, |j| j.state = "transcoding".into());
        let (cid, m) = crate::content::publish::publish(Source::File(path.clone()), &opts, &node.identity, &node.store)
            .await
            .map_err(|e| e.to_string())?;
        node.jobs.update(&id, |j| {
            j.progress = 1.0;
            j.state = "registering".into();
        });
        if let Some(link) = &node.link {
            let c = link.get().await.map_err(|e| format!("published, but the chain is unreachable: {e}"))?;
            c.ensure_content(m.manifest.header())
                .await
                .map_err(|e| format!("published as {}, but not registered on chain: {e}", hex::encode(cid)))?;
        }
        Ok::<_, String>(cid)
    }
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    match outcome {
        Ok(cid) => {
            tracing::info!(content = %hex::encode(cid), "published through the API");
            node.jobs.update(&id, |j| {
                j.state = "done".into();
                j.cid = Some(hex::encode(cid));
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "publishing an upload failed");
            node.jobs.update(&id, |j| {
                j.state = "failed".into();
                j.error = Some(e);
            })
        }
    }
}

#[utoipa::path(get, path = "/api/publish/{job}", tag = "publish", params(("job" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = super::ErrorBody)))]
pub async fn job(axum::extract::State(node): State, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    node.jobs.get(&id).map(Json).ok_or_else(|| ApiError::not_found(format!("no publish job {id:?} on this node")))
}
