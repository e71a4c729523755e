//! `/healthz` (alive), `/readyz` (accepts work: not shutting down, store writer running,
//! GMS reachable) and `/metrics` (Prometheus).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz)).route(
        "/metrics",
        get(|State(state): State<AppState>| async move { state.metrics.render() }),
    )
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned());
    }
    if !state.sessions.writer_alive() {
        return (StatusCode::SERVICE_UNAVAILABLE, "session store writer stopped".to_owned());
    }
    let Some(gms) = state.gms.authority() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "GMS URL has no host".to_owned());
    };
    match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(&gms)).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready".to_owned()),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "GMS is not reachable".to_owned()),
    }
}
