//! The content manifest: what a video is made of, who made it, and the creator's signature over it.

use alloc::vec::Vec;
use parity_scale_codec::{Decode, Encode};
use scale_info::TypeInfo;

use crate::signing::MANIFEST_TAG;
use crate::{AccountId, BlobHash, ContentHeader, ContentId, Signature};

/// The manifest format this code writes and accepts.
pub const MANIFEST_VERSION: u16 = 1;
/// Largest encoded signed manifest a node accepts (about 100 bytes per segment: hours of video at 2 s segments).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
pub const MAX_TITLE_BYTES: usize = 256;
pub const MAX_RENDITIONS: usize = 8;
pub const MAX_SEGMENTS: usize = 20_000;
/// Largest segment, so a relay can bound what it buffers and stores per request.
pub const MAX_SEGMENT_BYTES: u64 = 64 << 20;
const MAX_NAME_BYTES: usize = 32;
const MAX_CODECS_BYTES: usize = 128;

/// The segment container, which decides the MIME type a player is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Container {
    /// MPEG-TS segments (`video/mp2t`).
    Ts,
    /// Fragmented MP4 segments (`video/mp4`), with an init segment per rendition.
    Fmp4,
}

/// One stored blob of a rendition.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Segment {
    /// BLAKE3 (bao root) of the segment's bytes.
    pub hash: BlobHash,
    pub size: u64,
    pub duration_ms: u32,
}

/// One quality level of the video.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Rendition {
    /// Short URL-safe name, used in gateway paths (`720p`).
    pub name: Vec<u8>,
    /// Peak bits per second, for the master playlist.
    pub bandwidth: u32,
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codecs string (`avc1.64001f,mp4a.40.2`).
    pub codecs: Vec<u8>,
    /// fMP4 init segment, if the container has one.
    pub init: Option<Segment>,
    pub segments: Vec<Segment>,
}

/// Everything a viewer needs to find, verify and play a video.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Manifest {
    pub version: u16,
    /// Paid the creator share and the tips.
    pub creator: AccountId,
    /// Creator's share of every payment after the protocol fee, in basis points.
    pub creator_share_bps: u16,
    /// Unix seconds.
    pub created_at: u64,
    /// UTF-8.
    pub title: Vec<u8>,
    pub container: Container,
    /// HLS target duration, the longest segment rounded up.
    pub target_duration_ms: u32,
    pub renditions: Vec<Rendition>,
}

/// Why a manifest is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    Version(u16),
    Title,
    Share(u16),
    Renditions(usize),
    RenditionName,
    Codecs,
    Segments(usize),
    SegmentSize(u64),
    InitSegment,
    Signature,
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ManifestError::Version(v) => {
                write!(f, "manifest version {v} is not supported (this node reads {MANIFEST_VERSION})")
            }
            ManifestError::Title => write!(f, "title is not UTF-8 or longer than {MAX_TITLE_BYTES} bytes"),
            ManifestError::Share(s) => write!(f, "creator share {s} bps is above 10000"),
            ManifestError::Renditions(n) => {
                write!(f, "{n} renditions (1 to {MAX_RENDITIONS} allowed)")
            }
            ManifestError::RenditionName => f.write_str("rendition names must be 1-32 of [A-Za-z0-9_-] and unique"),
            ManifestError::Codecs => write!(f, "codecs string is not ASCII or longer than {MAX_CODECS_BYTES} bytes"),
            ManifestError::Segments(n) => write!(f, "{n} segments in a rendition (1 to {MAX_SEGMENTS} allowed)"),
            ManifestError::SegmentSize(s) => {
                write!(f, "segment of {s} bytes (1 to {MAX_SEGMENT_BYTES} allowed)")
            }
            ManifestError::InitSegment => {
                f.write_str("init segments must be present exactly when the container is fMP4")
            }
            ManifestError::Signature => f.write_str("the creator's signature does not match the manifest"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ManifestError {}

impl Manifest {
    /// The header the content id is the hash of: creator, share and this manifest's hash.
    pub fn header(&self) -> ContentHeader {
        ContentHeader {
            creator: self.creator,
            creator_share_bps: self.creator_share_bps,
            manifest_hash: *blake3::hash(&self.encode()).as_bytes(),
        }
    }

    /// The content id ([`ContentHeader::content_id`]), which binds the creator and the share.
    pub fn content_id(&self) -> ContentId {
        self.header().content_id()
    }

    /// The exact bytes the creator signs: the manifest tag, then the SCALE encoding.
    pub fn signing_payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MANIFEST_TAG);
        self.encode_to(&mut out);
        out
    }

    /// Every blob of the video (init segments included), in playback order per rendition.
    pub fn blobs(&self) -> impl Iterator<Item = &Segment> {
        self.renditions.iter().flat_map(|r| r.init.iter().chain(r.segments.iter()))
    }

    /// Checks the limits that keep a manifest safe to serve and render.
    pub fn check(&self) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(self.version));
        }
        if self.title.len() > MAX_TITLE_BYTES || core::str::from_utf8(&self.title).is_err() {
            return Err(ManifestError::Title);
        }
        if self.creator_share_bps > 10_000 {
            return Err(ManifestError::Share(self.creator_share_bps));
        }
        if self.renditions.is_empty() || self.renditions.len() > MAX_RENDITIONS {
            return Err(ManifestError::Renditions(self.renditions.len()));
        }
        for (i, r) in self.renditions.iter().enumerate() {
            let name_ok = !r.name.is_empty()
                && r.name.len() <= MAX_NAME_BYTES
                && r.name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
                && self.renditions[..i].iter().all(|o| o.name != r.name);
            if !name_ok {
                return Err(ManifestError::RenditionName);
            }
            if r.codecs.len() > MAX_CODECS_BYTES || !r.codecs.iter().all(|c| c.is_ascii_graphic()) {
                return Err(ManifestError::Codecs);
            }
            if r.segments.is_empty() || r.segments.len() > MAX_SEGMENTS {
                return Err(ManifestError::Segments(r.segments.len()));
            }
            if r.init.is_some() != (self.container == Container::Fmp4) {
                return Err(ManifestError::InitSegment);
            }
        }
        for s in self.blobs() {
            if s.size == 0 || s.size > MAX_SEGMENT_BYTES {
                return Err(ManifestError::SegmentSize(s.size));
            }
        }
        Ok(())
    }

    /// Signs this manifest with the creator's secret key.
    #[cfg(feature = "dalek")]
    pub fn sign(self, secret: &[u8; 32]) -> SignedManifest {
        let signature = crate::signing::sign(secret, &self.signing_payload());
        SignedManifest { manifest: self, signature }
    }
}

/// A manifest and the creator's signature over [`Manifest::signing_payload`]. This is what nodes store and send.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub signature: Signature,
}

impl SignedManifest {
    /// Decodes, checks limits and the creator's signature, and returns the manifest with its content id.
    #[cfg(feature = "dalek")]
    pub fn decode_verified(bytes: &[u8]) -> Result<(ContentId, SignedManifest), crate::DecodeOrManifestError> {
        let signed: SignedManifest = crate::decode_bounded(bytes, MAX_MANIFEST_BYTES)?;
        signed.manifest.check()?;
        crate::signing::verify(&signed.manifest.creator, &signed.manifest.signing_payload(), &signed.signature)
            .map_err(|_| ManifestError::Signature)?;
        Ok((signed.manifest.content_id(), signed))
    }
}
