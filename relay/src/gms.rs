//! The relay's GMS client: Chat API requests encoded by `shared`, with retries, and the
//! one bound on how many are in flight at once, whoever asks.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use shared::gms::{
    Answer, Attempts, ChatOperation, ChatResponse, Credentials, EncodedRequest, GmsHeader, Next,
    RequestBody, RetryPolicy, Verdict,
};
use shared::transcript::TranscriptPosition;
use tokio::sync::OwnedSemaphorePermit;

/// A GMS request that produced no usable envelope.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GmsError {
    /// GMS could not be reached, or timed out.
    #[error("GMS unreachable: {0}")]
    Network(String),
    /// GMS answered with a status and no envelope; what the body said, when it said it
    /// (GMS's other APIs and API gateways answer errors in bodies of their own).
    #[error("GMS answered HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Http { status: u16, message: Option<String> },
    /// Every slot for GMS requests stayed taken for a whole request timeout.
    #[error("GMS requests are at their concurrency limit")]
    Busy,
}

/// What a ping (refresh with `transcriptPosition=0`) found out.
#[derive(Debug)]
pub(crate) enum PingResult {
    /// statusCode 0 (possibly with `chatEnded`).
    Ok(ChatResponse),
    /// statusCode 2 (or unknown): the tokens are no good or the chat is gone.
    Stopped(ChatResponse),
    /// Still failing after every retry.
    Failed(String),
}

/// Talks to one GMS.
#[derive(Clone)]
pub(crate) struct Gms {
    http: reqwest::Client,
    base: String,
    /// GMS requests in flight at once, acknowledgements, pings and registrations alike, so
    /// no flood of one kind can put more load on GMS than the operator allowed.
    slots: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    /// The last reachability probe: when, and whether GMS accepted the connection.
    probed: Arc<Mutex<Option<(Instant, bool)>>>,
    /// Set while a probe runs, so concurrent readiness checks share it.
    probing: Arc<AtomicBool>,
}

