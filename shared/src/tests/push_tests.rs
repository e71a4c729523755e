use proptest::prelude::*;
use serde_json::json;

use crate::health::ChatServerHealth;
use crate::push::{PushError, PushNotification, REDACTED, redacted_body};

fn parse(value: &serde_json::Value) -> PushNotification {
    PushNotification::parse(value.to_string().as_bytes()).expect("parses")
}

#[test]
fn the_documented_minimum_parses() {
    let push = parse(&json!({"deviceId": "dev-42", "message": "New chat message"}));
    assert_eq!(push.device_id.as_deref(), Some("dev-42"));
    assert_eq!(push.message.as_deref(), Some("New chat message"));
    assert_eq!(push.chat_id, None);
    assert!(push.events.is_empty());
    assert!(!push.shutdown_advice);
}

#[test]
fn tokens_are_found_under_every_spelling_at_any_depth() {
    let flat = parse(&json!({"deviceId": "d", "type": "Message", "chatId": "C1", "userId": "U1",
                            "secureKey": "K1", "alias": "117"}));
    let kebab = parse(&json!({"deviceId": "d", "session-id": "C1", "user-id": "U1",
                             "secure-key": "K1", "app-dbid": 117}));
    let nested = parse(&json!({"deviceId": "d", "payload": {"data": {"sessionId": "C1",
                             "user-id": "U1", "secure-key": "K1", "appDbid": "117"}}}));
    for push in [flat, kebab, nested] {
        assert_eq!(push.chat_id.as_deref(), Some("C1"));
        assert_eq!(push.user_id.as_deref(), Some("U1"));
        assert_eq!(push.secure_key.as_deref(), Some("K1"));
        assert_eq!(push.alias.as_deref(), Some("117"), "numbers are read as strings");
    }
}

#[test]
fn the_shallowest_token_wins() {
    let push = parse(&json!({"chatId": "top", "envelope": {"chatId": "deep"}}));
    assert_eq!(push.chat_id.as_deref(), Some("top"));
}

#[test]
fn carried_events_are_read_top_level_or_nested() {
    let events = json!([
        {"from": {"nickname": "Ann", "participantId": 2, "type": "Agent"}, "index": 7,
         "type": "Message", "text": "Hi", "utcTime": 1},
        {"index": 8, "type": "SomethingNew"},
        "not an event"
    ]);
    let top =
        parse(&json!({"deviceId": "d", "type": "Message", "messages": &events, "nextPosition": 9}));
    let nested = parse(&json!({"deviceId": "d", "payload": {"chatId": "C", "messages": events}}));
    for push in [&top, &nested] {
        assert_eq!(push.events.len(), 2);
        assert_eq!(push.skipped_events, 1);
        assert_eq!(push.events[0].text.as_deref(), Some("Hi"));
        assert_eq!(push.highest_index(), Some(8));
        assert_eq!(push.proven_next_position(), Some(9));
    }
    assert_eq!(top.notification_type.as_deref(), Some("Message"));
    assert_eq!(nested.next_position, None);
}

#[test]
fn shutdown_advice_is_recognised_wherever_the_key_sits() {
    let left = json!({"from": {"nickname": "Jane", "participantId": 1, "type": "Client"},
                      "index": 5, "type": "ParticipantLeft", "utcTime": 1});
    let mut in_user_data = left.clone();
    in_user_data["userData"] = json!({"quit-reason-advice": "reconnect"});
    let mut in_attributes = left.clone();
    in_attributes["eventAttributes"] = json!({"GCTI_SYSTEM": {"quit-reason-advice": "Reconnect"}});
    let variants = [
        json!({"deviceId": "d", "messages": [in_user_data]}),
        json!({"deviceId": "d", "messages": [in_attributes]}),
        json!({"deviceId": "d", "messages": [left], "quit-reason-advice": "reconnect"}),
        json!({"deviceId": "d", "type": "ParticipantLeft", "participantId": 1, "quitReasonAdvice": "reconnect"}),
        json!({"deviceId": "d", "type": "ParticipantLeft", "participantId": "1", "message": "quit-reason-advice=reconnect"}),
    ];
    for variant in variants {
        assert!(parse(&variant).shutdown_advice, "{variant}");
    }
}

