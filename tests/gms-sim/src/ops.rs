//! The 15 Chat API V2 operations on the simulated world.

use std::collections::BTreeMap;

use rand::Rng;
use shared::gms::{ChatEvent, ChatResponse, EventType, FILE_LIMITS_NOTICE, FilePart, Party};
use tokio::time::Instant;

use crate::chat::{CLIENT_ID, Chat, PushSubscription, StoredFile, now_millis};
use crate::world::{Effects, World};

/// A parsed Chat API request.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    pub(crate) service: String,
    /// `None` for create.
    pub(crate) chat_id: Option<String>,
    /// The path after the chat id: `send`, `file/limits`, `file/{id}/download`, ...
    pub(crate) operation: String,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) file: Option<FilePart>,
}

impl ApiRequest {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn non_empty(&self, key: &str) -> Option<String> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn user_data(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .filter_map(|(k, v)| Some((shared::form::user_data_key(k)?.to_owned(), v.clone())))
            .collect()
    }

    /// `transcriptPosition`, or the operation's default when absent or unreadable.
    fn position(&self, default: u64) -> u64 {
        self.get("transcriptPosition").and_then(|v| v.trim().parse().ok()).unwrap_or(default)
    }

    /// The operation's name for statistics (`create`, `send`, `fileLimits`, `download`, ...).
    pub(crate) fn stat_name(&self) -> String {
        let parts: Vec<&str> = self.operation.split('/').collect();
        match parts.as_slice() {
            [] | [""] if self.chat_id.is_none() => "create".to_owned(),
            ["file"] => "upload".to_owned(),
            ["file", "limits"] => "fileLimits".to_owned(),
            ["file", _, action] => (*action).to_owned(),
            _ => self.operation.clone(),
        }
    }
}

/// What the HTTP layer sends back.
#[derive(Debug)]
pub(crate) enum Reply {
    Envelope(ChatResponse),
    File { name: String, content_type: String, bytes: Vec<u8> },
    NotFound,
}

impl World {
    pub(crate) fn chat_api(&mut self, request: &ApiRequest, effects: &mut Effects) -> Reply {
        let Some(chat_id) = request.chat_id.clone() else {
            return Reply::Envelope(self.create(request, effects));
        };
        let operation = request.stat_name();
        let known = self.chats.get(&chat_id).is_some_and(|c| c.service == request.service);
        if !known {
            return self.refused(2, request, 249, MEDIA_SERVER_FAILED);
        }
        if let Some(chat) = self.chats.get_mut(&chat_id) {
            if request.get("secureKey") != Some(chat.secure_key.as_str()) {
                return self.refused(2, request, 8210, "invalid secure key");
            }
            if request.get("userId").is_some_and(|u| u != chat.user_id) {
                return self.refused(2, request, 8201, "no such user in this chat");
            }
            chat.last_client_request = Instant::now();
            if chat.ended {
                // The final transcript stays readable, so a visitor who was away sees the end.
                return if operation == "refresh" {
                    Reply::Envelope(chat.envelope(request.position(1)))
                } else {
                    self.refused(2, request, 249, MEDIA_SERVER_FAILED)
                };
            }
        }
        if !self.restore_if_needed(&chat_id) {
            return self.refused(1, request, 8201, "no Chat Server is available; retry");
        }
        self.session_operation(&chat_id, &operation, request, effects)
    }

    fn create(&mut self, request: &ApiRequest, effects: &mut Effects) -> ChatResponse {
        let nickname = request.non_empty("nickname");
        let first = request.non_empty("firstName");
        let last = request.non_empty("lastName");
        let nickname = match (nickname, &first, &last) {
            (Some(n), _, _) => n,
            (None, Some(f), Some(l)) => format!("{f} {l}"),
            (None, Some(_), None) => return self.refusal(2, request, 103, "last name is required"),
            (None, None, Some(_)) => {
                return self.refusal(2, request, 102, "first name is required");
            }
            (None, None, None) => return self.refusal(2, request, 161, "nickname is required"),
        };
        let Some((alias, pid)) = self.pick_server(None) else {
            return self.refusal(1, request, 240, "cannot start a new chat at this time");
        };
        let user_data = request.user_data();
        let chat_id = random_id(16, ALNUM);
        let client = Party { nickname, participant_id: CLIENT_ID, party_type: "Client".to_owned() };
        let now = Instant::now();
        let mut chat = Chat {
            id: chat_id.clone(),
            service: request.service.clone(),
            user_id: random_id(16, HEX_UPPER),
            secure_key: random_id(16, HEX_LOWER),
            alias,
            pid,
            client: client.clone(),
            agent: None,
            transcript: Vec::new(),
            ended: false,
            async_mode: flag(&user_data, "GCTI_Chat_AsyncMode"),
            push: push_subscription(&user_data),
            user_data,
            read_position: None,
            replies: BTreeMap::new(),
            files: Vec::new(),
            pending_pushes: Vec::new(),
            last_client_request: now,
            last_major_activity: now,
            idle_alert_at: None,
        };
        chat.append(EventType::ParticipantJoined, client, None);
        let response = chat.envelope(1);
        self.chats.insert(chat_id.clone(), chat);
        effects.bot.push((chat_id, None));
        response
    }

