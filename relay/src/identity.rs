//! Verified identity: a site's backend vouches for its logged-in visitor with
//! `userHash = hex(HMAC-SHA256(secret, userId))` (the convention of Intercom and Chatwoot),
//! the secret shared with the relay as `--identity-secret`. A chat registered with a hash
//! that verifies is kept under that hash, so the visitor's other devices can take it over.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The longest user id accepted, in bytes.
const MAX_USER_ID: usize = 256;
/// The hex digits of an HMAC-SHA256.
const HASH_HEX: usize = 64;

/// Checks identities against the site's secret. Its `Debug` shows nothing of the secret.
#[derive(Clone)]
pub(crate) struct Verifier {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(..)")
    }
}

/// A user hash that verified, as the relay keeps it: lowercase hex, whatever case the site
/// sent. A credential (whoever holds it takes the identity's chat over): never logged, so
/// its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserHash(String);

impl std::fmt::Debug for UserHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserHash(..)")
    }
}

impl UserHash {
    /// The hash as stored.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Verifier {
    /// A verifier under the site's secret (its length is `Config::validate`'s to check).
    pub(crate) fn new(secret: &[u8]) -> Verifier {
        Verifier { secret: secret.to_vec() }
    }

    /// The hash when `user_hash` is the HMAC of `user_id` under the secret (compared in
    /// constant time); None when it is not, or either is no well-formed value.
    pub(crate) fn verify(&self, user_id: &str, user_hash: &str) -> Option<UserHash> {
        if !user_id_fits(user_id) {
            return None;
        }
        let bytes = hex_decode(user_hash)?;
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret) else {
            return None;
        };
        mac.update(user_id.as_bytes());
        mac.verify_slice(&bytes).ok()?;
        Some(UserHash(user_hash.to_ascii_lowercase()))
    }
}

/// 1 to `MAX_USER_ID` bytes without control characters: it becomes user data in GMS and
/// the agent's desktop shows it.
fn user_id_fits(user_id: &str) -> bool {
    (1..=MAX_USER_ID).contains(&user_id.len()) && !user_id.chars().any(char::is_control)
}

/// The 32 bytes of a 64-digit hex string (either case), or None.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() != HASH_HEX {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;

    use super::Verifier;

    const SECRET: &[u8] = b"a-site-secret-of-at-least-32-bytes!!";

    /// What a site's backend computes.
    fn site_hash(user_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET).expect("any key");
        mac.update(user_id.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_sites_hash_verifies_for_its_user_only_in_either_case() {
        let verifier = Verifier::new(SECRET);
        let hash = site_hash("user-42");
        let verified = verifier.verify("user-42", &hash).expect("verifies");
        assert_eq!(verified.as_str(), hash);
        let upper = verifier.verify("user-42", &hash.to_ascii_uppercase()).expect("verifies");
        assert_eq!(upper.as_str(), hash, "kept lowercase");
        assert!(verifier.verify("user-43", &hash).is_none());
        assert!(
            Verifier::new(b"another secret, also long enough!!").verify("user-42", &hash).is_none()
        );
        assert_eq!(format!("{verified:?} {verifier:?}"), "UserHash(..) Verifier(..)");
    }

    #[test]
    fn malformed_hashes_and_user_ids_never_verify_nor_panic() {
        let verifier = Verifier::new(SECRET);
        let hash = site_hash("user-42");
        for bad in ["", "zz", &hash[..62], &format!("{hash}00"), &format!("{}é", &hash[..62])] {
            assert!(verifier.verify("user-42", bad).is_none(), "{bad:?}");
        }
        let mut flipped = hash.into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert!(verifier.verify("user-42", &flipped).is_none());
        let long = "u".repeat(257);
        for user in ["", "line\nbreak", "tab\t", long.as_str()] {
            assert!(verifier.verify(user, &site_hash(user)).is_none(), "{user:?}");
        }
        let longest = "u".repeat(256);
        assert!(verifier.verify(&longest, &site_hash(&longest)).is_some());
        assert!(verifier.verify("Jörg Müller", &site_hash("Jörg Müller")).is_some());
    }
}
