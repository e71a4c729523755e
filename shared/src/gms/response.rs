//! The Chat API V2 response envelope, transcript events, errors and file limits.
//!
//! Every field but `statusCode` is optional (a failed send omits `secureKey`, the create
//! example omits `nextPosition`). With the `unknown-fields` feature (the relay's) unknown
//! fields are kept in `extra`, so nothing a newer GMS sends is lost when a body is stored
//! or forwarded; the widget reads what it knows and skips the rest, without the buffering
//! `#[serde(flatten)]` costs in code.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
#[cfg(feature = "unknown-fields")]
use serde_json::{Map, Value};

use super::{Answer, Credentials, FILE_LIMITS_NOTICE, Verdict};
use crate::json::{
    FromJson, Json, Object, ToJson, object, optional, or_default, required, write_str,
};

/// The envelope GMS returns for every operation but download.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatResponse {
    /// 0 success, 1 retryable error, 2 error that retrying will not fix.
    pub status_code: i64,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// The Chat Server that served this request: send it back next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// This party's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_key: Option<String>,
    /// `true` once the session is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_ended: Option<bool>,
    /// The position to ask for next to get only newer events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_position: Option<u64>,
    /// A slice of the transcript (possibly empty).
    #[serde(default)]
    pub messages: Vec<ChatEvent>,
    /// Error details when `statusCode` is not 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ChatError>,
    /// Additional data, e.g. `file-id` after an upload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "string_map")]
    pub user_data: BTreeMap<String, String>,
    /// Fields this crate does not know (`monitored`, `idleTimerExpire`, ...), kept verbatim.
    #[cfg(feature = "unknown-fields")]
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FromJson for ChatResponse {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ChatResponse {
            status_code: required(v, "statusCode")?,
            chat_id: optional(v, "chatId")?,
            alias: optional(v, "alias")?,
            user_id: optional(v, "userId")?,
            secure_key: optional(v, "secureKey")?,
            chat_ended: optional(v, "chatEnded")?,
            next_position: optional(v, "nextPosition")?,
            messages: or_default(v, "messages")?,
            errors: or_default(v, "errors")?,
            user_data: json_string_map(v, "userData")?,
            #[cfg(feature = "unknown-fields")]
            extra: serde_json::Map::new(),
        })
    }
}

/// One `errors[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatError {
    /// Numeric error code (e.g. 249, 161, 8210).
    #[serde(default)]
    pub code: i64,
    /// Human-readable advice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// Message, in some versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl FromJson for ChatError {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ChatError {
            code: or_default(v, "code")?,
            advice: optional(v, "advice")?,
            message: optional(v, "message")?,
        })
    }
}

/// The party that generated an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    /// Display name.
    #[serde(default)]
    pub nickname: String,
    /// Party id within the session: the client is 1.
    #[serde(default)]
    pub participant_id: i64,
    /// `Client`, `Agent`, `External`, or something newer.
    #[serde(rename = "type", default)]
    pub party_type: String,
}

impl FromJson for Party {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(Party {
            nickname: or_default(v, "nickname")?,
            participant_id: or_default(v, "participantId")?,
            party_type: or_default(v, "type")?,
        })
    }
}

impl ToJson for Party {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("nickname", &self.nickname)
            .field("participantId", &self.participant_id)
            .field("type", &self.party_type)
            .end();
    }
}

impl Party {
    /// The visitor's own party.
    pub fn is_client(&self) -> bool {
        self.party_type == "Client"
    }
}

/// One transcript event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatEvent {
    /// Who generated it.
    #[serde(default)]
    pub from: Party,
    /// Transcript position, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_time: Option<i64>,
    /// Message text, URL, file id or notice text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Sender-defined type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Per-event data (file metadata, limits).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "string_map")]
    pub user_data: BTreeMap<String, String>,
    /// The event's `eventAttributes`, kept whole as JSON text (whatever JSON GMS sent: an
    /// object, or the object written as a string). A rich message's structured content is
    /// in them (`crate::rich`), read only where it is shown.
    #[serde(
        default,
        rename = "eventAttributes",
        skip_serializing_if = "Option::is_none",
        with = "json_text"
    )]
    pub attributes: Option<String>,
    /// Fields this crate does not know, kept verbatim.
    #[cfg(feature = "unknown-fields")]
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// serde's side of [`ChatEvent::attributes`]: any JSON value, kept as its text.
mod json_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub(super) fn serialize<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        let text = text.as_deref().unwrap_or("null");
        // Text the widget's own codec wrote is JSON; anything else goes as a string.
        match serde_json::from_str::<Value>(text) {
            Ok(value) => value.serialize(s),
            Err(_) => s.serialize_str(text),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.filter(|v| !v.is_null()).map(|v| v.to_string()))
    }
}

