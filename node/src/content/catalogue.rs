//! The videos a node knows of: those in its store, and those other relays announced over gossipsub, with the
//! relays that announced them. What is heard is bounded: past [`MAX_HEARD`], the oldest heard entry goes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ferry_primitives::{ContentId, SignedManifest};
use serde::Serialize;

use crate::identity::account_hex;

/// Most announced (not held) videos kept.
pub const MAX_HEARD: usize = 10_000;
/// Most relays listed as providers of one video (peer ids cost nothing to make).
pub const MAX_PROVIDERS: usize = 32;

/// One video as the catalogue lists it: all from its signed manifest, so nothing here is taken on a relay's word.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Video {
    /// Content id, 64 hex characters.
    pub cid: String,
    pub title: String,
    /// The creator's account (0x and 64 hex characters), who signed the manifest.
    pub creator: String,
    /// The creator's share of every payment, in basis points.
    pub creator_share_bps: u16,
    pub duration_seconds: f64,
    pub renditions: Vec<RenditionInfo>,
    /// Bytes of every rendition together.
    pub size_bytes: u64,
    /// Unix seconds, as the creator signed it.
    pub created_at: u64,
    /// This node's store has it.
    pub held: bool,
    /// Peer ids of relays that announced it (this node's own when held).
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RenditionInfo {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second.
    pub bandwidth: u32,
}

impl Video {
    pub fn of(cid: &ContentId, m: &SignedManifest) -> Video {
        let m = &m.manifest;
        let duration_ms: u64 =
            m.renditions.first().map(|r| r.segments.iter().map(|s| u64::from(s.duration_ms)).sum()).unwrap_or(0);
        Video {
            cid: hex::encode(cid),
            title: String::from_utf8_lossy(&m.title).into_owned(),
            creator: account_hex(&m.creator),
            creator_share_bps: m.creator_share_bps,
            duration_seconds: duration_ms as f64 / 1000.0,
            renditions: m
                .renditions
                .iter()
                .map(|r| RenditionInfo {
                    name: String::from_utf8_lossy(&r.name).into_owned(),
                    width: r.width,
                    height: r.height,
                    bandwidth: r.bandwidth,
                })
                .collect(),
            size_bytes: m.blobs().map(|s| s.size).sum(),
            created_at: m.created_at,
            held: false,
            providers: vec![],
        }
    }

    fn matches(&self, query: &str) -> bool {
        query.is_empty() || self.title.to_lowercase().contains(query) || self.creator.to_lowercase().contains(query)
    }
}

struct Entry {
    video: Video,
    providers: BTreeSet<String>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<ContentId, Entry>,
    /// Heard (not held) entries, oldest first.
    heard: VecDeque<ContentId>,
}

/// Cheap to clone: the handles share one catalogue.
#[derive(Clone, Default)]
pub struct Catalogue(Arc<Mutex<Inner>>);

/// One page of a search.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// How many videos match, over all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub videos: Vec<Video>,
}

impl Catalogue {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A video in this node's store, provided by `me`.
    pub fn hold(&self, cid: &ContentId, m: &SignedManifest, me: &str) {
        let mut inner = self.inner();
        inner.heard.retain(|c| c != cid);
        let e = inner.entries.entry(*cid).or_insert_with(|| Entry { video: Video::of(cid, m), providers: [].into() });
        e.video.held = true;
        e.providers.insert(me.to_string());
    }

    /// A video another relay announced (its manifest checked by the caller).
    pub fn heard(&self, cid: &ContentId, m: &SignedManifest, from: &str) {
        let mut inner = self.inner();
        if inner.entries.contains_key(cid) {
            drop(inner);
            self.also_from(cid, from);
            return;
        }
        inner.entries.insert(*cid, Entry { video: Video::of(cid, m), providers: [from.to_string()].into() });
        inner.heard.push_back(*cid);
        while inner.heard.len() > MAX_HEARD {
            if let Some(old) = inner.heard.pop_front() {
                inner.entries.remove(&old);
            }
        }
    }

