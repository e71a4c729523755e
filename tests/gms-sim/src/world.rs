//! The simulated GMS and Chat Servers: every chat, every server process, the statistics
//! and the injected faults, behind one lock that is never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::Rng;
use serde::Serialize;
use shared::gms::{ChatError, ChatEvent, ChatResponse, EventType, Party};
use tokio::time::Instant;

use crate::chat::{CLIENT_ID, Chat};
use crate::config::Config;
use crate::ops::ApiRequest;
use crate::push::{self, PushJob};

/// One simulated Chat Server process.
#[derive(Debug, Clone)]
pub(crate) struct ChatServer {
    pub(crate) alias: String,
    pub(crate) pid: u32,
    pub(crate) up: bool,
    pub(crate) started_at: Instant,
    /// How its health port lays out its body; kept across restarts, like a configuration.
    pub(crate) health_body: crate::health::Layout,
}

/// Counters served at `/sim/stats`.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stats {
    /// Chat API requests per operation.
    pub(crate) requests: BTreeMap<String, u64>,
    /// Chat API requests per chat and operation.
    pub(crate) chats: BTreeMap<String, BTreeMap<String, u64>>,
    pub(crate) pushes: PushStats,
    /// Sessions restored on another (or restarted) Chat Server.
    pub(crate) restorations: u64,
    /// Health polls answered, per Chat Server alias.
    pub(crate) health_polls: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PushStats {
    /// First deliveries attempted.
    pub(crate) sent: u64,
    /// Deliveries repeated because no acknowledgement came.
    pub(crate) resent: u64,
    /// Deliveries the receiver answered with 200.
    pub(crate) delivered: u64,
    /// Deliveries answered otherwise, or not at all.
    pub(crate) failed: u64,
    /// Pushes acknowledged by a refresh for their chat.
    pub(crate) acknowledged: u64,
    /// Pushes whose resends ran out without an acknowledgement.
    pub(crate) expired: u64,
}

/// Faults injected through `/sim/faults`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// The next n Chat API requests answer statusCode 1.
    #[serde(rename = "statusCode1")]
    pub status_code1: u32,
    /// The next n Chat API requests answer HTTP 503.
    #[serde(rename = "http5xx")]
    pub http5xx: u32,
    /// Every Chat API request is delayed this long, until set back to 0.
    pub delay_ms: u64,
    /// The next n push deliveries (resends included) are not posted: lost on the way.
    pub push_drop: u32,
    /// The next n push deliveries are posted twice.
    pub push_duplicate: u32,
    /// Every push delivery waits this long before it is posted, until set back to 0.
    pub push_delay_ms: u64,
    /// Every push delivery waits a random time up to this long, so later pushes overtake
    /// earlier ones, until set back to 0.
    pub push_shuffle_ms: u64,
}

/// What happens to one push delivery on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushFault {
    pub(crate) drop: bool,
    pub(crate) duplicate: bool,
    pub(crate) delay: std::time::Duration,
}

/// What the HTTP layer does with a request before the chat logic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    StatusCode1,
    Http5xx,
}

/// Things to do once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) pushes: Vec<PushJob>,
    /// Chats the scripted agent should react to, with the visitor's message if any.
    pub(crate) bot: Vec<(String, Option<String>)>,
}

pub(crate) struct World {
    pub(crate) config: Arc<Config>,
    /// What the Calendar Service answers for each office-hours service: its periods as
    /// instants (ms), or an error; a service not here is unknown.
    pub(crate) calendars: HashMap<String, Result<Vec<(i64, i64)>, String>>,
    /// What the EWT APIs answer for every queue (seconds); none: nothing usable.
    pub(crate) ewt: Option<u64>,
    pub(crate) chats: HashMap<String, Chat>,
    pub(crate) servers: Vec<ChatServer>,
    pub(crate) stats: Stats,
    pub(crate) faults: Faults,
    next_pid: u32,
    next_push_id: u64,
    /// Which `--push-url` takes the next POST.
    next_receiver: usize,
}