/// JSON text written as it is (the widget's side of [`ChatEvent::attributes`]).
struct Raw<'a>(&'a str);

impl ToJson for Raw<'_> {
    fn write_json(&self, out: &mut String) {
        out.push_str(self.0);
    }
}

impl FromJson for ChatEvent {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ChatEvent {
            from: or_default(v, "from")?,
            index: optional(v, "index")?,
            event_type: required(v, "type")?,
            utc_time: optional(v, "utcTime")?,
            text: optional(v, "text")?,
            message_type: optional(v, "messageType")?,
            user_data: json_string_map(v, "userData")?,
            attributes: v
                .get("eventAttributes")
                .filter(|a| **a != Json::Null)
                .map(crate::json::to_string),
            #[cfg(feature = "unknown-fields")]
            extra: serde_json::Map::new(),
        })
    }
}

impl ToJson for ChatEvent {
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        object
            .field("from", &self.from)
            .some("index", self.index.as_ref())
            .field("type", &self.event_type)
            .some("utcTime", self.utc_time.as_ref())
            .some("text", self.text.as_ref())
            .some("messageType", self.message_type.as_ref());
        if !self.user_data.is_empty() {
            object.field("userData", &self.user_data);
        }
        if let Some(attributes) = &self.attributes {
            object.field("eventAttributes", &Raw(attributes));
        }
        object.end();
    }
}

impl ChatEvent {
    /// A minimal event, for simulators and tests.
    pub fn new(index: u64, event_type: EventType, from: Party, utc_time: i64) -> Self {
        ChatEvent {
            from,
            index: Some(index),
            event_type,
            utc_time: Some(utc_time),
            text: None,
            message_type: None,
            user_data: BTreeMap::new(),
            attributes: None,
            #[cfg(feature = "unknown-fields")]
            extra: Map::new(),
        }
    }
}

/// An event type. Unknown types are kept as [`EventType::Other`], never rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventType {
    /// A party joined.
    ParticipantJoined,
    /// A party left.
    ParticipantLeft,
    /// Chat text.
    Message,
    /// Typing started.
    TypingStarted,
    /// Typing stopped.
    TypingStopped,
    /// A URL was pushed.
    PushUrl,
    /// A party changed its nickname.
    NicknameUpdated,
    /// A file was attached.
    FileUploaded,
    /// A file was deleted.
    FileDeleted,
    /// A custom notice.
    CustomNotice,
    /// A system notice (e.g. file limits).
    Notice,
    /// The session is idle and will close soon.
    IdleAlert,
    /// The session was closed for inactivity.
    IdleClose,
    /// A type this crate does not know.
    Other(String),
}

impl FromJson for EventType {
    fn from_json(value: &Json) -> Option<Self> {
        String::from_json(value).map(EventType::from)
    }
}

impl ToJson for EventType {
    fn write_json(&self, out: &mut String) {
        write_str(out, self.as_str());
    }
}

const KNOWN_EVENT_TYPES: [(&str, EventType); 13] = [
    ("ParticipantJoined", EventType::ParticipantJoined),
    ("ParticipantLeft", EventType::ParticipantLeft),
    ("Message", EventType::Message),
    ("TypingStarted", EventType::TypingStarted),
    ("TypingStopped", EventType::TypingStopped),
    ("PushUrl", EventType::PushUrl),
    ("NicknameUpdated", EventType::NicknameUpdated),
    ("FileUploaded", EventType::FileUploaded),
    ("FileDeleted", EventType::FileDeleted),
    ("CustomNotice", EventType::CustomNotice),
    ("Notice", EventType::Notice),
    ("IdleAlert", EventType::IdleAlert),
    ("IdleClose", EventType::IdleClose),
];