#[test]
fn a_plain_leave_or_an_agent_leave_is_not_shutdown_advice() {
    let visitor_left = json!({"deviceId": "d", "messages": [{"from": {"participantId": 1}, "index": 5, "type": "ParticipantLeft"}]});
    assert!(!parse(&visitor_left).shutdown_advice);
    let agent_left = json!({"deviceId": "d", "quit-reason-advice": "reconnect",
        "messages": [{"from": {"participantId": 2}, "index": 5, "type": "ParticipantLeft"}]});
    assert!(!parse(&agent_left).shutdown_advice);
    let other_advice = json!({"deviceId": "d", "quit-reason-advice": "stay",
        "messages": [{"from": {"participantId": 1}, "index": 5, "type": "ParticipantLeft"}]});
    assert!(!parse(&other_advice).shutdown_advice);
}

/// The REST envelope, as a CometD notification's `data` carries it (gms-deployed-evidence
/// finding 2): what Chat Server says a customhttp push includes "the same as with CometD".
fn rest_envelope() -> serde_json::Value {
    json!({"chatId": "C1", "statusCode": 0, "chatEnded": false, "alias": "117",
           "secureKey": "K1", "userId": "U1", "nextPosition": 8, "messages": [
               {"from": {"nickname": "Ann", "participantId": 2, "type": "Agent"}, "index": 7,
                "type": "Message", "text": "Hi", "utcTime": 1}]})
}

fn assert_reads_the_envelope(push: &PushNotification, layout: &str) {
    assert_eq!(push.device_id.as_deref(), Some("d"), "{layout}");
    assert_eq!(push.chat_id.as_deref(), Some("C1"), "{layout}");
    assert_eq!(push.user_id.as_deref(), Some("U1"), "{layout}");
    assert_eq!(push.secure_key.as_deref(), Some("K1"), "{layout}");
    assert_eq!(push.alias.as_deref(), Some("117"), "{layout}");
    assert_eq!(push.events.len(), 1, "{layout}");
    assert_eq!(push.events[0].text.as_deref(), Some("Hi"), "{layout}");
    assert_eq!(push.next_position, Some(8), "{layout}");
    assert_eq!(push.proven_next_position(), Some(8), "{layout}");
}

#[test]
fn the_rest_envelope_is_read_merged_at_the_top_or_nested_as_an_object() {
    let mut merged = rest_envelope();
    merged["deviceId"] = json!("d");
    merged["message"] = json!("Ann: Hi");
    assert_reads_the_envelope(&parse(&merged), "merged");
    assert_eq!(parse(&merged).message.as_deref(), Some("Ann: Hi"));
    let nested = json!({"deviceId": "d", "notification": {"data": rest_envelope()}});
    assert_reads_the_envelope(&parse(&nested), "nested");
}

#[test]
fn an_envelope_encoded_in_a_json_string_is_read_under_any_key() {
    let text = rest_envelope().to_string();
    for key in ["message", "payload", "data", "anythingElse"] {
        let push = parse(&json!({"deviceId": "d", "type": "push-url", key: text}));
        assert_reads_the_envelope(&push, key);
        assert_eq!(push.notification_type.as_deref(), Some("push-url"));
    }
    let nested = parse(&json!({"deviceId": "d", "notification": {"data": text}}));
    assert_reads_the_envelope(&nested, "a string nested in an object");
    let in_array = parse(&json!({"deviceId": "d", "payloads": [text]}));
    assert_reads_the_envelope(&in_array, "a string in an array");
    let array_text = json!([rest_envelope()]).to_string();
    assert_reads_the_envelope(&parse(&json!({"deviceId": "d", "data": array_text})), "an array");
}

#[test]
fn a_message_that_holds_json_is_not_the_notification_text() {
    let push = parse(&json!({"deviceId": "d", "message": rest_envelope().to_string()}));
    assert_eq!(push.message, None, "the text is the envelope, not words for a person");
    let text = parse(&json!({"deviceId": "d", "message": "{not json, only braces"}));
    assert_eq!(text.message.as_deref(), Some("{not json, only braces"));
    assert_eq!(text.chat_id, None);
}

