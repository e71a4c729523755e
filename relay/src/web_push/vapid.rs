//! The relay's VAPID identity (RFC 8292): the key pair push services check requests
//! against, kept so that subscriptions made with its public key keep working.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike as _, ES256KeyPair};

use crate::store::redis::{Keys, Topology, kept_key};
use crate::token;

/// The key pair and the contact. Its `Debug` shows the public key only.
pub(crate) struct Vapid {
    pub(crate) pair: ES256KeyPair,
    /// The public key as browsers take it (`applicationServerKey`): base64url of the
    /// uncompressed point.
    pub(crate) public: String,
    /// `mailto:` or `https:`, for push services to reach the operator.
    pub(crate) subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid").field("public", &self.public).finish_non_exhaustive()
    }
}

/// Where the private key comes from when none is configured.
#[derive(Clone, Copy)]
pub(crate) enum Keeper<'a> {
    /// A file in the data directory (one relay).
    Dir(&'a Path),
    /// Redis, shared by every relay.
    Redis(&'a Topology, &'a Keys),
}

impl Vapid {
    /// The configured key (base64url of the 32-byte scalar), or the kept one, made on first
    /// start. Blocks: call it off the async threads.
    pub(crate) fn load(
        configured: Option<&str>,
        keeper: Keeper<'_>,
        subject: &str,
    ) -> anyhow::Result<Vapid> {
        let fresh = || ES256KeyPair::generate().to_bytes();
        let raw = match configured.map(str::trim).filter(|k| !k.is_empty()) {
            Some(key) => URL_SAFE_NO_PAD
                .decode(key.trim_end_matches('='))
                .map_err(|_| anyhow::anyhow!("--vapid-private-key is not base64url"))?,
            None => match keeper {
                Keeper::Dir(dir) => token::kept_key(dir, "vapid.key", fresh)?,
                Keeper::Redis(client, keys) => kept_key(client, &keys.vapid_key(), fresh)?,
            },
        };
        let pair = ES256KeyPair::from_bytes(&raw)
            .map_err(|_| anyhow::anyhow!("the VAPID private key is not a P-256 scalar"))?;
        let public = URL_SAFE_NO_PAD.encode(pair.public_key().public_key().to_bytes_uncompressed());
        Ok(Vapid { pair, public, subject: subject.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::{Keeper, Vapid};

    #[test]
    fn the_kept_key_survives_a_restart_and_a_configured_one_wins() {
        let dir = std::env::temp_dir().join(format!("relay-vapid-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Vapid::load(None, Keeper::Dir(&dir), "mailto:ops@example.com").expect("made");
        let again = Vapid::load(None, Keeper::Dir(&dir), "mailto:ops@example.com").expect("read");
        assert_eq!(first.public, again.public);
        assert_eq!(first.public.len(), 87, "65 bytes, base64url");
        // The example key of web-push-native's documentation.
        let configured = "RS0WdYWWo1HajXg3NZR1olzCf31i-ZBGDkFyCs7j1jw";
        let chosen = Vapid::load(Some(configured), Keeper::Dir(&dir), "mailto:x@example.com")
            .expect("configured");
        assert_ne!(chosen.public, first.public);
        assert!(!format!("{chosen:?}").contains(configured), "the private key is never shown");
        assert!(Vapid::load(Some("not base64!"), Keeper::Dir(&dir), "mailto:x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
