//! The relay's v1 API for browsers: session registration and WebSocket frames.
//!
//! Frames are JSON objects tagged by `type`. Receivers ignore unknown frame types and
//! unknown fields, so both sides can add to the protocol without breaking the other.

use serde::{Deserialize, Serialize};

use crate::gms::{ChatEvent, Credentials};
use crate::json::{FromJson, Json, Object, ToJson, object, optional, required};

/// Where GMS posts customhttp notifications.
pub const PUSH_PATH: &str = "/gms/push";
/// Session registration (`POST`), and `DELETE {SESSIONS_PATH}/{chatId}`.
pub const SESSIONS_PATH: &str = "/v1/sessions";
/// The browser WebSocket.
pub const WS_PATH: &str = "/v1/ws";

/// The relay's WebSocket URL from its base URL: `http` becomes `ws`, `https` `wss`.
pub fn ws_url(relay_url: &str) -> String {
    let base = relay_url.trim_end_matches('/');
    let base = match (base.strip_prefix("https://"), base.strip_prefix("http://")) {
        (Some(rest), _) => format!("wss://{rest}"),
        (None, Some(rest)) => format!("ws://{rest}"),
        (None, None) => base.to_owned(),
    };
    format!("{base}{WS_PATH}")
}
/// Below `{SESSIONS_PATH}/{chatId}`: the chat's Web Push subscription (`POST`, `DELETE`).
pub const PUSH_SUBSCRIPTION: &str = "push-subscription";
/// The service worker a site imports from its own origin for Web Push.
pub const SERVICE_WORKER_PATH: &str = "/gms-chat-sw.js";
/// Below `{SESSIONS_PATH}/{chatId}`: the first push body the relay kept for a chat
/// registered with `capture` (`GET`, answered with `CapturedPush`).
pub const CAPTURE: &str = "capture";
/// `POST`: the chat running under a verified identity (`Identity` in, `ChatHandover` out;
/// 204 when the identity has none, 403 for a hash that does not verify, 404 when the
/// relay has no `--identity-secret`).
pub const IDENTITY_PATH: &str = "/v1/identity";
/// `POST`: the chat a resume token stands for (`ResumeClaim` in, `ChatHandover` out; 404
/// for a token unknown, forged, revoked or of an ended chat, alike; 429 past the rate).
pub const RESUME_PATH: &str = "/v1/resume";
/// Below `{SESSIONS_PATH}/{chatId}`: the chat's resume links (`POST` makes one and
/// answers `ResumeLink`; `DELETE` revokes them all). Bearer the subscription token.
pub const RESUME_LINKS: &str = "resume-links";
/// The URL fragment of a resume link, followed by the token: `#gms-chat-resume=<token>`.
/// A fragment never reaches the site's server.
pub const RESUME_FRAGMENT: &str = "gms-chat-resume=";

/// Below `{SESSIONS_PATH}/{chatId}`: the visitor's answer to the survey of a chat that has
/// ended (`POST`, a `SurveyAnswer`, bearer the subscription token): the relay hands it to
/// the operator's `--survey-webhook` (202), or answers 404 without one.
pub const SURVEY: &str = "survey";

/// The visitor's rating of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyAnswer {
    /// `stars` (a rating of 1 to 5) or `thumbs` (0: down, 1: up).
    pub scale: String,
    /// The rating on that scale.
    pub rating: u8,
    /// What the visitor added; empty when nothing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl SurveyAnswer {
    /// Longest comment kept, in characters.
    pub const COMMENT_LIMIT: usize = 1000;

    /// Whether the rating is on its scale and the comment within its limit.
    pub fn is_valid(&self) -> bool {
        let on_scale = match self.scale.as_str() {
            "stars" => (1..=5).contains(&self.rating),
            "thumbs" => self.rating <= 1,
            _ => false,
        };
        on_scale && self.comment.chars().count() <= Self::COMMENT_LIMIT
    }

    /// The answer as the chat's GMS user data (`updateData`), so agents and reports see it.
    pub fn user_data(&self) -> Vec<(String, String)> {
        let mut data = vec![
            ("SurveyScale".to_owned(), self.scale.clone()),
            ("SurveyRating".to_owned(), self.rating.to_string()),
        ];
        if !self.comment.is_empty() {
            data.push(("SurveyComment".to_owned(), self.comment.clone()));
        }
        data
    }
}

impl ToJson for SurveyAnswer {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("scale", &self.scale)
            .field("rating", &u64::from(self.rating))
            .field("comment", &self.comment)
            .end();
    }
}

/// `GET {HOURS_PATH}/{service}`: whether the chat service is open now (`OfficeHours`);
/// 204 (nothing to say) when the relay knows no hours for it, or GMS, asked for them,
/// answered nothing usable.
pub const HOURS_PATH: &str = "/v1/hours";

