//! The survey when a chat ends: offered when the visitor asks to end (rate, then end: the
//! rating goes into the chat's GMS user data with `updateData` while the chat is still
//! open) and when the chat ended otherwise (the agent's end: the rating goes to the
//! relay's survey webhook, where the relay has one). Answered or dismissed once per chat,
//! in every tab; never in the way of a new chat.

use super::{Machine, Purpose};
use crate::gms::{ChatOperation, RetryPolicy};
use crate::relay_api::SurveyAnswer;
use crate::visitor::io::{Effect, SurveyStage};
use crate::widget_config::SurveyKind;

impl Machine {
    /// The same machine with the site's survey, and whether the relay takes ratings of
    /// ended chats.
    pub fn with_survey(self, survey_kind: SurveyKind, surveys_taken: bool) -> Machine {
        Machine { survey_kind, surveys_taken, ..self }
    }

    /// The survey to show now, if any.
    pub fn survey(&self) -> Option<SurveyStage> {
        if self.survey_kind == SurveyKind::Off {
            return None;
        }
        let chat = self.stored.chat.as_ref().filter(|c| !c.surveyed)?;
        if !chat.ended {
            return self.rating_before_end.then_some(SurveyStage::BeforeEnd);
        }
        self.surveys_taken.then_some(SurveyStage::AfterEnd)
    }

    /// The site's scale.
    pub fn survey_kind(&self) -> SurveyKind {
        self.survey_kind
    }

    pub(super) fn rate(&mut self, rating: u8, comment: &str, out: &mut Vec<Effect>) {
        let Some(stage) = self.survey() else { return };
        let answer = SurveyAnswer {
            scale: self.survey_kind.scale().to_owned(),
            rating,
            comment: comment.trim().chars().take(SurveyAnswer::COMMENT_LIMIT).collect(),
        };
        if !answer.is_valid() {
            return;
        }
        self.mark_surveyed();
        match stage {
            SurveyStage::BeforeEnd => {
                let operation = ChatOperation::UpdateData { user_data: answer.user_data() };
                // Once: a rating that cannot reach GMS must not hold up the end.
                let asked = self.chat_request(Purpose::Rating, operation, RetryPolicy::ONCE, out);
                if asked.is_none() {
                    self.end_now(out);
                }
            }
            SurveyStage::AfterEnd => {
                let Some(chat) = &self.stored.chat else { return };
                let Some(token) = chat.relay_token.clone() else { return };
                let chat_id = chat.credentials.chat_id.clone();
                out.push(Effect::SendSurvey { chat_id, token, answer });
            }
        }
    }

    pub(super) fn skip_survey(&mut self, out: &mut Vec<Effect>) {
        let Some(stage) = self.survey() else { return };
        self.mark_surveyed();
        if stage == SurveyStage::BeforeEnd {
            self.end_now(out);
        }
    }

    fn mark_surveyed(&mut self) {
        if let Some(chat) = self.stored.chat.as_mut() {
            chat.surveyed = true;
            self.saved = false;
        }
        self.rating_before_end = false;
    }
}