impl EventType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        if let EventType::Other(name) = self {
            return name;
        }
        KNOWN_EVENT_TYPES.iter().find(|(_, known)| known == self).map_or("", |(name, _)| name)
    }

    /// Whether Chat Server sends a push for this event (all but file deletions and notices,
    /// as GMSLibrary documents for FCM; assumed the same for customhttp).
    pub fn is_pushable(&self) -> bool {
        !matches!(self, EventType::FileDeleted | EventType::CustomNotice | EventType::Notice)
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        KNOWN_EVENT_TYPES
            .iter()
            .find(|(known, _)| *known == name)
            .map_or(EventType::Other(name), |(_, t)| t.clone())
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> Self {
        t.as_str().to_owned()
    }
}

/// A body that is not a Chat API envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError(pub String);

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a GMS chat response: {}", self.0)
    }
}

impl std::error::Error for ResponseError {}

impl ChatResponse {
    /// Parses a body. GMS may send an envelope with a non-200 status too, so callers
    /// should try this whatever the HTTP status was.
    pub fn parse(body: &[u8]) -> Result<ChatResponse, ResponseError> {
        let text = std::str::from_utf8(body).map_err(|e| ResponseError(e.to_string()))?;
        serde_json::from_str(text).map_err(|e| ResponseError(e.to_string()))
    }

    /// What a body that is no Chat API envelope says went wrong, when it says so: GMS's
    /// other APIs answer `{"message", "exception"}`, and an API gateway before GMS a fault
    /// such as Apigee's `{"fault": {"faultstring", "detail": {"errorcode"}}}`. At most 300
    /// characters, for a log line or an operator.
    pub fn foreign_error(body: &[u8]) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        fn text(v: &serde_json::Value) -> Option<&str> {
            v.as_str().map(str::trim).filter(|s| !s.is_empty())
        }
        let fault = &value["fault"];
        let parts: Vec<&str> = [
            text(&value["message"]),
            text(&value["exception"]),
            text(&fault["faultstring"]),
            text(&fault["detail"]["errorcode"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            return None;
        }
        Some(parts.join(": ").chars().take(300).collect())
    }

    /// Reads a body as the widget does, with [`crate::json`]'s small reader instead of
    /// serde's: the same envelope as [`ChatResponse::parse`], unknown fields left out.
    pub fn read(body: &[u8]) -> Option<ChatResponse> {
        crate::json::from_str(std::str::from_utf8(body).ok()?)
    }

    /// A success envelope, for simulators and tests.
    pub fn ok(chat_id: &str) -> ChatResponse {
        ChatResponse {
            status_code: 0,
            chat_id: Some(chat_id.to_owned()),
            alias: None,
            user_id: None,
            secure_key: None,
            chat_ended: Some(false),
            next_position: None,
            messages: Vec::new(),
            errors: Vec::new(),
            user_data: BTreeMap::new(),
            #[cfg(feature = "unknown-fields")]
            extra: Map::new(),
        }
    }

    /// What the response means: `Verdict::of` an envelope.
    pub fn verdict(&self) -> Verdict {
        Verdict::of(Answer::Envelope(self))
    }

    /// The credentials a create response hands out: `chatId` and `secureKey` at least;
    /// `userId` and `alias` are optional (deprecated since GMS 8.5.112, as Genesys' own
    /// GMSLibrary decodes them), empty when missing.
    pub fn credentials(&self) -> Option<Credentials> {
        Some(Credentials {
            chat_id: self.chat_id.clone().filter(|id| !id.is_empty())?,
            user_id: self.user_id.clone().unwrap_or_default(),
            secure_key: self.secure_key.clone().filter(|key| !key.is_empty())?,
            alias: self.alias.clone().unwrap_or_default(),
        })
    }

    /// Overwrites stored credentials with the fields of a successful response; answers
    /// whether the alias changed. Responses with errors are ignored: their fields may be
    /// invalid.
    pub fn update_credentials(&self, credentials: &mut Credentials) -> bool {
        if self.status_code != 0 {
            return false;
        }
        if let Some(user_id) = &self.user_id {
            credentials.user_id.clone_from(user_id);
        }
        if let Some(secure_key) = &self.secure_key {
            credentials.secure_key.clone_from(secure_key);
        }
        match &self.alias {
            Some(alias) if *alias != credentials.alias => {
                credentials.alias.clone_from(alias);
                true
            }
            _ => false,
        }
    }

    /// A short description of the errors, for logs and the visitor.
    pub fn error_summary(&self) -> String {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                let text = e.advice.as_deref().or(e.message.as_deref()).unwrap_or("");
                format!("{} {text}", e.code).trim_end().to_owned()
            })
            .collect();
        if parts.is_empty() { format!("statusCode {}", self.status_code) } else { parts.join("; ") }
    }
}

