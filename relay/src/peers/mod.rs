//! Who else hears of a chat, and what relays agree on: this relay's browsers (the hub),
//! the other relays when they share Redis, and Web Push for visitors who left. `Peers` is
//! always there: alone, every claim is granted and nothing needs marking; with Redis, the
//! claims, marks and the watcher's lease are Redis keys (`redis::coordination`). Callers
//! say what they mean (publish, follow, claim) and never ask which topology runs.

mod hub;
mod redis;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use shared::relay_api::ServerFrame;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use hub::{ConnId, Hub, Next, heartbeat};
pub(crate) use redis::{AckClaim, PeersError};

use crate::otlp::{Kind, Span};
use crate::sessions::Sessions;
use crate::store::ChatRecord;
use crate::store::redis::{Keys, Topology};
use crate::web_push::WebPush;

/// How long the Chat Server watcher's lease lasts unrenewed: a relay that dies is
/// replaced as watcher within this (plus one health interval).
const WATCHER_LEASE: Duration = Duration::from_secs(3);

/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Peers {
    hub: Hub,
    redis: Option<redis::Bus>,
    /// Web Push, once started (it needs `Peers` itself to start).
    tap: Arc<OnceLock<WebPush>>,
}

/// Whether this relay watches the Chat Servers now: always alone; with Redis, while it
/// holds the lease.
#[derive(Clone)]
pub(crate) struct Lease(Option<Arc<AtomicBool>>);

impl Lease {
    /// Whether this relay holds it now.
    pub(crate) fn held(&self) -> bool {
        self.0.as_ref().is_none_or(|held| held.load(Ordering::Relaxed))
    }
}

impl Peers {
    /// This relay's browsers only.
    pub(crate) fn alone() -> Peers {
        Peers { hub: Hub::default(), redis: None, tap: Arc::default() }
    }