/// How long one reachability probe answers every readiness check: a load balancer that
/// checks every second per node costs GMS a connection every few seconds, not one each.
const PROBE_FOR: Duration = Duration::from_secs(5);
/// How long a probe waits for GMS to accept.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl Gms {
    /// A client for `base` (e.g. `https://gms.example.com`) with at most `concurrency`
    /// requests in flight, each carrying `headers` (an API gateway's key). It follows no redirect: GMS answers its API directly, and a
    /// redirect would carry the chat's tokens to wherever it points.
    pub(crate) fn new(
        base: &str,
        headers: &[GmsHeader],
        timeout: Duration,
        concurrency: usize,
    ) -> anyhow::Result<Gms> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(header_map(headers)?)
            .build()?;
        Ok(Gms {
            http,
            base: base.trim_end_matches('/').to_owned(),
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            timeout,
            probed: Arc::default(),
            probing: Arc::default(),
        })
    }

    /// The `host:port` GMS listens on, for readiness probes.
    fn authority(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).ok()?;
        Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?))
    }

    /// Whether GMS accepts a TCP connection: probed at most once per `PROBE_FOR`, however
    /// often readiness is asked (while a probe runs, the others get the last answer).
    pub(crate) async fn reachable(&self) -> bool {
        let last = *self.probed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, reachable)) = last
            && at.elapsed() < PROBE_FOR
        {
            return reachable;
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return last.is_some_and(|(_, reachable)| reachable);
        }
        let reachable = match self.authority() {
            Some(address) => matches!(
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await,
                Ok(Ok(_))
            ),
            None => false,
        };
        *self.probed.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), reachable));
        self.probing.store(false, Ordering::Release);
        reachable
    }

    /// One request, one answer: the envelope whatever the HTTP status, when there is one.
    pub(crate) async fn call(
        &self,
        service: &str,
        operation: &ChatOperation,
        credentials: &Credentials,
    ) -> Result<ChatResponse, GmsError> {
        self.call_for(service, operation, Some(credentials), None).await
    }

    /// `call` for proxy mode, without credentials for a create (which a start makes once,
    /// never retried), telling GMS the visitor's address in `X-Forwarded-For` when
    /// `visitor` is given (`--gms-forward-client-ip`). Only forms: an upload is `upload`.
    pub(crate) async fn call_for(
        &self,
        service: &str,
        operation: &ChatOperation,
        credentials: Option<&Credentials>,
        visitor: Option<IpAddr>,
    ) -> Result<ChatResponse, GmsError> {
        let request = operation.encode(service, credentials);
        let started = std::time::Instant::now();
        let result = match self.send_form(&request, visitor).await {
            Err(error) => Err(error),
            Ok((_slot, response)) => envelope(response).await,
        };
        count(request.operation, &result, started);
        result
    }

    /// A file download for proxy mode: GMS's answer as it comes (bytes or an envelope), with
    /// its slot, which the caller holds until the bytes are passed on.
    pub(crate) async fn download(
        &self,
        service: &str,
        file_id: &str,
        credentials: &Credentials,
        visitor: Option<IpAddr>,
    ) -> Result<(OwnedSemaphorePermit, reqwest::Response), GmsError> {
        let operation = ChatOperation::Download { file_id: file_id.to_owned() };
        let sent = self.send_form(&operation.encode(service, Some(credentials)), visitor).await;
        let label = match &sent {
            Ok(_) => "ok",
            Err(error) => error.label(),
        };
        metrics::counter!("relay_gms_requests_total", "operation" => "download", "result" => label)
            .increment(1);
        sent
    }

    /// A file upload for proxy mode: the text fields, then the file streamed from `body`
    /// (never held whole), in one multipart request.
    pub(crate) async fn upload(
        &self,
        service: &str,
        credentials: &Credentials,
        upload: Upload,
        visitor: Option<IpAddr>,
    ) -> Result<ChatResponse, GmsError> {
        let path = format!(
            "{}/{}/{}/file",
            shared::gms::CHAT_API_PREFIX,
            shared::form::encode_path_segment(service),
            shared::form::encode_path_segment(&credentials.chat_id)
        );
        let mut form = reqwest::multipart::Form::new();
        let tokens = [
            ("secureKey", &credentials.secure_key),
            ("userId", &credentials.user_id),
            ("alias", &credentials.alias),
        ];
        for (name, value) in tokens.into_iter().filter(|(_, v)| !v.is_empty()) {
            form = form.text(name, value.clone());
        }
        for (name, value) in upload.fields {
            form = form.text(name, value);
        }
        let part = reqwest::multipart::Part::stream(upload.body)
            .file_name(upload.file_name)
            .mime_str(&upload.content_type)
            .map_err(|_| GmsError::Network("the file's type is no MIME type".to_owned()))?;
        let form = form.part("file", part);
        let started = std::time::Instant::now();
        let sent = self
            .send(reqwest::Method::POST, &path, "upload", visitor, |post| post.multipart(form))
            .await;
        let result = match sent {
            Err(error) => Err(error),
            Ok((_slot, response)) => envelope(response).await,
        };
        count("upload", &result, started);
        result
    }

    /// Posts an encoded form request (an upload is `upload`'s) with one of the slots.
    async fn send_form(
        &self,
        request: &EncodedRequest,
        visitor: Option<IpAddr>,
    ) -> Result<(OwnedSemaphorePermit, reqwest::Response), GmsError> {
        let RequestBody::Form(fields) = &request.body else {
            return Err(GmsError::Network("an upload is sent by Gms::upload".to_owned()));
        };
        self.send(reqwest::Method::POST, &request.path, request.operation, visitor, |post| {
            post.header(reqwest::header::CONTENT_TYPE, shared::form::CONTENT_TYPE)
                .body(shared::form::encode(fields))
        })
        .await
    }

    /// A `GET` of another GMS service (`/genesys/1/service/{name}`, the expected wait),
    /// answered as JSON whatever its shape; an error status or a body that is not JSON is
    /// an HTTP error with what the body said.
    pub(crate) async fn get_json(
        &self,
        path: &str,
        operation: &'static str,
    ) -> Result<serde_json::Value, GmsError> {
        let started = Instant::now();
        let result = async {
            let (_slot, response) =
                self.send(reqwest::Method::GET, path, operation, None, |get| get).await?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| GmsError::Network(without_url(&e)))?;
            let message = || ChatResponse::foreign_error(&body);
            if !status.is_success() {
                return Err(GmsError::Http { status: status.as_u16(), message: message() });
            }
            serde_json::from_slice(&body).map_err(|_| GmsError::Http {
                status: status.as_u16(),
                message: Some("the answer is not JSON".to_owned()),
            })
        }
        .await;
        let label = result.as_ref().map_or_else(GmsError::label, |_| "ok");
        metrics::counter!("relay_gms_requests_total", "operation" => operation, "result" => label)
            .increment(1);
        metrics::histogram!("relay_gms_request_seconds", "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Sends to `path` with one of the slots, waiting at most a request timeout for it.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        operation: &'static str,
        visitor: Option<IpAddr>,
        body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(OwnedSemaphorePermit, reqwest::Response), GmsError> {
        let Ok(Ok(slot)) =
            tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await
        else {
            metrics::counter!("relay_gms_requests_total", "operation" => operation, "result" => "busy").increment(1);
            return Err(GmsError::Busy);
        };
        let mut post = self.http.request(method, format!("{}{path}", self.base));
        if let Some(ip) = visitor {
            post = post.header("x-forwarded-for", ip.to_string());
        }
        match body(post).send().await {
            Ok(response) => Ok((slot, response)),
            Err(error) => Err(GmsError::Network(without_url(&error))),
        }
    }

    /// The acknowledging ping, retried as `RetryPolicy::GMS` says.
    pub(crate) async fn ping(&self, service: &str, credentials: &Credentials) -> PingResult {
        self.refresh(service, credentials, TranscriptPosition::None).await
    }

    /// A registration's check of the tokens a browser handed over: one ping, never retried
    /// (the widget retries), so a refused or failing registration costs GMS one request.
    pub(crate) async fn validate(&self, service: &str, credentials: &Credentials) -> PingResult {
        let ping = ChatOperation::Refresh { position: TranscriptPosition::None };
        self.attempts(service, credentials, &ping, RetryPolicy::ONCE).await
    }

    /// `updateData` of the chat's user data, retried as `RetryPolicy::GMS` says.
    pub(crate) async fn update_data(
        &self,
        service: &str,
        credentials: &Credentials,
        user_data: Vec<(String, String)>,
    ) -> PingResult {
        let operation = ChatOperation::UpdateData { user_data };
        self.attempts(service, credentials, &operation, RetryPolicy::GMS).await
    }

    /// A refresh from `position`, retried as `RetryPolicy::GMS` says.
    pub(crate) async fn refresh(
        &self,
        service: &str,
        credentials: &Credentials,
        position: TranscriptPosition,
    ) -> PingResult {
        let operation = ChatOperation::Refresh { position };
        self.attempts(service, credentials, &operation, RetryPolicy::GMS).await
    }

    /// One operation, tried as `policy` says.
    async fn attempts(
        &self,
        service: &str,
        credentials: &Credentials,
        operation: &ChatOperation,
        policy: RetryPolicy,
    ) -> PingResult {
        let mut attempts = Attempts::new(policy);
        loop {
            let result = self.call(service, operation, credentials).await;
            let verdict = match &result {
                Ok(response) => response.verdict(),
                Err(error) => Verdict::of(error.answer()),
            };
            match (attempts.after(verdict, random()), result) {
                (Next::Wait(wait), _) => tokio::time::sleep(wait).await,
                (Next::Done(Verdict::Stop), Ok(response)) => return PingResult::Stopped(response),
                (Next::Done(_), Ok(response)) => return PingResult::Ok(response),
                (Next::GiveUp, Ok(response)) => {
                    return PingResult::Failed(response.error_summary());
                }
                (_, Err(error)) => return PingResult::Failed(error.to_string()),
            }
        }
    }
}

