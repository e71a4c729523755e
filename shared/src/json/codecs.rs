//! What the widget reads and writes, by hand: the same JSON as the serde derives on these
//! types (`json/tests.rs` checks that both agree), at a fraction of their code in the wasm.
//! Required fields, defaults and skipped `None`s follow each type's serde attributes.

use std::collections::BTreeMap;

use super::{FromJson, Json, Object, ToJson, write_str};
use crate::gms::{ChatError, ChatEvent, ChatResponse, Credentials, EventType, Party};
use crate::relay_api::{ClientFrame, ErrorBody, RegisterSession, ServerFrame, SessionRegistered};
use crate::visitor::{ChatState, Stored};
use crate::widget_config::WidgetConfig;

/// An object, or `None`.
fn object(value: &Json) -> Option<&Json> {
    matches!(value, Json::Object(_)).then_some(value)
}

/// A member that must be there.
fn required<T: FromJson>(value: &Json, key: &str) -> Option<T> {
    T::from_json(value.get(key)?)
}

/// A member that may be absent or `null` (`Some(None)`), but not of another type (`None`).
fn optional<T: FromJson>(value: &Json, key: &str) -> Option<Option<T>> {
    match value.get(key) {
        None => Some(None),
        Some(member) => T::from_json(member).map(Some),
    }
}

/// A member that takes its default when absent or `null`.
fn or_default<T: FromJson + Default>(value: &Json, key: &str) -> Option<T> {
    Some(optional(value, key)?.unwrap_or_default())
}

impl FromJson for String {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl FromJson for bool {
    fn from_json(value: &Json) -> Option<Self> {
        match value {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromJson for u64 {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_integer()
    }
}

impl FromJson for i64 {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_integer()
    }
}

impl FromJson for u32 {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_integer()
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_array()?.iter().map(T::from_json).collect()
    }
}

/// A pair is a two-element array.
impl<A: FromJson, B: FromJson> FromJson for (A, B) {
    fn from_json(value: &Json) -> Option<Self> {
        match value.as_array()? {
            [a, b] => Some((A::from_json(a)?, B::from_json(b)?)),
            _ => None,
        }
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! integer_to_json {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
        }
    )*};
}
integer_to_json!(u64, i64, u32);

/// `None` is `null`, as serde writes an `Option` it does not skip.
impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(value) => value.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
}

impl ToJson for BTreeMap<String, String> {
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        for (key, value) in self {
            object.field(key, value);
        }
        object.end();
    }
}

/// A JSON object of texts, as serde reads a map of strings: any other member refuses it.
impl FromJson for BTreeMap<String, String> {
    fn from_json(value: &Json) -> Option<Self> {
        let Json::Object(members) = value else { return None };
        // A repeated name keeps its last value, as serde_json's map does. Inserted one by
        // one: collecting into a map sorts, and the sort's code would weigh on the wasm.
        let mut map = BTreeMap::new();
        for (name, value) in members {
            map.insert(name.clone(), String::from_json(value)?);
        }
        Some(map)
    }
}

/// `userData`: texts, with integers and booleans as text; other values are dropped.
fn string_map(value: &Json, key: &str) -> Option<BTreeMap<String, String>> {
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
            user_data: string_map(v, "userData")?,
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
        object.end();
    }
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
            user_data: string_map(v, "userData")?,
            #[cfg(feature = "unknown-fields")]
            extra: serde_json::Map::new(),
        })
    }
}

impl FromJson for Credentials {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(Credentials {
            chat_id: required(v, "chatId")?,
            user_id: or_default(v, "userId")?,
            secure_key: required(v, "secureKey")?,
            alias: or_default(v, "alias")?,
        })
    }
}

impl ToJson for Credentials {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("chatId", &self.chat_id)
            .field("userId", &self.user_id)
            .field("secureKey", &self.secure_key)
            .field("alias", &self.alias)
            .end();
    }
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
            .end();
    }
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

impl FromJson for WidgetConfig {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        let d = WidgetConfig::default();
        let or = |key: &str, default: String| Some(optional(v, key)?.unwrap_or(default));
        Some(WidgetConfig {
            gms_url: or("gmsUrl", d.gms_url)?,
            service: or("service", d.service)?,
            relay_url: or("relayUrl", d.relay_url)?,
            node_group: or("nodeGroup", d.node_group)?,
            title: or("title", d.title)?,
            language: or("language", d.language)?,
            idle_refresh_seconds: optional(v, "idleRefreshSeconds")?
                .unwrap_or(d.idle_refresh_seconds),
            service_worker: or("serviceWorker", d.service_worker)?,
            keep_ended_days: optional(v, "keepEndedDays")?.unwrap_or(d.keep_ended_days),
            gms_headers: optional(v, "gmsHeaders")?.unwrap_or(d.gms_headers),
        })
    }
}

impl ToJson for RegisterSession {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("service", &self.service)
            .field("chatId", &self.chat_id)
            .field("userId", &self.user_id)
            .field("secureKey", &self.secure_key)
            .field("alias", &self.alias)
            .some("deviceId", self.device_id.as_ref())
            .end();
    }
}

impl FromJson for SessionRegistered {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(SessionRegistered {
            token: required(v, "token")?,
            position: required(v, "position")?,
            vapid_public_key: optional(v, "vapidPublicKey")?,
        })
    }
}

impl FromJson for ErrorBody {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ErrorBody { code: required(v, "code")?, message: required(v, "message")? })
    }
}

/// A frame this build cannot write is never sent: it is written as an unknown type, which
/// the relay ignores.
impl ToJson for ClientFrame {
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        match self {
            ClientFrame::Subscribe { chat_id, token } => {
                object.field("type", "subscribe").field("chatId", chat_id).field("token", token)
            }
            ClientFrame::Unsubscribe { chat_id } => {
                object.field("type", "unsubscribe").field("chatId", chat_id)
            }
            ClientFrame::Unknown => object.field("type", "unknown"),
        };
        object.end();
    }
}

/// Unknown frame types are [`ServerFrame::Unknown`]; a known type without its fields is
/// not a frame.
impl FromJson for ServerFrame {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        let kind: String = required(v, "type")?;
        let chat_id = || required(v, "chatId");
        Some(match kind.as_str() {
            "subscribed" => {
                ServerFrame::Subscribed { chat_id: chat_id()?, position: required(v, "position")? }
            }
            "events" => ServerFrame::Events {
                chat_id: chat_id()?,
                messages: required(v, "messages")?,
                next_position: optional(v, "nextPosition")?,
            },
            "changed" => ServerFrame::Changed { chat_id: chat_id()? },
            "tokens" => ServerFrame::Tokens { chat_id: chat_id()?, alias: required(v, "alias")? },
            "ended" => ServerFrame::Ended { chat_id: chat_id()? },
            "error" => {
                ServerFrame::Error { code: required(v, "code")?, message: required(v, "message")? }
            }
            _ => ServerFrame::Unknown,
        })
    }
}
