//! The widget's HTTP: GMS Chat API calls (encoded by `shared`) with retries, and the
//! relay's session registration. Straight through the browser's `fetch`: a wrapper
//! library would add its own request builder and errors to the wasm for nothing.

use shared::gms::{
    Answer, Attempts, ChatOperation, ChatResponse, Credentials, Next, RequestBody, RetryPolicy,
    Verdict,
};
use shared::proxy::{ChatStarted, relay_path};
use shared::relay_api::{
    HOURS_PATH, OfficeHours, PUSH_SUBSCRIPTION, RESUME_LINKS, RegisterSession, ResumeLink,
    SESSIONS_PATH, SURVEY, SessionRegistered, SurveyAnswer,
};
use shared::visitor::{Handover, Registration};
use shared::widget_config::WidgetConfig;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::texts::{Texts, fill};

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
    /// What the retry policy makes of it.
    fn verdict(&self) -> Verdict {
        match self {
            NetError::Http(status) => Verdict::of(Answer::Http(*status)),
            NetError::Network(_) => Verdict::of(Answer::Network),
            NetError::Refused(_) => Verdict::Stop,
        }
    }

    /// What to tell the visitor, in the widget's language.
    pub fn describe(&self, t: &Texts) -> String {
        match self {
            NetError::Network(_) => t.unreachable.to_owned(),
            NetError::Http(status) => fill(t.http_error, &[("status", &status.to_string())]),
            NetError::Refused(reason) => reason.clone(),
        }
    }
}

/// Whom a Chat API request is for: the chat's service and tokens (none for a start) and,
/// through a relay in proxy mode, the relay's subscription token, which authorises it.
pub struct To<'a> {
    pub service: &'a str,
    pub credentials: Option<&'a Credentials>,
    pub token: Option<&'a str>,
}

/// Where a request goes: GMS's own path on GMS or, in proxy mode, the same path below the
/// relay's `/v1/chats`, with the relay's token instead of the page's `gmsHeaders`.
fn address(config: &WidgetConfig, to: &To<'_>, path: &str) -> (String, Vec<(String, String)>) {
    if config.proxy {
        let url = format!("{}{}", config.relay_url.trim_end_matches('/'), relay_path(path));
        let bearer = to.token.map(|t| ("Authorization".to_owned(), format!("Bearer {t}")));
        return (url, bearer.into_iter().collect());
    }
    let url = format!("{}{path}", config.gms_url.trim_end_matches('/'));
    let headers = config.gms_headers.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    (url, headers)
}

/// One Chat API request, tried again as `policy` says on statusCode 1, 5xx and network
/// errors. A response with statusCode 2 is returned for the caller to judge.
pub async fn gms(
    config: &WidgetConfig,
    to: &To<'_>,
    operation: &ChatOperation,
    policy: RetryPolicy,
) -> Result<ChatResponse, NetError> {
    attempts(config, to, operation, policy).await.map(|(response, _)| response)
}

/// A start through a relay in proxy mode: GMS's answer without tokens and, when the chat
/// started, the relay's session of it.
pub async fn start(
    config: &WidgetConfig,
    to: &To<'_>,
    operation: &ChatOperation,
    policy: RetryPolicy,
) -> (Result<ChatResponse, NetError>, Option<SessionRegistered>) {
    match attempts(config, to, operation, policy).await {
        Ok((response, session)) => (Ok(response), session),
        Err(error) => (Err(error), None),
    }
}

/// The retry loop of a Chat API request (one for every kind, so the wasm holds one): the
/// envelope, and the relay's session when the answer is a start's through the relay.
async fn attempts(
    config: &WidgetConfig,
    to: &To<'_>,
    operation: &ChatOperation,
    policy: RetryPolicy,
) -> Result<(ChatResponse, Option<SessionRegistered>), NetError> {
    let started = config.proxy && matches!(operation, ChatOperation::Create { .. });
    let read = |bytes: &[u8]| match std::str::from_utf8(bytes).ok().filter(|_| started) {
        Some(text) => match shared::json::from_str::<ChatStarted>(text) {
            Some(answer) => Some((answer.envelope, Some(answer.relay))),
            None => ChatResponse::read(bytes).map(|r| (r, None)),
        },
        None => ChatResponse::read(bytes).map(|r| (r, None)),
    };
    let request = operation.encode(to.service, to.credentials);
    let (url, headers) = address(config, to, &request.path);
    let body = Body::of(&request.body)?;
    let mut attempts = Attempts::new(policy);
    loop {
        let result = body
            .post(&url, &headers)
            .await
            .and_then(|(status, _, bytes)| read(&bytes).ok_or(NetError::Http(status)));
        let verdict = match &result {
            Ok((response, _)) => response.verdict(),
            Err(error) => error.verdict(),
        };
        match attempts.after(verdict, js_sys::Math::random()) {
            Next::Wait(wait) => gloo_timers::future::sleep(wait).await,
            // statusCode 2 and ended chats are the caller's to judge.
            Next::Done(_) => return result,
            Next::GiveUp => {
                return result.and_then(|(r, _)| Err(NetError::Refused(r.error_summary())));
            }
        }
    }
}