/// What an upload sends besides the chat's tokens: its `userData` fields, and the file as
/// it streams in.
pub(crate) struct Upload {
    /// Form fields, already named as GMS reads them (`userData[...]`).
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) file_name: String,
    pub(crate) content_type: String,
    pub(crate) body: reqwest::Body,
}

/// The envelope of an answer, whatever its HTTP status; a non-envelope body is an HTTP error
/// with what it said.
async fn envelope(response: reqwest::Response) -> Result<ChatResponse, GmsError> {
    let status = response.status().as_u16();
    match response.bytes().await {
        Err(error) => Err(GmsError::Network(without_url(&error))),
        Ok(body) => ChatResponse::parse(&body)
            .map_err(|_| GmsError::Http { status, message: ChatResponse::foreign_error(&body) }),
    }
}

/// Counts one request's outcome and time.
fn count(operation: &'static str, result: &Result<ChatResponse, GmsError>, started: Instant) {
    let label = match result {
        Ok(r) => match r.verdict() {
            Verdict::Ok => "ok",
            Verdict::Ended => "ended",
            Verdict::Retry => "retry",
            Verdict::Stop => "stop",
        },
        Err(error) => error.label(),
    };
    metrics::counter!("relay_gms_requests_total", "operation" => operation, "result" => label)
        .increment(1);
    metrics::histogram!("relay_gms_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
}

impl GmsError {
    /// Its label in `relay_gms_requests_total`.
    fn label(&self) -> &'static str {
        match self {
            GmsError::Network(_) => "network",
            GmsError::Http { .. } => "http",
            GmsError::Busy => "busy",
        }
    }

    /// What the retry policy makes of it.
    fn answer(&self) -> Answer<'static> {
        match self {
            GmsError::Network(_) | GmsError::Busy => Answer::Network,
            GmsError::Http { status, .. } => Answer::Http(*status),
        }
    }
}

/// The operator's extra headers for every GMS request, `relay check`'s too. Each value is
/// marked sensitive, so a debug print of a request or the client leaves it out.
pub(crate) fn header_map(headers: &[GmsHeader]) -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for header in headers {
        let name = reqwest::header::HeaderName::from_bytes(header.name.as_bytes())?;
        // The error names the header, never its value.
        let mut value = reqwest::header::HeaderValue::from_str(&header.value).map_err(|_| {
            anyhow::anyhow!("the value of the GMS header {:?} is not valid", header.name)
        })?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// reqwest errors print the URL; ours carry no secrets, but the message stays short.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "GMS");
    }
    text
}

/// A number in [0, 1] for the retry policy's jitter.
pub(crate) fn random() -> f64 {
    rand::rng().random_range(0.0..=1.0)
}
