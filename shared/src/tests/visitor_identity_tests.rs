//! The same chat on every device: a verified identity's chat taken up by a browser that
//! has none, a logout and a change of visitor, resume links.

use super::fixtures::tokens;
use crate::gms::{ChatEvent, ChatOperation, ChatResponse, EventType, Party};
use crate::relay_api::{ChatHandover, Identity, IdentityVerdict};
use crate::visitor::{
    ChatState, Effect, GmsResult, Handover, Input, Machine, Notice, Registration, Stored,
};

fn alice() -> Identity {
    Identity { user_id: "alice".into(), user_hash: "a1".into() }
}

fn identify(who: Option<Identity>) -> Input {
    Input::Identify { identity: who, device_id: "d-new".into() }
}

fn handover(chat_id: &str) -> Handover {
    Handover::Chat(Box::new(ChatHandover {
        service: "svc".into(),
        credentials: tokens(chat_id),
        token: "T".into(),
        position: 5,
    }))
}

fn event(index: u64, party_type: &str, text: &str) -> ChatEvent {
    let from = Party { nickname: "x".into(), participant_id: 1, party_type: party_type.into() };
    let mut event = ChatEvent::new(index, EventType::Message, from, 0);
    event.text = Some(text.into());
    event
}

fn find(effects: &[Effect], what: impl Fn(&Effect) -> Option<u64>) -> u64 {
    effects.iter().find_map(what).unwrap_or_else(|| panic!("not in {effects:?}"))
}

/// A browser with chat `C` linked to `alice`, notifications on.
fn linked() -> Machine {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.relay_token = Some("T".into());
    chat.identity = Some("alice".into());
    chat.set_notify(true);
    Machine::new(Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() }, "svc", "")
}

