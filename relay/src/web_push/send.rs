//! One notification to one push service: the subscription checked, the payload encrypted
//! (RFC 8291, by `web-push-native`), the request signed (VAPID, RFC 8292), and the push
//! service's answer judged.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use web_push_native::jwt_simple::algorithms::ECDSAP256KeyPairLike as _;
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::{Auth, WebPushBuilder, p256};

use super::vapid::Vapid;
use crate::store::WebPushSubscription;

/// How often a notification is tried before it is given up.
pub(crate) const ATTEMPTS: u32 = 5;
/// The longest wait between two attempts, whatever `Retry-After` asks.
const LONGEST_WAIT: Duration = Duration::from_secs(600);

/// A subscription the relay may post to.
pub(crate) struct Target {
    endpoint: reqwest::Url,
    public: p256::PublicKey,
    auth: Auth,
}

impl Target {
    /// Checks a subscription: an endpoint on one of `services`, a valid P-256 key and a
    /// 16-byte secret. The error says which part is wrong (and never echoes the values).
    pub(crate) fn of(
        subscription: &WebPushSubscription,
        services: &[String],
    ) -> Result<Target, String> {
        let endpoint = reqwest::Url::parse(&subscription.endpoint)
            .map_err(|_| "the endpoint is not a URL".to_owned())?;
        if !services.iter().any(|service| service_allows(service, &endpoint)) {
            return Err("the endpoint is not on a known push service".to_owned());
        }
        let key = URL_SAFE_NO_PAD
            .decode(subscription.p256dh.trim_end_matches('='))
            .map_err(|_| "keys.p256dh is not base64url".to_owned())?;
        let public = p256::PublicKey::from_sec1_bytes(&key)
            .map_err(|_| "keys.p256dh is not a P-256 public key".to_owned())?;
        let auth = URL_SAFE_NO_PAD
            .decode(subscription.auth.trim_end_matches('='))
            .ok()
            .filter(|auth| auth.len() == 16)
            .ok_or_else(|| "keys.auth is not 16 bytes of base64url".to_owned())?;
        Ok(Target { endpoint, public, auth: Auth::clone_from_slice(&auth) })
    }

    /// The signed, encrypted request for `payload`; `topic` lets the push service replace
    /// an undelivered notification of the same chat with this one.
    pub(crate) fn request(
        &self,
        vapid: &Vapid,
        payload: &[u8],
        ttl: Duration,
        topic: &str,
        urgency: &'static str,
    ) -> anyhow::Result<reqwest::Request> {
        let uri: axum::http::Uri = self.endpoint.as_str().parse()?;
        let request = WebPushBuilder::new(uri, self.public, self.auth)
            .with_valid_duration(ttl)
            .build(payload.to_vec())
            .map_err(|e| anyhow::anyhow!("encrypting the payload: {e}"))?;
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .insert(axum::http::header::AUTHORIZATION, self.authorization(vapid, ttl)?.parse()?);
        parts.headers.insert("topic", topic.parse()?);
        parts.headers.insert("urgency", axum::http::HeaderValue::from_static(urgency));
        Ok(reqwest::Request::try_from(axum::http::Request::from_parts(parts, body))?)
    }

    /// `vapid t=<JWT>, k=<public key>`. The audience is the endpoint's origin with its port
    /// (RFC 8292 §2); the JWT expires with the notification's TTL.
    fn authorization(&self, vapid: &Vapid, ttl: Duration) -> anyhow::Result<String> {
        let audience = self.endpoint.origin().ascii_serialization();
        let claims =
            Claims::create(ttl.into()).with_audience(audience).with_subject(vapid.subject.clone());
        let token = vapid.pair.sign(claims).map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        Ok(format!("vapid t={token}, k={}", vapid.public))
    }
}

/// `https://host`, `https://*.domain` (any subdomain), or with a port.
fn service_allows(service: &str, endpoint: &reqwest::Url) -> bool {
    let Some((scheme, rest)) = service.trim_end_matches('/').split_once("://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok()),
        None => (rest, None),
    };
    let Some(actual) = endpoint.host_str() else { return false };
    let host_matches = match host.strip_prefix("*.") {
        Some(domain) => actual.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.')),
        None => actual.eq_ignore_ascii_case(host),
    };
    let port_matches = match port {
        Some(port) => endpoint.port_or_known_default() == Some(port),
        // The scheme's own port (`Url::port` is `None` for it).
        None => endpoint.port().is_none(),
    };
    endpoint.scheme() == scheme && host_matches && port_matches
}

