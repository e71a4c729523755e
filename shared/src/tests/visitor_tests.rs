//! The visitor's state machine: every input in the states that matter, the refresh policy
//! (what refreshes and that nothing else does), and the defects it was built to remove.

use std::time::Duration;

use super::fixtures::tokens;
use crate::gms::{ChatEvent, ChatOperation, ChatResponse, EventType, FileLimits, Party, Visitor};
use crate::relay_api::{ServerFrame, close_code};
use crate::visitor::{
    ChatState, Conn, Effect, Failure, FileRefusal, GmsResult, Input, Machine, NetFailure, Notice,
    PickedFile, Registration, Stored,
};

fn agent(index: u64, text: &str) -> ChatEvent {
    let from = Party { nickname: "Ann".into(), participant_id: 2, party_type: "Agent".into() };
    let mut event = ChatEvent::new(index, EventType::Message, from, 0);
    event.text = Some(text.into());
    event
}

fn response(json: &str) -> GmsResult {
    GmsResult::Answer(Box::new(ChatResponse::parse(json.as_bytes()).expect("parses")))
}

fn ok_at(next_position: u64) -> GmsResult {
    response(&format!(r#"{{"statusCode":0,"chatEnded":false,"nextPosition":{next_position}}}"#))
}

/// A machine with chat `C` stored at position 3, nothing run yet.
fn stored_chat() -> Machine {
    let mut chat = ChatState::new("svc", tokens("C"));
    chat.apply_events([agent(1, "a"), agent(2, "b")]);
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    Machine::new(stored, "svc", "")
}

/// The machine after a page load with the relay up: connected, caught up, idle.
fn connected() -> Machine {
    let mut m = stored_chat();
    m.step(Input::Load);
    let register = last_register(&m.step(Input::SocketOpened)).expect("registers");
    let out = m.step(Input::Registered(register, registered(3)));
    let id = refresh_id(&out).expect("the catch-up refresh");
    m.step(Input::Gms(id, ok_at(3)));
    assert_eq!(m.conn, Conn::Connected);
    assert!(!m.refreshing());
    m
}

fn registered(position: u64) -> Registration {
    Registration::Registered { token: "T".into(), position, push_key: None, identity: None }
}

fn refresh_id(effects: &[Effect]) -> Option<u64> {
    effects.iter().find_map(|e| match e {
        Effect::Gms { id, operation: ChatOperation::Refresh { .. }, .. } => Some(*id),
        _ => None,
    })
}

fn refreshes(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Gms { operation: ChatOperation::Refresh { .. }, .. }))
        .count()
}

fn registers(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| matches!(e, Effect::Register { .. })).count()
}

fn last_register(effects: &[Effect]) -> Option<u64> {
    effects.iter().rev().find_map(|e| match e {
        Effect::Register { id, .. } => Some(*id),
        _ => None,
    })
}

fn gms_id(effects: &[Effect], what: fn(&ChatOperation) -> bool) -> u64 {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Gms { id, operation, .. } if what(operation) => Some(*id),
            _ => None,
        })
        .expect("the request")
}

fn saves(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| **e == Effect::Save).count()
}

#[test]
fn a_reload_registers_once_and_refreshes_once() {
    let mut m = stored_chat();
    let mut all = m.step(Input::Load);
    assert_eq!(all, [Effect::OpenSocket], "the cached transcript shows; nothing is asked yet");
    assert_eq!(m.conn, Conn::Connecting);
    all.extend(m.step(Input::SocketOpened));
    let register = last_register(&all).expect("registers on open");
    let out = m.step(Input::Registered(register, registered(3)));
    assert!(out.contains(&Effect::Subscribe { chat_id: "C".into(), token: "T".into() }));
    all.extend(out);
    // The relay's `subscribed` answer and a repeated open change nothing more.
    all.extend(m.step(Input::Frame(ServerFrame::Subscribed { chat_id: "C".into(), position: 3 })));
    all.extend(m.step(Input::Load));
    assert_eq!((registers(&all), refreshes(&all)), (1, 1), "{all:?}");
    assert_eq!(m.conn, Conn::Connected);
}

#[test]
fn without_the_relay_the_page_still_catches_up_once_from_gms() {
    let mut m = stored_chat();
    m.step(Input::Load);
    let out = m.step(Input::SocketClosed { code: None, online: true, random: 0.5 });
    assert_eq!(refreshes(&out), 1);
    assert!(out.iter().any(|e| matches!(e, Effect::ReconnectAfter { .. })));
    assert_eq!(m.conn, Conn::Reconnecting);
    let id = refresh_id(&out).expect("refresh");
    m.step(Input::Gms(id, ok_at(3)));
    // The reconnect registers and catches up once more: whatever happened meanwhile.
    let generation = match out.iter().find(|e| matches!(e, Effect::ReconnectAfter { .. })) {
        Some(Effect::ReconnectAfter { generation, .. }) => *generation,
        _ => unreachable!(),
    };
    assert_eq!(m.step(Input::ReconnectDue(generation)), [Effect::OpenSocket]);
    let register = last_register(&m.step(Input::SocketOpened)).expect("register");
    assert_eq!(refreshes(&m.step(Input::Registered(register, registered(3)))), 1);
}

