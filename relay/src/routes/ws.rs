//! `GET /v1/ws`: browsers subscribe to their chats and receive frames.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use shared::relay_api::{ClientFrame, ServerFrame, close_code};
use tokio::time::Instant;

use crate::AppState;
use crate::error::AppError;
use crate::limits::OpenSocket;
use crate::peers::Next;

/// Largest frame a browser may send: subscriptions are small.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// What each socket's read buffer holds before it grows: a subscription (the widget's
/// largest frame) is about 300 bytes, and every idle socket keeps this allocated.
const READ_BUFFER: usize = 512;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if state.shutdown.is_cancelled() {
        return Err(AppError::NotReady("shutting down"));
    }
    let slot = state.limits.open_socket(state.limits.client(peer, &headers))?;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
    // A browser cannot read the status of a refused upgrade, only a close code: a page
    // whose origin is not allowed is told so with one it will not reconnect after.
    let refusal = (!crate::routes::origin_allowed(&state.config.allowed_origins, origin))
        .then_some((close_code::ORIGIN_REJECTED, "origin not allowed"));
    if refusal.is_some() {
        metrics::counter!("relay_ws_rejected_total", "reason" => "origin").increment(1);
    }
    let sockets = state.sockets.clone();
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(4 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            // Split before the task's future exists, so the future holds the halves only.
            let (sink, stream) = socket.split();
            sockets.track_future(serve(sink, stream, state, refusal, slot))
        }))
}

/// Why a write failed.
enum WriteError {
    /// The socket is closed or broken.
    Closed,
    /// The write took longer than the write timeout: the peer stopped reading.
    Stalled,
}

async fn send(
    sink: &mut SplitSink<WebSocket, Message>,
    message: Message,
    within: Duration,
) -> Result<(), WriteError> {
    match tokio::time::timeout(within, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(WriteError::Closed),
        Err(_) => Err(WriteError::Stalled),
    }
}

/// Sends a close frame and waits (at most `within`) for the peer's, so the TCP connection
/// is not torn down under a close frame the browser has not read yet: a browser that loses
/// it sees 1006 instead of the code that tells it whether to reconnect.
async fn close_with(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    (code, reason): (u16, &'static str),
    within: Duration,
) {
    let frame = Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }));
    if send(sink, frame, within).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(within, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// One socket's task: refused with `refusal`'s close, or served until either side ends it,
/// holding its place among the client's open sockets (`_slot`) until then.
async fn serve(
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    state: AppState,
    refusal: Option<(u16, &'static str)>,
    _slot: OpenSocket,
) {
    // A peer that does not take a frame within the pong timeout is as good as gone, and
    // while a write waits nothing else on this socket runs.
    let write_timeout = state.config.ws_pong_timeout;
    if let Some(close) = refusal {
        Box::pin(close_with(&mut sink, &mut stream, close, write_timeout)).await;
        return;
    }
    let connection = state.peers.hub().connect(state.config.ws_queue);
    let id = connection.id;
    let mut last_pong = Instant::now();
    let mut budget = FrameBudget::new(state.config.ws_frame_rate, Instant::now());
    // Made once, not once per turn of the loop: it registers with the token when polled.
    let shutdown = state.shutdown.cancelled();
    tokio::pin!(shutdown);
    let close = loop {
        let written = tokio::select! {
            () = &mut shutdown => break Some((close_code::GOING_AWAY, "relay restarting")),
            next = connection.next() => match next {
                Next::Frame(text) => {
                    let sent = send(&mut sink, Message::Text(Utf8Bytes::from(text.as_ref())), write_timeout).await;
                    if sent.is_ok() {
                        metrics::counter!("relay_ws_frames_sent_total").increment(1);
                    }
                    sent
                }
                // The hub's heartbeat: a peer silent since before the previous ping is gone.
                Next::Ping => {
                    if last_pong.elapsed() > state.config.ws_ping + state.config.ws_pong_timeout {
                        break Some((close_code::PING_TIMEOUT, "no pong"));
                    }
                    send(&mut sink, Message::Ping(Bytes::new()), write_timeout).await
                }
                Next::Slow => break Some((close_code::SLOW_CONSUMER, "too slow: reconnect and catch up")),
                Next::Closed => break None,
            },
            incoming = stream.next() => {
                let message = match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(message)) => message,
                };
                // Every frame counts, pings and pongs too: each costs the relay a read.
                if !budget.as_mut().is_none_or(|b| b.take(Instant::now())) {
                    metrics::counter!("relay_ws_rejected_total", "reason" => "too_many_frames")
                        .increment(1);
                    break Some((close_code::TOO_MANY_FRAMES, "too many frames"));
                }
                match message {
                    Message::Text(text) => {
                        // Boxed, like every rare step below: a future is as large as its
                        // largest state, and the store's and the peers' states would make
                        // every idle socket's task kilobytes larger than its loop needs.
                        if let Some(close) = Box::pin(handle(&state, id, text.as_str())).await {
                            break Some(close);
                        }
                    }
                    Message::Pong(_) => last_pong = Instant::now(),
                    _ => {}
                }
                Ok(())
            }
        };
        match written {
            Ok(()) => {}
            Err(WriteError::Closed) => break None,
            Err(WriteError::Stalled) => {
                metrics::counter!("relay_ws_slow_consumers_total").increment(1);
                metrics::counter!("relay_ws_write_timeouts_total").increment(1);
                // The close frame could not be written either: just drop the socket.
                break None;
            }
        }
    };
    Box::pin(state.peers.disconnect(id)).await;
    if let Some(close) = close {
        Box::pin(close_with(&mut sink, &mut stream, close, write_timeout)).await;
    }
}

