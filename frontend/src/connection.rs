//! The relay WebSocket: register the chat, subscribe, hand frames to the controller,
//! reconnect with backoff and jitter, and catch up with one refresh after every connect.

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::{FutureExt, SinkExt, StreamExt, select};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use leptos::prelude::*;
use shared::gms::RetryPolicy;
use shared::relay_api::{ClientFrame, ServerFrame, WS_PATH, close_code};

use crate::controller::{Command, ConnState, Controller};
use crate::net::{self, NetError};

/// Runs for the page's lifetime.
pub async fn run(ctrl: Controller, mut commands: UnboundedReceiver<Command>) {
    // Connection failures in a row, for `RetryPolicy::RECONNECT`.
    let mut failures = 0;
    loop {
        // No chat, no socket: visitors who never chat cost the relay nothing.
        while ctrl.active_chat().is_none() {
            ctrl.conn.set(ConnState::Idle);
            if commands.next().await.is_none() {
                return;
            }
        }
        let first = ctrl.conn.get_untracked() == ConnState::Idle;
        ctrl.conn.set(if first { ConnState::Connecting } else { ConnState::Reconnecting });
        let code = match WebSocket::open(&ws_url(&ctrl.config().relay_url)) {
            Ok(socket) => session(&ctrl, socket, &mut commands, &mut failures).await,
            Err(_) => None,
        };
        if code.is_some_and(|c| !close_code::should_reconnect(c)) {
            ctrl.conn.set(ConnState::Refused);
            return;
        }
        ctrl.conn.set(if is_online() { ConnState::Reconnecting } else { ConnState::Offline });
        failures += 1;
        let wait = RetryPolicy::RECONNECT.wait_after(failures, js_sys::Math::random());
        let mut sleep = gloo_timers::future::sleep(wait.unwrap_or_default()).fuse();
        loop {
            select! {
                () = sleep => break,
                command = commands.next() => match command {
                    None => return,
                    Some(Command::Wake) => break,
                    Some(_) => {}
                },
            }
        }
    }
}

/// One connection: returns the close code, if the relay sent one.
async fn session(
    ctrl: &Controller,
    socket: WebSocket,
    commands: &mut UnboundedReceiver<Command>,
    failures: &mut u32,
) -> Option<u16> {
    let (mut sink, stream) = socket.split();
    let mut stream = stream.fuse();
    match subscribe(ctrl, &mut sink).await {
        Subscribed::Yes => {}
        Subscribed::RelayFailed => return None,
        // The relay closed at once (a refused origin): its close code says whether to retry.
        Subscribed::SocketClosed => return close_code_of(&mut stream).await,
    }
    ctrl.conn.set(ConnState::Connected);
    *failures = 0;
    // Whatever happened while we were not connected is in the transcript.
    ctrl.refresh();
    loop {
        select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) {
                        ctrl.handle_frame(frame);
                    }
                }
                Some(Ok(Message::Bytes(_))) => {}
                Some(Err(WebSocketError::ConnectionClose(event))) => return Some(event.code),
                Some(Err(_)) | None => return None,
            },
            command = commands.next() => match command {
                None => return None,
                Some(Command::Subscribe) => {
                    match subscribe(ctrl, &mut sink).await {
                        Subscribed::Yes => ctrl.refresh(),
                        Subscribed::RelayFailed => return None,
                        Subscribed::SocketClosed => return close_code_of(&mut stream).await,
                    }
                }
                Some(Command::Unsubscribe(chat_id)) => {
                    let _ = send(&mut sink, &ClientFrame::Unsubscribe { chat_id }).await;
                    // Without a chat the socket is not needed.
                    ctrl.active_chat()?;
                }
                Some(Command::Wake) => {}
            },
        }
    }
}

/// How a subscription went.
enum Subscribed {
    /// Subscribed, or nothing to subscribe to.
    Yes,
    /// The registration failed: retry later.
    RelayFailed,
    /// The socket was already closed: its close code tells why.
    SocketClosed,
}

/// The close code of a socket that is closing.
async fn close_code_of(
    stream: &mut futures_util::stream::Fuse<futures_util::stream::SplitStream<WebSocket>>,
) -> Option<u16> {
    while let Some(message) = stream.next().await {
        if let Err(WebSocketError::ConnectionClose(event)) = message {
            return Some(event.code);
        }
    }
    None
}

/// Registers the active chat (idempotent; refreshes the relay's tokens) and subscribes.
async fn subscribe(
    ctrl: &Controller,
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
) -> Subscribed {
    let Some(chat) = ctrl.active_chat() else { return Subscribed::Yes };
    let device_id = ctrl.stored.with_untracked(|s| s.device_id.clone());
    let token = match net::register(&ctrl.config(), &chat, &device_id).await {
        Ok(registered) => registered.token,
        Err(NetError::Refused(_)) => {
            // GMS no longer knows the chat: the refresh shows how it ended.
            ctrl.refresh();
            return Subscribed::Yes;
        }
        Err(_) => return Subscribed::RelayFailed,
    };
    ctrl.set_relay_token(&chat.credentials.chat_id, token.clone());
    let frame = ClientFrame::Subscribe { chat_id: chat.credentials.chat_id, token };
    if send(sink, &frame).await { Subscribed::Yes } else { Subscribed::SocketClosed }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    frame: &ClientFrame,
) -> bool {
    let Ok(text) = serde_json::to_string(frame) else { return false };
    sink.send(Message::Text(text)).await.is_ok()
}

/// `ws(s)://` URL of the relay; an empty base means the page's own origin.
fn ws_url(relay_url: &str) -> String {
    let base = if relay_url.is_empty() {
        web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
    } else {
        relay_url.trim_end_matches('/').to_owned()
    };
    let base = base.strip_prefix("https://").map_or_else(
        || base.strip_prefix("http://").map_or_else(|| base.clone(), |rest| format!("ws://{rest}")),
        |rest| format!("wss://{rest}"),
    );
    format!("{base}{WS_PATH}")
}

fn is_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}
