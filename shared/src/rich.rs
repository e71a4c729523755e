//! Rich messages: the structured content a bot or an agent sends with a fallback text
//! (quick replies, cards, lists, carousels), read into what the widget may show, and the
//! visitor's choice as it goes back.
//!
//! The wire format (cited in docs/protocol.md): Chat Server's rich messaging carries the
//! structured content in a message's `eventAttributes`, under
//! `structured-content` → `genesys-chat` → `content`, a JSON object or that object as a
//! string, `{"contentType": ..., "content": [...]}`; the message's `text` is the fallback.
//! Genesys Widgets (9.0) renders `quick-replies`, `generic` (a card; several make a
//! carousel), `list-vertical` and `single-selection-list`, and sends a choice back as an
//! ordinary message, its text (a quick reply's `text`, a button's `actions.textback`),
//! with `eventAttributes` `{"general-properties":{"related-event-id":"<index>"}}`.
//!
//! Everything is read tolerantly: unknown fields are ignored, an unknown content type or
//! an unreadable body is `None` (the fallback text shows), an item without anything to show
//! is dropped. Links keep only http(s) URLs ([`crate::format::safe_url`]), images only
//! https ones, and every text stays text.

use crate::format::safe_url;
use crate::gms::ChatEvent;
use crate::json::Json;

/// Where the structured content is in an event's attributes.
const CONTENT_PATH: [&str; 3] = ["structured-content", "genesys-chat", "content"];

/// The most items of one message the widget shows (a carousel's cards, a list's rows, a
/// card's buttons): a hostile message cannot fill the page.
pub const MAX_ITEMS: usize = 10;

/// What a structured message shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rich {
    /// Choices under the fallback text, live until anyone writes again.
    QuickReplies(Vec<Choice>),
    /// Cards in place of the fallback text; more than one is a carousel.
    Cards(Vec<Card>),
    /// Lists of rows in place of the fallback text.
    Lists(Vec<Card>),
}

/// A card, or a list with its rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Card {
    /// Its title.
    pub title: String,
    /// Its text.
    pub text: String,
    /// An https image, with its alternative text.
    pub image: Option<(String, String)>,
    /// Where the card itself leads (http(s)).
    pub link: Option<String>,
    /// Its buttons, or a list's rows.
    pub items: Vec<Choice>,
}

/// A quick reply, a button or a list row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Choice {
    /// What it says.
    pub label: String,
    /// A row's second line.
    pub detail: String,
    /// A row's https image.
    pub image: Option<String>,
    /// What choosing it does.
    pub action: Action,
}

/// What choosing does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Action {
    /// Sends this text as the visitor's message.
    Reply(String),
    /// Opens this http(s) URL in a new tab.
    Link(String),
    /// Nothing: shown only.
    #[default]
    Show,
}

impl Rich {
    /// The structured content `event` carries, if the widget can show it.
    pub fn of(event: &ChatEvent) -> Option<Rich> {
        Rich::parse(event.attributes.as_deref()?)
    }

    /// The structured content in an event's attributes ([`ChatEvent::attributes`]): at
    /// `structured-content` → `genesys-chat` → `content`, the attributes and the content
    /// each an object or that object written as a string.
    pub fn parse(attributes: &str) -> Option<Rich> {
        fn object(value: Json) -> Option<Json> {
            match value {
                Json::String(text) => crate::json::parse(&text),
                value => Some(value),
            }
        }
        let mut value = object(crate::json::parse(attributes)?)?;
        for key in CONTENT_PATH {
            value = object(value.get(key)?.clone())?;
        }
        Rich::read(&value)
    }

    /// Reads a structured content object (`contentType`, `content`).
    pub fn read(body: &Json) -> Option<Rich> {
        let items = body.get("content")?.as_array()?.iter().take(MAX_ITEMS);
        let rich = match body.get("contentType")?.as_str()? {
            "quick-replies" => Rich::QuickReplies(items.filter_map(quick_reply).collect()),
            "generic" => Rich::Cards(items.filter_map(card).collect()),
            "list-vertical" | "single-selection-list" => {
                Rich::Lists(items.filter_map(card).collect())
            }
            _ => return None,
        };
        match &rich {
            Rich::QuickReplies(items) if items.is_empty() => None,
            Rich::Cards(cards) | Rich::Lists(cards) if cards.is_empty() => None,
            _ => Some(rich),
        }
    }

