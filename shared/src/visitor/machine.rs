//! The visitor's side of the chat as one pure state machine: `Machine::step` takes an
//! input (a relay frame, a GMS answer, a page trigger, the visitor's action, a socket
//! event, another tab's write) and returns the effects to run (requests, socket commands,
//! timers, saving).
//!
//! Tabs of one site share one chat: one of them leads (holds the relay connection and
//! refreshes on triggers), the others follow what it stores; each tab still makes the
//! requests of its own visitor's actions. No DOM, no network, no clock: time and randomness come in with the
//! inputs. The widget runs its effects in the browser; the reliability suite runs the
//! very same machine in hundreds of headless visitors.
//!
//! The refresh policy lives here and nowhere else. A refresh is asked for only by: the
//! catch-up after the relay connection is (re)established (or after it failed, when there
//! is no connection to catch up through), a frame that does not continue the transcript
//! (`changed`, `ended`, a gap, a `subscribed` position ahead of ours), the page becoming
//! visible after a long hide, the browser coming back online, the idle timer, and a file
//! the visitor sent whose event the answer did not carry. Concurrent asks coalesce: one
//! refresh runs at a time, and one more runs after it if anything asked meanwhile.

mod answers;
mod hours;
mod identity;
mod notify;
mod receipts;
mod relay;
mod survey;
mod upload;

pub use notify::return_page;
pub use receipts::RECEIPT_PAUSE;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::gms::{ChatOperation, PushSubscription, RetryPolicy, Visitor, async_push_user_data};
use crate::mask::Mask;
use crate::relay_api::{Identity, OfficeHours};
use crate::transcript::TranscriptPosition;
use crate::widget_config::{ClosedMode, SurveyKind};

use super::chat::{ChatState, Stored};
use super::io::{Conn, Effect, Failure, GmsResult, Input, Notice, Outgoing, PickedFile, RequestId};

/// How long the page must have been hidden for its return to refresh.
pub const LONG_HIDE: Duration = Duration::from_secs(60);
/// How long after the last keystroke the visitor counts as no longer typing.
pub const TYPING_PAUSE: Duration = Duration::from_secs(3);

/// What a request in flight was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    Create,
    Register,
    Refresh,
    Send(u64),
    Typing,
    UserData,
    End,
    /// The limits a picked file is judged against.
    FileLimits,
    Upload,
    /// The identity's running chat, from the relay.
    FindChat,
    /// A resume link's chat, from the relay.
    Resume,
    /// A link back to the conversation.
    ResumeLink,
    /// The visitor's rating, into the chat's user data before their end.
    Rating,
    /// What the visitor has seen.
    Receipt,
}

/// A request in flight, with the chat it was made for (none for create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    chat_id: Option<String>,
    purpose: Purpose,
}

/// The relay socket as the machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Socket {
    Closed,
    Opening,
    /// Open; `registered` once this chat's registration answered on this connection.
    Open {
        registering: bool,
        registered: bool,
    },
}