impl World {
    pub(crate) fn new(config: Arc<Config>) -> World {
        let aliases = config.chat_servers.clone();
        let mut world = World {
            calendars: HashMap::new(),
            ewt: None,
            chats: HashMap::new(),
            servers: Vec::new(),
            stats: Stats::default(),
            faults: Faults::default(),
            next_pid: 4000 + rand::rng().random_range(0..1000),
            next_push_id: 1,
            next_receiver: 0,
            config,
        };
        let now = crate::chat::now_millis();
        let (hour, day) = (3_600_000, 86_400_000);
        let open_daily: Vec<(i64, i64)> =
            (0..7).map(|d| (now - hour + d * day, now + 8 * hour + d * day)).collect();
        world.ewt = world.config.ewt_seconds;
        for name in &world.config.office_hours {
            world.calendars.insert(name.clone(), Ok(open_daily.clone()));
        }
        for alias in aliases {
            let pid = world.new_pid();
            world.servers.push(ChatServer {
                alias,
                pid,
                up: true,
                started_at: Instant::now(),
                health_body: crate::health::Layout::default(),
            });
        }
        world
    }

    fn new_pid(&mut self) -> u32 {
        self.next_pid += 1 + rand::rng().random_range(0..50);
        self.next_pid
    }

    pub(crate) fn count_request(&mut self, operation: &str, chat_id: Option<&str>) {
        *self.stats.requests.entry(operation.to_owned()).or_default() += 1;
        if let Some(chat_id) = chat_id {
            let per_chat = self.stats.chats.entry(chat_id.to_owned()).or_default();
            *per_chat.entry(operation.to_owned()).or_default() += 1;
        }
    }

    /// Takes one injected fault, if any are armed.
    pub(crate) fn take_fault(&mut self) -> Injected {
        if self.faults.http5xx > 0 {
            self.faults.http5xx -= 1;
            Injected::Http5xx
        } else if self.faults.status_code1 > 0 {
            self.faults.status_code1 -= 1;
            Injected::StatusCode1
        } else {
            Injected::None
        }
    }

    /// Takes the faults armed for one push delivery.
    pub(crate) fn take_push_fault(&mut self) -> PushFault {
        let take = |n: &mut u32| {
            let armed = *n > 0;
            *n = n.saturating_sub(1);
            armed
        };
        let shuffle = match self.faults.push_shuffle_ms {
            0 => 0,
            most => rand::rng().random_range(0..=most),
        };
        PushFault {
            drop: take(&mut self.faults.push_drop),
            duplicate: take(&mut self.faults.push_duplicate),
            delay: std::time::Duration::from_millis(self.faults.push_delay_ms + shuffle),
        }
    }

    /// The running server with the fewest sessions, preferring one other than `avoid`.
    pub(crate) fn pick_server(&self, avoid: Option<&str>) -> Option<(String, u32)> {
        let load =
            |alias: &str| self.chats.values().filter(|c| !c.ended && c.alias == alias).count();
        let running = self.servers.iter().filter(|s| s.up);
        let preferred = running
            .clone()
            .filter(|s| Some(s.alias.as_str()) != avoid)
            .min_by_key(|s| load(&s.alias));
        preferred
            .or_else(|| running.min_by_key(|s| load(&s.alias)))
            .map(|s| (s.alias.clone(), s.pid))
    }

    /// Whether the chat's Chat Server process still holds the session.
    pub(crate) fn is_hosted(&self, chat: &Chat) -> bool {
        self.servers.iter().any(|s| s.up && s.alias == chat.alias && s.pid == chat.pid)
    }

    /// Restores a session whose Chat Server restarted or went away, as GMS does on the
    /// next client request. False when no Chat Server can take it (the client retries).
    pub(crate) fn restore_if_needed(&mut self, chat_id: &str) -> bool {
        let Some(chat) = self.chats.get(chat_id) else { return true };
        if chat.ended || self.is_hosted(chat) {
            return true;
        }
        let Some((alias, pid)) = self.pick_server(Some(&chat.alias)) else { return false };
        if let Some(chat) = self.chats.get_mut(chat_id) {
            tracing::info!(chat = chat_id, from = %chat.alias, to = %alias, "session restored");
            chat.alias = alias;
            chat.pid = pid;
        }
        self.stats.restorations += 1;
        true
    }