#[test]
fn events_encoded_as_a_string_are_read() {
    let events = rest_envelope()["messages"].to_string();
    let push = parse(&json!({"deviceId": "d", "chatId": "C1", "messages": events}));
    assert_eq!(push.events.len(), 1);
    assert_eq!(push.proven_next_position(), Some(8));
}

#[test]
fn the_whole_body_encoded_as_a_string_is_read() {
    let mut envelope = rest_envelope();
    envelope["deviceId"] = json!("d");
    let body = serde_json::Value::String(envelope.to_string()).to_string();
    assert_reads_the_envelope(&PushNotification::parse(body.as_bytes()).expect("parses"), "body");
}

#[test]
fn shutdown_advice_inside_a_string_is_recognised() {
    let left = json!({"from": {"nickname": "Jane", "participantId": 1, "type": "Client"},
                      "index": 5, "type": "ParticipantLeft", "utcTime": 1,
                      "userData": {"quit-reason-advice": "reconnect"}});
    let in_envelope = json!({"chatId": "C1", "statusCode": 0, "messages": [left]}).to_string();
    let beside = json!({"chatId": "C1", "quit-reason-advice": "reconnect",
                        "messages": [{"from": {"participantId": 1}, "index": 5,
                                      "type": "ParticipantLeft"}]})
    .to_string();
    for (key, text) in [("message", &in_envelope), ("payload", &in_envelope), ("data", &beside)] {
        let push = parse(&json!({"deviceId": "d", "type": "push-url", key: text}));
        assert!(push.shutdown_advice, "{key}: {text}");
        assert_eq!(push.chat_id.as_deref(), Some("C1"));
    }
}

#[test]
fn a_string_in_a_string_is_read_but_no_deeper() {
    // Two encodings cover GMS serialising the envelope and something on the way serialising
    // the body once more; a third is not a layout anyone sends, only work for a hostile one.
    let once = rest_envelope().to_string();
    let twice = json!({"data": once}).to_string();
    assert_reads_the_envelope(&parse(&json!({"deviceId": "d", "message": twice})), "twice");
    let thrice = json!({"data": json!({"data": once}).to_string()}).to_string();
    let push = parse(&json!({"deviceId": "d", "message": thrice}));
    assert_eq!((push.chat_id, push.events.len()), (None, 0), "a third encoding is left as text");
}

#[test]
fn the_text_of_an_event_is_never_read_as_json() {
    // An event's text is what a visitor or an agent typed: it must not name a chat, tokens
    // or events.
    let typed = json!({"chatId": "victim", "secureKey": "forged", "messages": [
        {"index": 99, "type": "Message", "text": "x", "utcTime": 1}]})
    .to_string();
    let event = json!({"from": {"nickname": "Jane", "participantId": 1, "type": "Client"},
                       "index": 3, "type": "Message", "text": typed, "utcTime": 1,
                       "userData": {"note": typed}});
    for body in [
        json!({"deviceId": "d", "messages": [event]}),
        json!({"deviceId": "d", "message": json!({"messages": [event]}).to_string()}),
        json!({"deviceId": "d", "messages": json!([event]).to_string()}),
    ] {
        let push = parse(&body);
        assert_eq!((&push.chat_id, &push.secure_key), (&None, &None), "{body}");
        assert_eq!(push.proven_next_position(), Some(4), "{body}");
    }
}

#[test]
fn malformed_pushes_are_errors() {
    assert!(matches!(PushNotification::parse(b"not json"), Err(PushError::NotJson(_))));
    assert!(matches!(PushNotification::parse(b""), Err(PushError::NotJson(_))));
    assert_eq!(PushNotification::parse(b"[1,2]"), Err(PushError::NotAnObject));
    assert_eq!(PushNotification::parse(b"\"x\""), Err(PushError::NotAnObject));
}

#[test]
fn deep_nesting_is_bounded() {
    let mut value = json!({"chatId": "deep"});
    for _ in 0..20 {
        value = json!({"n": value});
    }
    assert_eq!(parse(&value).chat_id, None, "tokens below the search depth are ignored");
}

