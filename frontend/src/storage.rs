//! localStorage: the widget's one versioned key. Failures (private mode, quota) are
//! logged and the widget goes on in memory.

use crate::chat::{STORAGE_KEY, Stored};

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// What was stored, with a device id created on first use.
pub(crate) fn load() -> Stored {
    let mut stored: Stored = local_storage()
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    if stored.device_id.is_empty() {
        stored.device_id = new_device_id();
    }
    stored
}

/// Saves everything.
pub(crate) fn save(stored: &Stored) {
    let Some(storage) = local_storage() else { return };
    match serde_json::to_string(stored) {
        Ok(text) => {
            if storage.set_item(STORAGE_KEY, &text).is_err() {
                leptos::logging::warn!("gms-chat: could not save the chat to localStorage");
            }
        }
        Err(error) => leptos::logging::warn!("gms-chat: {error}"),
    }
}

/// 16 random bytes as hex.
fn new_device_id() -> String {
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
