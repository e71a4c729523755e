//! `GET /v1/sessions/{chatId}/capture`: the first push body the relay kept for a chat that
//! `relay check --capture` registered, redacted; authenticated like `DELETE`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use shared::relay_api::CapturedPush;

use crate::AppState;
use crate::error::AppError;

pub(crate) async fn captured(
    State(state): State<AppState>,
    Path(chat_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    super::sessions::authorize(&state, &chat_id, &headers)?;
    // 404 before the first push, and always for a chat registered without `capture`.
    let push = state.captures.get(&chat_id).await.ok_or(AppError::NotFound)?;
    let mut response = Json(CapturedPush { push }).into_response();
    // One chat's body, for its token holder only: no cache keeps it.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
