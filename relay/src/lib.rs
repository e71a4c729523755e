//! The relay: GMS customhttp push receiver and WebSocket fan-out for the async chat widget.
//!
//! `app` builds the router from shared state; `run` serves it on a bound listener until
//! the shutdown future resolves, then drains. `main.rs` only wires logging, configuration
//! and binding, so tests run the real relay on port 0 in-process.

mod acker;
mod capture;
pub mod check;
mod config;
mod error;
mod ewt;
mod gms;
mod hours;
mod identity;
mod limits;
mod otlp;
mod peers;
mod pinger;
mod restorer;
mod routes;
mod sessions;
pub mod store;
mod survey;
pub mod telemetry;
mod token;
mod watcher;
mod web_push;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{ChatServer, Cidr, Config, EwtQueue, IdentitySecret, RedisSeeds, RedisUrl};

/// How long open sockets get to receive their close frame once shutdown starts.
const SOCKETS_CLOSE: Duration = Duration::from_secs(5);
/// How long in-flight acknowledgements may take once the HTTP side has stopped.
const DRAIN: Duration = Duration::from_secs(20);

/// What every handler shares: one pointer, so a request's clone is one increment and an
/// idle WebSocket's task holds 8 bytes of it instead of every handle's own.
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The handles behind [`AppState`].
pub(crate) struct AppStateInner {
    /// The configuration the relay started with.
    pub(crate) config: Arc<Config>,
    /// Cancelled when the relay shuts down: readiness fails, sockets close, tasks stop.
    pub(crate) shutdown: CancellationToken,
    /// Every WebSocket's task, so shutdown can wait for their close frames.
    pub(crate) sockets: TaskTracker,
    /// The relay's long-lived and background tasks (a request's follow-up, such as telling
    /// GMS a chat's verified user), stopped by `shutdown`.
    pub(crate) tasks: TaskTracker,
    /// The chats and their tokens.
    pub(crate) sessions: sessions::Sessions,
    /// Who else hears of a chat: this relay's browsers, the other relays, Web Push.
    pub(crate) peers: peers::Peers,
    /// Acknowledgements and pings.
    pub(crate) acker: acker::Acker,
    /// Chat Server HA.
    pub(crate) restorer: restorer::Restorer,
    /// The GMS client.
    pub(crate) gms: gms::Gms,
    /// Subscription and resume tokens.
    pub(crate) tokens: token::Tokens,
    /// Each chat service's office hours (`--office-hours`).
    pub(crate) hours: hours::Hours,
    /// Where ratings of ended chats go (`--survey-webhook`); None without one.
    pub(crate) survey: Option<survey::Webhook>,
    /// Verifies the site's user hashes; None without `--identity-secret`.
    pub(crate) identity: Option<identity::Verifier>,
    /// Per-client-address limits of the public endpoints.
    pub(crate) limits: limits::Limits,
    /// The Prometheus registry.
    pub(crate) metrics: PrometheusHandle,
    /// First push bodies kept for `relay check --capture`.
    pub(crate) captures: capture::Captures,
    /// Spans for `--otlp-endpoint` (off without it).
    pub(crate) tracer: otlp::Tracer,
}

/// The relay's router.
pub(crate) fn app(state: AppState) -> Router {
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

/// Serves the relay on `listener` until `shutdown` resolves, then shuts down in order:
/// readiness fails and no connection is accepted, every socket is closed with a reconnect
/// code, requests in flight finish, acknowledgements drain, the store writer flushes.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = config.with_node_id();
    let backend: Arc<dyn store::Backend> = match redis_of(&config)? {
        Some((client, keys)) => {
            let node = config.node().to_owned();
            Arc::new(
                tokio::task::spawn_blocking(move || {
                    store::redis::RedisBackend::open(client, keys, node)
                })
                .await??,
            )
        }
        None => Arc::new(store::RedbBackend::open(&config.data_dir)?),
    };
    run_with_store(listener, config, backend, shutdown).await
}

