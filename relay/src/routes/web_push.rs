//! `POST`/`DELETE /v1/sessions/{chatId}/push-subscription`: the visitor turns Web Push on or
//! off for a chat; and `GET /gms-chat-sw.js`, the service worker a site imports.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::relay_api::PushSubscriptionBody;

use super::sessions::authorize;
use crate::AppState;
use crate::error::AppError;
use crate::store::{Observation, Source, WebPushSubscription, now_millis};

/// The service worker's source (it lives with the widget's other browser code).
const SERVICE_WORKER: &str = include_str!("../../../frontend/gms-chat-sw.js");
/// Longest URL kept (endpoint, page).
const URL_LIMIT: usize = 2048;

pub(crate) async fn subscribe(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PushSubscriptionBody>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    authorize(&state, &chat_id, &headers)?;
    let web_push = state.peers.web_push().ok_or(AppError::WebPushDisabled)?;
    let Json(body) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let record = state.sessions.get(&chat_id).ok_or(AppError::NotFound)?;
    if body.endpoint.len() > URL_LIMIT || !crate::web_push::texts_fit(&body.texts) {
        return Err(AppError::BadRequest("the endpoint or a title is too long".to_owned()));
    }
    // Kept without its query or fragment (tokens a site put there stay out of the store),
    // as the widget sends it.
    let page = body.page.filter(|page| {
        page.len() <= URL_LIMIT && (page.starts_with("https://") || page.starts_with("http://"))
    });
    let page = page.map(|page| shared::visitor::return_page(&page).to_owned());
    let subscription = WebPushSubscription {
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
        page,
        texts: body.texts,
        // Only what arrives from now on is notified.
        since: record.position,
    };
    web_push.check(&subscription).map_err(AppError::BadRequest)?;
    set(&state, &chat_id, Some(Box::new(subscription))).await?;
    tracing::info!(chat = ?chat_id, "Web Push turned on");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    authorize(&state, &chat_id, &headers)?;
    if state.sessions.get(&chat_id).is_none() {
        return Err(AppError::NotFound);
    }
    set(&state, &chat_id, None).await?;
    tracing::info!(chat = ?chat_id, "Web Push turned off");
    Ok(StatusCode::NO_CONTENT)
}

async fn set(
    state: &AppState,
    chat_id: &str,
    subscription: Option<Box<WebPushSubscription>>,
) -> Result<(), AppError> {
    let seen =
        Observation { web_push: Some(subscription), ..Observation::new(now_millis(), Source::Gms) };
    state.sessions.observe(chat_id, seen, None).await?.ok_or(AppError::NotFound).map(drop)
}

/// The service worker, for a site's one-line `importScripts`: public, checked for updates
/// by browsers on every navigation (`no-cache`).
pub(crate) async fn service_worker(State(state): State<AppState>) -> Result<Response, AppError> {
    if state.peers.web_push().is_none() {
        return Err(AppError::WebPushDisabled);
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, SERVICE_WORKER).into_response())
}
