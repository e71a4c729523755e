//! Subscription tokens: an HMAC-SHA256 of the chat id under the relay's key, so a browser
//! can subscribe only to the chat it registered, and several relays sharing a key accept
//! each other's tokens. Resume tokens, under the same key: `<chatId>.<nonce>.<mac>`, valid
//! while the chat's record keeps the resume epoch the mac covers.

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

    fn keyed(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn mac(&self, chat_id: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed();
        mac.update(chat_id.as_bytes());
        mac
    }

    /// The mac of a resume token. Its input starts with `resume\0`, which no chat id (GMS's
    /// alphabet) does, so it is never a subscription token nor the other way round.
    fn resume_mac(&self, chat_id: &str, epoch: u64, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed();
        for part in [b"resume".as_slice(), chat_id.as_bytes(), epoch.to_string().as_bytes()] {
            mac.update(part);
            mac.update(b"\0");
        }
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new resume token for the chat, valid while its record's resume epoch is `epoch`.
    pub(crate) fn resume_token(&self, chat_id: &str, epoch: u64) -> String {
        let mut nonce = [0_u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let mac =
            URL_SAFE_NO_PAD.encode(self.resume_mac(chat_id, epoch, &nonce).finalize().into_bytes());
        format!("{chat_id}.{nonce}.{mac}")
    }

    /// Whether a parsed resume token was made under `epoch` by a relay with this key
    /// (constant time).
    pub(crate) fn resume_verifies(&self, token: &ResumeToken<'_>, epoch: u64) -> bool {
        self.resume_mac(token.chat_id, epoch, token.nonce).verify_slice(&token.mac).is_ok()
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

/// The random bytes of a resume token's nonce.
const NONCE_BYTES: usize = 16;
/// The longest resume token read: a chat id of 128 characters, the nonce and the mac.
const MAX_RESUME_TOKEN: usize = 256;

/// A resume token's parts, well formed but not yet verified.
#[derive(Debug)]
pub(crate) struct ResumeToken<'a> {
    /// The chat it names (GMS's id alphabet).
    pub(crate) chat_id: &'a str,
    nonce: &'a str,
    mac: Vec<u8>,
}

impl<'a> ResumeToken<'a> {
    /// The parts of `<chatId>.<nonce>.<mac>`, or None for anything else.
    pub(crate) fn parse(token: &'a str) -> Option<ResumeToken<'a>> {
        if token.len() > MAX_RESUME_TOKEN {
            return None;
        }
        let mut parts = token.split('.');
        let (chat_id, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !shared::gms::is_gms_id(chat_id) {
            return None;
        }
        let nonce_ok = URL_SAFE_NO_PAD.decode(nonce).is_ok_and(|n| n.len() == NONCE_BYTES);
        let mac = URL_SAFE_NO_PAD.decode(mac).ok().filter(|m| m.len() == 32)?;
        nonce_ok.then_some(ResumeToken { chat_id, nonce, mac })
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
    use super::{ResumeToken, Tokens};

    #[test]
    fn a_resume_token_verifies_for_its_chat_and_epoch_only() {
        let tokens = Tokens::from_key(b"a key shared by every relay node".to_vec());
        let token = tokens.resume_token("chat-1", 7);
        let (chat_id, rest) = token.split_once('.').expect("three parts");
        assert_eq!(chat_id, "chat-1");
        let (nonce, mac) = rest.split_once('.').expect("three parts");
        assert_eq!((nonce.len(), mac.len()), (22, 43), "{token}");
        let parsed = ResumeToken::parse(&token).expect("well formed");
        assert_eq!(parsed.chat_id, "chat-1");
        assert!(tokens.resume_verifies(&parsed, 7));
        assert!(!tokens.resume_verifies(&parsed, 8), "a revoked epoch");
        assert!(!Tokens::from_key(b"another key".to_vec()).resume_verifies(&parsed, 7));
        assert_ne!(tokens.resume_token("chat-1", 7), token, "a fresh nonce each time");
        // Another chat's id over this token's nonce and mac.
        let moved = format!("chat-2.{rest}");
        let moved = ResumeToken::parse(&moved).expect("well formed");
        assert!(!tokens.resume_verifies(&moved, 7));
        // Neither kind of token passes for the other.
        assert!(!tokens.verify("chat-1", mac));
        let subscription = tokens.sign("chat-1");
        let forged = format!("chat-1.{nonce}.{subscription}");
        assert!(!tokens.resume_verifies(&ResumeToken::parse(&forged).expect("parses"), 7));
    }

    #[test]
    fn malformed_resume_tokens_are_refused_without_panicking() {
        let tokens = Tokens::from_key(b"a key shared by every relay node".to_vec());
        let good = tokens.resume_token("chat-1", 0);
        let (chat_id, rest) = good.split_once('.').expect("three parts");
        let (nonce, mac) = rest.split_once('.').expect("three parts");
        let long_chat = "c".repeat(129);
        let bad = [
            String::new(),
            ".".into(),
            "..".into(),
            format!("{chat_id}.{nonce}"),
            format!("{good}.extra"),
            format!("../x.{nonce}.{mac}"),
            format!("{long_chat}.{nonce}.{mac}"),
            format!("{chat_id}.{}.{mac}", &nonce[..21]),
            format!("{chat_id}.{nonce}.{}", &mac[..42]),
            format!("{chat_id}.{nonce}.{mac}A"),
            format!("{chat_id}.{nonce}.{}", mac.replace(|_| true, "!")),
            format!("{chat_id}.{nonce}é.{mac}"),
            "x".repeat(300),
        ];
        for token in &bad {
            assert!(ResumeToken::parse(token).is_none(), "{token:?}");
        }
        assert!(ResumeToken::parse(&good).is_some());
    }

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
