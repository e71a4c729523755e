//! Pings GMS for chats: the acknowledgement of each push (which stops Chat Server's
//! resends), the periodic keep-alive, and restoration after a Chat Server restart.
//!
//! Requests are coalesced per chat: while a ping for a chat waits, more requests for it
//! add nothing. The entry is removed just before the ping is sent, so a push that arrives
//! during the ping gets a ping of its own, sent after it, as the acknowledgement needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use shared::relay_api::ServerFrame;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::gms::{Gms, PingResult};
use crate::otlp::Span;
use crate::peers::{AckClaim, Peers};
use crate::sessions::Sessions;
use crate::store::{Observation, Source, now_millis};

/// How long a push GMS sent before answering a ping may take to be stored: events the
/// ping found and no push has announced after this are announced with `changed`.
const PUSH_IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(1);
/// Chats waiting for a ping beyond this are dropped (and counted); the periodic ping
/// covers them later.
const QUEUE: usize = 65_536;
/// The `push.ack` spans one waiting ping keeps (pushes of one chat that came in while it
/// waited); past them a push's span ends at once, marked `ack.coalesced`, so a chat that
/// is pushed to without pause cannot grow its entry.
const ACK_SPANS: usize = 16;

/// Why a chat is pinged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A push arrived (and its frame went out): acknowledge it.
    Push,
    /// The periodic keep-alive.
    Periodic,
    /// Its Chat Server restarted or is going away: make GMS restore it.
    Restore,
}

/// How a ping ended, for those who wait on it (the restorer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// GMS answered: the chat is live (and its alias is now stored).
    Ok,
    /// The chat has ended, or GMS refused its tokens: it is forgotten.
    Gone,
    /// GMS could not be reached, or kept answering statusCode 1.
    Failed,
    /// GMS refused the tokens without saying the chat ended, for the first time: the chat
    /// is asked about again after a while, and forgotten only if refused again.
    Refused,
    /// The relay holds no tokens for the chat.
    Unknown,
}

impl Outcome {
    /// Its `ack.outcome` in a push's trace (`restore.outcome` in a restoration's).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Gone => "gone",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Unknown => "unknown",
        }
    }
}

#[derive(Debug)]
struct Pending {
    since: Instant,
    push: bool,
    /// The acknowledgement's claim is held already, taken with the push's write: released
    /// after the ping. (Dropped with its entry when the queue is full, it expires; GMS
    /// resends meanwhile.)
    claimed: bool,
    restore: bool,
    waiters: Vec<oneshot::Sender<Outcome>>,
    /// The `push.ack` spans of the pushes this ping acknowledges, ended once it has.
    acks: Vec<Span>,
}

/// The ping queue. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Acker {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    queue: mpsc::Sender<String>,
    missed: Arc<AtomicU64>,
}

/// What the worker needs.
#[derive(Clone)]
pub(crate) struct Deps {
    /// The GMS client.
    pub(crate) gms: Gms,
    /// The chats.
    pub(crate) sessions: Sessions,
    /// Who hears of a chat.
    pub(crate) peers: Peers,
    /// How long after a first refusal of a chat's tokens a second one makes it final.
    pub(crate) refusal_apart: std::time::Duration,
    /// Events found that no push announced, in chats registered at least `missed_after`
    /// before: Chat Server is not pushing for them (shown in `/status`).
    pub(crate) missed: Arc<AtomicU64>,
    pub(crate) missed_after: std::time::Duration,
}

impl Deps {
    /// A frame to everyone who hears of the chat; one the other relays miss is caught up
    /// with after Redis returns.
    async fn publish(&self, chat_id: &str, frame: &ServerFrame) {
        if let Err(error) = self.peers.publish(chat_id, frame).await {
            tracing::warn!(chat = chat_id, %error, "frame not handed to the other relays");
        }
    }
}

