//! Everything the widget says. English is built in; the other languages are JSON files
//! (`frontend/texts/<lang>.json`, served next to the wasm), which the loader fetches with
//! the wasm only when the page's `language` asks for one, so no visitor downloads the
//! five they do not read. Templates name their values in braces (`{who}`) so translators
//! can move them.

/// Declares `Texts` with one `&'static str` per name, and how a language file's pairs
/// fill it (a field a file lacks makes it unreadable).
macro_rules! texts {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        /// One language's texts.
        #[derive(Debug, PartialEq, Eq)]
        pub struct Texts {
            $($(#[$doc])* pub $field: &'static str,)*
        }

        impl Texts {
            fn from_pairs(pairs: &[(&'static str, &'static str)]) -> Option<Texts> {
                Some(Texts { $($field: value_of(pairs, stringify!($field))?,)* })
            }
        }
    };
}

fn value_of(pairs: &[(&'static str, &'static str)], name: &str) -> Option<&'static str> {
    pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| *value)
}

texts! {
    /// The primary language subtag, set as the widget's `lang` attribute.
    lang,
    /// The writing direction, set as the widget's `dir` attribute: `ltr` or `rtl`.
    dir,
    open_chat,
    close_chat,
    /// `{count}`: the launcher's unread badge, spoken.
    unread,
    connecting,
    connected,
    reconnecting,
    offline,
    intro,
    waiting,
    your_name,
    email,
    subject,
    optional,
    start_chat,
    starting,
    name_missing,
    name_too_long,
    email_invalid,
    conversation,
    you,
    sending,
    retry,
    /// `{who}`.
    is_typing,
    chat_ended,
    new_chat,
    message,
    placeholder,
    end_chat,
    send,
    /// `{who}`.
    joined,
    you_left,
    /// `{who}`.
    left,
    /// `{who}`, `{name}`.
    renamed,
    /// `{who}`, `{name}`.
    file_sent,
    /// `{who}`.
    file_deleted,
    /// `{name}`.
    you_sent_file,
    attach_file,
    sending_file,
    download,
    save_transcript,
    alerts_off,
    alerts_on,
    notify_offer,
    notify_busy,
    notify_on,
    notify_off,
    notify_failed,
    /// The Web Push titles. `{agent}`.
    push_message,
    /// `{agent}`.
    push_file,
    push_ended,
    push_agent,
    too_many_files,
    /// `{name}`, `{max}`.
    file_too_big,
    /// `{types}`.
    file_type_not_allowed,
    /// `{reason}`.
    file_failed,
    idle_alert,
    idle_close,
    /// `{reason}`.
    could_not_start,
    /// `{reason}`.
    refused,
    not_sent_offline,
    no_live_updates,
    unreachable,
    /// `{status}`.
    http_error,
    keep_link,
    link_intro,
    copy_link,
    link_copied,
    email_link,
    email_subject,
    link_failed,
    resume_failed,
    masked,
    /// A part of the widget that loads on first use (issue 37) could not be fetched.
    part_unavailable,
    /// The composer's emoji picker button.
    emoji,
    /// The emoji picker's search field.
    emoji_search,
    /// The pre-chat form while the office is open.
    hours_open,
    /// `{when}`: the next opening in the visitor's time; chats may start while closed.
    hours_closed_write,
    /// Closed, chats may start, and no opening is known.
    hours_closed_later,
    /// `{when}`: closed, and no chat starts until then (`closedMode = refuse`).
    hours_closed,
    /// Closed, no chat starts, and no opening is known.
    hours_closed_now,
    /// The Web Push offer of a chat started while the office is closed: the reason first.
    notify_offer_closed,
    /// `{minutes}`: GMS's estimated wait, while no agent has joined.
    wait_minutes,
    /// The survey's question.
    survey_question,
    /// `{n}`: a star, spoken.
    survey_star,
    survey_good,
    survey_bad,
    survey_comment,
    /// The site's own survey (`surveyUrl`).
    survey_link,
    survey_send,
    /// Sending the rating ends the chat (the visitor asked to end).
    survey_send_end,
    survey_skip,
    survey_skip_end,
}

/// Fills a template's `{key}` placeholders.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

/// The texts of a language file the loader fetched (`texts/<lang>.json`); English when
/// there is none (an English page) or it does not read, which the console is told.
pub fn from_language_file(json: &str) -> &'static Texts {
    if json.is_empty() {
        return &EN;
    }
    match parse(Box::leak(json.to_owned().into_boxed_str())) {
        Some(texts) => Box::leak(Box::new(texts)),
        None => {
            leptos::logging::warn!("gms-chat: the language file does not read: English instead");
            &EN
        }
    }
}

