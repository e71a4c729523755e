//! Rich messages: the structured content read from GMS's event attributes in both codecs,
//! each template, hostile fields, the live quick replies, and a choice going back.

use super::fixtures::tokens;
use crate::gms::{ChatEvent, ChatOperation, EventType, Party};
use crate::relay_api::ServerFrame;
use crate::rich::{
    Action, Card, Choice, MAX_ITEMS, Rich, live_choices, replied_to, reply_attributes,
};
use crate::visitor::{ChatState, Effect, Input, Machine, Stored};

const QUICK: &str = r#"{"contentType":"quick-replies","content":[
    {"id":1,"type":"quick-reply","action":"message","text":"Sounds good."},
    {"id":2,"type":"quick-reply","text":"No, sorry.","actions":{"textback":"no"}},
    {"id":3,"type":"quick-reply","text":"  "}]}"#;

fn reply(label: &str, text: &str) -> Choice {
    Choice { label: label.into(), action: Action::Reply(text.into()), ..Choice::default() }
}

/// A GMS message event whose attributes carry `content` as written (an object, or a string).
fn event_json(index: u64, party: &str, content: &str) -> String {
    format!(
        r#"{{"from":{{"nickname":"Bot","participantId":2,"type":"{party}"}},"index":{index},"type":"Message","text":"Pick one","eventAttributes":{{"structured-content":{{"genesys-chat":{{"content":{content}}}}},"GCTI_SYSTEM":{{"party-info":{{"style":"BOT"}}}}}}}}"#
    )
}

fn both_codecs(json: &str) -> ChatEvent {
    let widget: ChatEvent = crate::json::from_str(json).expect("the widget reads it");
    let relay: ChatEvent = serde_json::from_str(json).expect("the relay reads it");
    assert_eq!(widget.attributes.is_some(), relay.attributes.is_some());
    assert_eq!(Rich::of(&widget), Rich::of(&relay), "both codecs read the same content");
    // Written by either and read back by the other, nothing is lost.
    let again: ChatEvent = serde_json::from_str(&crate::json::to_string(&widget)).expect("serde");
    assert_eq!(Rich::of(&again), Rich::of(&widget));
    let again: ChatEvent =
        crate::json::from_str(&serde_json::to_string(&relay).expect("json")).expect("widget");
    assert_eq!(Rich::of(&again), Rich::of(&relay));
    widget
}

#[test]
fn quick_replies_are_read_from_an_object_or_a_string_in_both_codecs() {
    let from_object = both_codecs(&event_json(4, "Agent", QUICK));
    let as_string = serde_json::to_string(QUICK).expect("string");
    let from_string = both_codecs(&event_json(4, "Agent", &as_string));
    let expected =
        Rich::QuickReplies(vec![reply("Sounds good.", "Sounds good."), reply("No, sorry.", "no")]);
    assert_eq!(Rich::of(&from_object), Some(expected.clone()));
    assert_eq!(Rich::of(&from_string), Some(expected.clone()));
    // The attributes themselves as JSON text, as a send carries them.
    let attributes =
        format!(r#"{{"structured-content":{{"genesys-chat":{{"content":{QUICK}}}}}}}"#);
    let json = format!(
        r#"{{"index":4,"type":"Message","text":"Pick one","eventAttributes":{}}}"#,
        serde_json::to_string(&attributes).expect("string")
    );
    assert_eq!(Rich::of(&both_codecs(&json)), Some(expected));
    assert!(Rich::of(&from_object).is_some_and(|r| r.keeps_text()));
    assert_eq!(from_object.text.as_deref(), Some("Pick one"), "the fallback stays");
}

#[test]
fn a_card_keeps_https_images_safe_links_and_its_buttons() {
    let content = r#"{"contentType":"generic","content":[{"id":"c1","title":"Flight <b>BA 117</b>",
        "desc":"Gate 4","image":"https://example.com/plane.png","imageText":"A plane",
        "actions":{"url":"https://example.com/booking"},
        "components":[
          {"type":"button","text":"Check in","actions":{"textback":"check in"}},
          {"type":"button","text":"Details","actions":{"url":"https://example.com/d"}},
          {"type":"button","text":"Evil","actions":{"url":"javascript:alert(1)"}},
          {"type":"image","image":"https://example.com/x.png"},
          {"type":"button","text":""}]}]}"#;
    let event = both_codecs(&event_json(5, "Agent", content));
    let Some(Rich::Cards(cards)) = Rich::of(&event) else { panic!("a card") };
    assert_eq!(
        cards,
        vec![Card {
            title: "Flight <b>BA 117</b>".into(),
            text: "Gate 4".into(),
            image: Some(("https://example.com/plane.png".into(), "A plane".into())),
            link: Some("https://example.com/booking".into()),
            items: vec![
                reply("Check in", "check in"),
                Choice {
                    label: "Details".into(),
                    action: Action::Link("https://example.com/d".into()),
                    ..Choice::default()
                },
                Choice { label: "Evil".into(), action: Action::Show, ..Choice::default() },
            ],
        }]
    );
    assert!(!Rich::Cards(cards).keeps_text(), "a card takes the fallback's place");
}

