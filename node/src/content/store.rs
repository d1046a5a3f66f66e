//! The content store: blobs named by their BLAKE3 hash, signed manifests, and pins.
//!
//! Layout under `home/store/`: `blobs/<hex>` (data; its bao outboard, in 16 KiB groups, is computed when the blob is
//! read, which also checks the bytes on disk against the name, so a relay never serves bit rot),
//! `manifests/<cid hex>` (encoded `SignedManifest`), `pins/<cid hex>` (content this node published and seeds
//! forever). Blobs that no pinned manifest names form the cache, bounded by `cache_bytes` and evicted
//! least-recently-used first. Files are written to a temporary name and renamed, so a crash never leaves a
//! half-written blob under its final name.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use bao_tree::io::outboard::{PreOrderMemOutboard, PreOrderOutboard};
use bao_tree::{BaoTree, BlockSize};
use bytes::Bytes;
use ferry_primitives::{BlobHash, ContentId, SignedManifest};
use parity_scale_codec::Encode;

/// 16 KiB bao groups: a bad byte is caught within 16 KiB of it.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O at {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("stored manifest {0} is corrupt: {1}")]
    CorruptManifest(String, ferry_primitives::DecodeOrManifestError),
    #[error(
        "stored blob {0} does not match its hash (disk corruption?); delete the file and it will be fetched again"
    )]
    CorruptBlob(PathBuf),
}

/// A blob ready to serve: its bytes and its outboard.
#[derive(Clone)]
pub struct Blob {
    pub data: Bytes,
    pub outboard: PreOrderOutboard<Bytes>,
}

/// Cheap-clone handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    cache_bytes: u64,
    lru: Mutex<Lru>,
    /// Blobs read from disk that some request still holds: every request for a blob shares one copy in memory, so
    /// a thousand viewers of one segment cost one segment of memory.
    live: Mutex<HashMap<BlobHash, Weak<Loaded>>>,
}

/// A blob's bytes and outboard as read from disk, owned by the [`Bytes`] handed out for them.
struct Loaded {
    data: Vec<u8>,
    outboard: Vec<u8>,
}

struct DataOf(Arc<Loaded>);
impl AsRef<[u8]> for DataOf {
    fn as_ref(&self) -> &[u8] {
        &self.0.data
    }
}

struct OutboardOf(Arc<Loaded>);
impl AsRef<[u8]> for OutboardOf {
    fn as_ref(&self) -> &[u8] {
        &self.0.outboard
    }
}

/// Live entries kept before dead ones are swept out.
const LIVE_SWEEP: usize = 1024;

#[derive(Default)]
struct Lru {
    /// Last use of each blob, and its size on disk.
    used: HashMap<BlobHash, (SystemTime, u64)>,
    pinned: HashSet<BlobHash>,
}

