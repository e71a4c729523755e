//! What the visitor sees of a chat, in the widget's language: transcript lines, the
//! pre-chat form's checks, why the file limits refuse a file and the survey's markup. The chat state itself and
//! every decision about it live in `shared::visitor`.

use shared::gms::{ChatEvent, EventType};
use shared::relay_api::SurveyAnswer;
use shared::visitor::FileRefusal;

use crate::texts::{Texts, fill};

/// How a transcript event is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Chat text, from the visitor (`mine`) or someone else; `rich`: another's event
    /// attributes when they may hold rich content (`shared::rich`).
    Message { mine: bool, who: String, text: String, rich: Option<String> },
    /// A pushed link; `url` is only set for http and https, anything else shows as text.
    Link { mine: bool, who: String, text: String, url: Option<String> },
    /// A file in the chat: `text` says who sent which; `file_id` lets it be downloaded.
    File { mine: bool, text: String, file_id: Option<String>, name: String },
    /// A system line (joins, leaves, notices).
    System(String),
}

/// The line for an event, in the widget's language; typing and hidden notices have none.
pub fn line(event: &ChatEvent, t: &Texts) -> Option<Line> {
    let who = event.from.nickname.clone();
    let mine = event.from.is_client();
    let text = event.text.clone().unwrap_or_default();
    let about = |template: &str| fill(template, &[("who", &who)]);
    Some(match &event.event_type {
        EventType::Message => {
            let attributes = event.attributes.as_ref();
            let rich = attributes.filter(|a| !mine && shared::rich::may_be_rich(a)).cloned();
            Line::Message { mine, who, text, rich }
        }
        EventType::PushUrl => {
            let url = safe_url(&text);
            Line::Link { mine, who, text, url }
        }
        EventType::ParticipantJoined if mine => return None,
        EventType::ParticipantJoined => Line::System(about(t.joined)),
        EventType::ParticipantLeft if mine => Line::System(t.you_left.to_owned()),
        EventType::ParticipantLeft => Line::System(about(t.left)),
        EventType::NicknameUpdated => {
            Line::System(fill(t.renamed, &[("who", &who), ("name", &text)]))
        }
        EventType::FileUploaded => {
            let file_id = event.user_data.get("file-id").cloned().or(event.text.clone());
            let name = event.user_data.get("file-name").cloned().unwrap_or(text);
            let text = if mine {
                fill(t.you_sent_file, &[("name", &name)])
            } else {
                fill(t.file_sent, &[("who", &who), ("name", &name)])
            };
            Line::File { mine, text, file_id, name }
        }
        EventType::FileDeleted => Line::System(about(t.file_deleted)),
        EventType::IdleAlert | EventType::IdleClose if !text.is_empty() => Line::System(text),
        EventType::IdleAlert => Line::System(t.idle_alert.to_owned()),
        EventType::IdleClose => Line::System(t.idle_close.to_owned()),
        EventType::TypingStarted
        | EventType::TypingStopped
        | EventType::Notice
        | EventType::CustomNotice => {
            return None;
        }
        EventType::Other(kind) => Line::System(format!("{who}: {kind}")),
    })
}

/// The conversation as a plain-text file: one line per shown event, with its time (as
/// `time` words it) and who said it; typing and hidden notices are left out.
pub fn transcript_text(events: &[ChatEvent], t: &Texts, time: impl Fn(i64) -> String) -> String {
    let mut text = String::new();
    for event in events {
        let Some(shown) = line(event, t) else { continue };
        let when = event.utc_time.map(&time).map(|w| format!("[{w}] ")).unwrap_or_default();
        let body = match shown {
            Line::Message { mine, who, text, .. } | Line::Link { mine, who, text, .. } => {
                format!("{}: {text}", if mine { t.you } else { who.as_str() })
            }
            Line::File { text, .. } | Line::System(text) => text,
        };
        text.push_str(&when);
        text.push_str(&body);
        text.push('\n');
    }
    text
}

/// Who said a line, when it is someone's message or link.
fn speaker(line: &Line) -> Option<(bool, &str)> {
    match line {
        Line::Message { mine, who, .. } | Line::Link { mine, who, .. } => Some((*mine, who)),
        Line::File { .. } | Line::System(_) => None,
    }
}

/// For each line, whether it starts a run of lines by the same speaker: only the first of
/// a run shows the name (and, for others, the avatar).
pub fn run_starts(lines: &[Line]) -> Vec<bool> {
    let mut previous = None;
    lines
        .iter()
        .map(|line| {
            let who = speaker(line);
            let starts = who.is_none() || who != previous;
            previous = who;
            starts
        })
        .collect()
}

/// For each line's time, the day to announce before it: the first dated line's, and each
/// one whose day (as `day` words it) differs from the previous dated line's.
pub fn day_starts(times: &[Option<i64>], day: impl Fn(i64) -> String) -> Vec<Option<String>> {
    let mut previous: Option<String> = None;
    times
        .iter()
        .map(|at| {
            let today = day((*at)?);
            let new = previous.as_ref() != Some(&today);
            previous = Some(today.clone());
            new.then_some(today)
        })
        .collect()
}