impl Acker {
    /// Starts the dispatcher on `tracker`; at most `concurrency` pings are in flight, each
    /// tracked by `tracker` too. Once `stop` is cancelled it takes no more requests, sends
    /// those already queued, and gives up on what has not started `drain` later.
    pub(crate) fn start(
        deps: Deps,
        concurrency: usize,
        stop: CancellationToken,
        drain: std::time::Duration,
        tracker: &TaskTracker,
    ) -> Acker {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let acker = Acker { pending: Arc::default(), queue, missed: deps.missed.clone() };
        let give_up = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                tokio::time::sleep(drain).await;
            }
        };
        tracker.spawn(dispatch(
            acker.clone(),
            receiver,
            deps,
            concurrency.max(1),
            (stop, Box::pin(give_up)),
            tracker.clone(),
        ));
        acker
    }

    /// Events pings found that Chat Server never pushed, in chats old enough to have their
    /// push subscription (`Deps::missed`), since start.
    pub(crate) fn pushes_missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// Asks for a ping of `chat_id`.
    pub(crate) fn request(&self, chat_id: &str, reason: Reason) {
        self.enqueue(chat_id, reason, None, Span::default(), false);
    }

    /// Asks for the ping that acknowledges a push; `span` (the push's `push.ack`) lasts
    /// until GMS has answered it. `claim`: who acknowledges it, when the store's write
    /// claimed it already (`Peers::publish_handed`); a push added to another claim ends
    /// its span at once (that claim's relay pings once more for it). None: claimed at the
    /// ping.
    pub(crate) fn acknowledge(&self, chat_id: &str, mut span: Span, claim: Option<AckClaim>) {
        if claim == Some(AckClaim::Deferred) {
            metrics::counter!("relay_acks_deferred_total").increment(1);
            // As when the claim is found taken at the ping (`ack_in_cluster`).
            span.attr("ack.deferred", true);
            span.attr("ack.outcome", Outcome::Ok.label());
            return;
        }
        self.enqueue(chat_id, Reason::Push, None, span, claim.is_some());
    }

    /// Asks for a ping and returns a receiver of its outcome (closed if the queue was full).
    pub(crate) fn request_and_wait(
        &self,
        chat_id: &str,
        reason: Reason,
    ) -> oneshot::Receiver<Outcome> {
        let (done, wait) = oneshot::channel();
        self.enqueue(chat_id, reason, Some(done), Span::default(), false);
        wait
    }

    fn enqueue(
        &self,
        chat_id: &str,
        reason: Reason,
        waiter: Option<oneshot::Sender<Outcome>>,
        mut span: Span,
        claimed: bool,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = pending.entry(chat_id.to_owned());
        let fresh = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
        let slot = entry.or_insert_with(|| Pending {
            since: Instant::now(),
            push: false,
            claimed: false,
            restore: false,
            waiters: Vec::new(),
            acks: Vec::new(),
        });
        slot.waiters.extend(waiter);
        slot.claimed |= claimed;
        if span.is_on() {
            if slot.acks.len() < ACK_SPANS {
                slot.acks.push(span);
            } else {
                span.attr("ack.coalesced", true);
            }
        }
        match reason {
            Reason::Push => slot.push = true,
            Reason::Periodic => {}
            Reason::Restore => slot.restore = true,
        }
        if fresh && self.queue.try_send(chat_id.to_owned()).is_err() {
            for mut span in pending.remove(chat_id).map(|p| p.acks).unwrap_or_default() {
                span.attr("ack.outcome", "queue_full");
                span.fail("ping_queue_full");
            }
            metrics::counter!("relay_ping_queue_drops_total").increment(1);
        }
    }

    fn take(&self, chat_id: &str) -> Option<Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(chat_id)
    }
}

type GiveUp = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn dispatch(
    acker: Acker,
    mut receiver: mpsc::Receiver<String>,
    deps: Deps,
    concurrency: usize,
    (stop, mut give_up): (CancellationToken, GiveUp),
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut draining = false;
    loop {
        let chat_id = tokio::select! {
            biased;
            () = stop.cancelled(), if !draining => {
                receiver.close();
                draining = true;
                continue;
            }
            chat_id = receiver.recv() => chat_id,
        };
        let Some(chat_id) = chat_id else { return };
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = &mut give_up => return,
        };
        let Ok(permit) = permit else { return };
        let Some(pending) = acker.take(&chat_id) else { continue };
        let deps = deps.clone();
        let (again, stop) = (acker.clone(), stop.clone());
        tracker.spawn(async move {
            let (outcome, unannounced) = ping(&deps, &chat_id, pending).await;
            drop(permit);
            if let Some(found) = unannounced {
                announce_if_still_unannounced(&deps, &chat_id, found).await;
            }
            if outcome == Outcome::Refused {
                // The second look that decides whether the refusal was final.
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(deps.refusal_apart) => {
                        again.request(&chat_id, Reason::Periodic);
                    }
                }
            }
        });
    }
}