    /// This relay's browsers and the relays sharing Redis: follows their frames and
    /// changes (into `sessions`) until `stop`.
    pub(crate) async fn on_redis(
        topology: Topology,
        keys: Keys,
        node: &str,
        sessions: Sessions,
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<Peers> {
        let hub = Hub::default();
        let bus =
            redis::Bus::start(topology, keys, node, (sessions, hub.clone()), stop, tasks).await?;
        Ok(Peers { hub, redis: Some(bus), tap: Arc::default() })
    }

    /// Whether other relays share this one's chats.
    pub(crate) fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Web Push hears every frame from now on.
    pub(crate) fn tap(&self, web_push: WebPush) {
        let _ = self.tap.set(web_push);
    }

    /// The same peers without the tap, for Web Push itself: it asks who follows a chat
    /// and claims events but publishes nothing, and holding its own tap would keep both
    /// alive forever.
    pub(crate) fn untapped(&self) -> Peers {
        Peers { tap: Arc::default(), ..self.clone() }
    }

    /// Web Push, when on.
    pub(crate) fn web_push(&self) -> Option<&WebPush> {
        self.tap.get()
    }

    /// This relay's browsers' connections.
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Whether Redis answers (readiness); alone, always.
    pub(crate) fn ready(&self) -> bool {
        self.redis.as_ref().is_none_or(redis::Bus::ready)
    }

    /// A frame to everyone who hears of the chat, always in this order: this relay's
    /// browsers, Web Push (which notifies only a visitor no browser follows), then the
    /// other relays. Fails only when the other relays could not be told.
    pub(crate) async fn publish(
        &self,
        chat_id: &str,
        frame: &ServerFrame,
    ) -> Result<(), PeersError> {
        self.publish_traced(chat_id, frame, &Span::default()).await
    }

    /// `publish`, its parts as spans inside `parent`: `fanout.local` (this relay's
    /// browsers and Web Push) and, with Redis, `fanout.relays`.
    pub(crate) async fn publish_traced(
        &self,
        chat_id: &str,
        frame: &ServerFrame,
        parent: &Span,
    ) -> Result<(), PeersError> {
        self.publish_here(chat_id, frame, parent);
        if self.redis.is_none() {
            return Ok(());
        }
        let mut relays = parent.child("fanout.relays", Kind::Producer);
        self.elsewhere(chat_id, frame).await.inspect_err(|_| relays.fail("relays_unreachable"))
    }

    /// `publish` of a frame the store already handed to the other relays with a push's
    /// write (`sessions::Durable::handed`): this relay's browsers and Web Push only. Answers
    /// who acknowledges the push, as the write claimed it.
    pub(crate) fn publish_handed(
        &self,
        chat_id: &str,
        frame: &ServerFrame,
        parent: &Span,
        claimed: bool,
    ) -> AckClaim {
        self.publish_here(chat_id, frame, parent);
        metrics::counter!("relay_cross_node_frames_total", "direction" => "out").increment(1);
        if claimed { AckClaim::Claimed } else { AckClaim::Deferred }
    }

    /// This relay's browsers and Web Push, as the span `fanout.local`.
    fn publish_here(&self, chat_id: &str, frame: &ServerFrame, parent: &Span) {
        let mut local = parent.child("fanout.local", Kind::Internal);
        local.attr("fanout.connections", self.hub.publish(chat_id, frame));
        if let Some(web_push) = self.tap.get() {
            web_push.news(chat_id, frame);
        }
    }

    /// `publish` of a chat's end once its record is gone (so a browser that subscribes
    /// again hears `ended` too): Web Push reads the visitor's subscription from `record`.
    pub(crate) async fn publish_end(&self, chat_id: &str, record: Option<ChatRecord>) {
        let ended = ServerFrame::Ended { chat_id: chat_id.to_owned() };
        self.hub.publish(chat_id, &ended);
        if let (Some(web_push), Some(record)) = (self.tap.get(), record) {
            web_push.news_of(record, &ended);
        }
        if let Err(error) = self.elsewhere(chat_id, &ended).await {
            tracing::warn!(chat = chat_id, %error, "the end not handed to the other relays");
        }
    }

    async fn elsewhere(&self, chat_id: &str, frame: &ServerFrame) -> Result<(), PeersError> {
        match &self.redis {
            Some(bus) => bus.publish(chat_id, frame).await,
            None => Ok(()),
        }
    }

    /// Starts hearing other relays' frames of a chat before a browser of this relay
    /// follows it; returns once Redis has the subscription, so no frame published after
    /// this is missed. If Redis is away, the catch-up after its return covers the browser.
    pub(crate) async fn listen(&self, chat_id: &str) {
        if let Some(bus) = &self.redis
            && let Err(error) = bus.watch(chat_id).await
        {
            tracing::warn!(%error, "could not follow a chat's frames on Redis");
        }
    }

    /// Undoes one `listen`.
    pub(crate) async fn stop_listening(&self, chat_id: &str) {
        if let Some(bus) = &self.redis {
            bus.unwatch(chat_id).await;
        }
    }

    /// A connection stops following a chat.
    pub(crate) async fn unfollow(&self, id: ConnId, chat_id: &str) {
        if self.hub.unsubscribe(id, chat_id) {
            self.stop_listening(chat_id).await;
        }
    }

    /// A connection is gone, and with it what it followed.
    pub(crate) async fn disconnect(&self, id: ConnId) {
        for chat_id in self.hub.disconnect(id) {
            self.stop_listening(&chat_id).await;
        }
    }

    /// Whether a browser follows the chat on any relay; unknown counts as no (a
    /// notification too many beats a missed answer).
    pub(crate) async fn followed_anywhere(&self, chat_id: &str) -> bool {
        if self.hub.subscribers(chat_id) > 0 {
            return true;
        }
        match &self.redis {
            Some(bus) => bus.followed(chat_id).await.unwrap_or(false),
            None => false,
        }
    }

    /// Who acknowledges a chat's push now (alone: this relay).
    pub(crate) async fn claim_ack(&self, chat_id: &str) -> AckClaim {
        match &self.redis {
            Some(bus) => bus.claim_ack(chat_id).await,
            None => AckClaim::Claimed,
        }
    }

    /// Ends this relay's claim; true when another push came in meanwhile.
    pub(crate) async fn release_ack(&self, chat_id: &str) -> bool {
        match &self.redis {
            Some(bus) => bus.release_ack(chat_id).await,
            None => false,
        }
    }

    /// Claims this interval's periodic ping of a chat (alone: always).
    pub(crate) async fn claim_ping(&self, chat_id: &str, interval: Duration) -> bool {
        match &self.redis {
            Some(bus) => bus.claim_ping(chat_id, interval).await,
            None => true,
        }
    }

    /// Claims the chat's events for Web Push cluster-wide; None alone (Web Push keeps its
    /// own claims then).
    pub(crate) async fn claim_web_push(
        &self,
        chat_id: &str,
        indexes: &[u64],
    ) -> Option<Result<Vec<u64>, PeersError>> {
        let bus = self.redis.as_ref()?;
        Some(bus.claim_web_push(chat_id, indexes).await)
    }

    /// Keeps a captured push body where every relay can read it (alone: nowhere more).
    pub(crate) async fn keep_capture(
        &self,
        chat_id: &str,
        body: &str,
        ttl: Duration,
    ) -> Result<(), PeersError> {
        match &self.redis {
            Some(bus) => bus.keep_capture(chat_id, body, ttl).await,
            None => Ok(()),
        }
    }

    /// A push body captured by any relay (alone: None, memory answers).
    pub(crate) async fn capture(&self, chat_id: &str) -> Result<Option<String>, PeersError> {
        match &self.redis {
            Some(bus) => bus.capture(chat_id).await,
            None => Ok(None),
        }
    }

    /// Notes that a Chat Server's restoration started or finished (alone: nobody else
    /// could finish it).
    pub(crate) async fn mark_restoring(&self, alias: &str, running: bool) {
        if let Some(bus) = &self.redis {
            bus.mark_restoring(alias, running).await;
        }
    }

    /// Whether another relay started a restoration of `alias` and left it unfinished.
    pub(crate) async fn restoration_unfinished(&self, alias: &str) -> Result<bool, PeersError> {
        match &self.redis {
            Some(bus) => bus.restoration_unfinished(alias).await,
            None => Ok(false),
        }
    }

    /// The Chat Server watcher's lease: with Redis, taken and renewed until `stop` (and
    /// given up then); alone, always held.
    pub(crate) fn lease(&self, stop: CancellationToken, tasks: &TaskTracker) -> Lease {
        let Some(bus) = &self.redis else { return Lease(None) };
        let held = Arc::new(AtomicBool::new(false));
        tasks.spawn(bus.clone().hold_watcher_lease(WATCHER_LEASE, held.clone(), stop));
        Lease(Some(held))
    }
}
