//! Expectations: office hours before a chat, asked of the relay once the visitor opens the
//! panel on the pre-chat form (never on a page view that does not open it), shown there,
//! and with `closedMode = refuse` no chat starts while the office is closed; and the
//! expected wait of a running chat no agent has joined yet, as the relay sends it.

use super::Machine;
use crate::relay_api::OfficeHours;
use crate::visitor::io::Effect;
use crate::widget_config::ClosedMode;

impl Machine {
    /// The same machine with the site's choice for a closed office.
    pub fn with_closed_mode(self, closed_mode: ClosedMode) -> Machine {
        Machine { closed_mode, ..self }
    }

    /// The office hours to show on the pre-chat form; None: say nothing of them.
    pub fn hours(&self) -> Option<OfficeHours> {
        self.hours
    }

    /// Whether a chat may not start now: the site refuses chats while the office is
    /// closed, and the relay says it is.
    pub fn start_refused(&self) -> bool {
        self.closed_mode == ClosedMode::Refuse && self.hours.is_some_and(|hours| !hours.open)
    }

    /// The minutes to say the visitor will wait: while the active chat has no agent and the
    /// relay has sent GMS's estimate.
    pub fn expected_wait(&self) -> Option<u64> {
        let chat = self.active_chat()?;
        let answered = chat.events.iter().any(|e| e.from.party_type == "Agent");
        self.wait.filter(|_| !answered).map(crate::ewt::minutes)
    }

    /// The relay's answer: shown, and asked again when a closed office opens (so a form
    /// that refuses chats until then takes them from that moment).
    pub(super) fn hours_answered(&mut self, hours: Option<OfficeHours>, out: &mut Vec<Effect>) {
        self.hours = hours;
        if let Some(OfficeHours { open: false, next_open: Some(at) }) = hours {
            out.push(Effect::HoursTimer(at));
        }
    }

    /// Asks for the hours once the pre-chat form shows: the panel open and no chat.
    pub(super) fn ask_hours(&mut self, out: &mut Vec<Effect>) {
        if self.stored.open && self.stored.chat.is_none() && !self.starting && !self.hours_asked {
            self.hours_asked = true;
            out.push(Effect::FetchHours { service: self.service.clone() });
        }
    }
}
