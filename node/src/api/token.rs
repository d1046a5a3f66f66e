//! The API token: routes that spend money or change anything need it (`Authorization: Bearer <token>`). `ferry
//! init` writes it beside the identity, readable by the node's user only; a home made before it has none until
//! the relay first starts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const TOKEN_FILE: &str = "api-token";

/// The home's token, made (32 random bytes, hex) when it has none.
pub fn load_or_create(home: &Path) -> std::io::Result<String> {
    let path = home.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().len() >= 32 => return Ok(t.trim().to_string()),
        Ok(_) => std::fs::remove_file(&path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    Ok(token)
}

/// Compares in time that does not depend on where the strings differ.
pub fn matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_token_is_made_once_and_private() {
        let home = tempfile::tempdir().unwrap();
        let t = load_or_create(home.path()).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(load_or_create(home.path()).unwrap(), t);
        let mode = std::fs::metadata(home.path().join(TOKEN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches(&t, &t) && !matches(&t, &t[1..]) && !matches(&t, &t.replace(&t[..1], "z")));
    }
}
