//! `GET /v1/ws`: browsers subscribe to their chats and receive frames.

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use shared::relay_api::{ClientFrame, ServerFrame, close_code};
use tokio::time::Instant;

use crate::AppState;

/// Largest frame a browser may send: subscriptions are small.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !crate::routes::origin_allowed(&state.config.allowed_origins, origin) {
        metrics::counter!("relay_ws_rejected_total", "reason" => "origin").increment(1);
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(socket, state))
}

async fn serve(socket: WebSocket, state: AppState) {
    let mut connection = state.hub.connect(state.config.ws_queue);
    let id = connection.id;
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(state.config.ws_ping);
    ping.tick().await;
    let mut last_pong = Instant::now();
    let close = loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break Some((close_code::GOING_AWAY, "relay restarting")),
            () = connection.slow.cancelled() => break Some((close_code::SLOW_CONSUMER, "too slow: reconnect and catch up")),
            frame = connection.frames.recv() => {
                let Some(text) = frame else { break None };
                if sink.send(Message::Text(Utf8Bytes::from(text.as_ref()))).await.is_err() {
                    break None;
                }
                metrics::counter!("relay_ws_frames_sent_total").increment(1);
            }
            _ = ping.tick() => {
                if last_pong.elapsed() > state.config.ws_ping + state.config.ws_pong_timeout {
                    break Some((close_code::PING_TIMEOUT, "no pong"));
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => handle(&state, id, text.as_str()),
                Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
        }
    };
    state.hub.disconnect(id);
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// One client frame. Unknown or malformed frames are ignored, never fatal.
fn handle(state: &AppState, id: u64, text: &str) {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Subscribe { chat_id, token }) => {
            if !state.tokens.verify(&chat_id, &token) {
                let message = "the subscription token does not match this chat".to_owned();
                state
                    .hub
                    .send_to(id, &ServerFrame::Error { code: "bad_token".to_owned(), message });
                return;
            }
            state.hub.subscribe(id, &chat_id);
            match state.sessions.get(&chat_id) {
                Some(record) => {
                    state.hub.send_to(
                        id,
                        &ServerFrame::Subscribed { chat_id, position: record.position },
                    );
                }
                // Signed by us but no longer stored: the chat ended and was forgotten.
                None => state.hub.send_to(id, &ServerFrame::Ended { chat_id }),
            }
        }
        Ok(ClientFrame::Unsubscribe { chat_id }) => state.hub.unsubscribe(id, &chat_id),
        Ok(ClientFrame::Unknown) | Err(_) => {
            metrics::counter!("relay_ws_ignored_frames_total").increment(1);
        }
    }
}
