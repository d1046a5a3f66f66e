//! Reading an HLS folder (ours from ffmpeg, or anyone's) into renditions of hashed segments.

use std::path::{Path, PathBuf};

use m3u8_rs::Playlist;

#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not a valid HLS playlist")]
    Parse(PathBuf),
    #[error("{0}: {1}")]
    Unsupported(PathBuf, &'static str),
}

/// One rendition as found on disk.
#[derive(Debug, Clone)]
pub struct HlsRendition {
    pub name: String,
    pub bandwidth: u32,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub init: Option<PathBuf>,
    /// (file, duration in ms)
    pub segments: Vec<(PathBuf, u32)>,
}

/// Reads `dir/master.m3u8` (or a single media playlist `dir/index.m3u8`).
pub fn read_dir(dir: &Path) -> Result<Vec<HlsRendition>, HlsError> {
    let master = dir.join("master.m3u8");
    let single = dir.join("index.m3u8");
    let path = if master.exists() { master } else { single };
    match parse(&path)? {
        Playlist::MasterPlaylist(m) => {
            let mut out = vec![];
            for (i, v) in m.variants.iter().filter(|v| !v.is_i_frame).enumerate() {
                let media_path = path.parent().unwrap_or(dir).join(&v.uri);
                let name = v
                    .uri
                    .split('/')
                    .next()
                    .filter(|_| v.uri.contains('/'))
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("r{i}"));
                let mut r = read_media(&media_path, sanitize(&name))?;
                r.bandwidth = v.bandwidth.min(u32::MAX as u64) as u32;
                if let Some(res) = &v.resolution {
                    r.width = res.width as u32;
                    r.height = res.height as u32;
                }
                r.codecs = v.codecs.clone().unwrap_or_default();
                out.push(r);
            }
            if out.is_empty() {
                return Err(HlsError::Unsupported(path, "master playlist lists no variant streams"));
            }
            Ok(out)
        }
        Playlist::MediaPlaylist(_) => Ok(vec![read_media(&path, "main".into())?]),
    }
}

fn parse(path: &Path) -> Result<Playlist, HlsError> {
    let bytes = std::fs::read(path).map_err(|e| HlsError::Read(path.to_path_buf(), e))?;
    m3u8_rs::parse_playlist_res(&bytes).map_err(|_| HlsError::Parse(path.to_path_buf()))
}

fn read_media(path: &Path, name: String) -> Result<HlsRendition, HlsError> {
    let Playlist::MediaPlaylist(m) = parse(path)? else {
        return Err(HlsError::Unsupported(path.to_path_buf(), "expected a media playlist"));
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut init = None;
    let mut segments = vec![];
    for s in &m.segments {
        if s.key.as_ref().is_some_and(|k| k.method != m3u8_rs::KeyMethod::None) {
            return Err(HlsError::Unsupported(path.to_path_buf(), "encrypted HLS is not supported"));
        }
        if let Some(map) = &s.map {
            init.get_or_insert_with(|| base.join(&map.uri));
        }
        segments.push((base.join(&s.uri), (s.duration as f64 * 1000.0).round() as u32));
    }
    if segments.is_empty() {
        return Err(HlsError::Unsupported(path.to_path_buf(), "playlist has no segments"));
    }
    Ok(HlsRendition { name, bandwidth: 0, width: 0, height: 0, codecs: String::new(), init, segments })
}

/// Rendition names go into URLs: keep [A-Za-z0-9_-], at most 32 characters.
fn sanitize(name: &str) -> String {
    let s: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(32).collect();
    if s.is_empty() {
        "main".into()
    } else {
        s
    }
}