/// Pings; answers how it ended and the position GMS reported when it was beyond what the
/// browsers had been told of.
async fn ping(deps: &Deps, chat_id: &str, mut pending: Pending) -> (Outcome, Option<u64>) {
    let mut acks = std::mem::take(&mut pending.acks);
    let cluster_ack =
        pending.claimed || (pending.push && !pending.restore && pending.waiters.is_empty());
    let (outcome, unannounced) = if cluster_ack {
        ack_in_cluster(deps, chat_id, &pending, &mut acks).await
    } else {
        ping_once(deps, chat_id, &pending).await
    };
    for span in &mut acks {
        span.attr("ack.outcome", outcome.label());
        if outcome == Outcome::Failed {
            span.fail("gms_unreachable");
        }
    }
    drop(acks);
    for waiter in pending.waiters {
        let _ = waiter.send(outcome);
    }
    (outcome, unannounced)
}

/// A ping found events no push had announced: a push still on its way (GMS sent it before
/// answering), or one lost on the way, which GMS now counts acknowledged and never resends.
/// Once the first kind has had time to land, what is still unannounced is told with a
/// `changed` frame, so the browsers refresh instead of never learning of it.
async fn announce_if_still_unannounced(deps: &Deps, chat_id: &str, found: u64) {
    tokio::time::sleep(PUSH_IN_FLIGHT).await;
    let record = match deps.sessions.current(chat_id).await {
        Ok(Some(record)) => Some(record),
        Ok(None) => return,
        Err(_) => None,
    };
    if found <= record.as_ref().map_or(0, |r| r.announced) {
        return;
    }
    metrics::counter!("relay_unannounced_events_total").increment(1);
    // A chat this old has had time for its push subscription to take effect: silence now
    // is Chat Server not pushing for it, which only its configuration can mend.
    let missed_after = u64::try_from(deps.missed_after.as_millis()).unwrap_or(u64::MAX);
    if record.is_some_and(|r| now_millis().saturating_sub(r.registered_at) >= missed_after) {
        metrics::counter!("relay_push_missed_total").increment(1);
        deps.missed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            chat = chat_id,
            "GMS has events no push announced: check Chat Server's version (8.5.315.05 or \
             later), flex-push-on-join, the node group and flex-push-content"
        );
    }
    deps.publish(chat_id, &ServerFrame::Changed { chat_id: chat_id.to_owned() }).await;
    let seen =
        Observation { announced: Some(found), ..Observation::new(now_millis(), Source::Gms) };
    if let Err(error) = deps.sessions.observe(chat_id, seen, None).await {
        tracing::warn!(chat = chat_id, %error, "could not note that the chat's browsers were told");
    }
}

/// With several relays one acknowledges a chat at a time; a push any relay takes meanwhile
/// is added to the claim and gets one more ping after the current one (claimed again
/// first) instead of a ping of its own. (Alone, the claim is always this relay's and
/// nothing adds a ping.) A push that wrote its record was claimed by that write
/// (`pending.claimed`); one that wrote nothing is claimed here, after its 200, not sent
/// with its frame: a Redis with `appendfsync always` holds every published message of a
/// turn that writes until its fsync, so the claim would delay the frame (0.2 ms here).
async fn ack_in_cluster(
    deps: &Deps,
    chat_id: &str,
    pending: &Pending,
    acks: &mut [Span],
) -> (Outcome, Option<u64>) {
    if !pending.claimed && deps.peers.claim_ack(chat_id).await == AckClaim::Deferred {
        metrics::counter!("relay_acks_deferred_total").increment(1);
        for span in acks {
            span.attr("ack.deferred", true);
        }
        return (Outcome::Ok, None);
    }
    let mut unannounced = None;
    loop {
        let (outcome, found) = ping_once(deps, chat_id, pending).await;
        unannounced = unannounced.max(found);
        let again = deps.peers.release_ack(chat_id).await;
        // A chat gone or a GMS away gains nothing from another ping now (GMS resends).
        if !again
            || outcome != Outcome::Ok
            || deps.peers.claim_ack(chat_id).await == AckClaim::Deferred
        {
            return (outcome, unannounced);
        }
    }
}

