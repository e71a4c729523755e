//! The agent side of a chat: what an agent desktop (or the scripted bot) can do.

use shared::gms::{EventType, Party};

use crate::chat::AGENT_ID;
use crate::world::{Effects, World};

/// An agent action from the admin API.
#[derive(Debug, Clone)]
pub(crate) enum AgentAction {
    Join {
        nickname: String,
    },
    /// A chat message; `structured` is a rich message's content (`crate::rich`).
    Message {
        text: String,
        structured: Option<String>,
    },
    Typing {
        typing: bool,
    },
    PushUrl {
        url: String,
    },
    Leave,
    End,
}

/// Why an agent action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentError {
    NoSuchChat,
    Ended,
    /// The chat's Chat Server is down or restarted: only a client request restores it.
    NotHosted,
}

impl World {
    pub(crate) fn agent(
        &mut self,
        chat_id: &str,
        action: AgentAction,
        effects: &mut Effects,
    ) -> Result<u64, AgentError> {
        let chat = self.chats.get(chat_id).ok_or(AgentError::NoSuchChat)?;
        if chat.ended {
            return Err(AgentError::Ended);
        }
        if !self.is_hosted(chat) {
            return Err(AgentError::NotHosted);
        }
        if chat.agent.is_none() && !matches!(action, AgentAction::Join { .. } | AgentAction::End) {
            self.join(chat_id, "Agent", effects);
        }
        let agent = self.chats.get(chat_id).map(crate::chat::Chat::agent_party).unwrap_or_default();
        let index = match action {
            AgentAction::Join { nickname } => self.join(chat_id, &nickname, effects),
            AgentAction::Message { text, structured } => {
                let chat = self.chats.get_mut(chat_id).ok_or(AgentError::NoSuchChat)?;
                let index = chat.append(EventType::Message, agent, Some(text));
                if let Some(event) = chat.last_event_mut() {
                    event.attributes = structured.as_deref().map(crate::rich::attributes);
                }
                self.queue_push_for_last_event(chat_id, effects);
                Some(index)
            }
            AgentAction::Typing { typing } => {
                let kind = if typing { EventType::TypingStarted } else { EventType::TypingStopped };
                self.append(chat_id, kind, agent, None, effects)
            }
            AgentAction::PushUrl { url } => {
                self.append(chat_id, EventType::PushUrl, agent, Some(url), effects)
            }
            AgentAction::Leave => {
                let index = self.append(chat_id, EventType::ParticipantLeft, agent, None, effects);
                if let Some(chat) = self.chats.get_mut(chat_id) {
                    chat.agent = None;
                }
                index
            }
            AgentAction::End => {
                let joined = self.chats.get(chat_id).is_some_and(|c| c.agent.is_some());
                let index = if joined {
                    self.append(chat_id, EventType::ParticipantLeft, agent, None, effects)
                } else {
                    self.chats.get(chat_id).map(|c| c.next_position() - 1)
                };
                self.end_chat(chat_id);
                index
            }
        };
        index.ok_or(AgentError::NoSuchChat)
    }

    fn join(&mut self, chat_id: &str, nickname: &str, effects: &mut Effects) -> Option<u64> {
        let party = Party {
            nickname: nickname.to_owned(),
            participant_id: AGENT_ID,
            party_type: "Agent".to_owned(),
        };
        if let Some(chat) = self.chats.get_mut(chat_id) {
            chat.agent = Some(party.clone());
        }
        self.append(chat_id, EventType::ParticipantJoined, party, None, effects)
    }
}
