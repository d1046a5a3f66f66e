//! Turning a video file into HLS with ffmpeg: 2–4 s segments, a rendition ladder, a master playlist.

use std::path::Path;
use std::process::Stdio;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("ffmpeg/ffprobe not found: install them (Debian: apt-get install ffmpeg)")]
    Missing,
    #[error("ffprobe cannot read {0}: {1}")]
    Probe(String, String),
    #[error("{0} has no video stream")]
    NoVideo(String),
    #[error("ffmpeg failed (exit {0}); its last lines:\n{1}")]
    Failed(i32, String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What ffprobe says about the source.
#[derive(Debug, Clone)]
pub struct Probe {
    pub duration_s: f64,
    pub height: u32,
    pub has_audio: bool,
}

pub async fn probe(input: &Path) -> Result<Probe, TranscodeError> {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        // A local file only: a playlist or concat list must not pull in other files or URLs.
        .args(["-protocol_whitelist", "file"])
        .arg(input)
        .output()
        .await
        .map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { TranscodeError::Missing } else { e.into() })?;
    let name = input.display().to_string();
    if !out.status.success() {
        return Err(TranscodeError::Probe(name, String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| TranscodeError::Probe(name.clone(), e.to_string()))?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video =
        streams.iter().find(|s| s["codec_type"] == "video").ok_or_else(|| TranscodeError::NoVideo(name.clone()))?;
    let duration_s = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    Ok(Probe {
        duration_s,
        height: video["height"].as_u64().unwrap_or(0) as u32,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// Heights and video bitrates (kbit/s) of the ladder, best first.
const LADDER: [(u32, u32); 5] = [(1080, 5000), (720, 2800), (480, 1400), (360, 800), (240, 400)];

/// Which rungs a source of `height` gets: the best rung not above the source, then lower ones, `count` at most.
/// A source smaller than every rung keeps its own height.
pub fn ladder(height: u32, count: usize) -> Vec<(u32, u32)> {
    let rungs: Vec<_> = LADDER.iter().copied().filter(|(h, _)| *h <= height).take(count.max(1)).collect();
    if rungs.is_empty() {
        vec![(height.max(2) & !1, 400)]
    } else {
        rungs
    }
}

/// Transcodes `input` into `out_dir/master.m3u8` and `out_dir/<rendition>/index.m3u8` + `.ts` segments. Progress
/// goes to `progress` (0 to 1) when given, else to a bar on the terminal.
pub async fn to_hls(
    input: &Path,
    out_dir: &Path,
    segment_s: u32,
    renditions: usize,
    progress: Option<&super::Progress>,
) -> Result<(), TranscodeError> {
    let p = probe(input).await?;
    let rungs = ladder(p.height, renditions);
    let mut filter = format!("[0:v]split={}", rungs.len());
    for i in 0..rungs.len() {
        filter.push_str(&format!("[v{i}]"));
    }
    filter.push(';');
    for (i, (h, _)) in rungs.iter().enumerate() {
        filter.push_str(&format!("[v{i}]scale=-2:{h}[o{i}];"));
    }
    filter.pop();
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1"]);
    cmd.args(["-protocol_whitelist", "file", "-i"]).arg(input);
    cmd.args(["-filter_complex", &filter]);
    let mut map = vec![];
    for (i, (h, kbps)) in rungs.iter().enumerate() {
        cmd.args(["-map", &format!("[o{i}]")]);
        if p.has_audio {
            cmd.args(["-map", "0:a:0"]);
        }
        cmd.args([format!("-b:v:{i}"), format!("{kbps}k"), format!("-maxrate:v:{i}"), format!("{}k", kbps * 3 / 2)]);
        cmd.args([format!("-bufsize:v:{i}"), format!("{}k", kbps * 2)]);
        map.push(if p.has_audio { format!("v:{i},a:{i},name:{h}p") } else { format!("v:{i},name:{h}p") });
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-sc_threshold",
        "0",
    ]);
    // A keyframe at every segment boundary, whatever the frame rate.
    cmd.args(["-force_key_frames", &format!("expr:gte(t,n_forced*{segment_s})")]);
    if p.has_audio {
        cmd.args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"]);
    }
    cmd.args([
        "-f",
        "hls",
        "-hls_time",
        &segment_s.to_string(),
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments",
    ]);
    cmd.args(["-hls_segment_type", "mpegts", "-master_pl_name", "master.m3u8", "-var_stream_map", &map.join(" ")]);
    cmd.arg("-hls_segment_filename").arg(out_dir.join("%v/seg_%05d.ts"));
    cmd.arg(out_dir.join("%v/index.m3u8"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TranscodeError::Missing
        } else {
            e.into()
        }
    })?;

    let bar = ProgressBar::new((p.duration_s * 1000.0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {percent:>3}% ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("transcode");
    if progress.is_some() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let total_ms = (p.duration_s * 1000.0).max(1.0);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let errors = tokio::spawn(async move {
        let mut tail = Vec::new();
        if let Some(s) = stderr {
            let mut lines = BufReader::new(s).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tail.push(l);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        tail.join("\n")
    });
    if let Some(s) = stdout {
        let mut lines = BufReader::new(s).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(us) = l.strip_prefix("out_time_us=").and_then(|v| v.parse::<u64>().ok()) {
                bar.set_position(us / 1000);
                if let Some(f) = progress {
                    f((us as f64 / 1000.0 / total_ms).min(1.0));
                }
            }
        }
    }
    let status = child.wait().await?;
    let tail = errors.await.unwrap_or_default();
    bar.finish_and_clear();
    if !status.success() {
        return Err(TranscodeError::Failed(status.code().unwrap_or(-1), tail));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_fits_the_source() {
        assert_eq!(ladder(720, 2), vec![(720, 2800), (480, 1400)]);
        assert_eq!(ladder(1080, 3).len(), 3);
        assert_eq!(ladder(300, 2), vec![(240, 400)]);
        assert_eq!(ladder(100, 2), vec![(100, 400)]);
    }
}
