//! The answers to the machine's GMS requests, each applied only to the chat it was made
//! for, and the refresh they may ask for.

use crate::gms::RetryPolicy;
use crate::gms::{ChatOperation, ChatResponse, Credentials, Verdict};
use crate::relay_api::SessionRegistered;
use crate::transcript::TranscriptPosition;
use crate::visitor::chat::{Applied, ChatState};
use crate::visitor::io::{Effect, Failure, GmsResult, NetFailure, Notice, RequestId};

use super::{Machine, Purpose, Socket, notice_of};

impl Machine {
    /// Asks for a refresh; coalesced with one already running. Only the leader tab
    /// refreshes on a trigger: the others see its results through the shared storage.
    pub(super) fn refresh(&mut self, out: &mut Vec<Effect>) {
        if self.leader {
            self.refresh_now(out);
        }
    }

    /// The relay reports a position ahead of ours: refresh, unless the running refresh was
    /// asked for after the relay already knew that position.
    pub(super) fn refresh_to(&mut self, position: u64, out: &mut Vec<Effect>) {
        let covered = self.refreshing && position <= self.refresh_covers;
        self.relay_position = self.relay_position.max(position);
        if !covered {
            self.refresh(out);
        }
    }

    /// A refresh this tab needs for its own action, leader or not.
    pub(super) fn refresh_now(&mut self, out: &mut Vec<Effect>) {
        if self.active_chat().is_none() {
            return;
        }
        if self.refreshing {
            self.refresh_again = true;
            return;
        }
        self.refresh_covers = self.relay_position;
        let operation = ChatOperation::Refresh { position: self.position() };
        if self.chat_request(Purpose::Refresh, operation, RetryPolicy::GMS, out).is_some() {
            self.refreshing = true;
            self.catch_up = false;
        }
    }

    pub(super) fn is_current(&self, chat_id: Option<&str>) -> bool {
        match chat_id {
            None => true,
            Some(id) => self.stored.chat.as_ref().is_some_and(|c| c.credentials.chat_id == id),
        }
    }

    pub(super) fn answer(&mut self, id: RequestId, result: GmsResult, out: &mut Vec<Effect>) {
        let Some(pending) = self.pending.remove(&id) else { return };
        let current = self.is_current(pending.chat_id.as_deref());
        match pending.purpose {
            Purpose::Create => self.created(result, None, out),
            Purpose::Refresh => {
                self.refreshing = false;
                if current {
                    self.refreshed(&result, out);
                    if matches!(&result, GmsResult::Answer(r) if r.status_code == 0) {
                        self.adopted();
                    }
                }
                if std::mem::take(&mut self.refresh_again) {
                    self.refresh_now(out);
                }
            }
            Purpose::FileLimits => self.limits_answered(id, current, &result, out),
            // Answers for a chat that is no longer the current one change nothing.
            _ if !current => {}
            Purpose::Send(message) => self.sent(message, &result, out),
            Purpose::Typing | Purpose::UserData | Purpose::Register => {}
            // The rating is in the chat's user data (or could not be put there): end.
            Purpose::Rating => self.end_now(out),
            Purpose::Receipt => self.receipt_answered(&result),
            // Answered through their own inputs, never as GMS answers.
            Purpose::FindChat | Purpose::Resume | Purpose::ResumeLink => {}
            Purpose::End => self.ended(&result, out),
            Purpose::Upload => {
                if let GmsResult::Answer(response) = &result
                    && response.status_code == 0
                {
                    let shown =
                        self.apply(response).is_some_and(|a| a.fresh > 0 && a.gap.is_none());
                    // Chat Server pushes nothing for the visitor's own file.
                    if !shown {
                        self.refresh_now(out);
                    }
                } else {
                    self.notice = Some(notice_of(&result));
                }
            }
        }
    }

    /// Applies a response to the current chat; None when there is none.
    pub(super) fn apply(&mut self, response: &ChatResponse) -> Option<Applied> {
        let chat = self.stored.chat.as_mut()?;
        let before = (chat.next_position, chat.ended, chat.credentials.alias.clone());
        let applied = chat.apply_response(response);
        if (chat.next_position, chat.ended, chat.credentials.alias.clone()) != before {
            self.saved = false;
        }
        Some(applied)
    }

    /// A start through the relay (proxy mode) answered.
    pub(super) fn started(
        &mut self,
        id: RequestId,
        result: GmsResult,
        session: Option<Box<SessionRegistered>>,
        out: &mut Vec<Effect>,
    ) {
        if self.pending.remove(&id).is_some_and(|p| p.purpose == Purpose::Create) {
            self.created(result, session.map(|s| *s), out);
        }
    }

