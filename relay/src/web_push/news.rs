//! Which transcript events make a Web Push notification, and what it says: pure, so the
//! choice is tested without a push service.

use shared::gms::{ChatEvent, EventType};
use shared::relay_api::{NotificationTexts, WebPushPayload};

use crate::store::WebPushSubscription;

/// Characters of the agent's line a preview shows at most.
pub(crate) const PREVIEW_CHARS: usize = 120;

/// What reached a chat.
#[derive(Debug, Clone, Copy)]
pub(crate) enum News<'a> {
    /// Transcript events the visitor has not been notified of.
    Events(&'a [ChatEvent]),
    /// The chat is over.
    Ended,
    /// No agent yet, and GMS expects the wait to last this many minutes.
    Wait(u64),
}

/// The notification for `news`: the last agent line, file or link among the events, or the
/// end; `None` when nothing the visitor would want to hear of arrived (typing, their own
/// lines, notices). `preview` puts the line's first words (or the file's name) in the body.
pub(crate) fn notification(
    chat_id: &str,
    news: News<'_>,
    subscription: &WebPushSubscription,
    preview: bool,
) -> Option<WebPushPayload> {
    let texts = &subscription.texts;
    let (title, body) = match news {
        News::Ended => (or_default(&texts.ended, "The chat has ended").to_owned(), String::new()),
        News::Wait(minutes) => {
            let template = or_default(&texts.wait, "An agent will answer in about {minutes} min");
            (template.replace("{minutes}", &minutes.to_string()), String::new())
        }
        News::Events(events) => {
            let line = events.iter().rev().find(|event| {
                !event.from.is_client()
                    && matches!(
                        event.event_type,
                        EventType::Message | EventType::FileUploaded | EventType::PushUrl
                    )
            })?;
            let agent = match line.from.nickname.trim() {
                "" => or_default(&texts.agent, "The agent"),
                name => name,
            };
            let (template, fallback, shown) = match line.event_type {
                EventType::FileUploaded => (
                    &texts.file,
                    "{agent} sent a file",
                    line.user_data.get("file-name").or(line.text.as_ref()),
                ),
                _ => (&texts.message, "{agent} replied", line.text.as_ref()),
            };
            let title = or_default(template, fallback).replace("{agent}", agent);
            let body = match shown {
                Some(text) if preview => shortened(text, PREVIEW_CHARS),
                _ => String::new(),
            };
            (title, body)
        }
    };
    Some(WebPushPayload {
        chat_id: chat_id.to_owned(),
        title: shortened(&title, PREVIEW_CHARS),
        body,
        url: subscription.page.clone(),
    })
}

/// The page with a resume token in its fragment, `<page>#gms-chat-resume=<token>`, which
/// the widget's loader answers by opening the chat (adopting it if this browser lost it).
/// The page is kept without a fragment, so this is its only one; a fragment never reaches
/// the site's server.
pub(crate) fn resume_url(page: &str, token: &str) -> String {
    format!("{page}#{}{token}", shared::relay_api::RESUME_FRAGMENT)
}

/// The same payload without its preview: what is sent when a push service finds the
/// payload too large.
pub(crate) fn without_preview(payload: &WebPushPayload) -> WebPushPayload {
    WebPushPayload { body: String::new(), ..payload.clone() }
}

fn or_default<'a>(text: &'a str, default: &'a str) -> &'a str {
    if text.trim().is_empty() { default } else { text }
}

