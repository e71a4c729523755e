//! The widget's behaviour: starting a chat, refreshing only on the allowed triggers,
//! applying relay frames, sending with retry, typing notifications, ending.
//!
//! Refresh triggers: page load, a relay frame that does not continue the transcript, a
//! WebSocket (re)connect, the tab becoming visible after a long hide, coming back online,
//! and the idle refresh (every 30 minutes unless the host page says otherwise).

use futures_channel::mpsc::UnboundedSender;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::gms::{
    ChatOperation, FileLimits, FilePart, PushSubscription, Verdict, Visitor, async_push_user_data,
};
use shared::relay_api::ServerFrame;
use shared::transcript::TranscriptPosition;
use shared::widget_config::WidgetConfig;

use crate::chat::{ChatState, Stored, check_upload};
use crate::net::{self, NetError};
use crate::texts::{self, Texts, fill};

/// What the relay connection is doing, as the visitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// No chat, so no connection is needed.
    Idle,
    /// Connecting for the first time.
    Connecting,
    /// Live: new messages arrive by push.
    Connected,
    /// Lost; trying again with backoff.
    Reconnecting,
    /// The browser is offline.
    Offline,
    /// The relay refuses this page (its origin is not allowed): no live updates, and no
    /// reconnecting, until the page is loaded again.
    Refused,
}

/// A visitor message on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Local id, for keys and retry.
    pub id: u64,
    /// The text.
    pub text: String,
    /// Why it failed; `None` while sending.
    pub failed: Option<String>,
}

/// Commands for the connection task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The chat changed: register it and subscribe.
    Subscribe,
    /// Stop receiving a chat's frames.
    Unsubscribe(String),
    /// Cut a reconnect backoff short (the browser came back online).
    Wake,
}

/// The widget's state and actions. `Copy`: every field is an arena handle.
#[derive(Clone, Copy)]
pub struct Controller {
    config: StoredValue<WidgetConfig>,
    /// What the widget says, in the configured language.
    pub texts: &'static Texts,
    /// Everything persisted.
    pub stored: RwSignal<Stored>,
    /// The relay connection.
    pub conn: RwSignal<ConnState>,
    /// A problem to show the visitor.
    pub notice: RwSignal<Option<String>>,
    /// Messages being sent or failed.
    pub outbox: RwSignal<Vec<Outgoing>>,
    /// A chat is being created.
    pub starting: RwSignal<bool>,
    /// A file is being sent.
    pub uploading: RwSignal<bool>,
    refresh: StoredValue<RefreshState>,
    typing: StoredValue<TypingState>,
    commands: StoredValue<Option<UnboundedSender<Command>>>,
    next_id: StoredValue<u64>,
}

#[derive(Default)]
struct RefreshState {
    running: bool,
    again: bool,
}

#[derive(Default)]
struct TypingState {
    sent: bool,
    generation: u64,
}