#[test]
fn the_refresh_policy_names_every_input_that_refreshes() {
    let chat = "C".to_owned();
    let asks: Vec<(&str, Input, usize)> = vec![
        ("changed", Input::Frame(ServerFrame::Changed { chat_id: chat.clone() }), 1),
        ("ended frame", Input::Frame(ServerFrame::Ended { chat_id: chat.clone() }), 1),
        (
            "events with a gap",
            Input::Frame(ServerFrame::Events {
                chat_id: chat.clone(),
                messages: vec![agent(5, "e")],
                next_position: Some(6),
            }),
            1,
        ),
        (
            "events that continue",
            Input::Frame(ServerFrame::Events {
                chat_id: chat.clone(),
                messages: vec![agent(3, "c")],
                next_position: Some(4),
            }),
            0,
        ),
        (
            "subscribed ahead",
            Input::Frame(ServerFrame::Subscribed { chat_id: chat.clone(), position: 9 }),
            1,
        ),
        (
            "subscribed level",
            Input::Frame(ServerFrame::Subscribed { chat_id: chat, position: 3 }),
            0,
        ),
        (
            "tokens",
            Input::Frame(ServerFrame::Tokens { chat_id: "C".into(), alias: "118".into() }),
            0,
        ),
        ("another chat's frame", Input::Frame(ServerFrame::Changed { chat_id: "X".into() }), 0),
        ("unknown frame", Input::Frame(ServerFrame::Unknown), 0),
        (
            "expected wait",
            Input::Frame(ServerFrame::Wait { chat_id: "C".into(), seconds: Some(60) }),
            0,
        ),
        ("visible after a long hide", Input::Visible(Duration::from_secs(61)), 1),
        ("visible after a short hide", Input::Visible(Duration::from_secs(5)), 0),
        ("online", Input::Online, 1),
        ("idle timer", Input::IdleTimer, 1),
        ("typing", Input::Typed("hel".into()), 0),
        ("typing paused", Input::TypingPaused(1), 0),
        ("panel opened", Input::SetOpen(true), 0),
        ("alerts turned on", Input::SetAlerts(true), 0),
        ("send", Input::Send("hi".into()), 0),
        ("load again", Input::Load, 0),
        ("a problem", Input::Problem(Notice::Text("x".into())), 0),
        ("a file picked", Input::FilePicked(picked("a.txt", 1)), 0),
    ];
    for (what, input, expected) in asks {
        let mut m = connected();
        assert_eq!(refreshes(&m.step(input)), expected, "{what}");
    }
}

#[test]
fn refreshes_coalesce_one_at_a_time_with_one_more_after() {
    let mut m = connected();
    let first = m.step(Input::Frame(ServerFrame::Changed { chat_id: "C".into() }));
    let id = refresh_id(&first).expect("refresh");
    for _ in 0..5 {
        assert_eq!(refreshes(&m.step(Input::Online)), 0, "one runs at a time");
    }
    let after = m.step(Input::Gms(id, ok_at(3)));
    assert_eq!(refreshes(&after), 1, "one more for everything asked meanwhile");
    let id = refresh_id(&after).expect("refresh");
    assert_eq!(refreshes(&m.step(Input::Gms(id, ok_at(3)))), 0);
}

#[test]
fn a_position_the_running_refresh_already_covers_asks_for_no_other() {
    let mut m = stored_chat();
    m.step(Input::Load);
    let register = last_register(&m.step(Input::SocketOpened)).expect("register");
    // The relay knows of events up to 6: the catch-up refresh fetches them.
    let id = refresh_id(&m.step(Input::Registered(register, registered(6)))).expect("refresh");
    let subscribed = ServerFrame::Subscribed { chat_id: "C".into(), position: 6 };
    assert_eq!(refreshes(&m.step(Input::Frame(subscribed))), 0, "covered by the running one");
    let later = ServerFrame::Subscribed { chat_id: "C".into(), position: 7 };
    m.step(Input::Frame(later));
    assert_eq!(refreshes(&m.step(Input::Gms(id, ok_at(6)))), 1, "7 was not known when it ran");
}

