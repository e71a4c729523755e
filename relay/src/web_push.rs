//! Web Push: tells visitors who have left the site that the agent answered. When an agent
//! line, a file or the end reaches a chat whose visitor opted in and no browser follows
//! it, the relay sends a notification (RFC 8030) to the browser's push service, signed
//! (VAPID, RFC 8292) and encrypted (RFC 8291); the site's service worker shows it.
//!
//! Nothing here is on the acknowledgement's path: news is queued without waiting (a full
//! queue drops it, counted), and notifications go out from tasks of their own.

mod news;
pub(crate) mod send;
mod vapid;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shared::gms::ChatEvent;
use shared::relay_api::{ServerFrame, WebPushPayload};
use shared::transcript::TranscriptPosition;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use news::texts_fit;
pub(crate) use send::Target;
pub(crate) use vapid::{Keeper, Vapid};

use crate::gms::{Gms, PingResult};
use crate::peers::Peers;
use crate::sessions::Sessions;
use crate::store::{ChatRecord, Observation, Source, WebPushSubscription, now_millis};
use news::News;
use send::Verdict;

/// News waiting for a worker; beyond it news is dropped (and counted): a notification is a
/// courtesy, and the visitor's widget catches up from GMS whatever happens here.
const QUEUE: usize = 4096;
/// Requests to push services in flight at once.
const CONCURRENCY: usize = 16;
/// Notifications being handled at once (waiting to retry included); beyond it news waits
/// in the queue, and beyond the queue it is dropped.
const IN_FLIGHT: usize = 512;
/// The claim of a chat's end: beyond any transcript position.
const ENDED: u64 = 1 << 53;
/// The claim of a chat's one long-wait notification (`--ewt-notify-minutes`).
const WAIT: u64 = (1 << 53) + 1;
/// Claims remembered per chat by a relay without Redis.
const CLAIMS_KEPT: usize = 1024;

/// How the relay sends Web Push.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The VAPID identity.
    pub(crate) vapid: Vapid,
    /// Whether notifications show the agent's words.
    pub(crate) preview: bool,
    /// How long push services keep an undelivered notification.
    pub(crate) ttl: Duration,
    /// The push services subscriptions may name.
    pub(crate) services: Vec<String>,
}

/// What the workers need.
#[derive(Clone)]
pub(crate) struct Deps {
    pub(crate) sessions: Sessions,
    /// Who follows a chat, and the claims; `Peers::untapped` (Web Push is their tap).
    pub(crate) peers: Peers,
    pub(crate) gms: Gms,
    /// Makes the resume token a notification's page carries.
    pub(crate) tokens: crate::token::Tokens,
}

/// The Web Push sender. Cheap to clone.
#[derive(Clone)]
pub(crate) struct WebPush {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    deps: Deps,
    queue: mpsc::Sender<Job>,
    http: reqwest::Client,
    permits: Semaphore,
    /// What this relay noted per chat.
    marks: Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    /// The events notified (one relay; with Redis, Redis keeps them).
    claimed: HashMap<String, BTreeSet<u64>>,
    /// Where to read the transcript from for news no push described.
    read: HashMap<String, u64>,
}

/// News for one chat whose visitor opted in: the chat as it was when the news came (so
/// the end of a chat, which the relay forgets, is still notified).
struct Job {
    chat_id: String,
    record: ChatRecord,
    news: Arrived,
}

enum Arrived {
    /// A push carried these events.
    Events { messages: Vec<ChatEvent> },
    /// GMS expects a long wait (minutes) for a chat no agent may have joined yet.
    Wait(u64),
    /// Something happened that no push described: read it from GMS.
    Changed,
    /// The chat is over.
    Ended,
}

