//! `POST /v1/sessions` and `DELETE /v1/sessions/{chatId}`: the widget hands over a chat's
//! tokens, validated with one GMS ping, and gets a subscription token back. A registration
//! naming an identity that verifies keeps the chat under it, and GMS is told the verified
//! user once, when the chat becomes theirs.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use shared::gms::Credentials;
use shared::relay_api::{ChatHandover, IdentityVerdict, RegisterSession, SessionRegistered};

use super::identity::verdict;
use crate::AppState;
use crate::error::AppError;
use crate::gms::PingResult;
use crate::otlp::{Kind, Span};
use crate::store::{ChatRecord, Observation, Source, now_millis};
use crate::telemetry::count_identity;

/// The user data key that tells GMS (and the agent) the site vouched for the visitor.
const VERIFIED_USER_ID: &str = "verifiedUserId";

pub(crate) async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RegisterSession>, JsonRejection>,
) -> Result<Json<SessionRegistered>, AppError> {
    let mut span = state.tracer.span("register", Kind::Server);
    let registered = registration(&state, peer, &headers, body, &mut span).await;
    span.attr("register.result", registered.as_ref().map_or_else(AppError::code, |_| "ok"));
    if let Err(error) = &registered {
        span.fail(error.code());
    }
    registered
}

async fn registration(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Result<Json<RegisterSession>, JsonRejection>,
    span: &mut Span,
) -> Result<Json<SessionRegistered>, AppError> {
    // Before anything else: every registration costs GMS a request.
    state.limits.register(state.limits.client(peer, headers))?;
    let Json(request) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    // Both become segments of GMS URLs: checked before GMS hears of them.
    checked_id("service", &request.service)?;
    checked_id("chatId", &request.chat_id)?;
    // In proxy mode a browser holds no GMS token: the chat's subscription token says it is
    // the chat's browser, and the tokens the relay holds are checked with GMS instead.
    let held = match (state.config.proxy.enabled, request.secure_key.is_empty()) {
        (true, true) => {
            match super::proxy::held(state, &request.service, &request.chat_id, headers).await? {
                super::proxy::Held::Chat(record) => Some(record.credentials),
                super::proxy::Held::Forgotten => {
                    return Err(AppError::RejectedByGms("the chat has ended".to_owned()));
                }
            }
        }
        _ => None,
    };
    // userId and alias may be missing: GMS 8.5.112 and later need not hand them out.
    let tokens = [&request.user_id, &request.secure_key, &request.alias];
    if held.is_none()
        && (request.secure_key.trim().is_empty() || tokens.iter().any(|t| t.len() > 256))
    {
        return Err(AppError::BadRequest(
            "service, chatId and secureKey are required (userId and alias when GMS gave them), \
             each at most 256 bytes"
                .to_owned(),
        ));
    }
    span.chat(&request.chat_id);
    let (identity, user_hash) = match request.identity.as_ref() {
        Some(identity) => {
            let (verdict, hash) = verdict(state, identity);
            (Some(verdict), hash)
        }
        None => (None, None),
    };
    let credentials = held.unwrap_or_else(|| Credentials {
        chat_id: request.chat_id.clone(),
        user_id: request.user_id.clone(),
        secure_key: request.secure_key.clone(),
        alias: request.alias.clone(),
    });
    let asked_at = now_millis();
    let mut validate = span.child("register.validate", Kind::Client);
    let validated = state.gms.validate(&request.service, &credentials).await;
    let answer = match &validated {
        PingResult::Ok(response) if response.chat_ended == Some(true) => "ended",
        PingResult::Ok(_) => "ok",
        PingResult::Stopped(_) => "refused",
        PingResult::Failed(_) => "failed",
    };
    validate.attr("gms.result", answer);
    drop(validate);
    let response = match validated {
        PingResult::Ok(response) if response.chat_ended == Some(true) => {
            return Err(AppError::RejectedByGms("the chat has ended".to_owned()));
        }
        PingResult::Ok(response) => response,
        PingResult::Stopped(response) => {
            return Err(AppError::RejectedByGms(format!(
                "GMS refused the tokens: {}",
                response.error_summary()
            )));
        }
        PingResult::Failed(error) => return Err(AppError::GmsUnreachable(error)),
    };
    // Whose the chat was, to tell GMS only when it becomes the identity's.
    let held_by = match &user_hash {
        Some(_) => state.sessions.current(&request.chat_id).await?.and_then(|r| r.user_hash),
        None => None,
    };
    let seen = Observation {
        service: Some(request.service.clone()),
        user_id: Some(credentials.user_id),
        secure_key: Some(credentials.secure_key),
        alias: Some(response.alias.clone().unwrap_or(credentials.alias)),
        device_id: request.device_id.clone(),
        position: Some(response.next_position.unwrap_or(0)),
        // The widget learns the position from its `subscribed` answer and catches up.
        announced: response.next_position,
        registration: true,
        capture: request.capture,
        user_hash: user_hash.as_ref().map(|hash| hash.as_str().to_owned()),
        ..Observation::new(asked_at, Source::Gms)
    };
    let mut store = span.child("register.store", Kind::Internal);
    let record = state
        .sessions
        .observe(&request.chat_id, seen, Some(&request.service))
        .await
        .inspect_err(|_| store.fail("store_unavailable"))?
        .ok_or_else(|| AppError::BadRequest("the chat could not be stored".to_owned()))?;
    drop(store);
    let verified = user_hash.is_some();
    tracing::info!(chat = ?request.chat_id, alias = ?record.credentials.alias, verified, "chat registered");
    if let (Some(hash), Some(identity)) = (&user_hash, &request.identity)
        && held_by.as_deref() != Some(hash.as_str())
    {
        tell_verified_user(state, &record, &identity.user_id);
    }
    let identity = identity.inspect(|verdict| {
        count_identity(match verdict {
            IdentityVerdict::Verified => "verified",
            IdentityVerdict::Refused => "refused",
            IdentityVerdict::Unconfigured => "unconfigured",
        });
    });
    Ok(Json(SessionRegistered {
        token: state.tokens.sign(&request.chat_id),
        position: record.position,
        vapid_public_key: state.peers.web_push().map(|w| w.public_key().to_owned()),
        identity,
    }))
}

