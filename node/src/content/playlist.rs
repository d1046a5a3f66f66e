//! HLS playlists made from a manifest, with URIs that point back at the gateway.

use std::fmt::Write;

use ferry_primitives::{Container, Manifest, Rendition};

/// File extension of media segments for the container.
pub fn segment_ext(c: Container) -> &'static str {
    match c {
        Container::Ts => "ts",
        Container::Fmp4 => "m4s",
    }
}

pub fn mime(c: Container) -> &'static str {
    match c {
        Container::Ts => "video/mp2t",
        Container::Fmp4 => "video/mp4",
    }
}

/// `master.m3u8`: one variant per rendition.
pub fn master(m: &Manifest) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in &m.renditions {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", r.bandwidth.max(1));
        if r.width > 0 && r.height > 0 {
            let _ = write!(out, ",RESOLUTION={}x{}", r.width, r.height);
        }
        if !r.codecs.is_empty() {
            let _ = write!(out, ",CODECS=\"{}\"", String::from_utf8_lossy(&r.codecs));
        }
        let _ = writeln!(out, "\n{}/index.m3u8", String::from_utf8_lossy(&r.name));
    }
    out
}

/// `<rendition>/index.m3u8`: a VOD media playlist of the rendition's segments.
pub fn media(m: &Manifest, r: &Rendition) -> String {
    let target = m.target_duration_ms.div_ceil(1000).max(1);
    let mut out = format!("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if r.init.is_some() {
        out.push_str("#EXT-X-MAP:URI=\"init.mp4\"\n");
    }
    let ext = segment_ext(m.container);
    for (i, s) in r.segments.iter().enumerate() {
        let _ = writeln!(out, "#EXTINF:{:.3},\n{i}.{ext}", s.duration_ms as f64 / 1000.0);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}