impl WebPush {
    /// Starts the worker on `tracker`; it stops with `stop`, notifications in flight too.
    pub(crate) fn start(
        settings: Settings,
        deps: Deps,
        stop: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<WebPush> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let web_push = WebPush {
            inner: Arc::new(Inner {
                settings,
                deps,
                queue,
                http,
                permits: Semaphore::new(CONCURRENCY),
                marks: Mutex::default(),
            }),
        };
        tracker.spawn(web_push.clone().work(jobs, stop, tracker.clone()));
        Ok(web_push)
    }

    /// The public key browsers subscribe with.
    pub(crate) fn public_key(&self) -> &str {
        &self.inner.settings.vapid.public
    }

    /// Checks a subscription a browser offers.
    pub(crate) fn check(&self, subscription: &WebPushSubscription) -> Result<(), String> {
        Target::of(subscription, &self.inner.settings.services).map(drop)
    }

    /// Takes a frame the relay sends a chat's browsers: events, `changed` or `ended` may
    /// become a notification if the visitor opted in. Never waits. Call it before the chat
    /// is forgotten, so its subscription is still known.
    pub(crate) fn news(&self, chat_id: &str, frame: &ServerFrame) {
        if let Some(record) = self.inner.deps.sessions.get(chat_id) {
            self.news_of(record, frame);
        }
    }

    /// GMS expects the visitor of `record` to wait `minutes` for an agent: said once per
    /// chat, cluster-wide, to a visitor who opted in and left, unless an agent has joined.
    pub(crate) fn long_wait(&self, record: ChatRecord, minutes: u64) {
        if record.web_push.is_none() {
            return;
        }
        let job = Job {
            chat_id: record.credentials.chat_id.clone(),
            record,
            news: Arrived::Wait(minutes),
        };
        if self.inner.queue.try_send(job).is_err() {
            count("dropped");
        }
    }

    /// `news` of a chat whose record the caller holds (it may be gone from the store).
    pub(crate) fn news_of(&self, record: ChatRecord, frame: &ServerFrame) {
        let news = match frame {
            ServerFrame::Events { messages, .. } => Arrived::Events { messages: messages.clone() },
            ServerFrame::Changed { .. } => Arrived::Changed,
            ServerFrame::Ended { .. } => Arrived::Ended,
            _ => return,
        };
        if record.web_push.is_none() {
            return;
        }
        let job = Job { chat_id: record.credentials.chat_id.clone(), record, news };
        if self.inner.queue.try_send(job).is_err() {
            count("dropped");
        }
    }

