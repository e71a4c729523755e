//! `/healthz` (alive), `/readyz` (accepts work: not shutting down, store writer running,
//! GMS reachable) and `/metrics` (Prometheus).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::AppState;
use crate::error::AppError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz)).route(
        "/metrics",
        get(|State(state): State<AppState>| async move { state.metrics.render() }),
    )
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    if state.shutdown.is_cancelled() {
        return Err(AppError::NotReady("shutting down"));
    }
    if !state.sessions.writer_alive() {
        return Err(AppError::NotReady("the session store writer stopped"));
    }
    let gms = state.gms.authority().ok_or(AppError::NotReady("the GMS URL has no host"))?;
    match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(&gms)).await {
        Ok(Ok(_)) => Ok("ready"),
        _ => Err(AppError::NotReady("GMS is not reachable")),
    }
}