/// Tells GMS, with one `updateData` (retried as any GMS request), that the chat's visitor
/// is the site's verified user, so the agent sees who they talk to. In the background: the
/// registration neither waits for it nor fails with it, and a failure is only logged
/// (without the user id, which is the site's, nor any token).
fn tell_verified_user(state: &AppState, record: &ChatRecord, user_id: &str) {
    let (gms, stop) = (state.gms.clone(), state.shutdown.clone());
    let (service, credentials) = (record.service.clone(), record.credentials.clone());
    let user_data = vec![(VERIFIED_USER_ID.to_owned(), user_id.to_owned())];
    state.tasks.spawn(async move {
        let chat = &credentials.chat_id;
        let told = tokio::select! {
            () = stop.cancelled() => return,
            told = gms.update_data(&service, &credentials, user_data) => told,
        };
        match told {
            PingResult::Ok(_) => tracing::info!(chat = ?chat, "GMS told the chat's verified user"),
            PingResult::Stopped(response) => tracing::warn!(
                chat = ?chat,
                error = ?response.error_summary(),
                "GMS refused the chat's verified user"
            ),
            PingResult::Failed(error) => tracing::warn!(
                chat = ?chat,
                error = ?error,
                "GMS could not be told the chat's verified user"
            ),
        }
    });
}

/// A chat handed to a browser that proved its right to it: its tokens as the relay holds
/// them (none in proxy mode), a subscription token, and the position the relay knows.
pub(super) fn handover(state: &AppState, record: &ChatRecord) -> ChatHandover {
    let credentials = if state.config.proxy.enabled {
        // In proxy mode no GMS token leaves the relay: the browser reaches the chat
        // through it, with the subscription token.
        Credentials::id_only(&record.credentials.chat_id)
    } else {
        record.credentials.clone()
    };
    ChatHandover {
        service: record.service.clone(),
        credentials,
        token: state.tokens.sign(&record.credentials.chat_id),
        position: record.position,
    }
}

pub(crate) async fn forget(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    authorize(&state, &chat_id, &headers)?;
    if let Some(web_push) = state.peers.web_push() {
        web_push.forget(&chat_id);
    }
    if state.sessions.remove(&chat_id).await? {
        tracing::info!(chat = ?chat_id, "chat forgotten on request");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
}

/// Checks `Authorization: Bearer <subscription token>` for the chat (never a URL
/// parameter, so tokens stay out of access logs).
pub(super) fn authorize(
    state: &AppState,
    chat_id: &str,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    checked_id("chatId", chat_id)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::BadToken)?;
    if state.tokens.verify(chat_id, token) { Ok(()) } else { Err(AppError::BadToken) }
}

/// A service name or chat id from outside, refused unless it has GMS's id alphabet.
pub(crate) fn checked_id(what: &str, id: &str) -> Result<(), AppError> {
    if shared::gms::is_gms_id(id) {
        return Ok(());
    }
    Err(AppError::BadRequest(format!(
        "{what} must be 1 to {} letters, digits, '-' or '_'",
        shared::gms::MAX_ID_LEN
    )))
}
