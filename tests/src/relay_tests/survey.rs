//! `POST /v1/sessions/{chatId}/survey` over real sockets: a rating of an ended chat reaches
//! the operator's webhook as JSON signed with HMAC-SHA256 (checked here with OpenSSL, not
//! the relay's code), retried while the webhook fails; wrong tokens, ratings off the scale
//! and a relay without a webhook are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use shared::relay_api::{SESSIONS_PATH, SURVEY};
use tokio::sync::mpsc;

use super::Setup;
use crate::harness::Options;

const SECRET: &str = "survey-secret-0123456789";

/// A webhook that answers `statuses` in turn (then 200) and hands over what it got.
struct Hook {
    url: String,
    received: mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)>,
}

async fn hook(statuses: Vec<u16>) -> Result<Hook> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/ratings", listener.local_addr()?);
    #[allow(clippy::disallowed_methods, reason = "a test receiver records everything")]
    let (tx, received) = mpsc::unbounded_channel();
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    let app = axum::Router::new().route(
        "/ratings",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (tx, statuses) = (tx.clone(), statuses.clone());
            async move {
                let signature = headers
                    .get("x-gms-chat-signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = tx.send((signature, body.to_vec()));
                let next = statuses.lock().ok().and_then(|mut s| s.next()).unwrap_or(200);
                StatusCode::from_u16(next).unwrap_or(StatusCode::OK)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Hook { url, received })
}

/// HMAC-SHA256 by OpenSSL, as the webhook's owner would check it.
fn expected_signature(body: &[u8]) -> Result<String> {
    let key = openssl::pkey::PKey::hmac(SECRET.as_bytes())?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(body)?;
    let hex: String = signer.sign_to_vec()?.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256={hex}"))
}

async fn rate(setup: &Setup, chat_id: &str, token: &str, answer: Value) -> Result<u16> {
    let url = format!("{}{SESSIONS_PATH}/{chat_id}/{SURVEY}", setup.system.relay_url);
    let response = setup.http.post(url).bearer_auth(token).json(&answer).send().await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn a_rating_reaches_the_webhook_signed_and_is_retried_until_taken() -> Result<()> {
    let mut hook = hook(vec![503]).await?;
    let relay = ["--survey-webhook", &hook.url, "--survey-webhook-secret", SECRET];
    let setup = Setup::start(Options::sim(&[]).relay(&relay)).await?;
    let credentials = setup.chat(false).await?;
    let registered = setup.register(&credentials).await?;
    let answer = json!({"scale": "stars", "rating": 4, "comment": "quick \"and\" kind"});
    assert_eq!(rate(&setup, &credentials.chat_id, &registered.token, answer).await?, 202);

    let mut bodies = Vec::new();
    for _ in 0..2 {
        let (signature, body) = tokio::time::timeout(Duration::from_secs(10), hook.received.recv())
            .await
            .context("the webhook was not called")?
            .context("closed")?;
        assert_eq!(signature, Some(expected_signature(&body)?), "signed with the secret");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1], "the same rating, again after the 503");
    let sent: Value = serde_json::from_slice(&bodies[0])?;
    assert_eq!(sent["chatId"], credentials.chat_id.as_str());
    assert_eq!(sent["service"], crate::support::SERVICE);
    assert_eq!((sent["scale"].as_str(), sent["rating"].as_u64()), (Some("stars"), Some(4)));
    assert_eq!(sent["comment"], "quick \"and\" kind");
    assert!(sent["ratedAt"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{sent}");
    // Taken: not sent again.
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), hook.received.recv()).await.is_err(),
        "sent again after a 200"
    );

    // Three ratings of one chat an hour: a fourth is someone filling the webhook.
    let again = json!({"scale": "stars", "rating": 5});
    assert_eq!(rate(&setup, &credentials.chat_id, &registered.token, again.clone()).await?, 202);
    assert_eq!(rate(&setup, &credentials.chat_id, &registered.token, again.clone()).await?, 202);
    assert_eq!(rate(&setup, &credentials.chat_id, &registered.token, again).await?, 429);

    // Refused: another chat's token, a rating off its scale, a comment too long.
    let other = setup.chat(false).await?;
    let other = setup.register(&other).await?;
    let good = json!({"scale": "thumbs", "rating": 1});
    assert_eq!(rate(&setup, &credentials.chat_id, &other.token, good.clone()).await?, 401);
    for bad in [
        json!({"scale": "stars", "rating": 6}),
        json!({"scale": "thumbs", "rating": 2}),
        json!({"scale": "smileys", "rating": 1}),
        json!({"scale": "stars", "rating": 3, "comment": "x".repeat(1001)}),
        json!({"rating": 3}),
    ] {
        assert_eq!(rate(&setup, &credentials.chat_id, &registered.token, bad).await?, 400);
    }
    setup.system.stop().await
}

#[tokio::test]
async fn without_a_webhook_ratings_are_not_taken() -> Result<()> {
    let setup = Setup::start(Options::sim(&[])).await?;
    let credentials = setup.chat(false).await?;
    let registered = setup.register(&credentials).await?;
    let answer = json!({"scale": "stars", "rating": 5});
    assert_eq!(rate(&setup, &credentials.chat_id, &registered.token, answer).await?, 404);
    setup.system.stop().await
}
