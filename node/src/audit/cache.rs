//! What an audit of a chain already checked, kept between runs: blocks `1..=checked_to` and their findings. Only
//! finalized blocks are audited, so what was checked never changes; a run picks up after it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::check::{Checked, Discrepancy, Line, Refused, Tip};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    /// The chain's genesis hash, hex.
    pub chain: String,
    /// Blocks `1..=checked_to` are in it.
    pub checked_to: u32,
    /// The hash of block `checked_to`: dev chains made from one spec share a genesis hash, so this tells them apart.
    pub last_hash: String,
    pub lines: Vec<Line>,
    #[serde(default)]
    pub tips: Vec<Tip>,
    pub refused: Vec<Refused>,
    pub discrepancies: Vec<Discrepancy>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot write the audit cache {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

impl Cache {
    /// The file for the chain with `genesis` under `dir`.
    pub fn path(dir: &Path, genesis: [u8; 32]) -> PathBuf {
        dir.join(format!("audit-{}.json", hex::encode(genesis)))
    }

    /// Nothing checked yet.
    pub fn empty(genesis: [u8; 32]) -> Cache {
        Cache { chain: hex::encode(genesis), ..Cache::default() }
    }

    /// The cache at `path`, or an empty one when there is none or it cannot be read (it is only a shortcut).
    pub fn load(path: &Path, genesis: [u8; 32]) -> Cache {
        let cached = std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Cache>(&b).ok());
        match cached {
            Some(c) if c.chain == hex::encode(genesis) => c,
            _ => Cache::empty(genesis),
        }
    }

    pub fn add(&mut self, block: u32, hash: [u8; 32], checked: &Checked) {
        self.last_hash = hex::encode(hash);
        self.lines.extend(checked.lines.iter().cloned());
        self.tips.extend(checked.tips.iter().cloned());
        self.refused.extend(checked.refused.iter().cloned());
        self.discrepancies.extend(checked.discrepancies.iter().cloned());
        self.checked_to = block;
    }

    /// Writes it whole to a new file, then renames it over the old one, so a crash leaves one or the other.
    pub fn save(&self, path: &Path) -> Result<(), CacheError> {
        let fail = |e| CacheError::Write(path.to_path_buf(), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| fail(std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_round_trips_and_another_chains_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = Cache::path(dir.path(), [1; 32]);
        let mut c = Cache::empty([1; 32]);
        let d = Discrepancy { block: 4, extrinsic: Some(1), claim: None, what: "x".into() };
        c.add(7, [2; 32], &Checked { discrepancies: vec![d.clone()], ..Checked::default() });
        c.save(&path).unwrap();
        let back = Cache::load(&path, [1; 32]);
        assert_eq!(
            (back.checked_to, back.last_hash.as_str(), back.discrepancies),
            (7, hex::encode([2; 32]).as_str(), vec![d])
        );
        assert_eq!(Cache::load(&path, [9; 32]).checked_to, 0, "a cache of another genesis");
    }
}