#[test]
fn a_refresh_refused_because_the_chat_ended_ends_it() {
    let mut m = connected();
    let out = m.step(Input::IdleTimer);
    let id = refresh_id(&out).expect("refresh");
    let ended = response(
        r#"{"statusCode":2,"chatEnded":true,"errors":[{"code":249,"advice":"Media server was not able to execute request"}]}"#,
    );
    let out = m.step(Input::Gms(id, ended));
    assert!(m.stored.chat.as_ref().is_some_and(|c| c.ended), "the chat is over");
    assert!(out.contains(&Effect::Forget { chat_id: "C".into(), token: "T".into() }));
    assert!(out.contains(&Effect::CloseSocket));
    assert!(out.contains(&Effect::Save));
    assert_eq!(m.conn, Conn::Idle);
}

#[test]
fn a_refresh_refused_on_a_live_chat_is_shown_and_ends_nothing() {
    let mut m = connected();
    let id = refresh_id(&m.step(Input::IdleTimer)).expect("refresh");
    let refused = response(r#"{"statusCode":2,"chatEnded":false,"errors":[{"code":8210}]}"#);
    m.step(Input::Gms(id, refused));
    assert!(m.active_chat().is_some());
    assert!(matches!(m.notice, Some(Notice::Refused(_))));
}

#[test]
fn an_answer_for_an_old_chat_never_touches_the_new_one() {
    let mut m = connected();
    let old_send = gms_id(&m.step(Input::Send("to the old chat".into())), |op| {
        matches!(op, ChatOperation::Send { .. })
    });
    let old_refresh = refresh_id(&m.step(Input::IdleTimer)).expect("refresh");
    // The chat ends elsewhere, the visitor starts a new one.
    m.stored.chat.as_mut().expect("chat").ended = true;
    m.step(Input::NewChat);
    let create = gms_id(&m.step(Input::Start(Visitor::default())), |op| {
        matches!(op, ChatOperation::Create { .. })
    });
    let created = response(
        r#"{"statusCode":0,"chatId":"N","userId":"U2","secureKey":"K2","alias":"118","nextPosition":2,
            "messages":[{"from":{"nickname":"J","participantId":1,"type":"Client"},"index":1,"type":"ParticipantJoined"}]}"#,
    );
    m.step(Input::Gms(create, created));
    // Now the old chat's answers arrive, late.
    let old = response(
        r#"{"statusCode":0,"chatEnded":true,"alias":"999","secureKey":"OLD","nextPosition":9,
            "messages":[{"from":{"nickname":"Ann","participantId":2,"type":"Agent"},"index":8,"type":"Message","text":"old"}]}"#,
    );
    m.step(Input::Gms(old_send, old.clone()));
    m.step(Input::Gms(old_refresh, old));
    let chat = m.active_chat().expect("the new chat is live");
    assert_eq!(
        (chat.credentials.chat_id.as_str(), chat.credentials.secure_key.as_str()),
        ("N", "K2")
    );
    assert_eq!((chat.credentials.alias.as_str(), chat.next_position), ("118", 2));
    assert!(chat.events.iter().all(|e| e.text.as_deref() != Some("old")));
    assert!(!m.refreshing(), "the old refresh's end still frees the refresh slot");
}

#[test]
fn events_without_an_index_are_not_appended_again_on_every_resend() {
    let mut m = connected();
    let mut unplaced = agent(0, "no index");
    unplaced.index = None;
    for _ in 0..3 {
        m.step(Input::Frame(ServerFrame::Events {
            chat_id: "C".into(),
            messages: vec![unplaced.clone()],
            next_position: None,
        }));
    }
    let chat = m.active_chat().expect("chat");
    assert!(chat.events.iter().all(|e| e.index.is_some()), "{:?}", chat.events);
    assert_eq!(chat.events.len(), 2);
}

#[test]
fn a_frame_saves_once_and_typing_saves_nothing() {
    let mut m = connected();
    let out = m.step(Input::Frame(ServerFrame::Events {
        chat_id: "C".into(),
        messages: vec![agent(3, "c")],
        next_position: Some(4),
    }));
    assert_eq!(saves(&out), 1);
    m.step(Input::SetOpen(true));
    let open = m.step(Input::Frame(ServerFrame::Events {
        chat_id: "C".into(),
        messages: vec![agent(4, "d")],
        next_position: Some(5),
    }));
    assert_eq!(saves(&open), 1, "seen moves with the line: still one save");
    assert_eq!(m.active_chat().and_then(|c| c.seen), Some(5));
    for key in ["h", "he", "hel"] {
        assert_eq!(saves(&m.step(Input::Typed(key.into()))), 0);
    }
    assert_eq!(saves(&m.step(Input::SetAlerts(true))), 1, "the alerts choice is kept");
    assert_eq!(saves(&m.step(Input::SetAlerts(true))), 0);
    assert!(m.stored.alerts);
    assert_eq!(saves(&m.step(Input::Frame(ServerFrame::Changed { chat_id: "C".into() }))), 0);
}

