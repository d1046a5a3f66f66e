//! The node's ed25519 identity: one key is the libp2p peer id, the chain account and the receipt signer.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferry_primitives::AccountId;
use libp2p::PeerId;

/// File name of the secret key inside the node's home.
pub const KEY_FILE: &str = "identity.key";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no identity at {0}: run `ferry init` first (or pass --home)")]
    Missing(PathBuf),
    #[error("an identity already exists at {0}; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("identity file {0} is malformed: expected 64 hex characters")]
    Malformed(PathBuf),
    #[error("identity file {0} is readable by others (mode {1:o}); run `chmod 600 {0}`")]
    Permissions(PathBuf, u32),
    #[error("cannot access identity file {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The secret seed and everything derived from it.
#[derive(Clone)]
pub struct Identity {
    secret: [u8; 32],
    pub account: AccountId,
    pub peer_id: PeerId,
}

impl Identity {
    pub fn from_secret(secret: [u8; 32]) -> Identity {
        let account = ferry_primitives::signing::public_key(&secret);
        let peer_id = PeerId::from_public_key(&libp2p_keypair(&secret).public());
        Identity { secret, account, peer_id }
    }

    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The libp2p keypair for the same key, so the peer id proves the account.
    pub fn keypair(&self) -> libp2p::identity::Keypair {
        libp2p_keypair(&self.secret)
    }

    /// Makes a new random identity in `home` with mode 0600.
    pub fn create(home: &Path) -> Result<Identity, IdentityError> {
        Identity::create_from(home, rand::random())
    }

    /// Writes the given secret as the identity of `home` with mode 0600.
    pub fn create_from(home: &Path, secret: [u8; 32]) -> Result<Identity, IdentityError> {
        let path = home.join(KEY_FILE);
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(|e| {
                match e.kind() {
                    std::io::ErrorKind::AlreadyExists => IdentityError::Exists(path.clone()),
                    _ => IdentityError::Io(path.clone(), e),
                }
            })?;
        writeln!(file, "{}", hex::encode(secret))
            .and_then(|_| file.sync_all())
            .map_err(|e| IdentityError::Io(path.clone(), e))?;
        Ok(Identity::from_secret(secret))
    }

    /// Loads the identity of `home`, refusing a key file others can read.
    pub fn load(home: &Path) -> Result<Identity, IdentityError> {
        let path = home.join(KEY_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => IdentityError::Missing(path.clone()),
            _ => IdentityError::Io(path.clone(), e),
        })?;
        let mode = std::fs::metadata(&path).map_err(|e| IdentityError::Io(path.clone(), e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(IdentityError::Permissions(path, mode & 0o777));
        }
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| IdentityError::Malformed(path))?;
        Ok(Identity::from_secret(secret))
    }
}

fn libp2p_keypair(secret: &[u8; 32]) -> libp2p::identity::Keypair {
    let mut bytes = *secret;
    // Infallible for 32 bytes; ed25519 accepts any seed.
    libp2p::identity::Keypair::ed25519_from_bytes(&mut bytes).expect("32-byte ed25519 seed is always valid")
}

/// Roles with a funded account in the dev chain's genesis (`chain-spec/development.json`).
pub const DEV_ROLES: [&str; 3] = ["operator", "creator", "viewer"];

/// The publicly known secret of a dev-chain demo account: BLAKE2b-256("ferry/demo/<role>"). Worthless anywhere else.
pub fn dev_secret(role: &str) -> Option<[u8; 32]> {
    use blake2::digest::{consts::U32, Digest};
    if !DEV_ROLES.contains(&role) {
        return None;
    }
    let mut h = blake2::Blake2b::<U32>::new();
    h.update(format!("ferry/demo/{role}").as_bytes());
    Some(h.finalize().into())
}

/// An account as users see it: `0x` and 64 hex digits.
pub fn account_hex(account: &AccountId) -> String {
    format!("0x{}", hex::encode(account))
}

/// Parses `0x…` or bare hex into a 32-byte value.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim().trim_start_matches("0x"), &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let made = Identity::create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = Identity::load(dir.path()).unwrap();
        assert_eq!(made.account, loaded.account);
        assert_eq!(made.peer_id, loaded.peer_id);
        assert!(matches!(Identity::create(dir.path()), Err(IdentityError::Exists(_))));
    }

    #[test]
    fn dev_accounts_match_the_genesis_preset() {
        let preset = include_str!("../../chain-spec/development.json");
        for (role, ss58) in [
            ("operator", "5FwGpgjhA6UrwQCWQQFqBKrB5Urujdx61Y8ABRTi3XKp8gA1"),
            ("creator", "5Emv2eELxKfd1s4Z89cAf7mr5pr41NnpKPcK5i1xyt9XsDAx"),
            ("viewer", "5CCtmqNk32LNZcEyZrdVcBAnL3trGcwGKfNX3CfpkcBxp7Qi"),
        ] {
            assert!(preset.contains(ss58));
            let id = Identity::from_secret(dev_secret(role).unwrap());
            let account = subxt::utils::AccountId32(id.account);
            assert_eq!(account.to_string(), ss58, "{role}");
        }
        assert!(dev_secret("alice").is_none());
    }

    #[test]
    fn world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Identity::create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Identity::load(dir.path()), Err(IdentityError::Permissions(..))));
    }
}
