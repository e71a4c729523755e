//! Proxy mode's Chat API: with `--gms-proxy` the relay serves the widget's GMS operations
//! under [`CHATS_PATH`], on GMS's own paths below `/genesys/2/chat` and with GMS's form
//! fields, but without the chat's tokens, which only the relay holds. This module is the
//! one list of what it takes (anything else is refused), reads a request back into the
//! [`ChatOperation`] the relay sends GMS, and says what an answer keeps.

use serde::{Deserialize, Serialize};

use crate::form::user_data_key;
use crate::gms::{ChatOperation, ChatResponse, PushSubscription, Visitor, async_push_user_data};
use crate::json::{FromJson, Json, object, required};
use crate::relay_api::SessionRegistered;
use crate::transcript::TranscriptPosition;

/// Where the relay serves the Chat API in proxy mode: `POST {CHATS_PATH}/{service}` starts
/// a chat, `POST {CHATS_PATH}/{service}/{chatId}/{operation}` is one of the operations.
pub const CHATS_PATH: &str = "/v1/chats";

/// Where a Chat API request goes in proxy mode, below the relay's base URL: GMS's own path
/// (`ChatOperation::encode`'s), its `/genesys/2/chat` prefix moved to [`CHATS_PATH`].
pub fn relay_path(gms_path: &str) -> String {
    let below = gms_path.strip_prefix(crate::gms::CHAT_API_PREFIX).unwrap_or(gms_path);
    format!("{CHATS_PATH}{below}")
}

/// The longest message, typing preview or user-data value the relay passes on, in bytes:
/// far above what a person types, far below what would make GMS's transcript a store.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;

/// The user-data keys that belong to the relay: Genesys' own (`GCTI_…`, which subscribe a
/// chat to push and choose where pushes go) are set by the relay alone, never a browser.
pub fn reserved(key: &str) -> bool {
    key.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("GCTI_"))
}

/// Why a proxied request is refused before GMS hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRefusal {
    /// An operation proxy mode does not offer.
    NotOffered(String),
    /// A field that is missing, malformed, too long or not the browser's to set.
    BadField(String),
}

impl std::fmt::Display for ProxyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyRefusal::NotOffered(operation) => {
                write!(f, "the relay does not offer {operation:?}")
            }
            ProxyRefusal::BadField(why) => f.write_str(why),
        }
    }
}

/// Which per-chat rate a proxied operation counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// A visitor's line.
    Send,
    /// Typing started or stopped.
    Typing,
    /// A file upload.
    Upload,
    /// Everything else: refreshes, user data, limits, downloads, the end.
    Other,
}

impl RateClass {
    /// The class of `operation`.
    pub fn of(operation: &ChatOperation) -> RateClass {
        match operation {
            ChatOperation::Send { .. } => RateClass::Send,
            ChatOperation::StartTyping { .. } | ChatOperation::StopTyping { .. } => {
                RateClass::Typing
            }
            ChatOperation::Upload { .. } => RateClass::Upload,
            _ => RateClass::Other,
        }
    }

    /// Its name, for metrics.
    pub fn name(self) -> &'static str {
        match self {
            RateClass::Send => "send",
            RateClass::Typing => "typing",
            RateClass::Upload => "upload",
            RateClass::Other => "other",
        }
    }
}

/// The operation a proxied request asks for: `suffix` is its path below
/// `{CHATS_PATH}/{service}/{chatId}/` and `fields` its form. Tokens in the form are ignored
/// (the relay sends the chat's own); uploads are multipart and read by [`upload_user_data`].
pub fn read_operation(
    suffix: &str,
    fields: &[(String, String)],
) -> Result<ChatOperation, ProxyRefusal> {
    let field = |name: &str| bounded(fields, name, MAX_FIELD_BYTES);
    let position = |required: bool| -> Result<TranscriptPosition, ProxyRefusal> {
        match field("transcriptPosition")? {
            Some(value) => value.parse().map(TranscriptPosition::from_value).map_err(|_| {
                ProxyRefusal::BadField("transcriptPosition must be a number".to_owned())
            }),
            None if required => {
                Err(ProxyRefusal::BadField("transcriptPosition is required".to_owned()))
            }
            None => Ok(TranscriptPosition::None),
        }
    };
    Ok(match suffix {
        "send" => ChatOperation::Send {
            message: field("message")?
                .ok_or_else(|| ProxyRefusal::BadField("message is required".to_owned()))?,
            message_type: field("messageType")?,
            position: position(false)?,
            reply_to: field("eventAttributes")?.as_deref().and_then(crate::rich::replied_to),
        },
        "startTyping" => ChatOperation::StartTyping { message: field("message")? },
        "stopTyping" => ChatOperation::StopTyping { message: field("message")? },
        "refresh" => ChatOperation::Refresh { position: position(true)? },
        "updateData" => ChatOperation::UpdateData { user_data: user_data(fields)? },
        "disconnect" => ChatOperation::Disconnect,
        "file/limits" => ChatOperation::FileLimits,
        other => match other.strip_prefix("file/").and_then(|f| f.strip_suffix("/download")) {
            Some(file_id) if crate::gms::is_gms_id(file_id) => {
                ChatOperation::Download { file_id: file_id.to_owned() }
            }
            _ => return Err(ProxyRefusal::NotOffered(other.to_owned())),
        },
    })
}

