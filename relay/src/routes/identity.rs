//! `POST /v1/identity`: a visitor logged in on another device takes over the chat running
//! under their verified identity (the site's user hash), the newest registered.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use shared::relay_api::{Identity, IdentityVerdict};

use super::sessions::handover;
use crate::AppState;
use crate::error::AppError;
use crate::identity::UserHash;
use crate::store::ChatRecord;
use crate::telemetry::count_identity;

pub(crate) async fn take_over(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<Identity>, JsonRejection>,
) -> Result<Response, AppError> {
    state.limits.identity(state.limits.client(peer, &headers))?;
    if state.identity.is_none() {
        count_identity("unconfigured");
        return Err(AppError::IdentityUnconfigured);
    }
    let Json(identity) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let (_, Some(hash)) = verdict(&state, &identity) else {
        count_identity("refused");
        return Err(AppError::IdentityRefused);
    };
    let Some(record) = running_chat(&state, &hash).await? else {
        count_identity("none");
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    count_identity("handed_over");
    tracing::info!(chat = ?record.credentials.chat_id, "chat handed over to its verified identity");
    Ok(Json(handover(&state, &record)).into_response())
}

/// What the relay makes of an identity, and its hash when it verified.
pub(super) fn verdict(
    state: &AppState,
    identity: &Identity,
) -> (IdentityVerdict, Option<UserHash>) {
    let Some(verifier) = &state.identity else { return (IdentityVerdict::Unconfigured, None) };
    match verifier.verify(&identity.user_id, &identity.user_hash) {
        Some(hash) => (IdentityVerdict::Verified, Some(hash)),
        None => (IdentityVerdict::Refused, None),
    }
}

/// The identity's newest chat that still runs under it, as stored now (memory's index may
/// name a chat another relay has since forgotten or given another identity).
async fn running_chat(state: &AppState, hash: &UserHash) -> Result<Option<ChatRecord>, AppError> {
    for chat_id in state.sessions.of_identity(hash.as_str()) {
        let Some(record) = state.sessions.current(&chat_id).await? else { continue };
        if record.user_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Some(record));
        }
    }
    Ok(None)
}