/// A chat service's office hours now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfficeHours {
    /// Open now.
    pub open: bool,
    /// When closed, the next opening (milliseconds since the Unix epoch); absent when open,
    /// or when no opening is known within a year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_open: Option<u64>,
}

impl FromJson for OfficeHours {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(OfficeHours { open: required(v, "open")?, next_open: optional(v, "nextOpen")? })
    }
}

/// `POST /v1/sessions`: the widget hands the relay the chat's tokens so it can acknowledge
/// pushes and keep the chat alive while the visitor is away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterSession {
    /// The GMS chat service name.
    pub service: String,
    /// Session id.
    pub chat_id: String,
    /// The visitor's user id; empty or absent when GMS gave none (GMS 8.5.112 and later).
    #[serde(default)]
    pub user_id: String,
    /// The session secret. Never logged.
    pub secure_key: String,
    /// The latest alias; empty or absent when GMS gave none (GMS 8.5.112 and later).
    #[serde(default)]
    pub alias: String,
    /// `GCTI_GMS_PushDeviceId` the chat was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Keep the first push body for this chat, redacted, for `GET {SESSIONS_PATH}/{chatId}/
    /// {CAPTURE}`: only `relay check --capture` asks, so an operator can report what their
    /// GMS sends. Absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture: bool,
    /// The site's logged-in visitor, for the relay to verify and keep the chat under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
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
            .some("identity", self.identity.as_ref())
            .end();
    }
}

impl RegisterSession {
    /// The registration of a chat on `service` with its current tokens.
    pub fn new(service: &str, credentials: &Credentials, device_id: Option<&str>) -> Self {
        RegisterSession {
            service: service.to_owned(),
            chat_id: credentials.chat_id.clone(),
            user_id: credentials.user_id.clone(),
            secure_key: credentials.secure_key.clone(),
            alias: credentials.alias.clone(),
            device_id: device_id.map(str::to_owned),
            capture: false,
            identity: None,
        }
    }
}

/// A site's logged-in visitor as the site vouches for them: `user_hash` is the hex
/// HMAC-SHA256 of `user_id` under the secret the site's backend shares with the relay
/// (`--identity-secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The site's own id of the visitor (what `verifiedUserId` carries to GMS).
    pub user_id: String,
    /// Hex HMAC-SHA256 of `user_id`. A credential: never logged nor stored by the widget.
    pub user_hash: String,
}

impl ToJson for Identity {
    fn write_json(&self, out: &mut String) {
        Object::new(out).field("userId", &self.user_id).field("userHash", &self.user_hash).end();
    }
}

impl FromJson for Identity {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(Identity { user_id: required(v, "userId")?, user_hash: required(v, "userHash")? })
    }
}

/// What the relay made of a registration's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityVerdict {
    /// The hash verified: the chat is kept under the identity.
    Verified,
    /// The hash did not verify: the chat stays anonymous.
    Refused,
    /// The relay has no `--identity-secret`: the chat stays anonymous.
    Unconfigured,
}

impl IdentityVerdict {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "verified" => Some(IdentityVerdict::Verified),
            "refused" => Some(IdentityVerdict::Refused),
            "unconfigured" => Some(IdentityVerdict::Unconfigured),
            _ => None,
        }
    }
}

/// A running chat handed to a browser that proved its right to it (a verified identity or
/// a resume token): enough to store it and go on as the browser that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatHandover {
    /// The GMS chat service the chat runs on.
    pub service: String,
    /// The chat's GMS tokens, as the relay last saw them.
    pub credentials: Credentials,
    /// The subscription token for the chat.
    pub token: String,
    /// The highest `nextPosition` the relay knows.
    pub position: u64,
}

impl FromJson for ChatHandover {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ChatHandover {
            service: required(v, "service")?,
            credentials: required(v, "credentials")?,
            token: required(v, "token")?,
            position: required(v, "position")?,
        })
    }
}

/// `POST {RESUME_PATH}`: a resume token from a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeClaim {
    /// The token after `RESUME_FRAGMENT`.
    pub resume_token: String,
}

impl ToJson for ResumeClaim {
    fn write_json(&self, out: &mut String) {
        Object::new(out).field("resumeToken", &self.resume_token).end();
    }
}

/// The answer to `POST {SESSIONS_PATH}/{chatId}/{RESUME_LINKS}`: a new resume token,
/// valid while the chat runs and until revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeLink {
    /// What goes after `RESUME_FRAGMENT` in the link.
    pub resume_token: String,
}

