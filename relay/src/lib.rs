//! The relay: GMS customhttp push receiver and WebSocket fan-out for the async chat widget.
//!
//! `app` builds the router from shared state; `run` serves it on a bound listener until
//! the shutdown future resolves. `main.rs` only wires logging, configuration and binding,
//! so tests run the real relay on port 0 in-process.

mod config;
mod routes;
pub mod telemetry;

use std::future::Future;

use axum::Router;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the relay started with.
    pub config: std::sync::Arc<Config>,
    /// Cancelled when the relay shuts down: readiness fails and tasks stop.
    pub shutdown: CancellationToken,
}

/// The relay's router.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves the relay on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let state = AppState { config: std::sync::Arc::new(config), shutdown: token.clone() };
    tracing::info!(listen = %listener.local_addr()?, "relay listening");
    let drained = token.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Readiness fails at once; open requests finish.
            drained.cancel();
        })
        .await?;
    tracing::info!("relay stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
