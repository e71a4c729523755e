//! The same chat on every device: the site's verified visitor and resume links. A
//! verified identity's running chat, or a resume link's, is taken up by a browser that has
//! none (after Safari wiped the site's storage, or on another device); a logout, or another
//! visitor logging in, takes a chat of that identity out of this browser while it goes on
//! elsewhere.

use crate::relay_api::{ChatHandover, Identity, IdentityVerdict, RESUME_FRAGMENT};
use crate::visitor::chat::ChatState;
use crate::visitor::io::{Effect, Handover, Notice, RequestId};

use super::{Machine, Purpose, Socket, return_page};

impl Machine {
    pub(super) fn identify(
        &mut self,
        identity: Option<Identity>,
        device_id: String,
        out: &mut Vec<Effect>,
    ) {
        let linked = self.stored.chat.as_ref().and_then(|c| c.identity.clone());
        let theirs = linked.is_some_and(|l| identity.as_ref().is_none_or(|i| i.user_id != l));
        if theirs {
            self.let_go(device_id, out);
        }
        let changed = self.identity != identity;
        self.identity = identity;
        if !changed || self.identity.is_none() {
            return;
        }
        match self.active_chat() {
            None => self.find_chat(out),
            // A chat started before the visitor logged in becomes theirs with its next
            // registration: now, if this connection already registered it.
            Some(_) if self.socket == (Socket::Open { registering: false, registered: true }) => {
                self.register(out);
            }
            Some(_) => {}
        }
    }

    /// Takes this browser's chat out of it without ending it: the chat goes on on the
    /// identity's other devices, and this device's notifications stop.
    fn let_go(&mut self, device_id: String, out: &mut Vec<Effect>) {
        if let Some(chat) = self.active_chat()
            && chat.notify()
            && let Some(token) = chat.relay_token.clone()
        {
            let chat_id = chat.credentials.chat_id.clone();
            out.push(Effect::UnsubscribePush { chat_id, token });
        }
        self.forget(device_id, false, out);
        out.push(Effect::Wipe);
    }

    /// Asks the relay for the identity's running chat, once at a time.
    pub(super) fn find_chat(&mut self, out: &mut Vec<Effect>) {
        let Some(identity) = self.identity.clone() else { return };
        if self.pending.values().any(|p| p.purpose == Purpose::FindChat) {
            return;
        }
        let id = self.track(None, Purpose::FindChat);
        out.push(Effect::FindChat { id, identity });
    }

    /// A resume link opened this page: its chat is taken up unless one runs here already
    /// (the same, usually: a notification's click in a browser that kept it).
    pub(super) fn resume(&mut self, token: String, out: &mut Vec<Effect>) {
        if self.active_chat().is_some() {
            return;
        }
        let id = self.track(None, Purpose::Resume);
        out.push(Effect::ClaimResume { id, token });
    }

    pub(super) fn handed_over(&mut self, id: RequestId, handover: Handover, out: &mut Vec<Effect>) {
        let Some(pending) = self.pending.remove(&id) else { return };
        let resuming = pending.purpose == Purpose::Resume;
        match handover {
            Handover::Chat(chat) => match self.active_chat() {
                None => self.adopt(*chat, resuming, out),
                Some(running) if running.credentials.chat_id == chat.credentials.chat_id => {}
                Some(_) => out.push(Effect::Log(
                    "a resume link or the visitor's identity names another chat than the one \
                     running in this browser, which stays"
                        .to_owned(),
                )),
            },
            Handover::Nothing => {}
            Handover::Refused | Handover::Failed if resuming => {
                self.notice = Some(Notice::ResumeFailed);
            }
            Handover::Refused => out.push(Effect::Log(IDENTITY_REFUSED.to_owned())),
            // The next page load asks again.
            Handover::Failed => {}
        }
    }

    /// Takes up a running chat that another browser started: stored like one started
    /// here, then registered and caught up from the transcript's start.
    fn adopt(&mut self, handover: ChatHandover, resumed: bool, out: &mut Vec<Effect>) {
        let mut chat = ChatState::new(&handover.service, handover.credentials);
        chat.relay_token = Some(handover.token);
        // Set once the transcript is here: what came after the visitor's own last line.
        chat.seen = None;
        if !resumed {
            chat.identity = self.identity.as_ref().map(|i| i.user_id.clone());
        }
        self.stored.chat = Some(chat);
        self.outbox.clear();
        self.notice = None;
        self.saved = false;
        self.adopting = true;
        self.relay_position = handover.position;
        self.catch_up = true;
        self.connect(out);
    }

    /// After the catch-up of a chat taken up here: agent lines after the visitor's own
    /// last one count as unread, as they would on the device the visitor wrote from.
    pub(super) fn adopted(&mut self) {
        if !std::mem::take(&mut self.adopting) {
            return;
        }
        let Some(chat) = self.stored.chat.as_mut() else { return };
        let last_own =
            chat.events.iter().filter(|e| e.from.is_client()).filter_map(|e| e.index).max();
        chat.seen = Some(last_own.map_or(1, |index| index + 1));
        self.saved = false;
    }

    /// What the relay made of the registration's identity.
    pub(super) fn verdict(&mut self, verdict: Option<IdentityVerdict>, out: &mut Vec<Effect>) {
        match verdict {
            Some(IdentityVerdict::Verified) => {
                let user_id = self.identity.as_ref().map(|i| i.user_id.clone());
                if let Some(chat) = self.stored.chat.as_mut()
                    && user_id.is_some()
                    && chat.identity != user_id
                {
                    chat.identity = user_id;
                    self.saved = false;
                }
            }
            Some(IdentityVerdict::Refused) => out.push(Effect::Log(IDENTITY_REFUSED.to_owned())),
            Some(IdentityVerdict::Unconfigured) => out.push(Effect::Log(
                "the relay verifies no identities (it has no --identity-secret): the chat \
                 stays anonymous"
                    .to_owned(),
            )),
            None => {}
        }
    }

    pub(super) fn keep_link(&mut self, page: &str, out: &mut Vec<Effect>) {
        let Some(chat) = self.active_chat() else { return };
        let Some(token) = chat.relay_token.clone() else { return };
        if self.pending.values().any(|p| p.purpose == Purpose::ResumeLink) {
            return;
        }
        let chat_id = chat.credentials.chat_id.clone();
        self.link_page = return_page(page).to_owned();
        self.notice = None;
        let id = self.track(Some(&chat_id), Purpose::ResumeLink);
        out.push(Effect::MakeResumeLink { id, chat_id, token });
    }

    pub(super) fn link_made(&mut self, id: RequestId, token: Option<String>) {
        let Some(pending) = self.pending.remove(&id) else { return };
        if !self.is_current(pending.chat_id.as_deref()) {
            return;
        }
        match token {
            Some(token) => {
                self.resume_link = Some(format!("{}#{RESUME_FRAGMENT}{token}", self.link_page));
            }
            None => self.notice = Some(Notice::LinkFailed),
        }
    }

    /// The link back to the running conversation the visitor asked for, once made.
    pub fn resume_link(&self) -> Option<&str> {
        self.active_chat().and(self.resume_link.as_deref())
    }

    /// Whether the link is being made.
    pub fn making_link(&self) -> bool {
        self.pending.values().any(|p| p.purpose == Purpose::ResumeLink)
    }
}

const IDENTITY_REFUSED: &str = "the relay refused the visitor's identity: data-user-hash must \
     be the hex HMAC-SHA256 of data-user-id under the relay's --identity-secret; the chat \
     stays anonymous";