#[test]
fn a_verified_visitors_chat_is_taken_up_with_its_transcript_and_unread_lines() {
    let mut m = Machine::fresh("d-1", "svc", "");
    let out = m.step(identify(Some(alice())));
    let id = find(&out, |e| match e {
        Effect::FindChat { id, identity } if *identity == alice() => Some(*id),
        _ => None,
    });
    m.step(Input::Load);
    let out = m.step(Input::HandedOver(id, handover("C")));
    assert!(out.contains(&Effect::OpenSocket) && out.contains(&Effect::Save), "{out:?}");
    let chat = m.active_chat().expect("the chat is here");
    assert_eq!((chat.relay_token.as_deref(), chat.identity.as_deref()), (Some("T"), Some("alice")));
    let out = m.step(Input::SocketOpened);
    let register = find(&out, |e| match e {
        Effect::Register { id, body, .. } if body.identity == Some(alice()) => Some(*id),
        _ => None,
    });
    let verified = Registration::Registered {
        token: "T".into(),
        position: 5,
        push_key: None,
        identity: Some(IdentityVerdict::Verified),
    };
    let out = m.step(Input::Registered(register, verified));
    let refresh = find(&out, |e| match e {
        Effect::Gms { id, operation: ChatOperation::Refresh { position }, .. } => {
            assert_eq!(position.value(), 1, "the whole transcript");
            Some(*id)
        }
        _ => None,
    });
    let mut answer = ChatResponse::parse(br#"{"statusCode":0,"nextPosition":5}"#).expect("parses");
    answer.messages = vec![
        event(1, "Agent", "hello"),
        event(2, "Client", "my question"),
        event(3, "Agent", "answer"),
        event(4, "Agent", "more"),
    ];
    m.step(Input::Gms(refresh, GmsResult::Answer(Box::new(answer))));
    let chat = m.active_chat().expect("chat");
    assert_eq!(chat.events.len(), 4);
    assert_eq!(chat.unread(), 2, "the agent's lines after the visitor's own are unread");
}

#[test]
fn an_identity_without_a_chat_or_refused_changes_nothing_here() {
    let mut m = Machine::fresh("d-1", "svc", "");
    let id = find(&m.step(identify(Some(alice()))), |e| match e {
        Effect::FindChat { id, .. } => Some(*id),
        _ => None,
    });
    assert!(m.step(identify(Some(alice()))).is_empty(), "the same identity asks once");
    assert!(m.step(Input::HandedOver(id, Handover::Nothing)).is_empty());
    assert!(m.stored.chat.is_none());
    let mut m = Machine::fresh("d-1", "svc", "");
    let id = find(&m.step(identify(Some(alice()))), |e| match e {
        Effect::FindChat { id, .. } => Some(*id),
        _ => None,
    });
    let out = m.step(Input::HandedOver(id, Handover::Refused));
    assert!(
        matches!(out.as_slice(), [Effect::Log(message)] if message.contains("--identity-secret")),
        "the console says why: {out:?}"
    );
    assert!(m.stored.chat.is_none() && m.notice.is_none());
}

#[test]
fn a_logout_takes_the_chat_out_of_this_browser_without_ending_it() {
    let mut m = linked();
    let out = m.step(identify(None));
    assert!(out.contains(&Effect::Wipe), "{out:?}");
    assert!(out.contains(&Effect::UnsubscribePush { chat_id: "C".into(), token: "T".into() }));
    assert!(
        !out.iter().any(|e| matches!(
            e,
            Effect::Gms { operation: ChatOperation::Disconnect, .. } | Effect::Forget { .. }
        )),
        "the chat goes on on the visitor's other devices: {out:?}"
    );
    assert_eq!(m.stored, Stored { device_id: "d-new".into(), ..Stored::default() });
}

#[test]
fn another_visitor_logging_in_does_not_see_the_previous_ones_chat() {
    let mut m = linked();
    let bob = Identity { user_id: "bob".into(), user_hash: "b2".into() };
    let out = m.step(identify(Some(bob.clone())));
    assert!(out.contains(&Effect::Wipe), "{out:?}");
    assert!(out.iter().any(|e| matches!(e, Effect::FindChat { identity, .. } if *identity == bob)));
    assert!(m.stored.chat.is_none());
}

#[test]
fn an_anonymous_chat_is_kept_when_the_visitor_logs_in_or_out() {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.relay_token = Some("T".into());
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    let mut m = Machine::new(stored, "svc", "");
    m.step(Input::Load);
    let register = find(&m.step(Input::SocketOpened), |e| match e {
        Effect::Register { id, .. } => Some(*id),
        _ => None,
    });
    let anonymous =
        Registration::Registered { token: "T".into(), position: 1, push_key: None, identity: None };
    m.step(Input::Registered(register, anonymous));
    let out = m.step(identify(Some(alice())));
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::Register { body, .. } if body.identity == Some(alice()))),
        "registered again, now under the identity: {out:?}"
    );
    assert!(m.step(identify(None)).iter().all(|e| *e != Effect::Wipe), "not the identity's");
    assert!(m.active_chat().is_some());
}

#[test]
fn a_refused_identity_leaves_the_chat_anonymous_and_says_why_in_the_console() {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.relay_token = Some("T".into());
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    let mut m = Machine::new(stored, "svc", "");
    m.step(identify(Some(alice())));
    m.step(Input::Load);
    let register = find(&m.step(Input::SocketOpened), |e| match e {
        Effect::Register { id, .. } => Some(*id),
        _ => None,
    });
    let refused = Registration::Registered {
        token: "T".into(),
        position: 1,
        push_key: None,
        identity: Some(IdentityVerdict::Refused),
    };
    let out = m.step(Input::Registered(register, refused));
    assert!(out.iter().any(|e| matches!(e, Effect::Log(m) if m.contains("HMAC-SHA256"))));
    assert_eq!(m.active_chat().and_then(|c| c.identity.clone()), None);
}

