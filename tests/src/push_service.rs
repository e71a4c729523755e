//! A Web Push service for tests, independent of the relay's crypto: it takes the relay's
//! notifications over HTTP, checks the VAPID signature with OpenSSL (RFC 8292), decrypts
//! the payload with Mozilla's `ece` and the subscription's private key (RFC 8291), and
//! answers as the test tells it (201 by default; 410, 429 with `Retry-After`, 503 on cue).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use serde_json::Value;
use shared::relay_api::{PushKeys, WebPushPayload};

use crate::support::{Wait, until};

/// What the service answers to one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// This status, no header.
    Status(u16),
    /// This status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
}

/// One request the relay made.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// The subscription it was for (the endpoint's last segment).
    pub subscription: String,
    /// The verified VAPID claims and key, or why they did not verify.
    pub vapid: Result<Vapid, String>,
    /// The decrypted payload, or why it did not decrypt.
    pub payload: Result<WebPushPayload, String>,
    /// The encrypted body as sent (what a browser's push service would deliver).
    pub body: Vec<u8>,
    pub topic: Option<String>,
    pub ttl: Option<u64>,
    pub urgency: Option<String>,
    /// What the service answered.
    pub answered: u16,
}

/// A verified VAPID signature.
#[derive(Debug, Clone)]
pub struct Vapid {
    /// The application server's public key (`k=`), base64url.
    pub key: String,
    pub audience: String,
    pub subject: String,
    /// Seconds from now to the JWT's expiry.
    pub expires_in: i64,
}

/// A browser's subscription, made by the test: the endpoint and public keys a browser
/// would hand the relay, and the private key only the browser would hold.
pub struct Subscription {
    pub endpoint: String,
    pub keys: PushKeys,
    components: ece::EcKeyComponents,
    auth: Vec<u8>,
}

impl Subscription {
    /// Decrypts a body sent to this subscription, as the browser would.
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>> {
        ece::decrypt(&self.components, &self.auth, body).map_err(|e| anyhow!("ece: {e}"))
    }
}

#[derive(Default)]
struct Inner {
    origin: String,
    keys: HashMap<String, (ece::EcKeyComponents, Vec<u8>)>,
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

/// The running service.
pub struct PushService {
    origin: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PushService {
    pub async fn start() -> Result<PushService> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let inner = Arc::new(Mutex::new(Inner { origin: origin.clone(), ..Inner::default() }));
        let app = axum::Router::new()
            .route("/push/{id}", axum::routing::post(receive))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(PushService { origin, inner, task })
    }

    /// `http://127.0.0.1:<port>`: what the relay's `--web-push-service` must allow.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A new subscription on this service, with fresh browser keys.
    pub fn subscribe(&self) -> Result<Subscription> {
        let (pair, auth) = ece::generate_keypair_and_auth_secret().map_err(|e| anyhow!("{e}"))?;
        let components = pair.raw_components().map_err(|e| anyhow!("{e}"))?;
        let id = URL_SAFE_NO_PAD.encode(&auth[..8]);
        let keys = PushKeys {
            p256dh: URL_SAFE_NO_PAD.encode(components.public_key()),
            auth: URL_SAFE_NO_PAD.encode(auth),
        };
        self.lock().keys.insert(id.clone(), (components.clone(), auth.to_vec()));
        Ok(Subscription {
            endpoint: format!("{}/push/{id}", self.origin),
            keys,
            components,
            auth: auth.to_vec(),
        })
    }

    /// The answers to the next requests, in order; then 201 again.
    pub fn answer_next(&self, answers: &[Answer]) {
        self.lock().script.extend(answers.iter().copied());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until `count` requests have arrived.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Result<Vec<Received>> {
        until(&format!("{count} notifications"), within, async || {
            let received = self.received();
            Ok(if received.len() >= count {
                Wait::Done(received)
            } else {
                Wait::Still(format!("{} arrived: {received:?}", received.len()))
            })
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut inner = inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let vapid = header("authorization")
        .ok_or_else(|| "no Authorization header".to_owned())
        .and_then(|value| verify_vapid(&value, &inner.origin).map_err(|e| format!("{e:#}")));
    let payload = match inner.keys.get(&id) {
        None => Err("no such subscription".to_owned()),
        Some((components, auth)) => decrypt(&headers, components, auth, &body),
    };
    let answer = inner.script.pop_front().unwrap_or(Answer::Status(201));
    let (status, retry_after) = match answer {
        Answer::Status(status) => (status, None),
        Answer::RetryAfter(status, seconds) => (status, Some(seconds)),
    };
    inner.received.push(Received {
        at: Instant::now(),
        subscription: id,
        vapid,
        payload,
        body: body.to_vec(),
        topic: header("topic"),
        ttl: header("ttl").and_then(|v| v.parse().ok()),
        urgency: header("urgency"),
        answered: status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(seconds) => (status, [("retry-after", seconds.to_string())]).into_response(),
        None => status.into_response(),
    }
}

fn decrypt(
    headers: &HeaderMap,
    components: &ece::EcKeyComponents,
    auth: &[u8],
    body: &[u8],
) -> Result<WebPushPayload, String> {
    let encoding = headers.get("content-encoding").and_then(|v| v.to_str().ok());
    if encoding != Some("aes128gcm") {
        return Err(format!("Content-Encoding is {encoding:?}, not aes128gcm"));
    }
    let plain = ece::decrypt(components, auth, body).map_err(|e| format!("ece: {e}"))?;
    serde_json::from_slice(&plain).map_err(|e| format!("payload JSON: {e}"))
}

/// Checks `vapid t=<JWT>, k=<key>`: an ES256 JWT signed by `k`, for `audience`, expiring
/// within a day (RFC 8292 §2).
fn verify_vapid(header: &str, audience: &str) -> Result<Vapid> {
    let rest = header.strip_prefix("vapid ").context("not the vapid scheme")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => token = Some(value.to_owned()),
            Some(("k", value)) => key = Some(value.to_owned()),
            _ => {}
        }
    }
    let (token, key) = (token.context("no t=")?, key.context("no k=")?);
    let (signed, signature) = token.rsplit_once('.').context("not a JWT")?;
    let (head, claims) = signed.split_once('.').context("not a JWT")?;
    let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head)?)?;
    ensure!(head["alg"] == "ES256", "alg is {}", head["alg"]);

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let mut context = BigNumContext::new()?;
    let point = EcPoint::from_bytes(&group, &URL_SAFE_NO_PAD.decode(&key)?, &mut context)?;
    let public = EcKey::from_public_key(&group, &point)?;
    let signature = URL_SAFE_NO_PAD.decode(signature)?;
    ensure!(signature.len() == 64, "an ES256 signature is 64 bytes");
    let signature = EcdsaSig::from_private_components(
        BigNum::from_slice(&signature[..32])?,
        BigNum::from_slice(&signature[32..])?,
    )?;
    let digest = openssl::sha::sha256(signed.as_bytes());
    ensure!(signature.verify(&digest, &public)?, "the signature does not verify");

    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?;
    ensure!(claims["aud"] == audience, "aud is {}, not {audience}", claims["aud"]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let expires_in = claims["exp"].as_i64().context("no exp")? - now;
    ensure!((0..=24 * 3600).contains(&expires_in), "exp is {expires_in} s away");
    Ok(Vapid {
        key,
        audience: audience.to_owned(),
        subject: claims["sub"].as_str().unwrap_or_default().to_owned(),
        expires_in,
    })
}
