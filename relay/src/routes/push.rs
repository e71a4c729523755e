//! `POST /gms/push`: the customhttp target. Authenticate, parse tolerantly, make the
//! update durable, answer 200, tell the subscribers, queue the acknowledgement.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use shared::push::PushNotification;
use shared::relay_api::ServerFrame;

use crate::AppState;
use crate::error::AppError;
use crate::otlp::{Kind, Span};
use crate::store::{Observation, Source, now_millis};

pub(crate) async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let received = Instant::now();
    // The push's trace: this span ends with the answer, its `push.ack` child with GMS's.
    let mut span = state.tracer.span("push", Kind::Server);
    let result = accept(&state, peer, &query, &headers, &body, received, &mut span).await;
    let label: &'static str = match &result {
        Ok(label) => label,
        Err(AppError::PushUnauthorized | AppError::PushForbidden) => "unauthorized",
        Err(AppError::BadRequest(_)) => "malformed",
        Err(_) => "error",
    };
    span.attr("push.result", label);
    if let Err(error) = &result {
        span.fail(error.code());
    }
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
    span: &mut Span,
) -> Result<&'static str, AppError> {
    authorize(state, peer, query, headers)?;
    let push = PushNotification::parse(body).map_err(|e| {
        tracing::warn!(reason = ?e.to_string(), bytes = body.len(), "malformed push rejected");
        AppError::BadRequest(e.to_string())
    })?;
    span.attr("push.events", push.events.len());
    let Some(chat_id) = push.chat_id.clone() else {
        return device_only(state, &push, body, span).await;
    };
    super::sessions::checked_id("the push's chat id", &chat_id)?;
    span.chat(&chat_id);

    // Tokens and the alias a push carries are proposals, tried only once GMS accepts them;
    // the position is what its events prove. So a push can add events to a chat, never
    // move it where GMS would not (the acknowledging ping brings GMS's own word).
    let proven = push.proven_next_position();
    let seen = Observation {
        user_id: push.user_id.clone(),
        secure_key: push.secure_key.clone(),
        alias: push.alias.clone(),
        device_id: push.device_id.clone(),
        position: proven,
        // Stored before its frame goes out: a ping meanwhile may count it as told already,
        // which the frame makes true a moment later.
        announced: proven,
        ..Observation::new(now_millis(), Source::Push)
    };
    // A push whose events the relay has already seen is a resend: GMS did not get (or not
    // yet get) the acknowledgement of the first one.
    // (A metric only: the push's own `nextPosition` may count here.)
    if let (Some(stored), Some(position)) =
        (state.sessions.get(&chat_id), push.next_position.max(proven))
        && position <= stored.position
    {
        metrics::counter!("relay_push_repeats_total").increment(1);
    }
    let frame = if push.events.is_empty() {
        ServerFrame::Changed { chat_id: chat_id.clone() }
    } else {
        ServerFrame::Events {
            chat_id: chat_id.clone(),
            messages: push.events,
            next_position: proven,
        }
    };
    // With several relays the frame goes to the others in the store's write (one round
    // trip less), unless the write has nothing to change (`Durable::handed`).
    let handing = (state.peers.shared() && !push.shutdown_advice)
        .then(|| serde_json::to_string(&frame).ok())
        .flatten();
    let mut store = span.child("push.store", Kind::Internal);
    let durable = state
        .sessions
        .observe_push(&chat_id, seen, Some(&state.config.default_service), handing)
        .await
        .inspect_err(|_| store.fail("store_unavailable"))?;
    if durable.handed.is_some() {
        store.attr("store.frame_published", true);
    }
    drop(store);
    let Some(record) = durable.record else {
        // Unregistered and without every token: nothing to acknowledge with.
        metrics::counter!("relay_pings_total", "kind" => "ack", "result" => "impossible")
            .increment(1);
        return Ok("no_tokens");
    };
    if record.capture {
        state.captures.keep(&chat_id, body, &record, push.secure_key.as_deref());
    }

    if push.shutdown_advice {
        tracing::info!(chat = ?chat_id, "Chat Server shutdown advice: restoring the chat shortly");
        state.restorer.after_shutdown_advice(&chat_id);
        return Ok("shutdown_advice");
    }
    // Frames are counted when queued (hub) and when written to a socket (ws), not here.
    // With several relays, answered 200 only once the others have the frame too (else GMS
    // resends it, and the browsers drop what they already have).
    let fanout = span.child("push.fanout", Kind::Internal);
    let claim = match durable.handed {
        Some(claimed) => Some(state.peers.publish_handed(&chat_id, &frame, &fanout, claimed)),
        None => {
            state.peers.publish_traced(&chat_id, &frame, &fanout).await?;
            None
        }
    };
    drop(fanout);
    metrics::histogram!("relay_push_to_frame_seconds").record(received.elapsed().as_secs_f64());
    state.acker.acknowledge(&chat_id, span.child("push.ack", Kind::Client), claim);
    Ok("accepted")
}

/// A push that names no chat (GMS configured without `session-id` in
/// `flex-push-content`) names only a device, which any chat can be registered with: its
/// events go to nobody. Every chat on that device hears `changed`, so each widget refreshes
/// with its own tokens and sees only its own transcript, and is pinged, which acknowledges
/// the push whichever chat it was for.
async fn device_only(
    state: &AppState,
    push: &PushNotification,
    body: &[u8],
    span: &Span,
) -> Result<&'static str, AppError> {
    let chats = push.device_id.as_deref().map(|d| state.sessions.on_device(d)).unwrap_or_default();
    if chats.is_empty() {
        tracing::warn!(device = ?push.device_id, "push for no known chat ignored");
        return Ok("unroutable");
    }
    for chat_id in chats {
        if let Some(record) = state.sessions.get(&chat_id).filter(|r| r.capture) {
            state.captures.keep(&chat_id, body, &record, push.secure_key.as_deref());
        }
        if push.shutdown_advice {
            state.restorer.after_shutdown_advice(&chat_id);
            continue;
        }
        let frame = ServerFrame::Changed { chat_id: chat_id.clone() };
        let mut fanout = span.child("push.fanout", Kind::Internal);
        fanout.chat(&chat_id);
        state.peers.publish_traced(&chat_id, &frame, &fanout).await?;
        drop(fanout);
        let mut ack = span.child("push.ack", Kind::Client);
        ack.chat(&chat_id);
        state.acker.acknowledge(&chat_id, ack, None);
    }
    Ok("device_only")
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
    // None only with --insecure-no-push-secret (`Config::validate`).
    let Some(secret) = state.config.push_secret() else { return Ok(()) };
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
