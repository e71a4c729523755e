//! Proxy mode (`--gms-proxy`): the widget's GMS operations under `/v1/chats`, so GMS stays
//! private and no GMS token reaches a browser. A start creates the chat with the push
//! subscription the relay chooses and registers it in the same step; every other call is
//! authorised by the chat's subscription token, limited per chat, sent to GMS once with the
//! tokens the relay holds (the widget retries as it would against GMS) and answered with
//! GMS's envelope without them. What is offered and how a request reads is
//! `shared::proxy`'s; this module only moves bytes.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, TryStreamExt as _};
use shared::gms::{ChatOperation, ChatResponse, Credentials, FileLimits, PushSubscription};
use shared::proxy::{
    ChatStarted, ProxyRefusal, RateClass, read_operation, read_start, upload_user_data,
    without_tokens,
};
use shared::relay_api::SessionRegistered;

use super::sessions::{authorize, checked_id};
use crate::AppState;
use crate::error::AppError;
use crate::gms::{GmsError, Upload};
use crate::store::{ChatRecord, Observation, Source, now_millis};

/// `POST /v1/chats/{service}`: the pre-chat form. Costs GMS exactly one create, counted
/// against the registration limits (it is also the registration).
pub(crate) async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    state.limits.register(state.limits.client(peer, &headers))?;
    checked_id("service", &service)?;
    if !state.config.proxy.offers(&service, &state.config.default_service) {
        return Err(AppError::NotOffered(format!("the chat service {service:?}")));
    }
    let fields = form(&headers, &body)?;
    // The device id only groups a browser's chats for pushes naming nothing else: the
    // relay's own, one per chat, since the browser holds no GMS state to tie it to.
    let device_id = format!("relay-{:032x}", rand::random::<u128>());
    let subscription = PushSubscription::new(&device_id, &state.config.proxy.node_group);
    let create = read_start(&fields, &subscription).map_err(refused)?;
    let asked_at = now_millis();
    let visitor = forwarded(&state, peer, &headers);
    let response =
        state.gms.call_for(&service, &create, None, visitor).await.map_err(unreachable)?;
    let Some(credentials) = response.credentials().filter(|_| response.status_code == 0) else {
        // GMS refused (or gave no tokens): its answer, as it would reach the widget.
        return Ok(envelope(response));
    };
    checked_id("chatId", &credentials.chat_id)
        .map_err(|_| AppError::GmsUnreachable("GMS named the chat outside its alphabet".into()))?;
    let seen = Observation {
        service: Some(service.clone()),
        user_id: Some(credentials.user_id.clone()),
        secure_key: Some(credentials.secure_key.clone()),
        alias: Some(credentials.alias.clone()),
        device_id: Some(device_id),
        position: Some(response.next_position.unwrap_or(0)),
        announced: response.next_position,
        registration: true,
        ..Observation::new(asked_at, Source::Gms)
    };
    let record = state
        .sessions
        .observe(&credentials.chat_id, seen, Some(&service))
        .await?
        .ok_or_else(|| AppError::BadRequest("the chat could not be stored".to_owned()))?;
    tracing::info!(chat = ?credentials.chat_id, alias = ?record.credentials.alias, "chat started through the relay");
    let started = ChatStarted {
        envelope: without_tokens(response),
        relay: SessionRegistered {
            token: state.tokens.sign(&credentials.chat_id),
            position: record.position,
            vapid_public_key: state.peers.web_push().map(|w| w.public_key().to_owned()),
            identity: None,
        },
    };
    Ok(no_store(Json(started).into_response()))
}

/// `POST /v1/chats/{service}/{chatId}/{operation}`: one of the offered operations.
pub(crate) async fn operation(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((service, chat_id, suffix)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let record = match held(&state, &service, &chat_id, &headers).await? {
        Held::Chat(record) => *record,
        Held::Forgotten => return Ok(envelope(shared::proxy::forgotten(&chat_id))),
    };
    let visitor = forwarded(&state, peer, &headers);
    if suffix == "file" {
        state.limits.proxied(&chat_id, RateClass::Upload)?;
        return upload(&state, &record, &headers, body, visitor).await;
    }
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| AppError::TooLarge(format!("a form of at most {FORM_LIMIT} bytes")))?;
    let fields = form(&headers, &bytes)?;
    let operation = read_operation(&suffix, &fields).map_err(refused)?;
    state.limits.proxied(&chat_id, RateClass::of(&operation))?;
    if let ChatOperation::Download { file_id } = &operation {
        return download(&state, &record, file_id, visitor).await;
    }
    let response = state
        .gms
        .call_for(&record.service, &operation, Some(&record.credentials), visitor)
        .await
        .map_err(unreachable)?;
    follow_alias(&state, &record, &response).await;
    Ok(envelope(response))
}