    /// A create answered: directly by GMS with the chat's tokens, or through the relay
    /// (proxy mode) with the chat's id and the relay's session, which is its registration.
    pub(super) fn created(
        &mut self,
        result: GmsResult,
        session: Option<SessionRegistered>,
        out: &mut Vec<Effect>,
    ) {
        self.starting = false;
        let response = match result {
            GmsResult::Answer(response) => response,
            GmsResult::Failed(failure) => {
                self.notice = Some(notice_of(&GmsResult::Failed(failure)));
                return;
            }
        };
        let credentials = match &session {
            _ if response.status_code != 0 => None,
            Some(_) if self.proxy => {
                response.chat_id.as_deref().filter(|id| !id.is_empty()).map(Credentials::id_only)
            }
            _ if self.proxy => None,
            _ => response.credentials(),
        };
        let Some(credentials) = credentials else {
            self.notice = Some(Notice::CouldNotStart(response.error_summary()));
            return;
        };
        let mut chat = ChatState::new(&self.service, credentials);
        chat.apply_response(&response);
        if let Some(session) = session {
            chat.relay_token = Some(session.token);
            chat.push_key = session.vapid_public_key;
            self.relay_position = self.relay_position.max(session.position);
        }
        self.stored.chat = Some(chat);
        self.outbox.clear();
        self.saved = false;
        // A new chat: a socket still open for an old one registers this one instead.
        self.socket = match self.socket {
            Socket::Open { .. } => Socket::Open { registering: false, registered: false },
            other => other,
        };
        self.connect(out);
    }

    pub(super) fn refreshed(&mut self, result: &GmsResult, out: &mut Vec<Effect>) {
        let GmsResult::Answer(response) = result else {
            self.notice = Some(notice_of(result));
            return;
        };
        match response.verdict() {
            Verdict::Stop => self.notice = Some(Notice::Refused(response.error_summary())),
            Verdict::Ok | Verdict::Ended | Verdict::Retry => {
                let was_active = self.active_chat().is_some();
                let applied = self.apply(response);
                self.notice = None;
                if applied.is_some_and(|a| a.gap.is_some() && a.fresh > 0) {
                    self.refresh_again = true;
                }
                if was_active && self.active_chat().is_none() {
                    self.chat_over(out);
                }
            }
        }
    }

    pub(super) fn sent(&mut self, message: u64, result: &GmsResult, out: &mut Vec<Effect>) {
        let failure = match result {
            GmsResult::Answer(response) => match response.verdict() {
                Verdict::Ok => {
                    self.apply(response);
                    None
                }
                Verdict::Ended => {
                    self.apply(response);
                    Some(Failure::ChatEnded)
                }
                Verdict::Stop | Verdict::Retry => {
                    Some(Failure::Problem(Notice::Refused(response.error_summary())))
                }
            },
            GmsResult::Failed(NetFailure::Network) => Some(Failure::Offline),
            GmsResult::Failed(NetFailure::Http(status)) => {
                Some(Failure::Problem(Notice::Http(*status)))
            }
        };
        match failure {
            None => self.outbox.retain(|m| m.id != message),
            Some(failure) => self.fail_message(message, &failure),
        }
        if self.active_chat().is_none() {
            self.chat_over(out);
        }
    }

    pub(super) fn ended(&mut self, result: &GmsResult, out: &mut Vec<Effect>) {
        match result {
            GmsResult::Answer(response) if response.verdict() != Verdict::Retry => {
                self.apply(response);
                let Some(chat) = self.stored.chat.as_mut() else { return };
                chat.ended = true;
                self.saved = false;
                // One last read of the transcript, so the visitor's own leaving shows as a
                // line like the agent's does (the disconnect answer carries no events).
                if !self.refreshing {
                    let operation = ChatOperation::Refresh {
                        position: TranscriptPosition::from_value(chat.next_position),
                    };
                    let (service, credentials) = (chat.service.clone(), chat.credentials.clone());
                    let token = chat.relay_token.clone();
                    let id = self.track(Some(&credentials.chat_id), Purpose::Refresh);
                    self.refreshing = true;
                    let (credentials, policy) = (Some(credentials), RetryPolicy::GMS);
                    out.push(Effect::Gms { id, service, operation, credentials, token, policy });
                }
                self.chat_over(out);
            }
            _ => self.notice = Some(notice_of(result)),
        }
    }

    /// The current chat has ended: the relay forgets it, the socket is not needed.
    pub(super) fn chat_over(&mut self, out: &mut Vec<Effect>) {
        let Some(chat) = self.stored.chat.as_ref() else { return };
        // Through the relay, the last refresh above needs the relay to hold the chat
        // still: it forgets the chat itself once GMS tells it the chat ended.
        if let Some(token) = chat.relay_token.as_ref().filter(|_| !self.proxy) {
            out.push(Effect::Forget {
                chat_id: chat.credentials.chat_id.clone(),
                token: token.clone(),
            });
        }
        self.typing_sent = false;
        self.disconnect(out);
    }
}
