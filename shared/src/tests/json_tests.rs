//! The widget's JSON reader and writer against serde_json: the same tree from the same
//! text, the same text from the same value, the same value from the same text, for every
//! type the widget reads or writes; and malformed input refused without a panic.

use proptest::prelude::*;

use super::fixtures;
use crate::gms::{ChatError, ChatEvent, ChatResponse, Credentials, EventType, Party};
use crate::json::{self, FromJson, Json, ToJson};
use crate::relay_api::{ClientFrame, ErrorBody, RegisterSession, ServerFrame, SessionRegistered};
use crate::visitor::{ChatState, Stored};
use crate::widget_config::WidgetConfig;

/// serde_json's tree as ours: numbers as serde_json writes them.
fn tree(value: &serde_json::Value) -> Json {
    match value {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(b) => Json::Bool(*b),
        serde_json::Value::Number(n) => Json::Number(n.to_string()),
        serde_json::Value::String(s) => Json::String(s.clone()),
        serde_json::Value::Array(items) => Json::Array(items.iter().map(tree).collect()),
        serde_json::Value::Object(map) => {
            Json::Object(map.iter().map(|(k, v)| (k.clone(), tree(v))).collect())
        }
    }
}

/// Both directions for one value: our text is serde's, and each reads the other's.
fn agree<T>(value: &T)
where
    T: FromJson
        + ToJson
        + serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + std::fmt::Debug,
{
    let theirs = serde_json::to_string(value).expect("serde writes it");
    let ours = json::to_string(value);
    assert_eq!(ours, theirs);
    assert_eq!(json::from_str::<T>(&theirs).as_ref(), Some(value));
    assert_eq!(&serde_json::from_str::<T>(&ours).expect("serde reads ours"), value);
}

/// Reading only (types the widget never writes): same value from the same text.
fn reads_as_serde<T>(text: &str)
where
    T: FromJson + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let theirs: T = serde_json::from_str(text).expect("serde reads the fixture");
    assert_eq!(json::from_str::<T>(text), Some(theirs), "{text}");
}

#[test]
fn documents_read_as_serde_reads_them() {
    let text = r#" {"a": [1, -0.5, 2e10, 1E-3, true, false, null, {}, []],
        "b": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 é", "c": {"d": {"e": -12}}} "#;
    let theirs: serde_json::Value = serde_json::from_str(text).expect("valid");
    // Numbers are kept as written: 2e10 stays 2e10 where serde_json has 20000000000.0.
    let Json::Object(mut expected) = tree(&theirs) else { panic!("an object") };
    if let Json::Array(items) = &mut expected[0].1 {
        items[2] = Json::Number("2e10".into());
        items[3] = Json::Number("1E-3".into());
    }
    let ours = json::parse(text).expect("valid");
    assert_eq!(ours, Json::Object(expected));
}

