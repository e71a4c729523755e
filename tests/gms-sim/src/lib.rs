//! gms-sim: a GMS Chat API V2 + Chat Server simulator with customhttp push, resend and HA.
//!
//! It serves the Chat API under `/genesys/2/chat`, an admin API and an agent console under
//! `/sim`, and one health port per simulated Chat Server. Tests start it in-process with
//! [`start`]; the binary prints the same facts as its ready line.

mod admin;
mod agent;
mod api;
mod bot;
mod chat;
mod config;
mod console;
mod health;
mod ops;
mod push;
mod rich;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

pub use config::{Config, PushFormat};
pub use world::Faults;

use world::{Effects, World};

/// Shared by every handler and background task.
#[derive(Clone)]
pub(crate) struct Sim {
    world: Arc<Mutex<World>>,
    http: reqwest::Client,
    bot: Option<tokio::sync::mpsc::Sender<(String, Option<String>)>>,
    shutdown: CancellationToken,
}

impl Sim {
    /// Runs `f` on the world under the lock, then carries out its effects unlocked.
    pub(crate) fn with_world<T>(&self, f: impl FnOnce(&mut World, &mut Effects) -> T) -> T {
        let mut effects = Effects::default();
        let result = {
            let mut world = self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut world, &mut effects)
        };
        self.dispatch(effects);
        result
    }

    fn dispatch(&self, effects: Effects) {
        for job in effects.pushes {
            tokio::spawn(push::deliver(
                job,
                self.world.clone(),
                self.http.clone(),
                self.shutdown.clone(),
            ));
        }
        if let Some(bot) = &self.bot {
            for cue in effects.bot {
                // Overflow policy: a scripted agent that falls behind skips cues.
                let _ = bot.try_send(cue);
            }
        }
    }
}

/// A running simulator.
pub struct Running {
    /// The GMS listener.
    pub addr: SocketAddr,
    /// Each Chat Server's alias and health address.
    pub chat_servers: Vec<(String, SocketAddr)>,
    /// Cancel to stop everything.
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The ready line the binary prints.
    pub fn ready_line(&self) -> serde_json::Value {
        let servers: Vec<_> = self
            .chat_servers
            .iter()
            .map(|(alias, addr)| serde_json::json!({"alias": alias, "health": addr.to_string()}))
            .collect();
        serde_json::json!({"ready": true, "listen": self.addr.to_string(), "chatServers": servers})
    }

    /// The base URL of the GMS listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the simulator and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Binds every listener and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.context("binding the GMS listener")?;
    let addr = listener.local_addr()?;
    let config = Arc::new(config);
    let world = Arc::new(Mutex::new(World::new(config.clone())));
    let shutdown = CancellationToken::new();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;

    let (bot, bot_cues) = if config.bot {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let sim = Sim { world, http, bot, shutdown: shutdown.clone() };

    let mut chat_servers = Vec::new();
    for alias in &config.chat_servers {
        let health = tokio::net::TcpListener::bind((config.health_host, 0))
            .await
            .context("binding a health port")?;
        chat_servers.push((alias.clone(), health.local_addr()?));
        tokio::spawn(health::serve(health, alias.clone(), sim.clone()));
    }
    if let Some(cues) = bot_cues {
        tokio::spawn(bot::run(cues, sim.clone(), Duration::from_millis(config.bot_delay_ms)));
    }
    tokio::spawn(timers(sim.clone(), config.clone()));

    let router = api::router(&config).merge(admin::router()).with_state(sim);
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(error) = serve.await {
            tracing::error!(%error, "gms-sim stopped with an error");
        }
    });
    Ok(Running { addr, chat_servers, shutdown, task })
}

/// Applies Chat Server's timers often enough for the shortest configured timeout.
async fn timers(sim: Sim, config: Arc<Config>) {
    let shortest = [
        config.flex_disconnect_timeout,
        config.flex_push_timeout,
        config.async_idle_alert,
        config.async_idle_close,
    ]
    .into_iter()
    .min()
    .unwrap_or(Duration::from_secs(1));
    let period = (shortest / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut interval = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = sim.shutdown.cancelled() => return,
            _ = interval.tick() => sim.with_world(|world, effects| {
                let produced = world.tick(tokio::time::Instant::now());
                effects.pushes.extend(produced.pushes);
            }),
        }
    }
}