async fn ping_once(deps: &Deps, chat_id: &str, pending: &Pending) -> (Outcome, Option<u64>) {
    let kind = if pending.push {
        "ack"
    } else if pending.restore {
        "restore"
    } else {
        "periodic"
    };
    let Some(record) = deps.sessions.get(chat_id) else {
        metrics::counter!("relay_pings_total", "kind" => kind, "result" => "impossible")
            .increment(1);
        tracing::debug!(chat = chat_id, "no tokens known: cannot ping");
        return (Outcome::Unknown, None);
    };
    let asked_at = now_millis();
    let mut unannounced = None;
    let mut result = deps.gms.ping(&record.service, &record.credentials).await;
    let mut credentials = record.credentials.clone();
    if let (PingResult::Stopped(_), Some(proposed)) = (&result, record.proposed_credentials()) {
        // The tokens a push proposed, before the chat is given up.
        result = deps.gms.ping(&record.service, &proposed).await;
        credentials = proposed;
    }
    let (label, outcome) = match result {
        PingResult::Ok(response) if response.chat_ended == Some(true) => {
            forget(deps, chat_id).await;
            ("ended", Outcome::Gone)
        }
        PingResult::Ok(response) => {
            // GMS accepted these tokens: its answer's alias, else the one they carried (a
            // push's proposal, when the accepted tokens were refused).
            let seen = Observation {
                alias: response.alias.clone().or(Some(credentials.alias)),
                user_id: Some(credentials.user_id),
                secure_key: Some(credentials.secure_key),
                position: response.next_position,
                ..Observation::new(asked_at, Source::Gms)
            };
            match deps.sessions.observe(chat_id, seen, None).await {
                Ok(Some(stored)) => {
                    if stored.credentials.alias != record.credentials.alias {
                        let alias = stored.credentials.alias;
                        tracing::info!(chat = chat_id, ?alias, "chat moved to another Chat Server");
                        let frame = ServerFrame::Tokens { chat_id: chat_id.to_owned(), alias };
                        deps.publish(chat_id, &frame).await;
                    }
                    if stored.position > stored.announced {
                        unannounced = Some(stored.position);
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(chat = chat_id, %error, "could not store what a ping found");
                }
            }
            ("ok", Outcome::Ok)
        }
        PingResult::Stopped(response) if record.refusal_confirmed(asked_at, deps.refusal_apart) => {
            tracing::info!(chat = chat_id, errors = ?response.error_summary(), "GMS refused the chat's tokens again; forgetting it");
            forget(deps, chat_id).await;
            ("stopped", Outcome::Gone)
        }
        PingResult::Stopped(response) => {
            tracing::info!(chat = chat_id, errors = ?response.error_summary(), "GMS refused the chat's tokens without ending it; asking again later");
            let seen = Observation { refused: true, ..Observation::new(asked_at, Source::Gms) };
            if let Err(error) = deps.sessions.observe(chat_id, seen, None).await {
                tracing::error!(chat = chat_id, %error, "could not store a refusal");
            }
            ("refused", Outcome::Refused)
        }
        PingResult::Failed(error) => {
            tracing::warn!(chat = chat_id, ?error, "ping failed after retries");
            ("failed", Outcome::Failed)
        }
    };
    metrics::counter!("relay_pings_total", "kind" => kind, "result" => label).increment(1);
    if pending.push {
        metrics::histogram!("relay_ack_latency_seconds")
            .record(pending.since.elapsed().as_secs_f64());
    }
    (outcome, unannounced)
}

/// The chat is over (or unusable): drop its tokens, then tell its subscribers, so a
/// browser that subscribes again after the `ended` frame hears `ended` too.
async fn forget(deps: &Deps, chat_id: &str) {
    // Web Push reads the visitor's subscription from the record as it was.
    let record = deps.sessions.get(chat_id);
    if let Err(error) = deps.sessions.remove(chat_id).await {
        tracing::error!(chat = chat_id, %error, "could not forget an ended chat");
    }
    deps.peers.publish_end(chat_id, record).await;
}