impl Controller {
    /// The controller over what localStorage held.
    pub fn new(config: WidgetConfig, stored: Stored) -> Controller {
        Controller {
            texts: texts::for_language(&config.language),
            config: StoredValue::new(config),
            stored: RwSignal::new(stored),
            conn: RwSignal::new(ConnState::Idle),
            notice: RwSignal::new(None),
            outbox: RwSignal::new(Vec::new()),
            starting: RwSignal::new(false),
            uploading: RwSignal::new(false),
            refresh: StoredValue::new(RefreshState::default()),
            typing: StoredValue::new(TypingState::default()),
            commands: StoredValue::new(None),
            next_id: StoredValue::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> WidgetConfig {
        self.config.get_value()
    }

    /// Wires the connection task's command channel.
    pub fn set_commands(&self, sender: UnboundedSender<Command>) {
        self.commands.set_value(Some(sender));
    }

    /// Tells the connection task something.
    pub fn command(&self, command: Command) {
        self.commands.with_value(|c| {
            if let Some(sender) = c {
                let _ = sender.unbounded_send(command);
            }
        });
    }

    /// The active (not ended) chat, untracked.
    pub fn active_chat(&self) -> Option<ChatState> {
        self.stored.with_untracked(|s| s.chat.clone().filter(|c| !c.ended))
    }

    fn update_chat(&self, f: impl FnOnce(&mut ChatState)) {
        self.stored.update(|s| {
            if let Some(chat) = s.chat.as_mut() {
                f(chat);
            }
        });
    }

    /// Creates a chat with GMS, subscribed to push, then connects it to the relay.
    pub fn start(&self, visitor: Visitor) {
        let this = *self;
        this.starting.set(true);
        this.notice.set(None);
        spawn_local(async move {
            let config = this.config();
            let device_id = this.stored.with_untracked(|s| s.device_id.clone());
            let subscription = PushSubscription::new(device_id, config.node_group.clone());
            let create =
                ChatOperation::Create { visitor, user_data: async_push_user_data(&subscription) };
            match net::gms(&config, &config.service, &create, None).await {
                Ok(response) => match response.credentials() {
                    Some(credentials) => {
                        let mut chat = ChatState::new(&config.service, credentials);
                        chat.apply_response(&response);
                        this.stored.update(|s| s.chat = Some(chat));
                        this.command(Command::Subscribe);
                    }
                    None => this.notice.set(Some(fill(
                        this.texts.could_not_start,
                        &[("reason", &response.error_summary())],
                    ))),
                },
                Err(error) => this.notice.set(Some(error.describe(this.texts))),
            }
            this.starting.set(false);
        });
    }

    /// Fetches what is missing from the stored position. Calls during a refresh make it
    /// run once more afterwards instead of running in parallel.
    pub fn refresh(&self) {
        let busy = self.refresh.try_update_value(|r| {
            let busy = r.running;
            r.running = true;
            r.again |= busy;
            busy
        });
        if busy != Some(false) {
            return;
        }
        let this = *self;
        spawn_local(async move {
            loop {
                let mut gap = false;
                if let Some(chat) = this.stored.with_untracked(|s| s.chat.clone()) {
                    let operation = ChatOperation::Refresh {
                        position: TranscriptPosition::from_value(chat.next_position),
                    };
                    let config = this.config();
                    match net::gms(&config, &chat.service, &operation, Some(&chat.credentials))
                        .await
                    {
                        Ok(response) if response.verdict() == Verdict::Stop => {
                            this.notice.set(Some(fill(
                                this.texts.refused,
                                &[("reason", &response.error_summary())],
                            )));
                        }
                        Ok(response) => {
                            let mut applied = None;
                            this.update_chat(|c| applied = Some(c.apply_response(&response)));
                            gap = applied.is_some_and(|a| a.gap.is_some() && a.fresh > 0);
                            this.notice.set(None);
                        }
                        Err(error) => this.notice.set(Some(error.describe(this.texts))),
                    }
                }
                let again = this
                    .refresh
                    .try_update_value(|r| {
                        let again = r.again || gap;
                        r.again = false;
                        r.running = again;
                        again
                    })
                    .unwrap_or(false);
                if !again {
                    break;
                }
            }
        });
    }

    /// A frame from the relay.
    pub fn handle_frame(&self, frame: ServerFrame) {
        let Some(chat_id) = self.active_chat().map(|c| c.credentials.chat_id) else { return };
        if frame.chat_id().is_some_and(|id| id != chat_id) {
            return;
        }
        match frame {
            ServerFrame::Subscribed { position, .. } => {
                let behind = self.stored.with_untracked(|s| {
                    s.chat.as_ref().is_some_and(|c| position > c.next_position)
                });
                if behind {
                    self.refresh();
                }
            }
            ServerFrame::Events { messages, next_position, .. } => {
                let mut needs_refresh = false;
                self.update_chat(|c| {
                    let applied = c.apply_events(messages);
                    needs_refresh =
                        applied.gap.is_some() || next_position.is_some_and(|n| n > c.next_position);
                });
                if needs_refresh {
                    self.refresh();
                }
            }
            ServerFrame::Changed { .. } | ServerFrame::Ended { .. } => self.refresh(),
            ServerFrame::Tokens { alias, .. } => self.update_chat(|c| c.credentials.alias = alias),
            ServerFrame::Error { message, .. } => {
                leptos::logging::warn!("gms-chat relay: {message}");
            }
            ServerFrame::Unknown => {}
        }
    }

    /// Sends a message; a failure keeps it in the outbox to retry.
    pub fn send(&self, text: &str) {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        let id = self.next_id.try_update_value(|n| {
            *n += 1;
            *n
        });
        let id = id.unwrap_or_default();
        self.outbox.update(|o| o.push(Outgoing { id, text: text.clone(), failed: None }));
        self.typing.update_value(|t| {
            t.sent = false;
            t.generation += 1;
        });
        self.deliver(id, text);
    }

    /// Tries a failed message again.
    pub fn retry(&self, id: u64) {
        let Some(text) =
            self.outbox.with_untracked(|o| o.iter().find(|m| m.id == id).map(|m| m.text.clone()))
        else {
            return;
        };
        self.outbox.update(|o| o.iter_mut().filter(|m| m.id == id).for_each(|m| m.failed = None));
        self.deliver(id, text);
    }

    fn deliver(&self, id: u64, text: String) {
        let this = *self;
        spawn_local(async move {
            let Some(chat) = this.active_chat() else { return };
            let operation = ChatOperation::Send {
                message: text,
                message_type: None,
                position: TranscriptPosition::from_value(chat.next_position),
            };
            let failure =
                match net::gms(&this.config(), &chat.service, &operation, Some(&chat.credentials))
                    .await
                {
                    Ok(response) if response.status_code == 0 => {
                        this.update_chat(|c| {
                            c.apply_response(&response);
                        });
                        None
                    }
                    Ok(response) if response.chat_ended == Some(true) => {
                        this.update_chat(|c| c.ended = true);
                        Some(this.texts.chat_ended.to_owned())
                    }
                    Ok(response) => Some(response.error_summary()),
                    Err(NetError::Network(_)) => Some(this.texts.not_sent_offline.to_owned()),
                    Err(error) => Some(error.describe(this.texts)),
                };
            this.outbox.update(|o| match failure {
                None => o.retain(|m| m.id != id),
                Some(reason) => o
                    .iter_mut()
                    .filter(|m| m.id == id)
                    .for_each(|m| m.failed = Some(reason.clone())),
            });
        });
    }

    /// The visitor typed: `startTyping` once, `stopTyping` after 3 s without input.
    pub fn typed(&self, text: &str) {
        let Some(chat) = self.active_chat() else { return };
        let (start, generation) = self
            .typing
            .try_update_value(|t| {
                t.generation += 1;
                let start = !t.sent && !text.trim().is_empty();
                t.sent |= start;
                (start, t.generation)
            })
            .unwrap_or((false, 0));
        let this = *self;
        spawn_local(async move {
            let config = this.config();
            if start {
                let op = ChatOperation::StartTyping { message: None };
                let _ = net::gms_once(&config, &chat.service, &op, &chat.credentials).await;
            }
            gloo_timers::future::TimeoutFuture::new(3_000).await;
            let idle = this.typing.with_value(|t| t.generation == generation && t.sent);
            if idle {
                this.typing.update_value(|t| t.sent = false);
                let op = ChatOperation::StopTyping { message: None };
                let _ = net::gms_once(&config, &chat.service, &op, &chat.credentials).await;
            }
        });
    }

    /// The visitor ends the chat.
    pub fn end(&self) {
        let this = *self;
        spawn_local(async move {
            let Some(chat) = this.active_chat() else { return };
            let config = this.config();
            match net::gms(
                &config,
                &chat.service,
                &ChatOperation::Disconnect,
                Some(&chat.credentials),
            )
            .await
            {
                Ok(response) => {
                    this.update_chat(|c| {
                        c.apply_response(&response);
                        c.ended = true;
                    });
                    if let Some(token) = &chat.relay_token {
                        net::forget(&config, &chat.credentials.chat_id, token).await;
                    }
                    this.command(Command::Unsubscribe(chat.credentials.chat_id));
                }
                Err(error) => this.notice.set(Some(error.describe(this.texts))),
            }
        });
    }

    /// Sends a file the visitor picked, once the chat's current limits allow it.
    pub fn upload(&self, file: web_sys::File) {
        let Some(chat) = self.active_chat() else { return };
        let this = *self;
        this.uploading.set(true);
        this.notice.set(None);
        spawn_local(async move {
            if let Err(problem) = this.try_upload(&chat, &file).await {
                this.notice.set(Some(problem));
            }
            this.uploading.set(false);
        });
    }

    async fn try_upload(&self, chat: &ChatState, file: &web_sys::File) -> Result<(), String> {
        let (config, t) = (self.config(), self.texts);
        let failed = |reason: String| fill(t.file_failed, &[("reason", &reason)]);
        let credentials = Some(&chat.credentials);
        let limits = ChatOperation::FileLimits;
        let answer = net::gms(&config, &chat.service, &limits, credentials)
            .await
            .map_err(|e| failed(e.describe(t)))?;
        let name = file.name();
        if let Some(limits) = FileLimits::from_response(&answer) {
            check_upload(&limits, &name, file.size() as u64, t)?;
        }
        let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
            .await
            .map_err(|_| failed(t.unreachable.to_owned()))?;
        let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
        let file = FilePart { file_name: name, content_type: file.type_(), bytes };
        let upload = ChatOperation::Upload { file, description: None, user_data: Vec::new() };
        let response = net::gms(&config, &chat.service, &upload, credentials)
            .await
            .map_err(|e| failed(e.describe(t)))?;
        if response.status_code != 0 {
            return Err(failed(response.error_summary()));
        }
        // Chat Server pushes no notification for the visitor's own file: unless the answer
        // carried the event, fetch it.
        let mut shown = false;
        self.update_chat(|c| {
            let applied = c.apply_response(&response);
            shown = applied.fresh > 0 && applied.gap.is_none();
        });
        if !shown {
            self.refresh();
        }
        Ok(())
    }

    /// Fetches a chat file and hands it to the browser as a download.
    pub fn download(&self, file_id: String, name: String) {
        let Some(chat) = self.active_chat() else { return };
        let this = *self;
        spawn_local(async move {
            let config = this.config();
            match net::download(&config, &chat.service, &chat.credentials, &file_id).await {
                Ok(bytes) => crate::host::save_file(&bytes, &name),
                Err(error) => this.notice.set(Some(error.describe(this.texts))),
            }
        });
    }

    /// Forgets the ended chat so the pre-chat form shows again.
    pub fn new_chat(&self) {
        self.stored.update(|s| s.chat = None);
        self.outbox.set(Vec::new());
        self.notice.set(None);
        self.conn.set(ConnState::Idle);
    }

    /// Stores the relay's token for the chat.
    pub fn set_relay_token(&self, chat_id: &str, token: String) {
        self.update_chat(|c| {
            if c.credentials.chat_id == chat_id {
                c.relay_token = Some(token);
            }
        });
    }
}