#[test]
fn typing_starts_once_per_burst_and_stops_after_the_pause() {
    let mut m = connected();
    let is_start =
        |e: &Effect| matches!(e, Effect::Gms { operation: ChatOperation::StartTyping { .. }, .. });
    let is_stop =
        |e: &Effect| matches!(e, Effect::Gms { operation: ChatOperation::StopTyping { .. }, .. });
    let mut starts = 0;
    let mut timers = Vec::new();
    for key in ["h", "he", "hel"] {
        let out = m.step(Input::Typed(key.into()));
        starts += out.iter().filter(|e| is_start(e)).count();
        timers.extend(out.iter().filter_map(|e| match e {
            Effect::TypingTimer(g) => Some(*g),
            _ => None,
        }));
    }
    assert_eq!(starts, 1);
    let (last, earlier) = timers.split_last().expect("timers");
    for generation in earlier {
        assert!(m.step(Input::TypingPaused(*generation)).iter().all(|e| !is_stop(e)), "stale");
    }
    assert_eq!(m.step(Input::TypingPaused(*last)).iter().filter(|e| is_stop(e)).count(), 1);
    assert_eq!(m.step(Input::Typed(String::new())).iter().filter(|e| is_start(e)).count(), 0);
}

#[test]
fn a_sent_message_leaves_the_outbox_and_a_failed_one_waits_for_a_retry() {
    let mut m = connected();
    let is_send = |op: &ChatOperation| matches!(op, ChatOperation::Send { .. });
    let id = gms_id(&m.step(Input::Send("  hi  ".into())), is_send);
    assert_eq!(m.outbox[0].text, "hi");
    m.step(Input::Gms(id, GmsResult::Failed(NetFailure::Network)));
    assert_eq!(m.outbox[0].failed, Some(Failure::Offline));
    let message = m.outbox[0].id;
    let id = gms_id(&m.step(Input::Retry(message)), is_send);
    assert_eq!(m.outbox[0].failed, None);
    m.step(Input::Gms(id, ok_at(4)));
    assert!(m.outbox.is_empty());
    assert!(m.step(Input::Send("   ".into())).is_empty(), "blank messages are not sent");
    let id = gms_id(&m.step(Input::Send("late".into())), is_send);
    let ended = response(r#"{"statusCode":2,"chatEnded":true,"errors":[{"code":249}]}"#);
    m.step(Input::Gms(id, ended));
    assert_eq!(m.outbox[0].failed, Some(Failure::ChatEnded));
    assert!(m.active_chat().is_none());
}

#[test]
fn the_visitor_ends_the_chat_and_the_relay_forgets_it() {
    let mut m = connected();
    let id = gms_id(&m.step(Input::End), |op| matches!(op, ChatOperation::Disconnect));
    let out = m.step(Input::Gms(id, ok_at(4)));
    assert!(m.stored.chat.as_ref().is_some_and(|c| c.ended));
    assert!(out.contains(&Effect::Forget { chat_id: "C".into(), token: "T".into() }));
    assert!(out.contains(&Effect::CloseSocket));
    // One last read shows the visitor's own leaving as a line.
    let last = refresh_id(&out).expect("a final refresh");
    let left = response(
        r#"{"statusCode":0,"chatEnded":true,"nextPosition":4,
            "messages":[{"from":{"nickname":"J","participantId":1,"type":"Client"},"index":3,"type":"ParticipantLeft"}]}"#,
    );
    m.step(Input::Gms(last, left));
    let chat = m.stored.chat.as_ref().expect("chat");
    assert_eq!(chat.events.last().map(|e| e.event_type.clone()), Some(EventType::ParticipantLeft));
    assert_eq!(m.step(Input::IdleTimer), [], "an ended chat asks for nothing");
    let out = m.step(Input::NewChat);
    assert!(m.stored.chat.is_none());
    assert_eq!(saves(&out), 1);
}

