//! The relay connection, its frames, and the other tabs: connecting, one registration per
//! connection and chat, reconnecting with backoff, leading or following.

use crate::gms::RetryPolicy;
use crate::relay_api::{RegisterSession, ServerFrame, close_code};
use crate::visitor::chat::Stored;
use crate::visitor::io::{Conn, Effect, Registration, RequestId};

use super::{Machine, Purpose, Socket};

impl Machine {
    pub(super) fn connect(&mut self, out: &mut Vec<Effect>) {
        if !self.leader || self.conn == Conn::Refused || self.active_chat().is_none() {
            return;
        }
        match self.socket {
            Socket::Closed => {
                self.socket = Socket::Opening;
                self.conn =
                    if self.conn == Conn::Idle { Conn::Connecting } else { Conn::Reconnecting };
                out.push(Effect::OpenSocket);
            }
            Socket::Open { registering: false, registered: false } => self.register(out),
            Socket::Opening | Socket::Open { .. } => {}
        }
    }

    pub(super) fn disconnect(&mut self, out: &mut Vec<Effect>) {
        if self.socket != Socket::Closed {
            out.push(Effect::CloseSocket);
        }
        self.socket = Socket::Closed;
        self.reconnect_generation += 1;
        self.conn = Conn::Idle;
    }

    pub(super) fn socket_opened(&mut self, out: &mut Vec<Effect>) {
        self.socket = Socket::Open { registering: false, registered: false };
        if self.active_chat().is_some() {
            self.register(out);
        } else {
            self.disconnect(out);
        }
    }

    /// One registration per connection and chat: it refreshes the relay's tokens and
    /// gives the subscription token.
    pub(super) fn register(&mut self, out: &mut Vec<Effect>) {
        let Some(chat) = self.active_chat() else { return };
        let mut body = RegisterSession::new(
            &chat.service,
            &chat.credentials,
            Some(&self.stored.device_id).filter(|d| !d.is_empty()).map(String::as_str),
        );
        body.identity.clone_from(&self.identity);
        // Through the relay the browser has no GMS token to hand over: the chat's
        // subscription token says it is the chat's browser, and the relay uses its own.
        let token = chat.relay_token.clone().filter(|_| self.proxy);
        let chat_id = chat.credentials.chat_id.clone();
        self.socket = Socket::Open { registering: true, registered: false };
        let id = self.track(Some(&chat_id), Purpose::Register);
        out.push(Effect::Register { id, body, token });
    }

    pub(super) fn registered(
        &mut self,
        id: RequestId,
        registration: Registration,
        out: &mut Vec<Effect>,
    ) {
        let Some(pending) = self.pending.remove(&id) else { return };
        if !self.is_current(pending.chat_id.as_deref()) {
            return;
        }
        // The socket it was made for may have closed meanwhile: then the token is kept,
        // and the next connection registers again.
        let socket_open = self.socket == Socket::Open { registering: true, registered: false };
        if socket_open {
            self.socket = Socket::Open { registering: false, registered: true };
        }
        match registration {
            Registration::Registered { token, position, push_key, identity } => {
                self.verdict(identity, out);
                let Some(chat) = self.stored.chat.as_mut() else { return };
                let chat_id = chat.credentials.chat_id.clone();
                if chat.relay_token.as_deref() != Some(token.as_str()) {
                    chat.relay_token = Some(token.clone());
                    self.saved = false;
                }
                if chat.push_key != push_key {
                    chat.push_key = push_key;
                    self.saved = false;
                }
                if !socket_open {
                    return;
                }
                let behind = position > chat.next_position;
                out.push(Effect::Subscribe { chat_id, token });
                self.conn = Conn::Connected;
                self.reconnect_failures = 0;
                self.relay_position = self.relay_position.max(position);
                if self.catch_up || behind {
                    self.refresh(out);
                }
            }
            // GMS no longer knows the chat: the refresh shows how it ended.
            Registration::Refused => self.refresh(out),
            Registration::Failed if socket_open => {
                out.push(Effect::CloseSocket);
                self.socket_closed(None, true, 0.5, out);
            }
            Registration::Failed => {}
        }
    }

