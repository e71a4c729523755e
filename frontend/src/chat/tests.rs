use shared::gms::{ChatEvent, EventType, FileLimits, Party};
use shared::visitor::FileRefusal;

use super::{
    Line, Segment, day_starts, file_refusal, human_size, initials, line, run_starts, safe_url,
    segments, survey_html, transcript_text, validate_prechat,
};
use crate::texts::{EN, Texts};

fn german() -> &'static Texts {
    crate::texts::every_language().into_iter().find(|t| t.lang == "de").expect("German")
}

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

#[test]
fn lines_render_text_as_text_and_links_only_for_http() {
    let msg = line(&event(1, EventType::Message, party(2, "Ann"), "<b>hi</b>"), &EN);
    assert_eq!(
        msg,
        Some(Line::Message {
            mine: false,
            who: "Ann".into(),
            text: "<b>hi</b>".into(),
            rich: None
        })
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
        line(&event(1, EventType::ParticipantJoined, party(2, "Ann"), ""), german()),
        Some(Line::System("Ann ist dem Chat beigetreten".into()))
    );
    assert_eq!(validate_prechat("", "", german()), Err(("name", german().name_missing)));
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
        line(&theirs, german()),
        Some(Line::File { mine: false, text, .. }) if text == "Ann hat eine Datei gesendet: F2"
    ));
}

#[test]
fn uploads_are_checked_against_every_limit_before_sending() {
    // The machine judges (`FileRefusal::of`); the widget words its reason.
    let check_upload = |limits: &FileLimits, name: &str, size: u64, t: &Texts| {
        FileRefusal::of(limits, name, size).map_or(Ok(()), |refusal| Err(file_refusal(&refusal, t)))
    };
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
fn urls_in_text_become_links_and_nothing_else_does() {
    let text = |t: &str| Segment::Text(t.to_owned());
    let link = |t: &str| Segment::Link(t.to_owned());
    assert_eq!(
        segments("See https://example.com/a?b=1. Thanks"),
        [text("See "), link("https://example.com/a?b=1"), text(". Thanks")]
    );
    assert_eq!(segments("(http://x.org)"), [text("(http://x.org)")], "a parenthesis before it");
    assert_eq!(segments("go to http://x.org)"), [text("go to "), link("http://x.org"), text(")")]);
    for hostile in [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "<a href=\"https://evil\">x</a>",
        "\u{202e}https://example.com",
        "https://example.com/\u{202e}gpj.exe",
        "https:",
        "",
    ] {
        assert!(
            segments(hostile).iter().all(|s| matches!(s, Segment::Text(_))),
            "{hostile:?} became a link: {:?}",
            segments(hostile)
        );
    }
    assert_eq!(segments("a\nhttps://b.c d"), [text("a\n"), link("https://b.c"), text(" d")]);
}

#[test]
fn the_transcript_file_names_who_said_what_and_when() {
    let mut events = vec![
        event(1, EventType::ParticipantJoined, party(1, "Jane"), ""),
        event(2, EventType::ParticipantJoined, party(2, "Ann"), ""),
        event(3, EventType::Message, party(2, "Ann"), "Hello"),
        event(4, EventType::TypingStarted, party(1, "Jane"), ""),
        event(5, EventType::Message, party(1, "Jane"), "Hi <b>"),
    ];
    events[2].utc_time = Some(60_000);
    let text = transcript_text(&events, &EN, |ms| format!("t{ms}"));
    assert_eq!(text, "[t0] Ann joined the chat\n[t60000] Ann: Hello\n[t0] You: Hi <b>\n");
}

#[test]
fn a_run_of_lines_by_one_speaker_names_them_once() {
    let said = |mine: bool, who: &str| Line::Message {
        mine,
        who: who.into(),
        text: "x".into(),
        rich: None,
    };
    let lines = [
        said(false, "Ann"),
        said(false, "Ann"),
        said(true, "Jane"),
        Line::System("Bob joined the chat".into()),
        said(false, "Ann"),
        said(false, "Bob"),
        said(false, "Bob"),
    ];
    assert_eq!(run_starts(&lines), [true, false, true, true, true, true, false]);
    assert_eq!(initials("Ann Lee"), "AL");
    assert_eq!(initials("ann"), "a", "capitalized by the avatar's style");
    assert_eq!(initials("  "), "");
    assert_eq!(initials("Émile de la Tour"), "Éd");
}

#[test]
fn a_divider_announces_each_new_day() {
    const DAY: i64 = 86_400_000;
    let day = |ms: i64| format!("day {}", ms / DAY);
    let times = [Some(10), Some(20), None, Some(DAY + 5), Some(DAY + 6), Some(3 * DAY)];
    let expected = [Some("day 0"), None, None, Some("day 1"), None, Some("day 3")];
    let starts = day_starts(&times, day);
    assert_eq!(starts.iter().map(Option::as_deref).collect::<Vec<_>>(), expected);
}

#[test]
fn the_survey_is_markup_with_every_text_escaped_and_only_an_http_link() {
    let stars =
        survey_html(&EN, false, true, "https://surveys.example.com/?c=\"><script>x</script>");
    assert_eq!(stars.matches("data-testid=\"survey-choice\"").count(), 5);
    assert!(stars.contains("aria-label=\"4 of 5\""));
    assert!(stars.contains("Send and end chat") && stars.contains("End without rating"));
    assert!(stars.contains(
        "href=\"https://surveys.example.com/?c=&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""
    ));
    assert!(!stars.contains("<script"), "{stars}");
    let thumbs = survey_html(&EN, true, false, "javascript:alert(1)");
    assert_eq!(thumbs.matches("name=\"rating\"").count(), 2);
    assert!(thumbs.contains("value=\"1\"") && thumbs.contains("value=\"0\""));
    assert!(thumbs.contains("Send rating") && thumbs.contains("No thanks"));
    assert!(!thumbs.contains("survey-link"), "not an http(s) link: none");
    // A translation's quote stays text.
    let german = survey_html(german(), false, false, "");
    assert!(german.contains("Wie war Ihr Chat?"));
}
