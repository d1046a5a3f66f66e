//! The content store: blobs named by their BLAKE3 hash, signed manifests, and pins.
//!
//! Layout under `home/store/`: `blobs/<hex>` (data; its bao outboard, in 16 KiB groups, is computed when the blob is
//! read, which also checks the bytes on disk against the name, so a relay never serves bit rot),
//! `manifests/<cid hex>` (encoded `SignedManifest`), `pins/<cid hex>` (content this node published and seeds
//! forever). Blobs that no pinned manifest names form the cache, bounded by `cache_bytes` and evicted
//! least-recently-used first. Files are written to a temporary name and renamed, so a crash never leaves a
//! half-written blob under its final name.
//!
//! In memory, a blob is one shared copy while anything holds it, and the last [`WARM_BYTES`] of blobs used stay
//! loaded: a player asks for a segment soon after its prefetch stored it, and a relay serves a popular segment
//! to viewer after viewer. Reading a blob from disk costs a read and a full BLAKE3 pass, so concurrent first
//! reads of one blob wait for a single reader.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::SystemTime;

use bao_tree::io::outboard::{PreOrderMemOutboard, PreOrderOutboard};
use bao_tree::{BaoTree, BlockSize};
use bytes::Bytes;
use ferry_primitives::{BlobHash, ContentId, SignedManifest};
use parity_scale_codec::Encode;

use crate::content::buffers::read_blob_file;
use crate::p2p::protocol::CHUNK_BYTES;

/// 16 KiB bao groups: a bad byte is caught within 16 KiB of it.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);

/// Bytes of recently used blobs kept loaded after their last holder lets go, unless the node sets another figure
/// (`[relay] memory_cache_bytes`): a viewer's prefetch (three segments of tens of megabytes) and the segment playing.
pub const WARM_BYTES: usize = 256 << 20;

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
    chunk_hashes: Arc<[OnceLock<[u8; 32]>]>,
}

impl Blob {
    /// BLAKE3 of `data[start..start + len]`, the hash a receipt's chunk chain takes for a chunk served from this
    /// blob. A transfer from the blob's start makes chunks at multiples of [`CHUNK_BYTES`]; their hashes are kept
    /// with the blob, so a relay hashes each once however many viewers it serves them to.
    /// A range past the blob's end is cut at the end.
    pub fn chunk_hash(&self, start: usize, len: usize) -> [u8; 32] {
        let end = start.saturating_add(len).min(self.data.len());
        let start = start.min(end);
        let hash = || *blake3::hash(&self.data[start..end]).as_bytes();
        let chunk = CHUNK_BYTES as usize;
        let whole = end - start == chunk.min(self.data.len() - start);
        match self.chunk_hashes.get(start / chunk) {
            Some(kept) if start.is_multiple_of(chunk) && whole => *kept.get_or_init(hash),
            _ => hash(),
        }
    }

    /// Hashes every whole chunk not hashed yet, so that serving the blob from its start hashes nothing.
    pub fn hash_chunks(&self) {
        let chunk = CHUNK_BYTES as usize;
        for start in (0..self.data.len()).step_by(chunk) {
            self.chunk_hash(start, chunk);
        }
    }
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
    /// Blobs in memory that something still holds: every request for a blob shares one copy, so a thousand
    /// viewers of one segment cost one segment of memory.
    live: Mutex<HashMap<BlobHash, Weak<Loaded>>>,
    /// The blobs used last, held so they stay in `live`; at most its limit in bytes.
    warm: Mutex<Warm>,
    /// One reader per blob being read from disk; others wait for its copy.
    reading: Mutex<HashMap<BlobHash, Arc<Mutex<()>>>>,
    disk_reads: AtomicU64,
}

struct Warm {
    blobs: VecDeque<(BlobHash, Arc<Loaded>)>,
    bytes: usize,
    limit: usize,
}

impl Warm {
    fn remove(&mut self, hash: &BlobHash) {
        if let Some(i) = self.blobs.iter().position(|(h, _)| h == hash) {
            if let Some((_, old)) = self.blobs.remove(i) {
                self.bytes -= old.data.len();
            }
        }
    }