/// The Redis client and key names, when the relays share Redis.
fn redis_of(
    config: &Config,
) -> anyhow::Result<Option<(store::redis::Topology, store::redis::Keys)>> {
    let topology = match (&config.redis_url, &config.redis_cluster) {
        (Some(url), _) => store::redis::Topology::from_url(&url.0),
        (None, Some(seeds)) => store::redis::Topology::cluster(&seeds.0),
        (None, None) => return Ok(None),
    }
    .map_err(anyhow::Error::msg)?;
    let topology = topology.waiting(config.redis_wait_replicas);
    Ok(Some((topology, store::redis::Keys::new(&config.redis_prefix))))
}

/// `run` with another store (the tests use one that fails on demand).
pub async fn run_with_store(
    listener: tokio::net::TcpListener,
    config: Config,
    backend: Arc<dyn store::Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let life = Lifecycle::new();
    let (state, last) = start(config.with_node_id(), backend, &life).await?;
    tracing::info!(listen = %listener.local_addr()?, "relay listening");
    if let Some(address) = state.config.admin_listen {
        let admin = tokio::net::TcpListener::bind(address).await?;
        tracing::info!(listen = %admin.local_addr()?, "monitoring endpoints listening");
        let router = routes::admin_router(state.clone());
        let stop = life.token.clone();
        life.tasks.spawn(async move {
            let served = axum::serve(admin, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the monitoring listener failed");
            }
        });
    }
    let stop = life.token.clone();
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            stop.cancel();
        })
        .await?;
    life.drain(last).await;
    tracing::info!("relay stopped");
    Ok(())
}

/// What a relay owns for its shutdown: its tasks in three groups, stopped in order (the
/// HTTP side and everything else, then the acknowledgements, then the store writer), and
/// the guards that cancel all of it however `run` returns, early on an error too.
struct Lifecycle {
    /// Cancelled when the relay shuts down: readiness fails, sockets close, tasks stop.
    token: CancellationToken,
    ack_stop: CancellationToken,
    store_stop: CancellationToken,
    tasks: TaskTracker,
    acks: TaskTracker,
    sockets: TaskTracker,
    _guards: [tokio_util::sync::DropGuard; 3],
}

impl Lifecycle {
    fn new() -> Lifecycle {
        let (token, ack_stop, store_stop) =
            (CancellationToken::new(), CancellationToken::new(), CancellationToken::new());
        let guards = [token.clone(), ack_stop.clone(), store_stop.clone()]
            .map(CancellationToken::drop_guard);
        Lifecycle {
            token,
            ack_stop,
            store_stop,
            tasks: TaskTracker::new(),
            acks: TaskTracker::new(),
            sockets: TaskTracker::new(),
            _guards: guards,
        }
    }

    /// Once the HTTP side has stopped: sockets get their close frames, tasks stop, the
    /// acknowledgements queued drain, the store writer flushes, then the span exporter.
    async fn drain(self, last: Last) {
        // Upgraded sockets outlive the server's own drain: wait for their close frames.
        stop_and_wait("sockets", &self.sockets, SOCKETS_CLOSE).await;
        stop_and_wait("tasks", &self.tasks, SOCKETS_CLOSE).await;
        // No request is in flight any more: nothing new is queued for acknowledgement.
        self.ack_stop.cancel();
        stop_and_wait("acknowledgements", &self.acks, DRAIN).await;
        self.store_stop.cancel();
        if last.writer.await.is_err() {
            tracing::error!("the session store writer failed while flushing");
        }
        // It stops with the store writer and flushes within its own allowance.
        if let Some(exporter) = last.exporter
            && exporter.await.is_err()
        {
            tracing::error!("the span exporter failed while flushing");
        }
    }
}