    /// A relay announced a video the catalogue has: only its name is added.
    pub fn also_from(&self, cid: &ContentId, from: &str) -> bool {
        match self.inner().entries.get_mut(cid) {
            Some(e) => {
                if e.providers.len() < MAX_PROVIDERS {
                    e.providers.insert(from.to_string());
                }
                true
            }
            None => false,
        }
    }

    pub fn get(&self, cid: &ContentId) -> Option<Video> {
        self.inner().entries.get(cid).map(Self::listed)
    }

    fn listed(e: &Entry) -> Video {
        Video { providers: e.providers.iter().cloned().collect(), ..e.video.clone() }
    }

    /// Videos whose title or creator contains `query` (case-insensitive), newest first.
    pub fn search(&self, query: &str, offset: usize, limit: usize) -> Page {
        let query = query.trim().to_lowercase();
        let inner = self.inner();
        let mut found: Vec<&Entry> = inner.entries.values().filter(|e| e.video.matches(&query)).collect();
        found.sort_by(|a, b| b.video.created_at.cmp(&a.video.created_at).then(a.video.cid.cmp(&b.video.cid)));
        Page {
            total: found.len(),
            offset,
            limit,
            videos: found.into_iter().skip(offset).take(limit).map(Self::listed).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use ferry_primitives::{Container, Manifest, Rendition, Segment};

    fn manifest(title: &str, created_at: u64) -> (ContentId, SignedManifest) {
        let id = Identity::from_secret([7; 32]);
        let m = Manifest {
            version: ferry_primitives::manifest::MANIFEST_VERSION,
            creator: id.account,
            creator_share_bps: 2000,
            created_at,
            title: title.as_bytes().to_vec(),
            container: Container::Ts,
            target_duration_ms: 2000,
            renditions: vec![Rendition {
                name: b"360p".to_vec(),
                bandwidth: 800_000,
                width: 640,
                height: 360,
                codecs: b"avc1.64001e".to_vec(),
                init: None,
                segments: vec![Segment { hash: [created_at as u8; 32], size: 1000, duration_ms: 2000 }; 3],
            }],
        };
        (m.content_id(), m.sign(id.secret()))
    }

    #[test]
    fn search_finds_by_title_and_creator_newest_first_in_pages() {
        let c = Catalogue::default();
        let (a, ma) = manifest("Ocean waves", 1);
        let (b, mb) = manifest("Mountain hike", 2);
        c.hold(&a, &ma, "me");
        c.heard(&b, &mb, "relay-1");
        assert!(c.also_from(&b, "relay-2"));
        let p = c.search("OCEAN", 0, 10);
        assert_eq!((p.total, p.videos[0].title.as_str(), p.videos[0].held), (1, "Ocean waves", true));
        assert_eq!(p.videos[0].duration_seconds, 6.0);
        let all = c.search(&ma.manifest.creator.iter().map(|b| format!("{b:02x}")).collect::<String>(), 0, 1);
        assert_eq!((all.total, all.videos.len(), all.videos[0].title.as_str()), (2, 1, "Mountain hike"));
        assert_eq!(c.get(&b).map(|v| v.providers), Some(vec!["relay-1".to_string(), "relay-2".to_string()]));
        for i in 0..100 {
            c.heard(&b, &mb, &format!("sybil-{i}"));
        }
        assert_eq!(c.get(&b).map(|v| v.providers.len()), Some(MAX_PROVIDERS));
    }

    #[test]
    fn what_is_heard_is_bounded_and_held_videos_stay() {
        let c = Catalogue::default();
        let (held, mh) = manifest("held", 0);
        c.hold(&held, &mh, "me");
        for i in 0..MAX_HEARD + 5 {
            let (cid, m) = manifest(&format!("heard {i}"), i as u64 + 1);
            c.heard(&cid, &m, "relay");
        }
        assert_eq!(c.search("", 0, 0).total, MAX_HEARD + 1);
        assert!(c.get(&held).is_some());
        assert_eq!(c.search("heard 0", 0, 10).videos.iter().filter(|v| v.title == "heard 0").count(), 0);
    }
}
