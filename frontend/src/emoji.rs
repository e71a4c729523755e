//! The emoji picker, all of it in the part that loads on first use (`later::emoji`): the
//! composer's button opens it, the first time with the language's data fetched
//! (`frontend/emoji/<lang>.txt`, as `cargo xtask emoji` writes it): a search field and one
//! button per emoji. A chosen emoji joins the draft; the field filters by name and
//! keywords; arrow keys move between the shown buttons, one of which is in the tab order
//! at a time; Escape closes the picker and gives the focus back to its button.

use leptos::prelude::{GetUntracked, RwSignal, Set};
use shared::visitor::Input;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Element, HtmlElement};

use crate::controller::Controller;

/// Buttons per row: arrow up and down move by this many.
const COLUMNS: usize = 8;

/// Opens the picker of the composer `button` is in (making it the first time), or closes
/// it.
pub(crate) fn toggle(ctrl: Controller, button: &Element, draft: RwSignal<String>) {
    let composer = button.closest(".gc-composer").ok().flatten();
    let Some(composer) = composer else { return };
    if let Ok(Some(picker)) = composer.query_selector(".gc-emoji")
        && let Ok(picker) = picker.dyn_into::<HtmlElement>()
    {
        let open = picker.hidden();
        picker.set_hidden(!open);
        let _ = button.set_attribute("aria-expanded", &open.to_string());
        if open && let Ok(Some(field)) = picker.query_selector("input") {
            let _ = field.unchecked_into::<HtmlElement>().focus();
        }
        return;
    }
    let Some(picker) = composer.owner_document().and_then(|d| d.create_element("div").ok()) else {
        return;
    };
    picker.set_class_name("gc-emoji");
    for (name, value) in
        [("data-testid", "emoji-picker"), ("role", "group"), ("aria-label", ctrl.texts.emoji)]
    {
        let _ = picker.set_attribute(name, value);
    }
    let _ = composer.prepend_with_node_1(&picker);
    let _ = button.set_attribute("aria-expanded", "true");
    listen(ctrl, &picker, button, draft);
    leptos::task::spawn_local(async move {
        match crate::net::emoji(&ctrl.config()).await {
            Some(data) => build(&picker, &data, ctrl.texts.emoji_search),
            // Made again on the next opening.
            None => {
                picker.remove();
                ctrl.part_unavailable();
            }
        }
    });
}

/// A click on an emoji adds it to the draft; Escape closes the picker.
fn listen(ctrl: Controller, picker: &Element, button: &Element, draft: RwSignal<String>) {
    let pick = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
        let target = event.target().and_then(|t| t.dyn_into::<Element>().ok());
        let chosen = target.and_then(|t| t.closest("[data-emoji]").ok().flatten());
        if let Some(emoji) = chosen.and_then(|b| b.get_attribute("data-emoji")) {
            let text = draft.get_untracked() + &emoji;
            ctrl.input(Input::Typed(text.clone()));
            draft.set(text);
        }
    });
    let _ = picker.add_event_listener_with_callback("click", pick.as_ref().unchecked_ref());
    let (closing, opener) = (picker.clone(), button.clone());
    let escape =
        Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(move |event: web_sys::KeyboardEvent| {
            if event.key() == "Escape" {
                // The picker's Escape, not the panel's, which would close the chat.
                event.stop_propagation();
                let _ = closing.set_attribute("hidden", "");
                let _ = opener.set_attribute("aria-expanded", "false");
                let _ = opener.unchecked_ref::<HtmlElement>().focus();
            }
        });
    let _ = picker.add_event_listener_with_callback("keydown", escape.as_ref().unchecked_ref());
    // The picker lives as long as the composer: its listeners too.
    pick.forget();
    escape.forget();
}