    /// Appends an event to a chat and queues its push.
    pub(crate) fn append(
        &mut self,
        chat_id: &str,
        event_type: EventType,
        from: Party,
        text: Option<String>,
        effects: &mut Effects,
    ) -> Option<u64> {
        let chat = self.chats.get_mut(chat_id)?;
        let index = chat.append(event_type, from, text);
        self.queue_push_for_last_event(chat_id, effects);
        Some(index)
    }

    /// Queues a push for the chat's newest event if the chat is subscribed and the event
    /// is one Chat Server pushes (not the visitor's own, not a notice).
    pub(crate) fn queue_push_for_last_event(&mut self, chat_id: &str, effects: &mut Effects) {
        if self.config.push_urls.is_empty() {
            return;
        }
        let Some(chat) = self.chats.get(chat_id) else { return };
        let Some(event) = chat.transcript.last() else { return };
        if chat.push.is_none()
            || event.from.participant_id == CLIENT_ID
            || !event.event_type.is_pushable()
        {
            return;
        }
        let event = event.clone();
        self.queue_push(chat_id, &event, effects);
    }

    /// Builds and queues a push about `event` (which may be outside the transcript, as the
    /// shutdown advice is).
    pub(crate) fn queue_push(&mut self, chat_id: &str, event: &ChatEvent, effects: &mut Effects) {
        let id = self.next_push_id;
        let Some(chat) = self.chats.get_mut(chat_id) else { return };
        let Some(subscription) = chat.push.clone() else { return };
        self.next_push_id += 1;
        let body = push::body(&self.config, chat, &subscription, event);
        if subscription.resend {
            chat.pending_pushes.push(crate::chat::PendingPush { id, sent_at: Instant::now() });
        }
        effects.pushes.push(PushJob {
            id,
            chat_id: chat_id.to_owned(),
            resend: subscription.resend,
            body,
        });
    }

    /// A refresh acknowledges every push sent before it.
    pub(crate) fn acknowledge(&mut self, chat_id: &str, at: Instant) {
        let Some(chat) = self.chats.get_mut(chat_id) else { return };
        let before = chat.pending_pushes.len();
        chat.pending_pushes.retain(|p| p.sent_at > at);
        self.stats.pushes.acknowledged += (before - chat.pending_pushes.len()) as u64;
    }

    /// The receiver of the next push POST, in turn (None: pushes are off).
    pub(crate) fn next_push_url(&mut self) -> Option<String> {
        let urls = &self.config.push_urls;
        let url = urls.get(self.next_receiver % urls.len().max(1))?.clone();
        self.next_receiver = self.next_receiver.wrapping_add(1);
        Some(url)
    }

    /// Whether a push still waits for its acknowledgement.
    pub(crate) fn is_pending(&self, chat_id: &str, push_id: u64) -> bool {
        self.chats.get(chat_id).is_some_and(|c| c.pending_pushes.iter().any(|p| p.id == push_id))
    }

    /// Gives up on a push whose resends ran out.
    pub(crate) fn expire(&mut self, chat_id: &str, push_id: u64) {
        if let Some(chat) = self.chats.get_mut(chat_id) {
            let before = chat.pending_pushes.len();
            chat.pending_pushes.retain(|p| p.id != push_id);
            self.stats.pushes.expired += (before - chat.pending_pushes.len()) as u64;
        }
    }

    /// Applies Chat Server's timers: the flex user logout and the async idle alert/close.
    pub(crate) fn tick(&mut self, now: Instant) -> Effects {
        let mut effects = Effects::default();
        let config = self.config.clone();
        let mut logged_out = Vec::new();
        let mut alerts = Vec::new();
        let mut closes = Vec::new();
        for chat in self.chats.values().filter(|c| !c.ended) {
            let timeout = if chat.push.is_some() {
                config.flex_push_timeout
            } else {
                config.flex_disconnect_timeout
            };
            if now.duration_since(chat.last_client_request) > timeout {
                logged_out.push(chat.id.clone());
                continue;
            }
            if !chat.async_mode {
                continue;
            }
            match chat.idle_alert_at {
                None if now.duration_since(chat.last_major_activity) > config.async_idle_alert => {
                    alerts.push(chat.id.clone());
                }
                Some(at) if now.duration_since(at) > config.async_idle_close => {
                    closes.push(chat.id.clone());
                }
                _ => {}
            }
        }
        for id in logged_out {
            tracing::info!(chat = %id, "visitor logged out by the flex timeout");
            let Some(chat) = self.chats.get(&id) else { continue };
            let client = chat.client.clone();
            self.append(&id, EventType::ParticipantLeft, client, None, &mut effects);
            self.end_chat(&id);
        }
        for id in alerts {
            let agent = self.chats.get(&id).map(Chat::agent_party).unwrap_or_default();
            let text = "Chat session will be closed soon due to inactivity".to_owned();
            self.append(&id, EventType::IdleAlert, agent, Some(text), &mut effects);
            if let Some(chat) = self.chats.get_mut(&id) {
                chat.idle_alert_at = Some(now);
            }
        }
        for id in closes {
            let agent = self.chats.get(&id).map(Chat::agent_party).unwrap_or_default();
            let text = "Chat session closed due to inactivity".to_owned();
            self.append(&id, EventType::IdleClose, agent, Some(text), &mut effects);
            self.end_chat(&id);
        }
        effects
    }

