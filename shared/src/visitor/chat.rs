//! One visitor's chat as it is kept in the browser: the push device id, the current chat's
//! tokens, transcript position and bounded transcript cache, and whether the panel is open.
//! This is what localStorage holds (under one versioned key) and what tabs of one site
//! share.
//!
//! An ended chat is kept only to show its transcript: its GMS tokens go as soon as it ends
//! (a secureKey left in the browser is a way into the chat for whoever reads the storage),
//! and the rest once it ended longer ago than the site keeps ended chats.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::gms::{ChatEvent, ChatResponse, Credentials, EventType};
use crate::json::{FromJson, Json, Object, ToJson, object, optional, or_default, required};
use crate::transcript::{Gap, TranscriptCursor};

/// Events kept in the cache; older ones are dropped (GMS still has them).
pub const CACHE_LIMIT: usize = 300;

/// The localStorage key; the version changes if the stored shape ever must.
pub const STORAGE_KEY: &str = "gms-chat:v1";

/// Everything the widget persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Stored {
    /// `GCTI_GMS_PushDeviceId`: random, kept across chats.
    pub device_id: String,
    /// The current (or last) chat.
    pub chat: Option<ChatState>,
    /// The panel was open: a reload shows it again.
    pub open: bool,
    /// The visitor turned on alerts (a sound, and a system notification where the browser
    /// allows them) for agent lines that arrive while the page is hidden.
    pub alerts: bool,
    /// The browser refused notifications when the visitor asked for them: the widget
    /// never offers them again.
    pub notify_refused: bool,
}

impl FromJson for Stored {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(Stored {
            device_id: or_default(v, "deviceId")?,
            chat: optional(v, "chat")?,
            open: or_default(v, "open")?,
            alerts: or_default(v, "alerts")?,
            notify_refused: or_default(v, "notifyRefused")?,
        })
    }
}

impl ToJson for Stored {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("deviceId", &self.device_id)
            .field("chat", &self.chat)
            .field("open", &self.open)
            .field("alerts", &self.alerts)
            .field("notifyRefused", &self.notify_refused)
            .end();
    }
}

impl Stored {
    /// Takes in what another tab stored, so every tab converges on the same state whatever
    /// order their writes land in: the panel state of the latest write, and one chat, the
    /// active one over an ended one (two active ones: the greater chat id, arbitrary but
    /// the same in every tab). Answers whether anything changed.
    pub fn absorb(&mut self, other: &Stored) -> bool {
        let before = (self.open, self.alerts);
        self.open = other.open;
        self.alerts = other.alerts;
        let refused_before = self.notify_refused;
        self.notify_refused |= other.notify_refused;
        if self.device_id.is_empty() {
            self.device_id.clone_from(&other.device_id);
        }
        let chat_changed = match (&mut self.chat, &other.chat) {
            (Some(mine), Some(theirs))
                if mine.credentials.chat_id == theirs.credentials.chat_id =>
            {
                mine.absorb(theirs)
            }
            (Some(mine), Some(theirs)) => {
                let theirs_wins = match (mine.ended, theirs.ended) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => theirs.credentials.chat_id > mine.credentials.chat_id,
                };
                if theirs_wins {
                    *mine = theirs.clone();
                }
                theirs_wins
            }
            // The other tab forgot an ended chat to start anew: follow it.
            (Some(mine), None) if mine.ended => {
                self.chat = None;
                true
            }
            (Some(_), None) => false,
            (None, Some(theirs)) => {
                self.chat = Some(theirs.clone());
                true
            }
            (None, None) => false,
        };
        // The other copy may be one written before the chat ended here.
        let settled = self.chat.as_mut().is_some_and(ChatState::settle);
        chat_changed
            || settled
            || (self.open, self.alerts) != before
            || self.notify_refused != refused_before
    }

    /// Drops what an ended chat no longer needs, `now_ms` (milliseconds since the Unix
    /// epoch) being the time the page loaded: its tokens, and the whole chat once it ended
    /// `keep` ago or more. A chat whose end has no time yet (no event carried one) is
    /// counted from now. Answers whether anything changed.
    pub fn expire(&mut self, now_ms: u64, keep: Duration) -> bool {
        let Some(chat) = self.chat.as_mut().filter(|c| c.ended) else { return false };
        let mut changed = chat.settle();
        // A GMS clock ahead of the browser's must not keep the transcript for longer.
        let ended_at = chat.ended_at.map_or(now_ms, |at| at.min(now_ms));
        if chat.ended_at != Some(ended_at) {
            chat.ended_at = Some(ended_at);
            changed = true;
        }
        let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
        if now_ms - ended_at >= keep_ms {
            self.chat = None;
            changed = true;
        }
        changed
    }
}

