//! What the widget keeps of a chat: transcript merging, the bounded cache, typing, unread.

use super::fixtures::tokens;
use crate::gms::{ChatEvent, ChatResponse, EventType, Party};
use crate::visitor::{CACHE_LIMIT, ChatState};

fn party(id: i64, nickname: &str) -> Party {
    Party {
        nickname: nickname.into(),
        participant_id: id,
        party_type: if id == 1 { "Client" } else { "Agent" }.into(),
    }
}

fn event(index: u64, kind: EventType, from: Party, text: &str) -> ChatEvent {
    let mut e = ChatEvent::new(index, kind, from, 0);
    e.text = Some(text.to_owned());
    e
}

fn state() -> ChatState {
    ChatState::new("svc", tokens("c"))
}

#[test]
fn events_apply_once_in_order_and_a_gap_asks_for_a_refresh() {
    let mut chat = state();
    let applied = chat.apply_events([
        event(2, EventType::Message, party(2, "Ann"), "b"),
        event(1, EventType::Message, party(2, "Ann"), "a"),
    ]);
    assert_eq!((applied.fresh, applied.gap), (2, None));
    let again = chat.apply_events([event(2, EventType::Message, party(2, "Ann"), "b")]);
    assert_eq!(again.fresh, 0);
    let gap = chat.apply_events([event(5, EventType::Message, party(2, "Ann"), "e")]);
    assert!(gap.gap.is_some());
    assert_eq!(chat.next_position, 3);
    assert_eq!(chat.events.len(), 2);
}

#[test]
fn responses_update_the_alias_and_the_end() {
    let mut chat = state();
    let response: ChatResponse = serde_json::from_str(
        r#"{"statusCode":0,"alias":"118","chatEnded":true,"nextPosition":2,
            "messages":[{"from":{"nickname":"J","participantId":1,"type":"Client"},"index":1,"type":"ParticipantLeft"}]}"#,
    )
    .expect("parses");
    chat.apply_response(&response);
    assert_eq!(chat.credentials.alias, "118");
    assert!(chat.ended);
    let error: ChatResponse =
        serde_json::from_str(r#"{"statusCode":2,"alias":"999"}"#).expect("parses");
    chat.apply_response(&error);
    assert_eq!(chat.credentials.alias, "118", "error responses are not trusted");
    let ahead: ChatResponse =
        serde_json::from_str(r#"{"statusCode":0,"nextPosition":7}"#).expect("parses");
    assert!(chat.apply_response(&ahead).gap.is_some());
}

#[test]
fn the_cache_is_bounded() {
    let mut chat = state();
    chat.apply_events((1..=400).map(|i| event(i, EventType::Message, party(2, "Ann"), "x")));
    assert_eq!(chat.events.len(), CACHE_LIMIT);
    assert_eq!(chat.events[0].index, Some(101));
    assert_eq!(chat.next_position, 401);
}

#[test]
fn agent_typing_follows_the_latest_agent_event() {
    let mut chat = state();
    chat.apply_events([event(1, EventType::TypingStarted, party(2, "Ann"), "")]);
    assert_eq!(chat.agent_typing().as_deref(), Some("Ann"));
    chat.apply_events([event(2, EventType::Message, party(1, "Jane"), "hi")]);
    assert_eq!(
        chat.agent_typing().as_deref(),
        Some("Ann"),
        "the visitor's own events do not matter"
    );
    chat.apply_events([event(3, EventType::Message, party(2, "Ann"), "hello")]);
    assert_eq!(chat.agent_typing(), None);
}

#[test]
fn agent_lines_after_the_last_look_are_unread() {
    let mut chat = state();
    chat.apply_events([
        event(1, EventType::ParticipantJoined, party(2, "Ann"), ""),
        event(2, EventType::Message, party(2, "Ann"), "hello"),
    ]);
    assert_eq!(chat.unread(), 1);
    chat.mark_seen();
    assert_eq!(chat.unread(), 0);
    chat.apply_events([
        event(3, EventType::Message, party(1, "Jane"), "mine"),
        event(4, EventType::TypingStarted, party(2, "Ann"), ""),
        event(5, EventType::PushUrl, party(2, "Ann"), "https://example.com"),
        event(6, EventType::Message, party(2, "Ann"), "and this"),
    ]);
    assert_eq!(chat.unread(), 2);
    let older_cache = ChatState { seen: None, ..chat };
    assert_eq!(older_cache.unread(), 0);
}

#[test]
fn agent_lines_count_from_a_position_and_never_the_visitors_own() {
    let mut chat = state();
    chat.apply_events([
        event(1, EventType::Message, party(2, "Ann"), "a"),
        event(2, EventType::Message, party(1, "Jane"), "b"),
        event(3, EventType::TypingStarted, party(2, "Ann"), ""),
        event(4, EventType::PushUrl, party(2, "Ann"), "https://x.org"),
    ]);
    assert_eq!(chat.agent_lines_since(1), 2);
    assert_eq!(chat.agent_lines_since(2), 1);
    assert_eq!(chat.agent_lines_since(5), 0);
}