    /// Makes `loaded` the newest, letting go of the oldest beyond the limit.
    fn touch(&mut self, hash: BlobHash, loaded: Arc<Loaded>) {
        self.remove(&hash);
        self.bytes += loaded.data.len();
        self.blobs.push_back((hash, loaded));
        self.trim();
    }

    fn trim(&mut self) {
        while self.bytes > self.limit && !self.blobs.is_empty() {
            if let Some((_, old)) = self.blobs.pop_front() {
                self.bytes -= old.data.len();
            }
        }
    }
}

/// A blob's bytes and outboard in memory, owned by the [`Bytes`] handed out for them.
struct Loaded {
    data: Bytes,
    outboard: Vec<u8>,
    chunk_hashes: Arc<[OnceLock<[u8; 32]>]>,
}

impl Loaded {
    fn new(data: Bytes, outboard: Vec<u8>) -> Loaded {
        let chunks = data.len().div_ceil(CHUNK_BYTES as usize);
        Loaded { data, outboard, chunk_hashes: (0..chunks).map(|_| OnceLock::new()).collect() }
    }
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
            inner: Arc::new(Inner {
                root,
                cache_bytes,
                lru: Mutex::new(Lru::default()),
                live: Mutex::default(),
                warm: Mutex::new(Warm { blobs: VecDeque::new(), bytes: 0, limit: WARM_BYTES }),
                reading: Mutex::default(),
                disk_reads: AtomicU64::new(0),
            }),
        };
        store.rebuild_index()?;
        Ok(store)
    }

    /// How many bytes of blobs stay in memory after their last use ([`WARM_BYTES`] unless set).
    pub fn set_memory_bytes(&self, bytes: u64) {
        let mut warm = lock(&self.inner.warm);
        warm.limit = usize::try_from(bytes).unwrap_or(usize::MAX);
        warm.trim();
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
            if name.to_str().is_some_and(|n| n.ends_with(".obao")) {
                // Outboards were files of their own before the store computed them on reading. Another process
                // opening this home may remove it first.
                let p = entry.path();
                if let Err(e) = std::fs::remove_file(&p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %p.display(), error = %e, "cannot remove an old outboard file");
                    }
                }
                continue;
            }
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

    fn lock(&self) -> MutexGuard<'_, Lru> {
        lock(&self.inner.lru)
    }

    /// Writes under a temporary name and renames. `durable` syncs the data first; a cached blob skips that, since
    /// every read checks it against its name and a blob torn by a power cut is fetched again.
    fn write_atomic(&self, dir: &str, name: &str, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
        use std::io::Write;
        let tmp = self.path("tmp", &format!("{name}.{}", rand::random::<u64>()));
        let dst = self.path(dir, name);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            if durable {
                f.sync_data()?;
            }
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

    /// [`Store::put_blob`] for a blob just fetched: returns it, without reading it back, and keeps it warm.
    /// `outboard` is the blob's hash and pre-order outboard, given only if the caller checked `data` against that
    /// hash through every pair of it (a bao transfer of the whole blob); without one, the blob is hashed.
    pub fn put_fetched(&self, data: Bytes, outboard: Option<(BlobHash, Vec<u8>)>) -> Result<Blob, StoreError> {
        let tree = BaoTree::new(data.len() as u64, BLOCK_SIZE);
        let (hash, outboard) = match outboard {
            // An empty blob has no pair to check it by; hashing it costs nothing.
            Some((hash, ob)) if !data.is_empty() && ob.len() as u64 == tree.outboard_size() => {
                // Every test build checks the caller's word.
                debug_assert!(PreOrderMemOutboard::create(&data, BLOCK_SIZE).data == ob, "outboard of a fetched blob");
                (hash, ob)
            }
            _ => {
                let ob = PreOrderMemOutboard::create(&data, BLOCK_SIZE);
                (*ob.root.as_bytes(), ob.data)
            }
        };
        self.keep(hash, &data, false)?;
        let loaded = self.share(hash, Loaded::new(data, outboard));
        Ok(self.hand_out(hash, loaded))
    }

    /// Stores a blob of content being published here: kept whatever the cache's size, even before `pin` records
    /// the whole manifest (a video larger than the cache would otherwise evict its own first segments).
    pub fn put_own_blob(&self, data: &[u8]) -> Result<BlobHash, StoreError> {
        Ok(*self.put(data, true)?.root.as_bytes())
    }

    fn put(&self, data: &[u8], own: bool) -> Result<PreOrderMemOutboard, StoreError> {
        let ob = PreOrderMemOutboard::create(data, BLOCK_SIZE);
        self.keep(*ob.root.as_bytes(), data, own)?;
        Ok(ob)
    }

    /// Writes the blob named `hash` unless it is there already, and records it in the index.
    fn keep(&self, hash: BlobHash, data: &[u8], own: bool) -> Result<(), StoreError> {
        let name = hex::encode(hash);
        // A blob published here is written (and synced) even if a cached copy, written without a sync, exists;
        // one published before is not written again.
        let synced = own && self.lock().pinned.contains(&hash);
        if (own && !synced) || !self.path("blobs", &name).exists() {
            self.write_atomic("blobs", &name, data, own)?;
        }
        {
            let mut lru = self.lock();
            lru.used.insert(hash, (SystemTime::now(), data.len() as u64));
            if own {
                lru.pinned.insert(hash);
            }
        }
        self.evict()
    }

    /// The blob and its outboard, if stored: from memory, else read from disk and checked. Marks it used.
    pub fn blob(&self, hash: &BlobHash) -> Result<Option<Blob>, StoreError> {
        if let Some(b) = self.blob_in_memory(hash) {
            return Ok(Some(b));
        }
        let gate = lock(&self.inner.reading).entry(*hash).or_default().clone();
        let loaded = {
            let _turn = lock(&gate);
            match self.loaded(hash) {
                Some(l) => Ok(Some(l)),
                None => self.read_blob(hash),
            }
        };
        {
            let mut reading = lock(&self.inner.reading);
            // The map's and ours: no one else waits. Every clone and drop happens under this lock, so the last
            // one out always sees 2.
            if Arc::strong_count(&gate) == 2 {
                reading.remove(hash);
            }
            drop(gate);
        }
        Ok(loaded?.map(|l| self.hand_out(*hash, l)))
    }

    /// Claims `hash` for reading ahead of a request, if that would pay off: it is stored here, neither in memory nor
    /// being read, and fits in what the store keeps in memory, so it is still there when the request comes. Later
    /// claims fail until the claimant's [`Store::blob`] has read it.
    pub fn claim_read_ahead(&self, hash: &BlobHash) -> bool {
        let Some(&(_, size)) = self.lock().used.get(hash) else { return false };
        let fits = usize::try_from(size).is_ok_and(|s| s <= lock(&self.inner.warm).limit);
        if !fits || self.loaded(hash).is_some() {
            return false;
        }
        // The reader's gate, taken now: `blob` finds it and removes it when done.
        match lock(&self.inner.reading).entry(*hash) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            // A reader may have shared its copy and let go of its gate since the check above; `share` runs before
            // that, so looking again under this lock settles it.
            std::collections::hash_map::Entry::Vacant(_) if self.loaded(hash).is_some() => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Arc::default());
                true
            }
        }
    }

    /// The blob if it is in memory; never touches the disk, so async code may call it.
    pub fn blob_in_memory(&self, hash: &BlobHash) -> Option<Blob> {
        self.loaded(hash).map(|l| self.hand_out(*hash, l))
    }

    /// How many times a blob was read from disk, for tests and benchmarks.
    pub fn disk_reads(&self) -> u64 {
        self.inner.disk_reads.load(Ordering::Relaxed)
    }

    fn loaded(&self, hash: &BlobHash) -> Option<Arc<Loaded>> {
        lock(&self.inner.live).get(hash).and_then(Weak::upgrade)
    }

    /// A handle on the shared copy. Marks the blob used, in the index and in the warm set, unless it was evicted
    /// meanwhile: then the caller still gets these (checked) bytes, but the store keeps nothing of it.
    fn hand_out(&self, hash: BlobHash, loaded: Arc<Loaded>) -> Blob {
        let size = loaded.data.len();
        {
            let mut lru = self.lock();
            if let Some(used) = lru.used.get_mut(&hash) {
                used.0 = SystemTime::now();
                lock(&self.inner.warm).touch(hash, loaded.clone());
            }
        }
        let outboard = PreOrderOutboard {
            root: blake3::Hash::from(hash),
            tree: BaoTree::new(size as u64, BLOCK_SIZE),
            data: Bytes::from_owner(OutboardOf(loaded.clone())),
        };
        let chunk_hashes = loaded.chunk_hashes.clone();
        Blob { data: Bytes::from_owner(DataOf(loaded)), outboard, chunk_hashes }
    }

    /// Reads a blob from disk and checks it against its name; a match is shared.
    fn read_blob(&self, hash: &BlobHash) -> Result<Option<Arc<Loaded>>, StoreError> {
        let path = self.path("blobs", &hex::encode(hash));
        let data = match read_blob_file(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Deleted behind the store's back: forget it, so eviction does not count it.
                self.lock().used.remove(hash);
                return Ok(None);
            }
            Err(e) => return Err(StoreError::Io(path, e)),
        };
        self.inner.disk_reads.fetch_add(1, Ordering::Relaxed);
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
        Ok(Some(self.share(*hash, Loaded::new(data, outboard.data))))
    }

    /// Makes `loaded` the copy every later request for the blob shares, if the blob is still stored. The index is
    /// locked throughout, so eviction (which leaves the index first) never races a blob back into memory.
    fn share(&self, hash: BlobHash, loaded: Loaded) -> Arc<Loaded> {
        let loaded = Arc::new(loaded);
        let lru = self.lock();
        if lru.used.contains_key(&hash) {
            let mut live = lock(&self.inner.live);
            if live.len() >= LIVE_SWEEP {
                live.retain(|_, w| w.strong_count() > 0);
            }
            live.insert(hash, Arc::downgrade(&loaded));
        }
        loaded
    }

    pub fn has_blob(&self, hash: &BlobHash) -> bool {
        self.lock().used.contains_key(hash)
    }

    /// Stores a signed manifest (the caller has verified it) under its content id.
    pub fn put_manifest(&self, cid: &ContentId, manifest: &SignedManifest) -> Result<(), StoreError> {
        self.write_atomic("manifests", &hex::encode(cid), &manifest.encode(), true)
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
        self.write_atomic("pins", &hex::encode(cid), b"", true)?;
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
            lock(&self.inner.live).remove(&h);
            lock(&self.inner.warm).remove(&h);
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

/// A poisoned lock only means another thread panicked mid-update; what it guards is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Kept or not, a chunk's hash is the hash of its bytes: the viewer hashes what it received, and the relay's
    /// answer must match it for every chunk a transfer can make.
    #[test]
    fn chunk_hashes_are_the_hashes_of_the_chunks_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let chunk = CHUNK_BYTES as usize;
        let data: Vec<u8> = (0..2 * chunk + 40_000).map(|i| (i * 7 / 5) as u8).collect();
        let blob = store.blob(&store.put_blob(&data).unwrap()).unwrap().unwrap();
        let group = 16 << 10;
        for (start, len) in
            [(0, chunk), (chunk, chunk), (2 * chunk, 40_000), (group, chunk), (group, 40_000), (0, group)]
        {
            let want = *blake3::hash(&data[start..start + len]).as_bytes();
            assert_eq!(blob.chunk_hash(start, len), want, "chunk at {start}, {len} bytes");
            assert_eq!(blob.chunk_hash(start, len), want, "chunk at {start}, {len} bytes, asked again");
        }
        assert_eq!(blob.chunk_hashes.iter().filter(|h| h.get().is_some()).count(), 3, "the aligned ones are kept");
    }

    #[test]
    fn a_blob_that_rotted_on_disk_is_never_served_and_a_blob_in_use_is_shared() {
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
        assert!(store.blob(&hash).unwrap().is_some());
        assert_eq!(store.disk_reads(), 1, "a blob used last stays in memory");
        rot(&cached);
        // Not read since it was stored, so it is read from disk and checked.
        let own = vec![9u8; 50_000];
        store.put_own_blob(&own).unwrap();
        let own = rot(&own);
        match store.blob(&own) {
            Err(StoreError::CorruptBlob(p)) => assert_eq!(p, store.path("blobs", &hex::encode(own))),
            other => panic!("a rotted published blob was not refused: {:?}", other.map(|b| b.is_some())),
        }

        // Restarted, the node reads the cached blob from disk too.
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        assert!(store.blob(&hash).unwrap().is_none(), "a rotted cached blob is dropped, to be fetched again");
        assert!(!store.has_blob(&hash) && !store.path("blobs", &hex::encode(hash)).exists());
    }

    #[test]
    fn concurrent_first_reads_of_a_blob_read_the_disk_once() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
        let hash = Store::open(dir.path(), 1 << 30).unwrap().put_blob(&data).unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let start = Arc::new(std::sync::Barrier::new(8));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (store, start) = (store.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    store.blob(&hash).unwrap().unwrap()
                })
            })
            .collect();
        let blobs: Vec<Blob> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(store.disk_reads(), 1, "each reader read and hashed the blob itself");
        assert!(blobs.iter().all(|b| b.data.as_ptr() == blobs[0].data.as_ptr() && b.data[..] == data[..]));
        assert!(lock(&store.inner.reading).is_empty(), "a reader's gate outlived every reader");
    }

    #[test]
    fn blobs_stay_in_memory_only_within_the_memory_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let (a, b) = (store.put_blob(&[1u8; 60_000]).unwrap(), store.put_blob(&[2u8; 60_000]).unwrap());
        store.set_memory_bytes(100_000);
        drop((store.blob(&a).unwrap(), store.blob(&b).unwrap()));
        assert!(store.blob_in_memory(&b).is_some(), "the blob used last stays in memory");
        assert!(store.blob_in_memory(&a).is_none(), "two blobs of 60 kB were kept within 100 kB");
        store.set_memory_bytes(0);
        assert!(store.blob_in_memory(&b).is_none(), "a limit of 0 keeps nothing after its last use");
        assert_eq!(store.disk_reads(), 2);
    }

    #[test]
    fn only_a_stored_blob_that_is_not_loaded_and_fits_in_memory_is_read_ahead_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let (a, b) = (store.put_blob(&[1u8; 60_000]).unwrap(), store.put_blob(&[2u8; 20_000]).unwrap());
        store.set_memory_bytes(50_000);
        assert!(!store.claim_read_ahead(&a), "60 kB would not stay within 50 kB");
        assert!(!store.claim_read_ahead(&[9; 32]), "not stored here");
        assert!(store.claim_read_ahead(&b));
        assert!(!store.claim_read_ahead(&b), "claimed already");
        let blob = store.blob(&b).unwrap().unwrap();
        assert!(lock(&store.inner.reading).is_empty(), "the claim outlived the read");
        assert!(!store.claim_read_ahead(&b), "already loaded");
        drop(blob);
        assert!(!store.claim_read_ahead(&b), "still in memory");
        store.set_memory_bytes(0);
        assert!(!store.claim_read_ahead(&b), "nothing stays in memory to be found by the request");
        assert_eq!(store.disk_reads(), 1);
    }

    #[test]
    fn hashing_chunks_ahead_keeps_every_whole_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 30).unwrap();
        let chunk = CHUNK_BYTES as usize;
        let data: Vec<u8> = (0..2 * chunk + 100).map(|i| (i % 251) as u8).collect();
        let blob = store.blob(&store.put_blob(&data).unwrap()).unwrap().unwrap();
        blob.hash_chunks();
        let kept: Vec<_> = blob.chunk_hashes.iter().map(|h| h.get().copied()).collect();
        let want: Vec<_> = data.chunks(chunk).map(|c| Some(*blake3::hash(c).as_bytes())).collect();
        assert_eq!(kept, want);
    }

    #[test]
    fn a_fetched_blob_the_cache_cannot_hold_is_handed_over_and_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 10_000).unwrap();
        let data = Bytes::from(vec![4u8; 50_000]);
        let blob = store.put_fetched(data.clone(), None).unwrap();
        let hash = *blob.outboard.root.as_bytes();
        assert_eq!(blob.data, data);
        assert!(!store.has_blob(&hash) && store.cached_bytes() == 0, "an evicted blob came back into the index");
        assert!(store.blob_in_memory(&hash).is_none() && lock(&store.inner.warm).blobs.is_empty());
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
