//! The relay's one HTTP error type and its JSON shape (`shared::relay_api::ErrorBody`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::relay_api::ErrorBody;

/// Every way a relay request can fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// A push without the right secret.
    #[error("the push secret is missing or wrong")]
    PushUnauthorized,
    /// A push from an address outside the allow-list.
    #[error("pushes are not accepted from this address")]
    PushForbidden,
    /// A body that is not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// A wrong subscription token.
    #[error("the subscription token does not match this chat")]
    BadToken,
    /// GMS refused the chat's tokens, or the chat has ended.
    #[error("{0}")]
    RejectedByGms(String),
    /// GMS could not be reached, or answered no Chat API answer; what happened is logged,
    /// not told to the browser (a gateway's error text is no visitor's business).
    #[error("GMS could not be reached")]
    GmsUnreachable(String),
    /// GMS answered a proxied request with an HTTP error and no envelope: the browser gets
    /// the status (so it retries a 5xx as it would against GMS), not the body's text.
    #[error("GMS answered HTTP {status}")]
    GmsStatus { status: u16, message: Option<String> },
    /// An operation or chat service proxy mode does not offer.
    #[error("not offered: {0}")]
    NotOffered(String),
    /// A body larger than the endpoint takes.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A file of a type GMS does not take.
    #[error("file type refused: {0}")]
    FileType(String),
    /// The durable store failed: nothing was accepted.
    #[error("the session store is unavailable")]
    Store(#[from] crate::sessions::StoreError),
    /// The other relays could not be reached through Redis: GMS resends the push.
    #[error("the other relays are unreachable")]
    Bus(#[from] crate::peers::PeersError),
    /// Unknown chat.
    #[error("no such chat")]
    NotFound,
    /// Too many requests from one client address.
    #[error("too many requests from this address; retry later")]
    TooManyRequests {
        /// When the next request may succeed.
        retry_after: std::time::Duration,
    },
    /// The relay cannot take work now (shutting down, store stopped, GMS unreachable).
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// Identities are not verified (no `--identity-secret`).
    #[error("this relay verifies no identities")]
    IdentityUnconfigured,
    /// A user hash that does not verify: nothing else is said.
    #[error("the identity did not verify")]
    IdentityRefused,
    /// A resume token that leads to no chat: malformed, forged, revoked, of a chat ended or
    /// forgotten, all alike, so an answer tells nothing of which.
    #[error("no chat for this resume link")]
    ResumeRefused,
    /// Web Push is off (no `--vapid-subject`).
    #[error("this relay sends no Web Push notifications")]
    WebPushDisabled,
    /// `--static-dir` does not hold a complete widget build.
    #[error("the widget build is incomplete: {0}")]
    WidgetNotBuilt(String),
}

impl AppError {
    /// The error body's code, which labels refusals in metrics and traces.
    pub(crate) fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::PushUnauthorized => (StatusCode::UNAUTHORIZED, "bad_secret"),
            AppError::PushForbidden => (StatusCode::FORBIDDEN, "address_not_allowed"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::BadToken => (StatusCode::UNAUTHORIZED, "bad_token"),
            AppError::RejectedByGms(_) => (StatusCode::FORBIDDEN, "rejected_by_gms"),
            AppError::GmsUnreachable(_) => (StatusCode::BAD_GATEWAY, "gms_unreachable"),
            AppError::GmsStatus { status, .. } => (
                StatusCode::from_u16(*status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY),
                "gms_http",
            ),
            AppError::NotOffered(_) => (StatusCode::NOT_FOUND, "not_offered"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::FileType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "file_type_refused"),
            AppError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            AppError::Bus(_) => (StatusCode::SERVICE_UNAVAILABLE, "relays_unreachable"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            AppError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            AppError::IdentityUnconfigured => (StatusCode::NOT_FOUND, "identity_unconfigured"),
            AppError::IdentityRefused => (StatusCode::FORBIDDEN, "identity_refused"),
            AppError::ResumeRefused => (StatusCode::NOT_FOUND, "not_found"),
            AppError::WebPushDisabled => (StatusCode::NOT_FOUND, "web_push_disabled"),
            AppError::WidgetNotBuilt(_) => (StatusCode::INTERNAL_SERVER_ERROR, "widget_not_built"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // Every refusal is counted by its reason, in this one place.
        metrics::counter!("relay_refused_total", "reason" => code).increment(1);
        if let AppError::GmsUnreachable(detail) = &self {
            tracing::error!(error = ?detail, "request failed: GMS could not be reached");
        } else if let AppError::GmsStatus { status, message } = &self {
            tracing::warn!(status, message = ?message, "a proxied request: GMS answered no envelope");
        } else if status.is_server_error() && !matches!(self, AppError::NotReady(_)) {
            tracing::error!(error = ?self.to_string(), "request failed");
        } else {
            tracing::debug!(error = ?self.to_string(), "request refused");
        }
        let mut response =
            (status, Json(ErrorBody { code: code.to_owned(), message: self.to_string() }))
                .into_response();
        // An error says how things stood for one request: no cache may keep it.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            AppError::PushUnauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"relay\""),
                );
            }
            AppError::TooManyRequests { retry_after } => {
                // Whole seconds, rounded up: a client that waits that long gets through.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}
