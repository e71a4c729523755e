//! A rich message's choices, cards and lists (`shared::rich`) built as DOM nodes, as an
//! agent's formatted line is: every text a text node, links only by the safe-link rule
//! (opened in a new tab, `noopener`), images only over https, lazily, never in the way of
//! the text. A choice that sends is a button carrying its text in `data-reply`, which the
//! line's one click handler ([`reply_of`]) reads. Their styles come with the first rich
//! message ([`STYLES`]), not with the loader every page view downloads.

use shared::rich::{Action, Card, Choice, Rich};
use wasm_bindgen::JsCast;
use web_sys::Element;

/// The rich messages' rules, adopted by the widget's shadow root on the first one.
const STYLES: &str = ".gc-rich{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}\
.gc-cards{display:flex;gap:8px;max-width:100%;overflow-x:auto;scroll-snap-type:x mandatory}\
.gc-card{flex:0 0 auto;width:210px;max-width:100%;scroll-snap-align:start;display:flex;flex-direction:column;gap:6px}\
.gc-card img{width:100%;border-radius:8px}.gc-card-title{font-weight:600}\
.gc-card ul{list-style:none;padding:0!important;display:flex;flex-direction:column;gap:4px}\
.gc-chip{display:inline-flex;flex-direction:column;align-items:flex-start;gap:2px;border:1px solid var(--gc-link);\
border-radius:14px;padding:4px 12px;background:none;color:var(--gc-link);font:inherit;text-align:start;cursor:pointer}\
.gc-chip img{width:40px;border-radius:4px}.gc-chip small{color:var(--gc-muted)}";

/// Fills `parent` with what `rich` shows.
pub(crate) fn build(parent: &Element, rich: &Rich) {
    adopt_styles();
    match rich {
        Rich::QuickReplies(choices) => {
            for item in choices {
                choice(parent, item);
            }
        }
        Rich::Cards(cards) | Rich::Lists(cards) => {
            let Some(row) = child(parent, "div", "gc-cards") else { return };
            // A carousel scrolls sideways: it takes the focus so keys can scroll it.
            if cards.len() > 1 {
                let _ = row.set_attribute("tabindex", "0");
                let _ = row.set_attribute("role", "group");
            }
            for item in cards {
                card(&row, item, matches!(rich, Rich::Lists(_)));
            }
        }
    }
}

/// The text a click on a choice sends, if the click was on one.
pub(crate) fn reply_of(event: &web_sys::Event) -> Option<String> {
    let target = event.target()?.dyn_into::<Element>().ok()?;
    target.closest("[data-reply]").ok()??.get_attribute("data-reply")
}

/// A new `tag` element of `class` at the end of `parent`.
fn child(parent: &Element, tag: &str, class: &str) -> Option<Element> {
    let element = parent.owner_document()?.create_element(tag).ok()?;
    if !class.is_empty() {
        element.set_class_name(class);
    }
    parent.append_child(&element).ok()?;
    Some(element)
}

fn image(parent: &Element, src: &str, alt: &str) {
    if let Some(img) = child(parent, "img", "") {
        let _ = img.set_attribute("src", src);
        let _ = img.set_attribute("alt", alt);
        let _ = img.set_attribute("loading", "lazy");
    }
}

fn link(element: &Element, url: &str) {
    let _ = element.set_attribute("href", url);
    let _ = element.set_attribute("target", "_blank");
    let _ = element.set_attribute("rel", "noopener noreferrer");
}

fn card(parent: &Element, card: &Card, list: bool) {
    let Some(element) = child(parent, "div", "gc-bubble gc-card") else { return };
    if let Some((src, alt)) = &card.image {
        image(&element, src, alt);
    }
    if !card.title.is_empty() {
        let tag = if card.link.is_some() { "a" } else { "span" };
        if let Some(title) = child(&element, tag, "gc-card-title") {
            if let Some(url) = &card.link {
                link(&title, url);
            }
            let _ = title.append_with_str_1(&card.title);
        }
    }
    if !card.text.is_empty()
        && let Some(text) = child(&element, "div", "")
    {
        crate::app::format_into(&text, &card.text);
    }
    let holder = if list { child(&element, "ul", "") } else { Some(element) };
    for item in &card.items {
        let row =
            holder.as_ref().and_then(|h| if list { child(h, "li", "") } else { Some(h.clone()) });
        if let Some(row) = row {
            choice(&row, item);
        }
    }
}

fn choice(parent: &Element, choice: &Choice) {
    let tag = match choice.action {
        Action::Reply(_) => "button",
        Action::Link(_) => "a",
        Action::Show => "span",
    };
    let Some(element) = child(parent, tag, "gc-chip") else { return };
    match &choice.action {
        Action::Reply(text) => {
            let _ = element.set_attribute("type", "button");
            let _ = element.set_attribute("data-reply", text);
        }
        Action::Link(url) => link(&element, url),
        Action::Show => {}
    }
    if let Some(src) = &choice.image {
        image(&element, src, "");
    }
    let _ = element.append_with_str_1(&choice.label);
    if !choice.detail.is_empty()
        && let Some(detail) = child(&element, "small", "")
    {
        let _ = detail.append_with_str_1(&choice.detail);
    }
}

/// Adds [`STYLES`] to the widget's shadow root (the loader's `gms-chat-widget` host),
/// once; engines without constructable stylesheets get a style element, as from the loader.
fn adopt_styles() {
    thread_local!(static ADOPTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if ADOPTED.replace(true) {
        return;
    }
    let document = web_sys::window().and_then(|w| w.document());
    let host = document.as_ref().and_then(|d| d.get_element_by_id("gms-chat-widget"));
    let Some(root) = host.and_then(|h| h.shadow_root()) else { return };
    match web_sys::CssStyleSheet::new() {
        Ok(sheet) if sheet.replace_sync(STYLES).is_ok() => {
            let sheets = js_sys::Array::from(&root.adopted_style_sheets());
            sheets.push(&sheet);
            root.set_adopted_style_sheets(&sheets);
        }
        _ => {
            if let Some(style) = document.and_then(|d| d.create_element("style").ok()) {
                style.set_text_content(Some(STYLES));
                let _ = root.append_child(&style);
            }
        }
    }
}
