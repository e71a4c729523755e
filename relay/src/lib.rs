//! The relay: GMS customhttp push receiver and WebSocket fan-out for the async chat widget.
//!
//! `app` builds the router from shared state; `run` serves it on a bound listener until
//! the shutdown future resolves, then drains. `main.rs` only wires logging, configuration
//! and binding, so tests run the real relay on port 0 in-process.

pub mod acker;
mod config;
mod error;
pub mod gms;
pub mod hub;
mod pinger;
pub mod restorer;
mod routes;
pub mod sessions;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod watcher;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{ChatServer, Cidr, Config};

/// How long in-flight acknowledgements may take once shutdown starts.
const DRAIN: Duration = Duration::from_secs(20);

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the relay started with.
    pub config: Arc<Config>,
    /// Cancelled when the relay shuts down: readiness fails, sockets close, tasks stop.
    pub shutdown: CancellationToken,
    /// The chats and their tokens.
    pub sessions: sessions::Sessions,
    /// The browsers' subscriptions.
    pub hub: hub::Hub,
    /// Acknowledgements and pings.
    pub acker: acker::Acker,
    /// Chat Server HA.
    pub restorer: restorer::Restorer,
    /// The GMS client.
    pub gms: gms::Gms,
    /// Subscription tokens.
    pub tokens: token::Tokens,
    /// The Prometheus registry.
    pub metrics: PrometheusHandle,
}

/// The relay's router.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// The process-wide Prometheus recorder (the `metrics` macros have one global recorder,
/// so relays started in one test process share it).
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    // Initialised once, under the OnceLock's own lock, so relays starting concurrently in
    // one process never race to install the recorder.
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))
}

/// Serves the relay on `listener` until `shutdown` resolves, then drains: readiness fails
/// at once, sockets close with a reconnect code, in-flight acknowledgements finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let backend = store::RedbBackend::open(&config.data_dir)?;
    let sessions = sessions::Sessions::start(Arc::new(backend), token.child_token())?;
    let tokens = token::Tokens::load(config.token_secret.as_deref(), &config.data_dir)?;
    let gms = gms::Gms::new(&config.gms_url, config.gms_timeout)?;
    let hub = hub::Hub::default();
    let deps = acker::Deps { gms: gms.clone(), sessions: sessions.clone(), hub: hub.clone() };
    let acker = acker::Acker::start(deps, config.gms_concurrency, token.clone(), tracker.clone());
    let settings = restorer::Settings {
        advice_delay: config.shutdown_advice_delay,
        rate: config.restore_rate,
        deadline: config.restore_deadline,
    };
    let restorer =
        restorer::Restorer::new(acker.clone(), sessions.clone(), settings, token.clone());
    for server in &config.chat_servers {
        let watch = watcher::run(
            server.clone(),
            config.health_interval,
            config.health_failures,
            restorer.clone(),
            token.clone(),
        );
        tokio::spawn(watch);
    }
    if config.push_secret.is_none() {
        tracing::warn!("no --push-secret: pushes are accepted without authentication");
    }
    tokio::spawn(pinger::run(
        sessions.clone(),
        acker.clone(),
        config.ping_interval,
        config.ping_rate,
        token.clone(),
    ));

    let state = AppState {
        config: Arc::new(config),
        shutdown: token.clone(),
        sessions,
        hub,
        acker,
        restorer,
        gms,
        tokens,
        metrics: metrics_handle()?,
    };
    tracing::info!(listen = %listener.local_addr()?, "relay listening");
    let stop = token.clone();
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            stop.cancel();
        })
        .await?;
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("acknowledgements still in flight after {DRAIN:?}; exiting anyway");
    }
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
