//! Frames and changes between relays that share Redis. A frame published on any relay
//! reaches the browsers of its chat on every relay: each relay subscribes (Redis pub/sub)
//! to the frames channel of the chats its own browsers follow, and only those, so traffic
//! grows with the chats followed, not with chats × relays. Each relay also follows the
//! changes channel, which keeps its memory of the records current.
//!
//! After Redis was unreachable, the relay reads every record again and tells its browsers
//! to catch up (`changed`), since frames and changes of that time may have been missed.
//! The same catch-up follows a Sentinel failover (reconnecting to the new primary first)
//! and a Cluster node lost. `link` holds the connection of each topology.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::{PushInfo, PushKind};
use shared::relay_api::ServerFrame;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hub::Hub;
use crate::sessions::Sessions;
use crate::store::redis::{Keys, Topology, frame_payload};

mod coordination;
mod link;

pub(crate) use coordination::AckClaim;

/// Watch and unwatch requests waiting for the subscription task; senders wait when full.
const COMMAND_QUEUE: usize = 1024;
/// Longest pause between attempts to reach Redis again.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Why a frame could not be handed to the other relays.
#[derive(Debug, thiserror::Error)]
#[error("Redis: {0}")]
pub(crate) struct PeersError(String);

enum Command {
    Watch(String, oneshot::Sender<Result<(), PeersError>>),
    Unwatch(String),
    /// Redis is back: subscribe to every watched chat again.
    Resubscribe(oneshot::Sender<Result<(), PeersError>>),
}

/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Bus {
    link: link::Link,
    commands: mpsc::Sender<Command>,
    keys: Keys,
    node: Arc<str>,
    ready: Arc<AtomicBool>,
}

impl Bus {
    /// Connects (RESP3, so one connection both subscribes and publishes) and starts the
    /// tasks that follow the channels; they stop with `stop`.
    pub(crate) async fn start(
        topology: Topology,
        keys: Keys,
        node: &str,
        deps: (Sessions, Hub),
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<Bus> {
        // Unbounded because Redis's reader must never wait; the dispatcher only hands each
        // message to bounded per-connection queues (which drop slow sockets), so it keeps up.
        #[allow(
            clippy::disallowed_methods,
            reason = "redis-rs's push sender takes an unbounded sender"
        )]
        let (pushes, incoming) = mpsc::unbounded_channel::<PushInfo>();
        let link = link::Link::open(&topology, pushes).await?;
        link.subscribe(keys.changes()).await?;
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        let bus = Bus {
            link,
            commands,
            keys,
            node: Arc::from(node),
            ready: Arc::new(AtomicBool::new(true)),
        };
        tasks.spawn(subscriptions(bus.link.clone(), bus.keys.clone(), queue, stop.clone()));
        tasks.spawn(dispatch(bus.clone(), deps, incoming, stop));
        Ok(bus)
    }

    /// Whether Redis answers (readiness).
    pub(crate) fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Hands a frame to the relays whose browsers follow its chat.
    pub(crate) async fn publish(
        &self,
        chat_id: &str,
        frame: &ServerFrame,
    ) -> Result<(), PeersError> {
        let text = serde_json::to_string(frame).map_err(|e| PeersError(e.to_string()))?;
        let payload = frame_payload(&self.node, &text);
        let sent = self.timed(self.link.publish(self.keys.frames(chat_id), payload)).await;
        metrics::counter!("relay_cross_node_frames_total", "direction" => "out").increment(1);
        sent.map(drop).map_err(|e| self.failed(&e))
    }

    /// Starts following a chat's frames; returns once Redis has the subscription, so no
    /// frame published after this returns is missed.
    pub(crate) async fn watch(&self, chat_id: &str) -> Result<(), PeersError> {
        let (done, wait) = oneshot::channel();
        let stopped = || PeersError("the relay is stopping".to_owned());
        self.commands
            .send(Command::Watch(chat_id.to_owned(), done))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Stops following a chat once no browser of this relay does.
    pub(crate) async fn unwatch(&self, chat_id: &str) {
        let _ = self.commands.send(Command::Unwatch(chat_id.to_owned())).await;
    }

    /// Runs one command, timed and counted as the store's are.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> redis::RedisResult<T> {
        self.timed(self.link.query(command)).await
    }

    /// Times and counts a call on the link.
    async fn timed<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        let started = std::time::Instant::now();
        let result = call.await;
        metrics::histogram!("relay_redis_command_seconds").record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("relay_redis_errors_total").increment(1);
        }
        result
    }

    fn failed(&self, error: &redis::RedisError) -> PeersError {
        self.ready.store(false, Ordering::Relaxed);
        PeersError(error.to_string())
    }
}

