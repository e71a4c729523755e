//! The relay's GMS client: Chat API requests encoded by `shared`, with retries.

use std::time::Duration;

use rand::Rng;
use shared::gms::{
    Answer, ChatOperation, ChatResponse, Credentials, RequestBody, RetryPolicy, Verdict,
};
use shared::transcript::TranscriptPosition;

/// A GMS request that produced no usable envelope.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GmsError {
    /// GMS could not be reached, or timed out.
    #[error("GMS unreachable: {0}")]
    Network(String),
    /// GMS answered with a status and no envelope.
    #[error("GMS answered HTTP {0}")]
    Http(u16),
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
}

impl Gms {
    /// A client for `base` (e.g. `https://gms.example.com`).
    pub(crate) fn new(base: &str, timeout: Duration) -> anyhow::Result<Gms> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Gms { http, base: base.trim_end_matches('/').to_owned() })
    }

    /// The `host:port` GMS listens on, for readiness probes.
    pub(crate) fn authority(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).ok()?;
        Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?))
    }

    /// One request, one answer: the envelope whatever the HTTP status, when there is one.
    pub(crate) async fn call(
        &self,
        service: &str,
        operation: &ChatOperation,
        credentials: &Credentials,
    ) -> Result<ChatResponse, GmsError> {
        let request = operation.encode(service, Some(credentials));
        let RequestBody::Form(fields) = &request.body else {
            return Err(GmsError::Network("the relay sends no multipart requests".to_owned()));
        };
        let started = std::time::Instant::now();
        let sent = self
            .http
            .post(format!("{}{}", self.base, request.path))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(shared::form::encode(fields))
            .send()
            .await;
        let result = match sent {
            Err(error) => Err(GmsError::Network(without_url(&error))),
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Err(error) => Err(GmsError::Network(without_url(&error))),
                    Ok(body) => ChatResponse::parse(&body).map_err(|_| GmsError::Http(status)),
                }
            }
        };
        let label = match &result {
            Ok(r) => match r.verdict() {
                Verdict::Ok => "ok",
                Verdict::Ended => "ended",
                Verdict::Retry => "retry",
                Verdict::Stop => "stop",
            },
            Err(GmsError::Network(_)) => "network",
            Err(GmsError::Http(_)) => "http",
        };
        metrics::counter!("relay_gms_requests_total", "operation" => request.operation, "result" => label).increment(1);
        metrics::histogram!("relay_gms_request_seconds", "operation" => request.operation)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// The acknowledging ping, retried as `RetryPolicy::GMS` says.
    pub(crate) async fn ping(&self, service: &str, credentials: &Credentials) -> PingResult {
        self.refresh(service, credentials, TranscriptPosition::None).await
    }

    /// A refresh from `position`, retried as `RetryPolicy::GMS` says.
    pub(crate) async fn refresh(
        &self,
        service: &str,
        credentials: &Credentials,
        position: TranscriptPosition,
    ) -> PingResult {
        let operation = ChatOperation::Refresh { position };
        let mut failures = 0;
        loop {
            let failure = match self.call(service, &operation, credentials).await {
                Ok(response) => match response.verdict() {
                    Verdict::Ok | Verdict::Ended => return PingResult::Ok(response),
                    Verdict::Stop => return PingResult::Stopped(response),
                    Verdict::Retry => response.error_summary(),
                },
                Err(error) if Verdict::of(error.answer()) == Verdict::Retry => error.to_string(),
                Err(error) => return PingResult::Failed(error.to_string()),
            };
            failures += 1;
            match RetryPolicy::GMS.wait_after(failures, random()) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return PingResult::Failed(failure),
            }
        }
    }
}

impl GmsError {
    /// What the retry policy makes of it.
    fn answer(&self) -> Answer<'static> {
        match self {
            GmsError::Network(_) => Answer::Network,
            GmsError::Http(status) => Answer::Http(*status),
        }
    }
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
