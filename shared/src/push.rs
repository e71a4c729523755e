//! GMS customhttp push notifications: tolerant extraction of tokens, events and advice.
//!
//! GMS documents only `{"deviceId", "message"}`; the `flex-push-content` tokens and the
//! included payload have no documented key names or places. Chat Server includes the payload
//! "the same as with CometD", whose data is the whole REST envelope, and whether GMS adds it
//! as an object or as a JSON string is not public. So the parser first reads every string
//! that holds JSON as that JSON (two encodings deep; never an event's own text), then looks
//! for every known spelling at any depth (the shallowest wins), and never rejects unknown keys.

use serde_json::Value;

use crate::gms::{ChatEvent, EventType};
use crate::json_search::{
    MAX_STRING_DECODES, any_string, decode_strings, decoded, find, find_scalar, scalar,
};

/// Spellings of the chat id: `flex-push-content` calls it `session-id`.
pub const CHAT_ID_KEYS: &[&str] = &["chatId", "sessionId", "session-id", "session_id"];
/// Spellings of the user id.
pub const USER_ID_KEYS: &[&str] = &["userId", "user-id", "user_id"];
/// Spellings of the secure key.
pub const SECURE_KEY_KEYS: &[&str] = &["secureKey", "secure-key", "secure_key"];
/// Spellings of the alias: `flex-push-content` calls it `app-dbid`.
pub const ALIAS_KEYS: &[&str] = &["alias", "appDbid", "app-dbid", "app_dbid"];
/// Spellings of the shutdown advice key.
pub const QUIT_REASON_KEYS: &[&str] =
    &["quit-reason-advice", "quitReasonAdvice", "quit_reason_advice"];

/// What a push notification tells the relay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushNotification {
    /// `GCTI_GMS_PushDeviceId` of the chat.
    pub device_id: Option<String>,
    /// The notification text (none when `message` holds JSON: then it is the payload).
    pub message: Option<String>,
    /// The notification type (an event type, or `push-url` when resend is on).
    pub notification_type: Option<String>,
    /// Chat id, from `flex-push-content`.
    pub chat_id: Option<String>,
    /// User id, from `flex-push-content`.
    pub user_id: Option<String>,
    /// Secure key, from `flex-push-content`. Never logged.
    pub secure_key: Option<String>,
    /// Chat Server alias (`app-dbid`), from `flex-push-content`.
    pub alias: Option<String>,
    /// Events carried with `PushIncludePayload`, in the order received.
    pub events: Vec<ChatEvent>,
    /// Array entries under `messages` that were not events.
    pub skipped_events: usize,
    /// `nextPosition`, when the payload has one (not trusted: see `proven_next_position`).
    pub next_position: Option<u64>,
    /// Chat Server is shutting down and advises the client to reconnect (refresh) so the
    /// session is restored elsewhere.
    pub shutdown_advice: bool,
}

/// A body that is not a push notification at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// Not JSON.
    NotJson(String),
    /// JSON, but not an object.
    NotAnObject,
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::NotJson(reason) => write!(f, "push body is not JSON: {reason}"),
            PushError::NotAnObject => f.write_str("push body is not a JSON object"),
        }
    }
}

impl std::error::Error for PushError {}

impl PushNotification {
    /// Parses a push body.
    pub fn parse(body: &[u8]) -> Result<PushNotification, PushError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| PushError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Reads a notification from parsed JSON.
    pub fn from_value(raw: &Value) -> Result<PushNotification, PushError> {
        // Events' strings are what people typed: never decoded (see `decode_strings`).
        let decoded = decode_strings(raw, &["messages"]);
        let root = &decoded;
        let Value::Object(top) = root else { return Err(PushError::NotAnObject) };
        let top_string = |keys: &[&str]| keys.iter().find_map(|k| top.get(*k).and_then(scalar));
        let (events, skipped_events) = events(root);
        let notification_type = top_string(&["type", "notificationType", "notification-type"]);
        let shutdown_advice = is_shutdown_advice(root, notification_type.as_deref(), &events);
        Ok(PushNotification {
            device_id: find_scalar(root, &["deviceId", "device-id", "device_id"]),
            message: top_string(&["message"]),
            notification_type,
            chat_id: find_scalar(root, CHAT_ID_KEYS),
            user_id: find_scalar(root, USER_ID_KEYS),
            secure_key: find_scalar(root, SECURE_KEY_KEYS),
            alias: find_scalar(root, ALIAS_KEYS),
            next_position: find_scalar(root, &["nextPosition", "next-position"])
                .and_then(|v| v.parse().ok()),
            events,
            skipped_events,
            shutdown_advice,
        })
    }

    /// The highest event index carried, if any.
    pub fn highest_index(&self) -> Option<u64> {
        self.events.iter().filter_map(|e| e.index).max()
    }

