//! customhttp push: the body Chat Server and GMS would send, and its delivery with resend.
//!
//! GMS documents `{"deviceId", "message"}`; the tokens follow `flex-push-content` and the
//! payload follows `GCTI_GMS_PushIncludePayload`. With `GCTI_GMS_PushResend` the push is
//! resent every `--push-resend-delay` until a refresh for the chat acknowledges it, up to
//! `--push-resend-attempts` times, whatever the receiver answered: only the refresh counts.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use shared::gms::{ChatEvent, EventType};
use tokio_util::sync::CancellationToken;

use crate::chat::{Chat, PushSubscription};
use crate::config::{Config, PushFormat};
use crate::world::World;

/// One notification to deliver.
#[derive(Debug, Clone)]
pub(crate) struct PushJob {
    pub(crate) id: u64,
    pub(crate) chat_id: String,
    pub(crate) resend: bool,
    pub(crate) body: Value,
}

/// The notification body for `event`, laid out as `--push-format` says.
pub(crate) fn body(
    config: &Config,
    chat: &Chat,
    subscription: &PushSubscription,
    event: &ChatEvent,
) -> Value {
    // With resend on, Chat Server sends every unsolicited notification as `push-url` (seed).
    let kind = if subscription.resend {
        "push-url".to_owned()
    } else {
        event.event_type.as_str().to_owned()
    };
    let mut top = Map::new();
    top.insert("deviceId".into(), json!(subscription.device_id));
    top.insert("message".into(), json!(summary(event)));
    if config.push_format != PushFormat::Minimal {
        top.insert("type".into(), json!(kind));
    }
    match config.push_format {
        PushFormat::Minimal => {}
        PushFormat::Flat | PushFormat::Kebab => {
            top.extend(tokens(config, chat));
            top.extend(payload(chat, subscription, event));
        }
        PushFormat::Nested => {
            let mut nested = tokens(config, chat);
            nested.extend(payload(chat, subscription, event));
            top.insert("payload".into(), Value::Object(nested));
        }
        PushFormat::Envelope => top.extend(envelope(config, chat, subscription, event)),
        PushFormat::EnvelopeString => {
            let text = Value::Object(envelope(config, chat, subscription, event)).to_string();
            top.insert("message".into(), json!(text));
        }
    }
    Value::Object(top)
}

/// The `flex-push-content` tokens, under Chat Server's names in the `kebab` format.
fn tokens(config: &Config, chat: &Chat) -> Map<String, Value> {
    let wants = |token: &str| config.flex_push_content.iter().any(|t| t.trim() == token);
    let mut tokens = Map::new();
    let kebab = config.push_format == PushFormat::Kebab;
    if wants("session-id") {
        tokens.insert(if kebab { "session-id" } else { "chatId" }.into(), json!(chat.id));
    }
    if wants("user-id") {
        tokens.insert(if kebab { "user-id" } else { "userId" }.into(), json!(chat.user_id));
    }
    if wants("secure-key") {
        tokens
            .insert(if kebab { "secure-key" } else { "secureKey" }.into(), json!(chat.secure_key));
    }
    if wants("app-dbid") {
        let alias = if kebab {
            chat.alias.parse::<u64>().map_or_else(|_| json!(chat.alias), |n| json!(n))
        } else {
            json!(chat.alias)
        };
        tokens.insert(if kebab { "app-dbid" } else { "alias" }.into(), alias);
    }
    tokens
}

/// What `GCTI_GMS_PushIncludePayload` adds in the token layouts: the event and the
/// position after it.
fn payload(chat: &Chat, subscription: &PushSubscription, event: &ChatEvent) -> Map<String, Value> {
    let mut payload = Map::new();
    if subscription.include_payload {
        payload.insert("messages".into(), json!([event]));
        if event.index.is_some() {
            payload.insert("nextPosition".into(), json!(chat.next_position()));
        }
    }
    payload
}

/// With the payload included, the REST envelope as a CometD notification carries it: every
/// token whatever `flex-push-content` says, `statusCode`, `chatEnded`, the event and
/// `nextPosition`. Without it, only the `flex-push-content` tokens.
fn envelope(
    config: &Config,
    chat: &Chat,
    subscription: &PushSubscription,
    event: &ChatEvent,
) -> Map<String, Value> {
    if !subscription.include_payload {
        return tokens(config, chat);
    }
    let mut response = chat.envelope(0);
    if config.omit_tokens {
        (response.user_id, response.alias) = (None, None);
    }
    response.messages = vec![event.clone()];
    response.next_position = event.index.map(|_| chat.next_position());
    match serde_json::to_value(response) {
        Ok(Value::Object(envelope)) => envelope,
        _ => tokens(config, chat),
    }
}

/// The human-readable notification text.
fn summary(event: &ChatEvent) -> String {
    let who = &event.from.nickname;
    let text = event.text.as_deref().unwrap_or("");
    match event.event_type {
        EventType::Message => format!("{who}: {text}"),
        EventType::ParticipantJoined => format!("{who} joined the chat"),
        EventType::ParticipantLeft => format!("{who} left the chat"),
        EventType::TypingStarted => format!("{who} is typing"),
        EventType::PushUrl => format!("{who} sent a link: {text}"),
        EventType::FileUploaded => format!("{who} sent a file"),
        _ => format!("{who}: {}", event.event_type.as_str()),
    }
}

/// Delivers one push, and resends it until acknowledged when resend is on.
pub(crate) async fn deliver(
    job: PushJob,
    world: Arc<Mutex<World>>,
    client: reqwest::Client,
    shutdown: CancellationToken,
) {
    let (delay, attempts) = {
        let Ok(w) = world.lock() else { return };
        (w.config.push_resend_delay, w.config.push_resend_attempts)
    };
    for attempt in 0..=attempts {
        let (url, fault) = {
            let Ok(mut w) = world.lock() else { return };
            if attempt > 0 && !w.is_pending(&job.chat_id, job.id) {
                return;
            }
            let Some(url) = w.next_push_url() else { return };
            (url, w.take_push_fault())
        };
        if !fault.delay.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(fault.delay) => {}
            }
        }
        let delivered = if fault.drop {
            false
        } else {
            if fault.duplicate {
                post(&client, &url, &job.body).await;
            }
            post(&client, &url, &job.body).await
        };
        if let Ok(mut w) = world.lock() {
            let stats = &mut w.stats.pushes;
            *if attempt == 0 { &mut stats.sent } else { &mut stats.resent } += 1;
            *if delivered { &mut stats.delivered } else { &mut stats.failed } += 1;
        }
        if !job.resend {
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
    if let Ok(mut w) = world.lock() {
        w.expire(&job.chat_id, job.id);
    }
}

/// Posts one push; answers whether the receiver took it (HTTP 200).
async fn post(client: &reqwest::Client, url: &str, body: &Value) -> bool {
    match client.post(url).json(body).send().await {
        Ok(response) => response.status() == reqwest::StatusCode::OK,
        Err(error) => {
            tracing::debug!(%error, "push delivery failed");
            false
        }
    }
}
