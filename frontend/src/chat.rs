//! The widget's chat state, free of the DOM and the network: tokens, transcript position,
//! the bounded transcript cache, and what the visitor sees derived from it. It is what
//! localStorage keeps, under one versioned key.

use serde::{Deserialize, Serialize};
use shared::gms::{ChatEvent, ChatResponse, Credentials, EventType, FileLimits};
use shared::transcript::{Gap, TranscriptCursor};

use crate::texts::{Texts, fill};

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
        }
    }

    /// Agent messages, links and files that arrived after the visitor last looked.
    pub fn unread(&self) -> usize {
        let Some(seen) = self.seen else { return 0 };
        self.events
            .iter()
            .filter(|e| e.index.is_some_and(|i| i >= seen) && !e.from.is_client())
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

    /// Applies a slice of events: in index order, each once; stops at a gap.
    pub fn apply_events(&mut self, events: impl IntoIterator<Item = ChatEvent>) -> Applied {
        let mut cursor = TranscriptCursor::at(self.next_position);
        let merge = cursor.merge(events);
        self.next_position = cursor.next_position();
        let fresh = merge.fresh.len();
        self.events.extend(merge.fresh);
        if self.events.len() > CACHE_LIMIT {
            self.events.drain(..self.events.len() - CACHE_LIMIT);
        }
        Applied { fresh, gap: merge.gap }
    }

    /// Applies a GMS response: tokens, events, the end. Error responses are ignored
    /// (their fields may be invalid).
    pub fn apply_response(&mut self, response: &ChatResponse) -> Applied {
        if response.status_code != 0 {
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

/// How a transcript event is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Chat text, from the visitor (`mine`) or someone else.
    Message { mine: bool, who: String, text: String },
    /// A pushed link; `url` is only set for http and https, anything else shows as text.
    Link { mine: bool, who: String, text: String, url: Option<String> },
    /// A file in the chat: `text` says who sent which; `file_id` lets it be downloaded.
    File { mine: bool, text: String, file_id: Option<String>, name: String },
    /// A system line (joins, leaves, notices).
    System(String),
}

/// The line for an event, in the widget's language; typing and hidden notices have none.
pub fn line(event: &ChatEvent, t: &Texts) -> Option<Line> {
    let who = event.from.nickname.clone();
    let mine = event.from.is_client();
    let text = event.text.clone().unwrap_or_default();
    let about = |template: &str| fill(template, &[("who", &who)]);
    Some(match &event.event_type {
        EventType::Message => Line::Message { mine, who, text },
        EventType::PushUrl => {
            let url = safe_url(&text);
            Line::Link { mine, who, text, url }
        }
        EventType::ParticipantJoined if mine => return None,
        EventType::ParticipantJoined => Line::System(about(t.joined)),
        EventType::ParticipantLeft if mine => Line::System(t.you_left.to_owned()),
        EventType::ParticipantLeft => Line::System(about(t.left)),
        EventType::NicknameUpdated => {
            Line::System(fill(t.renamed, &[("who", &who), ("name", &text)]))
        }
        EventType::FileUploaded => {
            let file_id = event.user_data.get("file-id").cloned().or(event.text.clone());
            let name = event.user_data.get("file-name").cloned().unwrap_or(text);
            let text = if mine {
                fill(t.you_sent_file, &[("name", &name)])
            } else {
                fill(t.file_sent, &[("who", &who), ("name", &name)])
            };
            Line::File { mine, text, file_id, name }
        }
        EventType::FileDeleted => Line::System(about(t.file_deleted)),
        EventType::IdleAlert | EventType::IdleClose if !text.is_empty() => Line::System(text),
        EventType::IdleAlert => Line::System(t.idle_alert.to_owned()),
        EventType::IdleClose => Line::System(t.idle_close.to_owned()),
        EventType::TypingStarted
        | EventType::TypingStopped
        | EventType::Notice
        | EventType::CustomNotice => {
            return None;
        }
        EventType::Other(kind) => Line::System(format!("{who}: {kind}")),
    })
}

/// The URL if it is absolute http(s), so a pushed `javascript:` link is never clickable.
pub fn safe_url(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"))?;
    (!rest.is_empty() && !trimmed.chars().any(char::is_whitespace)).then(|| trimmed.to_owned())
}

/// Checks the pre-chat form; `Err` carries the field and the message for the visitor.
pub fn validate_prechat(
    name: &str,
    email: &str,
    t: &'static Texts,
) -> Result<(), (&'static str, &'static str)> {
    if name.trim().is_empty() {
        return Err(("name", t.name_missing));
    }
    if name.trim().chars().count() > 64 {
        return Err(("name", t.name_too_long));
    }
    let email = email.trim();
    if !email.is_empty() {
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }) && !email.contains(char::is_whitespace);
        if !valid {
            return Err(("email", t.email_invalid));
        }
    }
    Ok(())
}

/// Checks a file against the chat's limits before sending it; `Err` says why not.
pub fn check_upload(limits: &FileLimits, name: &str, size: u64, t: &Texts) -> Result<(), String> {
    let used_files = limits.used_upload_max_files.unwrap_or(0);
    if limits.upload_max_files.is_some_and(|max| used_files >= max) {
        return Err(t.too_many_files.to_owned());
    }
    let used_bytes = limits.used_upload_max_total_size.unwrap_or(0);
    let max = [
        limits.upload_max_file_size,
        limits.upload_max_total_size.map(|total| total.saturating_sub(used_bytes)),
    ]
    .into_iter()
    .flatten()
    .min();
    if let Some(max) = max.filter(|max| size > *max) {
        return Err(fill(t.file_too_big, &[("name", name), ("max", &human_size(max))]));
    }
    if !limits.allows_file_name(name) {
        let types = limits.upload_file_types.join(", ");
        return Err(fill(t.file_type_not_allowed, &[("types", &types)]));
    }
    Ok(())
}

/// Bytes as a visitor reads them: `512 B`, `20 KB`, `2 MB` (powers of 1024, rounded down).
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MB", b >> 20),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests;
