//! The 15 Chat API V2 operations as a typed model that encodes to a path and form fields.

use crate::form::{encode, encode_path_segment, user_data_field};
use crate::json::{FromJson, Json, Object, ToJson, object, or_default, required};
use crate::transcript::TranscriptPosition;

use super::CHAT_API_PREFIX;

/// The tokens that identify a chat session to GMS after it was created.
///
/// `chatId` never changes; `alias` may change with every response (Chat Server restarts),
/// so the latest one must be kept and sent back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// Session id, also the URL path segment.
    pub chat_id: String,
    /// This party's id; empty when GMS gave none (deprecated since GMS 8.5.112), and
    /// then never sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// The session secret. Never logged. Empty in a browser in proxy mode, where only the
    /// relay holds it (`shared::proxy`); an empty token is never written.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secure_key: String,
    /// The Chat Server that served the last response; empty when GMS gave none
    /// (deprecated since GMS 8.5.112), and then never sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

impl FromJson for Credentials {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        Some(Credentials {
            chat_id: required(v, "chatId")?,
            user_id: or_default(v, "userId")?,
            secure_key: or_default(v, "secureKey")?,
            alias: or_default(v, "alias")?,
        })
    }
}

impl ToJson for Credentials {
    fn write_json(&self, out: &mut String) {
        fn filled(token: &String) -> Option<&String> {
            Some(token).filter(|t| !t.is_empty())
        }
        Object::new(out)
            .field("chatId", &self.chat_id)
            .some("userId", filled(&self.user_id))
            .some("secureKey", filled(&self.secure_key))
            .some("alias", filled(&self.alias))
            .end();
    }
}

impl Credentials {
    /// A chat known by its id alone: the widget's in proxy mode, where the relay holds
    /// every token.
    pub fn id_only(chat_id: &str) -> Credentials {
        Credentials {
            chat_id: chat_id.to_owned(),
            user_id: String::new(),
            secure_key: String::new(),
            alias: String::new(),
        }
    }

    /// Whether the chat may be on the Chat Server `alias`: it is its alias, or GMS gave the
    /// chat none (8.5.112 and later), so it could be on any.
    pub fn may_be_on(&self, alias: &str) -> bool {
        self.alias == alias || self.alias.is_empty()
    }
}

/// Who starts a chat: a nickname, or a first and last name, plus optional contact data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visitor {
    /// Display name; required unless both first and last name are given.
    pub nickname: Option<String>,
    /// First name, stored on the contact.
    pub first_name: Option<String>,
    /// Last name, stored on the contact.
    pub last_name: Option<String>,
    /// E-mail address, used to identify the contact.
    pub email_address: Option<String>,
    /// The chat's subject.
    pub subject: Option<String>,
}

