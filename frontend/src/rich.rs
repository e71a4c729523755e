//! A rich message's choices, cards and lists (`shared::rich`) built as DOM nodes, as an
//! agent's formatted line is: every text a text node, links only by the safe-link rule
//! (opened in a new tab, `noopener`), images only over https, lazily, never in the way of
//! the text. A choice that sends is a button carrying its text in `data-reply`; one click
//! handler on the message sends it as the visitor's answer. Built by the part that loads
//! on first use, with its styles (`later::adopt_styles`), not carried by the loader every
//! page view downloads.

use shared::rich::{Action, Card, Choice, Rich};
use shared::visitor::Input;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::Element;

use crate::controller::Controller;

/// Fills `parent` with what `rich`, the message at transcript `index`, shows.
pub(crate) fn build(ctrl: Controller, index: u64, parent: &Element, rich: &Rich) {
    crate::later::adopt_styles();
    let choose = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
        if let Some(text) = reply_of(&event) {
            ctrl.input(Input::Choose { index, text });
        }
    });
    let _ = parent.add_event_listener_with_callback("click", choose.as_ref().unchecked_ref());
    // Forgotten: one small closure per rich message, for the life of the page.
    choose.forget();
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
fn reply_of(event: &web_sys::Event) -> Option<String> {
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