    fn session_operation(
        &mut self,
        chat_id: &str,
        operation: &str,
        request: &ApiRequest,
        effects: &mut Effects,
    ) -> Reply {
        let Some(client) = self.chats.get(chat_id).map(|c| c.client.clone()) else {
            return Reply::NotFound;
        };
        let mut position = request.position(0);
        match operation {
            "refresh" => {
                self.acknowledge(chat_id, Instant::now());
                position = request.position(1);
            }
            "send" => {
                let Some(message) = request.get("message").map(str::to_owned) else {
                    return self.missing(request, "message");
                };
                let index = self.append(
                    chat_id,
                    EventType::Message,
                    client,
                    Some(message.clone()),
                    effects,
                );
                if let (Some(kind), Some(chat)) =
                    (request.non_empty("messageType"), self.chats.get_mut(chat_id))
                    && let Some(event) = chat.last_event_mut()
                {
                    event.message_type = Some(kind);
                }
                let related = request.get("eventAttributes").and_then(shared::rich::replied_to);
                if let (Some(index), Some(related), Some(chat)) =
                    (index, related, self.chats.get_mut(chat_id))
                {
                    chat.replies.insert(index, related);
                }
                effects.bot.push((chat_id.to_owned(), Some(message)));
            }
            "startTyping" | "stopTyping" => {
                let kind = if operation == "startTyping" {
                    EventType::TypingStarted
                } else {
                    EventType::TypingStopped
                };
                self.append(chat_id, kind, client, request.non_empty("message"), effects);
            }
            "disconnect" => {
                self.append(chat_id, EventType::ParticipantLeft, client, None, effects);
                self.end_chat(chat_id);
            }
            "pushUrl" => {
                let Some(url) = request.non_empty("pushUrl") else {
                    return self.missing(request, "pushUrl");
                };
                self.append(chat_id, EventType::PushUrl, client, Some(url), effects);
            }
            "updateNickname" => {
                let Some(nickname) = request.non_empty("nickname") else {
                    return self.missing(request, "nickname");
                };
                if let Some(chat) = self.chats.get_mut(chat_id) {
                    chat.client.nickname.clone_from(&nickname);
                    let renamed = chat.client.clone();
                    chat.append(EventType::NicknameUpdated, renamed, Some(nickname));
                }
            }
            "customNotice" => {
                self.append(
                    chat_id,
                    EventType::CustomNotice,
                    client,
                    request.get("message").map(str::to_owned),
                    effects,
                );
            }
            "readReceipt" => {
                let position = request.position(0);
                if let Some(chat) = self.chats.get_mut(chat_id) {
                    chat.read_position = chat.read_position.max(Some(position));
                }
            }
            "updateData" => {
                let data = request.user_data();
                if let Some(chat) = self.chats.get_mut(chat_id) {
                    chat.user_data.extend(data);
                }
            }
            "fileLimits" => return self.file_limits(request),
            "upload" => return self.upload(chat_id, request, effects),
            "download" => return self.download(chat_id, request),
            "delete" => {
                let file_id = file_id(request);
                let Some(chat) = self.chats.get_mut(chat_id) else { return Reply::NotFound };
                let Some(file) = chat.files.iter_mut().find(|f| f.id == file_id && !f.deleted)
                else {
                    return self.refused(2, request, 207, "no such file");
                };
                file.deleted = true;
                self.append(chat_id, EventType::FileDeleted, client, Some(file_id), effects);
            }
            _ => return Reply::NotFound,
        }
        match self.chats.get(chat_id) {
            Some(chat) => Reply::Envelope(chat.envelope(position)),
            None => Reply::NotFound,
        }
    }

    fn file_limits(&self, request: &ApiRequest) -> Reply {
        let Some(chat) = request.chat_id.as_ref().and_then(|id| self.chats.get(id)) else {
            return Reply::NotFound;
        };
        let config = &self.config;
        let live: Vec<&StoredFile> = chat.files.iter().filter(|f| !f.deleted).collect();
        let used_size: u64 = live.iter().map(|f| f.bytes.len() as u64).sum();
        let mut notice = ChatEvent::new(0, EventType::Notice, chat.client.clone(), now_millis());
        notice.index = None;
        notice.text = Some(FILE_LIMITS_NOTICE.to_owned());
        let pairs = [
            ("upload-max-files", config.upload_max_files.to_string()),
            ("upload-max-file-size", config.upload_max_file_size.to_string()),
            ("upload-max-total-size", config.upload_max_total_size.to_string()),
            ("used-upload-max-files", live.len().to_string()),
            ("used-upload-max-total-size", used_size.to_string()),
            ("download-attempts", config.download_attempts.to_string()),
            ("used-download-attempts", "0".to_owned()),
            ("upload-need-agent", "false".to_owned()),
            ("upload-file-types", config.upload_file_types.clone()),
            ("delete-file", "odd".to_owned()),
        ];
        notice.user_data = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut response = chat.envelope(0);
        response.messages = vec![notice];
        Reply::Envelope(response)
    }

