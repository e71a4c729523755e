//! Subscription tokens: an HMAC-SHA256 of the chat id under the relay's key, so a browser
//! can subscribe only to the chat it registered, and several relays sharing a key accept
//! each other's tokens.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Signs and checks tokens. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub(crate) struct Tokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(..)")
    }
}

impl Tokens {
    /// The configured key, or the one kept in `dir/token.key` (created on first start).
    pub(crate) fn load(configured: Option<&str>, dir: &Path) -> anyhow::Result<Tokens> {
        if let Some(secret) = configured.filter(|s| !s.is_empty()) {
            return Ok(Tokens { key: secret.as_bytes().to_vec() });
        }
        let key = kept_key(dir, "token.key", random_key)?;
        Ok(Tokens { key })
    }

    /// Tokens under a key kept elsewhere (Redis).
    pub(crate) fn from_key(key: Vec<u8>) -> Tokens {
        Tokens { key }
    }

    fn mac(&self, chat_id: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(chat_id.as_bytes());
        mac
    }

    /// The token for a chat.
    pub(crate) fn sign(&self, chat_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(chat_id).finalize().into_bytes())
    }

    /// Whether `token` was signed for `chat_id` (constant time).
    pub(crate) fn verify(&self, chat_id: &str, token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token.trim()) else { return false };
        self.mac(chat_id).verify_slice(&bytes).is_ok()
    }
}

/// 32 random bytes: a fresh HMAC key.
pub(crate) fn random_key() -> Vec<u8> {
    let mut key = vec![0_u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

/// The secret kept in `dir/name`, made by `fresh` and written (readable by the owner only)
/// on first start.
pub(crate) fn kept_key(
    dir: &Path,
    name: &str,
    fresh: impl FnOnce() -> Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(name);
    if let Ok(existing) = std::fs::read(&path) {
        anyhow::ensure!(existing.len() >= 32, "{} is too short to be a key", path.display());
        return Ok(existing);
    }
    std::fs::create_dir_all(dir)?;
    let key = fresh();
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::Tokens;

    #[test]
    fn tokens_verify_for_their_chat_only_and_the_key_persists() {
        let dir = std::env::temp_dir().join(format!("relay-token-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tokens = Tokens::load(None, &dir).expect("creates a key");
        let token = tokens.sign("chat-1");
        assert!(tokens.verify("chat-1", &token));
        assert!(!tokens.verify("chat-2", &token));
        assert!(!tokens.verify("chat-1", "not-base64!"));
        assert!(!tokens.verify("chat-1", ""));
        let reloaded = Tokens::load(None, &dir).expect("reads the key");
        assert!(reloaded.verify("chat-1", &token), "a restart keeps tokens valid");
        let configured = Tokens::load(Some("shared-secret"), &dir).expect("configured");
        assert!(!configured.verify("chat-1", &token));
        assert_eq!(format!("{configured:?}"), "Tokens(..)");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
