//! One simulated chat session: its tokens, transcript, parties, push subscription and files.

use std::collections::BTreeMap;
use std::time::SystemTime;

use shared::gms::{ChatEvent, ChatResponse, EventType, Party};
use tokio::time::Instant;

/// The visitor is always participant 1, the agent 2 (as in every captured transcript).
pub(crate) const CLIENT_ID: i64 = 1;
pub(crate) const AGENT_ID: i64 = 2;

/// The push subscription read from the create request's user data.
#[derive(Debug, Clone)]
pub(crate) struct PushSubscription {
    pub(crate) device_id: String,
    pub(crate) include_payload: bool,
    pub(crate) resend: bool,
}

/// A file attached to the chat.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) downloads: u64,
    pub(crate) deleted: bool,
}

/// A push that waits for its acknowledgement (a refresh after it was sent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingPush {
    pub(crate) id: u64,
    pub(crate) sent_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Chat {
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) user_id: String,
    pub(crate) secure_key: String,
    /// The Chat Server hosting the session, and the process it lives in: a different
    /// process (restart) or a stopped server means it must be restored.
    pub(crate) alias: String,
    pub(crate) pid: u32,
    pub(crate) client: Party,
    pub(crate) agent: Option<Party>,
    pub(crate) transcript: Vec<ChatEvent>,
    pub(crate) ended: bool,
    pub(crate) async_mode: bool,
    pub(crate) push: Option<PushSubscription>,
    pub(crate) user_data: BTreeMap<String, String>,
    /// The last position a `readReceipt` named: what the visitor has seen.
    pub(crate) read_position: Option<u64>,
    /// The visitor's messages that answer a rich message (`eventAttributes`'
    /// `related-event-id`, as Genesys Widgets sends a choice): message index → its index.
    pub(crate) replies: BTreeMap<u64, u64>,
    pub(crate) files: Vec<StoredFile>,
    pub(crate) pending_pushes: Vec<PendingPush>,
    pub(crate) last_client_request: Instant,
    pub(crate) last_major_activity: Instant,
    pub(crate) idle_alert_at: Option<Instant>,
}

impl Chat {
    pub(crate) fn next_position(&self) -> u64 {
        self.transcript.len() as u64 + 1
    }

    /// Appends an event with the next index; returns its index.
    pub(crate) fn append(
        &mut self,
        event_type: EventType,
        from: Party,
        text: Option<String>,
    ) -> u64 {
        let index = self.next_position();
        // Async idle timers restart on "major" activity (Chat Server `async-idle-notices=major`).
        if matches!(
            event_type,
            EventType::Message
                | EventType::PushUrl
                | EventType::FileUploaded
                | EventType::FileDeleted
        ) {
            self.last_major_activity = Instant::now();
            self.idle_alert_at = None;
        }
        let mut event = ChatEvent::new(index, event_type, from, now_millis());
        event.text = text;
        self.transcript.push(event);
        index
    }

    /// The last appended event, for adding details such as user data.
    pub(crate) fn last_event_mut(&mut self) -> Option<&mut ChatEvent> {
        self.transcript.last_mut()
    }

    /// Events from a `transcriptPosition` value: 0 none, 1 all, N from index N.
    pub(crate) fn events_from(&self, position: u64) -> Vec<ChatEvent> {
        if position == 0 {
            return Vec::new();
        }
        let skip = usize::try_from(position - 1).unwrap_or(usize::MAX);
        self.transcript.iter().skip(skip).cloned().collect()
    }

    /// A success envelope carrying the session's current tokens.
    pub(crate) fn envelope(&self, position: u64) -> ChatResponse {
        let mut response = ChatResponse::ok(&self.id);
        response.alias = Some(self.alias.clone());
        response.user_id = Some(self.user_id.clone());
        response.secure_key = Some(self.secure_key.clone());
        response.chat_ended = Some(self.ended);
        response.next_position = Some(self.next_position());
        response.messages = self.events_from(position);
        response
    }

    pub(crate) fn agent_party(&self) -> Party {
        self.agent.clone().unwrap_or_else(|| Party {
            nickname: "Agent".to_owned(),
            participant_id: AGENT_ID,
            party_type: "Agent".to_owned(),
        })
    }

    /// Ends the session (idempotent).
    pub(crate) fn end(&mut self) {
        self.ended = true;
        self.pending_pushes.clear();
    }
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