/// A language file: a JSON object of texts, none with an escape (the unit tests keep the
/// files so), read by splitting at its quotes, so every text borrows from the file (leaked
/// once) as the `&'static str` a `Texts` holds. `shared::json` would read escapes too, but
/// as owned copies of every text.
fn parse(json: &'static str) -> Option<Texts> {
    let body = json.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut parts = body.split('"');
    let mut pairs = Vec::new();
    if !parts.next()?.trim().is_empty() {
        return None;
    }
    while let Some(key) = parts.next() {
        let (colon, value) = (parts.next()?, parts.next()?);
        if colon.trim() != ":" || value.contains('\\') {
            return None;
        }
        pairs.push((key, value));
        match parts.next().map(str::trim) {
            Some(",") => {}
            Some("") => break,
            _ => return None,
        }
    }
    Texts::from_pairs(&pairs)
}

/// Every language the widget speaks: English, and the files in `frontend/texts`.
#[cfg(test)]
pub(crate) fn every_language() -> Vec<&'static Texts> {
    let files = [
        include_str!("../texts/de.json"),
        include_str!("../texts/fr.json"),
        include_str!("../texts/es.json"),
        include_str!("../texts/nl.json"),
        include_str!("../texts/ar.json"),
        include_str!("../texts/he.json"),
    ];
    let mut all = vec![&EN];
    all.extend(
        files.map(|json| &*Box::leak(Box::new(parse(json).expect("a language file reads")))),
    );
    all
}

