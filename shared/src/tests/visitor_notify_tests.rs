//! The Web Push opt-in as the machine decides it: offered only when everything supports
//! it, asked for only on a click, a refusal kept for good, and tabs agreeing on the choice.

use super::fixtures::tokens;
use crate::visitor::{ChatState, Effect, Input, Machine, NotifyAnswer, NotifyOffer, Stored};

fn chat() -> ChatState {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.relay_token = Some("T".into());
    chat.push_key = Some("KEY".into());
    chat
}

fn machine(chat: ChatState) -> Machine {
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    let mut m = Machine::new(stored, "svc", "");
    m.step(Input::PushCapable(true));
    m
}

fn subscribes(effects: &[Effect]) -> bool {
    effects.iter().any(|e| {
        *e == Effect::SubscribePush { chat_id: "C".into(), token: "T".into(), key: "KEY".into() }
    })
}

#[test]
fn the_offer_needs_a_running_chat_a_capable_page_and_a_relay_that_pushes() {
    assert_eq!(machine(chat()).notify_offer(), NotifyOffer::Offer);
    let mut incapable = machine(chat());
    incapable.step(Input::PushCapable(false));
    assert_eq!(incapable.notify_offer(), NotifyOffer::Hidden, "no service worker or push API");
    let relay_without_push = machine(ChatState { push_key: None, ..chat() });
    assert_eq!(relay_without_push.notify_offer(), NotifyOffer::Hidden);
    let unregistered = machine(ChatState { relay_token: None, ..chat() });
    assert_eq!(unregistered.notify_offer(), NotifyOffer::Hidden);
    let ended = machine(ChatState { ended: true, ..chat() });
    assert_eq!(ended.notify_offer(), NotifyOffer::Hidden);
    assert_eq!(Machine::fresh("d", "svc", "").notify_offer(), NotifyOffer::Hidden);
}

#[test]
fn only_the_click_asks_and_the_answer_turns_it_on_for_every_tab() {
    let mut m = machine(chat());
    for input in [Input::Load, Input::SetOpen(true), Input::PushCapable(true)] {
        assert!(!subscribes(&m.step(input)), "asked without the visitor's click");
    }
    assert!(subscribes(&m.step(Input::Notify(true))));
    assert_eq!(m.notify_offer(), NotifyOffer::Busy);
    assert!(!subscribes(&m.step(Input::Notify(true))), "one request at a time");
    let out = m.step(Input::NotifyAnswered(NotifyAnswer::On));
    assert!(out.contains(&Effect::Save), "the choice is kept");
    assert_eq!(m.notify_offer(), NotifyOffer::On);
    // Another tab follows the stored choice.
    let mut other = machine(chat());
    other.step(Input::StorageChanged(m.stored.clone()));
    assert_eq!(other.notify_offer(), NotifyOffer::On);
}

#[test]
fn turning_it_off_tells_the_relay_and_the_latest_change_wins_across_tabs() {
    let mut a = machine(chat());
    a.step(Input::Notify(true));
    a.step(Input::NotifyAnswered(NotifyAnswer::On));
    let on = a.stored.clone();
    let out = a.step(Input::Notify(false));
    assert!(out.contains(&Effect::UnsubscribePush { chat_id: "C".into(), token: "T".into() }));
    assert_eq!(a.notify_offer(), NotifyOffer::Offer);
    // A tab that still holds the older "on" writes after it: "off" is the later change.
    let mut stale = on;
    stale.absorb(&a.stored);
    assert_eq!(stale.chat.as_ref().map(ChatState::notify), Some(false));
    let mut fresh = a.stored.clone();
    let before = fresh.clone();
    fresh.absorb(&Stored { chat: Some(chat()), ..before.clone() });
    assert_eq!(fresh, before, "a copy that never changed it does not undo the change");
}

#[test]
fn a_refusal_is_remembered_and_never_offered_again() {
    let mut m = machine(chat());
    m.step(Input::Notify(true));
    let out = m.step(Input::NotifyAnswered(NotifyAnswer::Refused));
    assert!(out.contains(&Effect::Save));
    assert_eq!(m.notify_offer(), NotifyOffer::Hidden);
    assert!(!subscribes(&m.step(Input::Notify(true))));
    // The next chat in this browser is not offered it either, nor another tab.
    let mut next = machine(ChatState { credentials: tokens("C2"), ..chat() });
    next.step(Input::StorageChanged(Stored { chat: None, ..m.stored.clone() }));
    assert_eq!(next.notify_offer(), NotifyOffer::Hidden);
}

#[test]
fn a_dismissed_prompt_or_a_failure_leaves_the_offer_for_another_click() {
    let mut m = machine(chat());
    m.step(Input::Notify(true));
    m.step(Input::NotifyAnswered(NotifyAnswer::Dismissed));
    assert_eq!((m.notify_offer(), m.notice.clone()), (NotifyOffer::Offer, None));
    m.step(Input::Notify(true));
    m.step(Input::NotifyAnswered(NotifyAnswer::Failed));
    assert_eq!(m.notify_offer(), NotifyOffer::Offer);
    assert_eq!(m.notice, Some(crate::visitor::Notice::NotifyFailed));
}

#[test]
fn the_relay_key_comes_with_the_registration_and_goes_if_the_relay_stops_pushing() {
    let mut m = machine(ChatState { push_key: None, ..chat() });
    m.step(Input::SocketOpened);
    let register = |m: &mut Machine, key: Option<&str>| {
        let out = m.step(Input::SocketOpened);
        let id = out.iter().find_map(|e| match e {
            Effect::Register { id, .. } => Some(*id),
            _ => None,
        });
        if let Some(id) = id {
            let registration = crate::visitor::Registration::Registered {
                token: "T".into(),
                position: 1,
                push_key: key.map(str::to_owned),
                identity: None,
            };
            m.step(Input::Registered(id, registration));
        }
        id.is_some()
    };
    assert!(register(&mut m, Some("KEY")));
    assert_eq!(m.notify_offer(), NotifyOffer::Offer);
    m.step(Input::SocketClosed { code: Some(4000), online: true, random: 0.5 });
    assert!(register(&mut m, None));
    assert_eq!(m.notify_offer(), NotifyOffer::Hidden);
}

#[test]
fn the_page_a_notification_brings_the_visitor_back_to_keeps_no_query_or_fragment() {
    for (href, page) in [
        ("https://shop.example/help", "https://shop.example/help"),
        ("https://shop.example/help?reset=s3cret&x=1", "https://shop.example/help"),
        ("https://shop.example/help#token=abc", "https://shop.example/help"),
        ("https://shop.example/a/b?q#f?g", "https://shop.example/a/b"),
        ("https://shop.example/?", "https://shop.example/"),
        ("", ""),
    ] {
        assert_eq!(crate::visitor::return_page(href), page, "{href}");
    }
}
