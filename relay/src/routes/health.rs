//! `/healthz` (alive), `/readyz` (accepts work: not shutting down, store writer running,
//! GMS reachable), `/status` (this node's chats, connections and restorations, as JSON) and
//! `/metrics` (Prometheus).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use shared::relay_api::RelayStatus;

use crate::AppState;
use crate::error::AppError;

/// `/healthz` and `/readyz`, which load balancers and Kubernetes ask on the public address.
pub(super) fn probes() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz))
}

/// `/metrics` and `/status`: on the public listener, or only on `--admin-listen`.
pub(super) fn admin() -> Router<AppState> {
    Router::new().route("/status", get(status)).route(
        "/metrics",
        get(|State(state): State<AppState>| async move { state.metrics.render() }),
    )
}

/// This relay's own view, as JSON: what `/metrics` cannot say per node (counts only,
/// nothing secret).
async fn status(State(state): State<AppState>) -> Json<RelayStatus> {
    Json(RelayStatus {
        node: state.config.node().to_owned(),
        chats: state.sessions.len(),
        connections: state.peers.hub().connections(),
        restorations: state.restorer.progress(),
        pushes_missed: state.acker.pushes_missed(),
    })
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    if state.shutdown.is_cancelled() {
        return Err(AppError::NotReady("shutting down"));
    }
    if !state.sessions.writer_alive() {
        return Err(AppError::NotReady("the session store writer stopped"));
    }
    if !state.peers.ready() {
        return Err(AppError::NotReady("Redis is not reachable"));
    }
    if state.gms.reachable().await {
        Ok("ready")
    } else {
        Err(AppError::NotReady("GMS is not reachable"))
    }
}
