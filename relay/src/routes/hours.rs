//! `GET /v1/hours/{service}`: whether a chat service's office is open now, and when it
//! opens next; asked by the widget when the visitor opens it before a chat.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::hours::Verdict;

/// Seconds a verdict stands in the browser's cache at most.
const MAX_AGE: u64 = 30;

pub(crate) async fn office_hours(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Response {
    match state.hours.verdict(&service, &state.gms).await {
        // Nothing to say (the widget shows nothing), and no failed request in the page's
        // console on every open of a site whose relay has no --office-hours; GMS's silence
        // is logged once by `hours` and counted in relay_gms_requests_total.
        Verdict::Unknown | Verdict::Unanswered => StatusCode::NO_CONTENT.into_response(),
        Verdict::Known(hours) => {
            // A verdict stands for half a minute (a closing shows that late at most), a
            // closed one not past the opening, which the widget asks about again.
            let now = crate::store::now_millis();
            let until_open = hours.next_open.map(|at| at.saturating_sub(now) / 1000);
            let seconds = until_open.unwrap_or(MAX_AGE).min(MAX_AGE);
            let mut response = Json(hours).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("max-age={seconds}")) {
                response.headers_mut().insert(header::CACHE_CONTROL, value);
            }
            response
        }
    }
}