/// The visitor's chat: the persisted part (`stored`) and what lives only in this page.
#[derive(Debug, Clone)]
pub struct Machine {
    /// What localStorage keeps and tabs share.
    pub stored: Stored,
    /// The GMS chat service new chats are created on.
    service: String,
    /// `GCTI_GMS_NodeGroup` of the push subscription.
    node_group: String,
    /// The relay connection, as shown.
    pub conn: Conn,
    /// A problem to show.
    pub notice: Option<Notice>,
    /// Messages being sent or failed.
    pub outbox: Vec<Outgoing>,
    /// A chat is being created.
    pub starting: bool,
    /// Whether this tab holds the relay connection (true until told otherwise).
    pub leader: bool,
    socket: Socket,
    /// A catch-up refresh is owed since the page loaded or the connection was lost.
    catch_up: bool,
    refreshing: bool,
    refresh_again: bool,
    /// The highest position the relay has reported, and what it was when the running
    /// refresh was asked for: a report no higher than that is covered by its answer.
    relay_position: u64,
    refresh_covers: u64,
    pending: BTreeMap<RequestId, Pending>,
    next_id: u64,
    reconnect_failures: u32,
    reconnect_generation: u64,
    typing_sent: bool,
    typing_generation: u64,
    saved: bool,
    /// The browser holds the widget's record. Until then nothing is written (consent
    /// first): a visitor who never chats leaves nothing behind, opening the panel included.
    persisted: bool,
    /// The site's user data for the next chat (this page only, never stored).
    user_data: BTreeMap<String, String>,
    /// This page can offer Web Push.
    push_capable: bool,
    /// Notifications are being turned on.
    notify_busy: bool,
    /// The file the visitor picked, from the request for its chat's limits until its bytes
    /// are read (the id is that request's, and the read's).
    picked: Option<(RequestId, PickedFile)>,
    /// The site's logged-in visitor (this page only: the hash is a credential).
    identity: Option<Identity>,
    /// A chat taken up from another browser waits for its first catch-up.
    adopting: bool,
    /// The page a link back to the conversation opens, and the link once made.
    link_page: String,
    resume_link: Option<String>,
    /// What is hidden from the visitor's lines before they leave the browser.
    mask: Mask,
    /// The relay is in proxy mode: chats start through it with its push subscription,
    /// the browser keeps no GMS token, and the start is the registration.
    proxy: bool,
    /// The office hours the relay gave for the pre-chat form, once asked (`hours_asked`).
    hours: Option<OfficeHours>,
    hours_asked: bool,
    /// The active chat's expected wait as the relay last sent it (seconds).
    wait: Option<u64>,
    /// The rating offered when a chat ends, whether the relay takes ratings after the end,
    /// and the visitor's own end waiting for theirs.
    survey_kind: SurveyKind,
    surveys_taken: bool,
    rating_before_end: bool,
    /// Whether a chat may start while the office is closed.
    closed_mode: ClosedMode,
    /// What GMS was told the visitor has seen.
    receipts: receipts::Receipts,
}

impl Machine {
    /// A machine over what was stored, creating chats on `service` with push through
    /// `node_group`.
    pub fn new(stored: Stored, service: &str, node_group: &str) -> Machine {
        Machine::over(stored, true, service, node_group)
    }

    /// A machine for a browser that has stored nothing: `device_id` (random) is used if the
    /// visitor starts a chat, which is when the widget first writes to the browser.
    pub fn fresh(device_id: &str, service: &str, node_group: &str) -> Machine {
        let stored = Stored { device_id: device_id.to_owned(), ..Stored::default() };
        Machine::over(stored, false, service, node_group)
    }

    fn over(stored: Stored, persisted: bool, service: &str, node_group: &str) -> Machine {
        Machine {
            stored,
            service: service.to_owned(),
            node_group: node_group.to_owned(),
            conn: Conn::Idle,
            notice: None,
            outbox: Vec::new(),
            starting: false,
            leader: true,
            socket: Socket::Closed,
            catch_up: false,
            refreshing: false,
            refresh_again: false,
            relay_position: 0,
            refresh_covers: 0,
            pending: BTreeMap::new(),
            next_id: 0,
            reconnect_failures: 0,
            reconnect_generation: 0,
            typing_sent: false,
            typing_generation: 0,
            saved: true,
            persisted,
            user_data: BTreeMap::new(),
            push_capable: false,
            notify_busy: false,
            picked: None,
            identity: None,
            adopting: false,
            link_page: String::new(),
            resume_link: None,
            mask: Mask::default(),
            proxy: false,
            hours: None,
            hours_asked: false,
            wait: None,
            survey_kind: SurveyKind::Off,
            surveys_taken: false,
            rating_before_end: false,
            closed_mode: ClosedMode::Write,
            receipts: receipts::Receipts::default(),
        }
    }

    /// The same machine with the site's pre-filter instead of the card rule alone.
    pub fn with_mask(self, mask: Mask) -> Machine {
        Machine { mask, ..self }
    }

    /// The same machine for a relay in proxy mode (`WidgetConfig::proxy`).
    pub fn with_proxy(self, proxy: bool) -> Machine {
        Machine { proxy, ..self }
    }

    /// The active (not ended) chat.
    pub fn active_chat(&self) -> Option<&ChatState> {
        self.stored.chat.as_ref().filter(|c| !c.ended)
    }