    /// Whether the fallback text still shows above it (quick replies only: cards and lists
    /// take its place, as in Genesys Widgets).
    pub fn keeps_text(&self) -> bool {
        matches!(self, Rich::QuickReplies(_))
    }
}

/// The `eventAttributes` a choice is sent with: the rich message it answers.
pub fn reply_attributes(index: u64) -> String {
    format!(r#"{{"general-properties":{{"related-event-id":"{index}"}}}}"#)
}

/// The rich message a choice answers, from its `eventAttributes` (as [`reply_attributes`]
/// writes them, the id a string or a number).
pub fn replied_to(attributes: &str) -> Option<u64> {
    let id = crate::json::parse(attributes)?;
    let id = id.get("general-properties")?.get("related-event-id")?;
    id.as_str().and_then(|s| s.parse().ok()).or_else(|| id.as_integer())
}

/// Whether an event's attributes may hold structured content: a look at the text, which
/// [`Rich::parse`] then reads where it is shown (not in the widget's first load).
pub fn may_be_rich(attributes: &str) -> bool {
    attributes.contains("structured-content")
}

/// The one message whose quick replies are live in `events`: the last chat message, if it
/// may be rich ([`may_be_rich`]; only quick replies retire). Anyone's next message (the
/// visitor's choice, a new agent line) retires them.
pub fn live_choices(events: &[ChatEvent]) -> Option<u64> {
    let last = events.iter().rev().find(|e| e.event_type == crate::gms::EventType::Message)?;
    last.attributes.as_deref().filter(|a| may_be_rich(a)).and(last.index)
}

fn text(value: &Json, key: &str) -> String {
    value.get(key).and_then(Json::as_str).map(str::trim).unwrap_or_default().to_owned()
}

fn https_image(value: &Json) -> Option<String> {
    let url = safe_url(value.get("image")?.as_str()?)?;
    url.get(..8)?.eq_ignore_ascii_case("https://").then_some(url)
}

/// An item's action: its `textback` is sent, else its URL opens, else `fallback` is sent.
fn action(item: &Json, fallback: Option<&str>) -> Action {
    let actions = item.get("actions");
    let field = |key| actions.and_then(|a| a.get(key)).and_then(Json::as_str).map(str::trim);
    if let Some(reply) = field("textback").filter(|t| !t.is_empty()).or(fallback) {
        return Action::Reply(reply.to_owned());
    }
    field("url").and_then(safe_url).map_or(Action::Show, Action::Link)
}

fn quick_reply(item: &Json) -> Option<Choice> {
    let label = text(item, "text");
    let action = action(item, Some(&label));
    (!label.is_empty()).then(|| Choice { label, detail: String::new(), image: None, action })
}

/// A `generic` card or a list: title, text, image, its own link, and its buttons or rows
/// (`components` of type `button` or `list-item`/`list-item-big`).
fn card(item: &Json) -> Option<Card> {
    let mut card = Card {
        title: text(item, "title"),
        text: text(item, "desc"),
        image: https_image(item).map(|url| (url, text(item, "imageText"))),
        link: match action(item, None) {
            Action::Link(url) => Some(url),
            _ => None,
        },
        items: Vec::new(),
    };
    let components = item.get("components").and_then(Json::as_array).unwrap_or_default();
    for component in components.iter().take(MAX_ITEMS) {
        let kind = component.get("type").and_then(Json::as_str).unwrap_or_default();
        let label = match kind {
            "button" => text(component, "text"),
            "list-item" | "list-item-big" => text(component, "title"),
            _ => continue,
        };
        if label.is_empty() {
            continue;
        }
        card.items.push(Choice {
            detail: text(component, "desc"),
            image: https_image(component),
            action: action(component, None),
            label,
        });
    }
    let empty = card.title.is_empty() && card.text.is_empty() && card.image.is_none();
    (!empty || !card.items.is_empty()).then_some(card)
}