/// What a socket may still send: a bucket of `rate` frames refilled at `rate` a second, so a
/// widget's few frames (even its burst of subscribes after a reconnect) always pass and a
/// sustained flood does not.
struct FrameBudget {
    rate: f64,
    left: f64,
    at: Instant,
}

impl FrameBudget {
    /// None when frames are not limited (a rate of 0).
    fn new(rate: u32, now: Instant) -> Option<FrameBudget> {
        let rate = f64::from(rate);
        (rate > 0.0).then_some(FrameBudget { rate, left: rate, at: now })
    }

    /// Takes one frame from the budget; false once it is spent.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.left = (self.left + refill).min(self.rate);
        self.at = now;
        if self.left < 1.0 {
            return false;
        }
        self.left -= 1.0;
        true
    }
}

/// One client frame. Unknown or malformed frames are ignored, never fatal; answers the
/// close for a socket that cannot be served now.
async fn handle(state: &AppState, id: u64, text: &str) -> Option<(u16, &'static str)> {
    let hub = state.peers.hub();
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Subscribe { chat_id, token }) => {
            if !state.tokens.verify(&chat_id, &token) {
                let message = "the subscription token does not match this chat".to_owned();
                hub.send_to(id, &ServerFrame::Error { code: "bad_token".to_owned(), message });
                return None;
            }
            // A browser follows one chat; a socket following many is someone else's load.
            let followed = hub.is_subscribed(id, &chat_id);
            let limit = state.config.ws_subscriptions;
            if !followed && limit > 0 && hub.subscriptions(id) >= limit {
                metrics::counter!("relay_ws_rejected_total", "reason" => "too_many_subscriptions")
                    .increment(1);
                let message = format!("a connection follows at most {limit} chats");
                let code = "too_many_subscriptions".to_owned();
                hub.send_to(id, &ServerFrame::Error { code, message });
                return None;
            }
            // Hear the other relays first, then read the position, so whatever another
            // relay publishes after that read reaches this socket.
            if !followed {
                state.peers.listen(&chat_id).await;
            }
            // One answer per subscribe, and what follows agrees with it: a chat the relay
            // does not hold (signed by us, so it ended and was forgotten) is not subscribed.
            let record = match state.sessions.current(&chat_id).await {
                Ok(record) => record,
                // Without the store, memory answers only for a chat it holds: one it does
                // not may be another relay's, announced while this one was cut off. Not
                // knowing is not `ended`: the widget comes back after its backoff.
                Err(_) => match state.sessions.get(&chat_id) {
                    Some(record) => Some(record),
                    None => {
                        if !followed {
                            state.peers.stop_listening(&chat_id).await;
                        }
                        metrics::counter!("relay_ws_rejected_total", "reason" => "store_unavailable")
                            .increment(1);
                        return Some((
                            close_code::STORE_UNAVAILABLE,
                            "the chat store cannot be read now",
                        ));
                    }
                },
            };
            match record {
                Some(record) => {
                    hub.subscribe(id, &chat_id);
                    let position = record.position;
                    hub.send_to(id, &ServerFrame::Subscribed { chat_id, position });
                }
                None => {
                    if !followed {
                        state.peers.stop_listening(&chat_id).await;
                    }
                    hub.send_to(id, &ServerFrame::Ended { chat_id });
                }
            }
        }
        Ok(ClientFrame::Unsubscribe { chat_id }) => state.peers.unfollow(id, &chat_id).await,
        Ok(ClientFrame::Unknown) | Err(_) => {
            metrics::counter!("relay_ws_ignored_frames_total").increment(1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::FrameBudget;

    #[test]
    fn a_burst_of_the_rate_passes_and_a_sustained_flood_does_not() {
        let start = Instant::now();
        let Some(mut budget) = FrameBudget::new(20, start) else { panic!("limited") };
        assert!((0..20).all(|_| budget.take(start)));
        assert!(!budget.take(start));
        // Refilled at the rate: one frame every 50 ms passes for ever.
        let mut now = start;
        for _ in 0..100 {
            now += Duration::from_millis(50);
            assert!(budget.take(now));
        }
        // Twice the rate does not, for long.
        let refused = (0..40)
            .filter(|_| {
                now += Duration::from_millis(25);
                !budget.take(now)
            })
            .count();
        assert!(refused >= 19, "{refused}");
        assert!(FrameBudget::new(0, start).is_none());
    }
}