/// The tasks that stop last, on `store_stop`: the store writer, and the span exporter,
/// which exports the spans of the acknowledgements drained before.
struct Last {
    writer: tokio::task::JoinHandle<()>,
    exporter: Option<tokio::task::JoinHandle<()>>,
}

/// Builds the relay's parts and starts their tasks under `life`; answers what the
/// handlers share and the tasks that stop last.
async fn start(
    config: Config,
    backend: Arc<dyn store::Backend>,
    life: &Lifecycle,
) -> anyhow::Result<(AppState, Last)> {
    let Lifecycle { token, tasks, .. } = life;
    let metrics = metrics_handle()?;
    telemetry::describe_metrics();
    let (tracer, exporter) = otlp::Tracer::start(&config, life.store_stop.clone())?;
    let (sessions, writer) = sessions::Sessions::start(backend, life.store_stop.clone())?;
    let redis = redis_of(&config)?;
    let tokens = subscription_tokens(&config, redis.as_ref()).await?;
    let web_push_settings = web_push_settings(&config, redis.as_ref()).await?;
    let gms = gms::Gms::new(
        &config.gms_url,
        &config.gms_headers.headers,
        config.gms_timeout,
        config.gms_concurrency,
    )?;
    let limits = limits::Limits::new(&config);
    let node = config.node();
    let peers = match redis {
        Some((client, keys)) => {
            let peers =
                peers::Peers::on_redis(client, keys, node, sessions.clone(), token.clone(), tasks)
                    .await?;
            // The first load ran before the changes channel was followed: what other relays
            // committed in between would be missing from memory until changed again (a chat
            // this relay would then never restore). Now that changes are followed, read again.
            sessions.reload().await?;
            peers
        }
        None => peers::Peers::alone(),
    };
    tracing::info!(node, redis = peers.shared(), "relay starting");
    if let Some(settings) = web_push_settings {
        let deps = web_push::Deps {
            sessions: sessions.clone(),
            peers: peers.untapped(),
            gms: gms.clone(),
            tokens: tokens.clone(),
        };
        peers.tap(web_push::WebPush::start(settings, deps, token.clone(), tasks)?);
    }
    let captures = capture::Captures::new(peers.clone(), tasks.clone());
    let deps = acker::Deps {
        gms: gms.clone(),
        sessions: sessions.clone(),
        peers: peers.clone(),
        refusal_apart: config.gms_refusal_apart,
        missed: Arc::default(),
        missed_after: config.push_missed_after,
    };
    let acker =
        acker::Acker::start(deps, config.gms_concurrency, life.ack_stop.clone(), DRAIN, &life.acks);
    let settings = restorer::Settings {
        advice_delay: config.shutdown_advice_delay,
        rate: config.restore_rate,
        deadline: config.restore_deadline,
    };
    let restorer = restorer::Restorer::new(
        acker.clone(),
        sessions.clone(),
        settings,
        token.clone(),
        tasks.clone(),
        peers.clone(),
        tracer.clone(),
    );
    if !config.chat_servers.is_empty() {
        // With several relays exactly one watches the Chat Servers: the lease holder.
        let lease = peers.lease(token.clone(), tasks);
        for server in &config.chat_servers {
            tasks.spawn(watcher::run(
                server.clone(),
                watcher::Settings::new(&config),
                restorer.clone(),
                sessions.clone(),
                lease.clone(),
                token.clone(),
            ));
        }
    }
    if config.push_secret().is_none() {
        tasks.spawn(warn_insecure_pushes(token.clone()));
    }
    tasks.spawn(forget_idle_clients(limits.clone(), token.clone()));
    tasks.spawn(ewt::run(
        config.ewt_queues.clone(),
        (config.ewt_api, config.ewt_every, config.ewt_notify_minutes),
        (sessions.clone(), peers.clone(), gms.clone()),
        token.clone(),
    ));
    tasks.spawn(peers::heartbeat(peers.hub().clone(), config.ws_ping, token.clone()));
    tasks.spawn(pinger::run(
        sessions.clone(),
        acker.clone(),
        peers.clone(),
        config.ping_interval,
        config.ping_rate,
        token.clone(),
    ));
    let identity = config.identity_secret().map(identity::Verifier::new);
    let hours = hours::Hours::load(config.office_hours.as_deref())?;
    let survey = match (config.survey_webhook.as_deref(), &config.survey_webhook_secret) {
        (Some(url), Some(secret)) if !url.is_empty() => Some(survey::Webhook::start(
            url.to_owned(),
            secret.bytes().to_vec(),
            config.gms_timeout,
            tasks,
            token.clone(),
        )?),
        _ => None,
    };
    let with_hours: Vec<&str> = hours.services().collect();
    if !with_hours.is_empty() {
        tracing::info!(services = ?with_hours, "office hours");
    }
    let state = AppState(Arc::new(AppStateInner {
        hours,
        survey,
        config: Arc::new(config),
        shutdown: token.clone(),
        sockets: life.sockets.clone(),
        tasks: tasks.clone(),
        identity,
        sessions,
        peers,
        acker,
        restorer,
        gms,
        tokens,
        limits,
        metrics,
        captures,
        tracer,
    }));
    Ok((state, Last { writer, exporter }))
}