pub const EN: Texts = Texts {
    lang: "en",
    dir: "ltr",
    open_chat: "Chat with us",
    close_chat: "Close chat",
    unread: "{count} new",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    intro: "Ask us anything. You can close this page and come back later: your conversation stays here.",
    waiting: "We've got your message. An agent will reply here — you can close this page and come back.",
    your_name: "Your name",
    email: "E-mail",
    subject: "Subject",
    optional: "(optional)",
    start_chat: "Start chat",
    starting: "Starting…",
    name_missing: "Please tell us your name.",
    name_too_long: "Please use at most 64 characters for your name.",
    email_invalid: "Please enter a valid e-mail address, or leave it empty.",
    conversation: "Conversation",
    you: "You",
    sending: "Sending…",
    retry: "Retry",
    is_typing: "{who} is typing…",
    chat_ended: "This chat has ended.",
    new_chat: "Start a new chat",
    message: "Message",
    placeholder: "Type a message… (Enter sends, Shift+Enter for a new line)",
    end_chat: "End chat",
    send: "Send",
    joined: "{who} joined the chat",
    you_left: "You left the chat",
    left: "{who} left the chat",
    renamed: "{who} is now called {name}",
    file_sent: "{who} sent a file: {name}",
    file_deleted: "{who} deleted a file",
    you_sent_file: "You sent a file: {name}",
    attach_file: "Attach a file",
    sending_file: "Sending the file…",
    download: "Download",
    save_transcript: "Download transcript",
    alerts_off: "Alert me to replies",
    alerts_on: "Alerts on",
    notify_offer: "Notify me when the agent replies",
    notify_busy: "Turning on notifications…",
    notify_on: "We'll notify you when the agent replies.",
    notify_off: "Turn off",
    notify_failed: "Notifications could not be turned on.",
    push_message: "{agent} replied",
    push_file: "{agent} sent a file",
    push_ended: "Your chat has ended",
    push_agent: "The agent",
    too_many_files: "No more files can be sent in this chat.",
    file_too_big: "{name} is too large: at most {max} can be sent.",
    file_type_not_allowed: "This type of file cannot be sent. Allowed: {types}.",
    file_failed: "The file could not be sent: {reason}",
    idle_alert: "This chat will close soon due to inactivity",
    idle_close: "This chat was closed due to inactivity",
    could_not_start: "The chat could not start: {reason}",
    refused: "The chat service refused: {reason}",
    not_sent_offline: "Not sent: no connection.",
    no_live_updates: "Live updates are not available on this page.",
    unreachable: "Cannot reach the chat service. Check your connection.",
    http_error: "The chat service answered with error {status}.",
    keep_link: "Keep a link to this conversation",
    link_intro: "Open this link on any device to come back to this conversation. Anyone who has it can read it: keep it to yourself.",
    copy_link: "Copy link",
    link_copied: "Copied",
    email_link: "Email it to me",
    email_subject: "Our conversation",
    link_failed: "The link could not be made. Try again.",
    emoji: "Emoji",
    emoji_search: "Search emoji",
    part_unavailable: "Part of the chat could not be loaded (are you offline?). It loads again when you next use it.",
    masked: "We hid what looked like a card number or other private data (•••) before sending. Never share card details in chat.",
    hours_open: "We're open now.",
    hours_closed_write: "We're closed; we answer from {when} (your time). You can still write now.",
    hours_closed_later: "We're closed right now; you can still write, and we answer once we open.",
    hours_closed: "We're closed; we open {when} (your time).",
    hours_closed_now: "We're closed right now. Please come back later.",
    notify_offer_closed: "We answer once we open: notify me when the agent replies",
    wait_minutes: "An agent will answer in about {minutes} min.",
    survey_question: "How was your chat?",
    survey_star: "{n} of 5",
    survey_good: "Good",
    survey_bad: "Not good",
    survey_comment: "Anything to add?",
    survey_link: "Tell us more in our survey",
    survey_send: "Send rating",
    survey_send_end: "Send and end chat",
    survey_skip: "No thanks",
    survey_skip_end: "End without rating",
    resume_failed: "This conversation link no longer works: the conversation has ended or the link was withdrawn.",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(template: &str) -> Vec<&str> {
        let mut found: Vec<&str> = template
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        found.sort_unstable();
        found
    }

    /// Every field of a `Texts`, by way of its Debug output, so a new field is covered
    /// without touching this test.
    fn fields(texts: &Texts) -> Vec<(String, String)> {
        let debug = format!("{texts:#?}");
        debug
            .lines()
            .filter_map(|line| {
                let (name, value) = line.trim().split_once(": ")?;
                let value = rust_escapes_as_chars(value.trim_end_matches(','));
                let value: String = serde_json::from_str(&value).ok()?;
                Some((name.to_owned(), value))
            })
            .collect()
    }

    /// Debug writes combining marks (Arabic vowel signs) as `\u{64b}`, which JSON does not
    /// read: they become the characters again.
    fn rust_escapes_as_chars(debug: &str) -> String {
        let mut out = String::new();
        let mut rest = debug;
        while let Some(at) = rest.find("\\u{") {
            out.push_str(&rest[..at]);
            let (hex, after) = rest[at + 3..].split_once('}').expect("closed escape");
            out.push(u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).expect("char"));
            rest = after;
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn every_language_fills_every_text_with_the_same_placeholders() {
        let english = fields(&EN);
        assert!(english.len() > 40, "{english:?}");
        for texts in every_language() {
            let translated = fields(texts);
            assert_eq!(translated.len(), english.len(), "{}", texts.lang);
            for ((name, en), (other_name, text)) in english.iter().zip(&translated) {
                assert_eq!(name, other_name);
                assert!(!text.trim().is_empty(), "{}.{name} is empty", texts.lang);
                assert_eq!(placeholders(en), placeholders(text), "{}.{name}", texts.lang);
            }
        }
    }

    #[test]
    fn a_language_file_that_does_not_read_gives_english() {
        assert_eq!(from_language_file("").lang, "en");
        assert_eq!(from_language_file("{\"lang\": \"de\"}").lang, "en", "fields missing");
        assert_eq!(from_language_file("not json").lang, "en");
        let escaped =
            include_str!("../texts/de.json").replacen("Chat schließen", "Chat \\\"zu\\\"", 1);
        assert_eq!(from_language_file(&escaped).lang, "en", "an escape is refused, not misread");
        let german = every_language().into_iter().find(|t| t.lang == "de").expect("German");
        let json = include_str!("../texts/de.json");
        assert_eq!(from_language_file(json), german);
        let languages: Vec<(&str, &str)> =
            every_language().iter().map(|t| (t.lang, t.dir)).collect();
        let expected = [
            ("en", "ltr"),
            ("de", "ltr"),
            ("fr", "ltr"),
            ("es", "ltr"),
            ("nl", "ltr"),
            ("ar", "rtl"),
            ("he", "rtl"),
        ];
        assert_eq!(languages, expected);
    }

    #[test]
    fn templates_are_filled_by_name() {
        assert_eq!(fill(EN.renamed, &[("who", "Ann"), ("name", "Anna")]), "Ann is now called Anna");
        let french = every_language().into_iter().find(|t| t.lang == "fr").expect("French");
        assert_eq!(fill(french.is_typing, &[("who", "Léa")]), "Léa est en train d'écrire…");
    }
}
