//! The live relay under mutated input, over real sockets: pushes, registrations, forgets,
//! Web Push subscriptions and WebSocket frames made from valid ones by flipping, cutting, repeating and splicing
//! bytes (seeded, so a failing seed reproduces). Every answer must be a 2xx or a 4xx,
//! within seconds; the WebSocket may close, never hang; afterwards the relay still
//! delivers a chat's push. `HTTP_FUZZ_REQUESTS` (600 by default) and `HTTP_FUZZ_SEED` set
//! the run; `cargo xtask fuzz` also runs the coverage-guided targets of tests/fuzz.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use shared::relay_api::{PUSH_PATH, PUSH_SUBSCRIPTION, SESSIONS_PATH, ServerFrame};

use super::{Setup, test_secret_query};
use crate::harness::Options;
use crate::support::{NO_CLIENT_LIMITS, SERVICE};

/// xorshift64*: enough randomness for mutations, and the same run for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Fragments that reach deeper than random bytes do: JSON structure and the names the
/// relay looks for.
const TOKENS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "-1",
    "1e999",
    "18446744073709551616",
    "\"chatId\"",
    "\"messages\"",
    "\"index\"",
    "\\u0000",
    "\u{10FFFF}",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(6) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(at),
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let end = (at + rng.below(64)).min(bytes.len());
                let copy = bytes[at.min(end)..end].repeat(1 + rng.below(200));
                bytes.splice(at..at, copy);
            }
            4 => bytes.splice(at..at, std::iter::repeat_n(b'[', rng.below(3000))).for_each(drop),
            _ => {
                let i = rng.below(bytes.len().max(1));
                if let Some(byte) = bytes.get_mut(i) {
                    *byte = u8::try_from(rng.below(256)).unwrap_or(0);
                }
            }
        }
    }
    bytes
}

#[tokio::test]
#[allow(clippy::print_stdout, reason = "the run's figures, for RELIABILITY.md")]
async fn mutated_requests_get_a_4xx_never_a_5xx_a_panic_or_a_hang() -> Result<()> {
    let requests: usize =
        std::env::var("HTTP_FUZZ_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(600);
    let seed: u64 = std::env::var("HTTP_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(7);
    let web_push = ["--vapid-subject", "mailto:ops@example.com"];
    let setup = Setup::start(Options::sim(&[]).relay(&NO_CLIENT_LIMITS).relay(&web_push)).await?;
    let (credentials, mut ws, registered) = setup.subscribed_chat(false).await?;
    let relay = setup.system.relay_url.clone();
    let push = json!({"deviceId": "d", "message": "Ann: hi", "type": "Message",
        "chatId": credentials.chat_id, "userId": credentials.user_id, "secureKey": credentials.secure_key,
        "alias": credentials.alias, "nextPosition": 4,
        "messages": [{"from": {"nickname": "Ann", "participantId": 2, "type": "Agent"},
                      "index": 3, "type": "Message", "text": "hi", "utcTime": 1}]})
    .to_string();
    let register = json!({"service": SERVICE, "chatId": credentials.chat_id,
        "userId": credentials.user_id, "secureKey": credentials.secure_key, "alias": credentials.alias})
    .to_string();
    let frame =
        json!({"type": "subscribe", "chatId": credentials.chat_id, "token": registered.token})
            .to_string();
    let keys = crate::push_service::PushService::start().await?.subscribe()?.keys;
    let subscription = json!({"endpoint": "https://fcm.googleapis.com/fcm/send/fuzz",
        "keys": {"p256dh": keys.p256dh, "auth": keys.auth}, "page": "https://shop.example/",
        "texts": {"message": "{agent} replied", "file": "", "ended": "", "agent": ""}})
    .to_string();
    let subscription_url =
        format!("{relay}{SESSIONS_PATH}/{}/{PUSH_SUBSCRIPTION}", credentials.chat_id);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let mut rng = Rng(seed.max(1));
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..requests {
        let (method, url, body) = match rng.below(5) {
            0 | 1 => (
                reqwest::Method::POST,
                format!("{relay}{PUSH_PATH}{}", test_secret_query()),
                push.as_bytes(),
            ),
            2 => (reqwest::Method::POST, format!("{relay}{SESSIONS_PATH}"), register.as_bytes()),
            3 => (reqwest::Method::POST, subscription_url.clone(), subscription.as_bytes()),
            _ => {
                let chat =
                    String::from_utf8_lossy(&mutate(&mut rng, credentials.chat_id.as_bytes()))
                        .replace(['/', '?', '#'], "");
                (reqwest::Method::DELETE, format!("{relay}{SESSIONS_PATH}/{chat}"), &b""[..])
            }
        };
        let body = mutate(&mut rng, body);
        let response = client
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", registered.token))
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("request {n} (seed {seed}) hung or failed: {method} {url}"))?;
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        if status >= 500 {
            bail!(
                "request {n} (seed {seed}): {method} {url} answered {status}: {}\nbody: {:?}",
                response.text().await.unwrap_or_default(),
                String::from_utf8_lossy(&body)
            );
        }
    }
    // Mutated frames on one socket after another: a socket may close, never hang.
    let mut closed = 0;
    for _ in 0..requests / 10 {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(shared::relay_api::ws_url(&relay)).await?;
        for _ in 0..10 {
            let text = String::from_utf8_lossy(&mutate(&mut rng, frame.as_bytes())).into_owned();
            if socket.send(Message::Text(text.into())).await.is_err() {
                closed += 1;
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .context("a socket neither answered nor closed")?;
    }
    // Still healthy, and still delivering: the subscribed chat gets its agent's line.
    let health = client.get(format!("{relay}/healthz")).send().await?.status().as_u16();
    assert_eq!(health, 200);
    setup.admin.agent_says(&credentials.chat_id, "still here").await?;
    // Mutated pushes that still read were delivered too: skip their frames.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the chat's push after the fuzzing"
        );
        if let ServerFrame::Events { messages, .. } = ws.frame(Duration::from_secs(10)).await?
            && messages.iter().any(|e| e.text.as_deref() == Some("still here"))
        {
            break;
        }
    }
    println!("seed {seed}: {requests} requests {statuses:?}; {closed} sockets closed by the relay");
    setup.system.stop().await
}