/// Owns the subscriptions: how many of this relay's browsers follow each chat.
async fn subscriptions(
    link: link::Link,
    keys: Keys,
    mut queue: mpsc::Receiver<Command>,
    stop: CancellationToken,
) {
    let mut watched: HashMap<String, usize> = HashMap::new();
    loop {
        let command = tokio::select! {
            () = stop.cancelled() => return,
            command = queue.recv() => command,
        };
        let Some(command) = command else { return };
        match command {
            Command::Watch(chat_id, done) => {
                let count = watched.entry(chat_id.clone()).or_default();
                *count += 1;
                // Subscribing again is harmless, and repairs one that failed earlier.
                let result = link.follow(vec![keys.frames(&chat_id)]).await;
                let _ = done.send(result.map_err(|e| PeersError(e.to_string())));
            }
            Command::Unwatch(chat_id) => {
                if let Some(count) = watched.get_mut(&chat_id) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        watched.remove(&chat_id);
                        let _ = link.unfollow(keys.frames(&chat_id)).await;
                    }
                }
            }
            Command::Resubscribe(done) => {
                let channels: Vec<String> = watched.keys().map(|c| keys.frames(c)).collect();
                let mut result = link.subscribe(keys.changes()).await;
                if result.is_ok() && !channels.is_empty() {
                    result = link.follow(channels).await;
                }
                let _ = done.send(result.map_err(|e| PeersError(e.to_string())));
            }
        }
    }
}

/// Delivers what Redis pushes: other relays' frames to this relay's browsers, changed
/// records to memory; a lost connection starts the catch-up.
async fn dispatch(
    bus: Bus,
    (sessions, hub): (Sessions, Hub),
    mut incoming: mpsc::UnboundedReceiver<PushInfo>,
    stop: CancellationToken,
) {
    loop {
        let push = tokio::select! {
            () = stop.cancelled() => return,
            push = incoming.recv() => push,
        };
        let Some(push) = push else { return };
        match push.kind {
            kind if link::is_message(&kind) => {
                let mut data = push.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else { continue };
                let (Ok(channel), Ok(payload)) = (
                    redis::from_redis_value::<String>(channel),
                    redis::from_redis_value::<String>(payload),
                ) else {
                    continue;
                };
                if channel == bus.keys.changes() {
                    if let Err(error) = sessions.take_announced(&payload) {
                        tracing::warn!(%error, "an unreadable record was announced");
                    }
                } else if let Some(chat_id) = bus.keys.chat_of_frames(&channel)
                    && let Some((node, frame)) = payload.split_once('\n')
                    && node != &*bus.node
                {
                    metrics::counter!("relay_cross_node_frames_total", "direction" => "in")
                        .increment(1);
                    hub.publish_text(chat_id, &Arc::from(frame));
                }
            }
            PushKind::Disconnection => {
                bus.ready.store(false, Ordering::Relaxed);
                tracing::warn!("lost Redis; catching up once it answers again");
                catch_up(&bus, &sessions, &hub, &stop).await;
            }
            _ => {}
        }
    }
}

/// Waits for Redis, subscribes again, reads every record again and tells this relay's
/// browsers to catch up; then the relay is ready again.
async fn catch_up(bus: &Bus, sessions: &Sessions, hub: &Hub, stop: &CancellationToken) {
    let mut pause = Duration::from_millis(100);
    loop {
        // Sentinel: to wherever the primary is now (the others reconnect by themselves).
        let reached = match bus.link.reconnect().await {
            Ok(()) => bus.query::<String>(&redis::cmd("PING")).await.is_ok(),
            Err(error) => {
                tracing::debug!(%error, "Redis's primary not reached yet");
                false
            }
        };
        if reached {
            let (done, wait) = oneshot::channel();
            let resubscribed = bus.commands.send(Command::Resubscribe(done)).await.is_ok()
                && matches!(wait.await, Ok(Ok(())));
            if resubscribed && sessions.reload().await.is_ok() {
                break;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_RETRY);
    }
    for chat_id in hub.chats() {
        hub.publish(&chat_id, &ServerFrame::Changed { chat_id: chat_id.clone() });
    }
    bus.ready.store(true, Ordering::Relaxed);
    tracing::info!("Redis answers again; memory and browsers caught up");
}