    pub(super) fn socket_closed(
        &mut self,
        code: Option<u16>,
        online: bool,
        random: f64,
        out: &mut Vec<Effect>,
    ) {
        self.socket = Socket::Closed;
        if self.active_chat().is_none() || !self.leader {
            if self.conn != Conn::Shared {
                self.conn = Conn::Idle;
            }
            return;
        }
        if code.is_some_and(|c| !close_code::should_reconnect(c)) {
            self.conn = Conn::Refused;
            // Without live updates the page still catches up once from GMS.
            if self.catch_up {
                self.refresh(out);
            }
            return;
        }
        // Whatever happens while we are away is caught up after the next connect; if this
        // page has not caught up at all yet, do it now from GMS.
        if self.catch_up && self.conn == Conn::Connecting {
            self.refresh(out);
        }
        self.catch_up = true;
        self.conn = if online { Conn::Reconnecting } else { Conn::Offline };
        self.reconnect_failures += 1;
        self.reconnect_generation += 1;
        let wait = RetryPolicy::RECONNECT
            .wait_after(self.reconnect_failures, random)
            .unwrap_or(RetryPolicy::RECONNECT.max);
        out.push(Effect::ReconnectAfter { wait, generation: self.reconnect_generation });
    }

    pub(super) fn lead(&mut self, leader: bool, out: &mut Vec<Effect>) {
        if self.leader == leader {
            return;
        }
        self.leader = leader;
        if leader {
            self.conn = Conn::Idle;
            if self.active_chat().is_some() {
                // What the previous leader may have missed while it went away.
                self.catch_up = true;
                self.connect(out);
            }
        } else {
            self.disconnect(out);
            self.conn = Conn::Shared;
        }
    }

    pub(super) fn frame(&mut self, frame: ServerFrame, out: &mut Vec<Effect>) {
        let Some(chat) = self.stored.chat.as_mut().filter(|c| !c.ended) else { return };
        if frame.chat_id().is_some_and(|id| id != chat.credentials.chat_id) {
            return;
        }
        match frame {
            ServerFrame::Subscribed { position, .. } => {
                if position > chat.next_position {
                    self.refresh_to(position, out);
                }
            }
            ServerFrame::Events { messages, next_position, .. } => {
                let applied = chat.apply_events(messages);
                let ahead = next_position.filter(|n| *n > chat.next_position);
                if applied.fresh > 0 {
                    self.saved = false;
                }
                match (applied.gap, ahead) {
                    (_, Some(position)) => self.refresh_to(position, out),
                    (Some(_), None) => self.refresh(out),
                    (None, None) => {}
                }
            }
            ServerFrame::Changed { .. } | ServerFrame::Ended { .. } => self.refresh(out),
            ServerFrame::Tokens { alias, .. } => {
                if chat.credentials.alias != alias {
                    chat.credentials.alias = alias;
                    self.saved = false;
                }
            }
            ServerFrame::Wait { seconds, .. } => self.wait = seconds,
            ServerFrame::Error { message, .. } => out.push(Effect::Log(message)),
            ServerFrame::Unknown => {}
        }
    }

    pub(super) fn storage_changed(&mut self, theirs: &Stored, out: &mut Vec<Effect>) {
        let was = self.stored.chat.as_ref().map(|c| (c.credentials.chat_id.clone(), c.ended));
        if !self.stored.absorb(theirs) {
            return;
        }
        let now = self.stored.chat.as_ref().map(|c| (c.credentials.chat_id.clone(), c.ended));
        if was == now {
            return;
        }
        match now {
            // Another tab started this chat: connect it (the leader does).
            Some((_, false)) => {
                self.outbox.clear();
                self.socket = match self.socket {
                    Socket::Open { .. } => Socket::Open { registering: false, registered: false },
                    other => other,
                };
                self.connect(out);
            }
            // Another tab saw it end, or started over.
            _ => {
                self.outbox.clear();
                self.disconnect(out);
            }
        }
    }
}