/// The largest form a proxied operation takes: a line, a preview or user data, each at most
/// `shared::proxy::MAX_FIELD_BYTES`.
const FORM_LIMIT: usize = 32 * 1024;

/// What a call's chat is to the relay.
pub(super) enum Held {
    /// Held on the call's service.
    Chat(Box<ChatRecord>),
    /// Signed by the relay but no longer held: it ended and was forgotten.
    Forgotten,
}

/// The chat a call names, if the caller holds its subscription token: only chats the relay
/// started or registered are served, on their own service (another answers `404`).
pub(super) async fn held(
    state: &AppState,
    service: &str,
    chat_id: &str,
    headers: &HeaderMap,
) -> Result<Held, AppError> {
    authorize(state, chat_id, headers)?;
    let record = match state.sessions.get(chat_id) {
        Some(record) => Some(record),
        // Started on another relay a moment ago: the store has it before memory does.
        None => state.sessions.current(chat_id).await?,
    };
    match record {
        Some(record) if record.service == service => Ok(Held::Chat(Box::new(record))),
        Some(_) => Err(AppError::NotFound),
        None => Ok(Held::Forgotten),
    }
}

/// A form body, refused unless it is one.
fn form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
        return Err(AppError::BadRequest(
            "the body must be application/x-www-form-urlencoded".to_owned(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| AppError::BadRequest("the form is not UTF-8".to_owned()))?;
    shared::form::decode(text).map_err(|_| AppError::BadRequest("the form is malformed".into()))
}

fn refused(refusal: ProxyRefusal) -> AppError {
    match refusal {
        ProxyRefusal::NotOffered(what) => AppError::NotOffered(what),
        ProxyRefusal::BadField(why) => AppError::BadRequest(why),
    }
}

/// A GMS request that got no envelope: the widget sees the status it would have seen
/// (GMS's own, or 502 when GMS could not be reached, 503 when its slots are taken), and
/// retries as its policy says.
fn unreachable(error: GmsError) -> AppError {
    match error {
        GmsError::Http { status, message } => AppError::GmsStatus { status, message },
        GmsError::Busy => AppError::NotReady("GMS requests are at their concurrency limit"),
        GmsError::Network(detail) => AppError::GmsUnreachable(detail),
    }
}

/// GMS's envelope as the browser gets it: without the tokens, never cached.
fn envelope(response: ChatResponse) -> Response {
    no_store(Json(without_tokens(response)).into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The visitor's address for GMS, when the operator asked for it.
fn forwarded(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<IpAddr> {
    if !state.config.proxy.forward_client_ip {
        return None;
    }
    state.limits.client_ip(peer, headers)
}

/// Keeps the alias GMS answered with, as after any GMS answer (the chat moved to another
/// Chat Server); a write only when it changed. A failed write only delays that: the next
/// push or ping brings the alias again.
async fn follow_alias(state: &AppState, record: &ChatRecord, response: &ChatResponse) {
    let mut credentials: Credentials = record.credentials.clone();
    if !response.update_credentials(&mut credentials) {
        return;
    }
    let seen = Observation {
        alias: Some(credentials.alias),
        ..Observation::new(now_millis(), Source::Gms)
    };
    if let Err(error) = state.sessions.observe(&record.credentials.chat_id, seen, None).await {
        tracing::warn!(chat = ?record.credentials.chat_id, error = ?error, "a proxied answer's alias was not stored");
    }
}

/// A download: GMS's bytes streamed through as they come (with GMS's content type and
/// disposition), or its refusal as an envelope without tokens.
async fn download(
    state: &AppState,
    record: &ChatRecord,
    file_id: &str,
    visitor: Option<IpAddr>,
) -> Result<Response, AppError> {
    let (slot, answer) = state
        .gms
        .download(&record.service, file_id, &record.credentials, visitor)
        .await
        .map_err(unreachable)?;
    let status = answer.status();
    let json = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if json || !status.is_success() {
        let body = answer.bytes().await.map_err(|e| AppError::GmsUnreachable(e.to_string()))?;
        return match ChatResponse::parse(&body) {
            Ok(response) => Ok(envelope(response)),
            Err(_) => Err(AppError::GmsStatus {
                status: status.as_u16(),
                message: ChatResponse::foreign_error(&body),
            }),
        };
    }
    let mut response = Response::builder().status(StatusCode::OK);
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_DISPOSITION] {
        if let Some(value) = answer.headers().get(&name) {
            response = response.header(name, value.clone());
        }
    }
    // The slot is held until the last byte has passed.
    let bytes = answer.bytes_stream().map(move |chunk| {
        let _held = &slot;
        chunk
    });
    response
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::from_stream(bytes))
        .map_err(|e| AppError::BadRequest(e.to_string()))
}

/// An upload: checked against GMS's own `file/limits` for the chat (type by the file's
/// name, size by what the browser declares and by what actually streams), then streamed to
/// GMS, never held whole.
async fn upload(
    state: &AppState,
    record: &ChatRecord,
    headers: &HeaderMap,
    body: Body,
    visitor: Option<IpAddr>,
) -> Result<Response, AppError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let boundary = content_type
        .and_then(|t| multer::parse_boundary(t).ok())
        .ok_or_else(|| AppError::BadRequest("an upload is multipart/form-data".to_owned()))?;
    let answer = state
        .gms
        .call_for(&record.service, &ChatOperation::FileLimits, Some(&record.credentials), visitor)
        .await
        .map_err(unreachable)?;
    let Some(limits) = FileLimits::from_response(&answer).filter(|_| answer.status_code == 0)
    else {
        // GMS refused even the limits (the chat ended, files are off): its answer.
        return Ok(envelope(answer));
    };
    let max_size = limits.upload_max_file_size.unwrap_or(u64::MAX);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The multipart framing adds a little to the file: a body larger than the file may be
    // plus 64 KiB of text parts is refused before a byte of it is read.
    if declared.is_some_and(|d| d > max_size.saturating_add(64 * 1024)) {
        return Err(AppError::TooLarge(format!("a file of at most {max_size} bytes")));
    }
    let mut parts = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(
            multer::SizeLimit::new()
                .for_field("file", max_size)
                .per_field(shared::proxy::MAX_FIELD_BYTES as u64),
        ),
    );
    let mut fields = Vec::new();
    let file = loop {
        let field = parts
            .next_field()
            .await
            .map_err(|e| AppError::BadRequest(format!("the upload is malformed: {e}")))?
            .ok_or_else(|| AppError::BadRequest("the upload has no file part".to_owned()))?;
        if field.name() == Some("file") {
            break field;
        }
        let name = field.name().unwrap_or_default().to_owned();
        let value = field
            .text()
            .await
            .map_err(|e| AppError::BadRequest(format!("the upload is malformed: {e}")))?;
        fields.push((name, value));
    };
    let data = upload_user_data(&fields).map_err(refused)?;
    let file_name = file.file_name().unwrap_or("file").to_owned();
    if !limits.allows_file_name(&file_name) {
        return Err(AppError::FileType(format!(
            "GMS takes only {}",
            limits.upload_file_types.join(", ")
        )));
    }
    let mime = file.content_type().map_or("application/octet-stream".to_owned(), |m| m.to_string());
    let mut text: Vec<(String, String)> = Vec::new();
    if let Some(description) = data.description {
        text.push((shared::form::user_data_field("file-description"), description));
    }
    text.extend(data.user_data.into_iter().map(|(k, v)| (shared::form::user_data_field(&k), v)));
    // A file larger than GMS takes ends the stream with an error, so GMS gets a cut body
    // and the browser a 413.
    let oversize = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = oversize.clone();
    let stream = file
        .map_err(move |error| {
            if matches!(error, multer::Error::FieldSizeExceeded { .. }) {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            std::io::Error::other(error)
        })
        .into_stream();
    let upload = Upload {
        fields: text,
        file_name,
        content_type: mime,
        body: reqwest::Body::wrap_stream(stream),
    };
    match state.gms.upload(&record.service, &record.credentials, upload, visitor).await {
        Ok(response) => {
            follow_alias(state, record, &response).await;
            Ok(envelope(response))
        }
        Err(_) if oversize.load(std::sync::atomic::Ordering::Relaxed) => {
            Err(AppError::TooLarge(format!("a file of at most {max_size} bytes")))
        }
        Err(error) => Err(unreachable(error)),
    }
}
