//! Web Push opt-in: offered once a chat runs and the page, the browser and the relay all
//! support it; asked for only on the visitor's click; a refusal is kept for good.
//! The page a notification's click brings the visitor back to is kept without its query
//! and fragment: those often hold a session, a reset token or a search, and the relay
//! keeps the page for as long as the chat.

use super::Machine;
use crate::visitor::io::{Effect, Notice, NotifyAnswer, NotifyOffer};

impl Machine {
    /// What the panel offers about notifications.
    pub fn notify_offer(&self) -> NotifyOffer {
        let Some(chat) = self.active_chat() else { return NotifyOffer::Hidden };
        if chat.notify() {
            return NotifyOffer::On;
        }
        let supported = self.push_capable && chat.push_key.is_some() && chat.relay_token.is_some();
        if !supported || self.stored.notify_refused {
            NotifyOffer::Hidden
        } else if self.notify_busy {
            NotifyOffer::Busy
        } else {
            NotifyOffer::Offer
        }
    }

    pub(super) fn notify(&mut self, on: bool, out: &mut Vec<Effect>) {
        let offer = self.notify_offer();
        let Some(chat) = self.stored.chat.as_mut().filter(|c| !c.ended) else { return };
        let Some(token) = chat.relay_token.clone() else { return };
        let chat_id = chat.credentials.chat_id.clone();
        match (on, offer) {
            (true, NotifyOffer::Offer) => {
                let Some(key) = chat.push_key.clone() else { return };
                self.notify_busy = true;
                self.notice = None;
                out.push(Effect::SubscribePush { chat_id, token, key });
            }
            (false, NotifyOffer::On) => {
                chat.set_notify(false);
                self.saved = false;
                out.push(Effect::UnsubscribePush { chat_id, token });
            }
            _ => {}
        }
    }

    pub(super) fn notify_answered(&mut self, answer: NotifyAnswer) {
        self.notify_busy = false;
        match answer {
            NotifyAnswer::On => {
                if let Some(chat) = self.stored.chat.as_mut()
                    && chat.set_notify(true)
                {
                    self.saved = false;
                }
            }
            NotifyAnswer::Refused => {
                self.stored.notify_refused = true;
                self.saved = false;
            }
            NotifyAnswer::Dismissed => {}
            NotifyAnswer::Failed => self.notice = Some(Notice::NotifyFailed),
        }
    }
}

/// The page a click on a notification opens, as the relay is told it: the page's address
/// (`location.href`) up to its query or fragment.
pub fn return_page(href: &str) -> &str {
    href.find(['?', '#']).map_or(href, |end| &href[..end])
}
