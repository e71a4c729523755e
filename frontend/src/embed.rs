//! The host page's side of the widget: the commands `window.GmsChat` forwards (from the
//! loader, `frontend/loader.js`) and the events it hears. What to announce is decided by
//! `announcements`, a pure comparison of two looks at the machine.

use std::cell::RefCell;

use shared::gms::EventType;
use shared::visitor::{Input, Machine};

use crate::controller::Controller;

/// What the host page can observe of the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Look {
    /// The panel is open.
    pub open: bool,
    /// The current chat's id and whether it ended.
    pub chat: Option<(String, bool)>,
    /// Agent lines the visitor has not seen (0 while the panel is open).
    pub unread: usize,
    /// The highest transcript index of an agent line.
    pub last_agent_line: u64,
}

/// An event for `GmsChat.on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The panel opened.
    Open,
    /// The panel closed.
    Close,
    /// A chat started.
    Started,
    /// A new agent line: its text, its time (ms since the epoch) and who wrote it.
    Message {
        /// The text.
        text: String,
        /// When GMS says it was written.
        time: Option<i64>,
        /// The agent's nickname.
        from: String,
    },
    /// The unread count changed.
    Unread(usize),
    /// The chat ended.
    Ended,
}

fn is_agent_line(event: &shared::gms::ChatEvent) -> bool {
    !event.from.is_client()
        && matches!(
            event.event_type,
            EventType::Message | EventType::PushUrl | EventType::FileUploaded
        )
}

impl Look {
    /// How the machine looks now.
    pub fn of(machine: &Machine) -> Look {
        let chat = machine.stored.chat.as_ref();
        Look {
            open: machine.stored.open,
            chat: chat.map(|c| (c.credentials.chat_id.clone(), c.ended)),
            unread: if machine.stored.open { 0 } else { chat.map_or(0, |c| c.unread()) },
            last_agent_line: chat
                .and_then(|c| {
                    c.events.iter().filter(|e| is_agent_line(e)).filter_map(|e| e.index).max()
                })
                .unwrap_or(0),
        }
    }
}

/// What happened between two looks, in the order a listener expects: the chat's start
/// before its lines, its lines before its end.
pub fn announcements(before: &Look, after: &Look, machine: &Machine) -> Vec<Announcement> {
    let mut out = Vec::new();
    if before.open != after.open {
        out.push(if after.open { Announcement::Open } else { Announcement::Close });
    }
    let same_chat = matches!((&before.chat, &after.chat), (Some((a, _)), Some((b, _))) if a == b);
    if let Some((_, ended)) = &after.chat
        && !same_chat
        && !ended
    {
        out.push(Announcement::Started);
    }
    let since = if same_chat { before.last_agent_line } else { 0 };
    if let Some(chat) = machine.stored.chat.as_ref() {
        for event in
            chat.events.iter().filter(|e| is_agent_line(e) && e.index.is_some_and(|i| i > since))
        {
            out.push(Announcement::Message {
                text: event.text.clone().unwrap_or_default(),
                time: event.utc_time,
                from: event.from.nickname.clone(),
            });
        }
    }
    if before.unread != after.unread {
        out.push(Announcement::Unread(after.unread));
    }
    // Ended: seen to end, or wiped while running (`forget()`, here or in another tab).
    let was_running = matches!(&before.chat, Some((_, false)));
    let gone = after.chat.is_none() || (same_chat && matches!(&after.chat, Some((_, true))));
    if was_running && gone {
        out.push(Announcement::Ended);
    }
    out
}

/// A command from `window.GmsChat`, as the machine's input. `data` is the JSON the loader
/// made (`[[key, value], ...]` for user data). `None` for a command this build does not know.
pub fn input_of(
    name: &str,
    data: &str,
    open: bool,
    new_device_id: impl FnOnce() -> String,
) -> Option<Input> {
    Some(match name {
        "open" => Input::SetOpen(true),
        "close" => Input::SetOpen(false),
        "toggle" => Input::SetOpen(!open),
        "userData" => Input::UserData(shared::json::from_str(data)?),
        "forget" => Input::Forget { device_id: new_device_id() },
        // `{userId, userHash}`, or empty for a logout.
        "identify" => Input::Identify {
            identity: if data.is_empty() { None } else { Some(shared::json::from_str(data)?) },
            device_id: new_device_id(),
        },
        _ => return None,
    })
}

thread_local! {
    static MOUNTED: RefCell<Option<Controller>> = const { RefCell::new(None) };
}

/// Links the mounted widget to the host page: commands reach `ctrl`, and its changes are
/// announced through `emit(name, detail)`.
pub(crate) fn link(ctrl: Controller, emit: js_sys::Function) {
    use leptos::prelude::*;
    MOUNTED.with(|m| *m.borrow_mut() = Some(ctrl));
    let last = StoredValue::new(ctrl.with_untracked(Look::of));
    let initial = last.with_value(|l| l.unread);
    if initial > 0 {
        announce(&emit, &Announcement::Unread(initial));
    }
    Effect::new(move |_| {
        let now = ctrl.with(Look::of);
        let before = last.with_value(Clone::clone);
        if now == before {
            return;
        }
        let events = ctrl.with_untracked(|m| announcements(&before, &now, m));
        last.set_value(now);
        for event in &events {
            announce(&emit, event);
        }
    });
}

fn announce(emit: &js_sys::Function, event: &Announcement) {
    use wasm_bindgen::JsValue;
    let set = |object: &js_sys::Object, key: &str, value: JsValue| {
        let _ = js_sys::Reflect::set(object, &key.into(), &value);
    };
    let (name, detail): (&str, JsValue) = match event {
        Announcement::Open => ("open", JsValue::UNDEFINED),
        Announcement::Close => ("close", JsValue::UNDEFINED),
        Announcement::Started => ("started", JsValue::UNDEFINED),
        Announcement::Ended => ("ended", JsValue::UNDEFINED),
        Announcement::Unread(count) => ("unread", JsValue::from_f64(*count as f64)),
        Announcement::Message { text, time, from } => {
            let detail = js_sys::Object::new();
            set(&detail, "text", text.into());
            set(&detail, "time", time.map_or(JsValue::NULL, |t| JsValue::from_f64(t as f64)));
            set(&detail, "from", from.into());
            ("message", detail.into())
        }
    };
    let _ = emit.call2(&JsValue::UNDEFINED, &name.into(), &detail);
}

/// Runs a command from the host page on the mounted widget.
pub fn command(name: &str, data: &str) {
    let Some(ctrl) = MOUNTED.with(|m| *m.borrow()) else { return };
    let open = ctrl.with_untracked(|m| m.stored.open);
    match input_of(name, data, open, crate::storage::new_device_id) {
        Some(input) => ctrl.input(input),
        None => leptos::logging::warn!("gms-chat: unknown command {name}"),
    }
}

#[cfg(test)]
mod tests;