/// The file of an upload: its name, MIME type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// File name as the visitor chose it.
    pub file_name: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// One Chat API V2 operation with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatOperation {
    /// Request Chat: creates the session.
    Create {
        /// Name and contact data.
        visitor: Visitor,
        /// `userData[key]` entries, in order.
        user_data: Vec<(String, String)>,
    },
    /// Send Message.
    Send {
        /// The text.
        message: String,
        /// Optional sender-defined type, echoed on the event.
        message_type: Option<String>,
        /// Where the returned transcript slice starts.
        position: TranscriptPosition,
        /// The rich message this answers (a choice among its quick replies or buttons):
        /// sent as `eventAttributes`, as Genesys Widgets does (`crate::rich`).
        reply_to: Option<u64>,
    },
    /// Start Typing, with the text currently in the box.
    StartTyping {
        /// Typing preview for the agent.
        message: Option<String>,
    },
    /// Stop Typing.
    StopTyping {
        /// Typing preview for the agent.
        message: Option<String>,
    },
    /// Refresh: the transcript from a position. `None` is the acknowledging ping.
    Refresh {
        /// Where the returned transcript slice starts.
        position: TranscriptPosition,
    },
    /// Disconnect: the visitor leaves and the chat ends.
    Disconnect,
    /// Push URL to the agent.
    PushUrl {
        /// An absolute URL.
        url: String,
    },
    /// Update Nickname.
    UpdateNickname {
        /// The new display name.
        nickname: String,
    },
    /// Custom Notice.
    CustomNotice {
        /// Notice text.
        message: String,
        /// Optional notice type.
        message_type: Option<String>,
    },
    /// Read Receipt: the visitor has read up to a position.
    ReadReceipt {
        /// The position read.
        position: TranscriptPosition,
    },
    /// Update Data: attach user data to the interaction.
    UpdateData {
        /// `userData[key]` entries.
        user_data: Vec<(String, String)>,
    },
    /// File limits: answered with a `Notice` carrying the limits.
    FileLimits,
    /// Upload a file (multipart).
    Upload {
        /// The file.
        file: FilePart,
        /// Optional `userData[file-description]`.
        description: Option<String>,
        /// Other `userData[key]` entries.
        user_data: Vec<(String, String)>,
    },
    /// Download a file: the answer is the raw bytes, not an envelope.
    Download {
        /// The chat file id.
        file_id: String,
    },
    /// Delete a file.
    Delete {
        /// The chat file id.
        file_id: String,
    },
}

/// The body of an encoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// `application/x-www-form-urlencoded` fields, in order.
    Form(Vec<(String, String)>),
    /// `multipart/form-data`: text fields, then the file part named `file`.
    Multipart {
        /// Text parts, in order.
        fields: Vec<(String, String)>,
        /// The part named `file`.
        file: FilePart,
    },
}

/// A request ready for any HTTP client: `POST {base}{path}` with `body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRequest {
    /// Path below the GMS base URL, already percent-encoded.
    pub path: String,
    /// The body.
    pub body: RequestBody,
    /// The operation's name, for logs and metrics (`send`, `refresh`, ...).
    pub operation: &'static str,
}

impl EncodedRequest {
    /// The form body as a string; `None` for multipart.
    pub fn form_body(&self) -> Option<String> {
        match &self.body {
            RequestBody::Form(fields) => Some(encode(fields)),
            RequestBody::Multipart { .. } => None,
        }
    }
}

