use shared::gms::{ChatEvent, ChatResponse, Credentials, EventType, FileLimits, Party};

use super::{ChatState, Line, check_upload, human_size, line, safe_url, validate_prechat};
use crate::texts::{DE, EN};

fn party(id: i64, nickname: &str) -> Party {
    Party {
        nickname: nickname.into(),
        participant_id: id,
        party_type: if id == 1 { "Client" } else { "Agent" }.into(),
    }
}

fn event(index: u64, kind: EventType, from: Party, text: &str) -> ChatEvent {
    let mut e = ChatEvent::new(index, kind, from, 0);
    e.text = Some(text.to_owned());
    e
}

fn state() -> ChatState {
    let credentials = Credentials {
        chat_id: "c".into(),
        user_id: "u".into(),
        secure_key: "k".into(),
        alias: "117".into(),
    };
    ChatState::new("svc", credentials)
}

#[test]
fn events_apply_once_in_order_and_a_gap_asks_for_a_refresh() {
    let mut chat = state();
    let applied = chat.apply_events([
        event(2, EventType::Message, party(2, "Ann"), "b"),
        event(1, EventType::Message, party(2, "Ann"), "a"),
    ]);
    assert_eq!((applied.fresh, applied.gap), (2, None));
    let again = chat.apply_events([event(2, EventType::Message, party(2, "Ann"), "b")]);
    assert_eq!(again.fresh, 0);
    let gap = chat.apply_events([event(5, EventType::Message, party(2, "Ann"), "e")]);
    assert!(gap.gap.is_some());
    assert_eq!(chat.next_position, 3);
    assert_eq!(chat.events.len(), 2);
}