    async fn work(
        self,
        mut jobs: mpsc::Receiver<Job>,
        stop: CancellationToken,
        tasks: TaskTracker,
    ) {
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let permit = tokio::select! {
                () = stop.cancelled() => return,
                permit = in_flight.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else { return };
            let job = tokio::select! {
                () = stop.cancelled() => return,
                job = jobs.recv() => job,
            };
            let Some(job) = job else { return };
            let (web_push, stop) = (self.clone(), stop.clone());
            tasks.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = web_push.handle(job) => {}
                }
                drop(permit);
            });
        }
    }

    async fn handle(&self, job: Job) {
        let Job { chat_id, record, news } = job;
        let Some(subscription) = record.web_push.as_deref() else { return };
        if self.inner.deps.peers.followed_anywhere(&chat_id).await {
            count("followed");
            return;
        }
        let since = subscription.since;
        let events = match news {
            Arrived::Ended => None,
            Arrived::Events { messages } => Some(messages),
            Arrived::Changed => Some(self.read_news(&chat_id, &record, since).await),
            Arrived::Wait(minutes) => return self.long_wait_of(&chat_id, &record, minutes).await,
        };
        // Each event (and the end) is claimed once, cluster-wide: a resent push, or the same
        // push taken by another relay, finds its events claimed and sends nothing.
        let fresh: Vec<ChatEvent>;
        let news = match events {
            None => {
                // The chat is gone: what this relay noted of it goes too.
                let claimed = self.claim(&chat_id, &[ENDED]).await;
                self.forget(&chat_id);
                if claimed.is_empty() {
                    return;
                }
                News::Ended
            }
            Some(events) => {
                let indexes: Vec<u64> =
                    events.iter().filter_map(|e| e.index).filter(|&i| i >= since).collect();
                let claimed = self.claim(&chat_id, &indexes).await;
                fresh = events
                    .into_iter()
                    .filter(|e| e.index.is_some_and(|i| claimed.contains(&i)))
                    .collect();
                News::Events(&fresh)
            }
        };
        let preview = self.inner.settings.preview;
        let Some(mut payload) = news::notification(&chat_id, news, subscription, preview) else {
            return;
        };
        let ended = matches!(news, News::Ended);
        // The page opens this chat even in a browser that lost it (its storage cleared);
        // the end needs none, since an ended chat cannot be resumed.
        if let Some(page) = payload.url.as_deref().filter(|_| !ended) {
            let token = self.inner.deps.tokens.resume_token(&chat_id, record.resume_epoch);
            payload.url = Some(news::resume_url(page, &token));
            crate::telemetry::count_resume("made");
        }
        self.deliver(&chat_id, subscription, payload, ended).await;
    }

    /// Says the long wait, once: claimed first (whatever follows, this chat is not told
    /// again), then sent only if GMS's transcript has no agent in it yet.
    async fn long_wait_of(&self, chat_id: &str, record: &ChatRecord, minutes: u64) {
        let Some(subscription) = record.web_push.as_deref() else { return };
        if self.claim(chat_id, &[WAIT]).await.is_empty() {
            return;
        }
        let gms = &self.inner.deps.gms;
        let first = TranscriptPosition::from_value(1);
        let answered = match gms.refresh(&record.service, &record.credentials, first).await {
            PingResult::Ok(response) => {
                response.messages.iter().any(|e| e.from.party_type == "Agent")
            }
            PingResult::Stopped(_) | PingResult::Failed(_) => true,
        };
        if answered {
            return;
        }
        let preview = self.inner.settings.preview;
        let Some(mut payload) =
            news::notification(chat_id, News::Wait(minutes), subscription, preview)
        else {
            return;
        };
        if let Some(page) = payload.url.as_deref() {
            let token = self.inner.deps.tokens.resume_token(chat_id, record.resume_epoch);
            payload.url = Some(news::resume_url(page, &token));
            crate::telemetry::count_resume("made");
        }
        self.deliver(chat_id, subscription, payload, false).await;
    }

    /// The events GMS has that no push described (GMS without
    /// `push_notification_include_payload`, or a push lost): read from where this relay last
    /// read the chat (or the opt-in).
    async fn read_news(&self, chat_id: &str, record: &ChatRecord, since: u64) -> Vec<ChatEvent> {
        let read = self.lock().read.get(chat_id).copied().unwrap_or(since).max(since);
        let position = TranscriptPosition::from_value(read.max(1));
        let gms = &self.inner.deps.gms;
        match gms.refresh(&record.service, &record.credentials, position).await {
            PingResult::Ok(response) => {
                let next = response.next_position.or_else(|| next_after(&response.messages));
                if let Some(next) = next {
                    let mut marks = self.lock();
                    let mark = marks.read.entry(chat_id.to_owned()).or_default();
                    *mark = (*mark).max(next);
                }
                response.messages
            }
            PingResult::Stopped(_) | PingResult::Failed(_) => Vec::new(),
        }
    }

    /// Sends, retrying as the push service asks; a subscription the service says is gone
    /// is removed from the chat.
    async fn deliver(
        &self,
        chat_id: &str,
        subscription: &WebPushSubscription,
        mut payload: WebPushPayload,
        end: bool,
    ) {
        let settings = &self.inner.settings;
        let Ok(target) = Target::of(subscription, &settings.services) else {
            count("invalid");
            return;
        };
        let topic = send::topic(chat_id);
        let urgency = if end { "low" } else { "normal" };
        let mut shortened = false;
        for attempt in 1..=send::ATTEMPTS {
            let Ok(body) = serde_json::to_vec(&payload) else { return };
            let verdict = match target.request(
                &settings.vapid,
                &body,
                settings.ttl,
                &topic,
                urgency,
            ) {
                Ok(request) => self.post(request, attempt).await,
                Err(error) => {
                    tracing::warn!(chat = chat_id, %error, "a Web Push request could not be made");
                    count("invalid");
                    return;
                }
            };
            match verdict {
                Verdict::Delivered => return count("delivered"),
                Verdict::Gone => {
                    self.unsubscribe(chat_id, &subscription.endpoint).await;
                    return count("gone");
                }
                Verdict::TooLarge if !shortened => {
                    count("too_large");
                    payload = news::without_preview(&payload);
                    shortened = true;
                }
                Verdict::TooLarge | Verdict::Refused => {
                    tracing::warn!(chat = chat_id, "the push service refused a notification");
                    return count("refused");
                }
                Verdict::Retry(wait) => {
                    count("retried");
                    if attempt < send::ATTEMPTS {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        tracing::warn!(chat = chat_id, "a notification was given up after every attempt");
        count("failed");
    }

    async fn post(&self, request: reqwest::Request, attempt: u32) -> Verdict {
        let Ok(_permit) = self.inner.permits.acquire().await else {
            return Verdict::Refused;
        };
        let started = std::time::Instant::now();
        let answer = self.inner.http.execute(request).await;
        metrics::histogram!("relay_web_push_seconds").record(started.elapsed().as_secs_f64());
        match answer {
            Ok(response) => {
                let retry_after = response.headers().get(reqwest::header::RETRY_AFTER);
                let retry_after = retry_after.and_then(|v| v.to_str().ok());
                send::judge(Some(response.status().as_u16()), retry_after, attempt)
            }
            Err(_) => send::judge(None, None, attempt),
        }
    }

    /// Removes the chat's subscription if it is still the one at `endpoint` (the visitor may
    /// have subscribed again meanwhile).
    async fn unsubscribe(&self, chat_id: &str, endpoint: &str) {
        let sessions = &self.inner.deps.sessions;
        let current = sessions.get(chat_id).and_then(|r| r.web_push).map(|s| s.endpoint);
        if current.as_deref() != Some(endpoint) {
            return;
        }
        let off =
            Observation { web_push: Some(None), ..Observation::new(now_millis(), Source::Gms) };
        if let Err(error) = self.inner.deps.sessions.observe(chat_id, off, None).await {
            tracing::warn!(chat = chat_id, %error, "could not remove a gone Web Push subscription");
        }
    }

    /// Claims the chat's events (by index) for a notification; answers those no relay had
    /// claimed before.
    async fn claim(&self, chat_id: &str, indexes: &[u64]) -> Vec<u64> {
        if indexes.is_empty() {
            return Vec::new();
        }
        match self.inner.deps.peers.claim_web_push(chat_id, indexes).await {
            Some(Ok(claimed)) => return claimed,
            Some(Err(error)) => tracing::warn!(chat = chat_id, %error, "Web Push claimed locally"),
            None => {}
        }
        let mut marks = self.lock();
        let claimed = marks.claimed.entry(chat_id.to_owned()).or_default();
        let fresh = indexes.iter().copied().filter(|&i| claimed.insert(i)).collect();
        // A bounded memory per chat: what is older than this is long past notifying.
        while claimed.len() > CLAIMS_KEPT {
            claimed.pop_first();
        }
        fresh
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.inner.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets what this relay noted of a chat (the chat was forgotten).
    pub(crate) fn forget(&self, chat_id: &str) {
        let mut marks = self.lock();
        marks.claimed.remove(chat_id);
        marks.read.remove(chat_id);
    }
}

/// The position after the last event, for answers without `nextPosition`.
fn next_after(events: &[ChatEvent]) -> Option<u64> {
    events.iter().filter_map(|e| e.index).max().map(|i| i + 1)
}

fn count(result: &'static str) {
    metrics::counter!("relay_web_push_total", "result" => result).increment(1);
}