impl FromJson for ResumeLink {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ResumeLink { resume_token: required(v, "resumeToken")? })
    }
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRegistered {
    /// Subscription token for this chat (an HMAC of the chat id under the relay's secret).
    pub token: String,
    /// The highest `nextPosition` the relay knows for the chat.
    pub position: u64,
    /// The relay's VAPID public key (base64url, uncompressed P-256 point) when it sends
    /// Web Push notifications; absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapid_public_key: Option<String>,
    /// What became of the registration's identity; absent when it named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityVerdict>,
}

impl FromJson for SessionRegistered {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        let identity: Option<String> = optional(v, "identity")?;
        Some(SessionRegistered {
            token: required(v, "token")?,
            position: required(v, "position")?,
            vapid_public_key: optional(v, "vapidPublicKey")?,
            // A verdict this widget does not know reads as none.
            identity: identity.as_deref().and_then(IdentityVerdict::parse),
        })
    }
}

/// `POST /v1/sessions/{chatId}/push-subscription`: notify this browser of agent lines while
/// the visitor is away. `endpoint` and `keys` are the browser's `PushSubscription.toJSON()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscriptionBody {
    /// The push service URL the relay posts to.
    pub endpoint: String,
    /// The browser's keys for the payload encryption.
    pub keys: PushKeys,
    /// The page the visitor turned notifications on from: a click on one opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// The notification titles, worded in the visitor's language.
    pub texts: NotificationTexts,
}

/// The subscription's keys, base64url as the browser gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    /// The browser's P-256 public key.
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

/// Titles of the notifications; `{agent}` stands for the agent's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationTexts {
    /// An agent wrote (e.g. "{agent} replied").
    pub message: String,
    /// An agent sent a file.
    pub file: String,
    /// The chat has ended.
    pub ended: String,
    /// The agent's name when GMS gives none.
    pub agent: String,
    /// The expected wait grew long (`--ewt-notify-minutes`); `{minutes}` stands for it.
    pub wait: String,
}

/// What a Web Push notification carries (encrypted) to the site's service worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebPushPayload {
    /// The chat (the notification's tag, so one chat shows one notification).
    pub chat_id: String,
    /// The notification's title.
    pub title: String,
    /// The preview (empty when the relay sends none).
    #[serde(default)]
    pub body: String,
    /// The page a click opens (with the panel open), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `GET /status`: one relay node's own view (counts only, nothing secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayStatus {
    /// This relay's node id (`--node-id`).
    #[serde(default)]
    pub node: String,
    /// Chats in the store.
    #[serde(default)]
    pub chats: usize,
    /// WebSocket connections open on this node.
    #[serde(default)]
    pub connections: usize,
    /// Per Chat Server alias, its latest restoration.
    #[serde(default)]
    pub restorations: std::collections::BTreeMap<String, RestorationProgress>,
    /// Times a ping found events that no push announced in a chat registered long enough
    /// before: Chat Server is not pushing for some chats (its configuration).
    #[serde(default)]
    pub pushes_missed: u64,
}

/// How the latest restoration of one Chat Server's chats goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorationProgress {
    /// Restorations started for this Chat Server since the relay started.
    #[serde(default)]
    pub runs: u64,
    /// Whether the latest one is still under way.
    #[serde(default)]
    pub running: bool,
    /// Chats it had to restore.
    #[serde(default)]
    pub chats: usize,
    /// Chats it has sent a restoring ping for so far.
    #[serde(default)]
    pub pinged: usize,
    /// Chats now on a working Chat Server.
    #[serde(default)]
    pub restored: usize,
    /// Chats that turned out to have ended.
    #[serde(default)]
    pub ended: usize,
    /// Chats still not restored when it gave up (at the deadline).
    #[serde(default)]
    pub failed: usize,
}

/// `GET {SESSIONS_PATH}/{chatId}/{CAPTURE}`: the first push body the relay received for the
/// chat, with every secure key replaced (`push::redacted_body`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedPush {
    /// The body as text (bytes that are no UTF-8 replaced).
    pub push: String,
}

/// The single JSON error shape of every relay HTTP error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `bad_token`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FromJson for ErrorBody {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(ErrorBody { code: required(v, "code")?, message: required(v, "message")? })
    }
}

/// Frames a browser sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ClientFrame {
    /// Receive the frames of one chat.
    Subscribe {
        /// The chat.
        chat_id: String,
        /// The token from registration.
        token: String,
    },
    /// Stop receiving them.
    Unsubscribe {
        /// The chat.
        chat_id: String,
    },
    /// A frame type this version does not know: ignored.
    #[serde(other, skip_serializing)]
    Unknown,
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