#[test]
fn a_resume_link_brings_its_chat_back_or_says_it_leads_nowhere() {
    let mut m = Machine::fresh("d-1", "svc", "");
    let id = find(&m.step(Input::Resume("tok".into())), |e| match e {
        Effect::ClaimResume { id, token } if token == "tok" => Some(*id),
        _ => None,
    });
    m.step(Input::HandedOver(id, handover("C")));
    let chat = m.active_chat().expect("taken up");
    assert_eq!((chat.credentials.chat_id.as_str(), chat.identity.as_deref()), ("C", None));

    let mut m = Machine::fresh("d-1", "svc", "");
    let id = find(&m.step(Input::Resume("forged".into())), |e| match e {
        Effect::ClaimResume { id, .. } => Some(*id),
        _ => None,
    });
    m.step(Input::HandedOver(id, Handover::Refused));
    assert_eq!(m.notice, Some(Notice::ResumeFailed));
    assert!(m.stored.chat.is_none());
}

#[test]
fn a_handed_over_chat_never_replaces_another_running_here() {
    assert!(linked().step(Input::Resume("tok".into())).is_empty(), "no claim while one runs");
    // The visitor started a chat while the identity's lookup was on its way.
    let mut m = Machine::fresh("d-1", "svc", "");
    let find = find(&m.step(identify(Some(alice()))), |e| match e {
        Effect::FindChat { id, .. } => Some(*id),
        _ => None,
    });
    let create = find_create(&m.step(Input::Start(crate::gms::Visitor::default())));
    let created = r#"{"statusCode":0,"chatId":"MINE","userId":"U","secureKey":"K","alias":"1"}"#;
    let created = ChatResponse::parse(created.as_bytes()).expect("parses");
    m.step(Input::Gms(create, GmsResult::Answer(Box::new(created))));
    let out = m.step(Input::HandedOver(find, handover("OTHER")));
    assert!(matches!(out.as_slice(), [Effect::Log(_)]), "{out:?}");
    assert_eq!(m.active_chat().map(|c| c.credentials.chat_id.as_str()), Some("MINE"));
}

fn find_create(effects: &[Effect]) -> u64 {
    find(effects, |e| match e {
        Effect::Gms { id, operation: ChatOperation::Create { .. }, .. } => Some(*id),
        _ => None,
    })
}

#[test]
fn a_link_back_opens_this_page_without_its_query_and_carries_the_token() {
    let mut m = linked();
    let page = "https://shop.example/help?session=s3cr3t#top".to_owned();
    let out = m.step(Input::KeepLink { page: page.clone() });
    let id = find(&out, |e| match e {
        Effect::MakeResumeLink { id, chat_id, token } if chat_id == "C" && token == "T" => {
            Some(*id)
        }
        _ => None,
    });
    assert!(m.making_link());
    assert!(m.step(Input::KeepLink { page }).is_empty(), "one at a time");
    m.step(Input::LinkMade(id, Some("R.n.m".into())));
    assert_eq!(m.resume_link(), Some("https://shop.example/help#gms-chat-resume=R.n.m"));
    let id = find(&m.step(Input::KeepLink { page: "https://shop.example/".into() }), |e| match e {
        Effect::MakeResumeLink { id, .. } => Some(*id),
        _ => None,
    });
    m.step(Input::LinkMade(id, None));
    assert_eq!(m.notice, Some(Notice::LinkFailed));
}

#[test]
fn the_identity_link_is_stored_and_survives_every_tab() {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.identity = Some("alice".into());
    let stored = Stored { device_id: "d".into(), chat: Some(chat.clone()), ..Stored::default() };
    let json = crate::json::to_string(&stored);
    assert_eq!(crate::json::from_str::<Stored>(&json), Some(stored));
    let mut other = ChatState::new("svc", tokens("C"));
    other.next_position = 9;
    assert!(other.absorb(&chat), "a further copy takes the link in");
    assert_eq!(other.identity.as_deref(), Some("alice"));
}