#[test]
fn a_refused_origin_stops_reconnecting_and_a_lost_socket_backs_off() {
    let mut m = connected();
    let lost = m.step(Input::SocketClosed {
        code: Some(close_code::GOING_AWAY),
        online: true,
        random: 1.0,
    });
    let waits: Vec<_> = lost
        .iter()
        .filter_map(|e| match e {
            Effect::ReconnectAfter { wait, .. } => Some(*wait),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [Duration::from_secs(1)]);
    assert_eq!(m.conn, Conn::Reconnecting);
    let offline = m.step(Input::SocketClosed { code: None, online: false, random: 1.0 });
    assert!(
        offline.contains(&Effect::ReconnectAfter { wait: Duration::from_secs(2), generation: 2 })
    );
    assert_eq!(m.conn, Conn::Offline);
    // Back online: reconnect at once, a stale wait is ignored.
    let online = m.step(Input::Online);
    assert!(online.contains(&Effect::OpenSocket));
    assert_eq!(m.step(Input::ReconnectDue(2)), []);
    let refused = m.step(Input::SocketClosed {
        code: Some(close_code::ORIGIN_REJECTED),
        online: true,
        random: 0.5,
    });
    assert!(
        refused.iter().all(|e| !matches!(e, Effect::ReconnectAfter { .. } | Effect::OpenSocket))
    );
    assert_eq!(m.conn, Conn::Refused);
    assert!(m.step(Input::Online).iter().all(|e| *e != Effect::OpenSocket));
}

#[test]
fn a_registration_answered_after_its_socket_closed_claims_nothing() {
    let mut m = stored_chat();
    m.step(Input::Load);
    let id = last_register(&m.step(Input::SocketOpened)).expect("register");
    let refused =
        Input::SocketClosed { code: Some(close_code::ORIGIN_REJECTED), online: true, random: 0.5 };
    m.step(refused);
    let out = m.step(Input::Registered(id, registered(3)));
    assert_eq!(m.conn, Conn::Refused, "still refused");
    assert!(out.iter().all(|e| !matches!(e, Effect::Subscribe { .. })));
    assert_eq!(m.active_chat().and_then(|c| c.relay_token.as_deref()), Some("T"), "token kept");
}

#[test]
fn a_failed_registration_reconnects_and_a_refused_one_refreshes() {
    let mut m = stored_chat();
    m.step(Input::Load);
    let id = last_register(&m.step(Input::SocketOpened)).expect("register");
    let out = m.step(Input::Registered(id, Registration::Failed));
    assert!(out.contains(&Effect::CloseSocket));
    assert!(out.iter().any(|e| matches!(e, Effect::ReconnectAfter { .. })));
    let mut m = stored_chat();
    m.step(Input::Load);
    let id = last_register(&m.step(Input::SocketOpened)).expect("register");
    assert_eq!(refreshes(&m.step(Input::Registered(id, Registration::Refused))), 1);
}

#[test]
fn starting_a_chat_creates_it_once_and_connects_it() {
    let mut m = Machine::new(Stored { device_id: "d".into(), ..Stored::default() }, "svc", "grp");
    assert!(m.step(Input::Load).is_empty(), "no chat, no socket");
    let out = m.step(Input::Start(Visitor::default()));
    let Some(Effect::Gms {
        id, service, operation: ChatOperation::Create { user_data, .. }, ..
    }) = out.first().cloned()
    else {
        panic!("{out:?}")
    };
    assert_eq!(service, "svc");
    assert!(user_data.contains(&("GCTI_GMS_PushDeviceId".into(), "d".into())));
    assert!(m.step(Input::Start(Visitor::default())).is_empty(), "one create at a time");
    let refused = response(r#"{"statusCode":2,"errors":[{"code":161,"advice":"nickname"}]}"#);
    m.step(Input::Gms(id, refused));
    assert!(matches!(m.notice, Some(Notice::CouldNotStart(_))));
    assert!(!m.starting);
    let out = m.step(Input::Start(Visitor::default()));
    let id = gms_id(&out, |op| matches!(op, ChatOperation::Create { .. }));
    let created = response(
        r#"{"statusCode":0,"chatId":"N","userId":"U","secureKey":"K","alias":"117","nextPosition":2}"#,
    );
    let out = m.step(Input::Gms(id, created));
    assert!(out.contains(&Effect::OpenSocket) && out.contains(&Effect::Save));
    assert_eq!(m.active_chat().map(|c| c.service.as_str()), Some("svc"));
}

#[test]
fn a_follower_tab_neither_connects_nor_refreshes_on_triggers_but_follows_the_storage() {
    let mut m = stored_chat();
    m.step(Input::Leader(false));
    assert_eq!(m.conn, Conn::Shared);
    assert!(m.step(Input::Load).is_empty());
    assert_eq!(refreshes(&m.step(Input::Online)), 0);
    assert_eq!(refreshes(&m.step(Input::Frame(ServerFrame::Changed { chat_id: "C".into() }))), 0);
    // The leader stored more of the transcript and the end: this tab follows.
    let mut theirs = m.stored.clone();
    let chat = theirs.chat.as_mut().expect("chat");
    chat.apply_events([agent(3, "c")]);
    chat.ended = true;
    m.step(Input::StorageChanged(theirs));
    let chat = m.stored.chat.as_ref().expect("chat");
    assert_eq!((chat.next_position, chat.ended), (4, true));
    // Taking over: connect and catch up what the old leader may have missed.
    let mut m = stored_chat();
    m.step(Input::Leader(false));
    let out = m.step(Input::Leader(true));
    assert_eq!(out, [Effect::OpenSocket]);
    let id = last_register(&m.step(Input::SocketOpened)).expect("register");
    assert_eq!(refreshes(&m.step(Input::Registered(id, registered(3)))), 1);
}

#[test]
fn stored_copies_of_two_tabs_converge() {
    let mut a = stored_chat().stored;
    let mut b = a.clone();
    b.chat.as_mut().expect("chat").apply_events([agent(3, "c")]);
    b.open = true;
    b.alerts = true;
    assert!(a.absorb(&b));
    assert_eq!(a.chat.as_ref().map(|c| c.next_position), Some(4));
    assert!(a.open && a.alerts, "the panel state and the alerts choice follow the latest write");
    assert!(!b.absorb(&a), "nothing new the other way");
    // A new chat started in one tab replaces the ended one in the other.
    a.chat.as_mut().expect("chat").ended = true;
    let fresh = Stored { chat: Some(ChatState::new("svc", tokens("N"))), ..a.clone() };
    assert!(a.absorb(&fresh));
    assert_eq!(a.chat.as_ref().map(|c| c.credentials.chat_id.as_str()), Some("N"));
}

#[test]
fn without_an_active_chat_or_as_a_follower_no_trigger_asks_for_anything() {
    let no_chat = Machine::new(Stored { device_id: "d".into(), ..Stored::default() }, "svc", "");
    let mut ended = connected();
    let id = gms_id(&ended.step(Input::End), |op| matches!(op, ChatOperation::Disconnect));
    ended.step(Input::Gms(id, ok_at(4)));
    let mut follower = stored_chat();
    follower.step(Input::Leader(false));
    let triggers = || {
        vec![
            Input::Load,
            Input::Online,
            Input::IdleTimer,
            Input::Visible(Duration::from_secs(3600)),
            Input::Frame(ServerFrame::Changed { chat_id: "C".into() }),
            Input::Frame(ServerFrame::Ended { chat_id: "C".into() }),
            Input::Frame(ServerFrame::Subscribed { chat_id: "C".into(), position: 99 }),
            Input::ReconnectDue(0),
            Input::TypingPaused(0),
        ]
    };
    for (state, machine) in [("no chat", no_chat), ("ended", ended), ("follower", follower)] {
        for input in triggers() {
            let mut m = machine.clone();
            let what = format!("{state}: {input:?}");
            let out = m.step(input);
            let asks = out.iter().any(|e| {
                matches!(e, Effect::Gms { .. } | Effect::Register { .. } | Effect::OpenSocket)
            });
            assert!(!asks, "{what} asked for {out:?}");
        }
    }
}

/// The tokens of the stored chat, as they would be written to the browser.
fn stored_tokens(m: &Machine) -> (String, String) {
    let chat = m.stored.chat.as_ref().expect("chat");
    (chat.credentials.user_id.clone(), chat.credentials.secure_key.clone())
}

#[test]
fn an_ended_chat_keeps_no_tokens_in_the_browser() {
    let none = (String::new(), String::new());
    // The visitor ends it: the tokens go with that answer, yet the final refresh, already
    // asked for, still carries them, and its answer (which repeats them) does not bring
    // them back.
    let mut m = connected();
    let id = gms_id(&m.step(Input::End), |op| matches!(op, ChatOperation::Disconnect));
    let out = m.step(Input::Gms(id, ok_at(4)));
    assert_eq!(stored_tokens(&m), none);
    assert_eq!(m.stored.chat.as_ref().map(|c| c.credentials.chat_id.as_str()), Some("C"));
    assert!(out.contains(&Effect::Save));
    let last = out
        .iter()
        .find_map(|e| match e {
            Effect::Gms { id, operation: ChatOperation::Refresh { .. }, credentials, .. } => {
                Some((*id, credentials.clone()))
            }
            _ => None,
        })
        .expect("a final refresh");
    assert_eq!(last.1.map(|c| c.secure_key), Some("K".to_owned()));
    let answer = r#"{"statusCode":0,"chatEnded":true,"nextPosition":4,"userId":"U","secureKey":"K",
        "messages":[{"from":{"nickname":"J","participantId":1,"type":"Client"},"index":3,"type":"ParticipantLeft","utcTime":1700000000000}]}"#;
    m.step(Input::Gms(last.0, response(answer)));
    assert_eq!(stored_tokens(&m), none);
    assert_eq!(m.stored.chat.as_ref().and_then(|c| c.ended_at), Some(1_700_000_000_000));

    // GMS refuses a refresh because the chat ended.
    let mut m = connected();
    let id = refresh_id(&m.step(Input::IdleTimer)).expect("refresh");
    m.step(Input::Gms(id, response(r#"{"statusCode":2,"chatEnded":true}"#)));
    assert_eq!(stored_tokens(&m), none);

    // Another tab ended it: what it stored carries none, and this tab's older copy does
    // not bring them back into the merge.
    let mut m = connected();
    let mut theirs = m.stored.clone();
    theirs.chat.as_mut().expect("chat").ended = true;
    m.step(Input::StorageChanged(theirs));
    assert_eq!(stored_tokens(&m), none);
}

#[test]
fn a_copy_written_before_the_end_does_not_bring_the_tokens_back() {
    let running = stored_chat().stored;
    let mut ahead = running.clone();
    ahead.chat.as_mut().expect("chat").apply_events([agent(3, "c")]);
    let mut ended = running;
    let chat = ended.chat.as_mut().expect("chat");
    chat.ended = true;
    assert!(chat.settle());
    for (mut mine, theirs) in [(ended.clone(), ahead.clone()), (ahead, ended)] {
        mine.absorb(&theirs);
        let chat = mine.chat.expect("chat");
        assert!(chat.ended);
        assert_eq!((chat.credentials.user_id, chat.credentials.secure_key), Default::default());
    }
}

#[test]
fn an_ended_chat_goes_from_the_browser_after_the_days_the_site_keeps_it() {
    const DAY: u64 = 86_400_000;
    let keep = Duration::from_secs(7 * 86_400);
    let at = |now_ms: u64| Input::Expire { now_ms, keep };
    let ended_at = 1_700_000_000_000;
    let mut chat = ChatState::new("svc", tokens("C"));
    let mut last = agent(1, "bye");
    last.utc_time = Some(i64::try_from(ended_at).expect("fits"));
    chat.apply_events([last]);
    chat.ended = true;
    let stored =
        Stored { device_id: "d".into(), chat: Some(chat), alerts: true, ..Stored::default() };

    // Written before ended chats lost their tokens: they go at the first load.
    let mut m = Machine::new(stored.clone(), "svc", "");
    assert_eq!(m.step(at(ended_at + DAY)), [Effect::Save]);
    assert_eq!(stored_tokens(&m), (String::new(), String::new()));
    assert_eq!(m.stored.chat.as_ref().and_then(|c| c.ended_at), Some(ended_at), "its last event");
    assert_eq!(m.step(at(ended_at + 7 * DAY - 1)), [], "kept for seven days");
    assert_eq!(m.step(at(ended_at + 7 * DAY)), [Effect::Save]);
    assert_eq!(m.stored.chat, None, "then gone");
    assert!(m.stored.alerts && m.stored.device_id == "d", "the visitor's choices stay");

    // No event told when it ended: counted from the first load that finds it ended.
    let mut untimed = stored.clone();
    untimed.chat.as_mut().expect("chat").events.clear();
    let mut m = Machine::new(untimed, "svc", "");
    m.step(at(ended_at));
    assert_eq!(m.stored.chat.as_ref().and_then(|c| c.ended_at), Some(ended_at));
    assert_eq!(m.step(at(ended_at + 7 * DAY)), [Effect::Save]);
    assert_eq!(m.stored.chat, None);

    // A GMS clock ahead of the browser's does not keep it longer; 0 days keeps nothing.
    let mut m = Machine::new(stored.clone(), "svc", "");
    m.step(at(ended_at - 30 * DAY));
    assert_eq!(m.stored.chat.as_ref().and_then(|c| c.ended_at), Some(ended_at - 30 * DAY));
    let mut m = Machine::new(stored, "svc", "");
    m.step(Input::Expire { now_ms: ended_at, keep: Duration::ZERO });
    assert_eq!(m.stored.chat, None);

    // A running chat stays however old, and a visitor who never chatted gets nothing
    // written.
    let mut m = stored_chat();
    assert_eq!(m.step(at(u64::MAX)), []);
    assert!(m.active_chat().is_some());
    let mut m = Machine::fresh("d", "svc", "");
    assert_eq!(m.step(at(ended_at)), []);
}

fn picked(name: &str, size: u64) -> PickedFile {
    PickedFile { name: name.into(), size, content_type: "text/plain".into() }
}

/// GMS's answer to a limits request: at most `max` bytes a file, txt and png only.
fn limits(max: u64) -> GmsResult {
    response(&format!(
        r#"{{"statusCode":0,"chatEnded":false,"messages":[{{"from":{{"nickname":"v",
        "participantId":1,"type":"Client"}},"text":"file-client-cfg-get","type":"Notice",
        "userData":{{"upload-max-file-size":"{max}","upload-file-types":"txt:png"}}}}]}}"#
    ))
}