/// Fills `parent`; `search` is the field's label.
fn build(parent: &Element, data: &str, search: &str) {
    crate::later::adopt_styles();
    let Some(document) = parent.owner_document() else { return };
    let make = |tag: &str, class: &str| -> Option<Element> {
        let element = document.create_element(tag).ok()?;
        element.set_class_name(class);
        Some(element)
    };
    let (Some(field), Some(grid)) =
        (make("input", "gc-emoji-search"), make("div", "gc-emoji-grid"))
    else {
        return;
    };
    for (name, value) in [("type", "search"), ("aria-label", search), ("placeholder", search)] {
        let _ = field.set_attribute(name, value);
    }
    let _ = field.set_attribute("data-testid", "emoji-search");
    for line in data.lines() {
        let made = match line.strip_prefix('#') {
            Some(group) => make("p", "gc-emoji-group").inspect(|p| p.set_text_content(Some(group))),
            None => {
                let mut parts = line.split('\t');
                let (Some(emoji), Some(name)) = (parts.next(), parts.next()) else { continue };
                let keywords = parts.next().unwrap_or_default();
                make("button", "").inspect(|button| {
                    let words = lower(&format!("{name} {keywords}"));
                    for (attribute, value) in [
                        ("type", "button"),
                        ("tabindex", "-1"),
                        ("data-emoji", emoji),
                        ("title", name),
                        ("aria-label", name),
                        ("data-words", &words),
                    ] {
                        let _ = button.set_attribute(attribute, value);
                    }
                    button.set_text_content(Some(emoji));
                })
            }
        };
        if let Some(element) = made {
            let _ = grid.append_child(&element);
        }
    }
    if let Ok(Some(first)) = grid.query_selector("button") {
        let _ = first.set_attribute("tabindex", "0");
    }

    // The field shows the emoji whose name or keywords contain what is typed.
    let shown_grid = grid.clone();
    let filter = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        let Some(input) =
            event.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let query = lower(input.value().trim());
        let Ok(items) = shown_grid.query_selector_all("button, p") else { return };
        for i in 0..items.length() {
            let Some(item) = items.item(i).and_then(|n| n.dyn_into::<HtmlElement>().ok()) else {
                continue;
            };
            let words = item.get_attribute("data-words");
            // A group's name shows only while nothing is searched.
            let show = query.is_empty() || words.is_some_and(|w| w.contains(&query));
            item.set_hidden(!show);
        }
        roving(&shown_grid, None);
    });
    let _ = field.add_event_listener_with_callback("input", filter.as_ref().unchecked_ref());
    filter.forget();

    let moving_grid = grid.clone();
    let keys =
        Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(move |event: web_sys::KeyboardEvent| {
            let step: isize = match event.key().as_str() {
                "ArrowRight" => 1,
                "ArrowLeft" => -1,
                "ArrowDown" => COLUMNS as isize,
                "ArrowUp" => -(COLUMNS as isize),
                _ => return,
            };
            event.prevent_default();
            let current = event.target().and_then(|t| t.dyn_into::<Element>().ok());
            roving(&moving_grid, current.map(|c| (c, step)));
        });
    let _ = grid.add_event_listener_with_callback("keydown", keys.as_ref().unchecked_ref());
    keys.forget();

    let _ = parent.append_child(&field);
    let _ = parent.append_child(&grid);
    if let Ok(field) = field.dyn_into::<HtmlElement>() {
        let _ = field.focus();
    }
}

/// Keeps one shown button in the tab order: the one `moved` lands on (from a button, by a
/// step), or the first shown.
fn roving(grid: &Element, moved: Option<(Element, isize)>) {
    let Ok(all) = grid.query_selector_all("button") else { return };
    let mut shown = Vec::new();
    for i in 0..all.length() {
        if let Some(button) = all.item(i).and_then(|n| n.dyn_into::<HtmlElement>().ok()) {
            button.set_tab_index(-1);
            if !button.hidden() {
                shown.push(button);
            }
        }
    }
    let at = moved.and_then(|(from, step)| {
        let here = shown.iter().position(|b| **b == from)?;
        Some(here.saturating_add_signed(step).min(shown.len().saturating_sub(1)))
    });
    if let Some(button) = shown.get(at.unwrap_or(0)) {
        button.set_tab_index(0);
        if at.is_some() {
            let _ = button.focus();
        }
    }
}

/// `text` in lower case by the browser's rules, for searching: `str::to_lowercase` would
/// bring core's case table, 5.6 KB of this part.
fn lower(text: &str) -> String {
    js_sys::JsString::from(text).to_lower_case().into()
}
