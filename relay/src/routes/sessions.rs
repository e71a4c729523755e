//! `POST /v1/sessions` and `DELETE /v1/sessions/{chatId}`: the widget hands over a chat's
//! tokens, validated with one GMS ping, and gets a subscription token back.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use shared::gms::Credentials;
use shared::relay_api::{RegisterSession, SessionRegistered};

use crate::AppState;
use crate::error::AppError;
use crate::gms::PingResult;
use crate::store::ChatRecord;

pub(crate) async fn register(
    State(state): State<AppState>,
    body: Result<Json<RegisterSession>, JsonRejection>,
) -> Result<Json<SessionRegistered>, AppError> {
    let Json(request) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let fields =
        [&request.service, &request.chat_id, &request.user_id, &request.secure_key, &request.alias];
    if fields.iter().any(|f| f.trim().is_empty() || f.len() > 256) {
        return Err(AppError::BadRequest(
            "service, chatId, userId, secureKey and alias are required".to_owned(),
        ));
    }
    let credentials = Credentials {
        chat_id: request.chat_id.clone(),
        user_id: request.user_id.clone(),
        secure_key: request.secure_key.clone(),
        alias: request.alias.clone(),
    };
    let response = match state.gms.ping(&request.service, &credentials).await {
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
    let alias = response.alias.clone().unwrap_or_else(|| request.alias.clone());
    let position = response.next_position.unwrap_or(0);
    let fresh = ChatRecord {
        service: request.service.clone(),
        credentials: Credentials { alias: alias.clone(), ..credentials },
        device_id: request.device_id.clone(),
        position,
    };
    let record = state
        .sessions
        .update(
            &request.chat_id,
            || Some(fresh.clone()),
            |r| {
                let before = r.clone();
                r.service.clone_from(&fresh.service);
                r.credentials.clone_from(&fresh.credentials);
                if fresh.device_id.is_some() {
                    r.device_id.clone_from(&fresh.device_id);
                }
                r.position = r.position.max(position);
                *r != before
            },
        )
        .await?;
    let position = record.map_or(position, |r| r.position);
    tracing::info!(chat = %request.chat_id, alias = %alias, "chat registered");
    Ok(Json(SessionRegistered { token: state.tokens.sign(&request.chat_id), position }))
}

pub(crate) async fn forget(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::BadToken)?;
    if !state.tokens.verify(&chat_id, token) {
        return Err(AppError::BadToken);
    }
    if state.sessions.remove(&chat_id).await? {
        tracing::info!(chat = %chat_id, "chat forgotten on request");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
}