impl ChatOperation {
    /// The operation's name as it appears in the URL (or `create`).
    pub fn name(&self) -> &'static str {
        match self {
            ChatOperation::Create { .. } => "create",
            ChatOperation::Send { .. } => "send",
            ChatOperation::StartTyping { .. } => "startTyping",
            ChatOperation::StopTyping { .. } => "stopTyping",
            ChatOperation::Refresh { .. } => "refresh",
            ChatOperation::Disconnect => "disconnect",
            ChatOperation::PushUrl { .. } => "pushUrl",
            ChatOperation::UpdateNickname { .. } => "updateNickname",
            ChatOperation::CustomNotice { .. } => "customNotice",
            ChatOperation::ReadReceipt { .. } => "readReceipt",
            ChatOperation::UpdateData { .. } => "updateData",
            ChatOperation::FileLimits => "fileLimits",
            ChatOperation::Upload { .. } => "upload",
            ChatOperation::Download { .. } => "download",
            ChatOperation::Delete { .. } => "delete",
        }
    }

    /// Encodes the operation for `service`. Every operation but `Create` needs credentials;
    /// `Create` ignores them.
    pub fn encode(&self, service: &str, credentials: Option<&Credentials>) -> EncodedRequest {
        let service_path = format!("{CHAT_API_PREFIX}/{}", encode_path_segment(service));
        let operation = self.name();
        let chat_path = match credentials {
            Some(c) => format!("{service_path}/{}", encode_path_segment(&c.chat_id)),
            None => format!("{service_path}/"),
        };
        let mut fields = credentials.map(session_fields).unwrap_or_default();
        let suffix = match self {
            ChatOperation::Create { visitor, user_data } => {
                return EncodedRequest {
                    path: service_path,
                    body: RequestBody::Form(create_fields(visitor, user_data)),
                    operation,
                };
            }
            ChatOperation::Send { message, message_type, position, reply_to } => {
                fields.push(("message".into(), message.clone()));
                push_opt(&mut fields, "messageType", message_type.as_ref());
                if let Some(index) = reply_to {
                    fields.push(("eventAttributes".into(), crate::rich::reply_attributes(*index)));
                }
                fields.push(("transcriptPosition".into(), position.value().to_string()));
                "send".to_owned()
            }
            ChatOperation::StartTyping { message } => {
                push_opt(&mut fields, "message", message.as_ref());
                "startTyping".to_owned()
            }
            ChatOperation::StopTyping { message } => {
                push_opt(&mut fields, "message", message.as_ref());
                "stopTyping".to_owned()
            }
            ChatOperation::Refresh { position } => {
                fields.push(("transcriptPosition".into(), position.value().to_string()));
                "refresh".to_owned()
            }
            ChatOperation::Disconnect => "disconnect".to_owned(),
            ChatOperation::PushUrl { url } => {
                fields.push(("pushUrl".into(), url.clone()));
                "pushUrl".to_owned()
            }
            ChatOperation::UpdateNickname { nickname } => {
                fields.push(("nickname".into(), nickname.clone()));
                "updateNickname".to_owned()
            }
            ChatOperation::CustomNotice { message, message_type } => {
                fields.push(("message".into(), message.clone()));
                push_opt(&mut fields, "messageType", message_type.as_ref());
                "customNotice".to_owned()
            }
            ChatOperation::ReadReceipt { position } => {
                fields.push(("transcriptPosition".into(), position.value().to_string()));
                "readReceipt".to_owned()
            }
            ChatOperation::UpdateData { user_data } => {
                push_user_data(&mut fields, user_data);
                "updateData".to_owned()
            }
            ChatOperation::FileLimits => "file/limits".to_owned(),
            ChatOperation::Upload { file, description, user_data } => {
                push_opt_user_data(&mut fields, "file-description", description.as_ref());
                push_user_data(&mut fields, user_data);
                return EncodedRequest {
                    path: format!("{chat_path}/file"),
                    body: RequestBody::Multipart { fields, file: file.clone() },
                    operation,
                };
            }
            ChatOperation::Download { file_id } => {
                format!("file/{}/download", encode_path_segment(file_id))
            }
            ChatOperation::Delete { file_id } => {
                format!("file/{}/delete", encode_path_segment(file_id))
            }
        };
        EncodedRequest {
            path: format!("{chat_path}/{suffix}"),
            body: RequestBody::Form(fields),
            operation,
        }
    }
}

/// The tokens, each only if GMS gave it: an older GMS wants all three, a newer one may
/// have handed out only `secureKey`.
fn session_fields(c: &Credentials) -> Vec<(String, String)> {
    [("secureKey", &c.secure_key), ("userId", &c.user_id), ("alias", &c.alias)]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_owned(), value.clone()))
        .collect()
}

fn create_fields(visitor: &Visitor, user_data: &[(String, String)]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    push_opt(&mut fields, "nickname", visitor.nickname.as_ref());
    push_opt(&mut fields, "firstName", visitor.first_name.as_ref());
    push_opt(&mut fields, "lastName", visitor.last_name.as_ref());
    push_opt(&mut fields, "emailAddress", visitor.email_address.as_ref());
    push_opt(&mut fields, "subject", visitor.subject.as_ref());
    push_user_data(&mut fields, user_data);
    fields
}

fn push_opt(fields: &mut Vec<(String, String)>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        fields.push((key.to_owned(), value.clone()));
    }
}

fn push_opt_user_data(fields: &mut Vec<(String, String)>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        fields.push((user_data_field(key), value.clone()));
    }
}

fn push_user_data(fields: &mut Vec<(String, String)>, user_data: &[(String, String)]) {
    fields.extend(user_data.iter().map(|(k, v)| (user_data_field(k), v.clone())));
}