    /// The position the carried events prove: one past the highest index. A push's own
    /// `nextPosition` is not evidence (anyone who can post a push could claim any), so only
    /// a GMS answer moves a chat beyond this.
    pub fn proven_next_position(&self) -> Option<u64> {
        self.highest_index().map(|i| i + 1)
    }
}

fn events(root: &Value) -> (Vec<ChatEvent>, usize) {
    let Some(Value::Array(items)) = find(root, &["messages"], Value::is_array) else {
        return (Vec::new(), 0);
    };
    let mut events = Vec::with_capacity(items.len());
    let mut skipped = 0;
    for item in items {
        match serde_json::from_value::<ChatEvent>(item.clone()) {
            Ok(event) => events.push(event),
            Err(_) => skipped += 1,
        }
    }
    (events, skipped)
}

/// `ParticipantLeft` from participant 1 with `quit-reason-advice=reconnect`, wherever the
/// advice sits: the event, its user data, its attributes, or the notification itself.
fn is_shutdown_advice(root: &Value, notification_type: Option<&str>, events: &[ChatEvent]) -> bool {
    let participant_one_left = events
        .iter()
        .any(|e| e.event_type == EventType::ParticipantLeft && e.from.participant_id == 1)
        || (notification_type == Some("ParticipantLeft")
            && find(root, &["participantId"], |v| scalar(v).as_deref() == Some("1")).is_some());
    participant_one_left
        && any_string(root, &|key, value| {
            let value = value.trim();
            (QUIT_REASON_KEYS.contains(&key) && value.eq_ignore_ascii_case("reconnect"))
                || QUIT_REASON_KEYS
                    .iter()
                    .any(|k| value.eq_ignore_ascii_case(&format!("{k}=reconnect")))
        })
}

/// What replaces a secret in a redacted push body.
pub const REDACTED: &str = "<redacted>";

/// A push body as text an operator can send to others (`relay check --capture`): JSON keeps
/// its layout, with the value of every key spelled like `secureKey` (any case, with or
/// without `-`/`_`), at any depth and inside JSON strings two encodings deep (which stay
/// strings), replaced by [`REDACTED`]; then every occurrence of each of `secrets` is
/// replaced anyway (also JSON-escaped and form-encoded), so a body that is no JSON is
/// covered too. Bytes that are no UTF-8 become U+FFFD. Once anything in the JSON was
/// replaced, the body is written again compactly, with each object's keys in alphabetical
/// order; otherwise it is kept as it came.
pub fn redacted_body(body: &[u8], secrets: &[&str]) -> String {
    let rewritten = serde_json::from_slice::<Value>(body).ok().and_then(|mut value| {
        // A Value always serialises; were it ever not to, nothing of the body is shown.
        redact(&mut value, MAX_STRING_DECODES)
            .then(|| serde_json::to_string(&value).unwrap_or_else(|_| REDACTED.to_owned()))
    });
    let mut text = rewritten.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for spelling in secret_spellings(secret) {
            if text.contains(&spelling) {
                text = text.replace(&spelling, REDACTED);
            }
        }
    }
    text
}

/// Whether a key names a secure key, however it is spelled.
fn is_secure_key(key: &str) -> bool {
    let letters = key.chars().filter(|c| *c != '-' && *c != '_');
    letters.map(|c| c.to_ascii_lowercase()).eq("securekey".chars())
}

/// Replaces secure keys' values in place; answers whether anything changed. A string that
/// holds JSON is redacted inside and encoded again only when something in it changed, so
/// every other string stays as it came. (serde_json bounds the nesting of what it parses,
/// so the recursion is bounded too.)
fn redact(value: &mut Value, decodes: usize) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for (key, item) in map.iter_mut() {
                if is_secure_key(key) {
                    if item.as_str() != Some(REDACTED) {
                        *item = Value::String(REDACTED.to_owned());
                        changed = true;
                    }
                } else {
                    changed |= redact(item, decodes);
                }
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            let redacted = redact(item, decodes);
            changed || redacted
        }),
        Value::String(text) if decodes > 0 => {
            let Some(mut inner) = decoded(text) else { return false };
            if !redact(&mut inner, decodes - 1) {
                return false;
            }
            match serde_json::to_string(&inner) {
                Ok(encoded) => {
                    *text = encoded;
                    true
                }
                Err(_) => false,
            }
        }
        _ => false,
    }
}

/// A secret as it may appear in a body: as it is, JSON-escaped once and twice (a string in
/// a JSON string), and form-encoded.
fn secret_spellings(secret: &str) -> Vec<String> {
    let escape = |text: &str| {
        let quoted = serde_json::to_string(text).unwrap_or_default();
        quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default().to_owned()
    };
    let once = escape(secret);
    let twice = escape(&once);
    let mut all = vec![secret.to_owned()];
    for spelling in [once, twice, crate::form::encode_component(secret)] {
        if !spelling.is_empty() && !all.contains(&spelling) {
            all.push(spelling);
        }
    }
    all
}
