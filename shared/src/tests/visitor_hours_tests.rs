//! Expectations in the visitor's machine: office hours asked of the relay only when the
//! pre-chat form shows, once per form, and with `closedMode = refuse` no chat starts while
//! closed; the expected wait shown until an agent joins.

use super::fixtures::tokens;
use crate::gms::Visitor;
use crate::relay_api::OfficeHours;
use crate::visitor::{ChatState, Effect, Input, Machine, Stored};
use crate::widget_config::ClosedMode;

fn asks_hours(out: &[Effect]) -> bool {
    out.iter().any(|e| matches!(e, Effect::FetchHours { service } if service == "svc"))
}

fn starts(out: &[Effect]) -> bool {
    out.iter().any(|e| matches!(e, Effect::Gms { .. }))
}

fn visitor() -> Visitor {
    Visitor { nickname: Some("Ann".into()), ..Visitor::default() }
}

const CLOSED: OfficeHours = OfficeHours { open: false, next_open: Some(1_796_634_000_000) };

#[test]
fn the_hours_are_asked_when_the_form_shows_and_only_then() {
    let mut m = Machine::fresh("dev", "svc", "");
    assert!(!asks_hours(&m.step(Input::Load)), "a page view that does not open the chat");
    assert!(asks_hours(&m.step(Input::SetOpen(true))));
    assert!(!asks_hours(&m.step(Input::Hours(None))), "once per showing of the form");
    assert!(!asks_hours(&m.step(Input::SetOpen(false))));
    assert!(asks_hours(&m.step(Input::SetOpen(true))), "shown again: asked again");
    let out = m.step(Input::Hours(Some(CLOSED)));
    assert_eq!(m.hours(), Some(CLOSED));
    // Closed: asked again when it opens, whatever the form shows meanwhile.
    assert!(out.contains(&Effect::HoursTimer(1_796_634_000_000)), "{out:?}");
    assert!(asks_hours(&m.step(Input::HoursDue)));
    // Nothing is stored for a visitor who only looked.
    assert!(!m.step(Input::SetOpen(true)).contains(&Effect::Save));
}

#[test]
fn a_closed_office_takes_chats_unless_the_site_refuses_them() {
    let mut writes = Machine::fresh("dev", "svc", "");
    writes.step(Input::SetOpen(true));
    writes.step(Input::Hours(Some(CLOSED)));
    assert!(!writes.start_refused());
    assert!(starts(&writes.step(Input::Start(visitor()))));

    let mut refuses = Machine::fresh("dev", "svc", "").with_closed_mode(ClosedMode::Refuse);
    refuses.step(Input::SetOpen(true));
    // Until the relay has said, and when it cannot say, the form takes chats.
    assert!(!refuses.start_refused());
    refuses.step(Input::Hours(None));
    assert!(!refuses.start_refused());
    refuses.step(Input::Hours(Some(CLOSED)));
    assert!(refuses.start_refused());
    assert!(!starts(&refuses.step(Input::Start(visitor()))));
    refuses.step(Input::Hours(Some(OfficeHours { open: true, next_open: None })));
    assert!(!refuses.start_refused());
    assert!(starts(&refuses.step(Input::Start(visitor()))));
}

#[test]
fn no_form_no_question_and_a_new_chat_after_the_end_asks_again() {
    let mut m = Machine::fresh("dev", "svc", "");
    m.step(Input::SetOpen(true));
    m.step(Input::Hours(Some(CLOSED)));
    // No form while a chat starts or runs, nor over an ended one.
    assert!(!asks_hours(&m.step(Input::Start(visitor()))));
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.ended = true;
    let stored =
        Stored { device_id: "d".into(), chat: Some(chat), open: true, ..Stored::default() };
    let mut ended = Machine::new(stored, "svc", "");
    assert!(!asks_hours(&ended.step(Input::Load)));
    assert!(asks_hours(&ended.step(Input::NewChat)));
}

#[test]
fn the_expected_wait_shows_in_minutes_until_an_agent_joins() {
    use crate::gms::{ChatEvent, EventType, Party};
    use crate::relay_api::ServerFrame;
    let stored = Stored {
        device_id: "d".into(),
        chat: Some(ChatState::new("svc", tokens("C"))),
        ..Stored::default()
    };
    let mut m = Machine::new(stored, "svc", "");
    assert_eq!(m.expected_wait(), None, "nothing until the relay says");
    m.step(Input::Frame(ServerFrame::Wait { chat_id: "X".into(), seconds: Some(600) }));
    assert_eq!(m.expected_wait(), None, "another chat's");
    m.step(Input::Frame(ServerFrame::Wait { chat_id: "C".into(), seconds: Some(230) }));
    assert_eq!(m.expected_wait(), Some(4));
    m.step(Input::Frame(ServerFrame::Wait { chat_id: "C".into(), seconds: Some(61) }));
    assert_eq!(m.expected_wait(), Some(2), "updated");
    let agent = Party { nickname: "Ann".into(), participant_id: 2, party_type: "Agent".into() };
    let joined = ChatEvent::new(1, EventType::ParticipantJoined, agent, 0);
    m.step(Input::Frame(ServerFrame::Events {
        chat_id: "C".into(),
        messages: vec![joined],
        next_position: Some(2),
    }));
    assert_eq!(m.expected_wait(), None, "an agent joined");
    // GMS with nothing usable any more: nothing shown (even before an agent).
    let mut fresh = Machine::new(
        Stored {
            device_id: "d".into(),
            chat: Some(ChatState::new("svc", tokens("C"))),
            ..Stored::default()
        },
        "svc",
        "",
    );
    fresh.step(Input::Frame(ServerFrame::Wait { chat_id: "C".into(), seconds: Some(230) }));
    fresh.step(Input::Frame(ServerFrame::Wait { chat_id: "C".into(), seconds: None }));
    assert_eq!(fresh.expected_wait(), None);
}
