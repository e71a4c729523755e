//! What each visitor was shown, line by line, and the checks against GMS's transcript:
//! every event exactly once, in index order, with GMS's content.

use shared::gms::ChatEvent;
use shared::visitor::ChatState;

/// One visitor's delivery log, kept across its tabs.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Every transcript event the visitor was shown, in the order shown: index and text.
    pub shown: Vec<(u64, Option<String>)>,
    /// Events shown again after they had been shown.
    pub duplicates: u64,
    /// Events shown before one with a lower index that came after them.
    pub out_of_order: u64,
    seen: std::collections::BTreeSet<u64>,
}

impl Ledger {
    /// Takes in what the visitor's chat shows after a step, given where it stood before
    /// (its `next_position`): the events from there on are new to the view.
    pub fn record(&mut self, before: u64, chat: &ChatState) {
        for event in &chat.events {
            let Some(index) = event.index.filter(|index| *index >= before) else { continue };
            if !self.seen.insert(index) {
                self.duplicates += 1;
            } else if self.seen.last().is_some_and(|highest| *highest > index) {
                self.out_of_order += 1;
            }
            self.shown.push((index, event.text.clone()));
        }
    }
}

/// How one visitor's log compares with its chat's transcript in GMS.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Transcript events the visitor never saw.
    pub missing: Vec<u64>,
    /// Events shown with other content than GMS has, or that GMS does not have.
    pub wrong: Vec<u64>,
    pub duplicates: u64,
    pub out_of_order: u64,
}

impl Verdict {
    pub fn clean(&self) -> bool {
        self.missing.is_empty()
            && self.wrong.is_empty()
            && self.duplicates == 0
            && self.out_of_order == 0
    }
}

/// Compares the log with the transcript (events without an index are not part of it).
pub fn check(ledger: &Ledger, transcript: &[ChatEvent]) -> Verdict {
    let mut expected: Vec<(u64, Option<String>)> =
        transcript.iter().filter_map(|e| e.index.map(|index| (index, e.text.clone()))).collect();
    expected.sort_by_key(|(index, _)| *index);
    let mut shown = ledger.shown.clone();
    shown.sort_by_key(|(index, _)| *index);
    shown.dedup_by_key(|(index, _)| *index);
    let missing = expected
        .iter()
        .filter(|(index, _)| shown.binary_search_by_key(index, |(i, _)| *i).is_err())
        .map(|(index, _)| *index)
        .collect();
    let wrong = shown
        .iter()
        .filter(|entry| {
            expected.binary_search_by_key(&entry.0, |(i, _)| *i).map(|k| &expected[k]) != Ok(*entry)
        })
        .map(|(index, _)| *index)
        .collect();
    Verdict { missing, wrong, duplicates: ledger.duplicates, out_of_order: ledger.out_of_order }
}

#[cfg(test)]
mod tests {
    use shared::gms::{ChatEvent, Credentials};
    use shared::visitor::ChatState;

    use super::*;

    fn event(index: u64, text: &str) -> ChatEvent {
        serde_json::from_value(serde_json::json!({
            "from": {"nickname": "Agent", "participantId": 2, "type": "Agent"},
            "index": index, "type": "Message", "text": text,
        }))
        .expect("an event")
    }

    fn chat(events: &[(u64, &str)]) -> ChatState {
        let credentials = Credentials {
            chat_id: "c".into(),
            user_id: "u".into(),
            secure_key: "k".into(),
            alias: "117".into(),
        };
        let mut chat = ChatState::new("s", credentials);
        chat.events = events.iter().map(|(i, t)| event(*i, t)).collect();
        chat.next_position = events.last().map_or(1, |(i, _)| i + 1);
        chat
    }

    #[test]
    fn a_complete_log_in_order_is_clean() {
        let mut ledger = Ledger::default();
        ledger.record(1, &chat(&[(1, "a"), (2, "b")]));
        ledger.record(3, &chat(&[(1, "a"), (2, "b"), (3, "c")]));
        let transcript = [event(1, "a"), event(2, "b"), event(3, "c")];
        assert!(check(&ledger, &transcript).clean());
    }

    #[test]
    fn missing_repeated_reordered_and_altered_events_are_each_reported() {
        let mut ledger = Ledger::default();
        ledger.record(1, &chat(&[(1, "a"), (3, "c")]));
        // The view went back: 3 again, then 2 after 3.
        ledger.record(2, &chat(&[(2, "b"), (3, "c")]));
        let transcript = [event(1, "a"), event(2, "b"), event(3, "c"), event(4, "d")];
        let verdict = check(&ledger, &transcript);
        assert_eq!(verdict.missing, vec![4]);
        assert_eq!(verdict.duplicates, 1);
        assert_eq!(verdict.out_of_order, 1);
        assert!(verdict.wrong.is_empty());

        let mut altered = Ledger::default();
        altered.record(1, &chat(&[(1, "a"), (2, "B")]));
        assert_eq!(check(&altered, &transcript[..2]).wrong, vec![2]);
    }
}