impl Store {
    /// Opens (creating if needed) the store under `home/store`.
    pub fn open(home: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let root = home.join("store");
        for dir in ["blobs", "manifests", "pins", "tmp"] {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).map_err(|e| StoreError::Io(d, e))?;
        }
        let store = Store {
            inner: Arc::new(Inner { root, cache_bytes, lru: Mutex::new(Lru::default()), live: Mutex::default() }),
        };
        store.rebuild_index()?;
        Ok(store)
    }

    fn path(&self, dir: &str, name: &str) -> PathBuf {
        self.inner.root.join(dir).join(name)
    }

    /// Reads sizes and modification times of stored blobs, and which blobs pinned manifests hold.
    fn rebuild_index(&self) -> Result<(), StoreError> {
        let mut lru = Lru::default();
        let dir = self.inner.root.join("blobs");
        for entry in std::fs::read_dir(&dir).map_err(|e| StoreError::Io(dir.clone(), e))? {
            let entry = entry.map_err(|e| StoreError::Io(dir.clone(), e))?;
            let name = entry.file_name();
            let Some(hash) = name.to_str().and_then(crate::identity::parse_hex32) else {
                continue;
            };
            let meta = entry.metadata().map_err(|e| StoreError::Io(entry.path(), e))?;
            lru.used.insert(hash, (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
        }
        for cid in self.pins()? {
            if let Some(m) = self.manifest(&cid)? {
                lru.pinned.extend(m.manifest.blobs().map(|s| s.hash));
            }
        }
        *self.lock() = lru;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A poisoned index only means another thread panicked mid-update; the map is still usable.
        self.inner.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_atomic(&self, dir: &str, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write;
        let tmp = self.path("tmp", &format!("{name}.{}", rand::random::<u64>()));
        let dst = self.path(dir, name);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &dst)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::Io(dst.clone(), e)
        })
    }

    /// Stores `data` (already verified) in the cache with its outboard; returns its hash.
    pub fn put_blob(&self, data: &[u8]) -> Result<BlobHash, StoreError> {
        Ok(*self.put(data, false)?.root.as_bytes())
    }

    /// [`Store::put_blob`] for a blob just fetched: returns it, without reading it back.
    pub fn put_fetched(&self, data: Bytes) -> Result<Blob, StoreError> {
        let ob = self.put(&data, false)?;
        let tree = BaoTree::new(data.len() as u64, BLOCK_SIZE);
        Ok(Blob { data, outboard: PreOrderOutboard { root: ob.root, tree, data: Bytes::from(ob.data) } })
    }

    /// Stores a blob of content being published here: kept whatever the cache's size, even before `pin` records
    /// the whole manifest (a video larger than the cache would otherwise evict its own first segments).
    pub fn put_own_blob(&self, data: &[u8]) -> Result<BlobHash, StoreError> {
        Ok(*self.put(data, true)?.root.as_bytes())
    }

    fn put(&self, data: &[u8], own: bool) -> Result<PreOrderMemOutboard, StoreError> {
        let ob = PreOrderMemOutboard::create(data, BLOCK_SIZE);
        let hash = *ob.root.as_bytes();
        let name = hex::encode(hash);
        if !self.path("blobs", &name).exists() {
            self.write_atomic("blobs", &name, data)?;
        }
        {
            let mut lru = self.lock();
            lru.used.insert(hash, (SystemTime::now(), data.len() as u64));
            if own {
                lru.pinned.insert(hash);
            }
        }
        self.evict()?;
        Ok(ob)
    }

    /// The blob and its outboard, if stored. Marks it used.
    pub fn blob(&self, hash: &BlobHash) -> Result<Option<Blob>, StoreError> {
        let shared = self.live().get(hash).and_then(Weak::upgrade);
        let loaded = match shared {
            Some(loaded) => loaded,
            None => {
                let Some(loaded) = self.read_blob(hash)? else { return Ok(None) };
                let loaded = Arc::new(loaded);
                let mut live = self.live();
                if live.len() >= LIVE_SWEEP {
                    live.retain(|_, w| w.strong_count() > 0);
                }
                live.insert(*hash, Arc::downgrade(&loaded));
                loaded
            }
        };
        let size = loaded.data.len() as u64;
        self.lock().used.insert(*hash, (SystemTime::now(), size));
        let tree = BaoTree::new(size, BLOCK_SIZE);
        let outboard = PreOrderOutboard {
            root: blake3::Hash::from(*hash),
            tree,
            data: Bytes::from_owner(OutboardOf(loaded.clone())),
        };
        Ok(Some(Blob { data: Bytes::from_owner(DataOf(loaded)), outboard }))
    }

    fn read_blob(&self, hash: &BlobHash) -> Result<Option<Loaded>, StoreError> {
        let path = self.path("blobs", &hex::encode(hash));
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io(path, e)),
        };
        let outboard = PreOrderMemOutboard::create(&data, BLOCK_SIZE);
        if outboard.root.as_bytes() != hash {
            // Content published here has no other copy to fetch: the operator publishes it again. A cached blob
            // is dropped, so the next request fetches it again from another relay.
            if self.lock().pinned.contains(hash) {
                return Err(StoreError::CorruptBlob(path));
            }
            tracing::error!(path = %path.display(), "cached blob does not match its hash (disk corruption?); deleting it");
            self.lock().used.remove(hash);
            std::fs::remove_file(&path).map_err(|e| StoreError::Io(path, e))?;
            return Ok(None);
        }
        Ok(Some(Loaded { data, outboard: outboard.data }))
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<BlobHash, Weak<Loaded>>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has_blob(&self, hash: &BlobHash) -> bool {
        self.lock().used.contains_key(hash)
    }

    /// Stores a signed manifest (the caller has verified it) under its content id.
    pub fn put_manifest(&self, cid: &ContentId, manifest: &SignedManifest) -> Result<(), StoreError> {
        self.write_atomic("manifests", &hex::encode(cid), &manifest.encode())
    }

    /// The stored manifest, verified again: the store is a file anyone could have edited.
    pub fn manifest(&self, cid: &ContentId) -> Result<Option<SignedManifest>, StoreError> {
        let name = hex::encode(cid);
        let path = self.path("manifests", &name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io(path, e)),
        };
        let (_, m) = SignedManifest::decode_verified(&bytes).map_err(|e| StoreError::CorruptManifest(name, e))?;
        Ok(Some(m))
    }

    /// Raw encoded manifest, to send to peers as stored.
    pub fn manifest_bytes(&self, cid: &ContentId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path("manifests", &hex::encode(cid));
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(path, e)),
        }
    }

    /// Content ids of every stored manifest.
    pub fn manifests(&self) -> Result<Vec<ContentId>, StoreError> {
        self.list("manifests")
    }

    /// Marks content as published here: its blobs are never evicted.
    pub fn pin(&self, cid: &ContentId, manifest: &SignedManifest) -> Result<(), StoreError> {
        self.write_atomic("pins", &hex::encode(cid), b"")?;
        self.lock().pinned.extend(manifest.manifest.blobs().map(|s| s.hash));
        Ok(())
    }

    pub fn pins(&self) -> Result<Vec<ContentId>, StoreError> {
        self.list("pins")
    }

    fn list(&self, dir: &str) -> Result<Vec<ContentId>, StoreError> {
        let d = self.inner.root.join(dir);
        let rd = std::fs::read_dir(&d).map_err(|e| StoreError::Io(d.clone(), e))?;
        Ok(rd.filter_map(|e| e.ok()?.file_name().to_str().and_then(crate::identity::parse_hex32)).collect())
    }

    /// Removes least-recently-used unpinned blobs until the cache fits its budget.
    fn evict(&self) -> Result<(), StoreError> {
        let victims: Vec<BlobHash> = {
            let mut lru = self.lock();
            let mut cached: Vec<(BlobHash, SystemTime, u64)> =
                lru.used.iter().filter(|(h, _)| !lru.pinned.contains(*h)).map(|(h, (t, s))| (*h, *t, *s)).collect();
            let mut total: u64 = cached.iter().map(|c| c.2).sum();
            cached.sort_by_key(|c| c.1);
            let mut out = vec![];
            for (h, _, size) in cached {
                if total <= self.inner.cache_bytes {
                    break;
                }
                total -= size;
                lru.used.remove(&h);
                out.push(h);
            }
            out
        };
        for h in victims {
            let name = hex::encode(h);
            tracing::debug!(blob = %name, "evicting cached blob");
            // Requests holding it keep their copy; the next one finds it gone and fetches it again.
            self.live().remove(&h);
            // With the outboard file that stores of earlier versions kept beside each blob.
            for n in [name.clone(), format!("{name}.obao")] {
                let p = self.path("blobs", &n);
                if let Err(e) = std::fs::remove_file(&p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(StoreError::Io(p, e));
                    }
                }
            }
        }
        Ok(())
    }

    /// Bytes held by cached (unpinned) blobs.
    pub fn cached_bytes(&self) -> u64 {
        let lru = self.lock();
        lru.used.iter().filter(|(h, _)| !lru.pinned.contains(*h)).map(|(_, (_, s))| s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trips_with_outboard() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let hash = store.put_blob(&data).unwrap();
        assert_eq!(hash, *blake3::hash(&data).as_bytes());
        let blob = store.blob(&hash).unwrap().unwrap();
        assert_eq!(&blob.data[..], &data[..]);
        assert_eq!(blob.outboard.data.len() as u64, blob.outboard.tree.outboard_size());
    }

    #[test]
    fn a_blob_that_rotted_on_disk_is_never_served_and_a_blob_being_served_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let rot = |data: &[u8]| {
            let hash = *blake3::hash(data).as_bytes();
            let mut rotted = data.to_vec();
            rotted[12_345] ^= 1;
            std::fs::write(store.path("blobs", &hex::encode(hash)), rotted).unwrap();
            hash
        };
        let cached = vec![7u8; 50_000];
        let hash = store.put_blob(&cached).unwrap();
        let first = store.blob(&hash).unwrap().unwrap();
        let second = store.blob(&hash).unwrap().unwrap();
        assert_eq!(first.data.as_ptr(), second.data.as_ptr(), "one copy in memory while it is served");
        drop((first, second));
        rot(&cached);
        assert!(store.blob(&hash).unwrap().is_none(), "a rotted cached blob is dropped, to be fetched again");
        assert!(!store.has_blob(&hash) && !store.path("blobs", &hex::encode(hash)).exists());

        let own = vec![9u8; 50_000];
        store.put_own_blob(&own).unwrap();
        let hash = rot(&own);
        match store.blob(&hash) {
            Err(StoreError::CorruptBlob(p)) => assert_eq!(p, store.path("blobs", &hex::encode(hash))),
            other => panic!("a rotted published blob was not refused: {:?}", other.map(|b| b.is_some())),
        }
    }

    #[test]
    fn cache_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 250_000).unwrap();
        let a = store.put_blob(&vec![1u8; 100_000]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = store.put_blob(&vec![2u8; 100_000]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.blob(&a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let c = store.put_blob(&vec![3u8; 100_000]).unwrap();
        assert!(store.blob(&b).unwrap().is_none(), "b was least recently used");
        assert!(store.blob(&a).unwrap().is_some());
        assert!(store.blob(&c).unwrap().is_some());
    }

    #[test]
    fn content_published_here_outlives_a_cache_smaller_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 150_000).unwrap();
        let own: Vec<_> = (1..=3u8).map(|i| store.put_own_blob(&vec![i; 100_000]).unwrap()).collect();
        let cached = store.put_blob(&vec![9u8; 100_000]).unwrap();
        for h in &own {
            assert!(store.blob(h).unwrap().is_some(), "a published blob was evicted");
        }
        store.put_blob(&vec![8u8; 100_000]).unwrap();
        assert!(store.blob(&cached).unwrap().is_none(), "the cache still evicts what is not published here");
    }
}