#[test]
fn images_load_only_over_https_and_links_only_over_http_s() {
    let content = r#"{"contentType":"generic","content":[
        {"title":"a","image":"http://example.com/a.png","actions":{"url":"data:text/html,x"}},
        {"title":"b","image":"javascript:alert(1)//https://x","actions":{"url":"HTTP://example.com/ok"}},
        {"title":"c","image":"HTTPS://example.com/c.png"},
        {"title":"d","image":"https://exa mple.com/d.png"}]}"#;
    let Some(Rich::Cards(cards)) = crate::json::parse(content).and_then(|c| Rich::read(&c)) else {
        panic!("cards")
    };
    let images: Vec<_> = cards.iter().map(|c| c.image.as_ref().map(|i| i.0.as_str())).collect();
    assert_eq!(images, [None, None, Some("HTTPS://example.com/c.png"), None]);
    let links: Vec<_> = cards.iter().map(|c| c.link.as_deref()).collect();
    assert_eq!(links, [None, Some("HTTP://example.com/ok"), None, None]);
}

#[test]
fn lists_and_carousels_are_read_and_capped() {
    let list = r#"{"contentType":"list-vertical","content":[{"title":"Our plans","desc":"Pick one",
        "components":[
          {"type":"list-item","title":"Basic","desc":"9 EUR","image":"https://example.com/b.png","actions":{"textback":"basic"}},
          {"type":"list-item-big","title":"Pro","actions":{"url":"https://example.com/pro"}},
          {"type":"list-item","desc":"no title"}]}]}"#;
    let Some(Rich::Lists(lists)) = crate::json::parse(list).and_then(|c| Rich::read(&c)) else {
        panic!("a list")
    };
    assert_eq!(lists[0].title, "Our plans");
    assert_eq!(
        lists[0].items,
        vec![
            Choice {
                label: "Basic".into(),
                detail: "9 EUR".into(),
                image: Some("https://example.com/b.png".into()),
                action: Action::Reply("basic".into()),
            },
            Choice {
                label: "Pro".into(),
                action: Action::Link("https://example.com/pro".into()),
                ..Choice::default()
            },
        ]
    );
    let single = list.replace("list-vertical", "single-selection-list");
    assert!(matches!(
        crate::json::parse(&single).and_then(|c| Rich::read(&c)),
        Some(Rich::Lists(_))
    ));

    let many: Vec<String> = (0..50).map(|i| format!(r#"{{"title":"card {i}"}}"#)).collect();
    let carousel = format!(r#"{{"contentType":"generic","content":[{}]}}"#, many.join(","));
    let Some(Rich::Cards(cards)) = crate::json::parse(&carousel).and_then(|c| Rich::read(&c))
    else {
        panic!("a carousel")
    };
    assert_eq!(cards.len(), MAX_ITEMS, "a hostile message cannot fill the page");
}

#[test]
fn anything_else_falls_back_to_the_text() {
    for content in [
        r#"{"contentType":"date-picker","content":[{"title":"x"}]}"#,
        r#"{"contentType":"generic","content":[]}"#,
        r#"{"contentType":"generic","content":[{"id":1}]}"#,
        r#"{"contentType":"quick-replies","content":{"text":"not a list"}}"#,
        r#"{"content":[{"text":"no type"}]}"#,
        r#""not json at all""#,
        r#"[1,2,3]"#,
        r#"null"#,
    ] {
        let event = both_codecs(&event_json(1, "Agent", content));
        assert_eq!(Rich::of(&event), None, "{content}");
        assert_eq!(event.text.as_deref(), Some("Pick one"));
    }
    // Deeply nested or huge content does not panic either codec.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let _ = both_codecs(&event_json(1, "Agent", &serde_json::to_string(&deep).expect("s")));
}

#[test]
fn only_the_last_message_s_quick_replies_are_live() {
    let rich = |index, party| both_codecs(&event_json(index, party, QUICK));
    let plain = |index, party: &str| ChatEvent {
        text: Some("hi".into()),
        ..ChatEvent::new(
            index,
            EventType::Message,
            Party { party_type: party.into(), ..Party::default() },
            0,
        )
    };
    let typing = ChatEvent::new(3, EventType::TypingStarted, Party::default(), 0);
    assert_eq!(live_choices(&[plain(1, "Client"), rich(2, "Agent"), typing]), Some(2));
    assert_eq!(live_choices(&[rich(2, "Agent"), plain(3, "Client")]), None, "chosen or answered");
    assert_eq!(live_choices(&[rich(2, "Agent"), plain(3, "Agent")]), None, "a newer line");
    assert_eq!(live_choices(&[plain(1, "Agent")]), None);
    let card = both_codecs(&event_json(
        5,
        "Agent",
        r#"{"contentType":"generic","content":[{"title":"t"}]}"#,
    ));
    assert_eq!(live_choices(&[card]), Some(5), "the view retires only quick replies");
}

#[test]
fn a_choice_goes_back_as_a_message_linked_to_its_rich_message() {
    assert_eq!(reply_attributes(7), r#"{"general-properties":{"related-event-id":"7"}}"#);
    assert_eq!(replied_to(&reply_attributes(7)), Some(7));
    assert_eq!(replied_to(r#"{"general-properties":{"related-event-id":8}}"#), Some(8));
    assert_eq!(replied_to(r#"{"general-properties":{}}"#), None);
    assert_eq!(replied_to("nonsense"), None);

    // The chat has seen position 1; the rich message comes next.
    let chat = ChatState { next_position: 2, ..ChatState::new("svc", tokens("C")) };
    let stored =
        Stored { device_id: "d".into(), chat: Some(chat), open: true, ..Stored::default() };
    let mut m = Machine::new(stored, "svc", "");
    let event = both_codecs(&event_json(2, "Agent", QUICK));
    m.step(Input::Frame(ServerFrame::Events {
        chat_id: "C".into(),
        messages: vec![event],
        next_position: Some(3),
    }));
    assert_eq!(m.live_choices(), Some(2));
    let out = m.step(Input::Choose { index: 2, text: "no".into() });
    assert_eq!(m.live_choices(), None, "a choice on its way retires the set at once");
    let sent = out.iter().find_map(|e| match e {
        Effect::Gms { operation: operation @ ChatOperation::Send { .. }, .. } => {
            Some(operation.clone())
        }
        _ => None,
    });
    let Some(operation @ ChatOperation::Send { reply_to: Some(2), .. }) = sent else {
        panic!("the choice is sent, linked: {out:?}")
    };
    let encoded = operation.encode("svc", Some(&tokens("C")));
    let crate::gms::RequestBody::Form(fields) = &encoded.body else { panic!("a form") };
    assert!(fields.contains(&("message".to_owned(), "no".to_owned())), "{fields:?}");
    assert!(fields.contains(&("eventAttributes".to_owned(), reply_attributes(2))), "{fields:?}");
    // Proxy mode reads the same link back from the form.
    let read = crate::proxy::read_operation("send", fields);
    assert!(matches!(read, Ok(ChatOperation::Send { reply_to: Some(2), .. })), "{read:?}");
}