/// One chat as the widget knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatState {
    /// The GMS service it was created on.
    pub service: String,
    /// The tokens; the alias is updated from every response and `tokens` frame.
    pub credentials: Credentials,
    /// The relay's subscription token, once registered.
    #[serde(default)]
    pub relay_token: Option<String>,
    /// The next transcript index expected.
    pub next_position: u64,
    /// The transcript cache, in index order, at most [`CACHE_LIMIT`] events.
    #[serde(default)]
    pub events: Vec<ChatEvent>,
    /// The chat is over.
    #[serde(default)]
    pub ended: bool,
    /// `nextPosition` when the visitor last had the panel open; later agent lines are
    /// unread. Absent in caches written before it existed: nothing counts as unread then.
    #[serde(default)]
    pub seen: Option<u64>,
    /// The relay's VAPID public key, from the registration: the relay sends Web Push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_key: Option<String>,
    /// Whether the visitor wants a notification when the agent replies while they are
    /// away (odd: on), counted in changes so that the latest change wins in every tab.
    #[serde(default)]
    pub notify_changes: u32,
    /// When the chat ended, in milliseconds since the Unix epoch: the time of its latest
    /// event (GMS's clock), or of the first page load that found it ended without one.
    /// Absent while it runs, and in caches written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// The site's user id the relay verified this chat under: a logout, or another
    /// visitor logging in, takes the chat out of this browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The visitor answered or dismissed the survey: it is not offered again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub surveyed: bool,
}

impl FromJson for ChatState {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ChatState {
            service: required(v, "service")?,
            credentials: required(v, "credentials")?,
            relay_token: optional(v, "relayToken")?,
            next_position: required(v, "nextPosition")?,
            events: or_default(v, "events")?,
            ended: or_default(v, "ended")?,
            seen: optional(v, "seen")?,
            push_key: optional(v, "pushKey")?,
            notify_changes: or_default(v, "notifyChanges")?,
            ended_at: optional(v, "endedAt")?,
            identity: optional(v, "identity")?,
            surveyed: or_default(v, "surveyed")?,
        })
    }
}

impl ToJson for ChatState {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("service", &self.service)
            .field("credentials", &self.credentials)
            .field("relayToken", &self.relay_token)
            .field("nextPosition", &self.next_position)
            .field("events", &self.events)
            .field("ended", &self.ended)
            .field("seen", &self.seen)
            .some("pushKey", self.push_key.as_ref())
            .field("notifyChanges", &self.notify_changes)
            .some("endedAt", self.ended_at.as_ref())
            .some("identity", self.identity.as_ref())
            .some("surveyed", self.surveyed.then_some(&true))
            .end();
    }
}

/// What applying new transcript events did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// New events shown.
    pub fresh: usize,
    /// Events are missing: refresh from the stored position.
    pub gap: Option<Gap>,
}

impl ChatState {
    /// A chat just created.
    pub fn new(service: &str, credentials: Credentials) -> ChatState {
        ChatState {
            service: service.to_owned(),
            credentials,
            relay_token: None,
            next_position: 1,
            events: Vec::new(),
            ended: false,
            seen: Some(1),
            push_key: None,
            notify_changes: 0,
            ended_at: None,
            identity: None,
            surveyed: false,
        }
    }

    /// Once the chat has ended: forgets its userId and secureKey (nothing is sent for an
    /// ended chat, and they would let anyone who reads the storage into it) and notes when
    /// it ended from its latest event's time, if it has none yet. Answers whether anything
    /// changed. The chat id stays: tabs tell chats apart by it.
    pub fn settle(&mut self) -> bool {
        if !self.ended {
            return false;
        }
        let credentials = &mut self.credentials;
        let had_tokens = !credentials.user_id.is_empty() || !credentials.secure_key.is_empty();
        credentials.user_id.clear();
        credentials.secure_key.clear();
        // Once, from what is known then: a later event would move it by minutes at most.
        let stamped = self.ended_at.is_none() && {
            let latest = self.events.iter().filter_map(|e| e.utc_time).max();
            self.ended_at = latest.and_then(|t| u64::try_from(t).ok()).filter(|t| *t > 0);
            self.ended_at.is_some()
        };
        had_tokens || stamped
    }

    /// Whether the visitor turned notifications on for this chat.
    pub fn notify(&self) -> bool {
        self.notify_changes % 2 == 1
    }

    /// Turns notifications on or off; answers whether that changed anything.
    pub fn set_notify(&mut self, on: bool) -> bool {
        if self.notify() == on {
            return false;
        }
        self.notify_changes += 1;
        true
    }

    /// Agent messages, links and files that arrived after the visitor last looked.
    pub fn unread(&self) -> usize {
        self.seen.map_or(0, |seen| self.agent_lines_since(seen))
    }