    fn upload(&mut self, chat_id: &str, request: &ApiRequest, effects: &mut Effects) -> Reply {
        let Some(file) = request.file.clone() else {
            return self.refused(2, request, 400, "multipart part `file` is missing");
        };
        let config = self.config.clone();
        let Some(chat) = self.chats.get_mut(chat_id) else { return Reply::NotFound };
        let live: Vec<&StoredFile> = chat.files.iter().filter(|f| !f.deleted).collect();
        let size = file.bytes.len() as u64;
        let total: u64 = live.iter().map(|f| f.bytes.len() as u64).sum::<u64>() + size;
        let extension = file
            .file_name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let allowed =
            config.upload_file_types.split(':').any(|t| t.eq_ignore_ascii_case(&extension));
        let refusal = if live.len() as u64 >= config.upload_max_files {
            Some((201, "maximum number of files reached"))
        } else if size > config.upload_max_file_size || total > config.upload_max_total_size {
            Some((202, "file is too large"))
        } else if !allowed {
            Some((203, "file type is not allowed"))
        } else {
            None
        };
        if let Some((code, advice)) = refusal {
            return self.refused(2, request, code, advice);
        }
        let id = random_id(16, HEX_UPPER);
        chat.files.push(StoredFile {
            id: id.clone(),
            name: file.file_name.clone(),
            content_type: file.content_type.clone(),
            bytes: file.bytes,
            downloads: 0,
            deleted: false,
        });
        let client = chat.client.clone();
        chat.append(EventType::FileUploaded, client, Some(id.clone()));
        if let Some(event) = chat.last_event_mut() {
            event.user_data.insert("file-id".into(), id.clone());
            event.user_data.insert("file-name".into(), file.file_name);
            event.user_data.insert("file-size".into(), size.to_string());
            event.user_data.insert("file-source".into(), "ucs".into());
            if let Some(description) = request.user_data().get("file-description") {
                event.user_data.insert("file-description".into(), description.clone());
            }
        }
        self.queue_push_for_last_event(chat_id, effects);
        let Some(chat) = self.chats.get(chat_id) else { return Reply::NotFound };
        let mut response = chat.envelope(request.position(0));
        response.user_data.insert("file-id".into(), id);
        Reply::Envelope(response)
    }

    fn download(&mut self, chat_id: &str, request: &ApiRequest) -> Reply {
        let file_id = file_id(request);
        let attempts = self.config.download_attempts;
        let Some(chat) = self.chats.get_mut(chat_id) else { return Reply::NotFound };
        let Some(file) = chat.files.iter_mut().find(|f| f.id == file_id && !f.deleted) else {
            return self.refused(2, request, 207, "no such file");
        };
        if file.downloads >= attempts {
            return self.refused(2, request, 206, "download attempts exhausted");
        }
        file.downloads += 1;
        Reply::File {
            name: file.name.clone(),
            content_type: file.content_type.clone(),
            bytes: file.bytes.clone(),
        }
    }
}

impl World {
    fn refused(&self, status_code: i64, request: &ApiRequest, code: i64, advice: &str) -> Reply {
        Reply::Envelope(self.refusal(status_code, request, code, advice))
    }

    fn missing(&self, request: &ApiRequest, field: &str) -> Reply {
        self.refused(2, request, 400, &format!("`{field}` is required"))
    }
}

/// GMS's advice for a request on a session that is gone (captured, code 249).
const MEDIA_SERVER_FAILED: &str = "Media server was not able to execute request. referenceId[sim]";

fn file_id(request: &ApiRequest) -> String {
    request.operation.split('/').nth(1).unwrap_or_default().to_owned()
}

fn flag(user_data: &BTreeMap<String, String>, key: &str) -> bool {
    user_data.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The push subscription, from the documented GCTI_* keys or the snake_case and camelCase
/// spellings other clients use.
fn push_subscription(user_data: &BTreeMap<String, String>) -> Option<PushSubscription> {
    let read = |keys: &[&str]| keys.iter().find_map(|k| user_data.get(*k)).cloned();
    let kind =
        read(&["GCTI_GMS_PushDeviceType", "push_notification_type", "pushNotificationType"])?;
    let device_id =
        read(&["GCTI_GMS_PushDeviceId", "push_notification_deviceid", "pushNotificationDeviceId"])?;
    let subscribed =
        read(&["GCTI_Chat_PushSubscribe"]).is_none_or(|v| v.eq_ignore_ascii_case("true"));
    if !subscribed || !kind.eq_ignore_ascii_case("customhttp") || device_id.is_empty() {
        return None;
    }
    Some(PushSubscription {
        device_id,
        include_payload: flag(user_data, "GCTI_GMS_PushIncludePayload"),
        resend: flag(user_data, "GCTI_GMS_PushResend"),
    })
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX_UPPER: &[u8] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8] = b"0123456789abcdef";

fn random_id(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}
