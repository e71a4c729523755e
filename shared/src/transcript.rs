//! Transcript positions: merging event slices by `index`, dropping duplicates, finding gaps.
//!
//! GMS numbers every event from 1. `transcriptPosition` 0 returns no events (the ping that
//! acknowledges a push), 1 returns the whole transcript, N returns the events from index N.
//! A client that keeps the next index it expects can always catch up with one refresh, so
//! a push is only a hint and positions are what make delivery exactly-once and in order.

use crate::gms::{ChatEvent, ChatResponse};

/// The `transcriptPosition` request parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TranscriptPosition {
    /// 0: no events. A pure ping.
    None,
    /// 1: the whole transcript.
    All,
    /// N ≥ 2: the events from index N on.
    From(u64),
}

impl TranscriptPosition {
    /// The position for a raw parameter value.
    pub fn from_value(value: u64) -> Self {
        match value {
            0 => TranscriptPosition::None,
            1 => TranscriptPosition::All,
            n => TranscriptPosition::From(n),
        }
    }

    /// The parameter value.
    pub fn value(self) -> u64 {
        match self {
            TranscriptPosition::None => 0,
            TranscriptPosition::All => 1,
            TranscriptPosition::From(n) => n,
        }
    }

    /// The first index a response to this position contains, or `None` for no events.
    pub fn first_index(self) -> Option<u64> {
        match self {
            TranscriptPosition::None => None,
            TranscriptPosition::All => Some(1),
            TranscriptPosition::From(n) => Some(n),
        }
    }
}

/// Events were missing between what the cursor had and what arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The index the cursor expected next.
    pub expected: u64,
    /// The lowest index that arrived (or the `nextPosition` GMS reported) beyond it.
    pub found: u64,
}

/// What merging a slice did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merge {
    /// New events, in index order, each exactly once.
    pub fresh: Vec<ChatEvent>,
    /// Events already seen, dropped.
    pub duplicates: usize,
    /// Set when events are missing: refresh from `expected` to fill it.
    pub gap: Option<Gap>,
}

/// The next index a reader expects. Starts at 1: nothing seen yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscriptCursor {
    next: u64,
}

impl Default for TranscriptCursor {
    fn default() -> Self {
        TranscriptCursor { next: 1 }
    }
}

impl TranscriptCursor {
    /// A cursor that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cursor restored from a stored `nextPosition` (values below 1 mean nothing seen).
    pub fn at(next_position: u64) -> Self {
        TranscriptCursor { next: next_position.max(1) }
    }

    /// The index expected next, i.e. the `nextPosition` to store.
    pub fn next_position(self) -> u64 {
        self.next
    }

    /// The position to refresh from to get exactly what is missing.
    pub fn refresh_position(self) -> TranscriptPosition {
        TranscriptPosition::from_value(self.next)
    }

    /// Merges a slice of events. Events at or after a gap are not taken: they come again
    /// with the refresh that fills the gap, in order. Events without an index cannot be
    /// placed, so they are passed through as fresh.
    pub fn merge(&mut self, events: impl IntoIterator<Item = ChatEvent>) -> Merge {
        // Unindexed events first, in their order, then the others by index (an unstable sort:
        // equal indices are duplicates, and it is the smaller code in the widget).
        let (mut events, mut indexed): (Vec<ChatEvent>, Vec<ChatEvent>) =
            events.into_iter().partition(|e| e.index.is_none());
        indexed.sort_unstable_by_key(|e| e.index);
        events.append(&mut indexed);
        let mut merge = Merge::default();
        for event in events {
            match event.index {
                None => merge.fresh.push(event),
                Some(index) if index < self.next => merge.duplicates += 1,
                Some(index) if index == self.next => {
                    self.next += 1;
                    merge.fresh.push(event);
                }
                Some(index) => {
                    merge.gap.get_or_insert(Gap { expected: self.next, found: index });
                }
            }
        }
        merge
    }

    /// Merges a response's events, then checks its `nextPosition`: one beyond the cursor
    /// means events exist that the response did not carry (a ping, or a truncated slice).
    pub fn apply(&mut self, response: &ChatResponse) -> Merge {
        let mut merge = self.merge(response.messages.iter().cloned());
        if merge.gap.is_none() {
            merge.gap = self.behind(response.next_position);
        }
        merge
    }

    /// The gap between the cursor and a `nextPosition` someone reported, if it is ahead.
    pub fn behind(self, reported_next: Option<u64>) -> Option<Gap> {
        match reported_next {
            Some(found) if found > self.next => Some(Gap { expected: self.next, found }),
            _ => None,
        }
    }
}
