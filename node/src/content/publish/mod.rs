//! `ferry publish`: a video file, an HLS folder or an HTTP HLS origin becomes hashed blobs in the content store
//! and a manifest signed by the creator. The content id is printed last.

pub mod hls;
pub mod transcode;

use std::path::{Path, PathBuf};

use ferry_primitives::manifest::MANIFEST_VERSION;
use ferry_primitives::{Container, ContentId, Manifest, Rendition, Segment, SignedManifest};
use indicatif::{ProgressBar, ProgressStyle};

use crate::content::store::Store;
use crate::identity::Identity;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Transcode(#[from] transcode::TranscodeError),
    #[error(transparent)]
    Hls(#[from] hls::HlsError),
    #[error("cannot read segment {0}: {1}")]
    Segment(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::content::store::StoreError),
    #[error("the manifest is not valid: {0}")]
    Manifest(ferry_primitives::ManifestError),
    #[error("cannot download {0}: {1}")]
    Download(String, String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What to publish.
pub enum Source {
    File(PathBuf),
    HlsDir(PathBuf),
    Url(String),
}

impl Source {
    pub fn parse(s: &str) -> Source {
        if s.starts_with("http://") || s.starts_with("https://") {
            Source::Url(s.to_string())
        } else if Path::new(s).is_dir() {
            Source::HlsDir(PathBuf::from(s))
        } else {
            Source::File(PathBuf::from(s))
        }
    }
}

pub struct PublishOptions {
    pub title: String,
    pub creator_share_bps: u16,
    pub segment_seconds: u32,
    pub renditions: usize,
    /// Told how far the transcode is (0 to 1), for the web app; `None` draws a bar on the terminal.
    pub progress: Option<Progress>,
}

/// A callback for how far long work has got, from 0 to 1.
pub type Progress = std::sync::Arc<dyn Fn(f64) + Send + Sync>;

/// Publishes `source` into `store`, signed by `creator`. Returns the content id and the manifest.
pub async fn publish(
    source: Source,
    opts: &PublishOptions,
    creator: &Identity,
    store: &Store,
) -> Result<(ContentId, SignedManifest), PublishError> {
    let work = tempfile::Builder::new().prefix("ferry-publish-").tempdir()?;
    let dir = match source {
        Source::File(f) => {
            transcode::to_hls(&f, work.path(), opts.segment_seconds, opts.renditions, opts.progress.as_ref()).await?;
            work.path().to_path_buf()
        }
        Source::HlsDir(d) => d,
        Source::Url(u) => {
            download_hls(&u, work.path()).await?;
            work.path().to_path_buf()
        }
    };
    let renditions = hls::read_dir(&dir)?;
    let manifest = hash_into_store(renditions, opts, creator, store)?;
    let cid = manifest.content_id();
    let signed = manifest.sign(creator.secret());
    store.put_manifest(&cid, &signed)?;
    store.pin(&cid, &signed)?;
    Ok((cid, signed))
}

/// Hashes every segment into the store (with a progress bar) and builds the manifest.
fn hash_into_store(
    renditions: Vec<hls::HlsRendition>,
    opts: &PublishOptions,
    creator: &Identity,
    store: &Store,
) -> Result<Manifest, PublishError> {
    let total: usize = renditions.iter().map(|r| r.segments.len() + r.init.is_some() as usize).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} segments")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("hash");
    if opts.progress.is_some() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let put = |path: &Path, duration_ms: u32| -> Result<Segment, PublishError> {
        let data = std::fs::read(path).map_err(|e| PublishError::Segment(path.to_path_buf(), e))?;
        let hash = store.put_own_blob(&data)?;
        bar.inc(1);
        Ok(Segment { hash, size: data.len() as u64, duration_ms })
    };
    let mut out = vec![];
    let mut container = Container::Ts;
    let mut longest = 0;
    for r in renditions {
        let init = match &r.init {
            Some(p) => {
                container = Container::Fmp4;
                Some(put(p, 0)?)
            }
            None => None,
        };
        let segments = r.segments.iter().map(|(p, d)| put(p, *d)).collect::<Result<Vec<_>, _>>()?;
        longest = longest.max(segments.iter().map(|s| s.duration_ms).max().unwrap_or(0));
        out.push(Rendition {
            name: r.name.into_bytes(),
            bandwidth: r.bandwidth,
            width: r.width,
            height: r.height,
            codecs: r.codecs.into_bytes(),
            init,
            segments,
        });
    }
    bar.finish_and_clear();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        creator: creator.account,
        creator_share_bps: opts.creator_share_bps,
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        title: opts.title.as_bytes().iter().copied().take(ferry_primitives::manifest::MAX_TITLE_BYTES).collect(),
        container,
        target_duration_ms: longest.div_ceil(1000) * 1000,
        renditions: out,
    };
    manifest.check().map_err(PublishError::Manifest)?;
    Ok(manifest)
}

/// Mirrors an HTTP HLS origin (master, media playlists, segments) into `dir`, keeping relative paths.
async fn download_hls(url: &str, dir: &Path) -> Result<(), PublishError> {
    let http = reqwest::Client::new();
    let get = |u: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(&u)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| PublishError::Download(u.clone(), e.to_string()))?;
            r.bytes().await.map_err(|e| PublishError::Download(u, e.to_string()))
        }
    };
    let base = url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_default();
    let top = get(url.to_string()).await?;
    let top_name = if matches!(m3u8_rs::parse_playlist_res(&top), Ok(m3u8_rs::Playlist::MasterPlaylist(_))) {
        "master.m3u8"
    } else {
        "index.m3u8"
    };
    let mut queue = vec![(top_name.to_string(), top)];
    while let Some((rel, bytes)) = queue.pop() {
        let local = dir.join(&rel);
        if let Some(p) = local.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(&local, &bytes)?;
        let rel_dir = rel.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
        let children: Vec<String> = match m3u8_rs::parse_playlist_res(&bytes) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m.variants.iter().map(|v| v.uri.clone()).collect(),
            Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => {
                let mut v: Vec<String> = m.segments.iter().map(|s| s.uri.clone()).collect();
                v.extend(m.segments.iter().filter_map(|s| s.map.as_ref().map(|m| m.uri.clone())));
                v.dedup();
                v
            }
            Err(_) => vec![],
        };
        for child in children {
            if child.contains("://") || child.starts_with('/') || child.contains("..") {
                return Err(PublishError::Download(child, "only relative URIs under the origin are mirrored".into()));
            }
            let rel_child = format!("{rel_dir}{child}");
            let data = get(format!("{base}/{rel_child}")).await?;
            queue.push((rel_child, data));
        }
    }
    Ok(())
}
