//! The relay WebSocket, as the machine commands it: open, send frames, close; what the
//! socket does comes back as inputs (`SocketOpened`, `Frame`, `SocketClosed`). Whether
//! and when to connect, register, subscribe or reconnect is the machine's decision.

use std::pin::Pin;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::{FutureExt, Sink, SinkExt, StreamExt, select};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use shared::relay_api::{ServerFrame, WS_PATH};
use shared::visitor::Input;

use crate::controller::{Controller, SocketCommand};

/// Runs for the page's lifetime.
pub async fn run(ctrl: Controller, mut commands: UnboundedReceiver<SocketCommand>) {
    loop {
        match commands.next().await {
            None => return,
            Some(SocketCommand::Open) => {}
            // Nothing is open: closing is done, frames have nowhere to go (the machine
            // subscribes again on the next connection).
            Some(SocketCommand::Close | SocketCommand::Send(_)) => continue,
        }
        let code = match WebSocket::open(&ws_url(&ctrl.config().relay_url)) {
            Ok(socket) => session(&ctrl, socket, &mut commands).await,
            Err(_) => Closed::By(None),
        };
        if let Closed::By(code) = code {
            let online = web_sys::window().is_none_or(|w| w.navigator().on_line());
            let random = js_sys::Math::random();
            ctrl.input(Input::SocketClosed { code, online, random });
        }
    }
}

/// How a session ended.
enum Closed {
    /// The machine asked for it.
    Asked,
    /// The socket closed or failed, with the relay's close code if it sent one.
    By(Option<u16>),
}

/// One connection, until it closes or the machine closes it.
async fn session(
    ctrl: &Controller,
    socket: WebSocket,
    commands: &mut UnboundedReceiver<SocketCommand>,
) -> Closed {
    let (mut sink, stream) = socket.split();
    let mut stream = stream.fuse();
    // Open once the socket can take a frame; a failure to connect shows on the stream.
    select! {
        ready = futures_util::future::poll_fn(|cx| Pin::new(&mut sink).poll_ready(cx)).fuse() => {
            if ready.is_err() {
                return Closed::By(None);
            }
        }
        message = stream.next() => return Closed::By(close_code(message)),
    }
    ctrl.input(Input::SocketOpened);
    loop {
        select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) {
                        ctrl.input(Input::Frame(frame));
                    }
                }
                Some(Ok(Message::Bytes(_))) => {}
                other => return Closed::By(close_code(other)),
            },
            command = commands.next() => match command {
                None | Some(SocketCommand::Close) => {
                    let _ = sink.close().await;
                    return Closed::Asked;
                }
                Some(SocketCommand::Open) => {}
                Some(SocketCommand::Send(frame)) => {
                    let Ok(text) = serde_json::to_string(&frame) else { continue };
                    if sink.send(Message::Text(text)).await.is_err() {
                        // Closing under us: the stream says why.
                        return Closed::By(close_code(stream.next().await));
                    }
                }
            },
        }
    }
}

/// The relay's close code, when the socket ended with one.
fn close_code(message: Option<Result<Message, WebSocketError>>) -> Option<u16> {
    match message {
        Some(Err(WebSocketError::ConnectionClose(event))) => Some(event.code),
        _ => None,
    }
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
