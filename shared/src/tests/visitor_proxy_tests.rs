//! The visitor's machine with a relay in proxy mode: the start goes through the relay and
//! answers the relay's token, nothing of GMS's tokens is stored, every request and
//! registration carries the relay's token, and the relay keeps the chat until it has ended
//! on its own ping.

use crate::gms::{ChatOperation, ChatResponse, Visitor};
use crate::relay_api::{Identity, IdentityVerdict, SessionRegistered};
use crate::visitor::{Conn, Effect, GmsResult, Input, Machine, Registration};

fn started_answer() -> (GmsResult, Option<Box<SessionRegistered>>) {
    let envelope = r#"{"statusCode":0,"chatId":"C9","chatEnded":false,"nextPosition":2,
        "messages":[]}"#;
    let response = ChatResponse::parse(envelope.as_bytes()).expect("parses");
    let session = SessionRegistered {
        token: "RT".into(),
        position: 2,
        vapid_public_key: Some("key".into()),
        identity: None,
    };
    (GmsResult::Answer(Box::new(response)), Some(Box::new(session)))
}

/// A machine in proxy mode whose visitor started chat `C9` through the relay.
fn started() -> (Machine, Vec<Effect>) {
    let mut m = Machine::fresh("dev", "svc", "").with_proxy(true);
    m.step(Input::UserData(vec![
        ("orderId".into(), "A-17".into()),
        ("GCTI_GMS_PushProvider".into(), "elsewhere".into()),
    ]));
    let out = m.step(Input::Start(Visitor { nickname: Some("Ann".into()), ..Visitor::default() }));
    let (id, user_data) = out
        .iter()
        .find_map(|e| match e {
            Effect::Gms {
                id, operation: ChatOperation::Create { user_data, .. }, token, ..
            } => {
                assert_eq!(token, &None);
                Some((*id, user_data.clone()))
            }
            _ => None,
        })
        .expect("a start");
    // Only the site's data: the relay subscribes the chat, and no GCTI_ key is sent.
    assert_eq!(user_data, vec![("orderId".to_owned(), "A-17".to_owned())]);
    let (result, session) = started_answer();
    let out = m.step(Input::Started(id, result, session));
    (m, out)
}

#[test]
fn a_start_through_the_relay_keeps_no_gms_token_and_registers_with_the_relays() {
    let (mut m, out) = started();
    let chat = m.active_chat().expect("a chat");
    assert_eq!(chat.credentials.chat_id, "C9");
    assert!(chat.credentials.secure_key.is_empty() && chat.credentials.user_id.is_empty());
    assert_eq!((chat.relay_token.as_deref(), chat.push_key.as_deref()), (Some("RT"), Some("key")));
    let saved = crate::json::to_string(&m.stored);
    for token in ["secureKey", "userId", "alias"] {
        assert!(!saved.contains(token), "{token} stored: {saved}");
    }
    assert!(out.contains(&Effect::OpenSocket));
    // Each connection registers as in direct mode, with the relay's token instead of GMS's.
    m.step(Input::Identify {
        identity: Some(Identity { user_id: "ann".into(), user_hash: "h".into() }),
        device_id: "dev".into(),
    });
    let out = m.step(Input::SocketOpened);
    let (id, body) = out
        .iter()
        .find_map(|e| match e {
            Effect::Register { id, body, token } => {
                assert_eq!(token.as_deref(), Some("RT"));
                Some((*id, body.clone()))
            }
            _ => None,
        })
        .expect("a registration");
    assert!(body.secure_key.is_empty() && body.identity.is_some(), "{body:?}");
    let registered = Registration::Registered {
        token: "RT".into(),
        position: 2,
        push_key: Some("key".into()),
        identity: Some(IdentityVerdict::Verified),
    };
    let out = m.step(Input::Registered(id, registered));
    assert!(out.contains(&Effect::Subscribe { chat_id: "C9".into(), token: "RT".into() }));
    assert_eq!(m.conn, Conn::Connected);
    assert_eq!(m.active_chat().and_then(|c| c.identity.as_deref()), Some("ann"));
}

#[test]
fn every_request_carries_the_relays_token() {
    let (mut m, _) = started();
    m.step(Input::SocketOpened);
    let out = m.step(Input::Send("hello".into()));
    let token = out.iter().find_map(|e| match e {
        Effect::Gms { operation: ChatOperation::Send { .. }, token, credentials, .. } => {
            assert!(credentials.as_ref().is_some_and(|c| c.secure_key.is_empty()));
            token.clone()
        }
        _ => None,
    });
    assert_eq!(token.as_deref(), Some("RT"));
}

#[test]
fn an_ended_chat_is_left_for_the_relay_to_forget() {
    let (mut m, _) = started();
    m.step(Input::SocketOpened);
    let out = m.step(Input::End);
    let id = out
        .iter()
        .find_map(|e| match e {
            Effect::Gms { id, operation: ChatOperation::Disconnect, .. } => Some(*id),
            _ => None,
        })
        .expect("a disconnect");
    let ended = ChatResponse::parse(br#"{"statusCode":0,"chatEnded":true}"#).expect("parses");
    let out = m.step(Input::Gms(id, GmsResult::Answer(Box::new(ended))));
    // The last read goes through the relay, which must still hold the chat for it.
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::Gms { operation: ChatOperation::Refresh { .. }, .. }))
    );
    assert!(!out.iter().any(|e| matches!(e, Effect::Forget { .. })), "{out:?}");
}

#[test]
fn a_start_the_relay_answered_without_its_session_is_no_chat() {
    let mut m = Machine::fresh("dev", "svc", "").with_proxy(true);
    let out = m.step(Input::Start(Visitor { nickname: Some("Ann".into()), ..Visitor::default() }));
    let id = out
        .iter()
        .find_map(|e| match e {
            Effect::Gms { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a start");
    let (result, _) = started_answer();
    m.step(Input::Started(id, result, None));
    assert!(m.active_chat().is_none());
    assert!(m.notice.is_some());
}