#[test]
fn malformed_documents_are_refused() {
    for bad in [
        "",
        " ",
        "{",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "01",
        "1.",
        "-",
        ".5",
        "1e",
        "+1",
        "tru",
        "nul",
        r#""open"#,
        "\"tab\there\"",
        r#""\x""#,
        r#""\u12""#,
        "[1] 2",
        "{}}",
        "NaN",
    ] {
        assert_eq!(json::parse(bad), None, "{bad:?}");
        assert!(serde_json::from_str::<serde_json::Value>(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn nesting_is_bounded_as_in_serde() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(json::parse(&deep(128)).is_some());
    assert_eq!(json::parse(&deep(129)), None);
    assert_eq!(json::parse(&"[".repeat(100_000)), None);
}

#[test]
fn a_lone_surrogate_is_a_replacement_character() {
    assert_eq!(json::parse(r#""a\ud800b""#), Some(Json::String("a\u{fffd}b".into())));
    assert_eq!(json::parse(r#""\udc00\u0041""#), Some(Json::String("\u{fffd}A".into())));
}

#[test]
fn gms_bodies_read_as_serde_reads_them() {
    for body in [fixtures::CREATE, fixtures::SEND_OK, fixtures::SEND_FAILED, fixtures::FILE_LIMITS]
    {
        reads_as_serde::<ChatResponse>(body);
    }
    reads_as_serde::<ChatEvent>(fixtures::FILE_UPLOADED);
    // Integers and booleans in userData become text; fractions, nulls and trees are dropped.
    // Unknown fields are skipped (the relay's serde keeps them in `extra`).
    let body = r#"{"statusCode":0,"userData":{"a":1,"b":-2,"c":true,"d":1.5,"e":null,"f":[1],
        "g":{"h":1},"i":"x","j":18446744073709551615,"k":1e3,"i":"last wins"},"monitored":true,
        "messages":[{"type":"SomethingNew","index":3,"extra":{"x":[1,2]}}],"errors":[{"code":161}]}"#;
    #[allow(unused_mut)]
    let mut theirs: ChatResponse = serde_json::from_str(body).expect("serde reads it");
    #[cfg(feature = "unknown-fields")]
    {
        theirs.extra.clear();
        theirs.messages.iter_mut().for_each(|m| m.extra.clear());
    }
    assert_eq!(json::from_str::<ChatResponse>(body), Some(theirs));
}

#[test]
fn wrong_types_are_refused_as_serde_refuses_them() {
    for bad in [
        r#"{}"#,
        r#"{"statusCode":"0"}"#,
        r#"{"statusCode":0.5}"#,
        r#"{"statusCode":0,"nextPosition":-1}"#,
        r#"{"statusCode":0,"messages":[{"index":1}]}"#,
        r#"{"statusCode":0,"chatEnded":"no"}"#,
        r#"{"statusCode":0,"userData":"text"}"#,
    ] {
        assert!(serde_json::from_str::<ChatResponse>(bad).is_err(), "{bad}");
        assert_eq!(json::from_str::<ChatResponse>(bad), None, "{bad}");
    }
}

#[test]
fn server_frames_read_as_serde_reads_them() {
    for frame in [
        r#"{"type":"subscribed","chatId":"c","position":4}"#,
        r#"{"type":"events","chatId":"c","messages":[{"type":"Message","index":4,"text":"hi"}],"nextPosition":5}"#,
        r#"{"type":"events","chatId":"c","messages":[]}"#,
        r#"{"type":"changed","chatId":"c","new":1}"#,
        r#"{"type":"tokens","chatId":"c","alias":"118"}"#,
        r#"{"type":"ended","chatId":"c"}"#,
        r#"{"type":"error","code":"bad_token","message":"no"}"#,
        r#"{"type":"fromTheFuture","chatId":"c"}"#,
    ] {
        reads_as_serde::<ServerFrame>(frame);
    }
    for bad in [r#"{"type":"subscribed","chatId":"c"}"#, r#"{"chatId":"c"}"#, r#"{"type":"ended"}"#]
    {
        assert!(serde_json::from_str::<ServerFrame>(bad).is_err(), "{bad}");
        assert_eq!(json::from_str::<ServerFrame>(bad), None, "{bad}");
    }
}

#[test]
fn relay_answers_read_as_serde_reads_them() {
    reads_as_serde::<SessionRegistered>(r#"{"token":"t","position":0}"#);
    reads_as_serde::<SessionRegistered>(r#"{"token":"t","position":7,"vapidPublicKey":"BK"}"#);
    reads_as_serde::<ErrorBody>(r#"{"code":"origin","message":"not allowed","more":1}"#);
}

#[test]
fn widget_config_reads_as_serde_reads_it() {
    reads_as_serde::<WidgetConfig>(r#"{}"#);
    reads_as_serde::<WidgetConfig>(
        r#"{"gmsUrl":"https://g","service":"s","relayUrl":"https://r","nodeGroup":"n","title":"t",
           "language":"ar","idleRefreshSeconds":60,"serviceWorker":"/sw.js","theme":"dark",
           "keepEndedDays":0}"#,
    );
    reads_as_serde::<WidgetConfig>(r#"{"keepEndedDays":30}"#);
    reads_as_serde::<WidgetConfig>(r#"{"gmsHeaders":{"apikey":"k","X-B":"","apikey":"k2"}}"#);
    reads_as_serde::<WidgetConfig>(r#"{"gmsHeaders":{}}"#);
    // Only texts: a map serde refuses (so the defaults) is refused here too.
    for refused in [r#"{"gmsHeaders":{"apikey":1}}"#, r#"{"gmsHeaders":["a"]}"#] {
        assert!(serde_json::from_str::<WidgetConfig>(refused).is_err(), "{refused}");
        assert_eq!(json::from_str::<WidgetConfig>(refused), None, "{refused}");
    }
    assert_eq!(json::from_str::<WidgetConfig>(r#"{"keepEndedDays":-1}"#), None);
    // An unreadable document is the defaults, as `WidgetConfig::from_json` says.
    assert!(serde_json::from_str::<WidgetConfig>(r#"{"title":3}"#).is_err());
    assert_eq!(json::from_str::<WidgetConfig>(r#"{"title":3}"#), None);
}

#[test]
fn client_frames_and_registrations_are_written_as_serde_writes_them() {
    for frame in [
        ClientFrame::Subscribe { chat_id: "c\"1".into(), token: "t".into() },
        ClientFrame::Unsubscribe { chat_id: "c".into() },
    ] {
        assert_eq!(json::to_string(&frame), serde_json::to_string(&frame).expect("writes"));
    }
    let mut register = RegisterSession::new("svc", &fixtures::tokens("c"), None);
    assert_eq!(json::to_string(&register), serde_json::to_string(&register).expect("writes"));
    register.device_id = Some("d-1".into());
    assert_eq!(json::to_string(&register), serde_json::to_string(&register).expect("writes"));
}

fn text() -> impl Strategy<Value = String> {
    // Any character, control characters and astral planes included.
    ".{0,6}"
}

fn event() -> impl Strategy<Value = ChatEvent> {
    (
        (text(), any::<i64>(), prop_oneof![Just("Agent".to_owned()), text()]),
        (
            any::<Option<u64>>(),
            prop_oneof![Just("Message".to_owned()), text()],
            any::<Option<i64>>(),
        ),
        (proptest::option::of(text()), proptest::option::of(text())),
        proptest::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(
            |((nickname, participant_id, party_type), (index, kind, utc), (t, mt), data)| {
                let from = Party { nickname, participant_id, party_type };
                let mut event = ChatEvent::new(0, EventType::from(kind), from, 0);
                event.index = index;
                event.utc_time = utc;
                event.text = t;
                event.message_type = mt;
                event.user_data = data;
                event
            },
        )
}

fn stored() -> impl Strategy<Value = Stored> {
    let chat = (
        (text(), text(), text(), text(), text()),
        (proptest::option::of(text()), any::<u64>(), proptest::collection::vec(event(), 0..3)),
        (
            any::<bool>(),
            any::<Option<u64>>(),
            proptest::option::of(text()),
            any::<u32>(),
            any::<Option<u64>>(),
        ),
    )
        .prop_map(
            |((service, chat_id, user_id, secure_key, alias), (token, next, events), rest)| {
                let (ended, seen, push_key, notify_changes, ended_at) = rest;
                // Some or none, with text that needs no escaping and text that does.
                let identity = seen.map(|s| format!("user \"{s}\""));
                ChatState {
                    service,
                    credentials: Credentials { chat_id, user_id, secure_key, alias },
                    relay_token: token,
                    next_position: next,
                    events,
                    ended,
                    seen,
                    push_key,
                    notify_changes,
                    ended_at,
                    identity,
                    // Both values, tied to another field's draw.
                    surveyed: notify_changes % 2 == 0,
                }
            },
        );
    (text(), proptest::option::of(chat), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(device_id, chat, open, alerts, notify_refused)| Stored {
            device_id,
            chat,
            open,
            alerts,
            notify_refused,
        },
    )
}

fn serde_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        (-1e300..1e300_f64).prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_document_serde_writes_reads_as_the_same_tree(value in serde_value()) {
        let text = serde_json::to_string(&value).expect("writes");
        prop_assert_eq!(json::parse(&text), Some(tree(&value)));
        let pretty = serde_json::to_string_pretty(&value).expect("writes");
        prop_assert_eq!(json::parse(&pretty), Some(tree(&value)));
    }

    #[test]
    fn strings_are_written_as_serde_writes_them(text in ".{0,24}") {
        prop_assert_eq!(json::to_string(&text), serde_json::to_string(&text).expect("writes"));
    }

    #[test]
    fn stored_chats_agree_both_ways(value in stored()) {
        agree(&value);
    }

    #[test]
    fn widget_configs_serde_writes_read_the_same(
        headers in proptest::collection::btree_map(text(), text(), 0..4),
        title in text(),
    ) {
        let config = WidgetConfig { gms_headers: headers, title, ..WidgetConfig::default() };
        let text = serde_json::to_string(&config).expect("writes");
        // No headers, no key: older loaders and configurations stay as they were.
        prop_assert_eq!(text.contains("gmsHeaders"), !config.gms_headers.is_empty());
        prop_assert_eq!(json::from_str::<WidgetConfig>(&text), Some(config));
    }

    #[test]
    fn user_data_pairs_read_as_serde_reads_them(pairs in proptest::collection::vec((text(), text()), 0..4)) {
        let text = serde_json::to_string(&pairs).expect("writes");
        prop_assert_eq!(json::from_str::<Vec<(String, String)>>(&text), Some(pairs));
    }

    #[test]
    fn the_reader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let parsed = json::parse(text);
            prop_assert_eq!(parsed.is_some(), serde_json::from_str::<serde_json::Value>(text).is_ok());
        }
    }
}

#[test]
fn events_and_errors_agree_with_serde() {
    let event: ChatEvent = serde_json::from_str(fixtures::FILE_UPLOADED).expect("fixture");
    agree(&event);
    let error = ChatError { code: 249, advice: Some("a".into()), message: None };
    let text = serde_json::to_string(&error).expect("writes");
    assert_eq!(json::from_str::<ChatError>(&text), Some(error));
}

#[test]
fn a_chat_stored_before_its_end_time_was_kept_still_reads() {
    let older = r#"{"deviceId":"d","chat":{"service":"s","credentials":{"chatId":"c","userId":"u","secureKey":"k","alias":"117"},
        "relayToken":null,"nextPosition":3,"events":[],"ended":true,"seen":3,"notifyChanges":0},
        "open":false,"alerts":false,"notifyRefused":false}"#;
    reads_as_serde::<Stored>(older);
    let stored: Stored = json::from_str(older).expect("reads");
    assert_eq!(stored.chat.and_then(|c| c.ended_at), None);
}