    pub(crate) fn end_chat(&mut self, chat_id: &str) {
        if let Some(chat) = self.chats.get_mut(chat_id) {
            chat.end();
        }
    }

    /// Restart: a new process with a new pid. Its sessions are restored on the next
    /// client request.
    pub(crate) fn restart_server(&mut self, alias: &str) -> Option<u32> {
        let pid = self.new_pid();
        let server = self.servers.iter_mut().find(|s| s.alias == alias)?;
        server.pid = pid;
        server.up = true;
        server.started_at = Instant::now();
        Some(pid)
    }

    /// Kill: the process is gone; health stops answering.
    pub(crate) fn kill_server(&mut self, alias: &str) -> bool {
        self.servers.iter_mut().find(|s| s.alias == alias).map(|s| s.up = false).is_some()
    }

    /// Graceful stop: push the shutdown advice to every push-subscribed chat the server
    /// hosts, then go away.
    pub(crate) fn stop_server(&mut self, alias: &str) -> Option<Effects> {
        let server = self.servers.iter().find(|s| s.alias == alias && s.up)?.clone();
        let mut effects = Effects::default();
        let hosted: Vec<String> = self
            .chats
            .values()
            .filter(|c| {
                !c.ended && c.alias == server.alias && c.pid == server.pid && c.push.is_some()
            })
            .map(|c| c.id.clone())
            .collect();
        for id in hosted {
            let Some(chat) = self.chats.get(&id) else { continue };
            let mut advice = ChatEvent::new(
                0,
                EventType::ParticipantLeft,
                chat.client.clone(),
                crate::chat::now_millis(),
            );
            // Not a transcript event: it has no index and is only pushed.
            advice.index = None;
            advice.user_data.insert("quit-reason-advice".to_owned(), "reconnect".to_owned());
            self.queue_push(&id, &advice, &mut effects);
        }
        self.kill_server(alias);
        Some(effects)
    }

    /// Start a killed or stopped server: a new process, so it hosts none of its old sessions.
    pub(crate) fn start_server(&mut self, alias: &str) -> Option<u32> {
        if self.servers.iter().any(|s| s.alias == alias && s.up) {
            return self.servers.iter().find(|s| s.alias == alias).map(|s| s.pid);
        }
        self.restart_server(alias)
    }
}

impl World {
    /// Every refusal's envelope: statusCode 1 or 2 with one error, and `chatEnded` as a
    /// refresh of the same chat would report it. Built here only, so no refusal can claim
    /// that a live chat ended. A chat id the world does not know reads as ended (GMS answers
    /// 249 with `chatEnded: true` for a session that is gone), and so does a chat of another
    /// service; a refused create has no chat and so nothing ended.
    pub(crate) fn refusal(
        &self,
        status_code: i64,
        request: &ApiRequest,
        code: i64,
        advice: &str,
    ) -> ChatResponse {
        let ended = request.chat_id.as_ref().is_some_and(|id| {
            self.chats.get(id).is_none_or(|chat| chat.ended || chat.service != request.service)
        });
        let mut response = ChatResponse::ok(request.chat_id.as_deref().unwrap_or(""));
        response.status_code = status_code;
        response.chat_ended = Some(ended);
        response.errors.push(ChatError { code, advice: Some(advice.to_owned()), message: None });
        response
    }
}