    /// The transcript index of the rich message whose quick replies are live
    /// (`rich::live_choices`), unless the visitor's choice among them is on its way.
    pub fn live_choices(&self) -> Option<u64> {
        let index = crate::rich::live_choices(&self.stored.chat.as_ref()?.events)?;
        (!self.outbox.iter().any(|m| m.reply_to == Some(index))).then_some(index)
    }

    /// Whether a refresh is running.
    pub fn refreshing(&self) -> bool {
        self.refreshing
    }

    /// Takes one input; answers the effects to run, in order.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        self.saved = true;
        match input {
            Input::Load => self.load(&mut out),
            Input::Expire { now_ms, keep } => {
                if self.stored.expire(now_ms, keep) {
                    self.saved = false;
                }
            }
            Input::Start(visitor) => self.start(visitor, &mut out),
            Input::Send(text) => self.send(&text, None, &mut out),
            Input::Choose { index, text } => self.send(&text, Some(index), &mut out),
            Input::Retry(id) => self.retry(id, &mut out),
            Input::Typed(text) => self.typed(&text, &mut out),
            Input::TypingPaused(generation) => self.typing_paused(generation, &mut out),
            Input::End => self.end(&mut out),
            Input::NewChat => {
                self.new_chat(&mut out);
                // A new pre-chat form: the hours may have changed since the last one.
                self.hours_asked = false;
            }
            Input::SetOpen(open) => {
                // The form shows again: ask again (the browser's cache answers an ask
                // within half a minute of the last).
                if open {
                    self.hours_asked = false;
                }
                if self.stored.open != open {
                    self.stored.open = open;
                    self.saved = false;
                }
            }
            // The office opens: ask again, if the form shows.
            Input::HoursDue => self.hours_asked = false,
            Input::SetAlerts(alerts) => {
                if self.stored.alerts != alerts {
                    self.stored.alerts = alerts;
                    self.saved = false;
                }
            }
            Input::Visible(hidden) => {
                if hidden >= LONG_HIDE {
                    self.wake(&mut out);
                }
            }
            Input::Online => self.wake(&mut out),
            Input::IdleTimer => self.refresh(&mut out),
            Input::SocketOpened => self.socket_opened(&mut out),
            Input::SocketClosed { code, online, random } => {
                self.socket_closed(code, online, random, &mut out);
            }
            Input::ReconnectDue(generation) => {
                if generation == self.reconnect_generation {
                    self.connect(&mut out);
                }
            }
            Input::Frame(frame) => self.frame(frame, &mut out),
            Input::Gms(id, result) => self.answer(id, result, &mut out),
            Input::Started(id, result, session) => self.started(id, result, session, &mut out),
            Input::Registered(id, registration) => self.registered(id, registration, &mut out),
            Input::FilePicked(file) => self.file_picked(file, &mut out),
            Input::FileRead(id, bytes) => self.file_read(id, bytes, &mut out),
            Input::Problem(notice) => self.notice = Some(notice),
            Input::StorageChanged(theirs) => self.storage_changed(&theirs, &mut out),
            Input::Leader(leader) => self.lead(leader, &mut out),
            Input::Forget { device_id } => self.forget(device_id, true, &mut out),
            Input::Wiped { device_id } => self.forget(device_id, false, &mut out),
            Input::UserData(pairs) => self.site_user_data(pairs, &mut out),
            Input::PushCapable(capable) => self.push_capable = capable,
            Input::Notify(on) => self.notify(on, &mut out),
            Input::NotifyAnswered(answer) => self.notify_answered(answer),
            Input::Identify { identity, device_id } => self.identify(identity, device_id, &mut out),
            Input::Resume(token) => self.resume(token, &mut out),
            Input::HandedOver(id, handover) => self.handed_over(id, handover, &mut out),
            Input::KeepLink { page } => self.keep_link(&page, &mut out),
            Input::LinkMade(id, token) => self.link_made(id, token),
            Input::Hours(hours) => self.hours_answered(hours, &mut out),
            Input::Rate { rating, comment } => self.rate(rating, &comment, &mut out),
            Input::SkipSurvey => self.skip_survey(&mut out),
            Input::ReceiptDue(generation) => self.receipt_due(generation, &mut out),
        }
        self.ask_hours(&mut out);
        // An ended chat's tokens leave the browser with the step that ended it, whichever
        // input that was (requests already made carry their own copy).
        if self.stored.chat.as_mut().is_some_and(ChatState::settle) {
            self.saved = false;
        }
        // While the panel is open the visitor sees every new line as it comes.
        if self.stored.open
            && let Some(chat) = self.stored.chat.as_mut()
            && chat.seen != Some(chat.next_position)
        {
            chat.mark_seen();
            self.saved = false;
        }
        self.receipt(&mut out);
        if !self.saved && (self.persisted || self.stored.chat.is_some()) {
            self.persisted = true;
            out.push(Effect::Save);
        }
        out
    }

    fn track(&mut self, chat_id: Option<&str>, purpose: Purpose) -> RequestId {
        self.next_id += 1;
        let pending = Pending { chat_id: chat_id.map(str::to_owned), purpose };
        self.pending.insert(self.next_id, pending);
        self.next_id
    }

    /// A request for the active chat, tracked for its answer; None without one.
    fn chat_request(
        &mut self,
        purpose: Purpose,
        operation: ChatOperation,
        policy: RetryPolicy,
        out: &mut Vec<Effect>,
    ) -> Option<RequestId> {
        let chat = self.active_chat()?;
        let (chat_id, service) = (chat.credentials.chat_id.clone(), chat.service.clone());
        let (credentials, token) = (Some(chat.credentials.clone()), chat.relay_token.clone());
        let id = self.track(Some(&chat_id), purpose);
        out.push(Effect::Gms { id, service, operation, credentials, token, policy });
        Some(id)
    }

    fn position(&self) -> TranscriptPosition {
        TranscriptPosition::from_value(self.active_chat().map_or(1, |c| c.next_position))
    }

    // --- page and visitor ---

    fn load(&mut self, out: &mut Vec<Effect>) {
        if self.active_chat().is_some() {
            // One catch-up refresh, through the connection once it is up.
            self.catch_up = true;
            self.connect(out);
        }
    }

    fn start(&mut self, visitor: Visitor, out: &mut Vec<Effect>) {
        if self.starting || self.active_chat().is_some() || self.start_refused() {
            return;
        }
        self.starting = true;
        self.notice = None;
        // The site's keys first: the push subscription's own keys are not the site's to
        // set. Through the relay, the relay subscribes the chat, and refuses a start that
        // names any of Genesys' own keys.
        let push = if self.proxy {
            Vec::new()
        } else {
            let subscription =
                PushSubscription::new(self.stored.device_id.clone(), self.node_group.clone());
            async_push_user_data(&subscription)
        };
        let mut user_data: Vec<(String, String)> = self
            .user_data
            .iter()
            .filter(|(key, _)| !push.iter().any(|(k, _)| k == *key))
            .filter(|(key, _)| !(self.proxy && crate::proxy::reserved(key)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        user_data.extend(push);
        let operation = ChatOperation::Create { visitor, user_data };
        let id = self.track(None, Purpose::Create);
        out.push(Effect::Gms {
            id,
            service: self.service.clone(),
            operation,
            credentials: None,
            token: None,
            policy: RetryPolicy::GMS,
        });
    }

    fn send(&mut self, text: &str, reply_to: Option<u64>, out: &mut Vec<Effect>) {
        let (text, hidden) = self.mask.apply(text.trim());
        if text.is_empty() || self.active_chat().is_none() {
            return;
        }
        // The visitor sees their line as it was sent, and why (typing notices carry no
        // text, so nothing else of the draft leaves the browser).
        if hidden {
            self.notice = Some(Notice::Masked);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.outbox.push(Outgoing { id, text: text.clone(), reply_to, failed: None });
        self.typing_sent = false;
        self.typing_generation += 1;
        self.deliver(id, text, reply_to, out);
    }

    fn retry(&mut self, id: u64, out: &mut Vec<Effect>) {
        let Some(message) = self.outbox.iter_mut().find(|m| m.id == id && m.failed.is_some())
        else {
            return;
        };
        message.failed = None;
        let (text, reply_to) = (message.text.clone(), message.reply_to);
        self.deliver(id, text, reply_to, out);
    }

    fn deliver(&mut self, id: u64, message: String, reply_to: Option<u64>, out: &mut Vec<Effect>) {
        let position = self.position();
        let operation = ChatOperation::Send { message, message_type: None, position, reply_to };
        if self.chat_request(Purpose::Send(id), operation, RetryPolicy::GMS, out).is_none() {
            self.fail_message(id, &Failure::ChatEnded);
        }
    }

    fn fail_message(&mut self, id: u64, failure: &Failure) {
        for message in self.outbox.iter_mut().filter(|m| m.id == id) {
            message.failed = Some(failure.clone());
        }
    }

    fn typed(&mut self, text: &str, out: &mut Vec<Effect>) {
        if self.active_chat().is_none() {
            return;
        }
        self.typing_generation += 1;
        if !self.typing_sent && !text.trim().is_empty() {
            self.typing_sent = true;
            let operation = ChatOperation::StartTyping { message: None };
            // A typing notice is stale by the time a retry would land.
            self.chat_request(Purpose::Typing, operation, RetryPolicy::ONCE, out);
        }
        if self.typing_sent {
            out.push(Effect::TypingTimer(self.typing_generation));
        }
    }

    fn typing_paused(&mut self, generation: u64, out: &mut Vec<Effect>) {
        if generation == self.typing_generation && self.typing_sent {
            self.typing_sent = false;
            let operation = ChatOperation::StopTyping { message: None };
            self.chat_request(Purpose::Typing, operation, RetryPolicy::ONCE, out);
        }
    }

    fn end(&mut self, out: &mut Vec<Effect>) {
        // With a survey, the visitor rates first (or dismisses it), then the chat ends.
        if self.survey_kind != SurveyKind::Off && self.active_chat().is_some_and(|c| !c.surveyed) {
            self.rating_before_end = true;
            return;
        }
        self.end_now(out);
    }

    fn end_now(&mut self, out: &mut Vec<Effect>) {
        self.rating_before_end = false;
        self.chat_request(Purpose::End, ChatOperation::Disconnect, RetryPolicy::GMS, out);
    }

    fn new_chat(&mut self, out: &mut Vec<Effect>) {
        if self.active_chat().is_some() {
            return;
        }
        self.stored.chat = None;
        self.wait = None;
        self.outbox.clear();
        self.notice = None;
        self.disconnect(out);
        self.saved = false;
    }

    fn forget(&mut self, device_id: String, tell_gms: bool, out: &mut Vec<Effect>) {
        if tell_gms {
            self.chat_request(Purpose::End, ChatOperation::Disconnect, RetryPolicy::ONCE, out);
            // Through the relay, the disconnect needs the relay to hold the chat: it
            // forgets the chat itself once GMS tells it the chat ended.
            if let Some(chat) = &self.stored.chat
                && let Some(token) = chat.relay_token.as_ref().filter(|_| !self.proxy)
            {
                let chat_id = chat.credentials.chat_id.clone();
                out.push(Effect::Forget { chat_id, token: token.clone() });
            }
        }
        self.disconnect(out);
        self.stored = Stored { device_id, ..Stored::default() };
        self.outbox.clear();
        self.notice = None;
        self.starting = false;
        self.refreshing = false;
        self.refresh_again = false;
        self.persisted = false;
        self.adopting = false;
        self.resume_link = None;
        if tell_gms {
            out.push(Effect::Wipe);
        }
    }

    fn site_user_data(&mut self, pairs: Vec<(String, String)>, out: &mut Vec<Effect>) {
        if pairs.is_empty() {
            return;
        }
        self.user_data.extend(pairs.iter().cloned());
        let operation = ChatOperation::UpdateData { user_data: pairs };
        self.chat_request(Purpose::UserData, operation, RetryPolicy::GMS, out);
    }

    /// Online again, or back after a long hide: catch up, and reconnect now if waiting.
    fn wake(&mut self, out: &mut Vec<Effect>) {
        if self.active_chat().is_none() {
            return;
        }
        self.refresh(out);
        if self.leader && matches!(self.conn, Conn::Reconnecting | Conn::Offline) {
            self.reconnect_generation += 1;
            self.connect(out);
        }
    }
}

/// How a failed request reads to the visitor.
fn notice_of(result: &GmsResult) -> Notice {
    match result {
        GmsResult::Answer(response) => Notice::Refused(response.error_summary()),
        GmsResult::Failed(failure) => failure.notice(),
    }
}
