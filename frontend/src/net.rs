//! The widget's HTTP: GMS Chat API calls (encoded by `shared`) with retries, and the
//! relay's session registration.

use gloo_net::http::Request;
use shared::gms::{ChatOperation, ChatResponse, Credentials, Outcome, RequestBody};
use shared::relay_api::{ErrorBody, RegisterSession, SESSIONS_PATH, SessionRegistered};
use shared::widget_config::WidgetConfig;

use crate::texts::{Texts, fill};

/// statusCode 1 and network errors are retried this many times in all.
const ATTEMPTS: u32 = 4;

/// A request that gave no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum NetError {
    /// The network failed (offline, DNS, CORS, server down).
    Network(String),
    /// An HTTP status without the expected body.
    Http(u16),
    /// The server refused, with its reason.
    Refused(String),
}

impl NetError {
    /// What to tell the visitor, in the widget's language.
    pub fn describe(&self, t: &Texts) -> String {
        match self {
            NetError::Network(_) => t.unreachable.to_owned(),
            NetError::Http(status) => fill(t.http_error, &[("status", &status.to_string())]),
            NetError::Refused(reason) => reason.clone(),
        }
    }
}

/// One Chat API request; retried on statusCode 1, 5xx and network errors. A response
/// with statusCode 2 is returned for the caller to judge.
pub async fn gms(
    config: &WidgetConfig,
    service: &str,
    operation: &ChatOperation,
    credentials: Option<&Credentials>,
) -> Result<ChatResponse, NetError> {
    gms_attempts(config, service, operation, credentials, ATTEMPTS).await
}

/// One attempt only, for notices that are stale by the time a retry would land
/// (typing started or stopped).
pub async fn gms_once(
    config: &WidgetConfig,
    service: &str,
    operation: &ChatOperation,
    credentials: &Credentials,
) -> Result<ChatResponse, NetError> {
    gms_attempts(config, service, operation, Some(credentials), 1).await
}

async fn gms_attempts(
    config: &WidgetConfig,
    service: &str,
    operation: &ChatOperation,
    credentials: Option<&Credentials>,
    attempts: u32,
) -> Result<ChatResponse, NetError> {
    let request = operation.encode(service, credentials);
    let RequestBody::Form(fields) = &request.body else {
        return Err(NetError::Refused("uploads are not supported yet".to_owned()));
    };
    let url = format!("{}{}", config.gms_url.trim_end_matches('/'), request.path);
    let body = shared::form::encode(fields);
    let mut delay = 500;
    let mut last = NetError::Network(String::new());
    for attempt in 1..=attempts {
        match post_form(&url, &body).await {
            Ok(response) if response.outcome() == Outcome::Retry => {
                last = NetError::Refused(response.error_summary());
            }
            Ok(response) => return Ok(response),
            Err(NetError::Http(status)) if status < 500 => return Err(NetError::Http(status)),
            Err(error) => last = error,
        }
        if attempt < attempts {
            gloo_timers::future::TimeoutFuture::new(crate::jittered(delay)).await;
            delay *= 2;
        }
    }
    Err(last)
}

async fn post_form(url: &str, body: &str) -> Result<ChatResponse, NetError> {
    // A form POST without custom headers is a CORS "simple request": no preflight.
    let response = Request::post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .map_err(|e| NetError::Network(e.to_string()))?
        .send()
        .await
        .map_err(|e| NetError::Network(e.to_string()))?;
    let status = response.status();
    let bytes = response.binary().await.map_err(|e| NetError::Network(e.to_string()))?;
    // GMS may send an envelope with a non-200 status too.
    ChatResponse::parse(&bytes).map_err(|_| NetError::Http(status))
}

/// Registers the chat with the relay; answers the subscription token and the relay's
/// known position.
pub async fn register(
    config: &WidgetConfig,
    chat: &crate::chat::ChatState,
    device_id: &str,
) -> Result<SessionRegistered, NetError> {
    let body = RegisterSession {
        service: chat.service.clone(),
        chat_id: chat.credentials.chat_id.clone(),
        user_id: chat.credentials.user_id.clone(),
        secure_key: chat.credentials.secure_key.clone(),
        alias: chat.credentials.alias.clone(),
        device_id: Some(device_id.to_owned()),
    };
    let url = format!("{}{SESSIONS_PATH}", config.relay_url.trim_end_matches('/'));
    let response = Request::post(&url)
        .json(&body)
        .map_err(|e| NetError::Network(e.to_string()))?
        .send()
        .await
        .map_err(|e| NetError::Network(e.to_string()))?;
    match response.status() {
        200 => response.json().await.map_err(|e| NetError::Network(e.to_string())),
        403 => {
            let reason = response.json::<ErrorBody>().await.map(|e| e.message).unwrap_or_default();
            Err(NetError::Refused(reason))
        }
        status => Err(NetError::Http(status)),
    }
}

/// Tells the relay to forget an ended chat (best effort).
pub async fn forget(config: &WidgetConfig, chat_id: &str, token: &str) {
    let url = format!(
        "{}{SESSIONS_PATH}/{}",
        config.relay_url.trim_end_matches('/'),
        shared::form::encode_path_segment(chat_id)
    );
    let _ = Request::delete(&url).header("Authorization", &format!("Bearer {token}")).send().await;
}
