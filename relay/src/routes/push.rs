//! `POST /gms/push`: the customhttp target. Authenticate, parse tolerantly, make the
//! update durable, answer 200, tell the subscribers, queue the acknowledgement.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use shared::gms::Credentials;
use shared::push::PushNotification;
use shared::relay_api::ServerFrame;

use crate::AppState;
use crate::acker::Reason;
use crate::error::AppError;
use crate::store::ChatRecord;

pub(crate) async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let received = Instant::now();
    let result = accept(&state, peer, &query, &headers, &body, received).await;
    let label: &'static str = match &result {
        Ok(label) => label,
        Err(AppError::PushUnauthorized | AppError::PushForbidden) => "unauthorized",
        Err(AppError::BadRequest(_)) => "malformed",
        Err(_) => "error",
    };
    metrics::counter!("relay_pushes_total", "result" => label).increment(1);
    result.map(|_| StatusCode::OK)
}

async fn accept(
    state: &AppState,
    peer: SocketAddr,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
    received: Instant,
) -> Result<&'static str, AppError> {
    authorize(state, peer, query, headers)?;
    let push = PushNotification::parse(body).map_err(|e| {
        tracing::warn!(reason = %e, bytes = body.len(), "malformed push rejected");
        AppError::BadRequest(e.to_string())
    })?;
    let chat_id = push.chat_id.clone().or_else(|| {
        let device = push.device_id.as_deref()?;
        state.sessions.by_device(device).map(|r| r.credentials.chat_id)
    });
    let Some(chat_id) = chat_id else {
        tracing::warn!(device = ?push.device_id, "push for no known chat ignored");
        return Ok("unroutable");
    };

    let known_position = push.known_next_position();
    let previous_alias = state.sessions.get(&chat_id).map(|r| r.credentials.alias);
    let record = state
        .sessions
        .update(
            &chat_id,
            || record_from_push(&push, &chat_id, &state.config.default_service),
            |r| absorb(r, &push, known_position),
        )
        .await?;
    if record.is_none() {
        // Unregistered and without every token: nothing to acknowledge with.
        metrics::counter!("relay_pings_total", "kind" => "ack", "result" => "impossible")
            .increment(1);
        return Ok("no_tokens");
    }
    if let (Some(before), Some(after)) =
        (previous_alias, record.as_ref().map(|r| &r.credentials.alias))
        && before != *after
    {
        state.hub.publish(
            &chat_id,
            &ServerFrame::Tokens { chat_id: chat_id.clone(), alias: after.clone() },
        );
    }

    if push.shutdown_advice {
        tracing::info!(chat = %chat_id, "Chat Server shutdown advice: restoring the chat shortly");
        state.restorer.after_shutdown_advice(&chat_id);
        return Ok("shutdown_advice");
    }
    let frame = if push.events.is_empty() {
        ServerFrame::Changed { chat_id: chat_id.clone() }
    } else {
        ServerFrame::Events {
            chat_id: chat_id.clone(),
            messages: push.events,
            next_position: known_position,
        }
    };
    // Frames are counted when queued (hub) and when written to a socket (ws), not here.
    state.hub.publish(&chat_id, &frame);
    metrics::histogram!("relay_push_to_frame_seconds").record(received.elapsed().as_secs_f64());
    state.acker.request(&chat_id, Reason::Push { announced: true });
    Ok("accepted")
}

fn authorize(
    state: &AppState,
    peer: SocketAddr,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    let allow = &state.config.push_allow;
    if !allow.is_empty() && !allow.iter().any(|net| net.contains(peer.ip())) {
        return Err(AppError::PushForbidden);
    }
    let Some(secret) = state.config.push_secret.as_deref() else { return Ok(()) };
    let presented = query.get("secret").cloned().or_else(|| basic_password(headers));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), secret.as_bytes()) => Ok(()),
        _ => Err(AppError::PushUnauthorized),
    }
}

/// The password of an HTTP Basic `Authorization` header (GMS can be pointed at
/// `http://user:secret@relay/gms/push`).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, password)| password.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A record for a chat first seen in a push, when the push carries every token.
fn record_from_push(push: &PushNotification, chat_id: &str, service: &str) -> Option<ChatRecord> {
    Some(ChatRecord {
        service: service.to_owned(),
        credentials: Credentials {
            chat_id: chat_id.to_owned(),
            user_id: push.user_id.clone()?,
            secure_key: push.secure_key.clone()?,
            alias: push.alias.clone()?,
        },
        device_id: push.device_id.clone(),
        position: push.known_next_position().unwrap_or(0),
    })
}

/// Takes what the push tells about a known chat; false when nothing changed.
fn absorb(record: &mut ChatRecord, push: &PushNotification, position: Option<u64>) -> bool {
    let before = record.clone();
    if let Some(alias) = &push.alias {
        record.credentials.alias.clone_from(alias);
    }
    if let Some(user_id) = &push.user_id {
        record.credentials.user_id.clone_from(user_id);
    }
    if let Some(secure_key) = &push.secure_key {
        record.credentials.secure_key.clone_from(secure_key);
    }
    if record.device_id.is_none() {
        record.device_id.clone_from(&push.device_id);
    }
    if let Some(position) = position {
        record.position = record.position.max(position);
    }
    *record != before
}