/// The subscription tokens' key: configured, else kept in Redis (shared by every relay)
/// or the data directory.
async fn subscription_tokens(
    config: &Config,
    redis: Option<&(store::redis::Topology, store::redis::Keys)>,
) -> anyhow::Result<token::Tokens> {
    match (redis, config.token_secret.as_deref().filter(|s| !s.is_empty())) {
        (Some((client, keys)), None) => {
            let (client, keys) = (client.clone(), keys.clone());
            let key = tokio::task::spawn_blocking(move || {
                store::redis::kept_key(&client, &keys.token_key(), token::random_key)
            })
            .await??;
            Ok(token::Tokens::from_key(key))
        }
        _ => token::Tokens::load(config.token_secret.as_deref(), &config.data_dir),
    }
}

/// Web Push's settings when `--vapid-subject` is set, with the VAPID key: configured, or
/// kept in Redis (shared by every relay) or the data directory.
async fn web_push_settings(
    config: &Config,
    redis: Option<&(store::redis::Topology, store::redis::Keys)>,
) -> anyhow::Result<Option<web_push::Settings>> {
    let Some(subject) = config.vapid_subject.clone() else { return Ok(None) };
    let configured = config.vapid_private_key.clone();
    let data_dir = config.data_dir.clone();
    let redis = redis.cloned();
    let vapid = tokio::task::spawn_blocking(move || {
        let keeper = match &redis {
            Some((client, keys)) => web_push::Keeper::Redis(client, keys),
            None => web_push::Keeper::Dir(&data_dir),
        };
        web_push::Vapid::load(configured.as_deref(), keeper, &subject)
    })
    .await??;
    tracing::info!(public_key = %vapid.public, preview = config.web_push_preview, "Web Push on");
    Ok(Some(web_push::Settings {
        vapid,
        preview: config.web_push_preview,
        ttl: config.web_push_ttl,
        services: config.web_push_services.clone(),
    }))
}

/// `--insecure-no-push-secret` is for a laptop demo: say so every minute, so it is never
/// forgotten in a log nobody reads at start.
async fn warn_insecure_pushes(stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => tracing::warn!(
                "--insecure-no-push-secret: pushes are accepted from anyone, without a secret; \
                 never run this way outside a demo"
            ),
        }
    }
}

async fn forget_idle_clients(limits: limits::Limits, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => limits.forget_idle(),
        }
    }
}

async fn stop_and_wait(what: &str, tracker: &TaskTracker, within: Duration) {
    tracker.close();
    if tokio::time::timeout(within, tracker.wait()).await.is_err() {
        tracing::warn!(what, ?within, "still running after the shutdown allowance; going on");
    }
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