/// Downloads a chat file: GMS answers its bytes, or an envelope when it refuses.
pub async fn download(
    config: &WidgetConfig,
    to: &To<'_>,
    file_id: &str,
) -> Result<Vec<u8>, NetError> {
    let operation = ChatOperation::Download { file_id: file_id.to_owned() };
    let request = operation.encode(to.service, to.credentials);
    let (url, headers) = address(config, to, &request.path);
    let (status, json, bytes) = Body::of(&request.body)?.post(&url, &headers).await?;
    // Only a JSON answer can be a refusal: a downloaded file is not read as one.
    match json.then(|| ChatResponse::read(&bytes)).flatten() {
        Some(refusal) if refusal.status_code != 0 => {
            Err(NetError::Refused(refusal.error_summary()))
        }
        _ if status == 200 => Ok(bytes),
        _ => Err(NetError::Http(status)),
    }
}

/// A request body ready to send (again, on a retry).
enum Body {
    Form(String),
    Multipart(web_sys::FormData),
}

impl Body {
    fn of(body: &RequestBody) -> Result<Body, NetError> {
        match body {
            RequestBody::Form(fields) => Ok(Body::Form(shared::form::encode(fields))),
            RequestBody::Multipart { fields, file } => {
                let unsupported =
                    |_| NetError::Network("this browser cannot send files".to_owned());
                let form = web_sys::FormData::new().map_err(unsupported)?;
                for (name, value) in fields {
                    form.append_with_str(name, value).map_err(unsupported)?;
                }
                let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(file.bytes.as_slice()));
                let options = web_sys::BlobPropertyBag::new();
                options.set_type(&file.content_type);
                let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
                    .map_err(unsupported)?;
                form.append_with_blob_and_filename("file", &blob, &file.file_name)
                    .map_err(unsupported)?;
                Ok(Body::Multipart(form))
            }
        }
    }

    /// Posts it with `headers` (the page's `gmsHeaders`, checked at mount, or the relay's
    /// token); answers the HTTP status, whether the answer is JSON, and its bytes.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, bool, Vec<u8>), NetError> {
        // A form POST without custom headers is a CORS "simple request": no preflight;
        // so is multipart, whose boundary the browser sets. A page's `gmsHeaders` (or the
        // relay's token) make both preflighted, which a gateway (the relay) answers.
        let mut headers: Vec<(&str, &str)> =
            headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        match self {
            Body::Form(text) => {
                headers.push(("Content-Type", shared::form::CONTENT_TYPE));
                fetch("POST", url, &headers, Some(&JsValue::from_str(text))).await
            }
            Body::Multipart(form) => fetch("POST", url, &headers, Some(form)).await,
        }
    }
}

