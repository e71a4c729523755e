//! Read receipts: GMS hears what the visitor has seen (`readReceipt` with the position of
//! the last event seen), once the panel shows new lines from someone else, at most once a
//! `RECEIPT_PAUSE` (a later batch waits for the pause to end); a GMS that does not know the
//! operation (an HTTP error, or an envelope that is not statusCode 0) hears no more of them
//! for that chat. Only the leader tab sends: every tab shows the same seen position.

use std::time::Duration;

use super::{Machine, Purpose};
use crate::gms::{ChatOperation, RetryPolicy};
use crate::transcript::TranscriptPosition;
use crate::visitor::io::{Effect, GmsResult};

/// The least time between two read receipts of a chat.
pub const RECEIPT_PAUSE: Duration = Duration::from_secs(5);

/// The read receipts of the active chat, in this page.
#[derive(Debug, Clone, Default)]
pub(super) struct Receipts {
    /// The chat they are for.
    chat_id: String,
    /// The `nextPosition` GMS was last told the visitor had seen.
    told: u64,
    /// A pause runs: what is seen meanwhile is told when it ends.
    pausing: bool,
    /// GMS does not take them for this chat.
    off: bool,
    /// Tells the pause's end apart from an earlier chat's.
    generation: u64,
}

impl Machine {
    /// Tells GMS what the visitor has seen, if there is news and no pause runs.
    pub(super) fn receipt(&mut self, out: &mut Vec<Effect>) {
        let Some(chat) = self.active_chat() else { return };
        let (chat_id, seen) = (chat.credentials.chat_id.clone(), chat.seen.unwrap_or(0));
        // Only others' lines are news to them: the visitor's own are known to be read.
        let news = chat.events.iter().any(|e| {
            e.index.is_some_and(|i| i >= self.receipts.told && i < seen) && !e.from.is_client()
        });
        if self.receipts.chat_id != chat_id {
            let generation = self.receipts.generation + 1;
            self.receipts = Receipts { chat_id, told: 0, generation, ..Receipts::default() };
        }
        // Only what the visitor saw with the panel open: an adopted chat's `seen` is set from
        // its history, which nobody has just read.
        if !self.stored.open || !self.leader || self.receipts.off || self.receipts.pausing || !news
        {
            return;
        }
        let position = TranscriptPosition::from_value(seen.saturating_sub(1).max(1));
        let operation = ChatOperation::ReadReceipt { position };
        if self.chat_request(Purpose::Receipt, operation, RetryPolicy::ONCE, out).is_some() {
            self.receipts.told = seen;
            self.receipts.pausing = true;
            out.push(Effect::ReceiptTimer(self.receipts.generation));
        }
    }

    /// The pause asked for with `generation` is over.
    pub(super) fn receipt_due(&mut self, generation: u64, out: &mut Vec<Effect>) {
        if generation == self.receipts.generation {
            self.receipts.pausing = false;
            self.receipt(out);
        }
    }

    /// GMS's answer to a read receipt: anything but a plain yes ends them for this chat.
    pub(super) fn receipt_answered(&mut self, result: &GmsResult) {
        if !matches!(result, GmsResult::Answer(response) if response.status_code == 0) {
            self.receipts.off = true;
        }
    }
}