/// The file allowance Chat Server grants the visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileLimits {
    /// Max number of files the client may upload.
    pub upload_max_files: Option<u64>,
    /// Max bytes per file.
    pub upload_max_file_size: Option<u64>,
    /// Max bytes in all.
    pub upload_max_total_size: Option<u64>,
    /// Files uploaded so far.
    pub used_upload_max_files: Option<u64>,
    /// Bytes uploaded so far.
    pub used_upload_max_total_size: Option<u64>,
    /// Downloads allowed per file.
    pub download_attempts: Option<u64>,
    /// Downloads used.
    pub used_download_attempts: Option<u64>,
    /// Uploads are allowed only while an agent is in the chat.
    pub upload_need_agent: bool,
    /// Allowed extensions, lower case; empty means any.
    pub upload_file_types: Vec<String>,
    /// Whether deleting gives the allowance back (semantics unknown; `odd` observed).
    pub delete_file: Option<String>,
}

impl FileLimits {
    /// Reads the limits from the `file-client-cfg-get` Notice, falling back to the
    /// top-level `userData` (GMSLibrary's comment and one third-party client read it there).
    pub fn from_response(response: &ChatResponse) -> Option<FileLimits> {
        let notice = response.messages.iter().find(|e| {
            e.event_type == EventType::Notice && e.text.as_deref() == Some(FILE_LIMITS_NOTICE)
        });
        let data = match notice {
            Some(event) => &event.user_data,
            None if response.user_data.contains_key("upload-max-files") => &response.user_data,
            None => return None,
        };
        let number = |key: &str| data.get(key).and_then(|v| v.trim().parse().ok());
        Some(FileLimits {
            upload_max_files: number("upload-max-files"),
            upload_max_file_size: number("upload-max-file-size"),
            upload_max_total_size: number("upload-max-total-size"),
            used_upload_max_files: number("used-upload-max-files"),
            used_upload_max_total_size: number("used-upload-max-total-size"),
            download_attempts: number("download-attempts"),
            used_download_attempts: number("used-download-attempts"),
            upload_need_agent: data.get("upload-need-agent").is_some_and(|v| v == "true"),
            upload_file_types: data
                .get("upload-file-types")
                .map(|v| {
                    v.split(':')
                        .filter(|t| !t.is_empty())
                        .map(|t| t.trim().to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default(),
            delete_file: data.get("delete-file").cloned(),
        })
    }

    /// Whether a file name's extension is allowed.
    pub fn allows_file_name(&self, file_name: &str) -> bool {
        if self.upload_file_types.is_empty() {
            return true;
        }
        let Some((_, extension)) = file_name.rsplit_once('.') else { return false };
        let extension = extension.to_ascii_lowercase();
        self.upload_file_types.contains(&extension)
    }
}

/// [`string_map`] for the widget's reader: the member `key` (`userData`) as texts, with
/// integers and booleans as text; other values are dropped.
fn json_string_map(value: &Json, key: &str) -> Option<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let Some(member) = value.get(key) else { return Some(map) };
    let Json::Object(members) = member else { return None };
    for (name, value) in members {
        let text = match value {
            Json::String(text) => text.clone(),
            Json::Bool(b) => b.to_string(),
            Json::Number(number) => match (number.parse::<i64>(), number.parse::<u64>()) {
                (Ok(n), _) => n.to_string(),
                (_, Ok(n)) => n.to_string(),
                _ => continue,
            },
            _ => continue,
        };
        map.insert(name.clone(), text);
    }
    Some(map)
}

/// Reads a string map whose values may arrive as integers or booleans (they become text);
/// nulls, fractions, objects and arrays are dropped (GMS documents text only). A visitor
/// rather than `serde_json::Value`, whose reader and writer, and float formatting, would
/// otherwise come into the widget for this alone.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_option(TextMap)
}

/// Fills the map entry by entry: collecting into a map would sort, and each sort is
/// another copy of the sorting code in the wasm.
struct TextMap;

impl<'de> serde::de::Visitor<'de> for TextMap {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<String, Scalar>()? {
            if let Some(value) = value.0 {
                out.insert(key, value);
            }
        }
        Ok(out)
    }
}

/// A JSON text, integer or boolean as text; `None` for anything else.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, number, boolean or null")
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(Some(v)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(Some(v.to_string())))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar(None))
    }

    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar(None))
    }

    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(Scalar(None))
    }
}