/// Up to two initials of a name, for the avatar, as written: "Ann Lee" → "AL", "ann" → "a".
/// The avatar's style capitalizes them (`text-transform`, by the browser's own case rules):
/// `char::to_uppercase` would bring core's case table, 7 KB of the widget's first open.
pub fn initials(name: &str) -> String {
    name.split_whitespace().filter_map(|word| word.chars().next()).take(2).collect()
}

// The safe-link rule and plain text's links are `shared`'s, with the agents' formatting.
pub use shared::format::{Segment, safe_url, segments};

/// Checks the pre-chat form; `Err` carries the field and the message for the visitor.
pub fn validate_prechat(
    name: &str,
    email: &str,
    t: &'static Texts,
) -> Result<(), (&'static str, &'static str)> {
    if name.trim().is_empty() {
        return Err(("name", t.name_missing));
    }
    if name.trim().chars().count() > 64 {
        return Err(("name", t.name_too_long));
    }
    let email = email.trim();
    if !email.is_empty() {
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }) && !email.contains(char::is_whitespace);
        if !valid {
            return Err(("email", t.email_invalid));
        }
    }
    Ok(())
}

/// Why the chat's limits refuse a file (`FileRefusal::of` judged it), in the widget's
/// language.
pub fn file_refusal(refusal: &FileRefusal, t: &Texts) -> String {
    match refusal {
        FileRefusal::TooMany => t.too_many_files.to_owned(),
        FileRefusal::TooBig { name, max } => {
            fill(t.file_too_big, &[("name", name), ("max", &human_size(*max))])
        }
        FileRefusal::TypeNotAllowed(types) => {
            fill(t.file_type_not_allowed, &[("types", &types.join(", "))])
        }
    }
}

/// Bytes as a visitor reads them: `512 B`, `20 KB`, `2 MB` (powers of 1024, rounded down).
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MB", b >> 20),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests;

/// Appends `text` for HTML: what markup would read as markup is escaped.
fn push_escaped(html: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
}

/// The survey's form as markup: one element's `innerHTML` costs the wasm a fraction of
/// the dozen typed views it replaces. Every text in it is escaped, and the site's survey
/// link is kept only when it is http(s). Choices are `rating` (stars 1 to 5; thumbs 1 up,
/// 0 down), the comment is `comment`, and the dismiss button is the submitter named
/// `skip` (`formnovalidate`: the choice is `required` only for a rating). Pieces and
/// texts alternate, pushed in turn (no `format!`: each costs the wasm its own code).
pub fn survey_html(t: &Texts, thumbs: bool, before_end: bool, link: &str) -> String {
    let mut html = String::with_capacity(1500);
    let mut put = |markup: &str, text: &str| {
        html.push_str(markup);
        push_escaped(&mut html, text);
    };
    put(
        "<form class=\"gc-prechat gc-survey\" data-testid=\"survey\"><fieldset><legend>",
        t.survey_question,
    );
    put("</legend>", "");
    let stars: Vec<String> = (1..=5).map(|n| n.to_string()).collect();
    let choices: Vec<(&str, &str, String)> = if thumbs {
        vec![("1", "👍", t.survey_good.to_owned()), ("0", "👎", t.survey_bad.to_owned())]
    } else {
        stars.iter().map(|n| (n.as_str(), "★", fill(t.survey_star, &[("n", n)]))).collect()
    };
    for (value, mark, name) in &choices {
        put("<label class=\"gc-choice\"><input type=\"radio\" name=\"rating\" value=\"", value);
        put("\" aria-label=\"", name);
        put("\" required data-testid=\"survey-choice\">", mark);
        put("</label>", "");
    }
    put("</fieldset><label for=\"gc-survey-comment\">", t.survey_comment);
    put(" <span class=\"gc-optional\">", t.optional);
    put(
        "</span></label><textarea id=\"gc-survey-comment\" name=\"comment\" \
         data-testid=\"survey-comment\" maxlength=\"",
        &SurveyAnswer::COMMENT_LIMIT.to_string(),
    );
    put("\"></textarea>", "");
    if let Some(url) = safe_url(link) {
        put("<a href=\"", &url);
        put("\" target=\"_blank\" rel=\"noopener\" data-testid=\"survey-link\">", t.survey_link);
        put("</a>", "");
    }
    let (send, skip) = if before_end {
        (t.survey_send_end, t.survey_skip_end)
    } else {
        (t.survey_send, t.survey_skip)
    };
    put("<button class=\"gc-primary\" data-testid=\"survey-send\">", send);
    put(
        "</button><button class=\"gc-link\" name=\"skip\" formnovalidate data-testid=\"survey-skip\">",
        skip,
    );
    put("</button></form>", "");
    html
}