/// One request through the browser's `fetch`; answers the HTTP status, whether the answer
/// is JSON, and its bytes. Any failure to get an answer is a network error.
async fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&JsValue>,
) -> Result<(u16, bool, Vec<u8>), NetError> {
    let failed = |_| NetError::Network(format!("{method} {url} failed"));
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(body);
    }
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(failed)?;
    for (name, value) in headers {
        request.headers().set(name, value).map_err(failed)?;
    }
    let window = web_sys::window().ok_or_else(|| failed(JsValue::NULL))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .and_then(JsCast::dyn_into)
        .map_err(failed)?;
    let content_type = response.headers().get("content-type").ok().flatten();
    let json = content_type.is_some_and(|t| t.contains("json"));
    let buffer = JsFuture::from(response.array_buffer().map_err(failed)?).await.map_err(failed)?;
    Ok((response.status(), json, js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// Registers the chat with the relay (in proxy mode with its subscription token instead of
/// GMS tokens), judged as `Registration::of` judges it.
pub async fn register(
    config: &WidgetConfig,
    body: &RegisterSession,
    token: Option<&str>,
) -> Registration {
    let url = format!("{}{SESSIONS_PATH}", config.relay_url.trim_end_matches('/'));
    let json = shared::json::to_string(body);
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(bearer.as_deref().map(|b| ("Authorization", b)));
    match fetch("POST", &url, &headers, Some(&JsValue::from_str(&json))).await {
        Ok((status, _, bytes)) => Registration::of(status, &String::from_utf8_lossy(&bytes)),
        Err(_) => Registration::Failed,
    }
}

/// Asks the relay for a chat this browser may take up: `path` is `IDENTITY_PATH` or
/// `RESUME_PATH`, `body` the JSON proving the right to it.
pub async fn handover(config: &WidgetConfig, path: &str, body: &str) -> Handover {
    let url = format!("{}{path}", config.relay_url.trim_end_matches('/'));
    let headers = [("Content-Type", "application/json")];
    match fetch("POST", &url, &headers, Some(&JsValue::from_str(body))).await {
        Ok((status, _, bytes)) => Handover::of(status, &String::from_utf8_lossy(&bytes)),
        Err(_) => Handover::Failed,
    }
}

/// A new resume token for a chat; none when the relay made none.
pub async fn resume_link(config: &WidgetConfig, chat_id: &str, token: &str) -> Option<String> {
    let url = format!("{}/{RESUME_LINKS}", session_url(config, chat_id));
    let authorization = format!("Bearer {token}");
    let (status, _, bytes) =
        fetch("POST", &url, &[("Authorization", &authorization)], None).await.ok()?;
    let link: ResumeLink = shared::json::from_str(&String::from_utf8_lossy(&bytes))?;
    (status == 200).then_some(link.resume_token)
}

/// A chat service's office hours now; none when the relay has none or could not say.
pub async fn office_hours(config: &WidgetConfig, service: &str) -> Option<OfficeHours> {
    let url = format!(
        "{}{HOURS_PATH}/{}",
        config.relay_url.trim_end_matches('/'),
        shared::form::encode_path_segment(service)
    );
    let (status, _, bytes) = fetch("GET", &url, &[], None).await.ok()?;
    (status == 200).then(|| shared::json::from_str(&String::from_utf8_lossy(&bytes))).flatten()
}

/// The emoji picker's data in the widget's language, English where there is none
/// (`frontend/emoji`, served with the widget's files by the relay).
pub async fn emoji(config: &WidgetConfig) -> Option<String> {
    let base = config.relay_url.trim_end_matches('/');
    for language in [config.language.as_str(), "en"] {
        let url = format!("{base}/emoji/{language}.txt");
        if let Ok((200, _, bytes)) = fetch("GET", &url, &[], None).await {
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// Hands the relay the rating of an ended chat (best effort: the relay retries its webhook,
/// a lost rating is not worth the visitor's time).
pub async fn survey(config: &WidgetConfig, chat_id: &str, token: &str, answer: &SurveyAnswer) {
    let url = format!("{}/{SURVEY}", session_url(config, chat_id));
    let authorization = format!("Bearer {token}");
    let headers = [("Authorization", authorization.as_str()), ("Content-Type", "application/json")];
    let body = JsValue::from_str(&shared::json::to_string(answer));
    let _ = fetch("POST", &url, &headers, Some(&body)).await;
}

/// The relay's URL of a chat (`/v1/sessions/{chatId}`).
fn session_url(config: &WidgetConfig, chat_id: &str) -> String {
    format!(
        "{}{SESSIONS_PATH}/{}",
        config.relay_url.trim_end_matches('/'),
        shared::form::encode_path_segment(chat_id)
    )
}

/// Tells the relay to forget an ended chat (best effort).
pub async fn forget(config: &WidgetConfig, chat_id: &str, token: &str) {
    let authorization = format!("Bearer {token}");
    let url = session_url(config, chat_id);
    let _ = fetch("DELETE", &url, &[("Authorization", &authorization)], None).await;
}

/// Hands the relay the chat's Web Push subscription (`Some`: a `PushSubscriptionBody` as
/// JSON), or takes it back (`None`).
pub async fn push_subscription(
    config: &WidgetConfig,
    chat_id: &str,
    token: &str,
    subscription: Option<&str>,
) -> Result<(), NetError> {
    let url = format!("{}/{PUSH_SUBSCRIPTION}", session_url(config, chat_id));
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("Authorization", authorization.as_str())];
    let (method, body) = match subscription {
        Some(json) => {
            headers.push(("Content-Type", "application/json"));
            ("POST", Some(JsValue::from_str(json)))
        }
        None => ("DELETE", None),
    };
    match fetch(method, &url, &headers, body.as_ref()).await?.0 {
        204 => Ok(()),
        status => Err(NetError::Http(status)),
    }
}
