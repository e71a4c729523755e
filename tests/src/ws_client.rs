//! A WebSocket client of the relay for tests: subscribe, read frames with timeouts.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use shared::relay_api::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One browser-like connection.
pub struct WsClient {
    socket: Socket,
}

/// What reading the socket produced.
#[derive(Debug, PartialEq)]
pub enum Received {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

impl WsClient {
    pub async fn connect(relay_url: &str) -> Result<WsClient> {
        let url = shared::relay_api::ws_url(relay_url);
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(WsClient { socket })
    }

    /// Wraps a socket opened elsewhere (with custom headers).
    pub fn from_socket(socket: Socket) -> WsClient {
        WsClient { socket }
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        self.socket.send(Message::text(serde_json::to_string(frame)?)).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, text: &str) -> Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// Subscribes and returns the relay's answer.
    pub async fn subscribe(&mut self, chat_id: &str, token: &str) -> Result<ServerFrame> {
        self.send(&ClientFrame::Subscribe { chat_id: chat_id.to_owned(), token: token.to_owned() })
            .await?;
        self.frame(Duration::from_secs(5)).await
    }

    /// The next frame or close, within `within`.
    pub async fn next(&mut self, within: Duration) -> Result<Received> {
        loop {
            let message = tokio::time::timeout(within, self.socket.next())
                .await
                .context("nothing received in time")?;
            match message {
                None => return Ok(Received::Closed(None)),
                Some(Err(error)) => bail!("socket error: {error}"),
                Some(Ok(Message::Text(text))) => {
                    return Ok(Received::Frame(serde_json::from_str(text.as_str())?));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Received::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame; a close is an error.
    pub async fn frame(&mut self, within: Duration) -> Result<ServerFrame> {
        match self.next(within).await? {
            Received::Frame(frame) => Ok(frame),
            Received::Closed(code) => bail!("closed with {code:?}"),
        }
    }

    /// Every frame until the relay closes the socket (10 s at most between two), and the
    /// close code.
    pub async fn frames_until_closed(&mut self) -> Result<(Vec<ServerFrame>, Option<u16>)> {
        let mut frames = Vec::new();
        loop {
            match self.next(Duration::from_secs(10)).await? {
                Received::Frame(frame) => frames.push(frame),
                Received::Closed(code) => return Ok((frames, code)),
            }
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn none_within(&mut self, quiet: Duration) -> Result<()> {
        match self.next(quiet).await {
            Err(_) => Ok(()),
            Ok(received) => bail!("unexpected {received:?}"),
        }
    }

    /// Closes from our side.
    pub async fn close(mut self) -> Result<()> {
        self.socket
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await?;
        Ok(())
    }
}