/// Frames the relay sends. Read through [`WireFrame`] rather than serde's internally
/// tagged enums, which buffer every frame into an intermediate tree first (code the widget
/// would carry for nothing).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    /// The subscription is active; `position` is the highest `nextPosition` the relay knows,
    /// so a widget behind it refreshes.
    Subscribed {
        /// The chat.
        chat_id: String,
        /// Highest known `nextPosition` (0 when unknown).
        position: u64,
    },
    /// A push carried these events: apply them if they continue your position.
    Events {
        /// The chat.
        chat_id: String,
        /// The carried events.
        messages: Vec<ChatEvent>,
        /// The position after them, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_position: Option<u64>,
    },
    /// Something changed but the push carried no events: refresh.
    Changed {
        /// The chat.
        chat_id: String,
    },
    /// The chat moved to another Chat Server: store the new alias.
    Tokens {
        /// The chat.
        chat_id: String,
        /// The new alias.
        alias: String,
    },
    /// The chat has ended.
    Ended {
        /// The chat.
        chat_id: String,
    },
    /// GMS's estimated wait for the chat's queue (`--ewt-queue`), sent every half minute
    /// to the chat's browsers: show it until an agent joins.
    Wait {
        /// The chat.
        chat_id: String,
        /// The estimated wait, in seconds; absent when GMS answered nothing usable (show
        /// none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    },
    /// A request on the socket failed.
    Error {
        /// Stable machine-readable code.
        code: String,
        /// Human-readable explanation.
        message: String,
    },
    /// A frame type this version does not know: ignored.
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Every field any server frame has, read in one pass.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFrame {
    #[serde(rename = "type")]
    kind: String,
    chat_id: Option<String>,
    position: Option<u64>,
    messages: Option<Vec<ChatEvent>>,
    next_position: Option<u64>,
    alias: Option<String>,
    code: Option<String>,
    message: Option<String>,
    seconds: Option<u64>,
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn field<T, E: serde::de::Error>(value: Option<T>, name: &'static str) -> Result<T, E> {
            value.ok_or_else(|| E::missing_field(name))
        }
        let w = WireFrame::deserialize(d)?;
        Ok(match w.kind.as_str() {
            "subscribed" => ServerFrame::Subscribed {
                chat_id: field(w.chat_id, "chatId")?,
                position: field(w.position, "position")?,
            },
            "events" => ServerFrame::Events {
                chat_id: field(w.chat_id, "chatId")?,
                messages: field(w.messages, "messages")?,
                next_position: w.next_position,
            },
            "changed" => ServerFrame::Changed { chat_id: field(w.chat_id, "chatId")? },
            "tokens" => ServerFrame::Tokens {
                chat_id: field(w.chat_id, "chatId")?,
                alias: field(w.alias, "alias")?,
            },
            "ended" => ServerFrame::Ended { chat_id: field(w.chat_id, "chatId")? },
            "wait" => {
                ServerFrame::Wait { chat_id: field(w.chat_id, "chatId")?, seconds: w.seconds }
            }
            "error" => ServerFrame::Error {
                code: field(w.code, "code")?,
                message: field(w.message, "message")?,
            },
            _ => ServerFrame::Unknown,
        })
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
            "wait" => ServerFrame::Wait { chat_id: chat_id()?, seconds: optional(v, "seconds")? },
            "error" => {
                ServerFrame::Error { code: required(v, "code")?, message: required(v, "message")? }
            }
            _ => ServerFrame::Unknown,
        })
    }
}

impl ServerFrame {
    /// The chat a frame is about, if any.
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            ServerFrame::Subscribed { chat_id, .. }
            | ServerFrame::Events { chat_id, .. }
            | ServerFrame::Changed { chat_id }
            | ServerFrame::Tokens { chat_id, .. }
            | ServerFrame::Ended { chat_id }
            | ServerFrame::Wait { chat_id, .. } => Some(chat_id),
            ServerFrame::Error { .. } | ServerFrame::Unknown => None,
        }
    }
}

/// WebSocket close codes. 4000–4099: reconnect (with backoff); 4100–4199: do not.
pub mod close_code {
    /// The relay is shutting down or restarting: reconnect.
    pub const GOING_AWAY: u16 = 4000;
    /// This socket fell behind its queue and was dropped: reconnect and catch up.
    pub const SLOW_CONSUMER: u16 = 4001;
    /// The peer stopped answering pings.
    pub const PING_TIMEOUT: u16 = 4002;
    /// The relay could not read what a subscribed chat is now (its shared store is failing
    /// over): reconnect after the usual backoff and subscribe again.
    pub const STORE_UNAVAILABLE: u16 = 4003;
    /// The socket sent far more frames than a widget does (about 20 a second): reconnect
    /// later, after the usual backoff.
    pub const TOO_MANY_FRAMES: u16 = 4029;
    /// The page's origin is not allowed: do not reconnect.
    pub const ORIGIN_REJECTED: u16 = 4100;

    /// Whether a client should reconnect after this code.
    pub fn should_reconnect(code: u16) -> bool {
        !(4100..4200).contains(&code)
    }
}