/// The form field `name`, if given, refused when longer than `max` bytes.
fn bounded(
    fields: &[(String, String)],
    name: &str,
    max: usize,
) -> Result<Option<String>, ProxyRefusal> {
    match fields.iter().find(|(k, _)| k == name) {
        Some((_, value)) if value.len() > max => {
            Err(ProxyRefusal::BadField(format!("{name} is longer than {max} bytes")))
        }
        Some((_, value)) => Ok(Some(value.clone())),
        None => Ok(None),
    }
}

/// The `userData[key]` entries of a form, refused when one is the relay's (`GCTI_…`), too
/// long, or when there are more than 64 of them.
pub fn user_data(fields: &[(String, String)]) -> Result<Vec<(String, String)>, ProxyRefusal> {
    let entries: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| Some((user_data_key(k)?.to_owned(), v.clone())))
        .collect();
    if entries.len() > 64 {
        return Err(ProxyRefusal::BadField("at most 64 userData entries".to_owned()));
    }
    for (key, value) in &entries {
        if reserved(key) {
            return Err(ProxyRefusal::BadField(format!("userData[{key}] is the relay's to set")));
        }
        if key.len() > 256 || value.len() > MAX_FIELD_BYTES {
            return Err(ProxyRefusal::BadField(format!("userData[{key}] is too long")));
        }
    }
    Ok(entries)
}

/// What an upload says besides its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadData {
    /// `userData[file-description]`.
    pub description: Option<String>,
    /// The other `userData[key]` entries.
    pub user_data: Vec<(String, String)>,
}

/// An upload's text parts, as [`user_data`] judges them.
pub fn upload_user_data(fields: &[(String, String)]) -> Result<UploadData, ProxyRefusal> {
    let mut user_data = user_data(fields)?;
    let description = user_data
        .iter()
        .position(|(k, _)| k == "file-description")
        .map(|at| user_data.remove(at).1);
    Ok(UploadData { description, user_data })
}

/// The create a start asks for: the pre-chat form's fields and the site's user data, then
/// the push subscription the relay chose. Nothing of the browser's can subscribe the chat
/// elsewhere: `GCTI_…` entries are refused.
pub fn read_start(
    fields: &[(String, String)],
    subscription: &PushSubscription,
) -> Result<ChatOperation, ProxyRefusal> {
    let field = |name: &str| bounded(fields, name, 256);
    let visitor = Visitor {
        nickname: field("nickname")?,
        first_name: field("firstName")?,
        last_name: field("lastName")?,
        email_address: field("emailAddress")?,
        subject: field("subject")?,
    };
    let mut user_data = user_data(fields)?;
    user_data.extend(async_push_user_data(subscription));
    Ok(ChatOperation::Create { visitor, user_data })
}

/// A GMS answer as the browser gets it in proxy mode: the same envelope without the chat's
/// tokens (`userId`, `secureKey`, `alias`), which stay with the relay.
pub fn without_tokens(mut response: ChatResponse) -> ChatResponse {
    response.user_id = None;
    response.secure_key = None;
    response.alias = None;
    response
}

/// The answer to a call for a chat whose token the relay signed but which it no longer
/// holds: it forgets a chat only when GMS said it ended (or refused its tokens for good), so
/// the browser is told that, as GMS would tell it.
pub fn forgotten(chat_id: &str) -> ChatResponse {
    ChatResponse { chat_ended: Some(true), ..ChatResponse::ok(chat_id) }
}

/// The answer to a start: GMS's envelope without tokens, and the chat's relay session (its
/// subscription token and position), so a start is also the registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatStarted {
    /// GMS's answer to the create, tokens removed.
    #[serde(flatten)]
    pub envelope: ChatResponse,
    /// The relay's registration of the chat.
    pub relay: SessionRegistered,
}

impl FromJson for ChatStarted {
    fn from_json(value: &Json) -> Option<Self> {
        Some(ChatStarted {
            envelope: ChatResponse::from_json(value)?,
            relay: required(object(value)?, "relay")?,
        })
    }
}
