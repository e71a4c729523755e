//! Every JSON example in docs/protocol.md parses as the type its fence names.

use crate::gms::{ChatEvent, ChatResponse};
use crate::health::ChatServerHealth;
use crate::push::PushNotification;
use crate::relay_api::{
    CapturedPush, ChatHandover, ClientFrame, ErrorBody, Identity, OfficeHours,
    PushSubscriptionBody, RegisterSession, RelayStatus, ResumeClaim, ResumeLink, ServerFrame,
    SessionRegistered, SurveyAnswer, WebPushPayload,
};

const PROTOCOL_MD: &str = include_str!("../../../docs/protocol.md");

fn check(kind: &str, body: &str) -> Result<(), String> {
    fn typed<T: serde::de::DeserializeOwned>(body: &str) -> Result<(), String> {
        serde_json::from_str::<T>(body).map(drop).map_err(|e| e.to_string())
    }
    match kind {
        "ClientFrame" => match serde_json::from_str::<ClientFrame>(body) {
            Ok(ClientFrame::Unknown) => Err("parsed as an unknown frame".into()),
            other => other.map(drop).map_err(|e| e.to_string()),
        },
        "ServerFrame" => match serde_json::from_str::<ServerFrame>(body) {
            Ok(ServerFrame::Unknown) => Err("parsed as an unknown frame".into()),
            other => other.map(drop).map_err(|e| e.to_string()),
        },
        "RegisterSession" => typed::<RegisterSession>(body),
        "SessionRegistered" => typed::<SessionRegistered>(body),
        "PushSubscriptionBody" => typed::<PushSubscriptionBody>(body),
        "WebPushPayload" => typed::<WebPushPayload>(body),
        "RelayStatus" => typed::<RelayStatus>(body),
        "ErrorBody" => typed::<ErrorBody>(body),
        "CapturedPush" => typed::<CapturedPush>(body),
        "Identity" => typed::<Identity>(body),
        "ChatHandover" => typed::<ChatHandover>(body),
        "ResumeClaim" => typed::<ResumeClaim>(body),
        "ResumeLink" => typed::<ResumeLink>(body),
        "OfficeHours" => typed::<OfficeHours>(body),
        "SurveyAnswer" => typed::<SurveyAnswer>(body),
        "ChatResponse" => typed::<ChatResponse>(body),
        "ChatEvent" => typed::<ChatEvent>(body),
        "ChatStarted" => {
            typed::<crate::proxy::ChatStarted>(body)?;
            // The widget reads it with its own codec: it must read it too.
            crate::json::from_str::<crate::proxy::ChatStarted>(body)
                .map(drop)
                .ok_or_else(|| "the widget's reader refuses it".to_owned())
        }
        "PushNotification" => {
            let push = PushNotification::parse(body.as_bytes()).map_err(|e| e.to_string())?;
            push.chat_id.map(drop).ok_or_else(|| "no chat id found".to_owned())
        }
        "ChatServerHealth" => {
            ChatServerHealth::parse(body.as_bytes()).map(drop).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown example type {other:?}")),
    }
}

#[test]
fn every_example_in_protocol_md_parses() {
    let mut lines = PROTOCOL_MD.lines();
    let mut checked = 0;
    let mut failures = Vec::new();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim().strip_prefix("```json") else { continue };
        let kind = info.trim();
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let body = body.join("\n");
        if kind.is_empty() {
            failures.push(format!("a json example without a type name:\n{body}"));
            continue;
        }
        if let Err(e) = check(kind, &body) {
            failures.push(format!("{kind}: {e}\n{body}"));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 15, "only {checked} examples found");
}

#[test]
fn frames_roundtrip_and_unknown_frames_are_tolerated() {
    let frame: ServerFrame =
        serde_json::from_str(r#"{"type":"tokens","chatId":"C","alias":"118","extra":1}"#)
            .expect("parses");
    assert_eq!(frame, ServerFrame::Tokens { chat_id: "C".into(), alias: "118".into() });
    assert_eq!(frame.chat_id(), Some("C"));
    let back = serde_json::to_string(&frame).expect("serialises");
    assert_eq!(back, r#"{"type":"tokens","chatId":"C","alias":"118"}"#);
    let unknown: ServerFrame =
        serde_json::from_str(r#"{"type":"presence","x":1}"#).expect("tolerated");
    assert_eq!(unknown, ServerFrame::Unknown);
    let client: ClientFrame = serde_json::from_str(r#"{"type":"hello"}"#).expect("tolerated");
    assert_eq!(client, ClientFrame::Unknown);
    assert!(
        serde_json::from_str::<ClientFrame>(r#"{"chatId":"C"}"#).is_err(),
        "a frame needs a type"
    );
}

#[test]
fn every_server_frame_reads_back_as_written_and_a_missing_field_is_an_error() {
    use crate::gms::{ChatEvent, EventType, Party};
    let event = ChatEvent::new(3, EventType::Message, Party::default(), 7);
    let frames = [
        ServerFrame::Subscribed { chat_id: "C".into(), position: 3 },
        ServerFrame::Events { chat_id: "C".into(), messages: vec![event], next_position: Some(4) },
        ServerFrame::Events { chat_id: "C".into(), messages: vec![], next_position: None },
        ServerFrame::Changed { chat_id: "C".into() },
        ServerFrame::Tokens { chat_id: "C".into(), alias: "118".into() },
        ServerFrame::Ended { chat_id: "C".into() },
        ServerFrame::Wait { chat_id: "C".into(), seconds: Some(240) },
        ServerFrame::Wait { chat_id: "C".into(), seconds: None },
        ServerFrame::Error { code: "bad_token".into(), message: "no".into() },
    ];
    for frame in frames {
        let json = serde_json::to_string(&frame).expect("serialises");
        assert_eq!(serde_json::from_str::<ServerFrame>(&json).ok(), Some(frame), "{json}");
    }
    for broken in [
        r#"{"type":"subscribed","chatId":"C"}"#,
        r#"{"type":"events","chatId":"C"}"#,
        r#"{"type":"tokens","alias":"118"}"#,
        r#"{"type":"error","code":"x"}"#,
        r#"{"type":"wait","seconds":240}"#,
        r#"{"chatId":"C"}"#,
        r#"{"type":7}"#,
        r#"[]"#,
    ] {
        assert!(serde_json::from_str::<ServerFrame>(broken).is_err(), "{broken}");
    }
}

#[test]
fn a_registration_without_capture_parses_and_only_a_capture_is_written() {
    let older = r#"{"service":"s","chatId":"c","userId":"u","secureKey":"k","alias":"117"}"#;
    let register: RegisterSession = serde_json::from_str(older).expect("parses");
    assert!(!register.capture);
    assert_eq!(serde_json::to_string(&register).expect("writes"), older, "false is not written");
    let asked: RegisterSession =
        serde_json::from_str(&older.replace('}', r#","capture":true}"#)).expect("parses");
    assert!(asked.capture);
    assert!(serde_json::to_string(&asked).expect("writes").ends_with(r#""capture":true}"#));
}