#[test]
fn hostile_encodings_are_bounded() {
    // Each encoding doubles the escapes: ten are 2^10 times the text, all but two ignored.
    let mut text = json!({"chatId": "deep"}).to_string();
    for _ in 0..10 {
        text = json!({"s": text}).to_string();
    }
    assert_eq!(parse(&json!({"deviceId": "d", "message": text})).chat_id, None);
    // Nesting past serde_json's recursion limit inside a string stays a string.
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    assert_eq!(parse(&json!({"deviceId": "d", "message": deep})).chat_id, None);
}

#[test]
fn health_bodies_are_read_tolerantly() {
    let plain = ChatServerHealth::parse(br#"{"app_dbid":117,"process_os_pid":4242,"sessions":3}"#)
        .expect("parses");
    assert_eq!(plain.app_dbid, "117");
    assert_eq!(plain.process_os_pid, 4242);
    let nested =
        ChatServerHealth::parse(br#"{"kpi":{"app":{"app_dbid":"117","process_os_pid":"4243"}}}"#)
            .expect("parses");
    assert_eq!(nested.app_dbid, "117");
    assert_eq!(nested.process_os_pid, 4243);
    assert!(ChatServerHealth::parse(br#"{"app_dbid":117}"#).is_err());
    assert!(ChatServerHealth::parse(br#"{"app_dbid":117,"process_os_pid":"abc"}"#).is_err());
    assert!(ChatServerHealth::parse(b"<xml/>").is_err());
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![Just("reconnect".to_owned()), Just("ParticipantLeft".to_owned()), ".{0,8}"]
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("chatId".to_owned()),
            Just("messages".to_owned()),
            Just("type".to_owned()),
            Just("index".to_owned()),
            Just("from".to_owned()),
            Just("participantId".to_owned()),
            Just("quit-reason-advice".to_owned()),
            Just("nextPosition".to_owned()),
            Just("message".to_owned()),
            Just("userData".to_owned()),
            Just("secureKey".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(keys, inner.clone(), 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            // The same trees encoded in strings, as GMS may send the envelope.
            inner.prop_map(|v| serde_json::Value::String(v.to_string())),
        ]
    })
}

proptest! {
    #[test]
    fn push_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = PushNotification::parse(&bytes);
    }

    #[test]
    fn push_parser_never_panics_on_json(value in json_value()) {
        if let Ok(push) = PushNotification::from_value(&value) {
            let _ = push.proven_next_position();
        }
    }
}

#[test]
fn a_pushs_next_position_proves_nothing_beyond_its_events() {
    // Anyone who can post a push could claim any position: only carried indexes count.
    let claim = json!({"chatId": "c", "nextPosition": 1_000_000, "messages": [
        {"index": 4, "type": "Message", "text": "hi", "utcTime": 1,
         "from": {"nickname": "A", "participantId": 2, "type": "Agent"}}]});
    let push = PushNotification::from_value(&claim).expect("parses");
    assert_eq!((push.next_position, push.proven_next_position()), (Some(1_000_000), Some(5)));
    let bare = json!({"chatId": "c", "nextPosition": 1_000_000});
    assert_eq!(PushNotification::from_value(&bare).expect("parses").proven_next_position(), None);
}

// Redaction of a push body for `relay check --capture`.

fn redacted(value: &serde_json::Value, secrets: &[&str]) -> serde_json::Value {
    let text = redacted_body(value.to_string().as_bytes(), secrets);
    serde_json::from_str(&text).expect("a redacted JSON body is JSON")
}

#[test]
fn a_secure_key_is_redacted_at_any_depth_under_any_spelling() {
    let body = json!({"deviceId": "d", "secureKey": "K1", "payload": {"chat": {
        "secure-key": "K2", "SECURE_KEY": 3, "securekey": {"deep": "K4"},
        "list": [{"SecureKey": "K5"}], "chatId": "C1"}}});
    let out = redacted(&body, &[]);
    let text = out.to_string();
    for key in ["K1", "K2", "K4", "K5"] {
        assert!(!text.contains(key), "{key} in {text}");
    }
    assert_eq!(out["secureKey"], REDACTED);
    assert_eq!(out["payload"]["chat"]["SECURE_KEY"], REDACTED, "a number too");
    assert_eq!(out["payload"]["chat"]["securekey"], REDACTED, "an object too");
    assert_eq!(out["payload"]["chat"]["list"][0]["SecureKey"], REDACTED);
    assert_eq!(out["payload"]["chat"]["chatId"], "C1", "everything else stays");
    assert_eq!(out["deviceId"], "d");
}

#[test]
fn an_envelope_in_a_string_is_redacted_inside_and_stays_a_string() {
    for key in ["message", "payload", "data"] {
        let body = json!({"deviceId": "d", "type": "push-url", key: rest_envelope().to_string()});
        let out = redacted(&body, &[]);
        let inner = out[key].as_str().expect("still a JSON string");
        let envelope: serde_json::Value = serde_json::from_str(inner).expect("still JSON");
        assert_eq!(envelope["secureKey"], REDACTED, "{key}");
        assert_eq!(envelope["chatId"], "C1");
        assert_eq!(envelope["messages"][0]["text"], "Hi");
        // What the relay reads from the redacted body is the same chat and events.
        let push = PushNotification::from_value(&out).expect("parses");
        assert_eq!(push.chat_id.as_deref(), Some("C1"));
        assert_eq!(push.secure_key.as_deref(), Some(REDACTED));
        assert_eq!(push.events.len(), 1);
    }
    // Two encodings deep.
    let twice = json!({"data": rest_envelope().to_string()}).to_string();
    let text = redacted_body(json!({"message": twice}).to_string().as_bytes(), &[]);
    assert!(!text.contains("K1") && text.contains(REDACTED), "{text}");
}

#[test]
fn a_body_without_secrets_is_kept_as_it_came() {
    let body = br#"{ "deviceId" : "d",  "message": "Ann: Hi" }"#;
    assert_eq!(redacted_body(body, &["K1"]), String::from_utf8_lossy(body));
}

#[test]
fn the_given_secrets_are_redacted_in_any_body() {
    // A form-encoded body is no JSON: the secrets the relay holds are replaced as text.
    let form = b"deviceId=d&secureKey=K%2B1&chatId=C1&note=K+1";
    let out = redacted_body(form, &["K+1"]);
    assert_eq!(out, "deviceId=d&secureKey=<redacted>&chatId=C1&note=<redacted>");
    // In JSON under a key of another name, and escaped inside a JSON string.
    let body = json!({"token": "a\"b", "message": json!({"x": "a\"b"}).to_string()});
    let out = redacted_body(body.to_string().as_bytes(), &["a\"b", ""]);
    assert!(!out.contains("a\\\"b") && !out.contains("a\\\\\\\"b"), "{out}");
    assert_eq!(out.matches(REDACTED).count(), 2, "{out}");
}

#[test]
fn garbage_is_kept_as_text_with_its_secrets_redacted() {
    let garbage = [0xff, 0xfe, b'K', b'1', 0x00, 0xc3];
    let out = redacted_body(&garbage, &["K1"]);
    assert_eq!(out, "\u{fffd}\u{fffd}<redacted>\0\u{fffd}");
    assert_eq!(redacted_body(b"", &["K1"]), "");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(redacted_body(deep.as_bytes(), &[]), deep, "past serde_json's limit: text");
}

proptest! {
    #[test]
    fn redaction_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = redacted_body(&bytes, &["K", "\"", "%"]);
    }

    #[test]
    fn redaction_never_panics_and_leaves_no_secure_key(value in json_value()) {
        let out = redacted_body(value.to_string().as_bytes(), &[]);
        if let Ok(again) = serde_json::from_str::<serde_json::Value>(&out) {
            prop_assert!(!redact_would_change(&again), "{}", out);
        }
    }
}

/// Whether a second redaction finds anything left to replace.
fn redact_would_change(value: &serde_json::Value) -> bool {
    let text = value.to_string();
    redacted_body(text.as_bytes(), &[]) != text
}