fn is_limits(operation: &ChatOperation) -> bool {
    matches!(operation, ChatOperation::FileLimits)
}

fn read_id(effects: &[Effect]) -> Option<u64> {
    effects.iter().find_map(|e| match e {
        Effect::ReadFile { id } => Some(*id),
        _ => None,
    })
}

#[test]
fn a_picked_file_is_read_and_sent_only_once_the_chats_limits_allow_it() {
    let mut m = connected();
    let id = gms_id(&m.step(Input::FilePicked(picked("big.txt", 2049))), is_limits);
    assert!(m.uploading());
    let out = m.step(Input::Gms(id, limits(2048)));
    assert_eq!(read_id(&out), None, "a file over the limit is never read");
    let too_big = FileRefusal::TooBig { name: "big.txt".into(), max: 2048 };
    assert_eq!(m.notice, Some(Notice::FileRefused(too_big)));
    assert!(!m.uploading());

    let id = gms_id(&m.step(Input::FilePicked(picked("note.txt", 5))), is_limits);
    let read = read_id(&m.step(Input::Gms(id, limits(2048)))).expect("reads the file");
    assert!(m.uploading(), "while its bytes are read");
    let out = m.step(Input::FileRead(read, Some(b"hello".to_vec())));
    let upload = out.iter().find_map(|e| match e {
        Effect::Gms { id, operation: ChatOperation::Upload { file, .. }, .. } => Some((*id, file)),
        _ => None,
    });
    let (upload, file) = upload.expect("uploads the file");
    assert_eq!((file.file_name.as_str(), file.content_type.as_str()), ("note.txt", "text/plain"));
    assert_eq!(file.bytes, b"hello");
    assert!(m.uploading(), "until GMS answers the upload");
    // The answer carries no event of the file: one refresh shows it.
    assert_eq!(refreshes(&m.step(Input::Gms(upload, ok_at(3)))), 1);
    assert!(!m.uploading());
}

