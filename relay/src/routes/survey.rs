//! `POST /v1/sessions/{chatId}/survey`: the visitor's rating of a chat that ended before
//! they rated, for the operator's `--survey-webhook`; authenticated like `DELETE`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use shared::relay_api::SurveyAnswer;

use crate::AppState;
use crate::error::AppError;

pub(crate) async fn rate(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SurveyAnswer>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, AppError> {
    super::sessions::authorize(&state, &chat_id, &headers)?;
    let webhook = state.survey.as_ref().ok_or(AppError::NotFound)?;
    let Json(answer) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if !answer.is_valid() {
        return Err(AppError::BadRequest(format!(
            "a rating is 1 to 5 stars or 0 to 1 thumbs, with at most {} characters of comment",
            SurveyAnswer::COMMENT_LIMIT
        )));
    }
    // Only a rating that reads spends the chat's allowance.
    state.limits.rating(&chat_id)?;
    // The chat may be forgotten already (it ended): its service only while the relay holds it.
    let service = state.sessions.get(&chat_id).map(|record| record.service);
    webhook
        .offer(&chat_id, service.as_deref(), &answer)
        .map_err(|_| AppError::NotReady("the survey webhook is not keeping up"))?;
    Ok(StatusCode::ACCEPTED)
}