    /// Agent messages, links and files at or after `position`.
    pub fn agent_lines_since(&self, position: u64) -> usize {
        self.events
            .iter()
            .filter(|e| e.index.is_some_and(|i| i >= position) && !e.from.is_client())
            .filter(|e| {
                matches!(
                    e.event_type,
                    EventType::Message | EventType::PushUrl | EventType::FileUploaded
                )
            })
            .count()
    }

    /// The visitor has seen everything up to here.
    pub fn mark_seen(&mut self) {
        self.seen = Some(self.next_position);
    }

    /// Applies a slice of events: in index order, each once; stops at a gap. Events without
    /// an index cannot be placed in the transcript, so they are not kept (a resent push
    /// would otherwise add them again each time).
    pub fn apply_events(&mut self, events: impl IntoIterator<Item = ChatEvent>) -> Applied {
        let mut cursor = TranscriptCursor::at(self.next_position);
        let merge = cursor.merge(events.into_iter().filter(|e| e.index.is_some()));
        self.next_position = cursor.next_position();
        let fresh = merge.fresh.len();
        self.events.extend(merge.fresh);
        if self.events.len() > CACHE_LIMIT {
            self.events.drain(..self.events.len() - CACHE_LIMIT);
        }
        Applied { fresh, gap: merge.gap }
    }

    /// Applies a GMS response: tokens, events, the end. The fields of an error response
    /// are not trusted (they may be invalid), but its `chatEnded` is: a refusal because
    /// the chat has ended ends it here too.
    pub fn apply_response(&mut self, response: &ChatResponse) -> Applied {
        if response.status_code != 0 {
            if response.chat_ended == Some(true) {
                self.ended = true;
            }
            return Applied { fresh: 0, gap: None };
        }
        response.update_credentials(&mut self.credentials);
        let mut applied = self.apply_events(response.messages.iter().cloned());
        if applied.gap.is_none() {
            applied.gap = TranscriptCursor::at(self.next_position).behind(response.next_position);
        }
        if response.chat_ended == Some(true) {
            self.ended = true;
        }
        applied
    }

    /// Takes in what another tab stored for the same chat: the later transcript, the
    /// newer tokens, the end, the latest relay token and what the visitor has seen.
    /// Answers whether anything changed.
    pub fn absorb(&mut self, other: &ChatState) -> bool {
        if other.credentials.chat_id != self.credentials.chat_id {
            return false;
        }
        let before = (self.next_position, self.ended, self.seen, self.relay_token.clone());
        let alias_before = self.credentials.alias.clone();
        let push_before = (self.push_key.clone(), self.notify_changes);
        let (push_key, notify_changes) = (self.push_key.clone(), self.notify_changes);
        let (ended, ended_at) = (self.ended, self.ended_at);
        let identity = self.identity.clone();
        let surveyed = self.surveyed;
        if other.next_position > self.next_position {
            // The other copy is further along: its cache, tokens and position win, and any
            // event only this copy had comes again with the next refresh if it matters.
            let seen = self.seen.max(other.seen);
            let relay_token = self.relay_token.clone();
            *self = other.clone();
            self.seen = seen;
            self.relay_token = self.relay_token.clone().or(relay_token);
        } else {
            self.seen = self.seen.max(other.seen);
            if self.relay_token.is_none() {
                self.relay_token.clone_from(&other.relay_token);
            }
        }
        self.push_key = other.push_key.clone().or(push_key);
        self.notify_changes = notify_changes.max(other.notify_changes);
        // An end is for good, whichever copy is further along.
        self.ended = ended || other.ended;
        // The earliest known end, the same in every tab.
        self.ended_at = match (ended_at, other.ended_at) {
            (Some(mine), Some(theirs)) => Some(mine.min(theirs)),
            (mine, theirs) => mine.or(theirs),
        };
        // A link to an identity, once made in any tab, holds in all.
        self.identity = identity.clone().or_else(|| other.identity.clone());
        // A survey answered or dismissed in any tab is done in all.
        self.surveyed = surveyed || other.surveyed;
        let settled = self.settle();
        (self.next_position, self.ended, self.seen, self.relay_token.clone()) != before
            || self.identity != identity
            || self.credentials.alias != alias_before
            || (self.push_key.clone(), self.notify_changes) != push_before
            || self.ended_at != ended_at
            || self.surveyed != surveyed
            || settled
    }

    /// Whether the agent is typing: their latest typing or message event is `TypingStarted`.
    pub fn agent_typing(&self) -> Option<String> {
        let latest = self.events.iter().rev().find(|e| {
            !e.from.is_client()
                && matches!(
                    e.event_type,
                    EventType::TypingStarted
                        | EventType::TypingStopped
                        | EventType::Message
                        | EventType::ParticipantLeft
                )
        })?;
        (latest.event_type == EventType::TypingStarted && !self.ended)
            .then(|| latest.from.nickname.clone())
    }
}