#[test]
fn a_file_that_cannot_be_judged_or_read_is_not_sent_and_says_so() {
    let mut m = connected();
    let id = gms_id(&m.step(Input::FilePicked(picked("a.txt", 1))), is_limits);
    let out = m.step(Input::Gms(id, GmsResult::Failed(NetFailure::Http(502))));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(m.notice, Some(Notice::FileFailed(NetFailure::Http(502))));
    assert!(!m.uploading());

    let id = gms_id(&m.step(Input::FilePicked(picked("a.txt", 1))), is_limits);
    let read = read_id(&m.step(Input::Gms(id, limits(2048)))).expect("reads the file");
    assert!(m.step(Input::FileRead(read, None)).is_empty());
    assert_eq!(m.notice, Some(Notice::FileFailed(NetFailure::Network)));
    assert!(!m.uploading());

    // Limits GMS does not state allow any file: GMS judges the upload itself.
    let id = gms_id(&m.step(Input::FilePicked(picked("a.exe", 1 << 30))), is_limits);
    assert!(read_id(&m.step(Input::Gms(id, ok_at(3)))).is_some());
}

#[test]
fn a_file_picked_without_a_running_chat_asks_for_nothing_and_a_later_pick_replaces_one_on_its_way()
{
    let mut m = Machine::fresh("d", "svc", "");
    assert!(m.step(Input::FilePicked(picked("a.txt", 1))).is_empty());
    assert!(!m.uploading());

    let mut m = connected();
    let first = gms_id(&m.step(Input::FilePicked(picked("first.txt", 1))), is_limits);
    let second = gms_id(&m.step(Input::FilePicked(picked("second.txt", 1))), is_limits);
    assert!(m.step(Input::Gms(first, limits(2048))).is_empty(), "the first is replaced");
    assert!(m.uploading(), "the second is on its way");
    let read = read_id(&m.step(Input::Gms(second, limits(2048)))).expect("reads the second");
    assert!(m.step(Input::FileRead(first, Some(vec![1]))).is_empty(), "a stale read");
    let out = m.step(Input::FileRead(read, Some(vec![2])));
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::Gms { operation: ChatOperation::Upload { file, .. }, .. }
            if file.file_name == "second.txt"
    )));
}

#[test]
fn a_file_is_judged_against_every_limit() {
    let limits = FileLimits {
        upload_max_files: Some(3),
        upload_max_file_size: Some(2 << 20),
        upload_max_total_size: Some(5 << 20),
        used_upload_max_files: Some(1),
        used_upload_max_total_size: Some(4 << 20),
        upload_file_types: vec!["png".into(), "pdf".into()],
        ..FileLimits::default()
    };
    assert_eq!(FileRefusal::of(&limits, "a.PNG", 1000), None);
    // 1 MB left of the total, though a single file may have 2 MB.
    assert_eq!(
        FileRefusal::of(&limits, "big.pdf", (1 << 20) + 1),
        Some(FileRefusal::TooBig { name: "big.pdf".into(), max: 1 << 20 })
    );
    assert_eq!(
        FileRefusal::of(&limits, "run.exe", 10),
        Some(FileRefusal::TypeNotAllowed(vec!["png".into(), "pdf".into()]))
    );
    let full = FileLimits { used_upload_max_files: Some(3), ..limits };
    assert_eq!(FileRefusal::of(&full, "a.png", 10), Some(FileRefusal::TooMany));
    assert_eq!(FileRefusal::of(&FileLimits::default(), "any", u64::MAX), None);
}
