//! Resume links: `POST`/`DELETE /v1/sessions/{chatId}/resume-links` make one, or revoke
//! them all (the subscription token authorises both), and `POST /v1/resume` hands the chat
//! a token stands for to whoever follows the link, on any device.
//!
//! Every claim that leads to no chat gets the same 404, whatever was wrong, and its mac is
//! checked (in constant time) whether or not the chat exists, so neither the answer nor its
//! time tells which chats exist or which part of a token was wrong.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use shared::relay_api::{ChatHandover, ResumeClaim, ResumeLink};

use super::sessions::{authorize, handover};
use crate::AppState;
use crate::error::AppError;
use crate::store::{ChatRecord, Observation, Source, now_millis};
use crate::telemetry::count_resume;
use crate::token::ResumeToken;

pub(crate) async fn make(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ResumeLink>, AppError> {
    authorize(&state, &chat_id, &headers)?;
    // As stored now: another relay may have revoked the links a moment ago.
    let record = state.sessions.current(&chat_id).await?.ok_or(AppError::NotFound)?;
    let resume_token = state.tokens.resume_token(&chat_id, record.resume_epoch);
    count_resume("made");
    Ok(Json(ResumeLink { resume_token }))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    authorize(&state, &chat_id, &headers)?;
    let seen = Observation { revoke_resume: true, ..Observation::new(now_millis(), Source::Gms) };
    state.sessions.observe(&chat_id, seen, None).await?.ok_or(AppError::NotFound)?;
    count_resume("revoked");
    tracing::info!(chat = ?chat_id, "resume links revoked");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn claim(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<ResumeClaim>, JsonRejection>,
) -> Result<Json<ChatHandover>, AppError> {
    state.limits.resume(state.limits.client(peer, &headers))?;
    let Json(claim) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let Some(record) = claimed(&state, &claim.resume_token).await? else {
        count_resume("refused");
        return Err(AppError::ResumeRefused);
    };
    count_resume("claimed");
    tracing::info!(chat = ?record.credentials.chat_id, "chat handed over by a resume link");
    Ok(Json(handover(&state, &record)))
}

/// The chat `token` stands for, when it is well formed, its chat is stored and its mac
/// verifies under the chat's resume epoch as stored now.
async fn claimed(state: &AppState, token: &str) -> Result<Option<ChatRecord>, AppError> {
    let Some(token) = ResumeToken::parse(token.trim()) else { return Ok(None) };
    let record = state.sessions.current(token.chat_id).await?;
    let epoch = record.as_ref().map_or(0, |record| record.resume_epoch);
    let genuine = state.tokens.resume_verifies(&token, epoch);
    Ok(record.filter(|_| genuine))
}