/// `text` on one line, cut to `limit` characters with an ellipsis.
fn shortened(text: &str, limit: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= limit {
        return line;
    }
    let mut cut: String = line.chars().take(limit - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Whether the titles a widget sent are short enough to store.
pub(crate) fn texts_fit(texts: &NotificationTexts) -> bool {
    [&texts.message, &texts.file, &texts.ended, &texts.agent, &texts.wait]
        .iter()
        .all(|text| text.chars().count() <= PREVIEW_CHARS)
}

#[cfg(test)]
mod tests {
    use shared::gms::{ChatEvent, EventType, Party};
    use shared::relay_api::NotificationTexts;

    use super::{News, notification, without_preview};
    use crate::store::WebPushSubscription;

    fn subscription(texts: NotificationTexts) -> WebPushSubscription {
        WebPushSubscription {
            endpoint: "https://push.example/1".into(),
            p256dh: String::new(),
            auth: String::new(),
            page: Some("https://shop.example/help".into()),
            texts,
            since: 1,
        }
    }

    fn event(index: u64, event_type: EventType, party: &str, nickname: &str) -> ChatEvent {
        let from = Party { nickname: nickname.into(), participant_id: 2, party_type: party.into() };
        ChatEvent::new(index, event_type, from, 0)
    }

    fn line(index: u64, party: &str, text: &str) -> ChatEvent {
        ChatEvent { text: Some(text.into()), ..event(index, EventType::Message, party, "Ann") }
    }

    #[test]
    fn a_long_wait_is_said_in_the_visitors_words_or_in_english() {
        let german = NotificationTexts {
            wait: "Ein Mitarbeiter antwortet in etwa {minutes} Min.".into(),
            ..NotificationTexts::default()
        };
        let shown = notification("C1", News::Wait(12), &subscription(german), true).expect("said");
        assert_eq!(
            (shown.title.as_str(), shown.body.as_str()),
            ("Ein Mitarbeiter antwortet in etwa 12 Min.", "")
        );
        let english =
            notification("C1", News::Wait(12), &subscription(NotificationTexts::default()), true);
        assert_eq!(
            english.map(|n| n.title),
            Some("An agent will answer in about 12 min".to_owned())
        );
    }

    #[test]
    fn the_last_agent_line_is_the_notification_in_the_visitors_words() {
        let german = NotificationTexts {
            message: "{agent} hat geantwortet".into(),
            ..NotificationTexts::default()
        };
        let events = [
            line(3, "Agent", "Hello"),
            line(4, "Agent", "How can I\n help?"),
            line(5, "Client", "me"),
            event(6, EventType::TypingStarted, "Agent", "Ann"),
        ];
        let shown = notification("C1", News::Events(&events), &subscription(german), true)
            .expect("an agent line");
        assert_eq!(shown.title, "Ann hat geantwortet");
        assert_eq!(shown.body, "How can I help?", "one line");
        assert_eq!(shown.chat_id, "C1");
        assert_eq!(shown.url.as_deref(), Some("https://shop.example/help"));
    }

    #[test]
    fn the_resume_url_is_the_page_with_the_token_in_its_fragment() {
        assert_eq!(
            super::resume_url("https://shop.example/help", "C1.bm9uY2U.bWFj"),
            "https://shop.example/help#gms-chat-resume=C1.bm9uY2U.bWFj"
        );
    }

    #[test]
    fn without_preview_no_chat_text_leaves_the_relay() {
        let events = [line(3, "Agent", "Your order 4711 ships today")];
        let sub = subscription(NotificationTexts::default());
        let shown = notification("C1", News::Events(&events), &sub, false).expect("a line");
        assert_eq!((shown.title.as_str(), shown.body.as_str()), ("Ann replied", ""));
        let previewed = notification("C1", News::Events(&events), &sub, true).expect("a line");
        assert_eq!(without_preview(&previewed), shown);
    }

    #[test]
    fn typing_notices_and_the_visitors_own_lines_notify_nothing() {
        let events = [
            line(3, "Client", "hello?"),
            event(4, EventType::TypingStarted, "Agent", "Ann"),
            event(5, EventType::ParticipantJoined, "Agent", "Ann"),
            event(6, EventType::Notice, "External", ""),
        ];
        let sub = subscription(NotificationTexts::default());
        assert_eq!(notification("C1", News::Events(&events), &sub, true), None);
        assert_eq!(notification("C1", News::Events(&[]), &sub, true), None);
    }

    #[test]
    fn files_name_the_file_and_the_end_has_its_own_title() {
        let mut file = event(7, EventType::FileUploaded, "Agent", "");
        file.user_data.insert("file-name".into(), "invoice.pdf".into());
        let sub = subscription(NotificationTexts::default());
        let shown = notification("C1", News::Events(&[file]), &sub, true).expect("a file");
        assert_eq!(
            (shown.title.as_str(), shown.body.as_str()),
            ("The agent sent a file", "invoice.pdf")
        );
        let end = notification("C1", News::Ended, &sub, true).expect("the end");
        assert_eq!((end.title.as_str(), end.body.as_str()), ("The chat has ended", ""));
    }

    #[test]
    fn long_lines_are_cut_to_the_preview_length() {
        let long = "word ".repeat(100);
        let events = [line(3, "Agent", &long)];
        let sub = subscription(NotificationTexts::default());
        let shown = notification("C1", News::Events(&events), &sub, true).expect("a line");
        assert_eq!(shown.body.chars().count(), super::PREVIEW_CHARS);
        assert!(shown.body.ends_with("word…"), "{}", shown.body);
    }
}
