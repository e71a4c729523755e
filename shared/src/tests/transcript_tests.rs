use crate::gms::{ChatEvent, ChatResponse, EventType, Party};
use crate::transcript::{Gap, TranscriptCursor, TranscriptPosition};

fn event(index: u64) -> ChatEvent {
    ChatEvent::new(index, EventType::Message, Party::default(), 0)
}

fn indexes(events: &[ChatEvent]) -> Vec<u64> {
    events.iter().filter_map(|e| e.index).collect()
}

#[test]
fn positions_have_the_documented_zero_one_n_meaning() {
    assert_eq!(TranscriptPosition::from_value(0), TranscriptPosition::None);
    assert_eq!(TranscriptPosition::from_value(1), TranscriptPosition::All);
    assert_eq!(TranscriptPosition::from_value(9), TranscriptPosition::From(9));
    assert_eq!(TranscriptPosition::None.first_index(), None);
    assert_eq!(TranscriptPosition::All.first_index(), Some(1));
    assert_eq!(TranscriptPosition::From(9).value(), 9);
}

#[test]
fn a_new_cursor_asks_for_the_whole_transcript() {
    let cursor = TranscriptCursor::new();
    assert_eq!(cursor.next_position(), 1);
    assert_eq!(cursor.refresh_position(), TranscriptPosition::All);
    assert_eq!(TranscriptCursor::at(0).next_position(), 1);
}

#[test]
fn merge_orders_and_drops_duplicates() {
    let mut cursor = TranscriptCursor::new();
    let merge = cursor.merge([event(2), event(1), event(2), event(3)]);
    assert_eq!(indexes(&merge.fresh), [1, 2, 3]);
    assert_eq!(merge.duplicates, 1);
    assert_eq!(merge.gap, None);
    assert_eq!(cursor.next_position(), 4);
    assert_eq!(cursor.refresh_position(), TranscriptPosition::From(4));

    let again = cursor.merge([event(3), event(4)]);
    assert_eq!(indexes(&again.fresh), [4]);
    assert_eq!(again.duplicates, 1);
}

#[test]
fn a_gap_stops_the_merge_so_a_refresh_fills_it_in_order() {
    let mut cursor = TranscriptCursor::at(3);
    let merge = cursor.merge([event(3), event(5), event(6)]);
    assert_eq!(indexes(&merge.fresh), [3]);
    assert_eq!(merge.gap, Some(Gap { expected: 4, found: 5 }));
    assert_eq!(cursor.next_position(), 4, "nothing beyond the gap is taken");
    let filled = cursor.merge([event(4), event(5), event(6)]);
    assert_eq!(indexes(&filled.fresh), [4, 5, 6]);
    assert_eq!(filled.gap, None);
}

#[test]
fn a_next_position_ahead_of_the_cursor_is_a_gap() {
    let mut cursor = TranscriptCursor::at(3);
    let ping: ChatResponse =
        serde_json::from_str(r#"{"statusCode":0,"messages":[],"nextPosition":5}"#).expect("parses");
    assert_eq!(cursor.apply(&ping).gap, Some(Gap { expected: 3, found: 5 }));
    assert_eq!(cursor.behind(Some(3)), None);
    assert_eq!(cursor.behind(None), None);
}

#[test]
fn events_without_an_index_pass_through() {
    let mut cursor = TranscriptCursor::new();
    let mut loose = event(1);
    loose.index = None;
    let merge = cursor.merge([loose, event(1)]);
    assert_eq!(merge.fresh.len(), 2);
    assert_eq!(cursor.next_position(), 2);
}
