//! Read receipts in the visitor's machine: GMS hears what the visitor has seen of others'
//! lines, once per batch and at most once a pause, and no more once it refuses them.

use super::fixtures::tokens;
use crate::gms::{ChatEvent, ChatOperation, ChatResponse, EventType, Party};
use crate::relay_api::ServerFrame;
use crate::visitor::{ChatState, Effect, GmsResult, Input, Machine, NetFailure, Stored};

fn line(index: u64, party: &str) -> ChatEvent {
    let from = Party { nickname: "Ann".into(), participant_id: 2, party_type: party.into() };
    ChatEvent { text: Some("hi".into()), ..ChatEvent::new(index, EventType::Message, from, 0) }
}

fn frame(events: Vec<ChatEvent>) -> Input {
    let next = events.last().and_then(|e| e.index).map(|i| i + 1);
    Input::Frame(ServerFrame::Events { chat_id: "C".into(), messages: events, next_position: next })
}

/// The receipts asked for: (request id, position).
fn receipts(out: &[Effect]) -> Vec<(u64, u64)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Gms { id, operation: ChatOperation::ReadReceipt { position }, .. } => {
                Some((*id, position.value()))
            }
            _ => None,
        })
        .collect()
}

fn open_chat() -> Machine {
    let stored = Stored {
        device_id: "d".into(),
        chat: Some(ChatState::new("svc", tokens("C"))),
        open: true,
        ..Stored::default()
    };
    Machine::new(stored, "svc", "")
}

#[test]
fn seen_lines_are_told_once_per_batch_and_at_most_once_a_pause() {
    let mut m = open_chat();
    assert!(receipts(&m.step(frame(vec![line(1, "Client")]))).is_empty(), "one's own line");
    let out = m.step(frame(vec![line(2, "Agent"), line(3, "Agent")]));
    assert_eq!(receipts(&out).iter().map(|r| r.1).collect::<Vec<_>>(), [3], "the last seen");
    let Some(Effect::ReceiptTimer(generation)) =
        out.iter().find(|e| matches!(e, Effect::ReceiptTimer(_))).cloned()
    else {
        panic!("a pause: {out:?}")
    };
    assert!(receipts(&m.step(frame(vec![line(4, "Agent")]))).is_empty(), "within the pause");
    assert_eq!(
        receipts(&m.step(Input::ReceiptDue(generation))).iter().map(|r| r.1).collect::<Vec<_>>(),
        [4]
    );
    // Closed panel: nothing is seen, nothing told.
    m.step(Input::SetOpen(false));
    let out = m.step(Input::ReceiptDue(generation + 1));
    assert!(receipts(&out).is_empty());
}

#[test]
fn a_gms_that_refuses_them_hears_no_more() {
    for refusal in [
        GmsResult::Failed(NetFailure::Http(404)),
        GmsResult::Answer(Box::new(
            ChatResponse::parse(br#"{"statusCode":1,"chatEnded":false}"#).expect("parses"),
        )),
    ] {
        let mut m = open_chat();
        let out = m.step(frame(vec![line(1, "Agent")]));
        let (id, _) = receipts(&out)[0];
        let Some(Effect::ReceiptTimer(generation)) =
            out.iter().find(|e| matches!(e, Effect::ReceiptTimer(_))).cloned()
        else {
            panic!("a pause")
        };
        m.step(Input::Gms(id, refusal));
        m.step(frame(vec![line(2, "Agent")]));
        assert!(receipts(&m.step(Input::ReceiptDue(generation))).is_empty());
    }
}

#[test]
fn a_closed_panel_tells_nothing_even_of_a_history_counted_seen() {
    // An adopted chat's `seen` comes from its history (up to the visitor's last line),
    // which nobody has just read: with the panel closed, no receipt.
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.apply_events([line(1, "Agent"), line(2, "Client"), line(3, "Agent")]);
    chat.seen = Some(3);
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    let mut m = Machine::new(stored, "svc", "");
    assert!(receipts(&m.step(Input::Load)).is_empty());
    assert!(receipts(&m.step(frame(vec![line(4, "Agent")]))).is_empty());
}