/// The `Topic` of a chat's notifications: at most 32 URL-safe characters (RFC 8030 §5.4),
/// the same for every notification of the chat and naming nothing.
pub(crate) fn topic(chat_id: &str) -> String {
    let digest = Sha256::digest(chat_id.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// What to do after a push service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted (201).
    Delivered,
    /// The subscription is gone (404, 410): forget it.
    Gone,
    /// The payload is too large (413): send it again without the preview.
    TooLarge,
    /// Try again after this wait (429, 5xx, no answer).
    Retry(Duration),
    /// Refused for good (another 4xx: a VAPID key the subscription was not made with, a
    /// malformed request); tried again with the next news.
    Refused,
}

/// Judges the answer to attempt `attempt` (1 for the first): `status` is `None` when no
/// answer came; `retry_after` is the header's value.
pub(crate) fn judge(status: Option<u16>, retry_after: Option<&str>, attempt: u32) -> Verdict {
    let retry = || {
        // Seconds only: an HTTP-date falls back to the backoff.
        let asked = retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let backoff = Duration::from_secs(1 << attempt.saturating_sub(1).min(9));
        Verdict::Retry(asked.unwrap_or(backoff).min(LONGEST_WAIT))
    };
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(404 | 410) => Verdict::Gone,
        Some(413) => Verdict::TooLarge,
        Some(429 | 500..=599) | None => retry(),
        Some(_) => Verdict::Refused,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Verdict, judge, service_allows, topic};

    #[test]
    fn push_services_match_by_scheme_host_and_port_only() {
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        let fcm = "https://fcm.googleapis.com";
        assert!(service_allows(fcm, &url("https://fcm.googleapis.com/fcm/send/abc")));
        assert!(!service_allows(fcm, &url("http://fcm.googleapis.com/fcm/send/abc")));
        assert!(!service_allows(fcm, &url("https://fcm.googleapis.com.evil.example/x")));
        assert!(!service_allows(fcm, &url("https://fcm.googleapis.com:8443/x")));
        let windows = "https://*.notify.windows.com";
        assert!(service_allows(windows, &url("https://wns2-par02p.notify.windows.com/w/?t=1")));
        assert!(!service_allows(windows, &url("https://notify.windows.com/w")));
        assert!(!service_allows(windows, &url("https://evilnotify.windows.com/w")));
        let local = "http://127.0.0.1:4000";
        assert!(service_allows(local, &url("http://127.0.0.1:4000/push/1")));
        assert!(!service_allows(local, &url("http://127.0.0.1:4001/push/1")));
        assert!(!service_allows("not a service", &url("https://fcm.googleapis.com/x")));
    }

    #[test]
    fn answers_are_judged_as_rfc_8030_says() {
        assert_eq!(judge(Some(201), None, 1), Verdict::Delivered);
        assert_eq!(judge(Some(410), None, 1), Verdict::Gone);
        assert_eq!(judge(Some(404), None, 1), Verdict::Gone);
        assert_eq!(judge(Some(413), None, 1), Verdict::TooLarge);
        assert_eq!(judge(Some(429), Some("7"), 1), Verdict::Retry(Duration::from_secs(7)));
        assert_eq!(judge(Some(503), None, 3), Verdict::Retry(Duration::from_secs(4)));
        assert_eq!(judge(None, None, 1), Verdict::Retry(Duration::from_secs(1)));
        assert_eq!(
            judge(Some(429), Some("Wed, 21 Oct 2026 07:28:00 GMT"), 2),
            Verdict::Retry(Duration::from_secs(2))
        );
        assert_eq!(judge(Some(503), Some("86400"), 1), Verdict::Retry(Duration::from_secs(600)));
        assert_eq!(judge(Some(403), None, 1), Verdict::Refused);
    }

    #[test]
    fn a_chats_topic_is_stable_short_and_url_safe() {
        let t = topic("0008TaFN3SE300QU");
        assert_eq!(t, topic("0008TaFN3SE300QU"));
        assert_ne!(t, topic("0008TaFN3SE300QV"));
        assert!(t.len() <= 32 && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)));
    }
}
