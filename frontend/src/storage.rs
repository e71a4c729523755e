//! localStorage: the widget's one versioned key, shared by every tab of the site. A write
//! first reads what other tabs wrote and merges this tab's state into it, so no tab's
//! update is lost; other tabs' writes arrive as `storage` events. Failures (private
//! mode, quota) are logged and the widget goes on in memory.

use shared::visitor::{STORAGE_KEY, Stored};

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn read(storage: &web_sys::Storage) -> Option<(String, Stored)> {
    let text = storage.get_item(STORAGE_KEY).ok().flatten()?;
    let stored = shared::json::from_str(&text)?;
    Some((text, stored))
}

/// What was stored, if anything: a visitor who never started a chat has nothing here.
pub(crate) fn load() -> Option<Stored> {
    local_storage().and_then(|s| read(&s)).map(|(_, stored)| stored)
}

/// Removes everything the widget stored (`GmsChat.forget()`).
pub(crate) fn wipe() {
    if let Some(storage) = local_storage()
        && storage.remove_item(STORAGE_KEY).is_err()
    {
        leptos::logging::warn!("gms-chat: could not remove the chat from localStorage");
    }
}

/// Saves this tab's state merged into what is stored; answers the merged state when it
/// holds more than this tab had (another tab's write that has not arrived as an event).
pub(crate) fn save(mine: &Stored) -> Option<Stored> {
    let storage = local_storage()?;
    let (text, merged) = match read(&storage) {
        Some((text, mut theirs)) => {
            // This write is the latest: the merge keeps this tab's choices and adds what
            // only the other tabs know.
            theirs.absorb(mine);
            (Some(text), theirs)
        }
        None => (None, mine.clone()),
    };
    let json = shared::json::to_string(&merged);
    // An unchanged value would still wake every other tab for nothing.
    if text.as_deref() != Some(json.as_str()) && storage.set_item(STORAGE_KEY, &json).is_err() {
        leptos::logging::warn!("gms-chat: could not save the chat to localStorage");
    }
    (merged != *mine).then_some(merged)
}

/// Calls `changed` with the stored state whenever another tab writes it, and `wiped` when
/// another tab (or the site, clearing the whole storage) removed it.
pub(crate) fn on_change(changed: impl Fn(Stored) + 'static, wiped: impl Fn() + 'static) {
    let _ = leptos::prelude::window_event_listener(leptos::ev::storage, move |event| {
        match (event.key().as_deref(), event.new_value()) {
            (None, _) => wiped(),
            (Some(STORAGE_KEY), None) => wiped(),
            (Some(STORAGE_KEY), Some(text)) => {
                if let Some(stored) = shared::json::from_str(&text) {
                    changed(stored);
                }
            }
            _ => {}
        }
    });
}

/// A new push device id: 16 random bytes as hex.
pub(crate) fn new_device_id() -> String {
    let mut bytes = [0_u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("d-{hex}")
}