#[test]
fn responses_update_the_alias_and_the_end() {
    let mut chat = state();
    let response: ChatResponse = serde_json::from_str(
        r#"{"statusCode":0,"alias":"118","chatEnded":true,"nextPosition":2,
            "messages":[{"from":{"nickname":"J","participantId":1,"type":"Client"},"index":1,"type":"ParticipantLeft"}]}"#,
    )
    .expect("parses");
    chat.apply_response(&response);
    assert_eq!(chat.credentials.alias, "118");
    assert!(chat.ended);
    let error: ChatResponse =
        serde_json::from_str(r#"{"statusCode":2,"alias":"999"}"#).expect("parses");
    chat.apply_response(&error);
    assert_eq!(chat.credentials.alias, "118", "error responses are not trusted");
    let ahead: ChatResponse =
        serde_json::from_str(r#"{"statusCode":0,"nextPosition":7}"#).expect("parses");
    assert!(chat.apply_response(&ahead).gap.is_some());
}

#[test]
fn the_cache_is_bounded() {
    let mut chat = state();
    chat.apply_events((1..=400).map(|i| event(i, EventType::Message, party(2, "Ann"), "x")));
    assert_eq!(chat.events.len(), super::CACHE_LIMIT);
    assert_eq!(chat.events[0].index, Some(101));
    assert_eq!(chat.next_position, 401);
}

#[test]
fn agent_typing_follows_the_latest_agent_event() {
    let mut chat = state();
    chat.apply_events([event(1, EventType::TypingStarted, party(2, "Ann"), "")]);
    assert_eq!(chat.agent_typing().as_deref(), Some("Ann"));
    chat.apply_events([event(2, EventType::Message, party(1, "Jane"), "hi")]);
    assert_eq!(
        chat.agent_typing().as_deref(),
        Some("Ann"),
        "the visitor's own events do not matter"
    );
    chat.apply_events([event(3, EventType::Message, party(2, "Ann"), "hello")]);
    assert_eq!(chat.agent_typing(), None);
}

#[test]
fn lines_render_text_as_text_and_links_only_for_http() {
    let msg = line(&event(1, EventType::Message, party(2, "Ann"), "<b>hi</b>"), &EN);
    assert_eq!(
        msg,
        Some(Line::Message { mine: false, who: "Ann".into(), text: "<b>hi</b>".into() })
    );
    let js = line(&event(2, EventType::PushUrl, party(2, "Ann"), "javascript:alert(1)"), &EN);
    assert!(matches!(js, Some(Line::Link { url: None, .. })));
    assert_eq!(safe_url("https://example.com/a?b"), Some("https://example.com/a?b".into()));
    assert_eq!(safe_url("HTTP://EXAMPLE.COM"), Some("HTTP://EXAMPLE.COM".into()));
    assert_eq!(safe_url("https://"), None);
    assert_eq!(safe_url("https://a b"), None);
    assert_eq!(line(&event(3, EventType::TypingStarted, party(2, "Ann"), ""), &EN), None);
    assert_eq!(line(&event(4, EventType::ParticipantJoined, party(1, "Jane"), ""), &EN), None);
    assert_eq!(
        line(&event(5, EventType::Other("Custom".into()), party(2, "Ann"), ""), &EN),
        Some(Line::System("Ann: Custom".into()))
    );
}

#[test]
fn prechat_validation_explains_what_is_wrong() {
    assert_eq!(validate_prechat("  ", "", &EN).map_err(|e| e.0), Err("name"));
    assert_eq!(validate_prechat("Jane", "jane@", &EN).map_err(|e| e.0), Err("email"));
    assert_eq!(validate_prechat("Jane", "jane@example", &EN).map_err(|e| e.0), Err("email"));
    assert_eq!(validate_prechat("Jane", "a b@example.com", &EN).map_err(|e| e.0), Err("email"));
    assert!(validate_prechat("Jane", "", &EN).is_ok());
    assert!(validate_prechat("Jane", "jane@example.com", &EN).is_ok());
}

#[test]
fn system_lines_and_form_messages_speak_the_configured_language() {
    assert_eq!(
        line(&event(1, EventType::ParticipantJoined, party(2, "Ann"), ""), &DE),
        Some(Line::System("Ann ist dem Chat beigetreten".into()))
    );
    assert_eq!(validate_prechat("", "", &DE), Err(("name", DE.name_missing)));
}

#[test]
fn a_file_line_names_the_sender_and_keeps_the_file_id() {
    let mut sent = event(6, EventType::FileUploaded, party(1, "Jane"), "F1D");
    sent.user_data.insert("file-name".into(), "invoice.pdf".into());
    assert_eq!(
        line(&sent, &EN),
        Some(Line::File {
            mine: true,
            text: "You sent a file: invoice.pdf".into(),
            file_id: Some("F1D".into()),
            name: "invoice.pdf".into(),
        })
    );
    let theirs = event(7, EventType::FileUploaded, party(2, "Ann"), "F2");
    assert!(matches!(
        line(&theirs, &DE),
        Some(Line::File { mine: false, text, .. }) if text == "Ann hat eine Datei gesendet: F2"
    ));
}

#[test]
fn uploads_are_checked_against_every_limit_before_sending() {
    let limits = FileLimits {
        upload_max_files: Some(3),
        upload_max_file_size: Some(2 << 20),
        upload_max_total_size: Some(5 << 20),
        used_upload_max_files: Some(1),
        used_upload_max_total_size: Some(4 << 20),
        upload_file_types: vec!["png".into(), "pdf".into()],
        ..FileLimits::default()
    };
    assert_eq!(check_upload(&limits, "a.PNG", 1000, &EN), Ok(()));
    // 1 MB left of the total, though a single file may have 2 MB.
    assert_eq!(
        check_upload(&limits, "big.pdf", (1 << 20) + 1, &EN),
        Err("big.pdf is too large: at most 1 MB can be sent.".into())
    );
    assert_eq!(
        check_upload(&limits, "run.exe", 10, &EN),
        Err("This type of file cannot be sent. Allowed: png, pdf.".into())
    );
    let full = FileLimits { used_upload_max_files: Some(3), ..limits };
    assert_eq!(check_upload(&full, "a.png", 10, &EN), Err(EN.too_many_files.into()));
    assert_eq!(check_upload(&FileLimits::default(), "any", u64::MAX, &EN), Ok(()));
    assert_eq!(
        (human_size(512), human_size(20 << 10), human_size(5 << 20)),
        ("512 B".into(), "20 KB".into(), "5 MB".into())
    );
}

#[test]
fn agent_lines_after_the_last_look_are_unread() {
    let mut chat = state();
    chat.apply_events([
        event(1, EventType::ParticipantJoined, party(2, "Ann"), ""),
        event(2, EventType::Message, party(2, "Ann"), "hello"),
    ]);
    assert_eq!(chat.unread(), 1);
    chat.mark_seen();
    assert_eq!(chat.unread(), 0);
    chat.apply_events([
        event(3, EventType::Message, party(1, "Jane"), "mine"),
        event(4, EventType::TypingStarted, party(2, "Ann"), ""),
        event(5, EventType::PushUrl, party(2, "Ann"), "https://example.com"),
        event(6, EventType::Message, party(2, "Ann"), "and this"),
    ]);
    assert_eq!(chat.unread(), 2);
    let older_cache = ChatState { seen: None, ..chat };
    assert_eq!(older_cache.unread(), 0);
}
