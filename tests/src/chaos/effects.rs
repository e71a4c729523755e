//! A headless visitor's effects over real sockets, as the widget carries them out
//! (`frontend/src/net.rs`, `connection.rs`, `controller.rs`): Chat API requests with the
//! widget's retries, the relay registration, and the relay WebSocket. JSON goes through the
//! widget's own reader and writer (`shared::json`), so the chaos runs exercise them too.

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::gms::{Attempts, ChatOperation, ChatResponse, Next, RequestBody};
use shared::proxy::ChatStarted;
use shared::relay_api::{ClientFrame, SESSIONS_PATH, ServerFrame};
use shared::visitor::{GmsResult, Input, NetFailure, Registration};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::visitor::Env;

/// A command to the socket task.
pub(super) enum Command {
    Send(ClientFrame),
    Close,
}

/// The relay socket, as `frontend/src/connection.rs` runs it: what happens comes back as
/// inputs; a close the machine asked for is not reported.
pub(super) async fn socket(
    url: String,
    mut commands: mpsc::Receiver<Command>,
    inputs: mpsc::Sender<Input>,
    random: u64,
) {
    let closed = |code: Option<u16>| Input::SocketClosed {
        code,
        online: true,
        random: (random % 1000) as f64 / 1000.0,
    };
    let Ok((socket, _)) = tokio_tungstenite::connect_async(url).await else {
        let _ = inputs.send(closed(Some(1006))).await;
        return;
    };
    let _ = inputs.send(Input::SocketOpened).await;
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(frame)) => {
                    let text = shared::json::to_string(&frame);
                    // A socket closing under us says so through the stream.
                    let _ = sink.send(Message::text(text)).await;
                }
                Some(Command::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(frame) = shared::json::from_str::<ServerFrame>(&text) {
                        let _ = inputs.send(Input::Frame(frame)).await;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    let _ = inputs.send(closed(Some(code))).await;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = inputs.send(closed(Some(1006))).await;
                    return;
                }
            },
        }
    }
}

/// Whom a Chat API request is for, as the widget's `net::To`.
pub(super) struct To<'a> {
    pub(super) service: &'a str,
    pub(super) credentials: Option<&'a shared::gms::Credentials>,
    pub(super) token: Option<&'a str>,
}

/// The machine's input for a settled request.
type Answered = Box<dyn FnOnce(u64) -> Input + Send>;

/// One Chat API request, tried through `Attempts` and settled by `GmsResult::settled`, as the
/// widget's are: to GMS, or in proxy mode to the same path below the relays' `/v1/chats`
/// with the chat's subscription token (a start answered as `Input::Started`).
pub(super) async fn gms(
    env: &Env,
    to: &To<'_>,
    operation: &ChatOperation,
    policy: shared::gms::RetryPolicy,
    seed: u64,
) -> Answered {
    let mut rng = StdRng::seed_from_u64(seed);
    let request = operation.encode(to.service, to.credentials);
    let url = if env.proxy {
        format!("{}{}", env.relay_url, shared::proxy::relay_path(&request.path))
    } else {
        format!("{}{}", env.gms_url, request.path)
    };
    let start = env.proxy && matches!(operation, ChatOperation::Create { .. });
    let RequestBody::Form(fields) = &request.body else {
        return Box::new(|id| Input::Gms(id, GmsResult::Failed(NetFailure::Network)));
    };
    let body = shared::form::encode(fields);
    let mut attempts = Attempts::new(policy);
    let mut session = None;
    loop {
        let mut post = env
            .http
            .post(&url)
            .header("Content-Type", shared::form::CONTENT_TYPE)
            .body(body.clone());
        if let (true, Some(token)) = (env.proxy, to.token) {
            post = post.bearer_auth(token);
        }
        let sent = post.send().await;
        let answer = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                response.bytes().await.map(|bytes| (status, bytes))
            }
            Err(error) => Err(error),
        };
        let last = match answer {
            Ok((status, bytes)) => {
                let started = std::str::from_utf8(&bytes)
                    .ok()
                    .filter(|_| start)
                    .and_then(shared::json::from_str::<ChatStarted>);
                session = started.as_ref().map(|s| Box::new(s.relay.clone()));
                match started {
                    Some(started) => Ok(started.envelope),
                    None => ChatResponse::read(&bytes).ok_or(NetFailure::Http(status)),
                }
            }
            Err(_) => Err(NetFailure::Network),
        };
        let verdict = match &last {
            Ok(response) => response.verdict(),
            Err(failure) => failure.verdict(),
        };
        match attempts.after(verdict, rng.random()) {
            Next::Wait(wait) => tokio::time::sleep(wait).await,
            Next::Done(_) | Next::GiveUp => {
                let result = GmsResult::settled(last);
                return if start {
                    Box::new(move |id| Input::Started(id, result, session))
                } else {
                    Box::new(move |id| Input::Gms(id, result))
                };
            }
        }
    }
}

/// `POST /v1/sessions` (in proxy mode with the chat's subscription token), judged by
/// `Registration::of`, as the widget judges it.
pub(super) async fn register(
    env: &Env,
    body: &shared::relay_api::RegisterSession,
    token: Option<&str>,
) -> Registration {
    let url = format!("{}{SESSIONS_PATH}", env.relay_url);
    let mut request = env
        .http
        .post(url)
        .header("Content-Type", "application/json")
        .body(shared::json::to_string(body));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let Ok(response) = request.send().await else {
        return Registration::Failed;
    };
    let status = response.status().as_u16();
    match response.text().await {
        Ok(body) => Registration::of(status, &body),
        Err(_) => Registration::Failed,
    }
}
