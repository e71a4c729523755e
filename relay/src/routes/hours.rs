//! `GET /v1/hours/{service}`: whether a chat service's office is open now, and when it
//! opens next; asked by the widget when the visitor opens it before a chat.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::AppError;
use crate::hours::Verdict;

pub(crate) async fn office_hours(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Response, AppError> {
    match state.hours.verdict(&service, &state.gms).await {
        // Nothing to say (the widget shows nothing), and no failed request in the page's
        // console on every open of a site whose relay has no --office-hours.
        Verdict::Unknown => Ok(StatusCode::NO_CONTENT.into_response()),
        Verdict::Unanswered(why) => Err(AppError::GmsUnreachable(why)),
        Verdict::Known(hours) => {
            let mut response = Json(hours).into_response();
            // A verdict stands for a moment, not past the next opening or closing.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=30"));
            Ok(response)
        }
    }
}
